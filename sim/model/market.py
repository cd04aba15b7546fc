"""The market's shared state: link policies, the share ledger and what users see.

Both user engines read a `MarketView` and write a `ShareLedger`; platforms, the
regulator and the metrics read only these, never the users themselves. That is the
seam along which the users' part of the model can be written twice.

Indexing: messaging platforms are hosts h = 0..M-1, content platforms c = 0..C-1,
surfaces s = 0..2 (chat, group, feed). A user's set of messaging platforms is a
bit mask over hosts. A link (h, c, s) is open, open behind a warning page, or
blocked (OPEN < WARNED < BLOCKED: a view takes the best state among the platforms it
can travel on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model.rules import (  # noqa: F401  (the states and outcomes are the market's vocabulary)
    ABANDONED, BLOCKED, DELIVERED, DIRECT, LOST, OPEN, OUTCOMES, STATES, TOKEN_FAIL, TOKEN_OK,
    UNREACHABLE, WARNED, WARNED_DROP, WARNED_OK, view_loss)
from sim.model.cohorts import Cohorts
from sim.scenario import SURFACES, Scenario, by_surface, surface_weights


def popcount(masks):
    """Number of platforms in each mask."""
    return np.bitwise_count(np.asarray(masks, dtype=np.uint64)).astype(np.int64)


def host_bits(n_hosts: int) -> np.ndarray:
    """(2**M, M): which hosts each mask holds."""
    masks = np.arange(2 ** n_hosts)
    return ((masks[:, None] >> np.arange(n_hosts)[None, :]) & 1).astype(bool)


def attention(n_hosts: int) -> np.ndarray:
    """(2**M, M): the share of a user's attention, and of the revenue a user brings, that
    each host of the user's set gets: split equally, so a multihomer is one user, not
    one per membership."""
    bits = host_bits(n_hosts).astype(float)
    return bits / np.maximum(bits.sum(axis=1, keepdims=True), 1.0)


class LinkPolicy:
    """Which host blocks, warns on or opens which rival content platform on which surface."""

    def __init__(self, scenario: Scenario):
        hosts, contents = scenario.messaging, scenario.content
        self.rival = np.array([[[h.owner != c.owner] * len(SURFACES) for c in contents]
                               for h in hosts], dtype=bool)
        names = [c.name for c in contents]
        self.state = np.full(self.rival.shape, OPEN, dtype=np.uint8)
        for h, host in enumerate(hosts):
            for blocked in host.blocks:
                self.state[h, names.index(blocked), :] = BLOCKED
            for warned in host.warns:
                self.state[h, names.index(warned), :] = WARNED
        self.ever_opened = np.zeros_like(self.rival)
        self.forced = np.zeros_like(self.rival)
        self.reblocks = 0
        self.reblocked = np.zeros(len(hosts), dtype=bool)   # hosts that re-blocked this week

    def set(self, host: int, content: int, surface: int, state: int) -> None:
        """Change one link; forced links stay open, and a re-block is counted (a link
        that had been opened, plainly or behind a warning, and is blocked again)."""
        link = host, content, surface
        if not self.rival[link] or self.forced[link]:
            return
        was = self.state[link]
        if was == BLOCKED and state != BLOCKED:
            self.ever_opened[link] = True
        if state == BLOCKED and was != BLOCKED and self.ever_opened[link]:
            self.reblocks += 1
            self.reblocked[host] = True
        self.state[link] = state

    def force_open(self, host: int, surfaces: np.ndarray) -> None:
        """The regulator opens the host's rival links on these surfaces for good."""
        for c, s in zip(*np.nonzero(self.rival[host] & surfaces[None, :])):
            self.set(host, c, s, OPEN)
            self.forced[host, c, s] = True

    @property
    def blocked(self) -> np.ndarray:
        return (self.state == BLOCKED) & self.rival

    @property
    def warned(self) -> np.ndarray:
        return (self.state == WARNED) & self.rival

    def blocked_share(self) -> np.ndarray:
        """(hosts,): each host's share of its rival links that are blocked."""
        return self.blocked.sum(axis=(1, 2)) / np.maximum(self.rival.sum(axis=(1, 2)), 1)

    @property
    def count_blocked(self) -> int:
        return int(self.blocked.sum())

    @property
    def count_warned(self) -> int:
        return int(self.warned.sum())


