"""Who the users are: latent classes (cohorts) with their own tastes and sharing.

A scenario may split users into cohorts, each a latent class of a mixed logit
(Kamakura & Russell 1989; Greene & Hensher 2003): a cohort's members add its `taste`
for each messaging platform to that platform's quality, share `sharing` times as
often as `users.share_rate` says, and may start on platforms of their own (a first
one, and maybe a second: users who also hold WeChat). A user's
cohort is drawn once and kept. Cohorts cluster on the grid when the scenario says
so: the grid is cut into square patches, each patch draws a cohort, and each user
takes their patch's cohort with chance `cohort_clustering`, else one drawn alone, so
the cohorts' shares stay as given while ties tend to share a cohort (QQ's younger
users with their own groups).

With no cohorts in the scenario every user is in one cohort with no taste and
sharing 1, and nothing here draws a random number: results are those of a model
without cohorts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model.rules import draw_category
from sim.scenario import Scenario


def second_platform_draws(scenario: Scenario, initial, tables) -> tuple[np.ndarray, np.ndarray]:
    """Per cohort and first platform, the chance of starting on a second platform and the
    cumulative distribution of which: the cohort's `initial_second` table, or else
    `users.initial_multihoming` with the second drawn by the starting shares."""
    messaging = [p.name for p in scenario.messaging]
    m = len(messaging)
    chance, cdf = np.zeros((len(tables), m)), np.zeros((len(tables), m, m))
    if scenario.users.max_platforms < 2:
        return chance, cdf
    for g, (shares, table) in enumerate(zip(initial, tables)):
        for first in range(m):
            weights = (np.array([table.get(name, 0.0) for name in messaging]) if table
                       else np.array(shares, float))
            weights[first] = 0.0
            if weights.sum() > 0:
                chance[g, first] = weights.sum() if table else scenario.users.initial_multihoming
                cdf[g, first] = np.cumsum(weights) / weights.sum()
    return chance, cdf


@dataclass(frozen=True)
class Cohorts:
    """The cohorts of a scenario as arrays, G cohorts over M messaging platforms."""

    names: tuple[str, ...]
    cdf: np.ndarray          # (G,) cumulative shares
    taste: np.ndarray        # (G, M) utility per week of holding each platform
    sharing: np.ndarray      # (G,) x users.share_rate
    initial: np.ndarray      # (G, M) starting shares of the platforms
    second_chance: np.ndarray   # (G, M) chance of starting on a second platform, by the first
    second_cdf: np.ndarray      # (G, M, M) which second platform, by the first (cumulative)
    clustering: float
    patch: int

    @classmethod
    def of(cls, scenario: Scenario) -> Cohorts:
        messaging = [p.name for p in scenario.messaging]
        platform_shares = np.array([p.initial_share for p in scenario.messaging])
        specs = scenario.users.cohorts
        if not specs:
            return cls(("everyone",), np.ones(1), np.zeros((1, len(messaging))), np.ones(1),
                       platform_shares[None, :],
                       *second_platform_draws(scenario, [platform_shares], [{}]),
                       0.0, scenario.users.cohort_patch)
        taste = np.array([[c.taste.get(name, 0.0) for name in messaging] for c in specs], float)
        initial = np.array([[c.initial_share.get(name, 0.0) for name in messaging]
                            if c.initial_share else platform_shares for c in specs], float)
        return cls(tuple(c.name for c in specs), np.cumsum([c.share for c in specs]), taste,
                   np.array([c.sharing for c in specs], float), initial,
                   *second_platform_draws(scenario, initial, [c.initial_second for c in specs]),
                   scenario.users.cohort_clustering, scenario.users.cohort_patch)

    @property
    def count(self) -> int:
        return len(self.names)

    def patches(self, rng, width: int, height: int) -> np.ndarray:
        """The cohort of every patch of the grid (none drawn for a single cohort)."""
        shape = (-(-height // self.patch), -(-width // self.patch))
        if self.count == 1:
            return np.zeros(shape, dtype=np.uint8)
        return draw_category(self.cdf, rng.random(shape)).astype(np.uint8)

    def draw(self, rng, patches: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cohorts of users in cells (x, y): their patch's, with chance
        `clustering`, else drawn alone by the cohorts' shares."""
        x, y = np.asarray(x), np.asarray(y)
        if self.count == 1:
            return np.zeros(x.shape, dtype=np.uint8)
        alone = draw_category(self.cdf, rng.random(x.shape)).astype(np.uint8)
        together = rng.random(x.shape) < self.clustering
        return np.where(together, patches[y // self.patch, x // self.patch], alone).astype(np.uint8)

    def option_taste(self, options: np.ndarray) -> np.ndarray:
        """(G, K): each cohort's taste for each platform set, summed over its platforms."""
        held = (options[:, None] >> np.arange(self.taste.shape[1])[None, :]) & 1
        return self.taste @ held.T.astype(float)
