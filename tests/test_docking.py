"""Docking the array engine to the agent engine (Axtell, Axelrod, Epstein & Cohen 1996).

Both engines run the same scenarios over 30 replicates; for every key output the two
samples must be indistinguishable by a two-sample Kolmogorov-Smirnov test. The last
test changes one rule in the array engine only and checks that docking catches it.
Seeds are fixed, so each verdict is reproducible, not a coin toss.
"""

import numpy as np
import pytest
from scipy import stats

from sim.model import array_engine
from sim.experiments.runner import run_replicate

from conftest import small

REPLICATES = 30
ALPHA = 0.01          # per scenario, Bonferroni-split across its outputs

SCENARIOS = {
    "open world": ("open_by_default", "users.revision_rate=0.2"),
    "china_2021": ("china_2021_homogeneous",),
    "warning pages": ("no_regulation", 'platforms.WeChat.warns=["JD"]',
                      'platforms.QQ.warns=["DingTalk", "JD"]', "users.revision_rate=0.2"),
    "heavy multihoming": ("no_regulation", "users.initial_multihoming=0.8",
                          "users.multihoming_cost=0.05", "users.revision_rate=0.2"),
    "cohorts": ("no_regulation", 'users.cohorts=[{name="young", share=0.35, taste={QQ=1.0}, '
                'sharing=2.5, initial_share={WeChat=0.3, QQ=0.7}}, {name="others", share=0.65}]',
                "users.cohort_clustering=0.7", "users.cohort_patch=3", "users.revision_rate=0.2"),
    "well mixed": ("no_regulation", "grid.well_mixed=true", "users.revision_rate=0.3",
                   "grid.density=0.8"),
    "long-range ties": ("no_regulation", "grid.extra_ties=3", "grid.degree_tail=1.8",
                        "users.group_size=10", "users.revision_rate=0.2", "grid.density=0.9"),
}


def outcomes(scenario) -> dict[str, np.ndarray]:
    """Each replicate's key outputs: final users by platform, links blocked and warned,
    total friction, mean consumer surplus and total welfare, shares abandoned and visits
    diverted."""
    results = {}
    for replicate in range(REPLICATES):
        rows = run_replicate(scenario, replicate).rows
        measures = {f"final_users_{p.name}": rows[-1][f"users_{p.name}"]
                    for p in scenario.messaging}
        measures.update(final_links_blocked=rows[-1]["links_blocked"],
                        mean_links_warned=np.mean([r["links_warned"] for r in rows]),
                        total_friction=sum(r["friction_cost"] for r in rows),
                        mean_consumer_surplus=np.mean([r["consumer_surplus"] for r in rows]),
                        mean_total_welfare=np.mean([r["total_welfare"] for r in rows]),
                        total_abandoned=sum(r["shares_abandoned"] for r in rows),
                        total_diverted=sum(r["visits_diverted"] for r in rows))
        for name, value in measures.items():
            results.setdefault(name, []).append(value)
    return {name: np.array(values) for name, values in results.items()}


def docking_p_values(name: str, seed_offset: int = 0) -> dict[str, float]:
    base, *overrides = SCENARIOS[name]
    runs = {}
    for engine, seed in (("agent", 11 + seed_offset), ("array", 5011 + seed_offset)):
        # no burn-in: it is the same weekly step, repeated, and would triple the cost
        runs[engine] = outcomes(small(base, *overrides, f"engine=\"{engine}\"", f"seed={seed}",
                                      "burn_in.weeks=0", size=14, steps=40))
    return {metric: stats.ks_2samp(runs["agent"][metric], runs["array"][metric]).pvalue
            if np.ptp(np.concatenate([runs["agent"][metric], runs["array"][metric]])) > 0
            else 1.0
            for metric in runs["agent"]}


@pytest.mark.parametrize("name", SCENARIOS)
def test_engines_give_indistinguishable_distributions(name):
    p_values = docking_p_values(name)
    threshold = ALPHA / len(p_values)
    assert all(p > threshold for p in p_values.values()), p_values


def test_docking_catches_a_rule_changed_in_one_engine(monkeypatch):
    """The array engine's token rule changed: tokens only for views worth their cost
    plus a share's mean value. Docking must now reject on the outputs that rule moves."""
    original = array_engine._share_kernel

    def mutant(*args):
        *head, token_cost, token_success, warning_cost, warning_dropout, counts, lost = args
        return original(*head, token_cost + 1.0, token_success, warning_cost, warning_dropout,
                        counts, lost)

    monkeypatch.setattr(array_engine, "_share_kernel", mutant)
    p_values = docking_p_values("china_2021")
    threshold = ALPHA / len(p_values)
    assert p_values["total_abandoned"] < threshold, p_values
