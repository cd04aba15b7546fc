"""How a messaging platform sets its link policy: one small class per strategy.

Each strategy is found by its `name` in `STRATEGIES`; adding one means adding a
class here with the `@register` decorator, nothing else. A strategy's `review`
is called on the platform's review weeks (every `review_period` weeks, and on the
eve of any regulatory deadline) and may change the platform's links through
`model.links.set`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from sim.market import popcount

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

    def links(self, model):
        """The (content, surface) links this platform may still choose for itself."""
        h = self.platform.host
        free = model.links.rival[h] & ~model.links.forced[h]
        return list(zip(*np.nonzero(free)))


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
        for content, surface in self.links(model):
            if due[surface]:
                model.links.set(self.platform.host, content, surface, False)


@register
class BestResponse(Strategy):
    """Myopic best response with logit noise, link by link (Crémer, Rey & Tirole 2000:
    a large network gains from degrading interconnection, and may do so selectively).

    For each rival link it compares the estimated profit of blocking and of opening
    over the next review period: diversion revenue from shares that would not reach
    the rival, less the revenue from users who leave because of the friction, less
    the expected fine (believed audit probability x fine x escalation). It then
    blocks with logit probability in the difference, measured in weeks of the
    owner's revenue, with an adjustment cost for changing.
    """

    name = "best_response"

    def review(self, model) -> None:
        spec, h = self.platform.spec, self.platform.host
        scale = max(model.weekly_revenue(self.platform.owner), 1e-9)
        for content, surface in self.links(model):
            gain = blocking_gain(model, h, content, surface, spec.review_period) / scale
            blocked = model.links.blocked[h, content, surface]
            gain += spec.adjustment_cost if blocked else -spec.adjustment_cost
            p_block = 1.0 / (1.0 + math.exp(-min(max(spec.strategy_intensity * gain, -700), 700)))
            model.links.set(h, content, surface, bool(model.rng.random() < p_block))


@register
class Learning(Strategy):
    """Roth-Erev reinforcement learning (Roth & Erev 1995; Erev & Roth 1998): each link's
    propensities to open or block are reinforced by the owner's realised profit,
    with forgetting (`recency`) and experimentation (`experimentation`)."""

    name = "learning"

    def __init__(self, platform):
        super().__init__(platform)
        self.propensity = {}   # (content, surface) -> [open, block]
        self.last_review = 0

    def review(self, model) -> None:
        spec = self.platform.spec
        since = max(model.steps - self.last_review, 1)
        payoff = max(model.recent_profit(self.platform.owner, since), 0.0) / max(
            model.weekly_revenue(self.platform.owner), 1e-9)
        self.last_review = model.steps
        for link in self.links(model):
            h = self.platform.host
            current = int(model.links.blocked[h][link])
            propensity = self.propensity.setdefault(link, [1.0, 1.0])
            propensity[0] *= 1 - spec.recency
            propensity[1] *= 1 - spec.recency
            propensity[current] += payoff
            p_block = ((1 - spec.experimentation) * propensity[1] / sum(propensity)
                       + spec.experimentation / 2)
            model.links.set(h, *link, bool(model.rng.random() < p_block))


def blocking_gain(model, host: int, content: int, surface: int, horizon: int) -> float:
    """Estimated profit of blocking rather than opening one link over the horizon.

    Diversion: the host's owner gets `diversion` x revenue_per_visit for every share
    that does not reach the rival because of the block, on the traffic for which this
    host is pivotal (every other common platform already blocks). Friction: single-
    homers on the host face token_cost more per blocked share, and a logit market
    loses users at rate revision_rate x beta x s(1 - s) per unit of utility; users
    who move to the owner's other messaging platforms are not lost. Fines: the
    expected fine over the horizon if the surface is required open.
    """
    scenario, users = model.scenario, model.scenario.users
    spec = scenario.messaging[host]
    content_spec = scenario.content[content]
    lost_if_blocked = 1.0 - math.exp(-users.token_cost / users.share_value) * users.token_success
    diversion = (horizon * spec.diversion * content_spec.revenue_per_visit * lost_if_blocked
                 * pivotal_traffic(model, host, content, surface))

    share = model.user_shares()
    same_owner = sum(share[h] for h, other in enumerate(scenario.messaging)
                     if other.owner == spec.owner and h != host)
    kept = min(same_owner / max(1.0 - share[host], 1e-9), 1.0)
    friction = users.share_rate * users.token_cost * model.view.share_weights[content, surface]
    users_lost_per_week = (model.population * users.revision_rate * users.choice_intensity
                           * share[host] * (1.0 - share[host]) * friction * (1.0 - kept))
    user_revenue_lost = spec.revenue_per_user * users_lost_per_week * horizon * (horizon + 1) / 2

    return diversion - user_revenue_lost - model.regulator.expected_fine(
        model, host, surface, horizon)


def pivotal_traffic(model, host: int, content: int, surface: int) -> float:
    """Weekly shares of this content on this surface that the host alone decides:
    the users have the host in common and every other common platform blocks."""
    masks = np.arange(model.traffic.shape[0])
    others_block = np.ones(len(masks), bool)
    for other in range(len(model.scenario.messaging)):
        if other != host and not model.links.blocked[other, content, surface]:
            others_block &= (masks >> other) & 1 == 0
    with_host = (masks >> host) & 1 == 1
    sizes = popcount(masks)
    relevant = with_host & others_block
    return float((model.traffic[relevant, content, surface] / sizes[relevant]).sum())
