"""The array engine: the same users and rules as `sim/agents.py`, held as arrays.

State per user: a uint8 platform mask and two int32 cell maps (about 9 bytes),
plus a sparse list of rewired ties (about 0.4 ties per user at rewire = 0.05). The
Moore neighbourhood is a stencil over the torus, never a stored edge list.

Distributions, not draws, match the agent engine (the docking tests check this):
- Each user's number of shares is Poisson(share_rate), drawn by inverse CDF.
- Only blocked shares draw their value one by one (it decides the token); the
  summed value of the direct shares is one Gamma draw.
- Platform choice uses the shared rules (`sim.rules.option_utilities`,
  `sim.rules.logit_choice`) on the revisers' neighbour counts.

All randomness comes from the model's numpy Generator and from generators spawned
from the same seed sequence, one per fixed block of users; numba advances them and
runs the blocks on all cores.
"""

from __future__ import annotations

import numba
import numpy as np

from sim.market import ABANDONED, DIRECT, TOKEN_FAIL, TOKEN_OK, MarketView, ShareLedger
from sim.rules import draw_category, logit_choice, option_utilities


BLOCKS = 16


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
        self.platforms = initial_platforms(rng, scenario, len(self.user_cell))
        r = grid.radius
        self.offsets = np.array([(dx, dy) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                                 if (dx, dy) != (0, 0)], dtype=np.int32)
        # Fixed blocks of users, each with a generator spawned from the replicate's
        # seed sequence: results do not depend on how many threads run the blocks.
        self.bounds = np.linspace(0, len(self.user_cell), BLOCKS + 1).astype(np.int64)
        self.block_rngs = tuple(rng.spawn(BLOCKS))
        self.revising = np.zeros(len(self.user_cell), dtype=bool)
        self.n_ties = _count_ties(self.user_cell, self.cell_user, self.width, self.height,
                                  self.offsets)
        self.poisson_cdf = poisson_table(scenario.users.share_rate)
        self.rewired_start, self.rewired_slot, self.rewired_target = _rewire(
            rng, self.user_cell, self.cell_user, self.width, self.height, self.offsets,
            grid.rewire)

    def masks(self) -> np.ndarray:
        return self.platforms

    def share(self, view: MarketView) -> ShareLedger:
        rng, users = self.model.rng, self.model.scenario.users
        n = len(self.platforms)
        ledger = ShareLedger.empty(len(self.model.scenario.messaging), len(view.content_cdf))
        if n < 2:
            return ledger
        joint_cdf = np.cumsum(view.share_weights.ravel())
        counts = np.zeros((len(self.block_rngs),) + ledger.counts.shape, np.int64)
        unreachable, direct, token_value = _share_kernel(
            self.block_rngs, self.bounds, self.poisson_cdf, self.platforms, *self.neighbourhood(),
            view.route, view.open_any, joint_cdf, view.share_weights.shape[1], users.token_cost,
            users.token_success, users.share_value, counts)
        ledger.counts += counts.sum(axis=0)
        direct = int(direct.sum())
        ledger.unreachable = int(unreachable.sum())
        ledger.value_delivered = sum(token_value.tolist()) + (
            float(rng.gamma(direct, users.share_value)) if direct else 0.0)
        token_shares = ledger.counts[..., TOKEN_OK].sum() + ledger.counts[..., TOKEN_FAIL].sum()
        ledger.token_costs = users.token_cost * int(token_shares)
        return ledger

    def neighbourhood(self) -> tuple:
        """What the kernels need to find a user's ties."""
        return (self.user_cell, self.cell_user, self.width, self.height, self.offsets,
                self.n_ties, self.rewired_start, self.rewired_slot, self.rewired_target,
                self.model.scenario.grid.well_mixed)

    def choose_platforms(self, view: MarketView) -> int:
        """Revisers decide on the same state, then all switch (synchronous revision)."""
        rng, users = self.model.rng, self.model.scenario.users
        n_masks = 2 ** len(self.model.scenario.messaging)
        _bernoulli(self.block_rngs, self.bounds, users.revision_rate, self.revising)
        revisers = np.flatnonzero(self.revising)
        if len(revisers) == 0:
            return 0
        if self.model.scenario.grid.well_mixed:
            counts = np.bincount(self.platforms, minlength=n_masks)[None, :]
        else:
            counts = _neighbour_counts(revisers, self.platforms, *self.neighbourhood()[:-1],
                                       n_masks)
        current = self.platforms[revisers]
        utilities = option_utilities(view, users, current, counts)
        chosen = view.options[logit_choice(utilities, users.choice_intensity,
                                           rng.random(len(revisers)))].astype(np.uint8)
        joined = int(np.bitwise_count(chosen & ~current).sum())
        self.platforms[revisers] = chosen
        return joined


def initial_platforms(rng, scenario, n: int) -> np.ndarray:
    """First platform by initial share; a second for `initial_multihoming` of users."""
    shares = np.array([p.initial_share for p in scenario.messaging])
    first = draw_category(np.cumsum(shares), rng.random(n))
    masks = (1 << first).astype(np.uint8)
    if scenario.users.max_platforms >= 2 and scenario.users.initial_multihoming > 0:
        second = np.flatnonzero(rng.random(n) < scenario.users.initial_multihoming)
        for h in range(len(shares)):
            users = second[first[second] == h]
            others = shares.copy()
            others[h] = 0.0
            if len(users) and others.sum() > 0:
                extra = draw_category(np.cumsum(others) / others.sum(), rng.random(len(users)))
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


