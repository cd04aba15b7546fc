"""The users' rules and the link policy, one rule at a time."""

import numpy as np
import pytest

from sim.market import (ABANDONED, DIRECT, TOKEN_FAIL, TOKEN_OK, UNREACHABLE, LinkPolicy,
                        market_view)
from sim.rules import logit_choice, option_utilities, share_outcome

from conftest import small


@pytest.fixture
def scenario():
    return small("china_2021")


def view_of(scenario, links=None):
    links = links or LinkPolicy(scenario)
    hosts = len(scenario.messaging)
    return market_view(scenario, links, np.zeros(hosts), np.zeros(hosts, bool))


def test_share_outcome_follows_the_blocking_rule(scenario):
    view, users = view_of(scenario), scenario.users
    chat = 0
    names = [c.name for c in scenario.content]
    taobao, baidu = names.index("Taobao"), names.index("Baidu")
    wechat, qq, dingtalk = 1, 2, 4                       # masks
    cost = users.token_cost
    assert share_outcome(view, users, 0, taobao, chat, 5.0, 0.0) == UNREACHABLE
    assert share_outcome(view, users, wechat, baidu, chat, 0.01, 0.99) == DIRECT
    assert share_outcome(view, users, wechat | dingtalk, taobao, chat, 0.01, 0.99) == DIRECT
    assert share_outcome(view, users, wechat | qq, taobao, chat, cost / 2, 0.0) == ABANDONED
    assert share_outcome(view, users, wechat, taobao, chat, cost * 2, 0.0) == TOKEN_OK
    assert share_outcome(view, users, wechat, taobao, chat, cost * 2, 0.999) == TOKEN_FAIL


def test_logit_choice_frequencies_match_the_logit_probabilities():
    rng = np.random.default_rng(0)
    utilities = np.array([0.0, 1.0, -np.inf, 0.5])
    draws = logit_choice(np.tile(utilities, (200_000, 1)), 2.0, rng.random(200_000))
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    expected = np.exp(2.0 * np.array([0.0, 1.0, 0.0, 0.5])) * [1, 1, 0, 1]
    assert frequencies == pytest.approx(expected / expected.sum(), abs=0.005)
    assert frequencies[2] == 0
    # zero intensity: uniform over the allowed options
    uniform = logit_choice(np.tile(utilities, (90_000, 1)), 0.0, rng.random(90_000))
    assert np.bincount(uniform, minlength=4) / 90_000 == pytest.approx([1 / 3, 1 / 3, 0, 1 / 3],
                                                                      abs=0.01)


def test_utilities_reward_reach_and_charge_switching_and_friction(scenario):
    view, users = view_of(scenario), scenario.users
    options = list(view.options)
    counts = np.zeros(8)
    counts[1] = 8                                       # every tie on WeChat only
    u = option_utilities(view, users, 2, counts)        # a QQ user
    wechat, qq = options.index(1), options.index(2)
    weights = {c.name: c.content_weight for c in scenario.content}
    blocked_on_wechat = (sum(weights[name] for name in scenario.messaging[0].blocks)
                         / sum(weights.values()))
    expected = (scenario.messaging[0].quality - scenario.messaging[1].quality
                + users.network_weight - users.switching_cost
                - users.share_rate * users.token_cost * blocked_on_wechat)
    assert u[wechat] - u[qq] == pytest.approx(expected)


def test_an_open_platform_spares_friction_only_with_the_ties_who_use_it(scenario):
    view, users = view_of(scenario), scenario.users
    options = list(view.options)
    wechat, both = options.index(0b001), options.index(0b101)      # 0b100: DingTalk
    only_wechat_ties, dingtalk_ties = np.zeros(8), np.zeros(8)
    only_wechat_ties[0b001] = 8
    dingtalk_ties[0b101] = 8
    extra_platform = users.switching_cost + users.multihoming_cost
    quality = scenario.messaging[2].quality
    u = option_utilities(view, users, 0b001, only_wechat_ties)
    assert u[both] - u[wechat] == pytest.approx(quality - extra_platform)
    u = option_utilities(view, users, 0b001, dingtalk_ties)
    assert u[both] - u[wechat] > quality - extra_platform + 0.1


def test_suspended_platform_cannot_be_joined_but_can_be_kept(scenario):
    hosts = len(scenario.messaging)
    view = market_view(scenario, LinkPolicy(scenario), np.zeros(hosts),
                       np.array([True, False, False]))
    options = list(view.options)
    counts = np.ones(8)
    from_qq = option_utilities(view, scenario.users, 2, counts)
    from_wechat = option_utilities(view, scenario.users, 1, counts)
    assert from_qq[options.index(1)] == -np.inf
    assert np.isfinite(from_wechat[options.index(1)])


def test_reblocks_count_links_that_were_opened_and_blocked_again(scenario):
    links = LinkPolicy(scenario)
    assert links.blocked[0, 0, 0]   # WeChat blocks DingTalk links in chat
    links.set(0, 0, 0, False)
    links.set(0, 0, 0, False)
    assert links.reblocks == 0
    links.set(0, 0, 0, True)
    assert links.reblocks == 1
    links.set(0, 1, 1, True)       # WeChat on Taobao in groups: blocked from the start
    assert links.reblocks == 1
    links.force_open(0, np.array([True, True, True]))
    links.set(0, 0, 0, True)
    assert not links.blocked[0].any() and links.reblocks == 1


def test_scenario_readme_documents_every_key(root):
    from sim.cli import keys_markdown
    from sim.scenario import schema_rows

    assert keys_markdown(schema_rows()) in (root / "scenarios/README.md").read_text()


def test_derived_scenarios_take_their_base_and_apply_overrides(root):
    from sim.scenario import load

    base = load(root / "scenarios/china_2021.toml")
    derived = load(root / "scenarios/open_by_default.toml")
    assert derived.name == "open_by_default"
    assert derived.regulator.policy == "none" and base.regulator.policy == "order"
    assert all(not p.blocks for p in derived.platforms)
    assert derived.users == base.users and derived.grid == base.grid


def test_summary_metric_names_match_the_summaries():
    from sim.results import summarize_replicate, summary_metrics
    from sim.runner import run_replicate

    scenario = small("china_2021", steps=3)
    summary = summarize_replicate(scenario, 0, run_replicate(scenario, 0).rows)
    assert list(summary)[2:] == summary_metrics(scenario)


def test_interconnected_platforms_carry_shares_between_their_users():
    """QQ and DingTalk interconnect, WeChat does not: their users reach each other
    across platforms, a WeChat-only user reaches neither; an interoperability order
    interconnects everyone."""
    scenario = small("china_2021", "platforms.QQ.interconnected=true",
                     "platforms.DingTalk.interconnected=true")
    wechat, qq, dingtalk = 1, 2, 4                       # masks
    route = view_of(scenario).route
    assert route[qq, dingtalk] == route[dingtalk, qq] == qq | dingtalk
    assert route[wechat, qq] == route[wechat, dingtalk] == 0
    assert route[wechat | qq, dingtalk] == qq | dingtalk   # only interconnected ends carry it
    assert route[wechat | qq, wechat] == wechat            # a common platform comes first
    hosts = len(scenario.messaging)
    ordered = market_view(small("china_2021"), LinkPolicy(scenario), np.zeros(hosts),
                          np.zeros(hosts, bool), interoperable=True).route
    assert ordered[wechat, qq] == wechat | qq
    reach = view_of(scenario).reach[list(view_of(scenario).options).index(qq)]
    assert reach[dingtalk] == scenario.regulator.interoperability_reach
    assert reach[wechat] == 0 and reach[qq] == 1
