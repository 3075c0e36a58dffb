"""A self-contained HTML cost report: Plotly charts with plotly.js inlined, so nothing is fetched at view time (no
CDN, no fonts, no images) and the file works offline and can be mailed.

The numbers come from report_data (one period, every section), the figures from report_charts. A small script draws
each figure and marks its div with the number of marks drawn (``data-marks``) and the plot area's place on the page
(``data-plot-rect``); ``<body data-charts data-charts-expected data-errors>`` sum them up. The tests read those from
a headless browser and look for coloured pixels inside each plot area on a screenshot.

Pure DuckDB and Python; imports no Dagster.
"""

from __future__ import annotations

import html
import json
from datetime import date
from pathlib import Path

import duckdb
from plotly.offline import get_plotlyjs

from pipelines.outputs import report_charts as charts
from pipelines.outputs.report_data import EmptyPeriod, check_period, data_days, report_data

__all__ = ["EmptyPeriod", "check_period", "data_days", "figures", "render", "report_data", "write_report"]

_DRIVER = r"""
(function () {
  var errors = 0;
  function fail() { errors += 1; document.body.dataset.errors = errors; }
  window.addEventListener('error', fail);
  document.body.dataset.errors = 0;
  var specs = document.querySelectorAll('script[type="application/json"][data-chart]');
  document.body.dataset.chartsExpected = specs.length;
  var drawn = [];
  specs.forEach(function (spec) {
    var div = document.getElementById(spec.dataset.chart);
    try {
      var fig = JSON.parse(spec.textContent);
      drawn.push(Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false, responsive: false}).then(function () {
        var marks = Array.prototype.filter.call(div.querySelectorAll('.cartesianlayer .trace path'), function (p) {
          var d = p.getAttribute('d') || '';
          return d.length > 4 && d !== 'M0,0Z';
        }).length;
        var size = div._fullLayout._size, box = div.getBoundingClientRect();
        div.dataset.marks = marks;
        div.dataset.plotRect = [box.left + window.scrollX + size.l, box.top + window.scrollY + size.t,
                                size.w, size.h].map(Math.round).join(',');
      }));
    } catch (e) { fail(); }
  });
  Promise.all(drawn).then(function () {
    document.body.dataset.charts = document.querySelectorAll('div[data-marks]:not([data-marks="0"])').length;
  }, fail);
})();
"""


def figures(data: dict) -> dict[str, dict | None]:
    """Each chart's Plotly figure (None where its section has no rows), by the id of its place in the page."""
    one_day = data["period"][0] == data["period"][1]
    techniques = data["technique_cost"]
    return {
        "tenant_cost": charts.stacked_bars(data["tenant_cost"], "tenant", charts.SPLIT, "USD"),
        "cost_by_model_day": charts.series(
            data["cost_by_model_day"], "day", "usd_per_1m_output_tokens", "model", "USD per 1M output tokens", "day"
        ),
        "comparison": charts.intervals(data["comparison"]),
        "technique_cost": charts.bars(
            techniques, "model+technique", "usd_per_1m_output_tokens", "USD per 1M output tokens"
        ),
        "j_per_token": charts.bars(techniques, "model+technique", "j_per_output_token", "J per output token"),
        "cost_split": charts.stacked_bars(data["cost_split"], "model", charts.SPLIT, "USD"),
        "idle_share": charts.bars(
            data["idle_share"], "device_type", "idle_energy_share", "share of metered energy", ".1%"
        ),
        "coverage": charts.series(
            data["coverage"],
            "day",
            "coverage",
            "device_type",
            "share of the day covered by telemetry",
            "day",
            ".1%",
            share=True,
        ),
        "caveats": charts.bars(data["caveats"], "caveat", "requests", "requests", ",d"),
        "metered_time": charts.stacked_bars(
            data["metered_time"],
            "model",
            [("metered_device_s", "metered"), ("unmetered_device_s", "in a telemetry gap")],
            "request device-seconds",
        ),
        "uncertainty": charts.uncertainty(data["uncertainty"]),
        "prices": charts.series(
            data["prices"], "bucket_start", "price_usd_per_mwh", "region", "USD/MWh", "hour (UTC)" if one_day else "UTC"
        ),
        "energy_cost": charts.series(
            data["prices"], "bucket_start", "energy_cost_usd", "region", "USD of request energy per bucket", "UTC"
        ),
        "anomalies": charts.anomalies(data["anomalies"]),
    }


