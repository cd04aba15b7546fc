"""What is measured each week: one row of the output time series."""

from __future__ import annotations

import numpy as np

from sim.model.market import (ABANDONED, DELIVERED, DIRECT, TOKEN_FAIL, TOKEN_OK, WARNED_DROP, WARNED_OK,
                        popcount)
from sim.model.rules import inclusive_value, option_utilities
from sim.scenario import SURFACES, Scenario


def columns(scenario: Scenario) -> list[str]:
    """The output columns, in file order (the contract of MODEL.md)."""
    return (["replicate", "step", "hhi"]
            + [f"users_{p.name}" for p in scenario.messaging]
            + ["links_blocked", "shares_attempted", "shares_direct", "shares_token",
               "shares_abandoned", "shares_unreachable", "friction_cost", "consumer_surplus"]
            + [f"profit_{owner}" for owner in scenario.owners]
            + ["fines", "violations", "reblocks", "multihoming_rate"]
            + [f"links_blocked_{s}" for s in SURFACES]
            + ["links_warned", "total_welfare", "shares_warned", "shares_delivered",
               "visits_diverted"])


# What each output column means (`python run.py keys`); <platform> and <owner> stand
# for each messaging platform's and each owning group's name.
MEANINGS = {
    "replicate": "replicate number (from 0)",
    "step": "week (from 1)",
    "hhi": "Herfindahl index of messaging users (multihomers counted on each platform)",
    "users_<platform>": "share of users on the messaging platform (multihomers counted on each)",
    "links_blocked": "blocked (host, rival content, surface) triples at the end of the week",
    "shares_attempted": "views of shared links: direct + token + abandoned + unreachable",
    "shares_direct": "views through an open link, or clicked through a warning page",
    "shares_token": "views routed through a copy-paste token (whether or not it got through)",
    "shares_abandoned": "views given up: blocked and not worth a token, or dropped at a "
                        "warning page",
    "shares_unreachable": "views between two users with no messaging platform in common",
    "friction_cost": "token and warning-page costs paid",
    "consumer_surplus": "the logit inclusive value of the users' platform choice, with the "
                        "loss they anticipate from blocks replaced by the week's value of views "
                        "delivered and diverted, less friction (ODD 7.6)",
    "profit_<owner>": "revenue (visits delivered and diverted, split by stakes; users) less "
                      "fines, of the owning group",
    "fines": "fines decided this week",
    "violations": "violating links found by audits this week",
    "reblocks": "links that had been opened and were blocked again this week",
    "multihoming_rate": "share of users on more than one messaging platform",
    "links_blocked_chat": "blocked links on the chat surface",
    "links_blocked_group": "blocked links on the group surface",
    "links_blocked_feed": "blocked links on the feed surface",
    "links_warned": "links open behind a warning page",
    "total_welfare": "consumer surplus + profits + fines (fines are a transfer to the state)",
    "shares_warned": "views that met a warning page",
    "shares_delivered": "views that reached their content (direct, clicked through, or a "
                        "token that got through)",
    "visits_diverted": "expected visits diverted to the host owners' own services",
}


def hhi(user_counts: np.ndarray) -> float:
    """Herfindahl index of messaging users (multihomers counted on each platform)."""
    total = user_counts.sum()
    return float(((user_counts / total) ** 2).sum()) if total else 1.0


def choice_surplus(view, users, profile) -> tuple[float, float]:
    """Summed over users: the logit inclusive value of their platform choice in this
    week's market, and the loss from blocks and warning pages they anticipate on the
    platforms they hold (the part of their utility that the week's realised sharing
    replaces in consumer surplus)."""
    utilities = option_utilities(view, users, profile.current, profile.counts, profile.cohort)
    included = inclusive_value(utilities, users.choice_intensity)
    held = np.searchsorted(view.options, profile.current)
    ties = np.maximum(profile.counts.sum(axis=1), 1)
    anticipated = view.sharing[profile.cohort] * (
        profile.counts * view.loss_with[held]).sum(axis=1) / ties
    return float(included @ profile.weight), float(anticipated @ profile.weight)


def consumer_surplus(model) -> float:
    """Users' week: the inclusive value of their platform choice, with the loss from
    blocks they anticipate on the platforms they hold replaced by what sharing
    really brought: the value of views delivered and of visits diverted to them, less
    the token and warning-page costs paid."""
    included, anticipated = model.surplus
    ledger = model.ledger
    return float(included + anticipated + ledger.value_delivered + model.diverted_value
                 - ledger.friction)


def multihoming_rate(mask_counts: np.ndarray) -> float:
    """Fraction of users on more than one messaging platform."""
    total = mask_counts.sum()
    several = popcount(np.arange(len(mask_counts))) > 1
    return float(mask_counts[several].sum() / total) if total else 0.0


def step_row(model) -> dict:
    """The week's measurements (replicate is filled in by the runner)."""
    scenario, ledger, links = model.scenario, model.ledger, model.links
    counts = model.user_counts()
    revenue = model.revenue_history[-1]
    row = {"replicate": 0, "step": model.steps, "hhi": hhi(counts)}
    for platform, n in zip(scenario.messaging, counts):
        row[f"users_{platform.name}"] = float(n / max(model.population, 1))
    direct = ledger.total(DIRECT, WARNED_OK)
    token = ledger.total(TOKEN_OK, TOKEN_FAIL)
    abandoned = ledger.total(WARNED_DROP, ABANDONED)
    row.update(
        links_blocked=links.count_blocked,
        shares_attempted=direct + token + abandoned + ledger.unreachable,
        shares_direct=direct,
        shares_token=token,
        shares_abandoned=abandoned,
        shares_unreachable=ledger.unreachable,
        friction_cost=ledger.friction,
        consumer_surplus=consumer_surplus(model),
    )
    profits = revenue - model.regulator.fines
    for o, owner in enumerate(scenario.owners):
        row[f"profit_{owner}"] = float(profits[o])
    row.update(
        fines=float(model.regulator.fines.sum()),
        violations=model.regulator.violations,
        reblocks=links.reblocks,
        multihoming_rate=multihoming_rate(model.mask_counts),
    )
    blocked = links.blocked.sum(axis=(0, 1))
    for s, surface in enumerate(SURFACES):
        row[f"links_blocked_{surface}"] = int(blocked[s])
    row.update(
        links_warned=links.count_warned,
        # fines move money from the owners to the state: they cancel in the total
        total_welfare=row["consumer_surplus"] + float(revenue.sum()),
        shares_warned=ledger.total(WARNED_OK, WARNED_DROP),
        shares_delivered=ledger.total(*DELIVERED),
        visits_diverted=float(model.diverted.sum()),
    )
    return row
