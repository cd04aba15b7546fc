"""The model's agents: users on the grid, platforms and the regulator."""

from __future__ import annotations

import numpy as np
from mesa import Agent
from mesa.discrete_space import CellAgent, OrthogonalMooreGrid

from sim.market import TOKEN_FAIL, TOKEN_OK, MarketView, ShareLedger, popcount
from sim.rules import draw_category, logit_choice, option_utilities, share_outcome
from sim.scenario import SURFACES, PlatformSpec, RegulatorSpec
from sim.strategies import STRATEGIES


class UserAgent(CellAgent):
    """A person on one or more messaging platforms who shares links with their ties."""

    def __init__(self, model, cell, platforms: int):
        super().__init__(model)
        self.cell = cell
        self.platforms = platforms          # bit mask over messaging platforms
        self.next_platforms = platforms
        self.ties: list[UserAgent] = []
        self.paid_token = False

    def share(self, view: MarketView) -> list[tuple]:
        """Share this week's links; return (common, content, surface, outcome, value) each."""
        rng, users = self.model.rng, self.model.scenario.users
        shares = []
        for _ in range(rng.poisson(users.share_rate)):
            partner = self.model.users.partner_of(self)
            if partner is None:
                continue
            content = draw_category(view.content_cdf, rng.random())
            surface = draw_category(view.surface_cdf, rng.random())
            value = rng.exponential(users.share_value)
            common = view.route[self.platforms, partner.platforms]
            outcome = share_outcome(view, users, common, content, surface, value, rng.random())
            shares.append((common, content, surface, int(outcome), value))
        self.paid_token = any(s[3] in (TOKEN_OK, TOKEN_FAIL) for s in shares)
        return shares

    def choose_platforms(self, view: MarketView, neighbour_counts: np.ndarray) -> None:
        """With chance revision_rate, pick a set of platforms by logit over utilities."""
        rng, users = self.model.rng, self.model.scenario.users
        if rng.random() >= users.revision_rate:
            return
        utilities = option_utilities(view, users, self.platforms, neighbour_counts)
        self.next_platforms = int(view.options[logit_choice(utilities, users.choice_intensity,
                                                            rng.random())])

    def adopt_choice(self) -> int:
        """Switch to the chosen platforms; return how many were joined."""
        joined = int(popcount(self.next_platforms & ~self.platforms))
        self.platforms = self.next_platforms
        return joined


class AgentUsers:
    """The agent engine: one UserAgent per occupied cell of an OrthogonalMooreGrid torus."""

    def __init__(self, model):
        self.model = model
        scenario, rng = model.scenario, model.rng
        grid_spec = scenario.grid
        self.grid = OrthogonalMooreGrid((grid_spec.width, grid_spec.height), torus=True,
                                        capacity=1, random=model.random)
        initial = np.cumsum([p.initial_share for p in scenario.messaging])
        for cell in self.grid.all_cells:
            if rng.random() < grid_spec.density:
                UserAgent(model, cell, initial_platforms(rng, initial, scenario.users))
        self.agents = model.agents_by_type[UserAgent]
        self.members = list(self.agents)
        for index, user in enumerate(self.members):
            user.index = index
        for user in self.members:
            user.ties = [self.rewired(user, tie) for tie in
                         user.cell.get_neighborhood(radius=grid_spec.radius).agents]

    def rewired(self, user: UserAgent, tie: UserAgent) -> UserAgent:
        """Keep a grid tie, or with chance `rewire` replace it by a tie to a random user."""
        if self.model.rng.random() < self.model.scenario.grid.rewire:
            return self.random_other(user)
        return tie

    def random_other(self, user: UserAgent) -> UserAgent:
        n = len(self.members)
        return self.members[(user.index + 1 + int(self.model.rng.integers(n - 1))) % n]

    def partner_of(self, user: UserAgent) -> UserAgent | None:
        if len(self.members) < 2:
            return None
        if self.model.scenario.grid.well_mixed:
            return self.random_other(user)
        if not user.ties:
            return None
        return user.ties[int(self.model.rng.integers(len(user.ties)))]

    def masks(self) -> np.ndarray:
        return np.fromiter((u.platforms for u in self.members), dtype=np.int64,
                           count=len(self.members))

    def share(self, view: MarketView) -> ShareLedger:
        ledger = ShareLedger.empty(len(self.model.scenario.messaging), len(view.content_cdf))
        shares = [s for user in self.members for s in user.share(view)]
        if shares:
            common, content, surface, outcome, value = map(np.array, zip(*shares))
            ledger.record(common, content, surface, outcome, value,
                          self.model.scenario.users.token_cost)
        return ledger

    def choose_platforms(self, view: MarketView) -> int:
        """Everyone decides on the same state, then all switch (synchronous revision)."""
        n_masks = 2 ** len(self.model.scenario.messaging)
        if self.model.scenario.grid.well_mixed:
            everyone = np.bincount(self.masks(), minlength=n_masks)
        for user in self.members:
            counts = everyone if self.model.scenario.grid.well_mixed else np.bincount(
                [t.platforms for t in user.ties], minlength=n_masks)
            user.choose_platforms(view, counts)
        return sum(user.adopt_choice() for user in self.members)


