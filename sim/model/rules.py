"""The users' rules, as functions of state.

Each function works on one user's numbers or on arrays of many users' numbers
alike, so the agent engine (one Python object per user) and any vectorised engine
apply exactly the same rule. The value of a view is exponential with the surface's
mean, so the chances and expected losses of each link state have closed forms
(`view_odds`, `view_loss`); the platforms' decisions and the users' utilities use
those, the engines draw the same events one by one.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

# Link states, ordered: a view takes the best (lowest) state among its route's platforms.
OPEN, WARNED, BLOCKED = 0, 1, 2
STATES = ("open", "warned", "blocked")
# What happens to one view of a shared link.
DIRECT, WARNED_OK, WARNED_DROP, TOKEN_OK, TOKEN_FAIL, ABANDONED, UNREACHABLE = range(7)
OUTCOMES = ("direct", "warned_ok", "warned_drop", "token_ok", "token_fail", "abandoned")
DELIVERED = (DIRECT, WARNED_OK, TOKEN_OK)
LOST = (WARNED_DROP, TOKEN_FAIL, ABANDONED)


def draw_category(cdf: np.ndarray, uniform):
    """Index drawn from a cumulative distribution by a uniform number (or array)."""
    # the array's own method: np.searchsorted's wrapper cost more than the search on one
    # number, drawn for each post of the agent engine's users
    return np.minimum(cdf.searchsorted(uniform, side="right"), len(cdf) - 1)


def share_outcome(state, users, value, draw):
    """What happens to one view of a link, given the best state among the platforms it
    can travel on (`view.state[route]`, or None when the two users share no route).

    Open: direct. Behind a warning page: the viewer gives up with chance
    `warning_dropout`, or when the view is worth no more than `warning_cost`; else
    clicks through and pays it. Blocked: a copy-paste token if the view is worth more
    than `token_cost`, getting through with chance `token_success`; else abandoned.
    One uniform `draw` decides both the dropout and the token's success.
    """
    if state is None:
        return UNREACHABLE
    warned = np.where((draw < users.warning_dropout) | (value <= users.warning_cost),
                      WARNED_DROP, WARNED_OK)
    blocked = np.where(value <= users.token_cost, ABANDONED,
                       np.where(draw < users.token_success, TOKEN_OK, TOKEN_FAIL))
    return np.where(state == OPEN, DIRECT, np.where(state == WARNED, warned, blocked))


def view_odds(state, mean, users):
    """Chance that a view in this link state is lost, and the expected friction it
    costs (token or warning click-through), for a value exponential with this mean."""
    state, mean = np.asarray(state), np.asarray(mean, float)
    token_pass = np.exp(-users.token_cost / mean)
    warning_pass = np.exp(-users.warning_cost / mean)
    lost = np.where(state == OPEN, 0.0, np.where(
        state == WARNED, 1 - (1 - users.warning_dropout) * warning_pass,
        1 - users.token_success * token_pass))
    friction = np.where(state == OPEN, 0.0, np.where(
        state == WARNED, (1 - users.warning_dropout) * warning_pass * users.warning_cost,
        token_pass * users.token_cost))
    return lost, friction


def view_loss(state, mean, users, recovery=0.0):
    """Expected value a view loses against an open link: the value of the views that
    do not get through, less the part `recovery` users get back from a diverted visit,
    plus the friction paid. With v ~ Exponential(mean) and a threshold x,
    E[v; v <= x] = mean - (mean + x) e^(-x/mean) and E[v; v > x] = (mean + x) e^(-x/mean)."""
    state, mean = np.asarray(state), np.asarray(mean, float)
    kept = 1.0 - np.asarray(recovery, float)

    def below(x):
        return mean - (mean + x) * np.exp(-x / mean)

    def above(x):
        return (mean + x) * np.exp(-x / mean)

    tc, wc, q = users.token_cost, users.warning_cost, users.warning_dropout
    blocked = (kept * below(tc) + tc * np.exp(-tc / mean)
               + (1 - users.token_success) * kept * above(tc))
    warned = q * kept * mean + (1 - q) * (kept * below(wc) + wc * np.exp(-wc / mean))
    return np.where(state == OPEN, 0.0, np.where(state == WARNED, warned, blocked))


def option_utilities(view, users, current, neighbour_counts, cohort=0):
    """Utility of every platform set a user may choose (Brock-Durlauf with extras).

    `current`: the user's mask (or array of masks); `neighbour_counts`: how many of
    their ties are on each mask, shape (2**M,) or (n, 2**M); `cohort`: the user's
    cohort (or array of cohorts). Utility = summed quality + the cohort's taste +
    network_weight x fraction of ties reachable - the cohort's sharing x expected loss
    from blocks and warning pages on the views sent to them - switching cost per
    platform joined - multihoming cost per extra platform. Options that join a
    platform with suspended registrations get -inf.

    The expected loss is reckoned tie by tie: a view to a tie travels on the
    platforms the two have in common, in the best state among them, so joining a
    platform that leaves links open spares losses only with the ties who are on it too.
    """
    counts = np.asarray(neighbour_counts, dtype=np.int64)
    ties = np.maximum(counts.sum(axis=-1, keepdims=True), 1)
    cohort = np.asarray(cohort)
    per_tie = (users.network_weight * view.reach)[None] \
        - view.sharing[:, None, None] * view.loss_with[None]                 # (G, K, 2**M)
    # einsum, not a BLAS product: it keeps BLAS threads out of the engines' way
    if cohort.ndim == 0 or len(view.sharing) == 1:
        social = np.einsum("...m,km->...k", counts, per_tie[int(cohort.flat[0])]) / ties
    else:
        counts = np.broadcast_to(counts, cohort.shape + counts.shape[-1:])
        ties = np.broadcast_to(ties, cohort.shape + (1,))
        social = np.empty(counts.shape[:-1] + per_tie.shape[1:2])
        for g in range(len(view.sharing)):
            rows = cohort == g
            social[rows] = np.einsum("nm,km->nk", counts[rows], per_tie[g]) / ties[rows]
    utility = (view.option_quality + view.option_taste[cohort] + social
               - users.switching_cost * view.new_platforms[current]
               - users.multihoming_cost * (view.option_size - 1))
    return np.where(view.allowed[current], utility, -np.inf)


def logit_choice(utilities, intensity: float, uniform):
    """Index of the option chosen by logit with this intensity, using one uniform draw."""
    weights = choice_probabilities(utilities, intensity)
    cdf = np.cumsum(weights, axis=-1)
    target = np.asarray(uniform)[..., None] * cdf[..., -1:]
    return np.minimum((cdf <= target).sum(axis=-1), weights.shape[-1] - 1)


def choice_probabilities(utilities, intensity: float):
    """Logit probabilities of each option (0 for options at -inf)."""
    u = np.asarray(utilities, dtype=float)
    finite = np.isfinite(u)
    if finite.all():            # nothing excluded (the usual case): the same numbers, unmasked
        weights = np.exp(intensity * (u - row_max(u)[..., None]))
    else:
        best = row_max(np.where(finite, u, -np.inf))[..., None]
        weights = np.where(finite, np.exp(intensity * np.where(finite, u - best, 0.0)), 0.0)
    return weights / weights.sum(axis=-1, keepdims=True)


def row_max(u: np.ndarray) -> np.ndarray:
    """np.max over the last axis, taken column by column: a maximum is exact in any
    order, and numpy reduces along a short last axis row by row, slowly."""
    return reduce(np.maximum, (u[..., k] for k in range(u.shape[-1])))


def inclusive_value(utilities, intensity: float):
    """The logit inclusive value (1/beta) ln sum_k exp(beta u_k): a chooser's expected
    best utility, up to Euler's constant over beta (Small & Rosen 1981). Options at -inf
    are left out; with beta = 0 choice is uniform and this is the mean utility."""
    u = np.asarray(utilities, dtype=float)
    finite = np.isfinite(u)
    if intensity == 0:
        return np.where(finite, u, 0.0).sum(axis=-1) / finite.sum(axis=-1)
    best = np.max(np.where(finite, u, -np.inf), axis=-1)
    gaps = np.where(finite, u - best[..., None], -np.inf)
    return best + np.log(np.exp(intensity * gaps).sum(axis=-1)) / intensity
