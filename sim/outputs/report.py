"""The run report: plotly figures of a scenario's replicates, as one HTML page."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.outputs.figures import page_figure, write_plotlyjs
from sim.scenario import SURFACES, Scenario

PANELS = ("Users by platform (share of users)", "Links blocked, by surface",
          "Share outcomes (fraction of attempts)", "Welfare per week",
          "Fines per week", "Token and warning-page costs paid per week (friction)")
OUTCOME_COLORS = {"shares_direct": "#17becf", "shares_token": "#bcbd22",
                  "shares_abandoned": "#e377c2", "shares_unreachable": "#7f7f7f"}


def week_axis(scenario: Scenario, steps: np.ndarray):
    """Weeks as calendar dates when the scenario names its start date."""
    if not scenario.start_date:
        return steps
    start = dt.date.fromisoformat(scenario.start_date)
    return [start + dt.timedelta(weeks=int(s) - 1) for s in steps]


def series(rows: list[dict], column: str, replicates: int, steps: int) -> np.ndarray:
    """A column as a (replicate, step) array."""
    values = np.full((replicates, steps), np.nan)
    for row in rows:
        values[row["replicate"], row["step"] - 1] = row[column]
    return values


def add_band(fig, x, values: np.ndarray, name: str, row: int, col: int, color: str) -> None:
    """The replicate mean as a line, with the 5-95% range across replicates as a band."""
    low, high = np.nanpercentile(values, [5, 95], axis=0)
    fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(high) + list(low[::-1]),
                             fill="toself", fillcolor=color, opacity=0.2, line_width=0,
                             hoverinfo="skip", showlegend=False, legendgroup=name),
                  row=row, col=col)
    fig.add_trace(go.Scatter(x=x, y=np.nanmean(values, axis=0), name=name, legendgroup=name,
                             line_color=color, mode="lines"), row=row, col=col)


def timeline_figure(scenario: Scenario, rows: list[dict]) -> go.Figure:
    replicates = 1 + max(r["replicate"] for r in rows)
    steps = max(r["step"] for r in rows)
    x = week_axis(scenario, np.arange(1, steps + 1))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#393b79", "#637939", "#8c6d31"]
    fig = make_subplots(rows=3, cols=2, subplot_titles=PANELS, vertical_spacing=0.09)
    get = lambda column: series(rows, column, replicates, steps)  # noqa: E731
    for i, p in enumerate(scenario.messaging):
        add_band(fig, x, get(f"users_{p.name}"), p.name, 1, 1, palette[i % len(palette)])
    for surface, color in zip(SURFACES, ("#d62728", "#ff7f0e", "#e377c2")):
        add_band(fig, x, get(f"links_blocked_{surface}"), f"blocked: {surface}", 1, 2, color)
    add_band(fig, x, get("links_warned"), "warning page", 1, 2, "#ffbf00")
    attempted = np.maximum(get("shares_attempted"), 1)
    for column, color in OUTCOME_COLORS.items():
        add_band(fig, x, get(column) / attempted, column.removeprefix("shares_"), 2, 1, color)
    add_band(fig, x, get("consumer_surplus"), "consumer surplus", 2, 2, "#2ca02c")
    add_band(fig, x, get("total_welfare"), "total welfare", 2, 2, "#17becf")
    add_band(fig, x, get("fines"), "fines", 3, 1, "#9467bd")
    add_band(fig, x, get("friction_cost"), "token and warning costs", 3, 2, "#8c564b")
    for step, label in regulatory_marks(scenario):
        if step <= steps:
            fig.add_vline(x=x[step - 1], line_dash="dot", line_color="#444")
            fig.add_annotation(x=x[step - 1], y=1.0, yref="paper", text=label, showarrow=False,
                               textangle=-90, xanchor="right", yanchor="top",
                               font={"size": 10})
    fig.update_layout(height=1000, template="plotly_white",
                      title=f"{scenario.name}: {replicates} replicate(s), mean and 5-95% band")
    return fig


def regulatory_marks(scenario: Scenario) -> list[tuple[int, str]]:
    """Announcement and deadlines (one per phase) as (week, label)."""
    r = scenario.regulator
    if r.policy != "order":
        return []
    marks = [(r.announce_step, "order announced")]
    if r.phases:
        marks += [(p.step, "deadline: " + ", ".join(p.surfaces)) for p in r.phases]
    else:
        marks.append((r.deadline_step, "deadline: " + ", ".join(SURFACES)))
    return [(max(step, 1), label) for step, label in marks]


def headline_table(headline: list[dict]) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(h['metric'])}</td><td>{h['mean']:.4g}</td>"
        f"<td>[{h['ci_low']:.4g}, {h['ci_high']:.4g}]</td><td>{h['n']}</td></tr>"
        if h["n"] else f"<tr><td>{html.escape(h['metric'])}</td><td>never</td><td></td><td>0</td></tr>"
        for h in headline)
    return ("<table><tr><th>metric</th><th>mean</th><th>95% CI</th><th>n</th></tr>"
            f"{cells}</table>")


def write_report(path, scenario: Scenario, rows: list[dict], headline: list[dict]) -> None:
    """One page, with plotly.min.js beside it (so it opens offline)."""
    figure = page_figure(timeline_figure(scenario, rows), "timeline")
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(scenario.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 10px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(scenario.name)}</h1><p>{html.escape(scenario.description)}</p>
{figure}
<h2>Headline results across replicates</h2>{headline_table(headline)}
</body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    write_plotlyjs(Path(path).parent)
