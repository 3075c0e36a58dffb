"""Cost allocation over a window, grouped by whitelisted dimensions: the query behind the allocation API.

In the spirit of OpenCost's ``/allocation?window=...&aggregate=...``: cost, energy, tokens and emissions of the
requests of a window of whole UTC days, grouped by any of the dimensions in ``DIMENSIONS`` (and ``label:<key>``, a
request label of ``fct_request_cost.labels``), with the idle policy as a parameter.

Idle cost (device time no request used) reaches requests by a policy: ``none``, ``proportional`` (to each request's
direct cost on that device-day) or ``even``. The warehouse applies the policy it was built with
(INFERCOST_IDLE_SHARING_POLICY) in ``fct_request_cost.idle_cost_allocated_usd``; here the same rule as
``dbt/models/intermediate/int_request_idle_allocation.sql`` is applied at query time to ``int_request_cost_pieces``
and ``agg_idle_cost``, so a reader can ask for another policy without a rebuild (a test holds the two equal for the
built policy). Idle cost no request took (a device-day with no request, or all of it under ``none``) is returned as
its own rows (``idle_unallocated``: true, ``__idle__`` for request dimensions), so the rows always sum to the fleet's
cost under every policy.

A request counts on its ``request_date``; idle cost on its device-day. Every SQL text is built from the names in
``DIMENSIONS`` and ``IDLE_SHARE_SQL`` only; the window bounds are bound parameters. Imports no Dagster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import duckdb

from pipelines.settings import IDLE_SHARING_POLICIES, LABEL_KEY_PATTERN

# each dimension: its SQL over a request row (r) and over an idle device-day row (d); None = not a device property
DIMENSIONS: dict[str, tuple[str, str | None]] = {
    "model": ("r.model", None),
    "family": ("r.family", None),
    "technique": ("r.technique", None),
    "tenant": ("coalesce(r.tenant, 'unassigned')", None),
    "device_type": ("coalesce(r.device_type, 'unknown')", "coalesce(d.device_type, 'unknown')"),
    "region": ("coalesce(r.region, 'unknown')", "coalesce(d.region, 'unknown')"),
    "day": ("strftime(r.request_date, '%Y-%m-%d')", "strftime(d.partition_date, '%Y-%m-%d')"),
}
IDLE_GROUP = "__idle__"
LABEL_PREFIX = "label:"
LABELS_COLUMN = "labels"
LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
MAX_WINDOW_DAYS = 3660
# the share of a device-day's idle cost each request on it takes (int_request_idle_allocation's rule)
IDLE_SHARE_SQL = {
    "none": "0.0",
    "proportional": "direct_cost_usd / nullif(sum(direct_cost_usd) OVER (PARTITION BY partition_date, device_id), 0)",
    "even": "1.0 / count(*) OVER (PARTITION BY partition_date, device_id)",
}
assert set(IDLE_SHARE_SQL) == set(IDLE_SHARING_POLICIES)


class BadParameter(ValueError):
    """A request parameter that cannot be used; the message (one line) names it and says what is allowed."""


@dataclass(frozen=True)
class Window:
    start: date
    end: date
    """Exclusive: the day after the last day."""

    def as_json(self) -> dict:
        return {
            "start": f"{self.start.isoformat()}T00:00:00Z",
            "end": f"{self.end.isoformat()}T00:00:00Z",
            "days": (self.end - self.start).days,
        }


def _bound(text: str, name: str) -> date:
    text = text.strip().upper()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(f"window {name} {text!r} is not a date (YYYY-MM-DD) or RFC 3339 time") from None
    if moment.tzinfo is None:
        raise BadParameter(f"window {name} {text!r} has no time zone: end it with Z (UTC)")
    moment = moment.astimezone(UTC)
    if moment.time() != datetime.min.time():
        raise BadParameter(
            f"window {name} {text!r} is not midnight UTC: the warehouse is daily, so bounds are whole UTC days"
        )
    return moment.date()


def parse_window(text: str, latest_day: date | None, today: date | None = None) -> Window:
    """A window from ``start,end`` (dates or RFC 3339 midnights UTC, end exclusive), ``Nd`` (the N days ending
    with the latest day in the warehouse), ``latest`` (that day), ``today`` or ``yesterday`` (UTC)."""
    text = text.strip().lower()
    today = today or datetime.now(UTC).date()
    last = latest_day or today
    if "," in text:
        first, _, end_text = text.partition(",")
        start, end = _bound(first, "start"), _bound(end_text, "end")
        if end <= start:
            raise BadParameter(f"window end {end} is not after its start {start} (the end is exclusive)")
    elif m := re.fullmatch(r"(\d{1,5})d", text):
        days = int(m.group(1))
        if days < 1:
            raise BadParameter("window 0d is empty: use 1d or more")
        start, end = last - timedelta(days=days - 1), last + timedelta(days=1)
    elif text in ("latest", "today", "yesterday"):
        start = {"latest": last, "today": today, "yesterday": today - timedelta(days=1)}[text]
        end = start + timedelta(days=1)
    else:
        raise BadParameter(
            f"window {text!r} is not understood: use START,END (2024-05-01T00:00:00Z,2024-05-02T00:00:00Z or "
            "2024-05-01,2024-05-02; end exclusive), Nd (the N days ending with the latest day), latest, today or "
            "yesterday"
        )
    if (end - start).days > MAX_WINDOW_DAYS:
        raise BadParameter(f"window of {(end - start).days} days is longer than {MAX_WINDOW_DAYS}")
    return Window(start, end)


def label_sql(key: str, column_type: str | None) -> str:
    """The SQL of dimension ``label:<key>``: the request's value of that label (``fct_request_cost.labels``, a JSON
    object as text, or a MAP), 'unlabelled' where it has none. The key is checked against the pattern
    INFERCOST_REQUEST_LABELS keys follow, so it is safe to quote."""
    if not LABEL_KEY.fullmatch(key):
        raise BadParameter(f"label key {key!r}: use 1 to 64 letters, digits, '_', '.' or '-'")
    if column_type is None:
        raise BadParameter(
            f"aggregate {LABEL_PREFIX}{key}: this warehouse has no request labels (fct_request_cost.{LABELS_COLUMN}): "
            "rebuild it with this version of infercost"
        )
    if column_type.upper().startswith("MAP"):
        return f"coalesce(r.{LABELS_COLUMN}['{key}'], 'unlabelled')"
    return f"""coalesce(json_extract_string(r.{LABELS_COLUMN}, '$."{key}"'), 'unlabelled')"""


def parse_aggregate(text: str | None, labels_type: str | None) -> list[tuple[str, str, str | None]]:
    """The grouping: (name, request SQL, idle SQL) for each comma-separated dimension, in order, no repeats."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    out = []
    for name in names:
        if name in DIMENSIONS:
            out.append((name, *DIMENSIONS[name]))
        elif name.startswith(LABEL_PREFIX):
            out.append((name, label_sql(name[len(LABEL_PREFIX) :], labels_type), None))
        else:
            allowed = ", ".join([*DIMENSIONS, LABEL_PREFIX + "<key>"])
            raise BadParameter(f"aggregate {name!r} is not a dimension: use any of {allowed}, comma-separated")
    if len({n for n, _, _ in out}) < len(out):
        raise BadParameter(f"aggregate {text!r} names a dimension twice")
    return out


