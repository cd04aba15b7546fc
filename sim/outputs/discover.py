"""Scenario discovery: where in a sweep's parameter space does an outcome happen?

The runs of a sweep (one row each: its varied parameters and summary metrics) are
split by a condition on one metric (`steps_to_open < 20`). PRIM (EMA Workbench's
`prim`) peels the parameter box down to where the condition holds, trading coverage
(the share of all runs meeting it that fall in the box) against density (the share of
runs in the box that meet it); CART (a scikit-learn tree through EMA Workbench's
`cart`) splits the space into leaves. Needs the optional extra: pip install -e ".[discover]".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.outputs.compare import sweep_outcomes


class DiscoverError(Exception):
    """Input that discovery cannot use (exit status 2, one line)."""


def outcome_table(runs, metric: str, source: str):
    """The varied parameters (a DataFrame) and the metric (an array) of every run, from
    a sweep's outcomes (one row per run)."""
    if metric not in runs.columns:
        known = sorted(c for c in runs.columns if "." not in c and c not in (
            "point", "point_id", "replicate", "seed", "spawn_key", "steps"))
        raise DiscoverError(f"--metric: {metric!r} is not a metric of {source}; metrics are "
                            + ", ".join(known))
    parameters = [c for c in runs.columns if "." in c]
    return runs[parameters].astype(float), runs[metric].to_numpy(dtype=float)


def condition(values: np.ndarray, below: float | None, above: float | None) -> np.ndarray:
    """Whether each run meets the condition; a run with no value (never opens) does not."""
    with np.errstate(invalid="ignore"):
        met = values < below if below is not None else values > above
    return met & ~np.isnan(values)


def discover(directory: Path, metric: str, below: float | None = None,
             above: float | None = None, threshold: float = 0.8, mass_min: float = 0.05,
             seed: int = 0) -> dict:
    """PRIM's peeling trajectory and boxes, and CART's leaves, as tidy rows, for the
    runs of the sweep in `directory`."""
    import pandas as pd

    return find_boxes(pd.DataFrame(sweep_outcomes(Path(directory))), metric, below, above,
                      threshold, mass_min, seed, source=str(directory))


def find_boxes(outcomes, metric: str, below: float | None = None, above: float | None = None,
               threshold: float = 0.8, mass_min: float = 0.05, seed: int = 0,
               source: str = "the outcomes") -> dict:
    """As `discover`, on a sweep's outcomes table (`run_sweep(...).outcomes`)."""
    try:
        from ema_workbench.analysis import cart, prim
    except ImportError:
        raise DiscoverError('discover needs EMA Workbench: pip install -e ".[discover]"') from None
    from sklearn.tree import DecisionTreeClassifier, export_text

    x, values = outcome_table(outcomes, metric, source)
    y = condition(values, below, above)
    said = f"{metric} {'<' if below is not None else '>'} {below if below is not None else above}"
    if y.all() or not y.any():
        raise DiscoverError(f"{source}: {'every' if y.all() else 'no'} run has {said}, so "
                            "there is no region to find")
    # EMA keeps the peeling only if its last, smallest box reaches the threshold, and
    # returns the whole space otherwise. Asked for the density of all runs, it keeps the
    # trajectory (its cases of interest, y >= threshold, are the same for any threshold
    # in (0, 1]); the box chosen is EMA's, the last, if it reaches the threshold, and
    # else the densest along the trajectory.
    peeled = prim.Prim(x, y, threshold=float(y.mean()), mass_min=mass_min).find_box()
    trajectory = peeled.peeling_trajectory
    densities = trajectory["density"].to_numpy()
    reached = bool(densities[-1] >= threshold)
    chosen = len(densities) - 1 if reached else int(np.argmax(densities))
    prim_rows = [box_row("prim", i, limits, parameter, trajectory.iloc[i], i == chosen)
                 for i, limits in enumerate(peeled.box_lims) for parameter in x.columns]
    tree = cart.CART(x, y, mass_min=mass_min)
    # EMA's build_tree leaves the tree unseeded; this is the same tree with a seed.
    tree.clf = DecisionTreeClassifier(min_samples_leaf=int(mass_min * len(x)),
                                      random_state=seed).fit(x.to_numpy(), y)
    cart_rows = [box_row("cart", i, limits, parameter, stats, stats["density"] >= threshold)
                 for i, (limits, stats) in enumerate(zip(tree.boxes, tree.stats))
                 for parameter in x.columns]
    bounds = {c: (float(x[c].min()), float(x[c].max())) for c in x.columns}
    return {"condition": said, "runs": len(y), "meeting": int(y.sum()),
            "threshold_reached": reached,
            "trajectory": [{"box": i, "coverage": float(t["coverage"]),
                            "density": float(t["density"]), "mass": float(t["mass"]),
                            "restricted_dimensions": int(t["res_dim"])}
                           for i, t in trajectory.iterrows()],
            "boxes": mark_restricted(prim_rows + cart_rows, bounds),
            "tree": export_text(tree.clf, feature_names=list(x.columns))}


