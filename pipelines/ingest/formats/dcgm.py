"""Telemetry from the DCGM exporter: Prometheus text scrapes and Prometheus range-query exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa

from pipelines.ingest.device_power import power_draw_window_sql
from pipelines.ingest.formats.common import (
    ParseContext,
    check_options,
    columns_sql,
    epoch_sql,
    finish,
    register,
    sql_str,
    strip_bom,
)
from pipelines.warehouse.contracts import load_contract

# DCGM exporter field -> canonical telemetry column and the factor into its unit
_DCGM_FIELDS = {
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0),  # W; NVML power usage, read like nvidia-smi's power.draw
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("energy_counter_j", 1e-3),  # mJ since the driver loaded
    "DCGM_FI_DEV_GPU_UTIL": ("util_pct", 1.0),  # %
    "DCGM_FI_DEV_FB_USED": ("mem_used_mib", 1.0),  # MiB
}


def _dcgm_samples(ctx: ParseContext, long_table: str, window: str | None) -> str:
    """Pivot a long table of DCGM series points (source_file, source_line, raw_text, pre_reason, metric, uuid, gpu,
    host, ts, value_raw) into one telemetry row per device and timestamp; a point with a problem stays a row of
    its own, to be quarantined with its reason."""
    value = {col: f"max(CASE WHEN metric = {sql_str(m)} THEN value_raw END)" for m, (col, _) in _DCGM_FIELDS.items()}
    factor = {col: f for _, (col, f) in _DCGM_FIELDS.items()}
    window_sql = (
        str(float(window))
        if window is not None
        else f"coalesce(inv.power_draw_window_s, {power_draw_window_sql('inv.device_type')})"
    )

    # the kernel takes energy from counter deltas where they exist, else from POWER_USAGE
    source = (
        "CASE WHEN TRY_CAST(g.energy_counter_j__raw AS DOUBLE) IS NOT NULL "
        "THEN 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION' ELSE 'DCGM_FI_DEV_POWER_USAGE' END"
    )
    raw = {
        "device_id": "g.device",
        "ts": "CAST(g.ts AS VARCHAR)",
        "power_window_s": f"{window_sql}::VARCHAR",
        "host": "g.host",
        "energy_source": source,
        **{c: f"g.{c}__raw" for c in value},
    }
    typed = {
        "device_id": "g.device",
        "ts": "g.ts",
        "power_window_s": window_sql,
        **{c: f"TRY_CAST(g.{c}__raw AS DOUBLE) * {factor[c]}" for c in value},
    }

    return f"""
        WITH points AS (
            SELECT *, coalesce(nullif(uuid, ''), host || ':' || gpu) AS device FROM {long_table}
        ),
        grouped AS (
            SELECT min(source_file) AS source_file, min(source_line) AS source_line,
                   string_agg(raw_text, chr(10) ORDER BY source_line) AS raw_text, NULL AS pre_reason,
                   device, ts, any_value(host) AS host,
                   CASE WHEN count(*) > count(DISTINCT metric) THEN 'series repeated at one timestamp' END AS dup,
                   {", ".join(f"{v} AS {c}__raw" for c, v in value.items())}
            FROM points WHERE pre_reason IS NULL GROUP BY device, ts
            UNION ALL BY NAME
            SELECT source_file, source_line, raw_text, pre_reason, device, ts, host FROM points
            WHERE pre_reason IS NOT NULL
        )
        SELECT g.source_file, g.source_line, g.raw_text, coalesce(g.pre_reason, g.dup) AS pre_reason,
            {columns_sql(load_contract("telemetry"), raw, typed)}
        FROM grouped g LEFT JOIN raw_inventory inv ON inv.device_id = g.device
    """


def _label_sql(labels: str, *names: str) -> str:
    """The first of the named Prometheus labels present in a label set text, or NULL."""
    return (
        "coalesce("
        + ", ".join(f"nullif(regexp_extract({labels}, '(?:^|,)\\s*{n}=\"([^\"]*)\"', 1), '')" for n in names)
        + ")"
    )


def _scrape_time_from_name(path: Path) -> str | None:
    """An ISO time (2026-11-02T10-00-05Z, 20261102T100005Z) or epoch seconds (1793613605) in a file name."""
    m = re.search(r"(\d{4})-?(\d{2})-?(\d{2})[T_](\d{2})[:-]?(\d{2})[:-]?(\d{2})(\.\d+)?", path.name)
    if m:
        y, mo, d, h, mi, s, frac = m.groups()
        return f"{y}-{mo}-{d} {h}:{mi}:{s}{frac or ''}+00"
    m = re.search(r"(?<!\d)(1\d{9})(?:\.\d+)?(?!\d)", path.name)
    return f"epoch:{m.group(1)}" if m else None


class DcgmPrometheusText:
    """DCGM exporter scrapes in the Prometheus text exposition format (``curl host:9400/metrics``), one or many
    scrapes a file. Series read: DCGM_FI_DEV_POWER_USAGE (W), DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ, the
    counter), DCGM_FI_DEV_GPU_UTIL (%), DCGM_FI_DEV_FB_USED (MiB); other series and # comments are not telemetry
    and are passed over, as unused columns of a CSV are. Labels: UUID names the device (else
    ``<Hostname>:<gpu>``); Hostname or hostname the host; pod, namespace and container are not needed.

    The time of a point: its own timestamp (ms, the exposition format's optional last field), else a time in the
    file name (``dcgm_2026-11-02T10-00-05Z.prom``, or epoch seconds), else the ``scraped_at`` option (ISO). The
    points of one device at one time make one sample. Power usage is read like nvidia-smi's power.draw, by device
    type, unless the ``power_draw_window_s`` option says.
    """

    feed = "telemetry"  # the feed whose contract its rows meet
    option_names = ("host", "scraped_at", "power_draw_window_s")

    patterns = ("*.prom", "*.prom.gz", "*.txt", "*.txt.gz", "*.metrics")

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        lines = strip_bom(lines)
        scraped = ctx.options.get("scraped_at") or _scrape_time_from_name(path)
        if scraped and scraped.startswith("epoch:"):
            default_ts = f"to_timestamp({int(scraped[6:])})"
        elif scraped:
            default_ts = f"TRY_CAST({sql_str(scraped)} AS TIMESTAMPTZ)"
        else:
            default_ts = "NULL::TIMESTAMPTZ"
        src = register(ctx, lines)
        known = ", ".join(sql_str(m) for m in _DCGM_FIELDS)
        pattern = r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{(.*)\})?\s+(\S+)(\s+(-?\d+))?\s*$"
        long_name = f"_dcgm_{abs(hash(str(path))) % 10**9}"
        ctx.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {long_name} AS
            WITH l AS (
                SELECT *, regexp_extract(raw_text, {sql_str(pattern)}, ['metric', 'braces', 'labels', 'value', 'sp', 'ts_ms'])
                    AS m
                FROM {src} WHERE NOT starts_with(ltrim(raw_text), '#')
            ),
            points AS (
                SELECT source_file, source_line, raw_text, nullif(m.metric, '') AS metric, m.labels AS labels,
                       nullif(m.value, '') AS value_raw,
                       CASE WHEN nullif(m.ts_ms, '') IS NOT NULL
                            THEN to_timestamp(0) + to_microseconds(TRY_CAST(TRY_CAST(m.ts_ms AS DOUBLE) * 1000 AS BIGINT))
                            ELSE {default_ts} END AS ts
                FROM l
            )
            SELECT source_file, source_line, raw_text, metric, value_raw, ts,
                   {_label_sql("labels", "UUID", "uuid")} AS uuid, {_label_sql("labels", "gpu")} AS gpu,
                   coalesce({_label_sql("labels", "Hostname", "hostname")}, {sql_str(ctx.options.get("host", ""))})
                       AS host,
                   CASE WHEN metric IS NULL THEN 'not a Prometheus exposition line'
                        WHEN ts IS NULL THEN 'no time: the point has no timestamp, the file name has none, '
                                             || 'and no scraped_at option was given'
                        WHEN {_label_sql("labels", "UUID", "uuid")} IS NULL
                             AND {_label_sql("labels", "gpu")} IS NULL THEN 'no UUID or gpu label'
                   END AS pre_reason
            FROM points WHERE metric IS NULL OR metric IN ({known})
        """)
        return finish(
            ctx, load_contract("telemetry"), _dcgm_samples(ctx, long_name, ctx.options.get("power_draw_window_s"))
        )