def parse_idle_policy(text: str | None, built_policy: str) -> str:
    policy = built_policy if text is None else text.strip().lower()
    if policy not in IDLE_SHARE_SQL:
        raise BadParameter(f"idle_policy {text!r}: use one of {', '.join(IDLE_SHARE_SQL)}")
    return policy


_MEASURES = """
        count(*) AS requests,
        count(r.cost_caveat) AS requests_with_caveat,
        sum(r.prompt_tokens)::BIGINT AS input_tokens,
        sum(r.completion_tokens)::BIGINT AS output_tokens,
        sum(r.energy_j) / 3.6e6 AS energy_kwh,
        sum(r.facility_energy_j) / 3.6e6 AS facility_energy_kwh,
        sum(r.emissions_g_co2e) / 1000 AS emissions_kg_co2e,
        sum(r.energy_cost_usd) AS energy_cost_usd,
        sum(r.capex_cost_usd) AS capex_cost_usd,
        sum(r.overhead_cost_usd) AS overhead_cost_usd,
        sum(r.total_cost_usd) AS direct_cost_usd,
        sum(coalesce(ri.idle_cost_usd, 0)) AS idle_cost_usd"""
_IDLE_MEASURES = """
        0 AS requests, 0 AS requests_with_caveat, 0 AS input_tokens, 0 AS output_tokens,
        NULL::DOUBLE AS energy_kwh, NULL::DOUBLE AS facility_energy_kwh, NULL::DOUBLE AS emissions_kg_co2e,
        0.0 AS energy_cost_usd, 0.0 AS capex_cost_usd, 0.0 AS overhead_cost_usd, 0.0 AS direct_cost_usd,
        sum(d.unallocated_idle_cost_usd) AS idle_cost_usd"""


