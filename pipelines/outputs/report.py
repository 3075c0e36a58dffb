"""A self-contained HTML cost report: data embedded as JSON, charts drawn as SVG by a small inline script.

Nothing is fetched at view time (no CDN, no fonts, no images), so the file works offline and can be mailed. The
script marks each chart it drew (``data-drawn``) and counts errors on ``<body data-errors>``, which the tests read
from a headless browser.

Pure DuckDB and Python; imports no Dagster.
"""

from __future__ import annotations

import html
import json
from datetime import date
from pathlib import Path

import duckdb

from pipelines.warehouse.connection import table_exists


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    rel = con.execute(sql, list(params))
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r)) for r in rel.fetchall()]


class EmptyPeriod(ValueError):
    """The period asked for has no requests in the warehouse; the message names the days that do."""


def data_days(con: duckdb.DuckDBPyConnection) -> list[date]:
    """The days agg_daily_model_cost has requests for."""
    return [
        d
        for (d,) in con.execute(
            "SELECT DISTINCT request_date FROM agg_daily_model_cost WHERE requests > 0 ORDER BY 1"
        ).fetchall()
    ]


def check_period(con: duckdb.DuckDBPyConnection, start: date, end: date) -> None:
    """Raise EmptyPeriod when no day of [start, end] has requests."""
    days = data_days(con)
    if any(start <= d <= end for d in days):
        return
    if not days:
        have = "the warehouse has no requests at all"
    elif len(days) <= 4:
        have = "data exists for " + ", ".join(d.isoformat() for d in days)
    else:
        have = f"data exists for {len(days)} days from {days[0]} to {days[-1]}"
    raise EmptyPeriod(f"no requests from {start} to {end}; {have}")


# each technique against its baseline model over the period, from the daily technique mart (the technique_comparison
# mart, with its bootstrap intervals, covers the whole history: `infercost compare`)
PERIOD_COMPARISON_SQL = """
    WITH measures AS (
        SELECT family, model, technique, baseline_model, sum(requests) AS requests,
               sum(requests_inventory_missing) AS requests_inventory_missing,
               1e6 * sum(fully_loaded_cost_usd) / nullif(sum(completion_tokens), 0) AS cost_per_1m_output_tokens_usd,
               3.6e6 * sum(energy_kwh) / nullif(sum(completion_tokens), 0) AS j_per_output_token
        FROM agg_daily_technique_cost WHERE request_date BETWEEN ? AND ? GROUP BY ALL)
    SELECT m.family, m.model, m.technique, m.baseline_model, m.requests, m.requests_inventory_missing,
           m.cost_per_1m_output_tokens_usd, b.cost_per_1m_output_tokens_usd AS baseline_cost_per_1m_output_tokens_usd,
           100 * (m.cost_per_1m_output_tokens_usd / b.cost_per_1m_output_tokens_usd - 1) AS cost_change_pct,
           m.j_per_output_token, 100 * (m.j_per_output_token / b.j_per_output_token - 1) AS energy_change_pct
    FROM measures m LEFT JOIN measures b ON b.model = m.baseline_model AND b.technique = 'baseline'
    WHERE m.technique <> 'baseline' ORDER BY m.family, m.model, m.technique"""
COMPARISON_COLUMNS = [
    "model",
    "technique",
    "baseline_model",
    "requests",
    "requests_inventory_missing",
    "cost_per_1m_output_tokens_usd",
    "baseline_cost_per_1m_output_tokens_usd",
    "cost_change_pct",
    "j_per_output_token",
    "energy_change_pct",
]


