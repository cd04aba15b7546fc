"""The market's shared state: link policies, the share ledger and what users see.

Both user engines read a `MarketView` and write a `ShareLedger`; platforms, the
regulator and the metrics read only these, never the users themselves. That is the
seam along which the users' part of the model can be written twice.

Indexing: messaging platforms are hosts h = 0..M-1, content platforms c = 0..C-1,
surfaces s = 0..2 (chat, group, feed). A user's set of messaging platforms is a
bit mask over hosts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario import SURFACES, Scenario, surface_weights

DIRECT, TOKEN_OK, TOKEN_FAIL, ABANDONED, UNREACHABLE = range(5)
OUTCOMES = ("direct", "token_ok", "token_fail", "abandoned")


def popcount(masks):
    """Number of platforms in each mask."""
    return np.bitwise_count(np.asarray(masks, dtype=np.uint64)).astype(np.int64)


class LinkPolicy:
    """Which host blocks which rival content platform on which surface."""

    def __init__(self, scenario: Scenario):
        hosts, contents = scenario.messaging, scenario.content
        self.rival = np.array([[[h.owner != c.owner] * len(SURFACES) for c in contents]
                               for h in hosts], dtype=bool)
        names = [c.name for c in contents]
        self.blocked = np.zeros_like(self.rival)
        for h, host in enumerate(hosts):
            for blocked in host.blocks:
                self.blocked[h, names.index(blocked), :] = True
        self.ever_opened = np.zeros_like(self.rival)
        self.forced = np.zeros_like(self.rival)
        self.reblocks = 0

    def set(self, host: int, content: int, surface: int, blocked: bool) -> None:
        """Change one link; forced links stay open, and a re-block is counted."""
        if not self.rival[host, content, surface] or self.forced[host, content, surface]:
            return
        was = self.blocked[host, content, surface]
        if was and not blocked:
            self.ever_opened[host, content, surface] = True
        if blocked and not was and self.ever_opened[host, content, surface]:
            self.reblocks += 1
        self.blocked[host, content, surface] = blocked

    def force_open(self, host: int, surfaces: np.ndarray) -> None:
        """The regulator opens the host's rival links on these surfaces for good."""
        for c, s in zip(*np.nonzero(self.rival[host] & surfaces[None, :])):
            self.set(host, c, s, False)
            self.forced[host, c, s] = True

    @property
    def count_blocked(self) -> int:
        return int((self.blocked & self.rival).sum())


@dataclass
class ShareLedger:
    """What happened to the shares of one step, by common-platform mask, content, surface."""

    counts: np.ndarray        # (2**M, C, S, 4) shares by outcome (OUTCOMES order)
    unreachable: int = 0      # shares with no messaging platform in common
    value_delivered: float = 0.0
    token_costs: float = 0.0

    @classmethod
    def empty(cls, n_hosts: int, n_contents: int) -> ShareLedger:
        return cls(np.zeros((2 ** n_hosts, n_contents, len(SURFACES), len(OUTCOMES)), np.int64))

    def record(self, common, content, surface, outcome, value, token_cost: float) -> None:
        """Add a batch of shares (arrays of equal length)."""
        outcome = np.asarray(outcome)
        reached = outcome != UNREACHABLE
        np.add.at(self.counts, (np.asarray(common)[reached], np.asarray(content)[reached],
                                np.asarray(surface)[reached], outcome[reached]), 1)
        self.unreachable += int((~reached).sum())
        delivered = (outcome == DIRECT) | (outcome == TOKEN_OK)
        self.value_delivered += float(np.asarray(value, dtype=float)[delivered].sum())
        self.token_costs += token_cost * int(((outcome == TOKEN_OK) | (outcome == TOKEN_FAIL)).sum())

    @property
    def by_outcome(self) -> dict[str, int]:
        direct, token_ok, token_fail, abandoned = self.counts.sum(axis=(0, 1, 2))
        return {"direct": int(direct), "token": int(token_ok + token_fail),
                "abandoned": int(abandoned), "unreachable": self.unreachable}


