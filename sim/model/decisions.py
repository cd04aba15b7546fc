"""What a link policy is worth to a platform's owner, as the model would play it out.

A messaging host h (owner o) reviews its links at decision points. It values each
policy X for its free rival links (each l = (c, s) open, warned or blocked), held for
the coming period of P weeks, against every link open, over its planning horizon H
with weekly discount factor delta (ODD section 7.4 writes the equations out):

    V(X) = sum_l G_l(x_l) + dR(X; P) - penalty(X)
    G_l(a) = sum_m dD_l,m(a) sum_{u=1..P} delta^u F_m(u)
             - adjustment_cost x W_o x [a differs from l's state at the review's start]

- dD_l,m(a): the owner's weekly revenue from the views on route m of l (the traffic
  the platform has seen), with l in state a, less with l open; F_m(u), that route's
  traffic in week u against this week's, projected along the users' dynamics. A view
  takes the best state among its route's platforms; it is delivered, or lost and then
  diverted by a platform in that state to a service of the same category in which
  the owner holds a stake (`market.substitutes`). Owner o earns its stake of what
  each delivered or diverted visit pays. Additive over links: a view's outcome on
  (c, s) depends only on the states there.
- dR(X; P): the owner's discounted user revenue lost or gained. The policy changes
  the loss users expect on the routes through h; the revisers' logit choices shift,
  recomputed for the policy as a whole (every user, identical users merged; the logit
  is not additive over links) from the utilities with every link open; a fraction
  `revision_rate` revises each week, each from the set it is on (a user the policy
  moved pays the switching cost to move back), ties shift with the population and
  feed back through the network term (`UserDynamics`); each user of cohort g on set k is worth
  R_o(g, k) to the owner, its platforms' revenue per user summed over the owner's
  platforms in k (multihomers counted once, users who move to the owner's other
  platform kept) plus the owner's stake of the visits on the user's views to ties
  spread as the cohort's are, with the links in X's states; the users a change moves
  directly, at their own ties (`LinkValues`).

The expected penalty of a policy is not a sum over links: an audit that finds any
violation is one decision. `PenaltyOutlook` values it over the period from the
platform's beliefs, the announced schedule and what the regulator would do: the
fine, escalated and capped per decision, and the measures a decision would bring
(naming's lost users, the joiners lost to suspended registrations, and the value
of blocking that a forced opening takes away). `Evaluation` puts the two together
for every policy worth considering.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property
from itertools import permutations, product

import numba
import numpy as np

from sim.model.market import (BLOCKED, OPEN, WARNED, MarketView, attention, diversion_table,
                              harm, host_bits, route_states, stake)
from sim.model.rules import choice_probabilities, option_utilities, view_loss, view_odds

STATE_LIST = (OPEN, WARNED, BLOCKED)
LATER_RUNGS = 8     # decisions after the period counted at their own rung, then the last
LOCAL_ROUNDS = 4    # one-link changes a review's local search makes at most


class LinkValues:
    """A host's free rival links and what each policy for them is worth against every
    link open.

    Diversion is additive over links: a view's outcome on (content, surface) depends only
    on the states there. The users' term is not: the logit is not additive over the
    links' utility changes (a block moves more users where the host's other links are
    blocked too), so it is valued for a whole policy X at once. The owner's value of
    moving from the present policy B to X is, in a week, x_B (R_X - R_B) + (x_X - x_B) R_X
    (x the users' distribution over platform sets, R what a user on each is worth to
    the owner): the diversion term reads the first part at the traffic the platform
    sees, x_B's; the users' term is the second, the users the move shifts priced under
    X. Against every link open (O), that is dX_X R_X - dX_B (R_X - R_O), dX the direct
    shifts measured from the utilities with every link open (ODD 7.4)."""

    def __init__(self, links, by_route, dynamics, open_utilities, felt, change,
                 per_set_change, now, harm):
        self.links = links                  # [(content, surface)]
        self.by_route = by_route            # (L, 3, 2**M): dD this week, by state and route mask
        self.dynamics = dynamics            # how the users' shift plays out in revenue
        self.open_utilities = open_utilities   # (R, K): the users' utilities, every link open
        self.felt = felt                    # (L, 3, R, K): each link state's utility change
        self.change = change                # (L, 3, G, K): R_o's change, link state vs open
        self.per_set_change = per_set_change   # (L, 3, K, 2**M): the same, per tie on each mask
        self.now = now                      # (L,): the links' present states
        self.harm = harm                    # (L, 3): users' cost a week per thousand users
        self.moves: dict[bytes, np.ndarray] = {}          # policy -> `moved`
        self.one_link: dict[int, np.ndarray] = {}        # period -> `users`

    @property
    def diversion(self) -> np.ndarray:
        """(L, 3): dD at this week's traffic, by state (open, warned, blocked)."""
        return self.by_route.sum(axis=-1)

    def diverted(self, period: int) -> np.ndarray:
        """(L, 3): discounted dD of holding each state for `period` weeks, each route's
        traffic projected along the users' own dynamics."""
        return self.by_route @ self.dynamics.traffic(period)

    def moved(self, states: np.ndarray) -> np.ndarray:
        """(P, R, K): how each user's choice probabilities move from every link open to
        each policy (P, L), the logit recomputed for the policy as a whole."""
        states = np.asarray(states, dtype=int)
        if not states.size:                   # no policy, or a host with no free link
            return np.zeros((len(states),) + self.open_utilities.shape)
        missing = [row for row in states if row.tobytes() not in self.moves]
        if missing:
            rows = np.unique(np.array(missing), axis=0)
            picked = np.eye(3)[rows].reshape(len(rows), -1)                       # (P, L 3)
            utilities = self.open_utilities + (
                picked @ self.felt.reshape(picked.shape[1], -1)).reshape(
                (len(rows),) + self.open_utilities.shape)
            d = self.dynamics
            moved = choice_probabilities(utilities, d.beta) - self.opened
            for row, shift in zip(rows, moved):
                self.moves[row.tobytes()] = shift
        return np.array([self.moves[row.tobytes()] for row in states])

    @cached_property
    def opened(self) -> np.ndarray:
        """(R, K): each user's choice probabilities with every link open."""
        return choice_probabilities(self.open_utilities, self.dynamics.beta)

    def revenue_of(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, G, K) R_X - R_O for each policy, and (P, K, 2**M) the same per tie on each
        mask: a link's views change only on its own (content, surface), so they add up."""
        rows = np.arange(len(self.links))
        states = np.asarray(states, dtype=int)
        return (self.change[rows, states].sum(axis=1),
                self.per_set_change[rows, states].sum(axis=1))

    def users_of(self, states: np.ndarray, period: int) -> np.ndarray:
        """(P,): the discounted user revenue of holding each policy (P, L) for `period`
        weeks, against every link open. In the period's weeks, dX_X R_X - dX_B (R_X -
        R_O) through the users' dynamics, and the direct movers' own ties' difference from
        their cohort's priced the same way; after it, when the policy is no longer the one
        held and the links are taken to be back at the present policy B, the users it
        moved, each priced at their own ties under B (the diversion term stops with the
        period too)."""
        d = self.dynamics
        states = np.atleast_2d(np.asarray(states, dtype=int))
        present = self.now[None]
        change, per_set = self.revenue_of(states)
        now_change, now_per_set = self.revenue_of(present)
        within, _ = exposure_weights(period, d.horizon, d.discount, d.rate)
        moved, held = self.moved(states), self.moved(present)
        during, later = d.response(moved, period)
        shifted = d.people * np.einsum("pgk,pgk->p", during, d.revenue + change - now_change) + later
        repriced = d.people * np.einsum("gk,pgk->p", d.response(held, period)[0][0], change)
        movers = d.people * within * (d.beyond(moved, per_set - now_per_set)
                                      - d.beyond(np.broadcast_to(held, moved.shape), per_set)
                                      + d.movers(moved))
        return shifted - repriced + movers

    def held(self, states: np.ndarray) -> np.ndarray:
        """(P,): the weekly value of holding each policy (P, L) for the whole horizon,
        against every link open, valued as a whole."""
        horizon, rows = self.dynamics.horizon, np.arange(len(self.links))
        flows = gain_weight(horizon, self.dynamics.discount)
        return (self.diverted(horizon)[rows, states].sum(axis=1)
                + self.users_of(states, horizon)) / flows

    def users(self, period: int) -> np.ndarray:
        """(L, 3): each link's users' term in each state against open, the host's other
        links as they are: the value of the one-link change the platform would make."""
        if period not in self.one_link:
            self.one_link[period] = self.one_link_users(period)
        return self.one_link[period]

    def one_link_users(self, period: int) -> np.ndarray:
        """`users`, computed."""
        count = len(self.links)
        one_changed = np.repeat(self.now[None], 3 * count, axis=0)
        one_changed[np.arange(3 * count), np.repeat(np.arange(count), 3)] = np.tile(
            np.arange(3), count)
        values = self.users_of(one_changed, period).reshape(count, 3)
        return values - values[:, :1]

    def steady(self) -> np.ndarray:
        """(L, 3): weekly value of holding each state for the whole horizon."""
        horizon = self.dynamics.horizon
        flows = gain_weight(horizon, self.dynamics.discount)
        return (self.diverted(horizon) + self.users(horizon)) / flows