BOX_COLUMNS = ["method", "box", "parameter", "low", "high", "restricted", "coverage",
               "density", "mass", "chosen"]


def box_row(method: str, box: int, limits, parameter: str, stats, chosen: bool) -> dict:
    low, high = float(limits[parameter].iloc[0]), float(limits[parameter].iloc[1])
    return {"method": method, "box": box, "parameter": parameter, "low": low, "high": high,
            "restricted": None, "coverage": float(stats["coverage"]),
            "density": float(stats["density"]), "mass": float(stats["mass"]), "chosen": chosen}


def mark_restricted(rows: list[dict], bounds: dict[str, tuple[float, float]]) -> list[dict]:
    """Whether each box limits a parameter below its full range."""
    for row in rows:
        low, high = bounds[row["parameter"]]
        row["restricted"] = not (math.isclose(row["low"], low) and math.isclose(row["high"], high))
    return rows


def tradeoff_figure(result: dict):
    """PRIM's peeling trajectory: density against coverage, coloured by how many
    parameters the box restricts; the chosen box ringed."""
    import plotly.graph_objects as go

    t = result["trajectory"]
    fig = go.Figure(go.Scatter(
        x=[r["coverage"] for r in t], y=[r["density"] for r in t], mode="markers+lines",
        text=[f"box {r['box']}, mass {r['mass']:.2f}" for r in t],
        marker={"color": [r["restricted_dimensions"] for r in t], "colorscale": "Viridis",
                "size": 9, "colorbar": {"title": "parameters restricted"}},
        line={"color": "#bbbbbb"}, name="PRIM boxes"))
    last = t[-1]
    fig.add_trace(go.Scatter(x=[last["coverage"]], y=[last["density"]], mode="markers",
                             marker={"size": 18, "symbol": "circle-open", "color": "black"},
                             name="chosen box"))
    fig.update_layout(template="plotly_white", xaxis_title="coverage", yaxis_title="density",
                      xaxis_range=[0, 1.02], yaxis_range=[0, 1.02],
                      title=f"Where {result['condition']}: PRIM's coverage and density trade-off "
                            f"({result['meeting']} of {result['runs']} runs)")
    return fig


def write_discovery(directory: Path, result: dict) -> None:
    """boxes.csv, trajectory.csv, tree.txt and discover.html (the trade-off figure and
    the chosen PRIM box), with plotly.min.js beside it."""
    import html

    from sim.outputs.figures import page_figure, write_plotlyjs
    from sim.outputs.files import write_csv

    write_csv(directory / "boxes.csv", BOX_COLUMNS, result["boxes"])
    write_csv(directory / "trajectory.csv", list(result["trajectory"][0]), result["trajectory"])
    (directory / "tree.txt").write_text(result["tree"], encoding="utf-8")
    chosen = [r for r in result["boxes"] if r["method"] == "prim" and r["chosen"]
              and r["restricted"]]
    cells = "".join(f"<tr><td>{html.escape(r['parameter'])}</td><td>{r['low']:.4g}</td>"
                    f"<td>{r['high']:.4g}</td></tr>" for r in chosen)
    stats = chosen[0] if chosen else None
    summary = (f"coverage {stats['coverage']:.2f}, density {stats['density']:.2f}, mass "
               f"{stats['mass']:.2f}" if stats else "PRIM restricted no parameter")
    figure = page_figure(tradeoff_figure(result), "tradeoff")
    (directory / "discover.html").write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(result['condition'])}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 10px}}</style></head>
<body><h1>Where {html.escape(result['condition'])}</h1>
<p>{result['meeting']} of {result['runs']} runs. The chosen PRIM box ({summary}):</p>
<table><tr><th>parameter</th><th>low</th><th>high</th></tr>{cells}</table>
{figure}
<h2>CART tree</h2><pre>{html.escape(result['tree'])}</pre>
</body></html>
""", encoding="utf-8")
    write_plotlyjs(directory)