@numba.njit(cache=True, inline="always")
def _partner(u, sender, n, user_cell, cell_user, width, height, offsets, n_ties, r_start,
             r_slot, r_target, well_mixed):
    """A tie drawn uniformly among the sender's ties by the uniform u (-1 if none),
    and what is left of u: u x k less its integer part is again uniform on [0, 1),
    with at least 29 of its 53 bits, enough to draw the share's content and surface."""
    if well_mixed:
        scaled = u * (n - 1)
        return (sender + 1 + int(scaled)) % n, scaled - int(scaled)
    ties = n_ties[sender]
    if ties == 0:
        return -1, u
    scaled = u * ties
    pick = int(scaled)
    rest = scaled - pick
    if ties == len(offsets):                     # a full neighbourhood: every slot is a tie
        return _tie(sender, pick, user_cell, cell_user, width, height, offsets, r_start,
                    r_slot, r_target), rest
    for slot in range(len(offsets)):
        if _neighbour(user_cell[sender], slot, width, height, offsets, cell_user) >= 0:
            if pick == 0:
                return _tie(sender, slot, user_cell, cell_user, width, height, offsets,
                            r_start, r_slot, r_target), rest
            pick -= 1
    return -1, rest


@numba.njit(cache=True)
def _count_ties(user_cell, cell_user, width, height, offsets):
    """Each user's number of grid ties (occupied cells in the stencil)."""
    ties = np.zeros(len(user_cell), np.uint8)
    for user in range(len(user_cell)):
        for slot in range(len(offsets)):
            if _neighbour(user_cell[user], slot, width, height, offsets, cell_user) >= 0:
                ties[user] += 1
    return ties


@numba.njit(cache=True, parallel=True)
def _share_kernel(rngs, bounds, poisson_cdf, masks, user_cell, cell_user, width, height,
                  offsets, n_ties, r_start, r_slot, r_target, well_mixed, route, open_any,
                  joint_cdf, n_surfaces, token_cost, token_success, share_value, counts):
    """The week's shares, by the rule of `sim.rules.share_outcome`, into `counts`
    (one slice per block of users, each block with its own generator).

    Senders are visited in order (so memory is read as a stream); each shares a
    Poisson number of links, drawn by inverse CDF from `poisson_cdf`.
    Returns per block: unreachable shares, direct shares, value of token shares
    delivered. (Summing them here would be a parallel reduction, whose order, and so
    whose last float digits, would depend on the number of threads.)
    """
    n, blocks = len(masks), len(bounds) - 1
    unreachable = np.zeros(blocks, np.int64)
    direct = np.zeros(blocks, np.int64)
    token_value = np.zeros(blocks)
    for block in numba.prange(blocks):
        rng = rngs[block]
        lost, reached, valued = 0, 0, 0.0     # locals: no cache line shared between threads
        for sender in range(bounds[block], bounds[block + 1]):
            shares = _draw_index(poisson_cdf, rng.random())
            if shares == len(poisson_cdf) - 1:       # the far tail: draw it exactly
                shares = rng.poisson(-np.log(poisson_cdf[0]))
            for _ in range(shares):
                partner, rest = _partner(rng.random(), sender, n, user_cell, cell_user, width,
                                         height, offsets, n_ties, r_start, r_slot, r_target,
                                         well_mixed)
                if partner < 0:
                    continue
                category = _draw_index(joint_cdf, rest)
                content, surface = category // n_surfaces, category % n_surfaces
                common = route[masks[sender], masks[partner]]
                if common == 0:
                    lost += 1
                elif open_any[common, content, surface]:
                    counts[block, common, content, surface, DIRECT] += 1
                    reached += 1
                else:
                    value = rng.exponential(share_value)
                    if value <= token_cost:
                        counts[block, common, content, surface, ABANDONED] += 1
                    elif rng.random() < token_success:
                        counts[block, common, content, surface, TOKEN_OK] += 1
                        valued += value
                    else:
                        counts[block, common, content, surface, TOKEN_FAIL] += 1
        unreachable[block], direct[block], token_value[block] = lost, reached, valued
    return unreachable, direct, token_value


@numba.njit(cache=True, inline="always")
def _draw_index(cdf, u):
    """Index drawn from a short cumulative distribution (a linear scan)."""
    for i in range(len(cdf) - 1):
        if u < cdf[i]:
            return i
    return len(cdf) - 1


def poisson_table(rate: float) -> np.ndarray:
    """CDF of Poisson(rate) up to where only a 1e-12 tail is left; the last entry
    stands for that tail, which the kernel then draws exactly."""
    from scipy import stats

    top = int(stats.poisson.ppf(1 - 1e-12, rate)) + 2
    cdf = stats.poisson.cdf(np.arange(top), rate)
    cdf[-1] = 1.0
    return cdf


@numba.njit(cache=True, parallel=True)
def _neighbour_counts(revisers, masks, user_cell, cell_user, width, height, offsets, n_ties,
                      r_start, r_slot, r_target, n_masks):
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
    return counts
