"""The report's charts as Plotly figures (plain dicts, drawn in the page by the inlined plotly.js).

Rules every chart follows: axis titles carry units; values show on hover; legends sit above the plot, never over
it; zero is drawn, so negative values (negative power prices) read as such; a period of one day draws bars, not a
line of one point; more series than one panel can tell apart become small multiples sharing their axes. A builder
returns None when its section has no rows, and the page says so in words instead of drawing an empty chart.

Imports plotly and nothing of Dagster.
"""

from __future__ import annotations

import math

from plotly import graph_objects as go
from plotly.subplots import make_subplots

COLORS = ["#2f6db3", "#d9822b", "#3a9d5d", "#b8434b", "#7b5ea7", "#8c6d31", "#2aa1a8", "#c85ca6"]
SPLIT = [("energy_usd", "energy"), ("capex_usd", "capex"), ("overhead_usd", "overhead"), ("idle_usd", "idle share")]
# more series than this in one panel become small multiples
MAX_SERIES_PER_PANEL = 6
PANEL_COLUMNS = 3


def _layout(fig: go.Figure, height: int, legend: bool = True) -> dict:
    fig.update_layout(
        height=height,
        margin={"l": 70, "r": 20, "t": 60 if legend else 30, "b": 60},
        template="plotly_white",
        colorway=COLORS,
        showlegend=legend,
        # above the plot area, left to right: it never covers a mark
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        hovermode="closest",
        font={"family": "sans-serif", "size": 12},
    )
    fig.update_xaxes(showline=True, linecolor="#999", ticks="outside", zeroline=True, zerolinecolor="#666")
    fig.update_yaxes(showline=True, linecolor="#999", ticks="outside", zeroline=True, zerolinecolor="#666")
    return fig.to_plotly_json()


def _bar_height(n: int, panels: int = 1) -> int:
    return max(220, 90 + 26 * n * panels)


def stacked_bars(rows: list[dict], label: str, parts: list[tuple[str, str]], unit: str) -> dict | None:
    """One horizontal bar per row, stacked by parts; negative parts stack to the left of zero."""
    if not rows:
        return None
    fig = go.Figure()
    names = [str(r[label]) for r in rows]
    for key, name in parts:
        fig.add_bar(
            y=names,
            x=[r.get(key) or 0 for r in rows],
            name=name,
            orientation="h",
            hovertemplate=f"%{{y}}<br>{name}: %{{x:,.4g}} {unit}<extra></extra>",
        )
    fig.update_layout(barmode="relative")
    fig.update_xaxes(title_text=unit)
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(fig, _bar_height(len(rows)))


def bars(rows: list[dict], label: str, value: str, unit: str, fmt: str = ",.4g") -> dict | None:
    """One horizontal bar per row."""
    rows = [r for r in rows if r.get(value) is not None]
    if not rows:
        return None
    fig = go.Figure()
    names = [" / ".join(str(r[k]) for k in label.split("+")) for r in rows]
    fig.add_bar(
        y=names,
        x=[r[value] for r in rows],
        orientation="h",
        marker_color=COLORS[0],
        hovertemplate=f"%{{y}}: %{{x:{fmt}}} {unit}<extra></extra>",
    )
    fig.update_xaxes(title_text=unit, tickformat=fmt if fmt.endswith("%") else None)
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(fig, _bar_height(len(rows)), legend=False)


def series(
    rows: list[dict], x: str, y: str, by: str, unit: str, x_title: str, fmt: str = ",.4g", share: bool = False
) -> dict | None:
    """y over x, one series per `by`. One x value (a one-day period) draws bars; up to MAX_SERIES_PER_PANEL series
    share one panel; more become small multiples with shared axes. x_title "day" ticks whole days; a share (0..1)
    is drawn on 0..100 %, so a near-full coverage does not fill the axis with "100.0%" ticks."""
    rows = [r for r in rows if r.get(y) is not None]
    if not rows:
        return None
    xs = sorted({r[x] for r in rows})
    names = sorted({str(r[by]) for r in rows})
    if len(xs) == 1:
        one = bars([{by: n, y: r[y]} for n in names for r in rows if str(r[by]) == n], by, y, unit, fmt)
        one["layout"]["xaxis"]["title"] = {"text": f"{unit}, {xs[0]}"}
        if share:
            one["layout"]["xaxis"]["range"] = [0, 1.05]
        return one
    panels = len(names) > MAX_SERIES_PER_PANEL
    cols = PANEL_COLUMNS if panels else 1
    nrows = math.ceil(len(names) / cols) if panels else 1
    fig = make_subplots(
        rows=nrows,
        cols=cols,
        # every panel on the same axes, so that panels compare at a glance
        shared_xaxes="all",
        shared_yaxes="all",
        subplot_titles=names if panels else None,
        vertical_spacing=0.3 / nrows if panels else 0.02,
    )
    for i, name in enumerate(names):
        points = sorted((r[x], r[y]) for r in rows if str(r[by]) == name)
        fig.add_scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            name=name,
            mode="lines+markers",
            line={"color": COLORS[i % len(COLORS)], "width": 2},
            marker={"size": 5},
            hovertemplate=f"{name}<br>%{{x}}<br>%{{y:{fmt}}} {unit}<extra></extra>",
            row=i // cols + 1 if panels else 1,
            col=i % cols + 1 if panels else 1,
        )
    fig.update_yaxes(
        title_text=unit if not panels else None,
        tickformat=fmt if fmt.endswith("%") else None,
        range=[0, 1.05] if share else None,
    )
    fig.update_xaxes(title_text=x_title if not panels else None)
    if x_title == "day":
        fig.update_xaxes(type="date", dtick=86_400_000, tickformat="%Y-%m-%d")
    spec = _layout(fig, 320 if not panels else 90 + 210 * nrows, legend=not panels)
    if panels:  # each panel keeps its tick labels; the axis names go in a title above the panels
        fig.update_xaxes(showticklabels=True)
        fig.update_yaxes(showticklabels=True)
        fig.update_layout(
            title={"text": f"{unit} by {x_title}, one panel per {by}", "font": {"size": 13}, "y": 0.995},
            margin={"t": 90},
        )
        spec = fig.to_plotly_json()
    return spec


