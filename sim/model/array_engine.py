"""The array engine: the same users and rules as `sim/model/agents.py`, held as arrays.

State per user: a uint8 platform mask, two int32 cell maps and an int32 tie count
(about 13 bytes), plus a sparse list of rewired ties (about 0.4 ties per user at
rewire = 0.05) and, with `grid.extra_ties`, the long-range ties as CSR arrays
(`sim.model.network`; 4 bytes a tie). The Moore neighbourhood is a stencil over the
torus, never a stored edge list. A user's ties are its stencil ties (rewired or not)
followed by its long-range ties.

Distributions, not draws, match the agent engine (the docking tests check this):
- Each user's number of posts is Poisson(share_rate), drawn by inverse CDF; a post's
  content and surface come from one uniform, its recipients (one tie, a group of
  distinct ties, or every tie) from further ones.
- Only views that meet a block or a warning page draw their value one by one (it
  decides the token or the click-through); the summed value of the direct views on
  each surface is one Gamma draw.
- Platform choice uses the shared rules (`sim.model.rules.option_utilities`,
  `sim.model.rules.logit_choice`) on the revisers' neighbour counts.

All randomness comes from the model's numpy Generator and from generators spawned
from the same seed sequence, one per fixed block of users; numba advances them and
runs the blocks on all cores (on one for a small population: `threads_for`).
"""

from __future__ import annotations

from contextlib import contextmanager

import numba
import numpy as np

from sim.model.market import (ABANDONED, DIRECT, OPEN, TOKEN_FAIL, TOKEN_OK, WARNED, WARNED_DROP,
                        WARNED_OK, MarketView, ShareLedger)
from sim.model.network import extra_ties, network_rng
from sim.model.rules import draw_category, logit_choice, option_utilities


BLOCKS = 16
# Below this many users a week's kernels take microseconds, and waking numba's other
# threads (tens of milliseconds when another process holds the cores) costs more than
# it saves. Results do not depend on the thread count.
PARALLEL_FROM_USERS = 20_000


@contextmanager
def threads_for(users: int):
    """Numba's kernels run on one thread for a small population, on all otherwise."""
    if users >= PARALLEL_FROM_USERS:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


