"""Reproducing a paper: a spec names experiments (scenarios and sweeps), and the
figures and tables made from them; `run.py reproduce SPEC` makes them all again.

Output: `experiments/<name>/` (each a normal run or sweep folder), `figures/`
(HTML and PNG), `tables/` (CSV and LaTeX) and `manifest.json`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path
from typing import Callable

import plotly.graph_objects as go

from sim.scenario import (MAX_REPLICATES, TEXT, Check, ScenarioError, check_name,
                          check_table, check_value, integer, read_toml)

ANY_TABLE = Check(dict, noun="a table")
SPEC_KEYS = {"name": TEXT, "title": TEXT, "quick": ANY_TABLE, "experiments": Check(tuple),
             "figures": Check(tuple), "tables": Check(tuple)}
QUICK_KEYS = {"replicates": integer(1, MAX_REPLICATES), "set": ANY_TABLE}
EXPERIMENT_KEYS = {"name": TEXT, "scenario": TEXT, "sweep": TEXT}
ITEM_KEYS = {"name": TEXT, "caption": TEXT, "claim": TEXT, "columns": integer(1, 2),
             "experiment": TEXT, "closed": TEXT, "open": TEXT, "without": TEXT, "with": TEXT,
             "metric": TEXT, "metrics": Check(list)}
# A journal page: one column is 3.5 inches wide, two are 7 (at plotly's 96 px per inch);
# 10 px type prints at 7.5 pt, the smallest most journals accept. PNGs at 3x: 288 dpi.
COLUMN_WIDTH = 336
FONT_SIZE = 10
PNG_SCALE = 3
# The experiments each kind of figure or table reads, and what else it needs.
NEEDS = {"timeline": ("experiment",), "heatmap": ("experiment", "metric"),
         "lines": ("experiment", "metric"), "welfare_gain": ("closed", "open"),
         "order_effect": ("without", "with", "metrics"), "compare": ("without", "with", "metrics")}


def load_spec(path: Path) -> dict:
    """Read and validate a paper spec: every key of its kind, every experiment a figure
    or table names declared."""
    source = str(path)
    if not Path(path).is_file():
        raise ScenarioError(source, "", "no such paper spec")
    spec = check_table(read_toml(Path(path)), SPEC_KEYS, source, "")
    quick = check_table(spec.get("quick", {}), QUICK_KEYS, source, "quick.")
    for key, value in quick.get("set", {}).items():
        check_value(key, value, source, "quick.set")
    if "name" in spec:                  # names the output folder
        check_name(source, "name", spec["name"])
    names = set()
    for i, experiment in enumerate(spec.get("experiments", ())):
        experiment = check_table(experiment, EXPERIMENT_KEYS, source, f"experiments[{i}].")
        if "name" not in experiment or ("scenario" in experiment) == ("sweep" in experiment):
            raise ScenarioError(source, f"experiments[{i}]",
                                "needs a name and exactly one of scenario or sweep")
        names.add(check_name(source, f"experiments[{i}].name", experiment["name"]))
    for section, kinds in (("figures", FIGURES), ("tables", TABLES)):
        for i, item in enumerate(spec.get(section, ())):
            where = f"{section}[{i}]."
            item = check_table(item, {**ITEM_KEYS, "kind": Check(str, choices=tuple(kinds))},
                               source, where)
            for needed in ("name", "kind", *NEEDS.get(item.get("kind"), ())):
                if needed not in item:
                    raise ScenarioError(source, where + needed, "missing; a "
                                        f"{item.get('kind', section[:-1])} needs it")
            check_name(source, where + "name", item["name"])
            for role in ("experiment", "closed", "open", "without", "with"):
                if role in item and item[role] not in names:
                    raise ScenarioError(source, where + role,
                                        f"unknown experiment {item[role]!r}; experiments are "
                                        + ", ".join(sorted(names)))
    return spec


def run_experiments(spec: dict, spec_path: Path, directory: Path, quick: bool,
                    command_line: Callable[[list[str]], int]) -> None:
    """Each experiment through the ordinary command line (`command_line`, the CLI's
    `main`, passed in so that the paper module does not import its caller), into
    experiments/<name>/."""
    quick_spec = spec.get("quick", {}) if quick else {}
    for experiment in spec.get("experiments", []):
        out = directory / "experiments" / experiment["name"]
        if "scenario" in experiment:
            args = ["run", str(spec_path.parent / experiment["scenario"]), "--quiet"]
            for key, value in quick_spec.get("set", {}).items():
                args += ["--set", f"{key}={json.dumps(value)}"]
            if "replicates" in quick_spec:
                args += ["--replicates", str(quick_spec["replicates"])]
        else:
            args = ["sweep", str(spec_path.parent / experiment["sweep"]), "--quiet", "--no-png"]
            if quick_spec:
                args += ["--replicates", str(quick_spec.get("replicates", 2))]
                for key, value in quick_spec.get("set", {}).items():
                    args += ["--set", f"{key}={json.dumps(value)}"]
        with contextlib.redirect_stdout(io.StringIO()):     # each prints its own headline
            status = command_line([*args, "--out", str(out)])
        if status != 0:
            raise ScenarioError(str(spec_path), f"experiments.{experiment['name']}",
                                "the experiment failed")


# --- Reading experiment results -------------------------------------------------------

def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str):
    if text == "":
        return math.nan
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def sweep_summary(directory: Path, name: str, metric: str) -> list[dict]:
    return [r for r in read_csv(directory / "experiments" / name / "summary.csv")
            if r["metric"] == metric]


def run_summary(directory: Path, name: str) -> list[dict]:
    return read_csv(directory / "experiments" / name / "summary.csv")


# --- Figures --------------------------------------------------------------------------

# The report's panel titles, short enough for a column of a printed page.
SHORT_PANELS = ("Users (share)", "Links blocked", "Share outcomes", "Welfare per week",
                "Fines per week", "Friction per week")


def fig_timeline(item: dict, directory: Path) -> go.Figure:
    """The 2021 timeline: users by platform, links blocked, share outcomes, surplus,
    fines and friction under the order; the dotted lines are the announcement and the
    deadlines (the report labels them; on a printed page they are in the caption)."""
    from sim.outputs.report import PANELS, timeline_figure
    from sim.scenario import from_dict

    folder = directory / "experiments" / item["experiment"]
    manifest = json.loads((folder / "manifest.json").read_text())
    scenario = from_dict(manifest["parameters"])
    fig = timeline_figure(scenario, read_csv(folder / "timeseries.csv"))
    short = dict(zip(PANELS, SHORT_PANELS))
    fig.layout.annotations = [a for a in fig.layout.annotations if a.text in short]
    for annotation in fig.layout.annotations:
        annotation.text = short[annotation.text]
    fig.update_xaxes(nticks=5)
    return fig


def fig_heatmap(item: dict, directory: Path) -> go.Figure:
    """The metric over a two-parameter grid; a metric that can fail to happen (weeks
    to open) as the share of replicates where it happens and when it does."""
    from sim.outputs.compare import sweep_outcomes
    from sim.outputs.figures import CENSORED, heatmap, opening_heatmaps

    if item["metric"] in CENSORED:
        runs = sweep_outcomes(directory / "experiments" / item["experiment"])
        return opening_heatmaps(runs, [k for k in runs[0] if "." in k], item["metric"])
    rows = sweep_summary(directory, item["experiment"], item["metric"])
    keys = [k for k in rows[0] if "." in k]
    return heatmap(rows, keys, item["metric"])


def fig_lines(item: dict, directory: Path) -> go.Figure:
    from sim.outputs.figures import lines

    rows = sweep_summary(directory, item["experiment"], item["metric"])
    keys = [k for k in rows[0] if "." in k]
    return lines(rows, keys, item["metric"])


def fig_welfare_gain(item: dict, directory: Path) -> go.Figure:
    """The consumer-surplus gain from opening every link against the multihoming rate
    of the closed market, point by point (mean difference and 95% interval)."""
    gains = welfare_gain(directory, item["closed"], item["open"])
    fig = go.Figure(go.Scatter(
        x=[g["multihoming_rate"] for g in gains], y=[g["gain"] for g in gains],
        error_y={"array": [g["ci_half_width"] for g in gains]}, mode="lines+markers",
        text=[f"multihoming_cost={g['multihoming_cost']}" for g in gains]))
    fig.update_layout(template="plotly_white", xaxis_title="multihoming rate without opening",
                      yaxis_title="surplus gain per week",
                      title="Welfare gain from opening against multihoming (95% CI)")
    return fig


def welfare_gain(directory: Path, closed: str, opened: str) -> list[dict]:
    surplus_closed = sweep_summary(directory, closed, "mean_consumer_surplus")
    surplus_open = sweep_summary(directory, opened, "mean_consumer_surplus")
    multihoming = sweep_summary(directory, closed, "final_multihoming_rate")
    gains = []
    for c, o, m in zip(surplus_closed, surplus_open, multihoming):
        se = math.hypot(c["sd"] / math.sqrt(c["n"]), o["sd"] / math.sqrt(o["n"]))
        gains.append({"multihoming_cost": c["users.multihoming_cost"],
                      "multihoming_rate": m["mean"], "gain": o["mean"] - c["mean"],
                      "ci_half_width": 1.96 * se})
    return sorted(gains, key=lambda g: g["multihoming_rate"])


def fig_order_effect(item: dict, directory: Path) -> go.Figure:
    """Each metric with and without the order: replicate means and 95% intervals."""
    from plotly.subplots import make_subplots

    from sim.outputs.results import confidence_interval

    metrics = item["metrics"]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics)
    for col, metric in enumerate(metrics, start=1):
        for label, name, color in (("without order", item["without"], "#7f7f7f"),
                                   ("with order", item["with"], "#1f77b4")):
            ci = confidence_interval([r[metric] for r in run_summary(directory, name)])
            fig.add_trace(go.Bar(x=[label], y=[ci["mean"]], showlegend=False, marker_color=color,
                                 error_y={"array": [ci["ci_high"] - ci["mean"]]}),
                          row=1, col=col)
    fig.update_layout(template="plotly_white", title="The order's effect (mean, 95% CI)")
    return fig


FIGURES = {"timeline": fig_timeline, "heatmap": fig_heatmap, "lines": fig_lines,
           "welfare_gain": fig_welfare_gain, "order_effect": fig_order_effect}


# --- Tables ---------------------------------------------------------------------------

def table_compare(item: dict, directory: Path) -> list[dict]:
    """Per metric: mean and 95% CI without and with the order, difference, the test's
    p-value (paired when the replicates share seeds) adjusted across metrics by Holm,
    and the effect size."""
    from sim.outputs.compare import compare_runs
    from sim.outputs.results import confidence_interval

    base = directory / "experiments"
    tests = {r["metric"]: r for r in compare_runs(base / item["without"], base / item["with"])}
    rows = []
    for metric in item["metrics"]:
        without = confidence_interval([r[metric] for r in run_summary(directory, item["without"])])
        with_ = confidence_interval([r[metric] for r in run_summary(directory, item["with"])])
        test = tests.get(metric, {})
        rows.append({"metric": metric, "without_mean": without["mean"],
                     "without_ci": f"[{without['ci_low']:.4g}, {without['ci_high']:.4g}]",
                     "with_mean": with_["mean"],
                     "with_ci": f"[{with_['ci_low']:.4g}, {with_['ci_high']:.4g}]",
                     "difference": with_["mean"] - without["mean"],
                     "test": test.get("test", ""), "p_holm": test.get("p_value_holm", math.nan),
                     "effect_size": test.get("effect_size", math.nan)})
    return rows


TABLES = {"compare": table_compare}


def latex_table(rows: list[dict], caption: str) -> str:
    columns = list(rows[0])
    def cell(v):
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        return text.replace("_", r"\_").replace("%", r"\%")
    lines = [r"\begin{table}", r"\centering", f"\\caption{{{cell(caption)}}}",
             r"\begin{tabular}{l" + "r" * (len(columns) - 1) + "}", r"\hline",
             " & ".join(cell(c) for c in columns) + r" \\", r"\hline"]
    lines += [" & ".join(cell(r[c]) for c in columns) + r" \\" for r in rows]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def journal_page(fig: go.Figure, columns: int) -> go.Figure:
    """Sized for one or two columns of a printed page, in legible type, with one legend
    below the plot; no figure title (the caption says it), so none collides."""
    rows = len({tuple(axis.domain or (0, 1)) for axis in fig.select_yaxes()})
    height = 100 + 170 * rows
    # the legend goes 60 px below the plot area, clear of the x axis's title
    fig.update_layout(height=height, width=columns * COLUMN_WIDTH, title=None,
                      font={"size": FONT_SIZE}, margin={"l": 55, "r": 15, "t": 30, "b": 45},
                      legend={"orientation": "h", "yanchor": "top", "y": -60 / (height - 75),
                              "font": {"size": FONT_SIZE - 1}})
    fig.update_annotations(font_size=FONT_SIZE)
    return fig


def claims(spec: dict) -> list[tuple[str, str]]:
    """(figure, the claim it supports), as the spec states them."""
    return [(item["name"], item.get("claim", "(the spec states no claim)"))
            for item in spec.get("figures", [])]


def make_outputs(spec: dict, directory: Path, png: bool = True) -> None:
    from sim.outputs import files as outputs
    from sim.outputs.figures import write_figures

    figures = {item["name"]: journal_page(FIGURES[item["kind"]](item, directory),
                                          item.get("columns", 1))
               for item in spec.get("figures", [])}
    write_figures(figures, directory / "figures", png=png, scale=PNG_SCALE)
    if figures:
        outputs.write_csv(directory / "figures" / "claims.csv", ["figure", "claim"],
                          [{"figure": f, "claim": c} for f, c in claims(spec)])
    (directory / "tables").mkdir(exist_ok=True)
    for item in spec.get("tables", []):
        rows = TABLES[item["kind"]](item, directory)
        outputs.write_csv(directory / "tables" / f"{item['name']}.csv", list(rows[0]), rows)
        (directory / "tables" / f"{item['name']}.tex").write_text(
            latex_table(rows, item.get("caption", item["name"])), encoding="utf-8")
