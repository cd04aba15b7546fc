"""The users' rules, as functions of state.

Each function works on one user's numbers or on arrays of many users' numbers
alike, so the agent engine (one Python object per user) and any vectorised engine
apply exactly the same rule.
"""

from __future__ import annotations

import numpy as np

from sim.market import ABANDONED, DIRECT, TOKEN_FAIL, TOKEN_OK, UNREACHABLE, MarketView
from sim.scenario import UserSpec


def draw_category(cdf: np.ndarray, uniform):
    """Index drawn from a cumulative distribution by a uniform number (or array)."""
    return np.minimum(np.searchsorted(cdf, uniform, side="right"), len(cdf) - 1)


def share_outcome(view: MarketView, users: UserSpec, common, content, surface, value, token_draw):
    """What happens to a share, given the messaging platforms it travels on (`common`,
    from `view.route`: those the two users have in common, or else both ends'
    interconnected platforms).

    None: unreachable. Some platform it travels on leaves the content's links open
    on this surface: direct. Otherwise the sender uses a copy-paste token if the share
    is worth more to them than the token's cost, and the token gets through with
    chance `token_success`; if not worth it, the share is abandoned.
    """
    direct = view.open_any[common, content, surface]
    uses_token = value > users.token_cost
    token_outcome = np.where(token_draw < users.token_success, TOKEN_OK, TOKEN_FAIL)
    blocked_outcome = np.where(uses_token, token_outcome, ABANDONED)
    return np.where(common == 0, UNREACHABLE, np.where(direct, DIRECT, blocked_outcome))


def option_utilities(view: MarketView, users: UserSpec, current, neighbour_counts):
    """Utility of every platform set a user may choose (Brock-Durlauf with extras).

    `current`: the user's mask (or array of masks); `neighbour_counts`: how many of
    their ties are on each mask, shape (2**M,) or (n, 2**M). Utility = summed quality
    + network_weight x fraction of ties reachable - expected friction - switching
    cost per platform joined - multihoming cost per extra platform. Options that
    join a platform with suspended registrations get -inf.

    Expected friction is reckoned tie by tie: a share to a neighbour is blocked only
    if every platform the two have in common blocks it, so joining a platform that
    leaves links open spares friction only with the neighbours who are on it too.
    """
    counts = np.asarray(neighbour_counts, dtype=np.int64)
    ties = np.maximum(counts.sum(axis=-1, keepdims=True), 1)
    per_tie = (users.network_weight * view.reach
               - users.share_rate * users.token_cost * view.blocked_with)    # (K, 2**M)
    # einsum, not a BLAS product: it keeps BLAS threads out of the engines' way
    social = np.einsum("...m,km->...k", counts, per_tie) / ties
    utility = (view.option_quality + social
               - users.switching_cost * view.new_platforms[current]
               - users.multihoming_cost * (view.option_size - 1))
    return np.where(view.allowed[current], utility, -np.inf)


def logit_choice(utilities, intensity: float, uniform):
    """Index of the option chosen by logit with this intensity, using one uniform draw."""
    u = np.asarray(utilities, dtype=float)
    finite = np.isfinite(u)
    best = np.max(np.where(finite, u, -np.inf), axis=-1, keepdims=True)
    weights = np.where(finite, np.exp(intensity * np.where(finite, u - best, 0.0)), 0.0)
    cdf = np.cumsum(weights, axis=-1)
    target = np.asarray(uniform)[..., None] * cdf[..., -1:]
    return np.minimum((cdf <= target).sum(axis=-1), u.shape[-1] - 1)
