"""Comparing two runs' outcomes: per metric, tests and effect sizes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from scipy import stats


class CompareError(Exception):
    pass


def read_summary(directory: Path) -> dict[str, np.ndarray]:
    path = directory / "summary.csv"
    if not path.is_file():
        raise CompareError(f"{directory}: no summary.csv (is it the output of `run.py run`?)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise CompareError(f"{path}: not a run's summary.csv ({err})") from None
    if not rows or "replicate" not in rows[0]:
        raise CompareError(f"{path}: not a run's summary.csv (no replicate column, or no rows)")
    columns = {}
    for name in rows[0]:
        if name in ("replicate", "steps"):
            continue
        try:
            columns[name] = np.array([float(r[name]) if r[name] != "" else math.nan
                                      for r in rows])
        except (TypeError, ValueError):   # a missing cell (None) or text
            raise CompareError(f"{path}: not a run's summary.csv: column {name!r} is not "
                               "numbers in every row") from None
    return columns


def compare_runs(a: Path, b: Path) -> list[dict]:
    """Welch's t-test, the Mann-Whitney U test and Cohen's d for every metric both
    runs report (replicates with no value, such as never opening, are left out)."""
    first, second = read_summary(a), read_summary(b)
    rows = []
    for metric in first:
        if metric not in second:
            continue
        x, y = first[metric], second[metric]
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        if len(x) < 2 or len(y) < 2:
            continue
        pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1))
                           / (len(x) + len(y) - 2))
        same = np.ptp(np.concatenate([x, y])) == 0
        rows.append({
            "metric": metric, "mean_a": float(x.mean()), "mean_b": float(y.mean()),
            "difference": float(y.mean() - x.mean()),
            "cohen_d": float((y.mean() - x.mean()) / pooled) if pooled > 0 else 0.0,
            "welch_p": 1.0 if same else float(stats.ttest_ind(x, y, equal_var=False).pvalue),
            "mann_whitney_p": 1.0 if same else float(stats.mannwhitneyu(x, y).pvalue),
            "n_a": len(x), "n_b": len(y),
        })
    if not rows:
        raise CompareError(f"{a} and {b}: no metric has a value in at least 2 replicates of "
                           "each run, so no test or confidence interval is possible; run more "
                           "replicates (--replicates)")
    return rows
