"""The walled-garden market: users, platforms and a regulator, one step a week."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import partial

import numpy as np
from mesa import Model
from mesa.datacollection import DataCollector

from sim.model.agents import AgentUsers, Platform, Regulator
from sim.model.array_engine import ArrayUsers
from sim.model.cohorts import Cohorts
from sim.model.decisions import ReviewCache
from sim.model.market import (DELIVERED, LinkPolicy, ShareLedger, attention, market_view, stake,
                              substitutes)
from sim.model.metrics import choice_surplus, columns, step_row
from sim.scenario import Scenario

DEBUG = os.environ.get("WALLED_GARDEN_DEBUG", "") not in ("", "0")
ENGINES = {"agent": AgentUsers, "array": ArrayUsers}


@dataclass(frozen=True)
class UserProfile:
    """Every user's situation as platform choice sees it, with identical users merged:
    row r stands for `weight[r]` users of cohort `cohort[r]` on mask `current[r]` whose
    ties are on each mask as in `counts[r]`."""

    cohort: np.ndarray       # (R,)
    current: np.ndarray      # (R,)
    counts: np.ndarray       # (R, 2**M)
    weight: np.ndarray       # (R,)

    @classmethod
    def of(cls, cohorts: np.ndarray, masks: np.ndarray, counts: np.ndarray) -> UserProfile:
        # np.unique(axis=0)'s rows and counts, in its (lexicographic) order: it sorts the
        # rows as opaque records, which is slow; a lexsort on the columns is not
        table = np.column_stack([cohorts, masks, counts]).astype(np.int64)
        table = table[np.lexsort(table.T[::-1])]
        first = np.ones(len(table), dtype=bool)
        first[1:] = (table[1:] != table[:-1]).any(axis=1)
        rows = table[first]
        weight = np.diff(np.append(np.flatnonzero(first), len(table)))
        return cls(rows[:, 0], rows[:, 1], rows[:, 2:], weight)


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
        self.cohorts = Cohorts.of(scenario)
        self.substitutes = substitutes(scenario)    # fixed by the scenario; read every view
        self.users = ENGINES[scenario.engine](self)
        self.count_users()
        owners, hosts = len(scenario.owners), len(scenario.messaging)
        self.revenue_history = np.zeros((0, owners))
        self.fine_history = np.zeros((0, owners))
        # the views on each route, as each platform estimates them: one exponential
        # average per memory the platforms use
        self.traffic = {spec.traffic_memory: np.zeros((2 ** hosts, len(scenario.content), 3))
                        for spec in scenario.messaging}
        self.ledger = ShareLedger.empty(hosts, len(scenario.content))
        # (C, O): the part of a visit's revenue to content c that accrues to owner o
        self.visit_shares = np.array([[stake(c, o) for o in scenario.owners]
                                      for c in scenario.content])
        self.view = self.market_view()
        self.profile = self.user_profile()
        self.joined = 0
        self.diverted = np.zeros(len(scenario.content))
        self.diverted_value = 0.0
        self.surplus = (0.0, 0.0)
        self.reviews: ReviewCache | None = None     # during the week's link reviews
        self.datacollector = DataCollector(model_reporters={
            column: partial(latest, column=column)
            for column in columns(scenario) if column != "replicate"})
        self.burn_in_weeks = self.settle(scenario.burn_in)

    def step(self) -> None:
        self.advance()
        self.rows.append(step_row(self))
        self.datacollector.collect(self)
        self.running = self.steps < self.scenario.steps
        if DEBUG:
            check_invariants(self)

    def advance(self) -> None:
        """One week of the market: audits, shares, accounts, link reviews, platform choice."""
        self.links.reblocks = 0
        self.regulator.step()
        self.links.reblocked[:] = False
        self.view = self.market_view()
        self.ledger = self.users.share(self.view)
        self.settle_accounts()
        self.profile = self.user_profile()
        self.surplus = choice_surplus(self.view, self.scenario.users, self.profile)
        self.reviews = ReviewCache(self)    # what the week's reviews share; model.view is fresh
        for platform in self.platforms:
            platform.review_links()
        self.view = self.reviews.market_view()
        self.reviews = None
        self.joined = self.users.choose_platforms(self.view)
        self.count_users()

    def settle(self, burn_in) -> int:
        """Run the whole market before week 1, with no order in force (the weeks before
        it are numbered -weeks, ..., -1, before any deadline), until it is
        at rest or `burn_in.weeks` have passed; return the weeks run. Users and
        platforms settle together, so the case meets the blocks the platforms would
        themselves keep. The owners' revenue history (which fines read) and the
        platforms' traffic estimates and beliefs carry over; which links were ever
        opened starts afresh, so a re-block is one of the case's weeks."""
        self.steps = -burn_in.weeks - 1
        history = []
        for _ in range(burn_in.weeks):
            self.steps += 1
            self.advance()
            history.append(np.concatenate([self.user_shares(), self.links.blocked_share()]))
            if at_rest(history, burn_in.window, burn_in.tolerance):
                break
        weeks = self.steps + burn_in.weeks + 1
        self.steps = 0
        self.links.ever_opened[:] = False
        if weeks:
            rest = ("at rest" if at_rest(history, burn_in.window, burn_in.tolerance)
                    else "the limit: not at rest")
            self.log("burn_in", "", f"{weeks} weeks before week 1 ({rest})")
        return weeks

    def market_view(self):
        week = self.steps
        return market_view(self.scenario, self.links, self.regulator.penalties(week),
                           self.regulator.suspended(week), self.regulator.interoperable(week),
                           self.cohorts, self.substitutes)

    def user_profile(self) -> UserProfile:
        masks = np.asarray(self.users.masks(), dtype=np.int64)
        return UserProfile.of(self.users.cohorts(), masks, self.users.neighbour_counts())

    def settle_accounts(self) -> None:
        """This week's revenue by owner: visits delivered to content, visits diverted
        to the host owners' own services (each split by stakes), and users (a multihomer's
        revenue split between their platforms); then fines."""
        scenario, ledger, view = self.scenario, self.ledger, self.view
        delivered = ledger.counts[..., list(DELIVERED)].sum(axis=(0, 2, 3))      # (C,)
        self.diverted = np.einsum("mcs,mcsj->j", ledger.lost, view.divert)
        self.diverted_value = scenario.users.diverted_value * float(
            (ledger.value_lost * view.divert.sum(axis=-1)).sum())
        visit_values = np.array([c.revenue_per_visit for c in scenario.content])
        revenue = ((delivered + self.diverted) * visit_values) @ self.visit_shares
        owners = list(scenario.owners)
        attended = self.mask_counts @ attention(len(scenario.messaging))          # (M,)
        for h, spec in enumerate(scenario.messaging):
            revenue[owners.index(spec.owner)] += spec.revenue_per_user * attended[h]
        self.revenue_history = np.vstack([self.revenue_history, revenue])
        self.fine_history = np.vstack([self.fine_history, self.regulator.fines])
        views = ledger.counts.sum(axis=-1)
        first = len(self.revenue_history) == 1
        for memory, traffic in self.traffic.items():
            traffic += (1.0 if first else memory) * (views - traffic)

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

    def log(self, event: str, platform: str, detail: str) -> None:
        self.events.append({"step": self.steps, "event": event, "platform": platform,
                            "detail": detail})