def _range_points(text: str, first_line: int, host: str | None) -> dict[str, list]:
    """The points of a range-query answer as columns (source_line, raw_text, metric, value_raw, ts_raw, uuid, gpu,
    host, pre_reason), one per [time, value] pair of a DCGM series; a file that is no such answer is one row with
    its reason (the other files of the day still load)."""
    rows = {
        "source_line": [],
        "raw_text": [],
        "metric": [],
        "value_raw": [],
        "ts_raw": [],
        "uuid": [],
        "gpu": [],
        "host": [],
        "pre_reason": [],
    }

    def add(raw, metric=None, value=None, ts=None, labels=None, problem=None):
        labels = labels or {}
        for k, v in (
            ("source_line", first_line),
            ("raw_text", raw),
            ("metric", metric),
            ("value_raw", None if value is None else str(value)),
            ("ts_raw", None if ts is None else str(ts)),
            ("uuid", labels.get("UUID") or labels.get("uuid")),
            ("gpu", labels.get("gpu")),
            ("host", labels.get("Hostname") or labels.get("hostname") or host),
            ("pre_reason", problem),
        ):
            rows[k].append(v)

    try:
        doc = json.loads(text) if text.strip() else None
    except ValueError as exc:
        add(text[:2000], problem=f"not a JSON document ({exc})")
        return rows
    except RecursionError:
        add(text[:2000], problem="not a JSON document (nested too deep)")
        return rows
    if doc is None:
        return rows
    result = (doc.get("data") or {}).get("result") if isinstance(doc, dict) else None
    if not isinstance(result, list):
        add(text[:2000], problem="not a Prometheus query answer (no data.result list)")
        return rows
    for series in result:
        labels = series.get("metric") or {} if isinstance(series, dict) else {}
        metric = labels.get("__name__")
        if metric not in _DCGM_FIELDS:
            continue  # a series infercost does not read, like an unused column
        points = series.get("values") or ([series["value"]] if series.get("value") else [])
        for p in points:
            raw = json.dumps({"metric": labels, "value": p}, separators=(",", ":"))
            if not (isinstance(p, list) and len(p) == 2):
                add(raw, metric, labels=labels, problem="a point is not [time, value]")
            elif not (labels.get("UUID") or labels.get("uuid") or labels.get("gpu")):
                add(raw, metric, p[1], p[0], labels, "no UUID or gpu label")
            else:
                add(raw, metric, p[1], p[0], labels)
    return rows


