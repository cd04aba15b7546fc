"""Figures of sweeps, as plotly figures: heatmaps, lines with confidence bands,
Sobol indices and Morris screening. Written as interactive HTML and static PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go


def sweep_figures(sweep, summary: list[dict], runs: list[dict]) -> dict[str, go.Figure]:
    """The figures that suit the sweep's design, by file stem."""
    keys = list(sweep.parameters)
    figures = {}
    for metric in sweep.metrics:
        rows = [r for r in summary if r["metric"] == metric]
        if sweep.design == "grid" and len(keys) == 2:
            figures[f"heatmap_{metric}"] = heatmap(rows, keys, metric)
        if sweep.design == "grid":
            figures[f"lines_{metric}"] = lines(rows, keys, metric)
        elif sweep.design == "sobol":
            figures[f"sobol_{metric}"] = sobol_bars(sweep, runs, metric)
        elif sweep.design == "morris":
            figures[f"morris_{metric}"] = morris_scatter(sweep, runs, metric)
        else:
            figures[f"scatter_{metric}"] = scatter(rows, keys, metric)
    return figures


def heatmap(rows: list[dict], keys: list[str], metric: str) -> go.Figure:
    xs = sorted({r[keys[0]] for r in rows})
    ys = sorted({r[keys[1]] for r in rows})
    z = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        z[ys.index(r[keys[1]]), xs.index(r[keys[0]])] = r["mean"]
    fig = go.Figure(go.Heatmap(x=[str(x) for x in xs], y=[str(y) for y in ys], z=z,
                               colorbar_title=metric))
    fig.update_layout(template="plotly_white", title=f"{metric} (mean over replicates)",
                      xaxis_title=keys[0], yaxis_title=keys[1])
    return fig


def lines(rows: list[dict], keys: list[str], metric: str) -> go.Figure:
    """The metric against the first parameter, one line per value of the others,
    with the 95% confidence interval as a band."""
    fig = go.Figure()
    groups = sorted({tuple(r[k] for k in keys[1:]) for r in rows})
    for group in groups:
        points = sorted((r for r in rows if tuple(r[k] for k in keys[1:]) == group),
                        key=lambda r: r[keys[0]])
        x = [r[keys[0]] for r in points]
        label = ", ".join(f"{k}={v}" for k, v in zip(keys[1:], group)) or metric
        fig.add_trace(go.Scatter(x=x + x[::-1], y=[r["ci_high"] for r in points]
                                 + [r["ci_low"] for r in points][::-1], fill="toself",
                                 opacity=0.2, line_width=0, showlegend=False, hoverinfo="skip",
                                 legendgroup=label))
        fig.add_trace(go.Scatter(x=x, y=[r["mean"] for r in points], mode="lines+markers",
                                 name=label, legendgroup=label))
    fig.update_layout(template="plotly_white", title=f"{metric}: mean and 95% CI",
                      xaxis_title=keys[0], yaxis_title=metric)
    return fig


def scatter(rows: list[dict], keys: list[str], metric: str) -> go.Figure:
    fig = go.Figure()
    for key in keys:
        fig.add_trace(go.Scatter(x=[r[key] for r in rows], y=[r["mean"] for r in rows],
                                 mode="markers", name=key))
    fig.update_layout(template="plotly_white", title=f"{metric} against each parameter",
                      yaxis_title=metric)
    return fig


def point_means(sweep, runs: list[dict], metric: str) -> np.ndarray:
    """The metric's mean over replicates at each design point, in design order."""
    sums, counts = np.zeros(len(sweep.points)), np.zeros(len(sweep.points))
    for run in runs:
        if not np.isnan(run[metric]):
            sums[run["point"]] += run[metric]
            counts[run["point"]] += 1
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def sobol_indices(sweep, runs: list[dict], metric: str) -> dict:
    from SALib.analyze import sobol

    from sim.sweep import salib_problem

    return sobol.analyze(salib_problem(sweep), point_means(sweep, runs, metric),
                         calc_second_order=False, seed=sweep.seed)


def morris_indices(sweep, runs: list[dict], metric: str) -> dict:
    from SALib.analyze import morris

    from sim.sweep import salib_problem

    matrix = np.array([[p[k] for k in sweep.parameters] for p in sweep.points], dtype=float)
    return morris.analyze(salib_problem(sweep), matrix, point_means(sweep, runs, metric),
                          num_levels=4, seed=sweep.seed)


def sobol_bars(sweep, runs: list[dict], metric: str) -> go.Figure:
    result = sobol_indices(sweep, runs, metric)
    names = list(sweep.parameters)
    fig = go.Figure([go.Bar(name="first order S1", x=names, y=result["S1"],
                            error_y={"array": result["S1_conf"]}),
                     go.Bar(name="total ST", x=names, y=result["ST"],
                            error_y={"array": result["ST_conf"]})])
    fig.update_layout(template="plotly_white", barmode="group",
                      title=f"Sobol indices of {metric} (95% CI)")
    return fig


def morris_scatter(sweep, runs: list[dict], metric: str) -> go.Figure:
    result = morris_indices(sweep, runs, metric)
    fig = go.Figure(go.Scatter(x=result["mu_star"], y=result["sigma"], mode="markers+text",
                               text=list(sweep.parameters), textposition="top center",
                               error_x={"array": result["mu_star_conf"]}))
    fig.update_layout(template="plotly_white", title=f"Morris screening of {metric}",
                      xaxis_title="μ* (mean absolute elementary effect)", yaxis_title="σ")
    return fig


def write_figures(figures: dict[str, go.Figure], directory: Path, png: bool = True) -> None:
    """Each figure as self-contained HTML and, with Debian's chromium, as PNG."""
    import plotly.io as pio

    directory.mkdir(parents=True, exist_ok=True)
    for stem, fig in figures.items():
        fig.write_html(directory / f"{stem}.html", include_plotlyjs=True, div_id=stem)
    if png and figures:
        pio.write_images(list(figures.values()),
                         [directory / f"{stem}.png" for stem in figures])