def initial_platforms(rng, initial_cdf: np.ndarray, users) -> int:
    """A user's first platform by initial share; maybe a second one (multihoming)."""
    first = int(draw_category(initial_cdf, rng.random()))
    mask = 1 << first
    if users.max_platforms >= 2 and rng.random() < users.initial_multihoming:
        weights = np.diff(initial_cdf, prepend=0.0)
        weights[first] = 0.0
        if weights.sum() > 0:
            mask |= 1 << int(draw_category(np.cumsum(weights) / weights.sum(), rng.random()))
    return mask


class Platform(Agent):
    """A messaging and/or content platform, owned by a group, with a link strategy."""

    def __init__(self, model, spec: PlatformSpec):
        super().__init__(model)
        self.spec = spec
        self.name, self.owner = spec.name, spec.owner
        names = [p.name for p in model.scenario.messaging]
        self.host = names.index(spec.name) if spec.messaging else None
        self.strategy = STRATEGIES[spec.strategy](self)

    def review_links(self) -> None:
        """On review weeks, and on the eve of a deadline, let the strategy set the links."""
        if self.host is None:
            return
        week = self.model.steps
        if week % self.spec.review_period == 0 or self.model.regulator.deadline_next(week):
            self.strategy.review(self.model)


class Regulator(Agent):
    """The industry ministry: orders links open, audits, fines and escalates."""

    def __init__(self, model, spec: RegulatorSpec):
        super().__init__(model)
        self.spec = spec
        n_hosts = len(model.scenario.messaging)
        if spec.phases:
            starts = [min((p.step for p in spec.phases if s in p.surfaces), default=np.inf)
                      for s in SURFACES]
        else:
            starts = [spec.deadline_step] * len(SURFACES)
        self.start = np.array(starts, dtype=float) if spec.policy == "order" else np.full(
            len(SURFACES), np.inf)
        self.offences = np.zeros(n_hosts, dtype=np.int64)
        self.named_until = np.zeros(n_hosts, dtype=np.int64)
        self.suspended_until = np.zeros(n_hosts, dtype=np.int64)
        self.audits_seen = 0       # routine audits observed by platforms (not blitzes)
        self.audit_chances = 0
        self.fines = np.zeros(len(model.scenario.owners))
        self.violations = 0

    def required(self, week: int) -> np.ndarray:
        """Surfaces that must be open in this week."""
        return week >= self.start

    def interoperable(self, week: int) -> bool:
        """Messaging interoperability is in force from the first deadline, if ordered."""
        return bool(self.spec.interoperability and week >= self.start.min())

    def deadline_next(self, week: int) -> bool:
        return bool(np.any(self.start == week + 1))

    def blitz(self, week: int) -> bool:
        return bool(np.any(self.start == week))

    def penalties(self, week: int) -> np.ndarray:
        return np.where(week < self.named_until, self.spec.naming_penalty, 0.0)

    def suspended(self, week: int) -> np.ndarray:
        return week < self.suspended_until

    def step(self) -> None:
        """Announce, then audit every messaging platform and fine what is found blocked."""
        model, spec, week = self.model, self.spec, self.model.steps
        self.fines[:] = 0.0
        self.violations = 0
        if spec.policy == "order" and week == spec.announce_step:
            model.log("announcement", "", "order to open rival links")
        required = self.required(week)
        draws = model.rng.random(len(self.offences))
        if not required.any():
            return
        blitz = self.blitz(week)
        if blitz:
            model.log("deadline", "", "must be open: " + ", ".join(
                s for s, due in zip(SURFACES, self.start == week) if due))
        probability = spec.deadline_audit if blitz else spec.audit_probability
        for host, draw in enumerate(draws):
            audited = draw < probability
            if not blitz:
                self.audit_chances += 1
                self.audits_seen += int(audited)
            if audited:
                self.audit(host, required)

    def audit(self, host: int, required: np.ndarray) -> None:
        model, spec, week = self.model, self.spec, self.model.steps
        platform = model.scenario.messaging[host]
        found = int((model.links.blocked[host] & model.links.rival[host] & required[None, :]).sum())
        model.log("audit", platform.name, f"{found} blocked link(s) found")
        if not found:
            return
        owner = model.scenario.owners.index(platform.owner)
        fine = min(found * self.fine_per_violation(host), self.cap_room(owner))
        self.fines[owner] += fine
        self.violations += found
        self.offences[host] += 1
        model.log("fine", platform.name, f"{fine:.4g} for {found} violation(s)")
        if spec.naming and self.offences[host] >= spec.naming_after:
            self.named_until[host] = week + spec.naming_steps
            model.log("naming", platform.name, f"named for {spec.naming_steps} weeks")
        if spec.suspend_registrations and self.offences[host] >= spec.suspend_after:
            self.suspended_until[host] = week + spec.suspension_steps
            model.log("suspension", platform.name,
                      f"registrations suspended for {spec.suspension_steps} weeks")
        if spec.forced_open and self.offences[host] >= spec.forced_open_after:
            model.links.force_open(host, required)
            model.log("forced_open", platform.name, "links opened by the regulator")

    def fine_per_violation(self, host: int) -> float:
        """The fine for one violation, escalated for each earlier offence."""
        owner = self.model.scenario.messaging[host].owner
        base = self.spec.fine
        if self.spec.fine_kind == "revenue_share":
            base *= 52 * self.model.weekly_revenue(owner)
        return base * self.spec.fine_escalation ** self.offences[host]

    def cap_room(self, owner: int) -> float:
        """What an owner can still be fined before reaching the annual cap."""
        annual = 52 * self.model.weekly_revenue(self.model.scenario.owners[owner])
        return max(self.spec.fine_cap * annual - self.model.fines_last_year(owner), 0.0)

    def belief(self, spec: PlatformSpec) -> float:
        """A platform's belief of the weekly audit probability: its prior, updated by
        the routine audits it has seen (a beta-binomial mean)."""
        return ((spec.belief_weight * spec.audit_belief + self.audits_seen)
                / max(spec.belief_weight + self.audit_chances, 1e-12))

    def expected_fine(self, model, host: int, surface: int, horizon: int) -> float:
        """Expected fine over the next weeks for keeping one link blocked, as the
        platform sees it: announced blitzes at their probability, routine audits at
        its belief, nothing before the order is announced. An announced blitz is
        believed as far as the deadline is credible to the platform."""
        week = model.steps
        if self.spec.policy != "order" or week < self.spec.announce_step:
            return 0.0
        spec = model.scenario.messaging[host]
        owner = model.scenario.owners.index(spec.owner)
        belief = self.belief(spec)
        blitz = self.spec.deadline_audit * spec.deadline_credibility
        audits = sum(
            (blitz if self.blitz(t) else belief)
            for t in range(week + 1, week + horizon + 1) if self.required(t)[surface])
        return audits * min(self.fine_per_violation(host), self.cap_room(owner))