# each section's rows for the period [?, ?]
_SECTION_SQL = {
    "cost_by_model_day": """
        SELECT request_date::VARCHAR AS x, model AS series, cost_per_1m_output_tokens_usd AS y
        FROM agg_daily_model_cost WHERE request_date BETWEEN ? AND ? ORDER BY 1, 2""",
    "cost_by_technique": """
        SELECT model || ' / ' || technique AS x, sum(fully_loaded_cost_usd) * 1e6 / sum(completion_tokens) AS y
        FROM agg_daily_technique_cost WHERE request_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 1""",
    "j_per_token": """
        SELECT model || ' / ' || technique AS x, sum(energy_kwh) * 3.6e6 / sum(completion_tokens) AS y
        FROM agg_daily_technique_cost WHERE request_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 1""",
    "idle_share": """
        SELECT device_type AS x, sum(idle_energy_kwh) / nullif(sum(metered_energy_kwh), 0) AS y
        FROM agg_idle_cost WHERE partition_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 1""",
    "cost_split": """
        SELECT model AS x, sum(energy_cost_usd) AS energy, sum(capex_cost_usd) AS capex,
        sum(overhead_cost_usd) AS overhead, sum(idle_cost_allocated_usd) AS idle
        FROM agg_daily_model_cost WHERE request_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 1""",
    "price_vs_cost": """
        SELECT strftime(bucket_start, '%Y-%m-%d %H:%M') AS x, region AS series,
        any_value(price_usd_per_mwh) AS price, sum(energy_cost_usd) AS energy_cost
        FROM agg_region_bucket_cost WHERE partition_date BETWEEN ? AND ? GROUP BY ALL ORDER BY 1, 2""",
    "anomalies": """
        SELECT day::VARCHAR AS day, dimension, series_key, metric, expected, observed, effect_pct, likely_cause
        FROM cost_anomalies WHERE day BETWEEN ? AND ? ORDER BY day DESC, abs(score) DESC LIMIT 20""",
    "totals": """
        SELECT count(*) AS requests, sum(fully_loaded_cost_usd) AS cost_usd, sum(energy_j) / 3.6e6 AS energy_kwh,
        sum(completion_tokens) AS output_tokens, sum(emissions_g_co2e) / 1000 AS emissions_kg
        FROM fct_request_cost WHERE request_date BETWEEN ? AND ?""",
}


def report_data(con: duckdb.DuckDBPyConnection, start: date, end: date) -> dict:
    """Every section's data for [start, end]; EmptyPeriod when no day of it has requests."""
    check_period(con, start, end)
    p = [start, end]
    data = {"period": [start.isoformat(), end.isoformat()]}
    for name, sql in _SECTION_SQL.items():
        if name == "anomalies" and not table_exists(con, "cost_anomalies"):
            data[name] = []
        else:
            data[name] = _rows(con, sql, p)
    data["comparison"] = _rows(con, PERIOD_COMPARISON_SQL, p)
    data["totals"] = data["totals"][0]
    return data


_SCRIPT = r"""
(function () {
  var errors = 0;
  window.addEventListener('error', function () { errors += 1; document.body.dataset.errors = errors; });
  document.body.dataset.errors = 0;
  var DATA = JSON.parse(document.getElementById('data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#2f6db3', '#d9822b', '#3a9d5d', '#b8434b', '#7b5ea7', '#8c6d31', '#2aa1a8', '#c85ca6'];
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function text(parent, x, y, s, anchor) {
    var t = el('text', {x: x, y: y, 'font-size': 11, 'text-anchor': anchor || 'start'}, parent);
    t.textContent = s;
    return t;
  }
  function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3); }
  function frame(id, ymax) {
    var svg = document.getElementById(id);
    var W = 640, H = 300, L = 110, B = 200, T = 20;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    el('line', {x1: L, y1: B, x2: W - 10, y2: B, stroke: '#999'}, svg);
    el('line', {x1: L, y1: T, x2: L, y2: B, stroke: '#999'}, svg);
    text(svg, L - 4, T + 4, fmt(ymax), 'end');
    text(svg, L - 4, B, '0', 'end');
    return {svg: svg, L: L, B: B, T: T, W: W - 10, y: function (v) { return B - (B - T) * v / (ymax || 1); }};
  }
  function bars(id, rows, keys) {
    keys = keys || ['y'];
    var totals = rows.map(function (r) { return keys.reduce(function (s, k) { return s + Math.max(r[k] || 0, 0); }, 0); });
    var f = frame(id, Math.max.apply(null, totals.concat([0])));
    var w = (f.W - f.L) / Math.max(rows.length, 1);
    rows.forEach(function (r, i) {
      var base = f.B;
      keys.forEach(function (k, j) {
        var v = Math.max(r[k] || 0, 0), h = f.B - f.y(v);
        el('rect', {x: f.L + i * w + 4, y: base - h, width: Math.max(w - 8, 1), height: h, fill: COLORS[j % COLORS.length]}, f.svg)
          .appendChild(document.createElementNS(NS, 'title')).textContent = r.x + ' ' + k + ': ' + fmt(r[k] || 0);
        base -= h;
      });
      var label = text(f.svg, f.L + i * w + w / 2, f.B + 12, String(r.x).slice(0, 44), 'end');
      label.setAttribute('font-size', 9);
      label.setAttribute('transform', 'rotate(-30 ' + (f.L + i * w + w / 2) + ' ' + (f.B + 12) + ')');
    });
    if (keys.length > 1) { keys.forEach(function (k, j) { text(f.svg, f.W - 80, f.T + 12 * j, '■ ' + k).setAttribute('fill', COLORS[j]); }); }
    f.svg.dataset.drawn = rows.length;
  }
  function lines(id, rows, key) {
    var xs = [], series = {};
    rows.forEach(function (r) {
      if (xs.indexOf(r.x) < 0) { xs.push(r.x); }
      (series[r.series] = series[r.series] || {})[r.x] = r[key];
    });
    var ymax = Math.max.apply(null, rows.map(function (r) { return r[key] || 0; }).concat([0]));
    var f = frame(id, ymax);
    var step = (f.W - f.L) / Math.max(xs.length - 1, 1);
    Object.keys(series).forEach(function (name, j) {
      var pts = xs.filter(function (x) { return series[name][x] != null; }).map(function (x) {
        return (f.L + xs.indexOf(x) * step) + ',' + f.y(series[name][x]);
      });
      el('polyline', {points: pts.join(' '), fill: 'none', stroke: COLORS[j % COLORS.length], 'stroke-width': 2}, f.svg);
      pts.forEach(function (p) { var c = p.split(','); el('circle', {cx: c[0], cy: c[1], r: 2.5, fill: COLORS[j % COLORS.length]}, f.svg); });
      text(f.svg, f.W - 150, f.T + 12 * j - 10, '— ' + name).setAttribute('fill', COLORS[j % COLORS.length]);
    });
    text(f.svg, f.L, f.B + 14, xs[0] || '');
    text(f.svg, f.W, f.B + 14, xs[xs.length - 1] || '', 'end');
    f.svg.dataset.drawn = Object.keys(series).length;
  }
  var charts = [
    function () { lines('cost_by_model_day', DATA.cost_by_model_day, 'y'); },
    function () { bars('cost_by_technique', DATA.cost_by_technique); },
    function () { bars('j_per_token', DATA.j_per_token); },
    function () { bars('idle_share', DATA.idle_share); },
    function () { bars('cost_split', DATA.cost_split, ['energy', 'capex', 'overhead', 'idle']); },
    function () { lines('price_curve', DATA.price_vs_cost, 'price'); },
    function () { lines('energy_cost_curve', DATA.price_vs_cost, 'energy_cost'); }
  ];
  charts.forEach(function (draw) { try { draw(); } catch (e) { errors += 1; document.body.dataset.errors = errors; } });
  document.body.dataset.charts = document.querySelectorAll('svg[data-drawn]').length;
})();
"""