def intervals(rows: list[dict]) -> dict | None:
    """Each technique's cost change against its baseline with its 95 % interval; zero marked."""
    rows = [r for r in rows if r.get("cost_change_pct") is not None]
    if not rows:
        return None
    fig = go.Figure()
    labels = [f"{r['model']} / {r['technique']}" for r in rows]
    point = [r["cost_change_pct"] for r in rows]
    low = [r.get("cost_change_ci_low_pct") for r in rows]
    high = [r.get("cost_change_ci_high_pct") for r in rows]
    fig.add_scatter(
        y=labels,
        x=point,
        mode="markers",
        marker={"size": 10, "color": COLORS[0]},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": [h - p if h is not None else 0 for p, h in zip(point, high)],
            "arrayminus": [p - lo if lo is not None else 0 for p, lo in zip(point, low)],
            "color": COLORS[0],
            "thickness": 2,
            "width": 6,
        },
        customdata=[[lo, h, r["requests"], r["baseline_requests"]] for lo, h, r in zip(low, high, rows)],
        hovertemplate=(
            "%{y}: %{x:+.1f} % [%{customdata[0]:+.1f} %, %{customdata[1]:+.1f} %]"
            "<br>n = %{customdata[2]:,} vs %{customdata[3]:,}<extra></extra>"
        ),
    )
    fig.add_vline(x=0, line_color="#666", line_dash="dot")
    fig.update_xaxes(title_text="change of cost per 1M output tokens vs baseline, % (95 % interval)")
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(fig, _bar_height(len(rows)), legend=False)


def anomalies(rows: list[dict]) -> dict | None:
    """Each anomaly's effect, observed against expected, in percent."""
    rows = [r for r in rows if r.get("effect_pct") is not None]
    if not rows:
        return None
    labels = [f"{r['day']} {r['series_key']} {r['metric']}" for r in rows]
    fig = go.Figure()
    fig.add_bar(
        y=labels,
        x=[r["effect_pct"] for r in rows],
        orientation="h",
        marker_color=[COLORS[3] if r["effect_pct"] > 0 else COLORS[2] for r in rows],
        customdata=[[r["expected"], r["observed"], r.get("likely_cause") or ""] for r in rows],
        hovertemplate=(
            "%{y}<br>%{x:+.1f} %: observed %{customdata[1]:,.4g}, expected %{customdata[0]:,.4g}"
            "<br>%{customdata[2]}<extra></extra>"
        ),
    )
    fig.update_xaxes(title_text="observed vs expected, %")
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(fig, _bar_height(len(rows)), legend=False)


def uncertainty(rows: list[dict]) -> dict | None:
    """Energy per model with its attribution uncertainty as an error bar."""
    rows = [r for r in rows if r.get("energy_kwh") is not None]
    if not rows:
        return None
    fig = go.Figure()
    fig.add_bar(
        y=[r["model"] for r in rows],
        x=[r["energy_kwh"] for r in rows],
        orientation="h",
        marker_color=COLORS[0],
        error_x={"type": "data", "array": [r.get("energy_uncertainty_kwh") or 0 for r in rows], "color": "#222"},
        hovertemplate="%{y}: %{x:,.4g} kWh ± %{error_x.array:,.2g} kWh<extra></extra>",
    )
    fig.update_xaxes(title_text="device energy, kWh (± attribution uncertainty)")
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(fig, _bar_height(len(rows)), legend=False)
