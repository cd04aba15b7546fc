"""Comparing the outcomes of two runs, or two points of sweeps, metric by metric.

An input is a run's folder (its summary.csv) or a sweep point, `SWEEP_FOLDER@POINT`
(the point's number or its id). When both sides drew the same random streams for the
same replicates (the same root seed, and common random numbers in a sweep), the
replicates are paired and the tests are paired; else they are two independent samples.
Across metrics, p-values are adjusted by Holm's method and by Benjamini-Hochberg.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from sim.outputs.folders import read_manifest


class CompareError(Exception):
    pass


@dataclass(frozen=True)
class Outcomes:
    """One side of a comparison: its name, each metric's value by replicate, and each
    replicate's random stream (entropy, spawn key), or None when it is not known."""
    name: str
    source: Path
    metrics: dict[str, dict[int, float]]
    streams: dict[int, tuple] | None


# --- Reading either side ----------------------------------------------------------------

def split_spec(spec: str) -> tuple[Path, str]:
    """The folder and the point (empty for a run) that `FOLDER[@POINT]` names."""
    folder, point = str(spec), ""
    if not Path(folder).is_dir() and "@" in folder:
        folder, _, point = folder.rpartition("@")
    return Path(folder), point


def read_outcomes(spec: str) -> Outcomes:
    """A run folder, or `SWEEP_FOLDER@POINT`."""
    directory, point = split_spec(spec)
    folder = str(directory)
    kind = (read_manifest(directory) or {}).get("kind")
    if point:
        if kind != "sweep":
            raise CompareError(f"{folder}: not a sweep's folder (no sweep manifest.json), so "
                               f"it has no point {point!r}")
        return sweep_point(directory, point)
    if kind == "sweep":
        raise CompareError(f"{folder}: a sweep's folder holds many design points; name one as "
                           f"{folder}@POINT (its number or point_id in summary.csv)")
    return run_outcomes(directory)