def render(data: dict) -> str:
    t = data["totals"]

    def table(rows, cols):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows
        )
        return f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>None.</p>"

    def chart(id_, title, note=""):
        return f'<section><h2>{title}</h2><p class="note">{note}</p><svg id="{id_}" role="img"></svg></section>'

    payload = json.dumps(data, default=str).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>infercost report {data["period"][0]} .. {data["period"][1]}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 720px; color: #222; }}
svg {{ width: 100%; height: auto; border: 1px solid #eee; }} .note {{ color: #666; font-size: 0.9em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }} td, th {{ border: 1px solid #ddd; padding: 2px 6px; }}
</style></head>
<body>
<h1>Inference cost, {data["period"][0]} .. {data["period"][1]}</h1>
<p>{_cell(t["requests"])} requests, {_cell(t["output_tokens"])} output tokens, ${_cell(t["cost_usd"])} fully loaded,
{_cell(t["energy_kwh"])} kWh of device energy, {_cell(t["emissions_kg"])} kgCO2e.</p>
{
        chart(
            "cost_by_model_day",
            "Cost per 1M output tokens by model, per day",
            "USD, fully loaded (energy, capex, overhead, idle share)",
        )
    }
{chart("cost_by_technique", "Cost per 1M output tokens by model and technique", "USD over the period")}
{chart("j_per_token", "Energy per output token by model and technique", "J per output token")}
{chart("idle_share", "Idle share of metered energy by device type", "0 to 1")}
{chart("cost_split", "Cost split by model", "USD: energy, capex, overhead, allocated idle")}
{chart("price_curve", "Electricity price by region, per hour", "USD/MWh")}
{chart("energy_cost_curve", "Energy cost of requests by region, per hour", "USD, beside the price curve above")}
<section><h2>Techniques against their baselines</h2><p class="note">Over {data["period"][0]} .. {data["period"][1]},
from the daily technique costs (negative change = cheaper; USD per 1M output tokens, J per output token; a request
without its device's inventory row has a partial cost). Bootstrap intervals over the whole history:
<code>infercost compare</code>.</p>{table(data["comparison"], COMPARISON_COLUMNS)}</section>
<section><h2>Latest anomalies</h2>{
        table(
            data["anomalies"],
            ["day", "dimension", "series_key", "metric", "expected", "observed", "effect_pct", "likely_cause"],
        )
    }</section>
<script type="application/json" id="data">{payload}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_report(con: duckdb.DuckDBPyConnection, start: date, end: date, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report_data(con, start, end)))
    return out