class PrometheusRangeJson:
    """Prometheus range-query exports (``/api/v1/query_range`` answers, ``resultType: matrix``) of the DCGM series
    above, one JSON document a file (pretty-printed or not). Each [unix seconds, "value"] pair is a point; a
    device's points at one time across series make one sample. Export the series of one device set in one file
    (e.g. ``{__name__=~"DCGM_FI_DEV_POWER_USAGE|DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"}``) so that they pair up."""

    feed = "telemetry"  # the feed whose contract its rows meet
    option_names = ("host", "power_draw_window_s")

    patterns = ("*.json", "*.json.gz")

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        lines = strip_bom(lines)
        rows = _range_points(
            "\n".join(lines["raw_text"].to_pylist()),
            lines["source_line"][0].as_py() if lines.num_rows else 1,
            ctx.options.get("host"),
        )
        n = len(rows["raw_text"])
        table = pa.table(
            {
                "source_file": pa.array([str(path)] * n, pa.string()),
                **{k: pa.array(v, pa.int64() if k == "source_line" else pa.string()) for k, v in rows.items()},
            }
        )
        src = register(ctx, table)
        long_name = f"_promjson_{abs(hash(str(path))) % 10**9}"
        ctx.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {long_name} AS
            SELECT * EXCLUDE (ts_raw, pre_reason), {epoch_sql("ts_raw", "s")} AS ts,
                   coalesce(pre_reason, CASE WHEN {epoch_sql("ts_raw", "s")} IS NULL
                                             THEN 'unparseable time: ' || coalesce(ts_raw, 'null') END) AS pre_reason
            FROM {src}
        """)
        return finish(
            ctx, load_contract("telemetry"), _dcgm_samples(ctx, long_name, ctx.options.get("power_draw_window_s"))
        )
