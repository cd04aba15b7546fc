"""The walled-garden market: users, platforms and a regulator, one step a week."""

from __future__ import annotations

import math
import os

import numpy as np
from mesa import Model

from sim.agents import AgentUsers, Platform, Regulator
from sim.array_engine import ArrayUsers
from sim.market import OUTCOMES, LinkPolicy, ShareLedger, market_view, popcount
from sim.metrics import step_row
from sim.scenario import Scenario

DEBUG = os.environ.get("WALLED_GARDEN_DEBUG", "") not in ("", "0")
TRAFFIC_MEMORY = 0.25   # weight of the newest week in the platforms' traffic estimate
ENGINES = {"agent": AgentUsers, "array": ArrayUsers}


class WalledGardenModel(Model):
    """Messaging platforms block rival links; users share around the blocks or not;
    a regulator may order the links open.

    Each week: the regulator audits the policy in force; users share links; owners
    earn revenue and pay fines; platforms review their links; users reconsider their
    platforms; the week's measurements are recorded.
    """

    def __init__(self, scenario: Scenario, rng=None):
        super().__init__(rng=rng)
        self.scenario = scenario
        self.events: list[dict] = []
        self.rows: list[dict] = []
        self.links = LinkPolicy(scenario)
        self.regulator = Regulator(self, scenario.regulator)
        self.platforms = [Platform(self, spec) for spec in scenario.platforms]
        self.users = ENGINES[scenario.engine](self)
        self.count_users()
        owners, hosts = len(scenario.owners), len(scenario.messaging)
        self.revenue_history = np.zeros((0, owners))
        self.fine_history = np.zeros((0, owners))
        self.traffic = np.zeros((2 ** hosts, len(scenario.content), 3))
        self.ledger = ShareLedger.empty(hosts, len(scenario.content))
        self.view = self.market_view()
        self.joined = 0

    def step(self) -> None:
        self.links.reblocks = 0
        self.regulator.step()
        self.view = self.market_view()
        self.ledger = self.users.share(self.view)
        self.settle_accounts()
        for platform in self.platforms:
            platform.review_links()
        self.view = self.market_view()
        self.joined = self.users.choose_platforms(self.view)
        self.count_users()
        self.rows.append(step_row(self))
        if DEBUG:
            check_invariants(self)

    def market_view(self):
        week = self.steps
        return market_view(self.scenario, self.links, self.regulator.penalties(week),
                           self.regulator.suspended(week), self.regulator.interoperable(week))

    def settle_accounts(self) -> None:
        """This week's revenue by owner: visits, diversion and users; then fines."""
        scenario, counts = self.scenario, self.ledger.counts
        owners = list(scenario.owners)
        revenue = np.zeros(len(owners))
        completed = counts[..., OUTCOMES.index("direct")] + counts[..., OUTCOMES.index("token_ok")]
        lost = counts[..., OUTCOMES.index("token_fail")] + counts[..., OUTCOMES.index("abandoned")]
        for c, spec in enumerate(scenario.content):
            revenue[owners.index(spec.owner)] += completed[:, c].sum() * spec.revenue_per_visit
        masks = np.arange(counts.shape[0])
        sizes = np.maximum(popcount(masks), 1)
        on_host = self.user_counts()
        for h, spec in enumerate(scenario.messaging):
            carried = ((masks >> h) & 1) / sizes                    # host's part of each mask
            lost_visits = np.einsum("m,mcs,c->", carried, lost, self.visit_values())
            revenue[owners.index(spec.owner)] += (spec.diversion * lost_visits
                                                  + spec.revenue_per_user * on_host[h])
        self.revenue_history = np.vstack([self.revenue_history, revenue])
        self.fine_history = np.vstack([self.fine_history, self.regulator.fines])
        attempted = counts.sum(axis=-1)
        self.traffic += TRAFFIC_MEMORY * (attempted - self.traffic)

    def visit_values(self) -> np.ndarray:
        return np.array([c.revenue_per_visit for c in self.scenario.content])

    def count_users(self) -> None:
        """Tally users by platform set; the rest of the week reads these counts."""
        hosts = len(self.scenario.messaging)
        self.mask_counts = np.bincount(self.users.masks(), minlength=2 ** hosts)
        self.population = int(self.mask_counts.sum())

    def user_counts(self) -> np.ndarray:
        """Users on each messaging platform (multihomers counted on each)."""
        masks = np.arange(len(self.mask_counts))
        return np.array([self.mask_counts[(masks >> h) & 1 == 1].sum()
                         for h in range(len(self.scenario.messaging))])

    def user_shares(self) -> np.ndarray:
        return self.user_counts() / max(self.population, 1)

    def weekly_revenue(self, owner: str) -> float:
        """Mean weekly revenue of an owner over the last year (0 before any week)."""
        recent = self.revenue_history[-52:, self.scenario.owners.index(owner)]
        return float(recent.mean()) if len(recent) else 0.0

    def recent_profit(self, owner: str, weeks: int) -> float:
        """Mean weekly profit (revenue less fines) of an owner over the last weeks."""
        o = self.scenario.owners.index(owner)
        profit = self.revenue_history[-weeks:, o] - self.fine_history[-weeks:, o]
        return float(profit.mean()) if len(profit) else 0.0

    def fines_last_year(self, owner: int) -> float:
        return float(self.fine_history[-51:, owner].sum() + self.regulator.fines[owner])

    def log(self, event: str, platform: str, detail: str) -> None:
        self.events.append({"step": self.steps, "event": event, "platform": platform,
                            "detail": detail})


class InvariantError(AssertionError):
    """The model broke one of its own invariants: a bug, reported with its week."""


def check_invariants(model) -> None:
    """The accounting identity, counts that cannot be negative, shares that must lie
    in [0, 1], and no NaN or infinity in the week's row."""
    row, week = model.rows[-1], model.steps
    problems = []
    parts = ("shares_direct", "shares_token", "shares_abandoned", "shares_unreachable")
    if row["shares_attempted"] != sum(row[p] for p in parts):
        problems.append("shares attempted are not direct + token + abandoned + unreachable")
    counts = ("links_blocked", "violations", "reblocks", *parts)
    problems += [f"{c} is negative" for c in counts if row[c] < 0]
    problems += [f"{k} is {v}" for k, v in row.items()
                 if isinstance(v, float) and not math.isfinite(v)]
    problems += [f"{k} = {v} is outside [0, 1]" for k, v in row.items()
                 if (k.startswith("users_") or k == "multihoming_rate") and not 0 <= v <= 1]
    if not 0 < row["hhi"] <= 1:
        problems.append(f"hhi = {row['hhi']} is outside (0, 1]")
    if model.mask_counts[0] != 0:
        problems.append("some users are on no messaging platform")
    if (model.ledger.counts < 0).any() or row["fines"] < 0:
        problems.append("negative share counts or fines")
    if problems:
        raise InvariantError(f"week {week}: " + "; ".join(problems))
