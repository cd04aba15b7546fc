"""Figures of sweeps, as plotly figures: heatmaps, lines with confidence bands,
Sobol indices and Morris screening, and how each metric's estimate converges with
replicates. Written as interactive HTML (sharing one plotly.min.js) and static PNG;
the sensitivity indices are also tidy tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go


# Metrics that are empty when the event never happens (a link that never opens): their
# mean over the replicates where it happened says nothing without the share of those.
CENSORED = ("steps_to_open",)
SHARES = ("hhi", "users_", "multihoming_rate", "abandoned_rate")
SIGNED = ("consumer_surplus", "total_welfare", "profit_")


def metric_range(metric: str) -> tuple[float, float]:
    """The values a metric can take: shares lie in [0, 1], counts, weeks and money paid
    are at least 0, surplus and profit can have either sign."""
    column = metric.removeprefix("final_").removeprefix("mean_")
    if column.startswith(SHARES):
        return 0.0, 1.0
    if column.startswith(SIGNED):
        return -np.inf, np.inf
    return 0.0, np.inf


def clipped(metric: str, values) -> list[float]:
    """Values (band edges) clipped to what the metric can take."""
    return list(np.clip(np.asarray(values, dtype=float), *metric_range(metric)))


def sweep_figures(sweep, summary: list[dict], runs: list[dict]) -> dict[str, go.Figure]:
    """The figures that suit the sweep's design, by file stem."""
    keys = list(sweep.parameters)
    figures = {}
    for metric in sweep.metrics:
        rows = [r for r in summary if r["metric"] == metric]
        if sweep.design == "grid" and len(keys) == 2:
            figures[f"heatmap_{metric}"] = (opening_heatmaps(runs, keys, metric)
                                            if metric in CENSORED else heatmap(rows, keys, metric))
        if sweep.design == "grid":
            figures[f"lines_{metric}"] = lines(rows, keys, metric)
        elif sweep.design == "sobol":
            figures[f"sobol_{metric}"] = sobol_bars(sweep, sobol_indices(sweep, runs, metric),
                                                    metric)
        elif sweep.design == "morris":
            figures[f"morris_{metric}"] = morris_scatter(
                sweep, morris_indices(sweep, runs, metric), metric)
        else:
            figures[f"scatter_{metric}"] = scatter(rows, keys, metric)
        if sweep.replicates > 1:
            figures[f"convergence_{metric}"] = convergence_figure(
                convergence_rows(runs, [metric]), metric)
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
    if np.isnan(z).all():
        empty_note(fig, f"no replicate has a value of {metric} at any point")
    return fig


def empty_note(fig: go.Figure, text: str, xref: str = "paper", yref: str = "paper",
               x: float = 0.5, y: float = 0.5) -> None:
    """Say so in the figure where there is nothing to draw, rather than leave it blank."""
    fig.add_annotation(text=text, xref=xref, yref=yref, x=x, y=y, showarrow=False,
                       font={"size": 14}, bgcolor="white")


