"""The model's agents: users on the grid, platforms and the regulator."""

from __future__ import annotations

import math

import numpy as np
from mesa import Agent
from mesa.discrete_space import CellAgent, OrthogonalMooreGrid

from sim.model.market import (OPEN, TOKEN_FAIL, TOKEN_OK, UNREACHABLE, MarketView, ShareLedger,
                              harm, popcount, route_states)
from sim.model.network import extra_ties, network_rng
from sim.model.rules import draw_category, logit_choice, option_utilities, share_outcome
from sim.scenario import SURFACES, PlatformSpec, RegulatorSpec, by_surface
from sim.model.strategies import STRATEGIES

CHAT, GROUP, FEED = range(len(SURFACES))
NEVER = np.iinfo(np.int64).min


class UserAgent(CellAgent):
    """A person on one or more messaging platforms who shares links with their ties."""

    def __init__(self, model, cell, platforms: int, cohort: int = 0):
        super().__init__(model)
        self.cell = cell
        self.cohort = cohort
        self.platforms = platforms          # bit mask over messaging platforms
        self.next_platforms = platforms
        self.ties: list[UserAgent] = []
        self.paid_token = False
        self.last_views: list[tuple] = []   # this week's shares, for the student page

    def share(self, view: MarketView) -> list[tuple]:
        """Post this week's links; return (route, content, surface, value, draw) for each
        view: a chat post reaches one tie, a group post several, a feed post all. What
        becomes of them is decided for every user's views at once (`AgentUsers.share`)."""
        rng, users = self.model.rng, self.model.scenario.users
        views = []
        for _ in range(rng.poisson(users.share_rate * view.sharing[self.cohort])):
            content, surface = divmod(int(draw_category(view.post_cdf, rng.random())),
                                      len(SURFACES))
            for partner in self.model.users.recipients(self, surface, view.recipients):
                route = int(view.route[self.platforms, partner.platforms])
                views.append((route, content, surface, rng.exponential(view.view_mean[surface]),
                              rng.random()))
        return views

    def saw(self, views: list[tuple]) -> None:
        """Keep this week's views, (route, content, surface, outcome, value), for the page."""
        self.paid_token = any(v[3] in (TOKEN_OK, TOKEN_FAIL) for v in views)
        self.last_views = views

    def choose_platforms(self, view: MarketView, neighbour_counts: np.ndarray) -> None:
        """With chance revision_rate, pick a set of platforms by logit over utilities."""
        rng, users = self.model.rng, self.model.scenario.users
        if rng.random() >= users.revision_rate:
            return
        utilities = option_utilities(view, users, self.platforms, neighbour_counts, self.cohort)
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
        cohorts = model.cohorts
        patches = cohorts.patches(rng, grid_spec.width, grid_spec.height)
        initial = np.cumsum(cohorts.initial, axis=1)
        for cell in self.grid.all_cells:
            if rng.random() < grid_spec.density:
                cohort = int(cohorts.draw(rng, patches, *cell.coordinate))
                UserAgent(model, cell, initial_platforms(rng, initial[cohort], cohorts, cohort,
                                                         scenario.users), cohort)
        self.agents = model.agents_by_type[UserAgent]
        self.members = list(self.agents)
        for index, user in enumerate(self.members):
            user.index = index
        for user in self.members:
            user.ties = [self.rewired(user, tie) for tie in
                         user.cell.get_neighborhood(radius=grid_spec.radius).agents]
        if grid_spec.extra_ties:
            self.add_extra_ties()

    def add_extra_ties(self) -> None:
        """Append each user's long-range ties (`sim.model.network`), users indexed by cell in
        row-major order as in the array engine."""
        grid_spec = self.model.scenario.grid
        by_cell = sorted(self.members, key=lambda u: (u.cell.coordinate[1], u.cell.coordinate[0]))
        start, target = extra_ties(network_rng(self.model.rng), len(by_cell),
                                   grid_spec.extra_ties, grid_spec.degree_tail)
        for i, user in enumerate(by_cell):
            user.ties += [by_cell[j] for j in target[start[i]:start[i + 1]]]

    def rewired(self, user: UserAgent, tie: UserAgent) -> UserAgent:
        """Keep a grid tie, or with chance `rewire` replace it by a tie to a random user."""
        if self.model.rng.random() < self.model.scenario.grid.rewire:
            return self.random_other(user)
        return tie

    def random_other(self, user: UserAgent) -> UserAgent:
        n = len(self.members)
        return self.members[(user.index + 1 + int(self.model.rng.integers(n - 1))) % n]

    def recipients(self, user: UserAgent, surface: int, fanout: np.ndarray) -> list[UserAgent]:
        """Who sees a post: one tie in a chat, `group_size` distinct ties in a group,
        every tie on the feed (`fanout`: `MarketView.recipients`). Well mixed, as many
        users drawn from everyone."""
        rng = self.model.rng
        if len(self.members) < 2:
            return []
        if self.model.scenario.grid.well_mixed:
            return [self.random_other(user) for _ in range(int(fanout[surface]))]
        ties = user.ties
        if surface == FEED or not ties:
            return list(ties)
        if surface == CHAT:
            return [ties[int(rng.integers(len(ties)))]]
        picked = rng.choice(len(ties), min(int(fanout[GROUP]), len(ties)), replace=False)
        return [ties[int(i)] for i in picked]

    def masks(self) -> np.ndarray:
        return np.fromiter((u.platforms for u in self.members), dtype=np.int64,
                           count=len(self.members))

    def cohorts(self) -> np.ndarray:
        return np.fromiter((u.cohort for u in self.members), dtype=np.uint8,
                           count=len(self.members))

    def share(self, view: MarketView) -> ShareLedger:
        users = self.model.scenario.users
        ledger = ShareLedger.empty(len(self.model.scenario.messaging), view.state.shape[1])
        drawn = [user.share(view) for user in self.members]
        views = [v for user_views in drawn for v in user_views]
        outcomes = []
        if views:
            route, content, surface, value, draw = map(np.array, zip(*views))
            # the week's outcomes in one call: one call per view spent most of the week
            # in numpy's overhead on single numbers
            outcome = np.full(len(route), UNREACHABLE)
            reached = route != 0
            outcome[reached] = share_outcome(
                view.state[route[reached], content[reached], surface[reached]], users,
                value[reached], draw[reached])
            ledger.record(route, content, surface, outcome, value, users)
            outcomes = outcome.tolist()
        start = 0
        for user, user_views in zip(self.members, drawn):
            user.saw([(r, c, s, o, v) for (r, c, s, v, _), o in
                      zip(user_views, outcomes[start:start + len(user_views)])])
            start += len(user_views)
        return ledger

    def neighbour_counts(self, users=None) -> np.ndarray:
        """(n, 2**M): how many of each user's ties are on each mask (well mixed: the
        whole population's counts)."""
        n_masks = 2 ** len(self.model.scenario.messaging)
        members = self.members if users is None else users
        if self.model.scenario.grid.well_mixed:
            everyone = np.bincount(self.masks(), minlength=n_masks)
            return np.tile(everyone, (len(members), 1))
        counts = np.zeros((len(members), n_masks), dtype=np.int64)
        for row, user in enumerate(members):
            counts[row] = np.bincount([t.platforms for t in user.ties], minlength=n_masks)
        return counts

    def choose_platforms(self, view: MarketView) -> int:
        """Everyone decides on the same state, then all switch (synchronous revision)."""
        counts = self.neighbour_counts()
        for user, row in zip(self.members, counts):
            user.choose_platforms(view, row)
        return sum(user.adopt_choice() for user in self.members)


