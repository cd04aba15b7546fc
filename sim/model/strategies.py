"""How a messaging platform sets its link policy: one small class per strategy.

Each strategy is found by its `name` in `STRATEGIES`; adding one means adding a
class here with the `@register` decorator, nothing else. A strategy's `review`
is called at the platform's decision points (every `review_period` weeks, on the
eve of a regulatory deadline and at the end of a deadline week) and may change the
platform's links through `model.links.set`. The economics they share, what a link
state is worth to the owner, is in `sim/model/decisions.py`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sim.model.decisions import free_links, link_values, team_value, violating_states
from sim.model.market import BLOCKED, OPEN
from sim.model.rules import choice_probabilities

STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    STRATEGIES[cls.name] = cls
    return cls


class Strategy:
    """Base class: a strategy belongs to one platform."""

    name: ClassVar[str] = ""

    def __init__(self, platform):
        self.platform = platform

    def review(self, model) -> None:
        raise NotImplementedError


@register
class Static(Strategy):
    """Keeps its initial policy: the walled garden as a fixed fact (the pre-2021 status quo)."""

    name = "static"

    def review(self, model) -> None:
        pass


@register
class Comply(Strategy):
    """Opens whatever the regulator orders, when ordered: the compliant firm of the
    enforcement literature, and the response the 2021 order asked for."""

    name = "comply"

    def review(self, model) -> None:
        due = model.regulator.required(model.steps + 1)
        for content, surface in free_links(model, self.platform.host):
            if due[surface]:
                model.links.set(self.platform.host, content, surface, OPEN)


@register
class BestResponse(Strategy):
    """Quantal best response on the model's own counterfactual (McKelvey & Palfrey 1995):
    at each decision point the host values every policy for its links over the coming
    period, as `sim.model.decisions` plays it out (the visits its owner's services gain, the
    users and revenue lost to the friction, the expected decisions and measures of the
    regulator), and picks one by logit in that value, measured in weeks of the owner's
    revenue. Blocking pays a large network whose users cannot leave: Katz & Shapiro
    (1985), Crémer, Rey & Tirole (2000).

    An owner's hosts that decide in the same week decide together: each in turn best
    responds to the others, and the owner keeps the joint policy worth most to it among
    those visited, against the policies its hosts began with
    (`sim.model.decisions.team_value`), so two platforms of one group never chase each
    other round a cycle.
    """

    name = "best_response"
    ROUNDS = 4

    def review(self, model) -> None:
        team = [p for p in model.platforms if p.owner == self.platform.owner
                and p.host is not None and p.spec.strategy == self.name
                and p.decides(model.steps)]
        if team[0] is not self.platform:
            return                       # the group has decided for all its hosts
        hosts = [p.host for p in team]
        periods = [p.next_decision(model.steps) for p in team]
        start = model.links.state.copy()
        begin = {h: [start[h, c, s] for c, s in free_links(model, h)] for h in hosts}
        # the policies the hosts began with are one of those compared, at value 0
        visited = {start.tobytes(): (start.copy(), 0.0)} if len(team) > 1 else {}
        cache = model.reviews                 # the rounds revisit states and views
        for _ in range(self.ROUNDS if len(team) > 1 else 1):
            for platform, period in zip(team, periods):
                evaluation = cache.evaluation(platform.host, period, begin[platform.host])
                states, values = evaluation.candidates
                plan = states[quantal(values, model, platform.spec)]
                for (c, s), state in zip(evaluation.values.links, plan):
                    model.links.state[platform.host, c, s] = state
                model.view = cache.market_view()
            key = model.links.state.tobytes()
            if key in visited:
                break
            visited[key] = (model.links.state.copy(),
                            team_value(model, hosts, periods, begin, cache)
                            if len(team) > 1 else 0.0)
        chosen, _ = max(visited.values(), key=lambda v: v[1])
        model.links.state[:] = start
        for h in hosts:
            for c, s in free_links(model, h):
                model.links.set(h, c, s, int(chosen[h, c, s]))
        model.view = cache.market_view()


def quantal(values: np.ndarray, model, spec) -> int:
    """The index of a plan drawn by logit in its value, in weeks of the owner's revenue."""
    scale = max(model.weekly_revenue(spec.owner), 1e-9)
    weights = choice_probabilities(values / scale, spec.strategy_intensity)
    pick = np.searchsorted(np.cumsum(weights), model.rng.random() * weights.sum(), side="right")
    return min(int(pick), len(values) - 1)


