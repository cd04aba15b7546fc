"""Long-range ties with heavy-tailed degrees, added to the grid (`grid.extra_ties`).

The torus stays the model's picture: each user keeps its Moore neighbourhood (with
rewiring). On top of it, a Chung-Lu style configuration model gives some users many
more contacts than others, as messaging address books do:

- user i draws a weight w_i = (alpha - 1) X_i with X_i ~ Lomax(alpha) (numpy's
  `pareto`), so E[w] = 1 and P(w > x) = (1 + x / (alpha - 1))^-alpha;
- it gets K_i ~ Poisson(extra_ties x w_i) stubs (half-ties), so E[K] = extra_ties and
  P(K > k) falls like k^-alpha (for alpha <= 2 its variance is infinite);
- the stubs are shuffled and paired in order into undirected edges, each a tie in
  both directions; one odd stub left over, self-loops and second copies of an edge
  are dropped, which takes a little off the mean (under 0.5% at 10,000 users for
  alpha >= 2.5, about 1% at alpha = 2, more for smaller alpha or smaller grids). A
  long-range tie that happens to join grid neighbours is kept: it is then a second
  tie to that neighbour, as a rewired tie may be.

Both engines build the network with `extra_ties` below from `network_rng(model.rng)`
and index users by cell in row-major order, so with the same seed and the same
occupied cells they hold the same long-range ties.
"""

from __future__ import annotations

import numpy as np

NETWORK_KEY = 0x6E6574   # the network's branch of the replicate's seed sequence ("net")


def network_rng(rng: np.random.Generator) -> np.random.Generator:
    """The network's own generator: a child of the model generator's seed sequence
    under a fixed key. It draws nothing from `rng`, so the rest of the run is the same
    with or without long-range ties, and both engines get the same network."""
    seq = rng.bit_generator.seed_seq
    child = np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + (NETWORK_KEY,),
                                   pool_size=seq.pool_size)
    return np.random.Generator(type(rng.bit_generator)(child))


def extra_ties(rng: np.random.Generator, n: int, mean: float,
               alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Long-range ties among n users, as CSR arrays: user i's ties are
    target[start[i]:start[i + 1]] (start has n + 1 entries). Symmetric: j is among
    i's ties as often as i is among j's. Mean degree `mean` (less the few dropped
    edges), degree tail exponent `alpha` > 1. Draws nothing when mean is 0."""
    start = np.zeros(n + 1, np.int64)
    if mean <= 0 or n < 2:
        return start, np.zeros(0, np.int32)
    weights = rng.pareto(alpha, n) * (alpha - 1.0)
    stubs = rng.poisson(mean * weights)
    ends = rng.permutation(np.repeat(np.arange(n, dtype=np.int64), stubs))
    ends = ends[:len(ends) - len(ends) % 2]
    a, b = ends[0::2], ends[1::2]
    a, b = a[a != b], b[a != b]
    edges = np.unique(np.minimum(a, b) * n + np.maximum(a, b))     # sorted, no copies
    low, high = edges // n, edges % n
    source = np.concatenate([low, high])
    target = np.concatenate([high, low])
    order = np.argsort(source, kind="stable")
    start[1:] = np.cumsum(np.bincount(source, minlength=n))
    return start, target[order].astype(np.int32)
