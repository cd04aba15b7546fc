"""Summaries of runs: plain functions over rows, returning tidy rows."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from sim.scenario import Scenario

TRACKED = ("hhi", "links_blocked", "multihoming_rate", "consumer_surplus", "friction_cost",
           "shares_abandoned", "links_warned", "total_welfare")


def tracked_columns(scenario: Scenario) -> list[str]:
    return list(TRACKED[:1]) + [f"users_{p.name}" for p in scenario.messaging] + list(TRACKED[1:])


TOTALS = ("steps_to_open", "total_fines", "total_violations", "total_reblocks", "total_friction",
          "abandoned_rate")


def summary_metrics(scenario: Scenario) -> list[str]:
    """The names of a run's summary metrics (the columns of summary.csv)."""
    return list(TOTALS) + [f"{kind}_{column}" for column in tracked_columns(scenario)
                           for kind in ("final", "mean")]


# What each summary metric means (`python run.py keys`); <column> is each of the
# tracked output columns.
MEANINGS = {
    "replicate": "replicate number (from 0)",
    "steps": "weeks run",
    "steps_to_open": "first week from which no link is blocked to the end (empty if never)",
    "total_fines": "fines decided over the run",
    "total_violations": "violating links found by audits over the run",
    "total_reblocks": "links opened and blocked again over the run",
    "total_friction": "token and warning-page costs paid over the run",
    "abandoned_rate": "views abandoned per view attempted, over the run",
    "final_<column>": "the column's value in the last week",
    "mean_<column>": "the column's mean over the weeks",
}


def steps_to_open(rows: list[dict]) -> float:
    """First week from which no link is blocked for the rest of the run (NaN if never)."""
    first = math.nan
    for row in rows:
        if row["links_blocked"] == 0:
            first = row["step"] if math.isnan(first) else first
        else:
            first = math.nan
    return first


def summarize_replicate(scenario: Scenario, replicate: int, rows: list[dict]) -> dict:
    """One replicate's headline numbers: totals, final and mean values."""
    summary = {
        "replicate": replicate,
        "steps": len(rows),
        "steps_to_open": steps_to_open(rows),
        "total_fines": float(sum(r["fines"] for r in rows)),
        "total_violations": int(sum(r["violations"] for r in rows)),
        "total_reblocks": int(sum(r["reblocks"] for r in rows)),
        "total_friction": float(sum(r["friction_cost"] for r in rows)),
        "abandoned_rate": _ratio(sum(r["shares_abandoned"] for r in rows),
                                 sum(r["shares_attempted"] for r in rows)),
    }
    for column in tracked_columns(scenario):
        values = [r[column] for r in rows]
        summary[f"final_{column}"] = values[-1]
        summary[f"mean_{column}"] = float(np.mean(values))
    return summary


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else math.nan


def confidence_interval(values, level: float = 0.95) -> dict:
    """Mean, sd, n and the t confidence interval of the mean (NaNs dropped)."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def headline(summaries: list[dict]) -> list[dict]:
    """Across replicates: each summary metric with its mean and 95% interval."""
    metrics = [k for k in summaries[0] if k not in ("replicate", "steps")]
    return [{"metric": m, **confidence_interval([s[m] for s in summaries])} for m in metrics]