@register
class Learning(Strategy):
    """Experience-weighted attraction learning, link by link (Camerer & Ho 1999).

    Each free link keeps an attraction for each state (open, warned, blocked). At a
    decision point the period just ended pays each state its payoff per week: the
    link's marginal profit estimate (the weekly visits its owner's services gain and
    the user revenue it loses, `sim.model.decisions.link_values`) less the fines the period's
    audits of the host imposed, or would have imposed, on it (one decision's fine,
    shared by the links found; a link in a lawful state pays none). The state played
    is reinforced with weight 1, the others with `foregone_weight`; old experience
    decays by `recency`. The next state is drawn by logit in the attractions (in weeks
    of the owner's revenue, intensity `strategy_intensity`), with `experimentation`
    mixed in. Unlike best_response it reads no announcement and holds no beliefs: it
    learns the regulator from the fines it meets. With `credit = "owner"` every link is
    paid the owner's realised profit instead (the Roth-Erev learner without credit
    assignment, which cannot tell one link's worth from another's).
    """

    name = "learning"

    def __init__(self, platform):
        super().__init__(platform)
        self.attraction: dict[tuple[int, int], np.ndarray] = {}
        self.experience = 0.0
        self.last_review = 0

    def review(self, model) -> None:
        host, spec = self.platform.host, self.platform.spec
        values = link_values(model, host)
        weeks = max(model.steps - self.last_review, 1)
        if spec.credit == "link":
            payoffs = values.steady() - self.fines_met(model, values, weeks) / weeks
        else:                  # no credit assignment: every link earns the owner's profit
            owner = model.scenario.owners.index(spec.owner)
            profit = (model.revenue_history[-weeks:, owner]
                      - model.fine_history[-weeks:, owner]).mean()
            payoffs = np.full((len(values.links), 3), profit)
        # EWA's experience N = (1 - recency) N' + 1 is at least 1, so the weighted average
        # below is defined on the whole range of recency: 1 keeps only the last period's
        # payoffs (Cournot adjustment), 0 averages every period's alike (fictitious play);
        # with experimentation = 0 the choice is the pure logit, whose probabilities
        # choice_probabilities normalises to 1.
        keep = (1 - spec.recency) * self.experience
        self.experience = keep + 1
        scale = max(model.weekly_revenue(spec.owner), 1e-9)
        for (content, surface), payoff in zip(values.links, payoffs):
            played = int(model.links.state[host, content, surface])
            weight = np.full(3, spec.foregone_weight)
            weight[played] = 1.0
            before = self.attraction.get((content, surface), np.zeros(3))
            attraction = (keep * before + weight * payoff) / self.experience
            self.attraction[(content, surface)] = attraction
            p = ((1 - spec.experimentation) * choice_probabilities(
                attraction / scale, spec.strategy_intensity) + spec.experimentation / 3)
            state = int(np.searchsorted(np.cumsum(p), model.rng.random() * p.sum(), side="right"))
            model.links.set(host, content, surface, min(state, BLOCKED))
        self.last_review = model.steps

    def fines_met(self, model, values, weeks: int) -> np.ndarray:
        """(L, 3): the fines each state of each link met over the period: at each audit
        of the host that a draw (or a reported re-block) brought, a decision's fine (as
        imposed, or as it would have been) shared by the violating links, each found
        with its surface's visibility; and in every week the link was due, the same
        share times the chance users' complaints report it in that state (an audit
        that complaints brought is the played state's own doing, not the others')."""
        regulator, host = model.regulator, self.platform.host
        since = model.steps - weeks
        audits = [a for a in regulator.audits
                  if a["host"] == host and a["step"] > since and a["drawn"]]
        violating = violating_states(model)
        played = [model.links.state[host, c, s] for c, s in values.links]
        met = np.zeros((len(values.links), 3))
        for audit in audits:
            due = regulator.required(audit["step"])
            earlier = int(regulator.offences[regulator.group[host]])
            fine = audit["fine"] or regulator.fine(host, earlier)[0]
            violators = max(sum(bool(due[s]) and a in violating
                                for (_, s), a in zip(values.links, played)), 1)
            for i, (_, surface) in enumerate(values.links):
                if due[surface]:
                    met[i, violating] += regulator.visibility[surface] * fine / violators
        complaints = regulator.spec.complaints * self.platform.spec.complaint_belief
        if complaints:
            reported = -np.expm1(-complaints * values.harm[:, violating])
            fine = regulator.fine(host, int(regulator.offences[regulator.group[host]]))[0]
            for week in range(since + 1, model.steps + 1):
                due = regulator.required(week)
                violators = max(sum(bool(due[s]) and a in violating
                                    for (_, s), a in zip(values.links, played)), 1)
                for i, (_, surface) in enumerate(values.links):
                    if due[surface]:
                        met[i, violating] += reported[i] * fine / violators
        return met