def at_rest(history: list[np.ndarray], window: int, tolerance: float) -> bool:
    """Whether the last `window` weeks of the market's state (each messaging platform's
    share of users and share of rival links blocked) are at rest: the means of the
    window's two halves differ by at most `tolerance` in every entry."""
    if tolerance <= 0 or len(history) < window:
        return False
    recent = np.array(history[-window:])
    half = window // 2
    return bool(np.abs(recent[half:].mean(axis=0) - recent[:half].mean(axis=0)).max()
                <= tolerance)


def latest(model: WalledGardenModel, column: str):
    """A column's value in the last recorded week."""
    return model.rows[-1][column]


class InvariantError(AssertionError):
    """The model broke one of its own invariants: a bug, reported with its week."""


def check_invariants(model) -> None:
    """The accounting identities, counts that cannot be negative, shares that must lie
    in [0, 1], and no NaN or infinity in the week's row."""
    row, week = model.rows[-1], model.steps
    problems = []
    parts = ("shares_direct", "shares_token", "shares_abandoned", "shares_unreachable")
    if row["shares_attempted"] != sum(row[p] for p in parts):
        problems.append("shares attempted are not direct + token + abandoned + unreachable")
    welfare = row["consumer_surplus"] + row["fines"] + sum(
        row[f"profit_{owner}"] for owner in model.scenario.owners)
    if not math.isclose(row["total_welfare"], welfare, rel_tol=1e-9, abs_tol=1e-6):
        problems.append("total welfare is not consumer surplus + profits + fines")
    links = ("links_blocked_chat", "links_blocked_group", "links_blocked_feed")
    if row["links_blocked"] != sum(row[c] for c in links):
        problems.append("links blocked are not the sum over surfaces")
    counts = ("links_blocked", "links_warned", "violations", "reblocks", *parts)
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
