"""Validation against theory: the analytical limit of Brock & Durlauf (2001)."""

import numpy as np
import pytest
from scipy import optimize

from sim.runner import run_replicate
from sim.scenario import from_dict

N_SIDE = 100          # 10,000 users


def brock_durlauf_roots(beta: float, dq: float, J: float) -> list[float]:
    """Every solution of x = 1 / (1 + exp(-beta (dq + J (2x - 1)))) in (0, 1)."""
    def gap(x):
        return 1.0 / (1.0 + np.exp(-beta * (dq + J * (2 * x - 1)))) - x
    grid = np.linspace(1e-9, 1 - 1e-9, 2001)
    values = gap(grid)
    return [optimize.brentq(gap, a, b) for a, b, fa, fb in
            zip(grid, grid[1:], values, values[1:]) if fa * fb < 0]


def two_platform_world(beta: float, dq: float, J: float, start: float) -> dict:
    """Two messaging platforms, one each, nothing blocked, no friction or switching
    cost, everyone meets everyone: the model reduced to Brock & Durlauf's."""
    return {
        "name": "brock_durlauf", "steps": 160, "replicates": 1, "seed": 3, "engine": "array",
        "grid": {"width": N_SIDE, "height": N_SIDE, "well_mixed": True, "rewire": 0.0},
        "users": {"share_rate": 0.0, "token_cost": 0.0, "revision_rate": 0.2,
                  "choice_intensity": beta, "network_weight": J, "switching_cost": 0.0,
                  "multihoming_cost": 0.0, "max_platforms": 1},
        "platforms": [
            {"name": "A", "owner": "a", "messaging": True, "initial_share": start, "quality": dq},
            {"name": "B", "owner": "b", "messaging": True, "initial_share": 1 - start,
             "quality": 0.0},
            {"name": "C", "owner": "c", "content": True, "content_weight": 1.0}],
    }


def long_run_share(world: dict, replicate: int = 0) -> float:
    rows = run_replicate(from_dict(world), replicate).rows
    return float(np.mean([r["users_A"] for r in rows[-60:]]))


def tolerance(x: float) -> float:
    """Four standard errors of a share among N users, plus the roots' own precision."""
    return 4 * np.sqrt(x * (1 - x) / N_SIDE**2) + 1e-3


def test_single_equilibrium_regime_matches_the_unique_fixed_point():
    beta, dq, J = 2.0, 0.2, 0.4                     # beta J < 1: one equilibrium
    (root,) = brock_durlauf_roots(beta, dq, J)
    for start in (0.1, 0.9):                        # wherever it starts
        share = long_run_share(two_platform_world(beta, dq, J, start))
        assert share == pytest.approx(root, abs=tolerance(root))


def test_bistable_regime_reaches_the_equilibrium_its_start_selects():
    beta, dq, J = 2.0, 0.1, 1.5                     # beta J > 1: three fixed points
    low, middle, high = brock_durlauf_roots(beta, dq, J)
    assert low < 0.5 < high
    assert long_run_share(two_platform_world(beta, dq, J, 0.8)) == pytest.approx(
        high, abs=tolerance(high))
    assert long_run_share(two_platform_world(beta, dq, J, 0.2)) == pytest.approx(
        low, abs=tolerance(low))
    # the middle root is unstable: starting just on either side leads away from it
    assert long_run_share(two_platform_world(beta, dq, J, middle + 0.05)) > middle + 0.2
    assert long_run_share(two_platform_world(beta, dq, J, middle - 0.05)) < middle - 0.2


# --- Stylized facts of the case (../shared/CASE.md), across replicates --------------

from scipy import stats  # noqa: E402

from sim.model import WalledGardenModel  # noqa: E402
from sim.runner import replicate_seed  # noqa: E402

from conftest import small  # noqa: E402

REPLICATES = range(20)


def test_without_an_order_the_largest_platform_blocks_and_the_smallest_opens():
    """Katz & Shapiro; Crémer, Rey & Tirole: the large network prefers incompatibility."""
    scenario = small("no_regulation", size=20, steps=60)
    largest, smallest = [], []
    for replicate in REPLICATES:
        model = WalledGardenModel(scenario, rng=replicate_seed(scenario.seed, replicate))
        for _ in range(scenario.steps):
            model.step()
        blocked = (model.links.blocked & model.links.rival).sum(axis=(1, 2))
        largest.append(blocked[0])             # WeChat
        smallest.append(blocked[2])            # DingTalk
    assert np.mean(largest) > 5 * np.mean(smallest)
    assert stats.wilcoxon(largest, smallest, alternative="greater").pvalue < 0.001


def test_weak_auditing_after_the_deadline_blitz_brings_reblocking():
    """QQ, 17 September 2021: opened for the blitz, blocked again when audits are rare."""
    def reblocks(audit_probability):
        scenario = small("china_2021", "regulator.phases=[]", "regulator.forced_open=false",
                         f"regulator.audit_probability={audit_probability}", size=20, steps=60)
        return [sum(r["reblocks"] for r in run_replicate(scenario, k).rows) for k in REPLICATES]
    weak, strong = reblocks(0.0), reblocks(0.3)
    assert np.mean(weak) > 1 and np.mean(strong) < np.mean(weak) / 4
    assert stats.mannwhitneyu(weak, strong, alternative="greater").pvalue < 0.001


def test_a_credible_deadline_collapses_friction():
    scenario = small("china_2021", "regulator.phases=[]", "regulator.announce_step=10",
                     "regulator.deadline_step=12", "regulator.audit_probability=1.0",
                     "regulator.fine=5.0", "regulator.fine_cap=100", "regulator.forced_open=false",
                     size=20, steps=40)
    before, after = [], []
    for replicate in REPLICATES:
        rows = run_replicate(scenario, replicate).rows
        before.append(np.mean([r["friction_cost"] for r in rows[:9]]))
        after.append(np.mean([r["friction_cost"] for r in rows[12:]]))
    assert min(before) > 0 and max(after) == 0