def run_outcomes(directory: Path) -> Outcomes:
    path = directory / "summary.csv"
    if not path.is_file():
        raise CompareError(f"{directory}: no summary.csv (is it the output of `run.py run`, "
                           "or a sweep folder without @POINT?)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise CompareError(f"{path}: not a run's summary.csv ({err})") from None
    if not rows or "replicate" not in rows[0]:
        raise CompareError(f"{path}: not a run's summary.csv (no replicate column, or no rows)")
    try:
        replicates = [int(r["replicate"]) for r in rows]
        metrics = {name: dict(zip(replicates, (float(r[name]) if r[name] != "" else math.nan
                                               for r in rows)))
                   for name in rows[0] if name not in ("replicate", "steps")}
    except (TypeError, ValueError):   # a missing cell (None) or text
        raise CompareError(f"{path}: not a run's summary.csv: some column is not numbers in "
                           "every row") from None
    root = ((read_manifest(directory) or {}).get("seeds") or {}).get("root")
    streams = ({r: (root, (r,)) for r in replicates} if isinstance(root, int) else None)
    return Outcomes(directory.name, directory, metrics, streams)


def sweep_point(directory: Path, point: str) -> Outcomes:
    """One design point of a sweep, from its per-run outcomes."""
    runs = sweep_outcomes(directory)
    ids = {r["point"]: r["point_id"] for r in runs}
    chosen = next((i for i, pid in ids.items() if point in (str(i), pid)), None)
    if chosen is None:
        raise CompareError(f"{directory}@{point}: no such point; points are numbered 0 to "
                           f"{max(ids, default=-1)} (or named by point_id in summary.csv)")
    mine = [r for r in runs if r["point"] == chosen]
    names = [k for k in mine[0] if k not in RUN_KEYS and "." not in k]
    metrics = {name: {r["replicate"]: float(r[name]) for r in mine} for name in names}
    seeds = (read_manifest(directory) or {}).get("seeds") or {}
    root, common = seeds.get("root"), seeds.get("common_random_numbers")
    streams = None
    if isinstance(root, int) and isinstance(common, bool):
        streams = {r["replicate"]: (root, (r["replicate"],) if common else
                                    (int(ids[chosen], 16), r["replicate"])) for r in mine}
    return Outcomes(f"{directory.name}@{chosen}", directory, metrics, streams)


RUN_KEYS = ("point", "point_id", "replicate", "seed", "spawn_key", "steps")


def sweep_outcomes(directory: Path) -> list[dict]:
    """One dict per run of a sweep: point, point_id, replicate, the varied parameters
    (dotted keys) and every summary metric. Read from the sweep's outcomes.parquet when
    it has one, else from the summaries its run store keeps."""
    import pyarrow.parquet as pq

    from sim.experiments.sweep import stored_runs

    table = Path(directory) / "outcomes.parquet"
    if table.is_file():
        # a metric with no value in a run (never opening) is null in the table and NaN
        # in the runs' own summaries: NaN for every reader
        return [{k: math.nan if v is None else v for k, v in row.items()}
                for row in pq.read_table(table).to_pylist()]
    runs = []
    for name in stored_runs(directory):
        match = re.fullmatch(r"runs/(\d{6})-([0-9a-f]{16})-r(\d{4})\.parquet", name)
        if not match:
            continue
        path = Path(directory) / name
        try:
            summary = json.loads(pq.read_schema(path).metadata[b"summary"])
            first = pq.read_table(path).slice(0, 1).to_pylist()[0]
        except (OSError, KeyError, ValueError, IndexError, TypeError) as err:
            raise CompareError(f"{path}: not a sweep's run ({err})") from None
        runs.append({"point": int(match[1]), "point_id": match[2], "replicate": int(match[3]),
                     **{k: v for k, v in first.items() if "." in k},
                     **{k: v for k, v in summary.items() if k != "replicate"}})
    if not runs:
        raise CompareError(f"{directory}: holds no sweep's runs (neither outcomes.parquet nor "
                           "finished runs in runs/); is it the output of `run.py sweep`?")
    return runs


# --- Tests ----------------------------------------------------------------------------

def paired(first: Outcomes, second: Outcomes) -> bool:
    """Common random numbers: each replicate drew the same stream on both sides."""
    return (first.streams is not None and second.streams is not None
            and first.streams == second.streams)


def compare_runs(a, b) -> list[dict]:
    """Per metric both sides report: means, the difference (second minus first) with its
    95% interval, an effect size (Cohen's d, or d_z when paired) with an approximate 95%
    interval, a t-test and a rank test (paired: t and Wilcoxon signed-rank; else Welch
    and Mann-Whitney U), and both p-values adjusted across metrics (Holm; the t-test's
    also by Benjamini-Hochberg). Replicates without a value (never opening) are left out."""
    first, second = read_outcomes(a), read_outcomes(b)
    if first.name == second.name:
        first, second = (Outcomes(str(o.source) + o.name[len(o.source.name):], o.source,
                                  o.metrics, o.streams) for o in (first, second))
    pair = paired(first, second)
    rows = []
    for metric, values in first.metrics.items():
        if metric not in second.metrics:
            continue
        row = (paired_test if pair else independent_test)(values, second.metrics[metric])
        if row:
            rows.append({"metric": metric, "baseline": first.name, "other": second.name,
                         "paired": pair, **row})
    if not rows:
        raise CompareError(f"{a} and {b}: no metric has a value in at least 2 replicates of "
                           "each, so no test or confidence interval is possible; run more "
                           "replicates (--replicates)")
    for column in ("p_value", "rank_p"):
        adjusted = holm([r[column] for r in rows])
        for r, p in zip(rows, adjusted):
            r[f"{column}_holm"] = p
    for r, p in zip(rows, benjamini_hochberg([r["p_value"] for r in rows])):
        r["p_value_bh"] = p
    return rows


COLUMNS = ["metric", "baseline", "other", "paired", "n_baseline", "n_other", "mean_baseline",
           "mean_other", "difference", "difference_ci_low", "difference_ci_high", "effect_size",
           "effect_size_name", "effect_ci_low", "effect_ci_high", "test", "p_value",
           "p_value_holm", "p_value_bh", "rank_test", "rank_p", "rank_p_holm"]


def paired_test(x: dict[int, float], y: dict[int, float]) -> dict | None:
    common = [r for r in sorted(x) if r in y and not (math.isnan(x[r]) or math.isnan(y[r]))]
    if len(common) < 2:
        return None
    a, b = np.array([x[r] for r in common]), np.array([y[r] for r in common])
    d = b - a
    n, sd = len(d), d.std(ddof=1)
    if sd > 0:
        t = stats.ttest_rel(b, a)
        low, high = t.confidence_interval()
        p = float(t.pvalue)
        rank = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
        effect = float(d.mean() / sd)
    else:                   # every pair differs by the same amount: no spread to test
        low = high = float(d.mean())
        p = rank = 1.0 if d.mean() == 0 else math.nan
        effect = 0.0 if d.mean() == 0 else math.nan
    half = 1.96 * math.sqrt(1 / n + effect ** 2 / (2 * n))
    return {"n_baseline": n, "n_other": n, "mean_baseline": float(a.mean()),
            "mean_other": float(b.mean()), "difference": float(d.mean()),
            "difference_ci_low": float(low), "difference_ci_high": float(high),
            "effect_size": effect, "effect_size_name": "d_z", "effect_ci_low": effect - half,
            "effect_ci_high": effect + half, "test": "paired t", "p_value": p,
            "rank_test": "Wilcoxon signed-rank", "rank_p": rank}


def independent_test(x: dict[int, float], y: dict[int, float]) -> dict | None:
    a = np.array([v for v in x.values() if not math.isnan(v)])
    b = np.array([v for v in y.values() if not math.isnan(v)])
    if len(a) < 2 or len(b) < 2:
        return None
    n1, n2 = len(a), len(b)
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    difference = float(b.mean() - a.mean())
    if pooled > 0:
        t = stats.ttest_ind(b, a, equal_var=False)
        low, high = t.confidence_interval()
        p, rank = float(t.pvalue), float(stats.mannwhitneyu(b, a).pvalue)
        effect = difference / pooled
    else:                   # both sides constant
        low = high = difference
        p = rank = 1.0 if difference == 0 else math.nan
        effect = 0.0 if difference == 0 else math.nan
    half = 1.96 * math.sqrt((n1 + n2) / (n1 * n2) + effect ** 2 / (2 * (n1 + n2)))
    return {"n_baseline": n1, "n_other": n2, "mean_baseline": float(a.mean()),
            "mean_other": float(b.mean()), "difference": difference,
            "difference_ci_low": float(low), "difference_ci_high": float(high),
            "effect_size": effect, "effect_size_name": "Cohen's d",
            "effect_ci_low": effect - half, "effect_ci_high": effect + half,
            "test": "Welch t", "p_value": p, "rank_test": "Mann-Whitney U", "rank_p": rank}


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error); NaN stays NaN and is not counted."""
    finite = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted, running = [math.nan] * len(p_values), 0.0
    for rank, i in enumerate(sorted(finite, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (len(finite) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """scipy's false-discovery-rate adjustment, over the p-values that exist."""
    finite = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    if finite:
        for i, p in zip(finite, stats.false_discovery_control([p_values[i] for i in finite])):
            adjusted[i] = float(p)
    return adjusted