@dataclass
class ShareLedger:
    """What happened to one week's views, by route mask, content and surface."""

    counts: np.ndarray        # (2**M, C, S, 6) views by outcome (OUTCOMES order)
    value_lost: np.ndarray    # (2**M, C, S) value of the views lost to blocks and warnings
    unreachable: int = 0      # views to a tie with no messaging platform in common
    value_delivered: float = 0.0
    token_costs: float = 0.0
    warning_costs: float = 0.0

    @classmethod
    def empty(cls, n_hosts: int, n_contents: int) -> ShareLedger:
        shape = (2 ** n_hosts, n_contents, len(SURFACES))
        return cls(np.zeros(shape + (len(OUTCOMES),), np.int64), np.zeros(shape))

    def record(self, common, content, surface, outcome, value, users) -> None:
        """Add a batch of views (arrays of equal length)."""
        outcome = np.asarray(outcome)
        value = np.asarray(value, dtype=float)
        reached = outcome != UNREACHABLE
        where = (np.asarray(common)[reached], np.asarray(content)[reached],
                 np.asarray(surface)[reached])
        np.add.at(self.counts, where + (outcome[reached],), 1)
        lost = np.isin(outcome[reached], LOST)
        np.add.at(self.value_lost, tuple(w[lost] for w in where), value[reached][lost])
        self.unreachable += int((~reached).sum())
        self.value_delivered += float(value[np.isin(outcome, DELIVERED)].sum())
        self.token_costs += users.token_cost * int(np.isin(outcome, (TOKEN_OK, TOKEN_FAIL)).sum())
        self.warning_costs += users.warning_cost * int((outcome == WARNED_OK).sum())

    def total(self, *outcomes: int) -> int:
        return int(self.counts[..., list(outcomes)].sum())

    @property
    def lost(self) -> np.ndarray:
        """(2**M, C, S) views lost to blocks and warning pages."""
        return self.counts[..., list(LOST)].sum(axis=-1)

    @property
    def friction(self) -> float:
        """Token and warning-page costs paid."""
        return self.token_costs + self.warning_costs


@dataclass(frozen=True)
class MarketView:
    """What users face this step, precomputed per platform set (mask) and option."""

    state: np.ndarray             # (2**M, C, S): best link state among a route's platforms
    share_weights: np.ndarray     # (C, S) chance that a post is of this content and surface
    post_cdf: np.ndarray          # (C * S,) their cumulative sum, content-major
    fanout: np.ndarray            # (S,) ties one post reaches (nominal: a full neighbourhood)
    recipients: np.ndarray        # (S,) int: what the engines draw (see `recipients`)
    view_mean: np.ndarray         # (S,) mean value of one view
    divert: np.ndarray            # (2**M, C, S, C): chance that a view lost on a route goes
                                  # to content j, a service of the diverting host's group
    recovery: np.ndarray          # (2**M, C, S): share of a lost view's value users recover
    options: np.ndarray           # (K,) masks a user may choose (1..max_platforms platforms)
    route: np.ndarray             # (2**M, 2**M): platforms a share from mask a to mask b
                                  # travels on (0: unreachable)
    reach: np.ndarray             # (K, 2**M): worth of a tie on mask m to a user on option k
    option_quality: np.ndarray    # (K,) summed quality less naming penalties
    loss_with: np.ndarray         # (K, 2**M): expected weekly value a user on option k loses
                                  # to blocks and warnings on views to a tie on mask m
    option_size: np.ndarray       # (K,) number of platforms
    new_platforms: np.ndarray     # (2**M, K) platforms an option adds to a current mask
    allowed: np.ndarray           # (2**M, K) option joins no suspended platform
    option_taste: np.ndarray      # (G, K) each cohort's summed taste for each option
    sharing: np.ndarray           # (G,) each cohort's sharing intensity (x share_rate)


