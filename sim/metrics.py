"""What is measured each week: one row of the output time series."""

from __future__ import annotations

import numpy as np

from sim.market import popcount
from sim.scenario import Scenario


def columns(scenario: Scenario) -> list[str]:
    """The output columns, in file order (the contract of MODEL.md)."""
    return (["replicate", "step", "hhi"]
            + [f"users_{p.name}" for p in scenario.messaging]
            + ["links_blocked", "shares_attempted", "shares_direct", "shares_token",
               "shares_abandoned", "shares_unreachable", "friction_cost", "consumer_surplus"]
            + [f"profit_{owner}" for owner in scenario.owners]
            + ["fines", "violations", "reblocks", "multihoming_rate"])


def hhi(user_counts: np.ndarray) -> float:
    """Herfindahl index of messaging users (multihomers counted on each platform)."""
    total = user_counts.sum()
    return float(((user_counts / total) ** 2).sum()) if total else 1.0


def consumer_surplus(model) -> float:
    """Users' week: value of delivered shares less token costs, plus the quality of
    the platforms they use, less multihoming costs and the switching costs paid."""
    users, scenario = model.scenario.users, model.scenario
    counts = model.user_counts()
    quality = np.array([p.quality for p in scenario.messaging])
    memberships = counts.sum()
    return float(model.ledger.value_delivered - model.ledger.token_costs
                 + counts @ quality
                 - users.multihoming_cost * (memberships - model.population)
                 - users.switching_cost * model.joined)


def multihoming_rate(mask_counts: np.ndarray) -> float:
    """Fraction of users on more than one messaging platform."""
    total = mask_counts.sum()
    several = popcount(np.arange(len(mask_counts))) > 1
    return float(mask_counts[several].sum() / total) if total else 0.0


def step_row(model) -> dict:
    """The week's measurements (replicate is filled in by the runner)."""
    scenario = model.scenario
    counts = model.user_counts()
    outcomes = model.ledger.by_outcome
    revenue = model.revenue_history[-1]
    row = {"replicate": 0, "step": model.steps, "hhi": hhi(counts)}
    for platform, n in zip(scenario.messaging, counts):
        row[f"users_{platform.name}"] = float(n / max(model.population, 1))
    row.update(
        links_blocked=model.links.count_blocked,
        shares_attempted=sum(outcomes.values()),
        shares_direct=outcomes["direct"],
        shares_token=outcomes["token"],
        shares_abandoned=outcomes["abandoned"],
        shares_unreachable=outcomes["unreachable"],
        friction_cost=model.ledger.token_costs,
        consumer_surplus=consumer_surplus(model),
    )
    for o, owner in enumerate(scenario.owners):
        row[f"profit_{owner}"] = float(revenue[o] - model.regulator.fines[o])
    row.update(
        fines=float(model.regulator.fines.sum()),
        violations=model.regulator.violations,
        reblocks=model.links.reblocks,
        multihoming_rate=multihoming_rate(model.mask_counts),
    )
    return row