def initial_platforms(rng, initial_cdf: np.ndarray, cohorts, cohort: int, users) -> int:
    """A user's first platform by initial share; maybe a second one (multihoming,
    `Cohorts.second_chance`, `second_cdf`)."""
    first = int(draw_category(initial_cdf, rng.random()))
    mask = 1 << first
    if users.max_platforms >= 2 and rng.random() < cohorts.second_chance[cohort, first]:
        mask |= 1 << int(draw_category(cohorts.second_cdf[cohort, first], rng.random()))
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

    def decides(self, week: int) -> bool:
        """Its decision points: every `review_period` weeks, on the eve of a deadline and
        at the end of a deadline week (after the inspection it has just seen)."""
        regulator = self.model.regulator
        return (week % self.spec.review_period == 0 or regulator.deadline_next(week)
                or regulator.blitz(week))

    def next_decision(self, week: int) -> int:
        """Weeks until its next decision point after this one."""
        ahead = 1
        while not self.decides(week + ahead) and ahead < self.spec.review_period:
            ahead += 1
        return ahead

    def review_links(self) -> None:
        if self.host is not None and self.decides(self.model.steps):
            self.strategy.review(self.model)


class Regulator(Agent):
    """The industry ministry: orders links open, audits, fines and escalates.

    Violations are found by audits (each violating link seen with its surface's
    visibility) and by users' complaints, which report a violating link in any week
    with a chance that grows with what it costs them. Finding any is one decision
    against the platform's group (the undertaking), whatever the number of links
    found: a fine (a share of the group's previous year's revenue, or a fixed sum)
    escalated for the group's earlier decisions and capped per decision, and the
    measures whose turn has come, applied to the platform found. Inspections are
    public: every platform sees them.
    """

    MEASURES = ("naming", "suspend_registrations", "forced_open")

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
        self.visibility = np.array(by_surface(spec.visibility))
        owners = model.scenario.owners
        # decisions are against the undertaking: a group's hosts share its record
        self.group = [owners.index(p.owner) for p in model.scenario.messaging]
        self.offences = np.zeros(len(owners), dtype=np.int64)  # decisions against each group
        self.capped = np.zeros(len(owners), dtype=np.int64)    # of which fined at the cap
        # the week each measure lasts until: none yet, not even in a burn-in's weeks < 0
        self.named_until = np.full(n_hosts, NEVER, dtype=np.int64)
        self.suspended_until = np.full(n_hosts, NEVER, dtype=np.int64)
        # inspections seen by every platform: (audits, platform-weeks), routine and deadline
        self.seen = {"routine": [0, 0], "deadline": [0, 0]}
        self.audits: list[dict] = []   # every audit: week, host and the fine decided (0: none)
        self.fines = np.zeros(len(model.scenario.owners))
        self.violations = 0

    def announced(self, week: int) -> bool:
        return self.spec.policy == "order" and week >= self.spec.announce_step

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

    def violating(self, host: int) -> np.ndarray:
        """(C, S): the host's links that break the order where it is in force: blocked,
        and behind a warning page unless warnings are accepted."""
        links = self.model.links
        bad = links.blocked[host] | (links.warned[host] & (not self.spec.accept_warning))
        return bad & self.required(self.model.steps)[None, :]

    def complained_harm(self, host: int) -> np.ndarray:
        """(C, S): what the host's links cost users a week per thousand users at their
        present states, at last week's views on each route: what users complain of."""
        model = self.model
        states = np.where(model.links.rival, model.links.state, OPEN)
        views = model.ledger.counts.sum(axis=-1)
        return harm(route_states(states), views, model.view.view_mean,
                    model.scenario.users, host) * (1000.0 / max(model.population, 1))

    def step(self) -> None:
        """Announce, then audit every messaging platform drawn, reported for a re-block
        or complained of, and decide on what is found."""
        model, spec, week = self.model, self.spec, self.model.steps
        self.fines[:] = 0.0
        self.violations = 0
        if spec.policy == "order" and week == spec.announce_step:
            model.log("announcement", "", "order to open rival links")
        draws = model.rng.random(len(self.group))
        complaints = model.rng.random(len(self.group)) < spec.reblock_audit
        if not self.required(week).any():
            return
        blitz = self.blitz(week)
        if blitz:
            model.log("deadline", "", "must be open: " + ", ".join(
                s for s, due in zip(SURFACES, self.start == week) if due))
        probability = spec.deadline_audit if blitz else spec.audit_probability
        kind = self.seen["deadline" if blitz else "routine"]
        reported = model.links.reblocked & complaints    # last week's re-blocks, noticed
        for host, draw in enumerate(draws):
            audited = draw < probability
            kind[0] += int(audited)
            kind[1] += 1
            complained = self.complained(host)
            if audited or reported[host] or complained.any():
                self.audit(host, complained, drawn=bool(audited or reported[host]))

    def complained(self, host: int) -> np.ndarray:
        """(C, S): the host's violating links that users' complaints report this week:
        each with chance 1 - exp(-complaints x what it costs users a week per thousand
        users). A report brings an inspection that finds the link."""
        if not self.spec.complaints:
            return np.zeros(self.model.links.rival[host].shape, bool)
        violating = self.violating(host)
        chance = -np.expm1(-self.spec.complaints * self.complained_harm(host))
        return violating & (self.model.rng.random(violating.shape) < chance)

    def audit(self, host: int, complained: np.ndarray, drawn: bool) -> None:
        """Look at every link of the host; each violating one is found with its
        surface's visibility, or for certain if complaints reported it; finding any is
        one decision. `drawn`: the audit came by the regulator's draw or a reported
        re-block, not by complaints alone."""
        model = self.model
        platform = model.scenario.messaging[host]
        violating = self.violating(host)
        found = complained | (violating & (model.rng.random(violating.shape)
                                           < self.visibility[None, :]))
        model.log("audit", platform.name, f"{int(found.sum())} violating link(s) found")
        self.audits.append({"step": model.steps, "host": host, "fine": 0.0, "drawn": drawn})
        if found.any():
            self.audits[-1]["fine"] = self.decide(host, int(found.sum()))

    def decide(self, host: int, found: int) -> float:
        """One decision against the host: its fine (returned) and the measures due."""
        model, spec, week = self.model, self.spec, self.model.steps
        platform = model.scenario.messaging[host]
        owner = model.scenario.owners.index(platform.owner)
        fine, capped = self.fine(host, self.offences[owner])
        self.fines[owner] += fine
        self.violations += found
        self.offences[owner] += 1
        self.capped[owner] += int(capped)
        model.log("fine", platform.name, f"{fine:.4g} for {found} violation(s)"
                  + (" (capped)" if capped else ""))
        due = self.measures_due(self.offences[owner], self.capped[owner])
        if "naming" in due:
            self.named_until[host] = week + spec.naming_steps
            model.log("naming", platform.name, f"named for {spec.naming_steps} weeks")
        if "suspend_registrations" in due:
            self.suspended_until[host] = week + spec.suspension_steps
            model.log("suspension", platform.name,
                      f"registrations suspended for {spec.suspension_steps} weeks")
        if "forced_open" in due:
            model.links.force_open(host, self.required(week))
            model.log("forced_open", platform.name, "links opened by the regulator")
        return fine

    def fine(self, host: int, offences: int) -> tuple[float, bool]:
        """The fine of a decision after `offences` earlier ones, and whether the cap
        bound it: the base (a share of the previous year's revenue, or a sum) times
        fine_escalation per earlier decision, at most fine_cap of that revenue."""
        owner = self.model.scenario.messaging[host].owner
        annual = 52 * self.model.weekly_revenue(owner)
        base = self.spec.fine * (annual if self.spec.fine_kind == "revenue_share" else 1.0)
        try:
            escalated = base * self.spec.fine_escalation ** offences
        except OverflowError:       # after hundreds of decisions: far past any cap
            escalated = math.inf if base else 0.0
        cap = self.spec.fine_cap * annual
        return min(escalated, cap), bool(escalated > cap)

    def measures_due(self, offences: int, capped: int) -> tuple[str, ...]:
        """Measures a decision brings: each enabled rung of the ladder (naming,
        suspension, forced opening) once the platform has that many decisions against
        it, and, once fines are capped, one more rung for every capped decision, so a
        capped fine is never a licence."""
        spec = self.spec
        rungs = [m for m in self.MEASURES if getattr(spec, m)]
        after = {"naming": spec.naming_after, "suspend_registrations": spec.suspend_after,
                 "forced_open": spec.forced_open_after}
        return tuple(m for rung, m in enumerate(rungs)
                     if offences >= after[m] or capped > rung)

    def belief(self, spec: PlatformSpec, kind: str) -> float:
        """A platform's belief of the chance that an inspection of one platform comes in
        a routine week or at an announced deadline: a Beta prior (mean `audit_belief`, or
        `deadline_credibility` x `deadline_audit`; weight `belief_weight`) updated by every
        inspection of that kind it has seen, on itself and on its rivals."""
        prior = (spec.audit_belief if kind == "routine"
                 else spec.deadline_credibility * self.spec.deadline_audit)
        audits, chances = self.seen[kind]
        if spec.belief_weight + chances == 0:
            return prior
        return (spec.belief_weight * prior + audits) / (spec.belief_weight + chances)
