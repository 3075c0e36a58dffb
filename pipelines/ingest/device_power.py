"""What a device's reported power means, by device type.

nvidia-smi and NVML ``power.draw`` is the average over the last second on Ampere and newer GPUs, except GA100
(A100, A30), where, as on Volta and older, it is an instantaneous reading. ``power.draw.instant`` is always
instantaneous and ``power.draw.average`` always a 1 s average. The inventory column ``power_draw_window_s``
overrides this table for a device.
"""

from __future__ import annotations

import re

# (pattern on inventory.device_type, window of power.draw in seconds); first match wins
POWER_DRAW_WINDOW_S: list[tuple[str, float]] = [
    (r"A100|A30\b", 0.0),  # GA100
    (r"V100|TITAN V|P100|P40|P4\b|T4\b|K80|M60", 0.0),  # Volta, Turing T4 and older
    (r".", 1.0),  # Ampere (GA10x), Ada, Hopper, Blackwell and anything newer
]
DEFAULT_POWER_DRAW_WINDOW_S = 1.0


def power_draw_window_s(device_type: str | None) -> float:
    for pattern, window in POWER_DRAW_WINDOW_S:
        if device_type and re.search(pattern, device_type):
            return window
    return DEFAULT_POWER_DRAW_WINDOW_S


def power_draw_window_sql(device_type_expr: str) -> str:
    """The same rule as a SQL CASE over a device_type expression (DuckDB regular expressions)."""
    whens = " ".join(
        f"WHEN regexp_matches({device_type_expr}, '{pattern}') THEN {window}" for pattern, window in POWER_DRAW_WINDOW_S
    )
    return f"CASE {whens} ELSE {DEFAULT_POWER_DRAW_WINDOW_S} END"