def allocation_sql(dims: list[tuple[str, str, str | None]], policy: str) -> str:
    """The allocation query (parameters: $start, $end) for the parsed dimensions and an idle policy."""
    request_keys = "".join(f"{sql} AS g{i}, " for i, (_, sql, _) in enumerate(dims))
    idle_keys = "".join(f"{idle or repr(IDLE_GROUP)} AS g{i}, " for i, (_, _, idle) in enumerate(dims))
    return f"""
    WITH pieces AS (
        SELECT partition_date, device_id, request_id,
               sum(coalesce(energy_cost_usd, 0) + capex_cost_usd + overhead_cost_usd) AS direct_cost_usd
        FROM int_request_cost_pieces
        WHERE partition_date >= $start AND partition_date < $end + INTERVAL 1 DAY
        GROUP BY ALL
    ),
    allocated AS (
        SELECT s.request_id, s.partition_date, s.device_id,
               coalesce(s.idle_share, 0) * i.idle_cost_usd AS idle_cost_usd
        FROM (SELECT *, {IDLE_SHARE_SQL[policy]} AS idle_share FROM pieces) s
        INNER JOIN agg_idle_cost i USING (partition_date, device_id)
    ),
    request_idle AS (SELECT request_id, sum(idle_cost_usd) AS idle_cost_usd FROM allocated GROUP BY ALL),
    device_day_allocated AS (
        SELECT partition_date, device_id, sum(idle_cost_usd) AS allocated_usd FROM allocated GROUP BY ALL
    ),
    device_days AS (
        SELECT i.*, i.idle_cost_usd - coalesce(a.allocated_usd, 0) AS unallocated_idle_cost_usd
        FROM agg_idle_cost i LEFT JOIN device_day_allocated a USING (partition_date, device_id)
        WHERE i.partition_date >= $start AND i.partition_date < $end
    ),
    request_groups AS (
        SELECT {request_keys}false AS idle_unallocated, {_MEASURES}
        FROM fct_request_cost r LEFT JOIN request_idle ri USING (request_id)
        WHERE r.request_date >= $start AND r.request_date < $end
        GROUP BY ALL HAVING count(*) > 0
    ),
    idle_groups AS (
        SELECT {idle_keys}true AS idle_unallocated, {_IDLE_MEASURES}
        FROM device_days d
        GROUP BY ALL HAVING abs(sum(d.unallocated_idle_cost_usd)) > 1e-12
    )
    SELECT *, direct_cost_usd + idle_cost_usd AS total_cost_usd,
           1e6 * (direct_cost_usd + idle_cost_usd) / nullif(output_tokens, 0) AS cost_per_1m_output_tokens_usd,
           3.6e6 * energy_kwh / nullif(output_tokens, 0) AS j_per_output_token
    FROM (SELECT * FROM request_groups UNION ALL BY NAME SELECT * FROM idle_groups)
    ORDER BY idle_unallocated, total_cost_usd DESC
    """


def _column_type(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str | None:
    rows = con.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_name = ? AND column_name = ?", [table, column]
    ).fetchall()
    return rows[0][0] if rows else None


def _json_value(value):
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def allocate(
    con: duckdb.DuckDBPyConnection,
    window: str | None = None,
    aggregate: str | None = None,
    idle_policy: str | None = None,
    today: date | None = None,
) -> dict:
    """The allocation of a read-only warehouse connection: the parsed parameters, a row per group, the totals.

    ``BadParameter`` for a parameter that cannot be used (the HTTP layer's 400)."""
    latest, built_policy = con.execute(
        "SELECT (SELECT max(request_date) FROM fct_request_cost), "
        "(SELECT any_value(idle_sharing_policy) FROM agg_idle_cost)"
    ).fetchall()[0]
    built_policy = built_policy or "proportional"
    parsed_window = parse_window("latest" if window is None else window, latest, today)
    dims = parse_aggregate(aggregate, _column_type(con, "fct_request_cost", LABELS_COLUMN))
    policy = parse_idle_policy(idle_policy, built_policy)
    bounds = {"start": parsed_window.start, "end": parsed_window.end}
    result = con.sql(allocation_sql(dims, policy), params=bounds).to_arrow_table()
    names = {f"g{i}": name for i, (name, _, _) in enumerate(dims)}
    result = result.rename_columns([names.get(c, c) for c in result.column_names])
    rows = [{k: _json_value(v) for k, v in row.items()} for row in result.to_pylist()]
    return {
        "window": parsed_window.as_json(),
        "latest_day": latest.isoformat() if latest else None,
        "aggregate": [name for name, _, _ in dims],
        "idle_policy": policy,
        "warehouse_idle_policy": built_policy,
        "currency": "USD",
        "data": rows,
        "totals": totals(rows),
    }


ADDITIVE = (
    "requests",
    "requests_with_caveat",
    "input_tokens",
    "output_tokens",
    "energy_kwh",
    "facility_energy_kwh",
    "emissions_kg_co2e",
    "energy_cost_usd",
    "capex_cost_usd",
    "overhead_cost_usd",
    "direct_cost_usd",
    "idle_cost_usd",
    "total_cost_usd",
)


def totals(rows: list[dict]) -> dict:
    """The sums of the additive measures over every row (unallocated idle included), and the window's ratios."""
    out = {m: sum(r[m] or 0 for r in rows) for m in ADDITIVE}
    out["cost_per_1m_output_tokens_usd"] = (
        1e6 * out["total_cost_usd"] / out["output_tokens"] if out["output_tokens"] else None
    )
    out["j_per_output_token"] = 3.6e6 * out["energy_kwh"] / out["output_tokens"] if out["output_tokens"] else None
    return out