class UserDynamics:
    """How users' platform choices respond to a change, and what it does to the owner's
    user revenue, linearised around the current market.

    With p_rk the logit probabilities of the users of row r of the profile (w_r users of
    cohort g(r), N users in all) over platform sets k, a utility change du moves each
    user's choice by dP_r = p_r(u + du) - p_r(u) (the direct move). A fraction r revises
    each week, from the set it is on: a user a change moved to another set pays the
    switching cost to move back (`chain`). Each user's ties shift as the population
    does (mean field), which feeds back through the network and loss terms Phi_g
    (K, 2**M): J_r,km = beta p_rk (Phi_g,k,m - sum_l p_rl Phi_g,l,m). The owner's revenue
    changes by sum_r w_r R_o(g(r), .) . dy_r,u in week u, R_o(g, k) read at cohort g's
    own ties: a heavy sharer who leaves takes more views with them, and a user tied to
    QQ users takes views to QQ users.
    """

    def __init__(self, model, owner: str, host: int, paths: list[np.ndarray] | None = None):
        scenario, view, profile = model.scenario, model.view, model.profile
        users = scenario.users
        spec = scenario.messaging[host]
        self.discount, self.horizon = spec.discount, spec.planning_horizon
        self.rate, self.beta = users.revision_rate, users.choice_intensity
        self.utilities = option_utilities(view, users, profile.current, profile.counts,
                                          profile.cohort)
        self.p = choice_probabilities(self.utilities, self.beta)                 # (R, K)
        self.weight = profile.weight.astype(float)
        self.people = float(self.weight.sum())
        self.share = profile.counts / np.maximum(profile.counts.sum(axis=1, keepdims=True), 1)
        self.cohort = profile.cohort
        groups = len(view.sharing)
        self.members = np.eye(groups)[self.cohort]                               # (R, G)
        mean_sharing = float(self.weight @ view.sharing[self.cohort]) / max(self.people, 1.0)
        self.exchanged = view.sharing + mean_sharing          # (G,): a tie's views, sent and received
        self.ties = self.cohort_ties()                                            # (G, 2**M)
        self.options, self.route = view.options, view.route
        revenue, per_set = self.priced(tie_table(model, view.state, view.divert, owner))
        self.revenue = user_revenue(model, owner)[None] + revenue                 # (G, K)
        # (R, 2**M): each user's ties' difference from their cohort's, weighted by the
        # views they exchange, per user of the population
        self.deviation = (self.weight * self.exchanged[self.cohort])[:, None] * (
            self.share - self.ties[self.cohort]) / max(self.people, 1.0)
        self.per_set = per_set                                                    # (K, 2**M)
        self.current = profile.current
        self.sharing = view.sharing[self.cohort]                                  # (R,)
        self.phi = (users.network_weight * view.reach[None]
                    - view.sharing[:, None, None] * view.loss_with[None])          # (G, K, 2**M)
        self.view, self.users, self.profile = view, users, profile      # for `transitions`
        phi = self.phi[self.cohort]                                               # (R, K, 2**M)
        self.feedback = self.beta * self.p[..., None] * (
            phi - np.einsum("rk,rkm->rm", self.p, phi)[:, None])                  # (R, K, 2**M)
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # traffic(P) for P = 0, 1, ...: it does not depend on the owner, so dynamics of the
        # same view and discount may share the list (`ReviewCache.dynamics`)
        self.paths = [] if paths is None else paths

    def cohort_ties(self) -> np.ndarray:
        """(G, 2**M): how each cohort's ties are spread over platform sets. A cohort's
        own, not the population's: QQ's young users are tied to QQ users, and valued at
        the population's ties a QQ user who leaves for WeChat took WeChat's ties' views
        with them (ODD 7.4)."""
        members = self.members * self.weight[:, None]
        ties = members.T @ self.share
        people = members.sum(axis=0)[:, None]
        population = self.weight @ self.share / max(self.people, 1.0)
        return np.where(people > 0, ties / np.maximum(people, 1e-12), population[None])

    @cached_property
    def transitions(self) -> np.ndarray:
        """(R, K, K): each row's logit choice probabilities as a user of it would revise
        from each set it could be on (the switching cost and what may be joined depend on
        the set a user is on): a user a change moved keeps the cost of moving back. Drawn
        up only when a users' term is asked for."""
        rows, k = self.p.shape
        view, profile = self.view, self.profile
        utilities = option_utilities(view, self.users, np.tile(view.options, rows),
                                     np.repeat(profile.counts, k, axis=0),
                                     np.repeat(profile.cohort, k))
        return choice_probabilities(utilities, self.beta).reshape(rows, k, k)

    def priced(self, per_tie: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What one user's views to their ties pay the owner, for `per_tie` (..., 2**M) the
        owner's weekly revenue per unit of views exchanged with one tie on each mask
        (`tie_table`): (..., G, K) for a user of each cohort on each set, at the cohort's
        ties, and (..., K, 2**M) for a user on each set per tie on each mask."""
        per_set = per_tie[..., self.route[self.options]]                          # (..., K, 2**M)
        revenue = self.exchanged[:, None] * np.einsum("...km,gm->...gk", per_set, self.ties)
        return revenue, per_set

    def beyond(self, moved: np.ndarray, per_set: np.ndarray) -> np.ndarray:
        """(P,): what the users moved by `moved` (P, R, K) bring, per user of the
        population, beyond their cohorts' R_o(g, k) under `per_set` (P, K, 2**M): at their
        own ties, not their cohort's."""
        return ((moved.transpose(0, 2, 1) @ self.deviation) * per_set).sum(axis=(1, 2))

    def felt(self, per_tie: np.ndarray) -> np.ndarray:
        """(..., R, K): the utility change of each user from a change of the loss term per
        tie on each mask (..., K, 2**M), in proportion to their cohort's sharing and
        their ties on each mask."""
        return self.sharing[:, None] * np.einsum("rm,...km->...rk", self.share, per_tie)

    def movers(self, moved: np.ndarray) -> np.ndarray:
        """(...,): the weekly revenue the users moved by `moved` (..., R, K), a change of
        their choice probabilities, bring beyond their cohorts' R_o(g, k) under today's
        links, per user of the population."""
        flat = moved.reshape((-1,) + moved.shape[-2:])
        return self.beyond(flat, np.broadcast_to(self.per_set, (len(flat),) + self.per_set.shape)
                           ).reshape(moved.shape[:-2])

    def traffic(self, period: int) -> np.ndarray:
        """(2**M,): sum_{u=1..P} delta^u F_m(u), the discounted weight of this week's
        traffic on route m over the period. F_m(u) is the traffic on route m in week u
        against this week's: users move between sets as their logit choices take them
        (ties shifting with the population), and the views between a user on set a and a
        tie on set b travel on route(a, b)."""
        if period >= len(self.paths):
            self.paths[:] = self.traffic_path(max(period, self.horizon))
        return self.paths[period]

    def traffic_path(self, weeks: int) -> list[np.ndarray]:
        """`traffic` of every period from 0 to `weeks`: one pass along the users' path
        serves every period (a period's sum is the path's partial sum)."""
        masks = len(self.route)
        people = max(self.people, 1.0)
        start = np.bincount(self.current, weights=self.weight, minlength=masks) / people
        ties = np.zeros((masks, masks))
        np.add.at(ties, self.current, self.weight[:, None] * self.share)
        ties /= np.maximum(ties.sum(axis=1, keepdims=True), 1e-12)

        def pairs(x, shift):
            between = np.clip(ties + shift[None, :], 0.0, None)
            between /= np.maximum(between.sum(axis=1, keepdims=True), 1e-12)
            return np.bincount(self.route.ravel(), weights=(x[:, None] * between).ravel(),
                               minlength=masks)
        before = pairs(start, np.zeros(masks))
        x, totals = start.copy(), [np.zeros(masks)]
        for u in range(1, weeks + 1):
            moved = self.utilities + (self.phi @ (x - start))[self.cohort]
            chosen = np.zeros(masks)
            chosen[self.options] = self.weight @ choice_probabilities(moved, self.beta) / people
            x = (1 - self.rate) * x + self.rate * chosen
            ratio = np.divide(pairs(x, x - start), before, out=np.ones(masks),
                              where=before > 0)
            totals.append(totals[-1] + self.discount ** u * ratio)
        return totals

    def response(self, moved: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
        """What direct moves `moved` (P, R, K) of the users' choice probabilities, held
        for `period` weeks, lead to, feedback included: (P, G, K) the discounted sum over
        the period's weeks of each cohort's shift per user of the population, and (P,)
        the discounted revenue of the shifts in the weeks after it to the horizon, each
        user priced at today's links and their own ties (`chain`)."""
        within, after = self.chain(period)
        groups, k = self.revenue.shape
        return (np.einsum("prk,rko->po", moved, within).reshape(len(moved), groups, k),
                np.einsum("prk,rk->p", moved, after))

    def chain(self, period: int) -> tuple[np.ndarray, np.ndarray]:
        """The users' dynamics as a linear map from a unit direct move of every user of a
        row on each set, held `period` weeks: (R, K, G K) to the discounted sums of the
        cohorts' shifts over the period's weeks, and (R, K) to the discounted revenue of
        the weeks after it. Row r's shift dy_r (K, per user of the row) moves as

            dy_r,u = (1 - r) dy_r,u-1 + r (dy_r,u-1 T_r + J_r dz_u-1 + b_u dP_r),

        T_r the row's choices from each set (`transitions`): a mover revises from where
        the change took them; J_r its choices' response to its ties' masks and dz the
        population's shift on the masks (the ties shift with the population); b_u = 1
        while the change holds. Valued backwards (the adjoint): with S the week's map and
        c the valuation of week v's shifts, L_v = delta^v c [v in window] + S' L_v+1, and
        a move held P weeks is worth r sum_{v <= P} L_v . dP."""
        if period not in self.cache:
            groups, k = self.revenue.shape
            rows = len(self.weight)
            counted = np.zeros((rows, k, groups * k))
            counted[np.arange(rows)[:, None], np.arange(k)[None],
                    self.cohort[:, None] * k + np.arange(k)[None]] = (
                self.weight / max(self.people, 1.0))[:, None]
            # after the period every user is priced at their own ties: the cohort's revenue
            # plus their ties' difference from the cohort's
            priced = (self.weight[:, None] * self.revenue[self.cohort]
                      + self.people * self.deviation @ self.per_set.T)[..., None]
            after = self.backward_sum(priced, period, period + 1, self.horizon)[..., 0]
            self.cache[period] = (self.backward_sum(counted, period, 1, period), after)
        return self.cache[period]

    def backward_sum(self, valuation: np.ndarray, period: int, first: int,
                     last: int) -> np.ndarray:
        """(R, K, O): r sum_{v=1..P} L_v for the valuation (R, K, O) of the shifts in weeks
        first..last."""
        total = weights = np.zeros_like(valuation)
        for v in range(max(last, period), 0, -1):
            weights = self.pulled(weights)
            if first <= v <= last:
                weights = weights + self.discount ** v * valuation
            if v <= period:
                total = total + weights
        return self.rate * total

    def pulled(self, weights: np.ndarray) -> np.ndarray:
        """S' applied to valuations `weights` (R, K, O) of next week's shifts: what a shift
        this week is worth through next week's."""
        if not weights.any():
            return weights
        rows, k, outputs = weights.shape
        stayed = self.transitions @ weights
        felt = (self.feedback.reshape(rows * k, -1).T
                @ weights.reshape(rows * k, outputs))[self.options]                # (K, O)
        spread = (self.weight / max(self.people, 1.0))[:, None, None] * felt[None]
        return (1 - self.rate) * weights + self.rate * (stayed + spread)


def violating_states(model) -> list[int]:
    """The link states that break the order where it is in force: blocked, and behind a
    warning page unless the regulator accepts warnings."""
    return [BLOCKED] if model.regulator.spec.accept_warning else [WARNED, BLOCKED]


def free_links(model, host: int) -> list[tuple[int, int]]:
    """The (content, surface) links this host may still choose for itself."""
    free = model.links.rival[host] & ~model.links.forced[host]
    return [(int(c), int(s)) for c, s in zip(*np.nonzero(free))]


def with_host_links(model, host: int, state: int) -> np.ndarray:
    """The link states with every free rival link of the host set to `state`.
    A view's outcome on (c, s) depends only on the states at (., c, s), so setting all
    of them at once gives every link's counterfactual in one pass."""
    states = np.where(model.links.rival, model.links.state, OPEN).astype(np.uint8)
    free = model.links.rival[host] & ~model.links.forced[host]
    states[host][free] = state
    return states


def owner_visit_value(model, owner: str) -> np.ndarray:
    """(C,): what a visit to each content platform, delivered or diverted, pays the
    owner: its stake of the revenue per visit."""
    return np.array([stake(c, owner) * c.revenue_per_visit for c in model.scenario.content])


def link_values(model, host: int, cache: ReviewCache | None = None) -> LinkValues:
    """dD and dR of every free rival link of the host, in each state (the users' dynamics
    from the review's `cache`, if given)."""
    scenario, view = model.scenario, model.view
    users = scenario.users
    spec = scenario.messaging[host]
    links = free_links(model, host)
    subs = model.substitutes
    visit_value = owner_visit_value(model, spec.owner)
    on_host = host_bits(len(scenario.messaging))[:, host]                   # (2**M,)
    traffic = model.traffic[spec.traffic_memory] * on_host[:, None, None]
    per_view_loss, owner_per_view, harmed = {}, {}, {}
    for a in STATE_LIST:
        states = with_host_links(model, host, a)
        best = route_states(states)
        divert = diversion_table(scenario, states, best, subs)
        owner_per_view[a] = view_revenue(model, best, divert, visit_value)
        per_view_loss[a] = view_loss(best, view.view_mean[None, None, :], users,
                                     users.diverted_value * divert.sum(axis=-1))
        harmed[a] = harm(best, traffic, view.view_mean, users, host) * (
            1000.0 / max(model.population, 1))
    by_route = np.array([[traffic[:, c, s] * (owner_per_view[a][:, c, s]
                                              - owner_per_view[OPEN][:, c, s])
                          for a in STATE_LIST] for c, s in links]).reshape(
        len(links), 3, len(on_host))
    dynamics = cache.dynamics(host) if cache else UserDynamics(model, spec.owner, host)
    weights = users.share_rate * view.share_weights * view.fanout[None, :]      # (C, S)
    route = view.route[view.options]                                            # (K, 2**M)
    loss = {}                                                     # state -> (K, 2**M, C, S)
    for a in STATE_LIST:
        extra = (per_view_loss[a] - per_view_loss[OPEN]) * weights[None]        # (2**M, C, S)
        extra[0] = 0.0
        loss[a] = extra[route]
    felt = dynamics.felt(np.array([[-loss[a][:, :, c, s] for a in STATE_LIST]
                                   for c, s in links]).reshape((len(links), 3) + route.shape))
    now = np.array([int(model.links.state[host, c, s]) for c, s in links], dtype=int)
    # the users' utilities hold the links' present states: every shift is measured from
    # the links open, not added to a block already felt
    open_utilities = dynamics.utilities - felt[np.arange(len(links)), now].sum(axis=0)
    column = np.zeros((len(links), 3) + owner_per_view[OPEN].shape)
    for i, (c, s) in enumerate(links):
        for a in STATE_LIST:
            column[i, a, :, c, s] = owner_per_view[a][:, c, s] - owner_per_view[OPEN][:, c, s]
    change, per_set_change = dynamics.priced(per_view_table(model, column))
    harms = np.array([[harmed[a][c, s] for a in STATE_LIST] for c, s in links]).reshape(
        len(links), 3)
    return LinkValues(links, by_route, dynamics, open_utilities, felt, change,
                      per_set_change, now, harms)


def view_revenue(model, best: np.ndarray, divert: np.ndarray,
                 visit_value: np.ndarray) -> np.ndarray:
    """(2**M, C, S): what one view on each route pays the owner, in expectation: its
    stake of the visit if delivered, of the diverted visit if lost."""
    lost, _ = view_odds(best, model.view.view_mean[None, None, :], model.scenario.users)
    return (1 - lost) * visit_value[None, :, None] + lost * (divert @ visit_value)


def option_revenue(model, owner: str, ties: np.ndarray, sent: float = 1.0,
                   received: float = 1.0) -> np.ndarray:
    """(K,): the owner's weekly revenue from one user on each platform set whose ties are
    on masks distributed as `ties` (2**M), under today's links: `user_revenue` and the
    owner's stake of the visits on the views between the user and their ties, sent (at
    the user's sharing intensity `sent`) and received (at the ties' mean, `received`)."""
    view = model.view
    per_tie = (sent + received) * tie_table(model, view.state, view.divert, owner)
    return user_revenue(model, owner) + per_tie[view.route[view.options]] @ ties


def user_revenue(model, owner: str) -> np.ndarray:
    """(K,): what the owner's platforms earn from one user on each set (a multihomer's
    revenue split between their platforms)."""
    scenario, view = model.scenario, model.view
    per_host = np.array([p.revenue_per_user if p.owner == owner else 0.0
                         for p in scenario.messaging])
    return attention(len(scenario.messaging))[view.options] @ per_host


def tie_table(model, best: np.ndarray, divert: np.ndarray, owner: str) -> np.ndarray:
    """(2**M,): the owner's weekly revenue per unit of sharing intensity from the views
    exchanged with one tie, by the route's mask, with the routes' best states `best`
    and diversion `divert`: x share_rate, each surface's weight and fan-out, the owner's
    stake of the visits (`view_revenue`)."""
    per_view = view_revenue(model, best, divert, owner_visit_value(model, owner))
    return per_view_table(model, per_view)


def per_view_table(model, per_view: np.ndarray) -> np.ndarray:
    """(..., 2**M): `per_view` (..., 2**M, C, S), what one view on each route pays the
    owner, as a tie's weekly revenue per unit of sharing intensity."""
    view = model.view
    per_tie = model.scenario.users.share_rate * (
        per_view * view.share_weights * view.fanout[None, :]).sum(axis=(-2, -1))
    per_tie[..., 0] = 0.0
    return per_tie


def naming_loss(dynamics: UserDynamics, model, host: int, penalty: float, weeks: int) -> float:
    """The owner's discounted user revenue lost when every set holding the host loses
    `penalty` of utility for `weeks` weeks."""
    holds = host_bits(len(model.scenario.messaging))[model.view.options, host]
    moved = choice_probabilities(dynamics.utilities - penalty * holds, dynamics.beta) - dynamics.p
    during, after = dynamics.response(moved[None], weeks)
    return -float(dynamics.people * (during[0] * dynamics.revenue).sum() + after[0])


def joiners(dynamics: UserDynamics, model, host: int) -> float:
    """Users who would join the host if everyone revised now (suspension keeps them out)."""
    holds = host_bits(len(model.scenario.messaging))[model.view.options, host]
    newcomer = ((dynamics.current >> host) & 1) == 0
    return float((dynamics.p[:, holds].sum(axis=1) * newcomer) @ dynamics.weight)


@cache
def gain_weight(period: int, discount: float) -> float:
    """sum_{u=1..P} delta^u: a weekly flow held for the period."""
    return float(sum(discount ** u for u in range(1, period + 1)))


def exposure_weight(period: int, horizon: int, discount: float, rate: float) -> float:
    """sum_{u=1..H} delta^u E_u(P): users' adjustment to a change held P weeks, then
    undone, over the horizon."""
    return sum(exposure_weights(period, horizon, discount, rate))


@cache
def exposure_weights(period: int, horizon: int, discount: float,
                     rate: float) -> tuple[float, float]:
    """`exposure_weight` split into the period's weeks (u <= P) and the weeks after it."""
    horizon = max(horizon, period)
    within = after = 0.0
    for u in range(1, horizon + 1):
        exposed = sum(rate * (1 - rate) ** (u - t) for t in range(1, min(u, period) + 1))
        if u <= period:
            within += discount ** u * exposed
        else:
            after += discount ** u * exposed
    return within, after


def caught_by_either(audited: np.ndarray, reports: np.ndarray) -> np.ndarray:
    """The chance that a host is caught in a week: by an audit that finds a violation
    (`audited`), or by users' complaints, which report one with chance 1 - exp(-reports)
    whether or not an audit comes."""
    return audited + (1.0 - audited) * -np.expm1(-reports)


@dataclass(frozen=True)
class Exposure:
    """One of the owner's hosts in the owner's expected penalty: the chance that an
    inspection comes in each week of the period (the host's beliefs), and what a decision
    against it costs at each rung of the owner's ladder (after k0, k0 + 1, ... earlier
    decisions against the group)."""

    host: int
    audit: np.ndarray        # (P,)
    routine: float           # the weekly chance of an audit after the period
    costs: np.ndarray        # (K,): fine, naming and suspension
    forced: np.ndarray       # (K,) bool: the decision forces the host's links open


class PenaltyOutlook:
    """The expected discounted penalty of a policy over the coming period, as the host
    sees it at week t0: audits at its beliefs (routine weeks, or an announced deadline
    week), detection by surface visibility, and at each decision the regulator's fine
    and measures for that many earlier decisions. Decisions are against the group, so
    its other hosts' violations (at their present links) climb the same ladder: the
    penalty of a policy is what it adds to the owner's, against the host holding every
    link lawful."""

    def __init__(self, model, host: int, period: int, values: LinkValues,
                 cache: ReviewCache | None = None):
        regulator, spec = model.regulator, model.scenario.messaging[host]
        self.model, self.host, self.period = model, host, period
        week = model.steps
        self.discount = spec.discount
        weeks = np.arange(week + 1, week + period + 1)
        self.announced = regulator.announced(week)
        self.weeks = weeks
        if self.announced:
            self.required = np.array([regulator.required(w) for w in weeks])     # (P, S)
        else:                     # before the announcement the order is not known
            self.required = np.zeros((period, len(regulator.visibility)), bool)
        self.reported = regulator.spec.reblock_audit * float(self.required[0].any())
        self.visibility = regulator.visibility
        self.complaints = regulator.spec.complaints * spec.complaint_belief
        group = regulator.group[host]
        siblings = [h for h, g in enumerate(regulator.group) if g == group and h != host]
        self.rungs = period * (len(siblings) + 1) + 1
        # rungs past the period's for the later penalties; a decision past them costs
        # the last one's
        self.foresight = spec.foresee_escalation
        self.later_rungs = LATER_RUNGS if self.foresight else 0
        self.own = self.exposure(host, values.dynamics)
        self.audit = self.own.audit
        # the siblings' weekly chance of a decision and value lost to a forced opening
        self.siblings = []
        for sibling in siblings:
            found, reports, forced_value = self.sibling_risk(sibling, cache)
            if found.any() or reports.any():
                exposure = self.exposure(sibling, values.dynamics)
                caught = caught_by_either(exposure.audit * found, reports)
                later_chance = caught_by_either(exposure.routine * found[-1], reports[-1])
                # a sibling audited only after the period still matters to later penalties
                if caught.any() or (self.foresight and later_chance > 0):
                    self.siblings.append((exposure, caught, forced_value, later_chance))

    @property
    def binding(self) -> np.ndarray:
        """(S,): surfaces that must be open at some week of the period."""
        return self.required.any(axis=0)

    def exposure(self, host: int, dynamics: UserDynamics) -> Exposure:
        """A host's audits over the period and the cost of a decision against it at each
        rung, before the cost of a forced opening (which depends on its links), valued
        by the deciding host's discount and horizon."""
        model, regulator = self.model, self.model.regulator
        reg, users = regulator.spec, model.scenario.users
        spec, decider = model.scenario.messaging[host], model.scenario.messaging[self.host]
        routine = regulator.belief(spec, "routine") if self.announced else 0.0
        if self.announced:
            deadline = regulator.belief(spec, "deadline")
            audit = np.array([deadline if regulator.blitz(w) else routine for w in self.weeks])
        else:
            audit = np.zeros(self.period)
        naming = naming_loss(dynamics, model, host, reg.naming_penalty, reg.naming_steps)
        suspension = (spec.revenue_per_user * joiners(dynamics, model, host)
                      * exposure_weight(reg.suspension_steps, decider.planning_horizon,
                                        self.discount, users.revision_rate))
        group = regulator.group[host]
        k0, capped = int(regulator.offences[group]), int(regulator.capped[group])
        rungs = self.rungs + self.later_rungs
        costs, forced = np.zeros(rungs), np.zeros(rungs, bool)
        for rung in range(rungs):
            fine, is_capped = regulator.fine(host, k0 + rung)
            capped += int(is_capped)
            due = regulator.measures_due(k0 + rung + 1, capped)
            costs[rung] = (fine + naming * ("naming" in due)
                           + suspension * ("suspend_registrations" in due))
            forced[rung] = "forced_open" in due
        return Exposure(host, audit, routine, costs, forced)

    def sibling_risk(self, sibling: int, cache: ReviewCache | None
                     ) -> tuple[np.ndarray, np.ndarray, float]:
        """(P,) the chance that an audit of a sibling host in each week finds a violation
        at its present links, (P,) how strongly complaints report them (as `complained`
        summed over the week's due surfaces), and the weekly value its links would lose
        to a forced opening."""
        model = self.model
        links = free_links(model, sibling)
        if not links or not self.binding.any():
            return np.zeros(self.period), np.zeros(self.period), 0.0
        states = np.array([model.links.state[sibling, c, s] for c, s in links], dtype=int)
        surfaces = np.array([s for _, s in links], dtype=int)
        violating = np.isin(states, violating_states(model))
        counts = np.bincount(surfaces[violating], minlength=len(self.visibility))
        if not counts.any():
            return np.zeros(self.period), np.zeros(self.period), 0.0
        values = cache.link_values(sibling) if cache else link_values(model, sibling)
        found = 1.0 - np.prod((1.0 - self.visibility) ** (counts * self.required), axis=1)
        complained = self.complained(violating[None], surfaces, values.harm[
            np.arange(len(links)), states][None])
        reports = (np.zeros(self.period) if complained is None
                   else self.required @ complained[0])                             # (P,)
        opened = np.where(self.binding[surfaces], OPEN, states)
        held = values.held(np.vstack([states, opened]))
        return found, reports, float(max(held[0] - held[1], 0.0))

    def complained(self, violating: np.ndarray, surfaces: np.ndarray,
                   harms: np.ndarray) -> np.ndarray | None:
        """(N, S): how strongly complaints report each policy's violations on each
        surface: `complaints` times what its violating links (N, L) cost users a week
        per thousand users (`harms`, N x L, at each policy's states). In a week when
        they are due, none is reported with chance exp(-complained summed over the
        surfaces). A sibling's harms are read at its present links and the host's.
        None when the platform foresees no complaints (most reviews: nothing to add)."""
        if not self.complaints:
            return None
        per_link = self.complaints * np.where(violating, harms, 0.0)
        return np.stack([per_link[:, surfaces == s].sum(axis=1)
                         for s in range(len(self.visibility))], axis=1)

    def expected(self, violating: np.ndarray, forced_value: np.ndarray,
                 reblocking: np.ndarray | None = None,
                 complained: np.ndarray | None = None) -> np.ndarray:
        """Expected discounted penalty of policies holding `violating` links on each
        surface (N, S) over the period; `forced_value` (N,) is what each loses, per week
        of the rest of the horizon, if a decision forces its links open; a policy that
        re-blocks a link (`reblocking`, N) may be reported and audited the next week
        (`regulator.reblock_audit`); users' complaints (`complained`, N x S) report
        violations whether or not an audit comes. What the policy adds to the owner's
        penalty: the owner's with it, less the owner's with the host lawful (no
        sibling: 0)."""
        violating = np.atleast_2d(violating)
        forced_value = np.atleast_1d(np.asarray(forced_value, float))
        reported = np.zeros(len(violating)) if reblocking is None else (
            np.asarray(reblocking, float) * self.reported)
        found = 1.0 - np.prod((1.0 - self.visibility)[None, None, :]
                              ** (violating[:, None, :] * self.required[None]), axis=2)
        audit = np.broadcast_to(self.audit, found.shape).copy()                  # (N, P)
        audit[:, 0] = 1 - (1 - self.audit[0]) * (1 - reported)
        caught, later = audit * found, self.own.routine * found[:, -1]
        if complained is not None:
            reports = complained @ self.required.T                                # (N, P)
            caught = caught_by_either(caught, reports)
            later = caught_by_either(later, reports[:, -1])
        if not self.siblings:
            return self.owner_penalty(caught, forced_value, later)
        if not self.foresight:
            lawful = np.zeros((1, self.period))
            totals = self.owner_penalty(np.vstack([caught, lawful]),
                                        np.append(forced_value, 0.0), np.append(later, 0.0))
            return totals[:-1] - totals[-1]
        # against the host lawful in the period with the same options after it (a
        # one-period deviation): otherwise the escalation its siblings bring to its own
        # later violations would be charged to this period's choice
        count = len(caught)
        totals = self.owner_penalty(np.vstack([caught, np.zeros_like(caught)]),
                                    np.tile(forced_value, 2), np.tile(later, 2))
        return totals[:count] - totals[count:]

    def owner_penalty(self, caught: np.ndarray, forced_value: np.ndarray,
                      later: np.ndarray) -> np.ndarray:
        """(N,): the owner's expected discounted penalty when the host is caught in week u
        with chance caught[n, u] and its siblings with theirs (after the period, with
        chance `later`, N, and theirs). A forward pass over the weeks carries the chance
        of each number of decisions against the group so far and of which hosts have
        been forced open (nothing left to find); within a week the regulator decides
        host by host in their order."""
        spec = self.model.scenario.messaging[self.host]
        count = len(caught)
        hosts = sorted([(self.own, caught, forced_value[:, None], later)]
                       + [(e, np.broadcast_to(c, caught.shape), np.full((count, 1), v),
                           np.full(count, after)) for e, c, v, after in self.siblings],
                       key=lambda h: h[0].host)
        # chance of k decisions so far (k0 + k on the ladder), by which hosts are forced
        alive = np.zeros((len(caught), self.rungs, 2 ** len(hosts)))
        alive[:, 0, 0] = 1.0
        total = np.zeros(len(caught))
        rungs = self.rungs
        for u in range(self.period):
            rest = gain_weight(max(spec.planning_horizon - u - 1, 0), self.discount)
            for bit, (exposure, chance, value, _) in enumerate(hosts):
                if not chance[:, u].any():
                    continue
                free = [m for m in range(alive.shape[2]) if not (m >> bit) & 1]
                at_risk = alive[:, :, free] * chance[:, u, None, None]           # (N, K, F)
                cost = (exposure.costs[None, :rungs]
                        + exposure.forced[None, :rungs] * value * rest)
                total += self.discount ** (u + 1) * (at_risk.sum(axis=2) * cost).sum(axis=1)
                alive[:, :, free] -= at_risk
                forced = exposure.forced[None, :rungs - 1, None]
                alive[:, 1:, free] += at_risk[:, :-1] * ~forced
                alive[:, 1:, [m | 1 << bit for m in free]] += at_risk[:, :-1] * forced
        if self.foresight:
            total += self.discount ** self.period * self.escalation(alive, hosts)
        return total

    def escalation(self, alive: np.ndarray, hosts: list) -> np.ndarray:
        """(N,): what the period's decisions add to the owner's penalties after it, to
        the horizon: the owner's net cost over the later weeks from the rung the period
        leaves, less from the rung it began at, with the same hosts forced open. Each
        week of them, each host not forced open either keeps its policy's violations,
        earning their steady value and caught with its chance after the period (its
        routine audit belief times the chance that they are found), or complies for the
        week, whichever costs the owner less: a host at a high rung opens rather than
        pay, so escalation costs at most what the violations would earn (a referee's
        point: charged as if held on whatever the rung, it was an upper bound)."""
        spec = self.model.scenario.messaging[self.host]
        weeks = max(spec.planning_horizon - self.period, 0)
        count, rungs, masks = alive.shape
        if not weeks or not any(h[3].any() for h in hosts):
            return np.zeros(count)
        value = later_net_costs(
            np.array([h[3] for h in hosts], float),
            np.array([np.broadcast_to(h[2][:, 0], (count,)) for h in hosts], float),
            np.array([h[0].costs for h in hosts], float),
            np.array([h[0].forced for h in hosts], bool), weeks, self.discount)
        return (alive * (value[:, :rungs] - value[:, :1])).sum(axis=(1, 2))


@numba.njit(cache=True)
def later_net_costs(later, worth, costs, forced, weeks, discount):
    """C(k, F) at the period's end, (N, rungs, 2**hosts): the owner's discounted net cost
    over the `weeks` after it, by a backward pass. Week by week, host by host in the
    regulator's order, each host h not forced open (its bit not in F) keeps its
    violations, earning worth[h, n] and caught with chance later[h, n] (then it pays
    costs[h, k], the group moves one rung up and, if the rung forces it open, h joins
    F and earns nothing more), or complies for the week, whichever costs less. A
    compiled loop: in numpy the pass took ~30 ms a policy set."""
    hosts, count = later.shape
    total_rungs = costs.shape[1]
    masks = 1 << hosts
    value = np.zeros((count, total_rungs, masks))
    before = np.empty_like(value)
    for _ in range(weeks):
        for h in range(hosts - 1, -1, -1):
            if not later[h].any():
                continue
            bit = 1 << h
            before[:] = value
            for n in range(count):
                chance = later[h, n]
                for k in range(total_rungs):
                    up = min(k + 1, total_rungs - 1)
                    for m in range(masks):
                        if m & bit:
                            continue
                        after = before[n, up, m | bit] if forced[h, k] else before[n, up, m]
                        keep = (-worth[h, n] + (1 - chance) * before[n, k, m]
                                + chance * (costs[h, k] + after))
                        value[n, k, m] = min(keep, before[n, k, m])
        value *= discount
    return value


@dataclass(frozen=True)
class Plan:
    """A policy for the host's free links with its value, in money."""

    states: tuple[int, ...]
    value: float


class Evaluation:
    """What every policy for a host's free links is worth over the coming period: each
    link's diversion in each state (G_l, less the adjustment cost of a change from
    `start`), the policy's users' term, and the expected penalty, which depends only on
    how many links violate on each surface."""

    def __init__(self, model, host: int, period: int, start: np.ndarray | None = None,
                 cache: ReviewCache | None = None):
        spec = model.scenario.messaging[host]
        self.values = values = cache.link_values(host) if cache else link_values(model, host)
        links = values.links
        current = np.array([model.links.state[host, c, s] for c, s in links], dtype=int)
        self.start = start = current if start is None else np.asarray(start, dtype=int)
        self.reopened = np.array([model.links.ever_opened[host, c, s] for c, s in links],
                                 dtype=bool)
        adjustment = spec.adjustment_cost * max(model.weekly_revenue(spec.owner), 0.0)
        self.period = period
        self.additive = values.diverted(period) - adjustment * (
            np.arange(3)[None, :] != np.asarray(start)[:, None])
        # each link's own worth, the others as they are: it ranks the links
        self.worth = self.additive + values.users(period)
        self.steady = values.steady()
        self.outlook = PenaltyOutlook(model, host, period, values, cache)
        self.violating_states = violating_states(model)
        self.surfaces = np.array([s for _, s in links], dtype=int)
        self.at_risk = self.outlook.binding[self.surfaces]

    def value(self, states) -> float:
        """The value of one policy: its links' worth less the expected penalty."""
        return float(self.values_of(np.atleast_2d(np.asarray(states, dtype=int)))[0])

    def values_of(self, states: np.ndarray) -> np.ndarray:
        """(P,): the values of policies given as rows of link states (P, L)."""
        rows = np.arange(states.shape[1])
        return (self.additive[rows, states].sum(axis=1)
                + self.values.users_of(states, self.period)
                - self.penalty(states, self.forced_value(states)))

    def penalty(self, states: np.ndarray, forced_value: np.ndarray) -> np.ndarray:
        """(P,): the expected penalty of each policy, which depends on how many links
        violate on each surface, on whether it re-blocks a link opened before and on
        `forced_value` (P,), what a forced opening would take from it each week."""
        violating = np.isin(states, self.violating_states) & self.at_risk[None, :]
        reblocking = ((states == BLOCKED) & (self.start != BLOCKED)[None, :]
                      & self.reopened[None, :]).any(axis=1)
        counts = np.stack([(violating & (self.surfaces == s)[None, :]).sum(axis=1)
                           for s in range(len(self.outlook.visibility))], axis=1)
        harms = self.values.harm[np.arange(states.shape[1]), states]
        complained = self.outlook.complained(violating, self.surfaces, harms)
        return self.outlook.expected(counts, forced_value, reblocking, complained)

    def forced_value(self, states: np.ndarray) -> np.ndarray:
        """(P,): what a forced opening takes from each policy per week: the policy held
        to the horizon less the same policy with its links on the order's surfaces open,
        valued as a whole (the users' term is not additive over links)."""
        if not self.at_risk.any():
            return np.zeros(len(states))
        opened = np.where(self.at_risk[None, :], OPEN, states)
        held = self.values.held(np.vstack([states, opened]))
        return np.maximum(held[:len(states)] - held[len(states):], 0.0)

    @cached_property
    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """The link states (P, L) and values (P,) of the policies the host chooses among:
        for every number of links violating the order, the policy that does best; the
        policy it holds; and the policy a local search reaches from the best of these.
        The penalty depends on how many links violate on each surface, so for each
        split of the violating links over the surfaces the links chosen are those whose
        own worth gains most from violating; the splits are screened on the links' own
        worths added up, then the best split for each number valued as a whole. One plan
        per number, not one per split: a logit over hundreds of near-identical splits
        would make the host's noise grow with the count of its links."""
        worth, rows = self.worth, np.arange(len(self.worth))
        lawful = [a for a in STATE_LIST if a not in self.violating_states]
        best_lawful = np.array(lawful)[worth[:, lawful].argmax(axis=1)]
        best_violating = np.array(self.violating_states)[
            worth[:, self.violating_states].argmax(axis=1)]
        base = np.where(self.at_risk, best_lawful, worth.argmax(axis=1))
        extra = worth[rows, best_violating] - worth[rows, best_lawful]
        rank = np.full(len(rows), len(rows))       # a link's place among its surface's
        sizes = []
        for s in range(len(self.outlook.visibility)):
            mine = [i for i in np.argsort(-extra, kind="stable")
                    if self.surfaces[i] == s and self.at_risk[i]]
            rank[mine] = np.arange(len(mine))
            sizes.append(len(mine))
        counts = np.array(list(product(*(range(n + 1) for n in sizes))))    # (Q, S)
        chosen = rank[None, :] < counts[:, self.surfaces]
        splits = np.where(chosen, best_violating[None, :], base[None, :])
        one_link_forced = (np.maximum(self.steady[rows, splits], 0.0) * self.at_risk).sum(axis=1)
        screened = worth[rows, splits].sum(axis=1) - self.penalty(splits, one_link_forced)
        number = counts.sum(axis=1)
        best = [np.flatnonzero(number == n)[screened[number == n].argmax()]
                for n in np.unique(number)]
        states = np.vstack([splits[best], self.start[None]])
        values = self.values_of(states)
        found, value = self.improved(states[values.argmax()], values.max())
        states, values = np.vstack([states, found]), np.append(values, value)
        states, first = np.unique(states, axis=0, return_index=True)
        return states, values[first]

    def improved(self, states: np.ndarray, value: float) -> tuple[np.ndarray, float]:
        """The policy reached from `states` by changing, while one gains, the one link
        whose change gains most, and its value."""
        count = len(states)
        for _ in range(LOCAL_ROUNDS if count else 0):
            link, state = np.nonzero(np.arange(3)[None, :] != states[:, None])
            trials = np.repeat(states[None], len(link), axis=0)
            trials[np.arange(len(link)), link] = state
            values = self.values_of(trials)
            if values.max() <= value + 1e-12 * abs(value):
                break
            states, value = trials[values.argmax()], float(values.max())
        return states, value

    def plans(self) -> list[Plan]:
        """The candidates as plans."""
        states, values = self.candidates
        # tolist() hands back Python ints and floats in one pass, not element by element
        return [Plan(tuple(row), v) for row, v in zip(states.tolist(), values.tolist())]


def team_value(model, hosts: list[int], periods: list[int], begin: dict,
               cache: ReviewCache) -> float:
    """The owner's value of its hosts' current policies X against the policies they began
    the review with S: the mean, over the orders in which the hosts could move from S to
    X, of each host's own gain from its move, V_i(X_i) - V_i(S_i), with the hosts before
    it at X and those after it at S (the Shapley value of the moves). Each host's value
    is read where the market is, with its siblings at S or X; read from all links open
    instead (an earlier version), WeChat's blocks, which QQ's complement, were valued
    where multihomers route around them, and Tencent kept WeChat's chats open while
    blocking them paid it ten weeks of revenue a year when played out."""
    target = model.links.state.copy()
    orders = list(permutations(range(len(hosts))))
    total = 0.0
    try:
        for order in orders:
            for host in hosts:
                for (c, s), state in zip(free_links(model, host), begin[host]):
                    model.links.state[host, c, s] = state
            for i in order:
                host = hosts[i]
                model.view = cache.market_view()
                evaluation = cache.evaluation(host, periods[i], begin[host])
                moved = [int(target[host, c, s]) for c, s in evaluation.values.links]
                total += evaluation.value(moved) - evaluation.value(begin[host])
                for (c, s), state in zip(evaluation.values.links, moved):
                    model.links.state[host, c, s] = state
    finally:
        model.links.state[:] = target
        model.view = cache.market_view()
    return total / len(orders)


class ReviewCache:
    """What the week's link reviews would otherwise compute again and again. While the
    platforms review their links only the link states change (the week's users, traffic,
    revenue and regulator stay), so a market view is a function of the states; a host's
    evaluation, of the states, the view it reads and the links ever opened; the users'
    dynamics, of the view, the owner and the host's discount and horizon (their traffic
    path, of the view and the discount). Views are keyed by identity and held here, so
    that no id is reused and a view this cache did not build (a learner's changes can
    leave `model.view` behind the states) is never taken for the states' own. Made when
    `model.view` is the current states' own."""

    def __init__(self, model):
        self.model = model
        states = model.links.state.tobytes()
        self.views: dict[bytes, MarketView] = {states: model.view}   # states -> their view
        self.held: dict[int, MarketView] = {}           # id -> every view keyed on
        self.evaluations: dict[tuple, Evaluation] = {}
        self.values: dict[tuple, LinkValues] = {}
        self.user_dynamics: dict[tuple, UserDynamics] = {}
        self.paths: dict[tuple, list[np.ndarray]] = {}   # (discount, view) -> traffic path

    def market_view(self) -> MarketView:
        """The market view of the current link states."""
        key = self.model.links.state.tobytes()
        if key not in self.views:
            self.views[key] = self.model.market_view()
        return self.views[key]

    def evaluation(self, host: int, period: int, start) -> Evaluation:
        """`Evaluation(model, host, period, start)` at the current states and view."""
        links = self.model.links
        key = (host, period, tuple(start), links.state.tobytes(), links.ever_opened.tobytes(),
               self.view_id())
        if key not in self.evaluations:
            self.evaluations[key] = Evaluation(self.model, host, period, start, self)
        return self.evaluations[key]

    def link_values(self, host: int) -> LinkValues:
        """`link_values(model, host)` at the current states and view (a host's own
        evaluation and its siblings' penalty outlooks read them)."""
        key = (host, self.model.links.state.tobytes(), self.view_id())
        if key not in self.values:
            self.values[key] = link_values(self.model, host, self)
        return self.values[key]

    def dynamics(self, host: int) -> UserDynamics:
        """`UserDynamics(model, owner, host)` at the current view, shared by the owner's
        hosts of the same discount and horizon; its traffic path, by every owner's."""
        spec = self.model.scenario.messaging[host]
        view = self.view_id()
        key = (spec.owner, spec.discount, spec.planning_horizon, view)
        if key not in self.user_dynamics:
            paths = self.paths.setdefault((spec.discount, view), [])
            self.user_dynamics[key] = UserDynamics(self.model, spec.owner, host, paths)
        return self.user_dynamics[key]

    def view_id(self) -> int:
        """The identity of `model.view`, which is held from now on."""
        view = self.model.view
        self.held[id(view)] = view
        return id(view)