# (heading, [(chart id, note shown above it, what the page says when the section has no rows)], table)
_SECTIONS = [
    (
        "Cost by tenant (chargeback)",
        [
            (
                "tenant_cost",
                "Fully loaded USD: energy, capex, overhead and the allocated idle share, per tenant.",
                "No requests.",
            )
        ],
        "tenants",
    ),
    (
        "Cost per 1M output tokens by model",
        [("cost_by_model_day", "USD, fully loaded, per UTC day.", "No costs.")],
        None,
    ),
    (
        "Techniques against their baselines",
        [
            (
                "comparison",
                "Change of fully loaded cost per 1M output tokens against "
                "the baseline model's untreated requests in this period; bars are 95 % Poisson-bootstrap intervals; negative "
                "= cheaper.",
                "No technique ran beside its baseline in this period.",
            )
        ],
        "summaries",
    ),
    (
        "Cost and energy by model and technique",
        [
            ("technique_cost", "USD per 1M output tokens over the period.", "No costs."),
            ("j_per_token", "Device energy per output token.", "No energy measured."),
        ],
        None,
    ),
    (
        "Cost split",
        [
            ("cost_split", "USD by model: energy, capex, overhead, allocated idle.", "No costs."),
            ("idle_share", "Idle energy as a share of metered energy, by device type.", "No idle data."),
        ],
        None,
    ),
    (
        "Data completeness",
        [
            (
                "coverage",
                "Share of each day the devices' telemetry covered, by device type (time no sample covers is "
                "never filled: energy in it is unknown).",
                "No telemetry coverage rows.",
            ),
            ("caveats", "Requests whose cost carries a caveat, by kind.", "No request carries a caveat."),
            (
                "metered_time",
                "Request device-seconds with telemetry beside those in a telemetry gap, by model.",
                "No request device time.",
            ),
            (
                "uncertainty",
                "Energy by model with its attribution uncertainty (energy_uncertainty_j).",
                "This warehouse has no per-request energy uncertainty yet.",
            ),
        ],
        None,
    ),
    (
        "Electricity prices and energy cost",
        [
            ("prices", "Price per region and bucket, USD/MWh; below zero is a negative price.", "No prices."),
            ("energy_cost", "Energy cost of the requests per region and bucket, USD.", "No energy cost."),
        ],
        None,
    ),
    (
        "Anomalies",
        [("anomalies", "Observed against expected, per anomaly found in the period.", "No anomalies in this period.")],
        "anomalies",
    ),
]

_TABLES = {
    "tenants": ("tenant_cost", ["tenant", "requests", "output_tokens", "energy_kwh", "energy_usd", "capex_usd",
                                "overhead_usd", "idle_usd", "cost_usd", "requests_with_caveat"]),
    "anomalies": ("anomalies", ["day", "dimension", "series_key", "metric", "expected", "observed", "effect_pct",
                                "likely_cause"]),
}  # fmt: skip


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(rows: list[dict], cols: list[str]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _json(obj) -> str:
    return json.dumps(obj, default=str).replace("</", "<\\/")


def render(data: dict) -> str:
    figs, t, (start, end) = figures(data), data["totals"], data["period"]
    parts = []
    for heading, places, table in _SECTIONS:
        parts.append(f"<section><h2>{html.escape(heading)}</h2>")
        for chart_id, note, empty in places:
            parts.append(f'<p class="note">{html.escape(note)}</p>')
            if figs[chart_id] is None:
                parts.append(f'<p class="empty" id="{chart_id}">{html.escape(empty)}</p>')
            else:
                parts.append(f'<div class="chart" id="{chart_id}"></div>')
                parts.append(
                    f'<script type="application/json" data-chart="{chart_id}">{_json(figs[chart_id])}</script>'
                )
        if table == "summaries":
            lines = "".join(f"<li>{html.escape(r['summary'])}</li>" for r in data["comparison"] if r.get("summary"))
            parts.append(f'<ul class="summaries">{lines}</ul>' if lines else "")
        if table in _TABLES:
            key, cols = _TABLES[table]
            parts.append(_table(data[key], cols))
        parts.append("</section>")
    caveat_share = t["requests_with_caveat"] / t["requests"] if t["requests"] else 0
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>infercost report {start} .. {end}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }}
.note {{ color: #555; font-size: 0.9em; margin-bottom: 0.2em; }} .empty {{ color: #8a5a00; font-style: italic; }}
.chart {{ width: 1000px; }} .scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 0.8em; }} td, th {{ border: 1px solid #ddd; padding: 2px 6px; }}
</style></head>
<body>
<h1>Inference cost, {start} .. {end}</h1>
<p>Over {start} .. {end} (UTC days): {_cell(t["requests"])} requests, {_cell(t["output_tokens"])} output tokens,
${_cell(t["cost_usd"])} fully loaded, {_cell(t["energy_kwh"])} kWh of device energy, {_cell(t["emissions_kg"])} kg CO2e;
{_cell(t["requests_with_caveat"])} requests ({caveat_share:.1%}) carry a cost caveat (see Data completeness).</p>
{"".join(parts)}
<script type="application/json" id="data">{_json(data)}</script>
<script>{get_plotlyjs()}</script>
<script>{_DRIVER}</script>
</body></html>
"""


def write_report(con: duckdb.DuckDBPyConnection, start: date, end: date, out: Path) -> Path:
    out = Path(out)
    data = report_data(con, start, end)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data))
    return out