def grid_ties(scenario: Scenario) -> int:
    """Ties in a full Moore neighbourhood."""
    return (2 * scenario.grid.radius + 1) ** 2 - 1


def fanout(scenario: Scenario) -> np.ndarray:
    """Ties a post on each surface reaches in a full neighbourhood: one for a chat,
    `group_size` for a group, every tie for the feed. With long-range ties the nominal
    neighbourhood is the mean degree, grid ties + `extra_ties` (a user of another
    degree reaches more or fewer on the feed and in small groups)."""
    ties = grid_ties(scenario) + scenario.grid.extra_ties
    return np.array([1, min(scenario.users.group_size, ties), ties], dtype=float)


def recipients(scenario: Scenario) -> np.ndarray:
    """(S,) what the engines draw: a chat reaches one tie, a group at most the second
    entry (of the sender's ties), the feed every tie (well mixed: the third entry, that
    many users drawn from everyone)."""
    ties = grid_ties(scenario)
    group = scenario.users.group_size if scenario.grid.extra_ties else min(
        scenario.users.group_size, ties)
    return np.array([1, group, ties], dtype=np.int64)


def route_states(links_state: np.ndarray) -> np.ndarray:
    """(2**M, C, S): the best state among each mask's platforms (BLOCKED for mask 0)."""
    n_hosts = links_state.shape[0]
    best = np.full((2 ** n_hosts,) + links_state.shape[1:], BLOCKED, dtype=np.uint8)
    for mask, holds in enumerate(host_bits(n_hosts)):
        if holds.any():
            best[mask] = links_state[holds].min(axis=0)
    return best


def harm(best: np.ndarray, views: np.ndarray, view_mean: np.ndarray, users,
         host: int) -> np.ndarray:
    """(C, S): what the host's restrictions cost users a week, expected at these views
    (2**M, C, S) by route mask: on each route, the value of the views its best state
    loses and the friction paid for the rest (`view_loss`), shared equally among the
    route's platforms (a view that does not get through was stopped by every one of
    them, and travels on one, each alike). What users complain of: the harm, not the
    views, so a feed view that reaches many ties and is worth little weighs little."""
    lost = views * view_loss(best, view_mean[None, None, :], users)
    masks = np.arange(len(best))
    through_host = (masks >> host) & 1 == 1
    carriers = popcount(masks[through_host]).astype(float)
    return (lost[through_host] / carriers[:, None, None]).sum(axis=0)


def substitutes(scenario: Scenario) -> np.ndarray:
    """(M, C, C): where a host diverts a view of content c that its users lose: content
    j of the same category in which the host's owner holds a stake (ownership counts as
    a stake of one), chosen by content weight; rows sum to the host's `diversion`, or
    to 0 where its group has no such service."""
    contents = scenario.content
    weights = np.array([c.content_weight for c in contents], float)
    table = np.zeros((len(scenario.messaging), len(contents), len(contents)))
    for h, host in enumerate(scenario.messaging):
        for c, wanted in enumerate(contents):
            if not wanted.category:
                continue
            # the stake itself, not what it earns: a stake paid on a margin of 0 still
            # steers (no jump at 0; steering is not the host's choice in the model)
            mine = np.array([j != c and other.category == wanted.category
                             and (other.owner == host.owner or other.stakes.get(host.owner, 0) > 0)
                             for j, other in enumerate(contents)])
            if mine.any() and weights[mine].sum() > 0:
                table[h, c, mine] = host.diversion * weights[mine] / weights[mine].sum()
    return table


def stake(content, owner: str) -> float:
    """The share of a content platform's visit revenue that accrues to an owner: a
    holder's stake of the profit it leaves (`stake_margin`), the owner the rest."""
    if content.owner == owner:
        return 1.0 - sum(content.stakes.values()) * content.stake_margin
    return float(content.stakes.get(owner, 0.0)) * content.stake_margin