# --- Writing --------------------------------------------------------------------------

def folder_name(rows: list[dict]) -> str:
    """A folder name for the comparison, from its two sides' names."""
    text = f"{rows[0]['baseline']}-vs-{rows[0]['other']}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip("._-") or "comparison"


def effect_figure(rows: list[dict]):
    """Each metric's effect size with its 95% interval, and where zero lies."""
    import plotly.graph_objects as go

    shown = [r for r in rows if not math.isnan(r["effect_size"])]
    fig = go.Figure(go.Scatter(
        x=[r["effect_size"] for r in shown], y=[r["metric"] for r in shown], mode="markers",
        error_x={"type": "data", "symmetric": False,
                 "array": [r["effect_ci_high"] - r["effect_size"] for r in shown],
                 "arrayminus": [r["effect_size"] - r["effect_ci_low"] for r in shown]}))
    fig.add_vline(x=0, line_dash="dot")
    name = rows[0]["effect_size_name"]
    fig.update_layout(template="plotly_white", height=200 + 22 * len(shown),
                      title=f"{rows[0]['other']} against {rows[0]['baseline']}: {name}, 95% CI",
                      xaxis_title=name, yaxis_autorange="reversed")
    return fig


def write_comparison(directory: Path, rows: list[dict]) -> None:
    """compare.csv, and compare.html: the effect sizes as a figure and the table."""
    import html

    from sim.outputs.figures import page_figure, write_plotlyjs
    from sim.outputs.files import write_csv

    write_csv(directory / "compare.csv", COLUMNS, rows)
    shown = ["metric", "mean_baseline", "mean_other", "difference", "difference_ci_low",
             "difference_ci_high", "effect_size", "p_value", "p_value_holm", "p_value_bh",
             "rank_p", "rank_p_holm"]
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(cell(r[c]))}</td>" for c in shown)
                    + "</tr>" for r in rows)
    first = rows[0]
    test = (f"{first['test']} and {first['rank_test']} tests, "
            + ("paired by replicate (common random numbers)" if first["paired"]
               else "independent samples"))
    figure = page_figure(effect_figure(rows), "effects")
    (directory / "compare.html").write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(folder_name(rows))}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(first['other'])} against {html.escape(first['baseline'])}</h1>
<p>{html.escape(test)}; p-values adjusted across the {len(rows)} metrics by Holm and by
Benjamini-Hochberg (bh). Differences are {html.escape(first['other'])} minus
{html.escape(first['baseline'])}, with 95% confidence intervals.</p>
{figure}
<table><tr>{''.join(f'<th>{html.escape(c)}</th>' for c in shown)}</tr>{cells}</table>
</body></html>
""", encoding="utf-8")
    write_plotlyjs(directory)


def cell(value) -> str:
    if isinstance(value, str):
        return value
    return "" if math.isnan(value) else f"{value:.4g}"
