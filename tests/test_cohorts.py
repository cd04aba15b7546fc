"""Heterogeneous users: cohorts (latent classes of a mixed logit) with their own
tastes, sharing and starting platforms, clustered on the grid."""

import numpy as np
import pytest

from sim.model.cohorts import Cohorts
from sim.model.model import WalledGardenModel
from sim.model.rules import option_utilities
from sim.experiments.runner import replicate_seed, run_replicate
from sim.scenario import ScenarioError, key_check

from conftest import small

TWO = ('users.cohorts=[{name="young", share=0.3, taste={QQ=1.0}, sharing=2.0}, '
       '{name="others", share=0.7}]')


def rows(scenario, replicate=0):
    return run_replicate(scenario, replicate).rows


@pytest.mark.parametrize("engine", ["array", "agent"])
def test_a_single_cohort_of_everyone_changes_nothing(engine):
    """One cohort with no taste and sharing 1 is the model without cohorts, byte for
    byte: it draws no random number and adds nothing to any utility."""
    plain = small("china_2021_homogeneous", f'engine="{engine}"', "users.cohorts=[]", size=10, steps=12)
    one = small("china_2021_homogeneous", f'engine="{engine}"', 'users.cohorts=[{name="all"}]',
                "users.cohort_clustering=0.9", size=10, steps=12)
    assert rows(plain) == rows(one)


@pytest.mark.parametrize("engine", ["array", "agent"])
def test_sharing_twice_as_much_is_twice_the_share_rate(engine):
    """A cohort of everyone with sharing 2 is a population with share_rate doubled:
    the same posts, the same losses anticipated, the same choices."""
    doubled = small("no_regulation", f'engine="{engine}"', "users.share_rate=4.0",
                    "users.cohorts=[]", size=10, steps=12)
    cohort = small("no_regulation", f'engine="{engine}"', "users.share_rate=2.0",
                   'users.cohorts=[{name="all", sharing=2.0}]', size=10, steps=12)
    assert rows(doubled) == rows(cohort)


def test_a_cohort_taste_adds_to_the_utility_of_every_set_holding_the_platform():
    scenario = small("china_2021_homogeneous", TWO)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    view = model.view
    counts = np.array([3, 2, 0, 1, 0, 0, 0, 2])
    young, others = (option_utilities(view, scenario.users, 1, counts, g) for g in (0, 1))
    holds_qq = (view.options >> 1) & 1
    loss = (counts @ view.loss_with.T) / counts.sum()
    # young: +1 for every set with QQ, and a second share of the anticipated loss
    assert young - others == pytest.approx(1.0 * holds_qq - 1.0 * loss)


def test_cohorts_keep_their_shares_and_cluster_as_asked():
    """Cohort shares hold at any clustering; clustering raises the chance that grid
    neighbours share a cohort from the unclustered 0.3^2 + 0.7^2 = 0.58."""
    same = []
    for clustering in (0.0, 0.5, 1.0):
        scenario = small("china_2021_homogeneous", TWO, f"users.cohort_clustering={clustering}",
                         "users.cohort_patch=6", size=120)
        model = WalledGardenModel(scenario, rng=replicate_seed(2, 0))
        grid = model.users.cohorts().reshape(120, 120)
        assert (grid == 0).mean() == pytest.approx(0.3, abs=0.03)
        same.append(float(np.mean(grid[:, 1:] == grid[:, :-1])))
    assert same[0] == pytest.approx(0.58, abs=0.01)
    assert same[0] < same[1] < same[2]


@pytest.mark.parametrize("engine", ["array", "agent"])
def test_cohorts_start_on_their_own_platforms(engine):
    scenario = small("china_2021_homogeneous", f'engine="{engine}"', "users.initial_multihoming=0",
                     'users.cohorts=[{name="qq", share=0.4, initial_share={QQ=1.0}}, '
                     '{name="wechat", share=0.6, initial_share={WeChat=1.0}}]',
                     "platforms.WeChat.initial_share=0.6", "platforms.QQ.initial_share=0.4",
                     "platforms.DingTalk.initial_share=0.0", size=40)
    model = WalledGardenModel(scenario, rng=replicate_seed(4, 0))
    cohorts, masks = model.users.cohorts(), model.users.masks()
    assert set(masks[cohorts == 0]) == {0b010} and set(masks[cohorts == 1]) == {0b001}


MATCHING_SHARES = ("platforms.WeChat.initial_share=0.59", "platforms.QQ.initial_share=0.35",
                   "platforms.DingTalk.initial_share=0.06")


