"""Long-range ties with heavy-tailed degrees (`grid.extra_ties`, `sim.model.network`)."""

import numpy as np
import pytest

from sim.model.market import fanout, recipients
from sim.model.model import WalledGardenModel
from sim.model.network import extra_ties, network_rng
from sim.experiments.runner import replicate_seed, run_replicate
from sim.scenario import ScenarioError

from conftest import small

LONG = ("grid.extra_ties=4", "grid.degree_tail=2.0")


def rows(scenario, replicate=0):
    return run_replicate(scenario, replicate).rows


@pytest.mark.parametrize("engine", ["array", "agent"])
def test_no_extra_ties_changes_nothing(engine):
    """extra_ties = 0 draws nothing and adds no tie: the model without the option,
    byte for byte, whatever the tail."""
    plain = small("china_2021_homogeneous", f'engine="{engine}"', size=10, steps=12)
    none = small("china_2021_homogeneous", f'engine="{engine}"', "grid.extra_ties=0",
                 "grid.degree_tail=1.2", size=10, steps=12)
    assert rows(plain) == rows(none)


def test_the_network_draws_nothing_without_extra_ties_and_nothing_from_the_model():
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    start, target = extra_ties(rng, 100, 0.0, 2.5)
    assert rng.bit_generator.state == before
    assert start.tolist() == [0] * 101 and len(target) == 0
    network_rng(rng).random(10)
    assert rng.bit_generator.state == before


def test_the_nominal_neighbourhood_is_the_mean_degree():
    plain, extra = small("china_2021_homogeneous"), small("china_2021_homogeneous", *LONG)
    assert fanout(plain).tolist() == [1, 5, 8] and recipients(plain).tolist() == [1, 5, 8]
    assert fanout(extra).tolist() == [1, 5, 12]
    wide = small("china_2021_homogeneous", "users.group_size=10", *LONG)
    # a group post reaches group_size ties of a user who has that many
    assert recipients(wide).tolist() == [1, 10, 8]
    assert recipients(small("china_2021_homogeneous", "users.group_size=10"))[1] == 8


@pytest.mark.parametrize("alpha", [2.0, 2.5, 3.0])
def test_long_range_ties_are_symmetric_with_the_mean_asked(alpha):
    n, mean = 20000, 4.0
    start, target = extra_ties(np.random.default_rng(7), n, mean, alpha)
    degree = np.diff(start)
    assert degree.mean() == pytest.approx(mean, rel=0.05)
    source = np.repeat(np.arange(n), degree)
    assert not (source == target).any()                                  # no self-loops
    pairs = source * n + target
    assert len(np.unique(pairs)) == len(pairs)                           # no copies
    assert sorted(pairs.tolist()) == sorted((target * n + source).tolist())   # symmetric


def test_a_smaller_tail_exponent_gives_hubs():
    """Same mean, heavier tail: the largest degrees grow as alpha falls."""
    n, mean = 20000, 4.0
    top, far = [], []
    for alpha in (3.0, 2.0, 1.5):
        tops, fars = [], []
        for seed in range(3):
            degree = np.diff(extra_ties(np.random.default_rng(seed), n, mean, alpha)[0])
            tops.append(degree.max())
            fars.append(np.percentile(degree, 99.9))
        top.append(np.mean(tops))
        far.append(np.mean(fars))
    assert top[0] < top[1] < top[2]
    assert far[0] < far[1] < far[2]
    assert top[2] > 3 * top[0]


def test_both_engines_build_the_same_network_from_the_same_seed():
    """Full grid, same seed: every cell has the same degree in both engines and the
    same long-range ties."""
    degrees, extra = {}, {}
    for engine in ("array", "agent"):
        scenario = small("china_2021_homogeneous", f'engine="{engine}"', *LONG, size=20)
        users = WalledGardenModel(scenario, rng=replicate_seed(3, 0)).users
        width = scenario.grid.width
        if engine == "array":
            cells = users.user_cell
            degrees[engine] = dict(zip(cells.tolist(), users.n_ties.tolist()))
            extra[engine] = {int(cells[i]): sorted(cells[users.extra_target[
                users.extra_start[i]:users.extra_start[i + 1]]].tolist())
                for i in range(len(cells))}
        else:
            def cell(u):
                return u.cell.coordinate[1] * width + u.cell.coordinate[0]
            degrees[engine] = {cell(u): len(u.ties) for u in users.members}
            extra[engine] = {cell(u): sorted(cell(t) for t in u.ties[8:]) for u in users.members}
    assert degrees["array"] == degrees["agent"]
    assert extra["array"] == extra["agent"]
    assert max(degrees["array"].values()) > 8 + 4 * 3


@pytest.mark.parametrize("engine", ["array", "agent"])
def test_long_range_ties_share_and_count(engine):
    """Every tie, long-range too, is counted when choosing a platform and reached by a
    feed post."""
    scenario = small("china_2021_homogeneous", f'engine="{engine}"', *LONG, size=12, steps=3)
    model = WalledGardenModel(scenario, rng=replicate_seed(4, 0))
    counts = model.users.neighbour_counts()
    if engine == "array":
        assert counts.sum(axis=1).tolist() == model.users.n_ties.tolist()
    else:
        assert counts.sum(axis=1).tolist() == [len(u.ties) for u in model.users.members]
    for _ in range(3):
        model.step()


def test_bad_long_range_ties_are_refused():
    bad = {
        "must be 0 when grid.well_mixed": ("grid.well_mixed=true", "grid.extra_ties=2"),
        "grid.degree_tail: must be a number in \\(1, 100\\]": ("grid.degree_tail=1",),
        "grid.extra_ties: must be a number in \\[0, 1000\\]": ("grid.extra_ties=-1",),
        "at most half the other cells": ("grid.extra_ties=100",),
    }
    for message, overrides in bad.items():
        with pytest.raises(ScenarioError, match=message):
            small("china_2021_homogeneous", *overrides, size=10)
    small("china_2021_homogeneous", "grid.well_mixed=true", "grid.extra_ties=0")