def opening_heatmaps(runs: list[dict], keys: list[str], metric: str = "steps_to_open"
                     ) -> go.Figure:
    """A censored metric over a two-parameter grid, from the runs: the share of
    replicates in which the event happens, and its mean over those where it does
    ("never" where it never does)."""
    from plotly.subplots import make_subplots

    xs = sorted({r[keys[0]] for r in runs})
    ys = sorted({r[keys[1]] for r in runs})
    happened, total, sums = (np.zeros((len(ys), len(xs))) for _ in range(3))
    for r in runs:
        cell = ys.index(r[keys[1]]), xs.index(r[keys[0]])
        total[cell] += 1
        if not np.isnan(r[metric]):
            happened[cell] += 1
            sums[cell] += r[metric]
    share = np.where(total > 0, happened / np.maximum(total, 1), np.nan)
    mean = np.where(happened > 0, sums / np.maximum(happened, 1), np.nan)
    never = [["never" if happened[i, j] == 0 else "" for j in range(len(xs))]
             for i in range(len(ys))]
    labels_x, labels_y = [str(x) for x in xs], [str(y) for y in ys]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.22, subplot_titles=(
        "share of replicates where it happens", f"{metric}, where it happens"))
    fig.add_trace(go.Heatmap(x=labels_x, y=labels_y, z=share, zmin=0, zmax=1,
                             colorscale="Blues", texttemplate="%{z:.2f}",
                             colorbar={"x": 0.39, "len": 0.9, "title": "share"}), row=1, col=1)
    # Cells where it never happens are drawn grey with "never" written in them.
    fig.add_trace(go.Heatmap(x=labels_x, y=labels_y, z=np.where(happened > 0, 0.0, 1.0),
                             colorscale=[[0, "rgba(0,0,0,0)"], [1, "#dddddd"]], text=never,
                             texttemplate="%{text}", showscale=False, hoverinfo="skip"),
                  row=1, col=2)
    fig.add_trace(go.Heatmap(x=labels_x, y=labels_y, z=mean, texttemplate="%{z:.3g}",
                             colorscale="Viridis",
                             colorbar={"x": 1.0, "len": 0.9, "title": "weeks"}), row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(title_text=keys[0], type="category", row=1, col=col)
        fig.update_yaxes(title_text=keys[1], type="category", row=1, col=col)
    fig.update_layout(template="plotly_white",
                      title=f"{metric}: how often, and when (mean over the replicates where it happens)")
    if not happened.any():
        empty_note(fig, "it never happens at any point", xref="x2 domain", yref="y2 domain")
    return fig


def lines(rows: list[dict], keys: list[str], metric: str) -> go.Figure:
    """The metric against the first parameter, one line per value of the others,
    with the 95% confidence interval as a band."""
    fig = go.Figure()
    groups = sorted({tuple(r[k] for k in keys[1:]) for r in rows})
    for i, group in enumerate(groups):
        points = sorted((r for r in rows if tuple(r[k] for k in keys[1:]) == group),
                        key=lambda r: r[keys[0]])
        label = ", ".join(f"{k}={v}" for k, v in zip(keys[1:], group)) or metric
        add_line_with_band(fig, [r[keys[0]] for r in points], points, metric, label, i)
    fig.update_layout(template="plotly_white", title=f"{metric}: mean and 95% CI",
                      xaxis_title=keys[0], yaxis_title=metric)
    return fig


def add_line_with_band(fig: go.Figure, x: list, points: list[dict], metric: str, label: str,
                       index: int) -> None:
    """The mean as a line, and its 95% interval (clipped to the metric's range) as a
    band of the same colour."""
    from plotly.colors import qualitative

    color = qualitative.Plotly[index % len(qualitative.Plotly)]
    high = clipped(metric, [r["ci_high"] for r in points])
    low = clipped(metric, [r["ci_low"] for r in points])
    fig.add_trace(go.Scatter(x=x + x[::-1], y=high + low[::-1], fill="toself", mode="lines",
                             fillcolor=color, opacity=0.2, line_width=0, showlegend=False,
                             hoverinfo="skip", legendgroup=label))
    fig.add_trace(go.Scatter(x=x, y=[r["mean"] for r in points], mode="lines+markers",
                             line_color=color, name=label, legendgroup=label))


def scatter(rows: list[dict], keys: list[str], metric: str) -> go.Figure:
    fig = go.Figure()
    for key in keys:
        fig.add_trace(go.Scatter(x=[r[key] for r in rows], y=[r["mean"] for r in rows],
                                 mode="markers", name=key))
    fig.update_layout(template="plotly_white", title=f"{metric} against each parameter",
                      yaxis_title=metric)
    return fig


def point_means(sweep, runs: list[dict], metric: str) -> np.ndarray:
    """The metric's mean over replicates at each design point, in design order (NaN
    where no replicate has a value, e.g. a link that never opens)."""
    sums, counts = np.zeros(len(sweep.points)), np.zeros(len(sweep.points))
    for run in runs:
        if not np.isnan(run[metric]):
            sums[run["point"]] += run[metric]
            counts[run["point"]] += 1
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def sobol_indices(sweep, runs: list[dict], metric: str) -> dict | None:
    """SALib's Sobol analysis of the point means, with bootstrap 95% intervals (the
    second-order indices when the design was sampled for them); None when some point
    has no value, since the indices are then undefined."""
    from SALib.analyze import sobol

    from sim.experiments.sweep import salib_problem

    means = point_means(sweep, runs, metric)
    if np.isnan(means).any():
        return None
    return sobol.analyze(salib_problem(sweep), means, calc_second_order=sweep.second_order,
                         seed=sweep.seed)


def morris_indices(sweep, runs: list[dict], metric: str) -> dict | None:
    """SALib's Morris analysis (μ* with a bootstrap 95% interval, μ, σ); None when some
    point has no value."""
    from SALib.analyze import morris

    from sim.experiments.sweep import salib_problem

    means = point_means(sweep, runs, metric)
    if np.isnan(means).any():
        return None
    matrix = np.array([[p[k] for k in sweep.parameters] for p in sweep.points], dtype=float)
    return morris.analyze(salib_problem(sweep), matrix, means, num_levels=4, seed=sweep.seed)


def undefined_indices(metric: str, method: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template="plotly_white", title=f"{method} indices of {metric}",
                      xaxis_visible=False, yaxis_visible=False)
    empty_note(fig, f"no {method} indices: at some design points no replicate has a value "
               f"of {metric}")
    return fig


def sobol_bars(sweep, result: dict | None, metric: str) -> go.Figure:
    if result is None:
        return undefined_indices(metric, "Sobol")
    names = list(sweep.parameters)
    fig = go.Figure([go.Bar(name="first order S1", x=names, y=result["S1"],
                            error_y={"array": result["S1_conf"]}),
                     go.Bar(name="total ST", x=names, y=result["ST"],
                            error_y={"array": result["ST_conf"]})])
    fig.update_layout(template="plotly_white", barmode="group",
                      title=f"Sobol indices of {metric} (95% CI)")
    return fig


def morris_scatter(sweep, result: dict | None, metric: str) -> go.Figure:
    if result is None:
        return undefined_indices(metric, "Morris")
    fig = go.Figure(go.Scatter(x=result["mu_star"], y=result["sigma"], mode="markers+text",
                               text=list(sweep.parameters), textposition="top center",
                               error_x={"array": result["mu_star_conf"]}))
    fig.update_layout(template="plotly_white", title=f"Morris screening of {metric}",
                      xaxis_title="μ* (mean absolute elementary effect)", yaxis_title="σ")
    return fig


# --- Sensitivity indices and convergence as numbers ----------------------------------

def sensitivity_tables(sweep, runs: list[dict]) -> dict[str, list[dict]]:
    """The design's sensitivity indices, tidy: one row per metric, index and parameter
    (or pair of parameters), with SALib's bootstrap 95% interval. Grid and LHS
    designs have none, nor a metric with no value at some point."""
    names = list(sweep.parameters)
    rows = []
    for metric in sweep.metrics:
        if sweep.design == "sobol" and (result := sobol_indices(sweep, runs, metric)):
            for index in ("S1", "ST"):
                rows += [index_row(metric, index, name, "", result[index][i],
                                   result[f"{index}_conf"][i]) for i, name in enumerate(names)]
            if sweep.second_order:
                rows += [index_row(metric, "S2", names[i], names[j], result["S2"][i, j],
                                   result["S2_conf"][i, j])
                         for i in range(len(names)) for j in range(i + 1, len(names))]
        elif sweep.design == "morris" and (result := morris_indices(sweep, runs, metric)):
            for i, name in enumerate(names):
                rows.append(index_row(metric, "mu_star", name, "", result["mu_star"][i],
                                      result["mu_star_conf"][i]))
                rows.append(index_row(metric, "mu", name, "", result["mu"][i], np.nan))
                rows.append(index_row(metric, "sigma", name, "", result["sigma"][i], np.nan))
    return {sweep.design: rows} if rows else {}


SENSITIVITY_COLUMNS = ["metric", "index", "parameter", "other_parameter", "estimate",
                       "ci_low", "ci_high"]


def index_row(metric: str, index: str, parameter: str, other: str, estimate: float,
              half_width: float) -> dict:
    estimate, half_width = float(estimate), float(half_width)
    return {"metric": metric, "index": index, "parameter": parameter, "other_parameter": other,
            "estimate": estimate, "ci_low": estimate - half_width,
            "ci_high": estimate + half_width}


def write_sensitivity(sweep, runs: list[dict], directory: Path) -> None:
    """The indices (sobol.csv or morris.csv) and convergence.csv, beside the figures."""
    from sim.outputs.files import write_csv

    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in sensitivity_tables(sweep, runs).items():
        write_csv(directory / f"{name}.csv", SENSITIVITY_COLUMNS, rows)
    write_csv(directory / "convergence.csv", CONVERGENCE_COLUMNS,
              convergence_rows(runs, sweep.metrics))


CONVERGENCE_COLUMNS = ["point", "metric", "replicates", "mean", "ci_low", "ci_high", "n"]


def convergence_rows(runs: list[dict], metrics) -> list[dict]:
    """Each point's mean and 95% interval of each metric over its first 1, 2, ...
    replicates: how many replicates the estimate needs to settle."""
    from sim.outputs.results import confidence_interval

    by_point = {}
    for run in sorted(runs, key=lambda r: (r["point"], r["replicate"])):
        by_point.setdefault(run["point"], []).append(run)
    rows = []
    for metric in metrics:
        for point, point_runs in by_point.items():
            for k in range(1, len(point_runs) + 1):
                rows.append({"point": point, "metric": metric, "replicates": k,
                             **confidence_interval([r[metric] for r in point_runs[:k]])})
    return rows


def convergence_figure(rows: list[dict], metric: str, most: int = 6) -> go.Figure:
    """The running mean and 95% interval against replicates, for a few points spread
    over the design (all of them are in convergence.csv)."""
    points = sorted({r["point"] for r in rows})
    shown = [points[i] for i in np.linspace(0, len(points) - 1, min(most, len(points))).astype(int)]
    fig = go.Figure()
    for i, point in enumerate(dict.fromkeys(shown)):
        these = [r for r in rows if r["point"] == point and r["n"] > 0]
        add_line_with_band(fig, [r["replicates"] for r in these], these, metric,
                           f"point {point}", i)
    fig.update_layout(template="plotly_white", xaxis_title="replicates",
                      yaxis_title=metric, title=f"{metric}: mean and 95% CI as replicates grow")
    if not fig.data:
        empty_note(fig, f"no replicate has a value of {metric}")
    return fig


def page_figure(fig: go.Figure, div_id: str, load_plotlyjs: bool = True) -> str:
    """A figure as a <div> for an HTML page, reading plotly.js from the plotly.min.js
    beside the page (write_plotlyjs), so a folder of pages carries 4.8 MB of it once.
    A page's later figures need not load it again (`load_plotlyjs=False`)."""
    return fig.to_html(full_html=False, include_plotlyjs="directory" if load_plotlyjs else False,
                       div_id=div_id)


def write_plotlyjs(directory: Path) -> None:
    """The plotly.min.js that the pages in `directory` share: they open offline."""
    from plotly.offline import get_plotlyjs

    (directory / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")


def write_figures(figures: dict[str, go.Figure], directory: Path, png: bool = True,
                  scale: float = 1) -> None:
    """Each figure as HTML and, with Debian's chromium, as PNG (`scale` times its
    layout's pixels). The HTML pages share one plotly.min.js written beside them, so
    the folder works offline without 4.8 MB of plotly.js in every page."""
    import plotly.io as pio

    directory.mkdir(parents=True, exist_ok=True)
    for stem, fig in figures.items():
        fig.write_html(directory / f"{stem}.html", include_plotlyjs="directory", div_id=stem)
    if png and figures:
        # write_images takes plotly's default size, not the layout's, unless told
        pio.write_images(list(figures.values()), [directory / f"{stem}.png" for stem in figures],
                         width=[fig.layout.width for fig in figures.values()],
                         height=[fig.layout.height for fig in figures.values()], scale=scale)