class ArrayUsers:
    """All users of the grid as arrays."""

    def __init__(self, model):
        self.model = model
        scenario, rng = model.scenario, model.rng
        grid = scenario.grid
        self.width, self.height = grid.width, grid.height
        occupied = rng.random(grid.width * grid.height) < grid.density
        self.user_cell = np.flatnonzero(occupied).astype(np.int32)
        self.cell_user = np.full(grid.width * grid.height, -1, dtype=np.int32)
        self.cell_user[self.user_cell] = np.arange(len(self.user_cell), dtype=np.int32)
        cohorts = model.cohorts
        self.cohort = cohorts.draw(rng, cohorts.patches(rng, grid.width, grid.height),
                                   self.user_cell % grid.width, self.user_cell // grid.width)
        self.platforms = np.zeros(len(self.user_cell), dtype=np.uint8)
        for g in range(cohorts.count):
            members = np.flatnonzero(self.cohort == g) if cohorts.count > 1 else slice(None)
            self.platforms[members] = initial_platforms(rng, cohorts, g,
                                                        len(self.platforms[members]))
        r = grid.radius
        self.offsets = np.array([(dx, dy) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                                 if (dx, dy) != (0, 0)], dtype=np.int32)
        # Fixed blocks of users, each with a generator spawned from the replicate's
        # seed sequence: results do not depend on how many threads run the blocks.
        self.bounds = np.linspace(0, len(self.user_cell), BLOCKS + 1).astype(np.int64)
        self.block_rngs = tuple(rng.spawn(BLOCKS))
        self.revising = np.zeros(len(self.user_cell), dtype=bool)
        self.poisson_cdf = poisson_table(scenario.users.share_rate * cohorts.sharing)
        self.rewired_start, self.rewired_slot, self.rewired_target = _rewire(
            rng, self.user_cell, self.cell_user, self.width, self.height, self.offsets,
            grid.rewire)
        n = len(self.user_cell)
        if grid.extra_ties:
            self.extra_start, self.extra_target = extra_ties(
                network_rng(rng), n, grid.extra_ties, grid.degree_tail)
        else:
            self.extra_start, self.extra_target = np.zeros(n + 1, np.int64), np.zeros(0, np.int32)
        self.n_ties = _count_ties(self.user_cell, self.cell_user, self.width, self.height,
                                  self.offsets) + np.diff(self.extra_start).astype(np.int32)
        self.max_ties = max(len(self.offsets), int(self.n_ties.max(initial=0)))   # buffer size
        self.counted: tuple[np.ndarray, np.ndarray] | None = None   # (masks, their counts)

    def masks(self) -> np.ndarray:
        return self.platforms

    def cohorts(self) -> np.ndarray:
        return self.cohort

    def share(self, view: MarketView) -> ShareLedger:
        rng, users = self.model.rng, self.model.scenario.users
        n = len(self.platforms)
        ledger = ShareLedger.empty(len(self.model.scenario.messaging), view.state.shape[1])
        if n < 2:
            return ledger
        blocks = len(self.block_rngs)
        counts = np.zeros((blocks,) + ledger.counts.shape, np.int64)
        value_lost = np.zeros((blocks,) + ledger.value_lost.shape)
        with threads_for(n):
            unreachable, direct, value_through = _share_kernel(
                self.block_rngs, self.bounds, self.poisson_cdf, self.cohort, self.platforms,
                *self.neighbourhood(), view.route, view.state, view.post_cdf, view.recipients,
                view.view_mean, users.token_cost, users.token_success, users.warning_cost,
                users.warning_dropout, counts, value_lost)
        ledger.counts += counts.sum(axis=0)
        ledger.value_lost += value_lost.sum(axis=0)
        ledger.unreachable = int(unreachable.sum())
        direct = direct.sum(axis=0)
        ledger.value_delivered = sum(value_through.tolist()) + sum(
            float(rng.gamma(k, mean)) if k else 0.0 for k, mean in zip(direct, view.view_mean))
        ledger.token_costs = users.token_cost * ledger.total(TOKEN_OK, TOKEN_FAIL)
        ledger.warning_costs = users.warning_cost * ledger.total(WARNED_OK)
        return ledger

    def neighbourhood(self) -> tuple:
        """What the kernels need to find a user's ties."""
        return (self.user_cell, self.cell_user, self.width, self.height, self.offsets,
                self.max_ties, self.rewired_start, self.rewired_slot, self.rewired_target,
                self.extra_start, self.extra_target, self.model.scenario.grid.well_mixed)

    def neighbour_counts(self) -> np.ndarray:
        """(n, 2**M): how many of each user's ties are on each mask (well mixed: the
        whole population's counts). Kept, with the masks they were counted on, for the
        week's revisers (read only)."""
        n_masks = 2 ** len(self.model.scenario.messaging)
        if self.model.scenario.grid.well_mixed:
            everyone = np.bincount(self.platforms, minlength=n_masks)
            return np.broadcast_to(everyone, (len(self.platforms), n_masks))
        counts = self.counted_now()
        if counts is None:
            with threads_for(len(self.platforms)):
                counts = _neighbour_counts(np.arange(len(self.platforms)), self.platforms,
                                           *self.neighbourhood()[:-1], n_masks)
            self.counted = (self.platforms.copy(), counts)
        return counts

    def counted_now(self) -> np.ndarray | None:
        """Every user's kept neighbour counts, if no user has switched since."""
        if self.counted is not None and np.array_equal(self.counted[0], self.platforms):
            return self.counted[1]
        return None

    def choose_platforms(self, view: MarketView) -> int:
        """Revisers decide on the same state, then all switch (synchronous revision)."""
        rng, users = self.model.rng, self.model.scenario.users
        n_masks = 2 ** len(self.model.scenario.messaging)
        with threads_for(len(self.platforms)):
            _bernoulli(self.block_rngs, self.bounds, users.revision_rate, self.revising)
        revisers = np.flatnonzero(self.revising)
        if len(revisers) == 0:
            return 0
        kept = self.counted_now()            # the profile's, when it was taken this week
        if self.model.scenario.grid.well_mixed:
            counts = np.bincount(self.platforms, minlength=n_masks)[None, :]
        elif kept is not None:
            counts = kept[revisers]
        else:
            with threads_for(len(self.platforms)):
                counts = _neighbour_counts(revisers, self.platforms,
                                           *self.neighbourhood()[:-1], n_masks)
        current = self.platforms[revisers]
        utilities = option_utilities(view, users, current, counts, self.cohort[revisers])
        chosen = view.options[logit_choice(utilities, users.choice_intensity,
                                           rng.random(len(revisers)))].astype(np.uint8)
        joined = int(np.bitwise_count(chosen & ~current).sum())
        self.platforms[revisers] = chosen
        return joined


def initial_platforms(rng, cohorts, g: int, n: int) -> np.ndarray:
    """The platforms of `n` users of cohort `g`: a first by the cohort's starting shares,
    maybe a second (`Cohorts.second_chance`, `second_cdf`)."""
    first = draw_category(np.cumsum(cohorts.initial[g]), rng.random(n))
    masks = (1 << first).astype(np.uint8)
    chance = cohorts.second_chance[g]
    if chance.any():
        second = np.flatnonzero(rng.random(n) < chance[first])
        for h in range(len(chance)):
            users = second[first[second] == h]
            if len(users):
                extra = draw_category(cohorts.second_cdf[g, h], rng.random(len(users)))
                masks[users] |= (1 << extra).astype(np.uint8)
    return masks


@numba.njit(cache=True, parallel=True)
def _bernoulli(rngs, bounds, p, out):
    """One Bernoulli(p) trial per user, into the boolean array `out`, block by block."""
    for block in numba.prange(len(bounds) - 1):
        rng = rngs[block]
        for user in range(bounds[block], bounds[block + 1]):
            out[user] = rng.random() < p


@numba.njit(cache=True, inline="always")
def _neighbour(cell, slot, width, height, offsets, cell_user):
    """The user in a stencil cell around `cell` on the torus (-1 if empty)."""
    y = cell // width
    x = cell - y * width + offsets[slot, 0]
    y += offsets[slot, 1]
    if x < 0:
        x += width
    elif x >= width:
        x -= width
    if y < 0:
        y += height
    elif y >= height:
        y -= height
    return cell_user[y * width + x]


@numba.njit(cache=True, inline="always")
def _tie(user, slot, user_cell, cell_user, width, height, offsets, r_start, r_slot, r_target):
    """The user at the end of a tie: the grid neighbour, or the rewired target."""
    for j in range(r_start[user], r_start[user + 1]):
        if r_slot[j] == slot:
            return r_target[j]
    return _neighbour(user_cell[user], slot, width, height, offsets, cell_user)


@numba.njit(cache=True, inline="always")
def _random_other(user, u, n):
    return (user + 1 + int(u * (n - 1))) % n


@numba.njit(cache=True)
def _rewire(rng, user_cell, cell_user, width, height, offsets, p):
    """Replace each grid tie, with chance p, by a tie to a random other user (CSR)."""
    n, k = len(user_cell), len(offsets)
    start = np.zeros(n + 1, np.int32)
    slots = np.empty(max(16, int(n * k * p * 1.2) + 16), np.uint8)
    targets = np.empty(len(slots), np.int32)
    count = 0
    for user in range(n):
        start[user] = count
        for slot in range(k):
            if _neighbour(user_cell[user], slot, width, height, offsets, cell_user) < 0:
                continue
            if p > 0.0 and rng.random() < p:
                if count == len(slots):
                    slots = np.concatenate((slots, np.empty(len(slots), np.uint8)))
                    targets = np.concatenate((targets, np.empty(len(targets), np.int32)))
                slots[count] = slot
                targets[count] = _random_other(user, rng.random(), n)
                count += 1
    start[n] = count
    return start, slots[:count].copy(), targets[:count].copy()


@numba.njit(cache=True)
def _count_ties(user_cell, cell_user, width, height, offsets):
    """Each user's number of grid ties (occupied cells in the stencil)."""
    ties = np.zeros(len(user_cell), np.int32)
    for user in range(len(user_cell)):
        for slot in range(len(offsets)):
            if _neighbour(user_cell[user], slot, width, height, offsets, cell_user) >= 0:
                ties[user] += 1
    return ties


@numba.njit(cache=True, parallel=True)
def _share_kernel(rngs, bounds, poisson_cdf, cohort, masks, user_cell, cell_user, width, height,
                  offsets, max_ties, r_start, r_slot, r_target, x_start, x_target, well_mixed,
                  route, state, post_cdf, fanout, view_mean, token_cost, token_success,
                  warning_cost, warning_dropout, counts, value_lost):
    """The week's views, by the rule of `sim.model.rules.share_outcome`, into `counts` and
    `value_lost` (one slice per block of users, each block with its own generator).

    Senders are visited in order (so memory is read as a stream); each posts a
    Poisson number of links, drawn by inverse CDF from their cohort's row of
    `poisson_cdf`. Returns per
    block: unreachable views, direct views per surface, and the value of the views
    delivered through a token or a warning page. (Summing them here would be a
    parallel reduction, whose order, and so whose last float digits, would depend
    on the number of threads.)
    """
    n, blocks, n_surfaces = len(masks), len(bounds) - 1, len(fanout)
    unreachable = np.zeros(blocks, np.int64)
    direct = np.zeros((blocks, n_surfaces), np.int64)
    value_through = np.zeros(blocks)
    for block in numba.prange(blocks):
        rng = rngs[block]
        ties = np.empty(max_ties, np.int32)
        seen = np.empty(max_ties, np.int32)
        lost, through = 0, 0.0     # locals: no cache line shared between threads
        for sender in range(bounds[block], bounds[block + 1]):
            table = poisson_cdf[cohort[sender]]
            posts = _draw_index(table, rng.random())
            if posts == len(table) - 1:             # the far tail: draw it exactly
                posts = rng.poisson(-np.log(table[0]))
            if posts == 0:
                continue
            k = 0
            if not well_mixed:
                for slot in range(len(offsets)):
                    if _neighbour(user_cell[sender], slot, width, height, offsets,
                                  cell_user) >= 0:
                        ties[k] = _tie(sender, slot, user_cell, cell_user, width, height,
                                       offsets, r_start, r_slot, r_target)
                        k += 1
                for j in range(x_start[sender], x_start[sender + 1]):
                    ties[k] = x_target[j]
                    k += 1
            for _ in range(posts):
                category = _draw_index(post_cdf, rng.random())
                content, surface = category // n_surfaces, category % n_surfaces
                views = _recipients(rng, surface, fanout, ties, k, seen, sender, n,
                                    well_mixed)
                for v in range(views):
                    common = route[masks[sender], masks[seen[v]]]
                    if common == 0:
                        lost += 1
                        continue
                    link = state[common, content, surface]
                    if link == OPEN:
                        counts[block, common, content, surface, DIRECT] += 1
                        direct[block, surface] += 1
                        continue
                    value = rng.exponential(view_mean[surface])
                    draw = rng.random()
                    if link == WARNED:
                        if draw < warning_dropout or value <= warning_cost:
                            outcome = WARNED_DROP
                        else:
                            outcome = WARNED_OK
                    elif value <= token_cost:
                        outcome = ABANDONED
                    elif draw < token_success:
                        outcome = TOKEN_OK
                    else:
                        outcome = TOKEN_FAIL
                    counts[block, common, content, surface, outcome] += 1
                    if outcome == WARNED_OK or outcome == TOKEN_OK:
                        through += value
                    else:
                        value_lost[block, common, content, surface] += value
        unreachable[block], value_through[block] = lost, through
    return unreachable, direct, value_through


@numba.njit(cache=True, inline="always")
def _recipients(rng, surface, fanout, ties, k, seen, sender, n, well_mixed):
    """Fill `seen` with a post's recipients and return how many: one tie in a chat,
    `fanout[1]` distinct ties (a partial shuffle) in a group, every tie on the feed;
    well mixed, that many users drawn from everyone."""
    if well_mixed:
        for v in range(fanout[surface]):
            seen[v] = _random_other(sender, rng.random(), n)
        return fanout[surface]
    if k == 0:
        return 0
    if surface == 0:
        seen[0] = ties[int(rng.random() * k)]
        return 1
    views = k if surface == 2 else min(fanout[surface], k)
    for v in range(views):
        if surface == 1:
            j = v + int(rng.random() * (k - v))
            ties[v], ties[j] = ties[j], ties[v]
        seen[v] = ties[v]
    return views


@numba.njit(cache=True, inline="always")
def _draw_index(cdf, u):
    """Index drawn from a short cumulative distribution (a linear scan)."""
    for i in range(len(cdf) - 1):
        if u < cdf[i]:
            return i
    return len(cdf) - 1


def poisson_table(rates) -> np.ndarray:
    """(G, L): for each rate, the CDF of Poisson(rate) up to where only a 1e-12 tail
    is left for the largest; the last entry stands for that tail, which the kernel
    then draws exactly."""
    from scipy import stats

    rates = np.atleast_1d(np.asarray(rates, float))
    top = int(stats.poisson.ppf(1 - 1e-12, rates.max())) + 2
    cdf = stats.poisson.cdf(np.arange(top)[None, :], rates[:, None])
    cdf[:, -1] = 1.0
    return cdf


@numba.njit(cache=True, parallel=True)
def _neighbour_counts(revisers, masks, user_cell, cell_user, width, height, offsets, max_ties,
                      r_start, r_slot, r_target, x_start, x_target, n_masks):
    """How many of each reviser's ties are on each platform mask."""
    counts = np.zeros((len(revisers), n_masks), np.int32)
    for row in numba.prange(len(revisers)):
        user = revisers[row]
        for slot in range(len(offsets)):
            if _neighbour(user_cell[user], slot, width, height, offsets, cell_user) < 0:
                continue
            tie = _tie(user, slot, user_cell, cell_user, width, height, offsets, r_start,
                       r_slot, r_target)
            counts[row, masks[tie]] += 1
        for j in range(x_start[user], x_start[user + 1]):
            counts[row, masks[x_target[j]]] += 1
    return counts