@dataclass(frozen=True)
class MarketView:
    """What users face this step, precomputed per platform set (mask) and option."""

    open_any: np.ndarray          # (2**M, C, S): some platform in the mask leaves the link open
    content_cdf: np.ndarray       # (C,) cumulative content weights
    surface_cdf: np.ndarray       # (S,) cumulative surface weights
    share_weights: np.ndarray     # (C, S) chance that a share is of this content and surface
    options: np.ndarray           # (K,) masks a user may choose (1..max_platforms platforms)
    route: np.ndarray             # (2**M, 2**M): platforms a share from mask a to mask b
                                  # travels on (0: unreachable)
    reach: np.ndarray             # (K, 2**M): worth of a tie on mask m to a user on option k
    option_quality: np.ndarray    # (K,) summed quality less naming penalties
    blocked_with: np.ndarray      # (K, 2**M): fraction of shares to a user on mask m that
                                  # every platform the two have in common blocks
    option_size: np.ndarray       # (K,) number of platforms
    new_platforms: np.ndarray     # (2**M, K) platforms an option adds to a current mask
    allowed: np.ndarray           # (2**M, K) option joins no suspended platform


def market_view(scenario: Scenario, links: LinkPolicy, penalties: np.ndarray,
                suspended: np.ndarray, interoperable: bool = False) -> MarketView:
    """Build the view from the link policy, naming penalties (M,), suspensions (M,)
    and whether messaging interoperability is in force.

    Two users share on the platforms they have in common. Users with none in common
    still reach each other if each is on an interconnected platform (every platform is,
    under an interoperability order): the share travels on the interconnected platforms
    of both ends (open if any of them leaves the link open), and the tie is worth
    `interoperability_reach` of a shared one.
    """
    n_hosts = len(scenario.messaging)
    masks = np.arange(2 ** n_hosts)
    in_mask = (masks[:, None] >> np.arange(n_hosts)[None, :]) & 1  # (2**M, M)
    is_open = ~(links.blocked & links.rival)                         # (M, C, S)
    open_any = np.einsum("mh,hcs->mcs", in_mask, is_open.astype(np.int64)) > 0

    weights = np.array([c.content_weight for c in scenario.content], float)
    weights /= weights.sum()
    surfaces = np.array(surface_weights(scenario))

    sizes = in_mask.sum(axis=1)
    options = masks[(sizes >= 1) & (sizes <= scenario.users.max_platforms)]
    quality = np.array([h.quality for h in scenario.messaging]) - penalties
    share_weights = weights[:, None] * surfaces[None, :]
    blocked_share = ((~open_any) * share_weights[None]).sum(axis=(1, 2))
    blocked_share[0] = 0.0     # no platform in common: unreachable, not blocked
    adds = options[None, :] & ~masks[:, None]
    suspended_bits = int(np.sum((1 << np.arange(n_hosts))[np.asarray(suspended, bool)]))
    common = masks[:, None] & masks[None, :]
    interconnected = masks[-1] if interoperable else sum(
        1 << h for h, p in enumerate(scenario.messaging) if p.interconnected)
    ends = masks & interconnected
    bridged = (common == 0) & (ends[:, None] > 0) & (ends[None, :] > 0)
    route = np.where(bridged, ends[:, None] | ends[None, :], common)
    tie_worth = np.where(common != 0, 1.0,
                         np.where(bridged, scenario.regulator.interoperability_reach, 0.0))
    return MarketView(
        open_any=open_any,
        content_cdf=np.cumsum(weights),
        share_weights=share_weights,
        surface_cdf=np.cumsum(surfaces),
        options=options,
        route=route,
        reach=tie_worth[options],
        option_quality=in_mask[options] @ quality,
        blocked_with=blocked_share[route[options]],
        option_size=sizes[options],
        new_platforms=popcount(adds),
        allowed=(adds & suspended_bits) == 0,
    )