def diversion_table(scenario: Scenario, links_state: np.ndarray, best: np.ndarray,
                    subs: np.ndarray) -> np.ndarray:
    """(2**M, C, S, C): chance that a lost view on a route goes to content j. The view
    travels on one of the route's platforms in the best state, each alike, and that
    platform diverts it."""
    n_hosts = links_state.shape[0]
    table = np.zeros(best.shape + (subs.shape[-1],))
    for mask, holds in enumerate(host_bits(n_hosts)):
        if not holds.any():
            continue
        carriers = (links_state[holds] == best[mask][None]).astype(float)     # (h, C, S)
        carriers /= np.maximum(carriers.sum(axis=0, keepdims=True), 1)
        table[mask] = np.einsum("hcs,hcj->csj", carriers, subs[holds])
    return table


def market_view(scenario: Scenario, links: LinkPolicy, penalties: np.ndarray,
                suspended: np.ndarray, interoperable: bool = False,
                cohorts: Cohorts | None = None, subs: np.ndarray | None = None) -> MarketView:
    """Build the view from the link policy, naming penalties (M,), suspensions (M,)
    and whether messaging interoperability is in force (`cohorts` and `subs`, the
    scenario's `Cohorts` and `substitutes`, if the caller holds them).

    Two users share on the platforms they have in common. Users with none in common
    still reach each other if each is on an interconnected platform (every platform is,
    under an interoperability order): the share travels on the interconnected platforms
    of both ends, and the tie is worth `interoperability_reach` of a shared one.
    """
    users = scenario.users
    n_hosts = len(scenario.messaging)
    masks = np.arange(2 ** n_hosts)
    in_mask = host_bits(n_hosts).astype(np.int64)                     # (2**M, M)
    state = np.where(links.rival, links.state, OPEN).astype(np.uint8)
    best = route_states(state)

    weights = np.array([c.content_weight for c in scenario.content], float)
    weights /= weights.sum()
    share_weights = weights[:, None] * np.array(surface_weights(scenario))[None, :]
    views = fanout(scenario)
    view_mean = users.share_value * np.array(by_surface(users.surface_value))
    subs = substitutes(scenario) if subs is None else subs
    divert = diversion_table(scenario, state, best, subs)
    recovery = users.diverted_value * divert.sum(axis=-1)
    per_view = view_loss(best, view_mean[None, None, :], users, recovery)      # (2**M, C, S)
    per_tie = users.share_rate * (per_view * share_weights[None] * views[None, None, :]).sum(
        axis=(1, 2))
    per_tie[0] = 0.0                       # no platform in common: unreachable, not lost

    sizes = in_mask.sum(axis=1)
    options = masks[(sizes >= 1) & (sizes <= users.max_platforms)]
    quality = np.array([h.quality for h in scenario.messaging]) - penalties
    adds = options[None, :] & ~masks[:, None]
    suspended_bits = int(np.sum((1 << np.arange(n_hosts))[np.asarray(suspended, bool)]))
    common = masks[:, None] & masks[None, :]
    interconnected = masks[-1] if interoperable else sum(
        1 << h for h, p in enumerate(scenario.messaging) if p.interconnected)
    ends = masks & interconnected
    bridged = (common == 0) & (ends[:, None] > 0) & (ends[None, :] > 0)
    route = np.where(bridged, ends[:, None] | ends[None, :], common)
    cohorts = cohorts or Cohorts.of(scenario)
    tie_worth = np.where(common != 0, 1.0,
                         np.where(bridged, scenario.regulator.interoperability_reach, 0.0))
    return MarketView(
        state=best,
        share_weights=share_weights,
        post_cdf=np.cumsum(share_weights.ravel()),
        fanout=views,
        recipients=recipients(scenario),
        view_mean=view_mean,
        divert=divert,
        recovery=recovery,
        options=options,
        route=route,
        reach=tie_worth[options],
        option_quality=in_mask[options] @ quality,
        loss_with=per_tie[route[options]],
        option_size=sizes[options],
        new_platforms=popcount(adds),
        allowed=(adds & suspended_bits) == 0,
        option_taste=cohorts.option_taste(options),
        sharing=cohorts.sharing,
    )