def test_a_cohort_with_its_own_taste_keeps_a_second_network_alive():
    """Mechanism: persistent tastes (a mixed logit). With homogeneous users the open
    market tips (choice intensity x network weight is far above Brock-Durlauf's
    threshold) and QQ falls to a few per cent; give its clustered cohort a taste for
    it and it keeps a large base. Same seeds both ways."""
    cohorts = ('users.cohorts=[{name="qq", share=0.4, taste={QQ=%s}, '
               'initial_share={WeChat=0.2, QQ=0.8}}, {name="others", share=0.6, '
               'initial_share={WeChat=0.85, QQ=0.05, DingTalk=0.1}}]')
    final = {}
    for taste in (0.0, 1.0):
        scenario = small("open_by_default", cohorts % taste, *MATCHING_SHARES,
                         "users.revision_rate=0.2",
                         "users.cohort_clustering=0.8", "users.cohort_patch=4", size=30,
                         steps=120)
        final[taste] = np.mean([rows(scenario, r)[-1]["users_QQ"] for r in range(3)])
    assert final[0.0] < 0.1 < 0.3 < final[1.0]


def test_cohort_keys_are_checked_and_can_be_set_one_by_one():
    scenario = small("china_2021_homogeneous", TWO, "users.cohorts.young.taste.QQ=2.5",
                     "users.cohorts.young.sharing=3")
    young = scenario.users.cohorts[0]
    assert young.taste == {"QQ": 2.5} and young.sharing == 3.0
    assert Cohorts.of(scenario).taste[0].tolist() == [0.0, 2.5, 0.0]
    assert key_check("users.cohorts.young.taste.QQ").validate(1.0) == 1.0
    assert key_check("users.cohorts.young.share") is not None
    bad = {
        "shares must sum to 1": 'users.cohorts=[{name="a", share=0.5}]',
        "unknown messaging platform": 'users.cohorts=[{name="a", taste={Taobao=1}}]',
        "a name of its own": 'users.cohorts=[{name="a", share=0.5}, {name="a", share=0.5}]',
        "unknown cohort": "users.cohorts.nobody.sharing=2",
        "must sum to 1, got 0.5": 'users.cohorts=[{name="a", initial_share={QQ=0.5}}]',
        "must equal the cohorts' starting shares": 'users.cohorts=[{name="a", '
                                                   'initial_share={QQ=1.0}}]',
    }
    for message, override in bad.items():
        with pytest.raises(ScenarioError, match=message):
            small("china_2021_homogeneous", override)


@pytest.mark.parametrize("engine", ["array", "agent"])
def test_a_cohort_can_start_on_a_second_platform_of_its_own(engine):
    """`initial_second`: every QQ native starts on QQ and WeChat, every other user on
    WeChat alone, or on DingTalk with WeChat beside it; WeChat users gain no second."""
    scenario = small("china_2021_homogeneous", f'engine="{engine}"', "users.initial_multihoming=0.9",
                     'users.cohorts=[{name="qq", share=0.4, initial_share={QQ=1.0}, '
                     'initial_second={WeChat=1.0}}, {name="others", share=0.6, '
                     'initial_share={WeChat=0.7, DingTalk=0.3}, initial_second={WeChat=1.0}}]',
                     "platforms.WeChat.initial_share=0.42", "platforms.QQ.initial_share=0.4",
                     "platforms.DingTalk.initial_share=0.18", size=40)
    model = WalledGardenModel(scenario, rng=replicate_seed(4, 0))
    cohorts, masks = model.users.cohorts(), model.users.masks()
    assert set(masks[cohorts == 0]) == {0b011}
    assert set(masks[cohorts == 1]) == {0b001, 0b101}
    assert np.mean(masks[cohorts == 1] == 0b101) == pytest.approx(0.3, abs=0.06)


@pytest.mark.parametrize("engine", ["array", "agent"])
def test_a_second_platform_is_drawn_by_its_chance(engine):
    """A chance of 0.5 gives half the cohort a second platform (the rest of the draw is
    no second platform), in both engines."""
    scenario = small("china_2021_homogeneous", f'engine="{engine}"',
                     'users.cohorts=[{name="all", initial_share={QQ=1.0}, '
                     'initial_second={WeChat=0.5}}]', "platforms.WeChat.initial_share=0.0",
                     "platforms.QQ.initial_share=1.0", "platforms.DingTalk.initial_share=0.0",
                     size=60)
    masks = WalledGardenModel(scenario, rng=replicate_seed(5, 0)).users.masks()
    assert set(masks) == {0b010, 0b011}
    assert np.mean(masks == 0b011) == pytest.approx(0.5, abs=4 * (0.25 / 3600) ** 0.5)


def test_initial_second_is_checked():
    bad = {
        "beside QQ must sum to at most 1": 'users.cohorts=[{name="a", '
                                           'initial_second={WeChat=0.7, DingTalk=0.6}}]',
        "a fraction in \\[0, 1\\]": 'users.cohorts=[{name="a", initial_second={WeChat=1.5}}]',
        "unknown messaging platform": 'users.cohorts=[{name="a", initial_second={Taobao=1}}]',
    }
    for message, override in bad.items():
        with pytest.raises(ScenarioError, match=message):
            small("china_2021_homogeneous", override)
    # one platform each: no second, as with users.initial_multihoming (the validation's
    # counterfactual without multihoming)
    single = small("china_2021_homogeneous", "users.max_platforms=1",
                   'users.cohorts=[{name="a", initial_second={WeChat=0.5}}]')
    assert set(WalledGardenModel(single, rng=replicate_seed(6, 0)).users.masks()) <= {1, 2, 4}
