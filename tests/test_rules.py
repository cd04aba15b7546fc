"""The users' rules and the link policy, one rule at a time."""

import numpy as np
import pytest

from sim.model.market import (ABANDONED, BLOCKED, DIRECT, LOST, OPEN, TOKEN_FAIL, TOKEN_OK,
                        UNREACHABLE, WARNED, WARNED_DROP, WARNED_OK, LinkPolicy, market_view,
                        stake, substitutes)
from sim.model.rules import (inclusive_value, logit_choice, option_utilities, row_max,
                       share_outcome, view_loss, view_odds)

from conftest import small


@pytest.fixture
def scenario():
    """The case's market with users alike (tests/test_cohorts.py covers cohorts)."""
    return small("china_2021_homogeneous", "users.cohorts=[]")


def view_of(scenario, links=None):
    links = links or LinkPolicy(scenario)
    hosts = len(scenario.messaging)
    return market_view(scenario, links, np.zeros(hosts), np.zeros(hosts, bool))


def test_share_outcome_follows_the_blocking_rule(scenario):
    users = scenario.users
    tc, wc = users.token_cost, users.warning_cost
    assert share_outcome(None, users, 5.0, 0.0) == UNREACHABLE
    assert share_outcome(OPEN, users, 0.001, 0.99) == DIRECT
    assert share_outcome(WARNED, users, 5.0, 0.99) == WARNED_OK
    assert share_outcome(WARNED, users, 5.0, users.warning_dropout / 2) == WARNED_DROP
    assert share_outcome(WARNED, users, wc / 2, 0.99) == WARNED_DROP
    assert share_outcome(BLOCKED, users, tc / 2, 0.0) == ABANDONED
    assert share_outcome(BLOCKED, users, tc * 2, 0.0) == TOKEN_OK
    assert share_outcome(BLOCKED, users, tc * 2, 0.999) == TOKEN_FAIL


def test_views_travel_in_the_best_state_among_their_routes_platforms(scenario):
    names = [c.name for c in scenario.content]
    taobao, jd = names.index("Taobao"), names.index("JD")
    links = LinkPolicy(scenario)
    links.set(1, jd, 0, WARNED)                            # QQ warns on JD in chats
    view = view_of(scenario, links)
    wechat, qq, dingtalk = 1, 2, 4                         # masks
    assert view.state[wechat, taobao, 0] == BLOCKED
    assert view.state[wechat | dingtalk, taobao, 0] == OPEN
    assert view.state[qq, jd, 0] == WARNED
    assert view.state[wechat | qq, jd, 0] == OPEN
    assert view.state[qq, jd, 1] == OPEN
    links.set(0, taobao, 0, WARNED)                        # WeChat warns, QQ blocks
    assert view_of(scenario, links).state[wechat | qq, taobao, 0] == WARNED


@pytest.mark.parametrize("state", [WARNED, BLOCKED])
@pytest.mark.parametrize("mean", [0.2, 1.0])
def test_closed_forms_match_the_rule_drawn_view_by_view(scenario, state, mean):
    """view_odds and view_loss against the rule itself, applied to a million draws."""
    users, rng = scenario.users, np.random.default_rng(3)
    value = rng.exponential(mean, 1_000_000)
    outcome = share_outcome(np.full(value.shape, state), users, value, rng.random(value.shape))
    lost = np.isin(outcome, LOST)
    friction = (np.isin(outcome, (TOKEN_OK, TOKEN_FAIL)) * users.token_cost
                + (outcome == WARNED_OK) * users.warning_cost)
    recovery = 0.3
    loss = value * lost * (1 - recovery) + friction
    odds_lost, odds_friction = view_odds(state, mean, users)
    assert lost.mean() == pytest.approx(odds_lost, abs=0.002)
    assert friction.mean() == pytest.approx(odds_friction, rel=0.01)
    assert loss.mean() == pytest.approx(view_loss(state, mean, users, recovery), rel=0.01)
    assert view_loss(OPEN, mean, users) == 0


def test_lost_views_go_only_to_services_the_hosts_group_holds(scenario):
    """WeChat diverts short video to Channels, search to Sogou, shopping to JD (Tencent's
    stake) and work to WeCom; DingTalk (Alibaba) has no video or search service here."""
    names = [c.name for c in scenario.content]
    table = substitutes(scenario)
    wechat, dingtalk = 0, 2
    expected = {"Douyin": "Channels", "Baidu": "Sogou", "Taobao": "JD", "DingTalk": "WeCom"}
    for wanted, service in expected.items():
        row = table[wechat, names.index(wanted)]
        assert row[names.index(service)] == pytest.approx(scenario.messaging[0].diversion)
        assert row.sum() == pytest.approx(row[names.index(service)])
    assert table[dingtalk, names.index("Douyin")].sum() == 0
    assert table[dingtalk, names.index("Baidu")].sum() == 0
    assert table[dingtalk, names.index("WeCom"), names.index("DingTalk")] > 0
    shares = {c.name: stake(c, "Tencent") for c in scenario.content}
    assert shares["JD"] == pytest.approx(0.17) and shares["Taobao"] == 0
    assert shares["Sogou"] == 1.0 and stake(scenario.content[names.index("JD")], "JD") == \
        pytest.approx(0.83)


def test_inclusive_value_is_the_expected_best_utility():
    """(1/beta) ln sum exp(beta u) = E[max_k (u_k + e_k / beta)] - Euler's constant / beta,
    with e_k standard Gumbel: checked against a million draws; options at -inf drop out."""
    rng = np.random.default_rng(4)
    utilities = np.array([0.3, 1.0, -np.inf, 0.6])
    beta = 2.5
    shocks = rng.gumbel(size=(1_000_000, 4)) / beta
    best = np.max(np.where(np.isfinite(utilities), utilities + shocks, -np.inf), axis=1)
    assert inclusive_value(utilities, beta) == pytest.approx(best.mean() - np.euler_gamma / beta,
                                                             abs=0.002)
    assert inclusive_value(utilities, 0.0) == pytest.approx(np.mean([0.3, 1.0, 0.6]))


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


def test_row_max_is_np_max_over_the_last_axis():
    """Column by column, the same numbers as np.max (options at -inf, rows of one option,
    a single row)."""
    rng = np.random.default_rng(2)
    utilities = rng.normal(size=(40, 7, 6))
    utilities[utilities < -1.0] = -np.inf
    for u in (utilities, utilities[..., :1], utilities[0, 0]):
        assert np.array_equal(row_max(u), np.max(u, axis=-1))


def test_utilities_reward_reach_and_charge_switching_and_friction(scenario):
    view, users = view_of(scenario), scenario.users
    options = list(view.options)
    counts = np.zeros(8)
    counts[1] = 8                                       # every tie on WeChat only
    u = option_utilities(view, users, 2, counts)        # a QQ user
    wechat, qq = options.index(1), options.index(2)
    # the loss on a WeChat-only route, summed view by view from the closed form
    weights = np.array([c.content_weight for c in scenario.content]) / sum(
        c.content_weight for c in scenario.content)
    surfaces = np.array([0.6, 0.3, 0.1])
    views = np.array([1, 5, 8])
    means = np.array([1.0, 0.5, 0.2])
    names = [c.name for c in scenario.content]
    loss = 0.0
    for c, name in enumerate(names):
        blocked = name in scenario.messaging[0].blocks
        for s in range(3):
            loss += (users.share_rate * weights[c] * surfaces[s] * views[s]
                     * view_loss(BLOCKED if blocked else OPEN, means[s], users,
                                 view.recovery[1, c, s]))
    expected = (scenario.messaging[0].quality - scenario.messaging[1].quality
                + users.network_weight - users.switching_cost - loss)
    assert loss > 0
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
    links.set(0, 0, 0, OPEN)
    links.set(0, 0, 0, OPEN)
    assert links.reblocks == 0
    links.set(0, 0, 0, BLOCKED)
    assert links.reblocks == 1
    links.set(0, 0, 0, WARNED)      # a warning page counts as opening
    links.set(0, 0, 0, BLOCKED)
    assert links.reblocks == 2
    links.set(0, 1, 1, BLOCKED)     # WeChat on Taobao in groups: blocked from the start
    assert links.reblocks == 2
    links.force_open(0, np.array([True, True, True]))
    links.set(0, 0, 0, BLOCKED)
    assert links.state[0][links.rival[0]].max() == OPEN and links.reblocks == 2


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
    from sim.outputs.results import summarize_replicate, summary_metrics
    from sim.experiments.runner import run_replicate

    scenario = small("china_2021_homogeneous", steps=3)
    summary = summarize_replicate(scenario, 0, run_replicate(scenario, 0).rows)
    assert list(summary)[2:] == summary_metrics(scenario)


def test_interconnected_platforms_carry_shares_between_their_users():
    """QQ and DingTalk interconnect, WeChat does not: their users reach each other
    across platforms, a WeChat-only user reaches neither; an interoperability order
    interconnects everyone."""
    scenario = small("china_2021_homogeneous", "platforms.QQ.interconnected=true",
                     "platforms.DingTalk.interconnected=true")
    wechat, qq, dingtalk = 1, 2, 4                       # masks
    route = view_of(scenario).route
    assert route[qq, dingtalk] == route[dingtalk, qq] == qq | dingtalk
    assert route[wechat, qq] == route[wechat, dingtalk] == 0
    assert route[wechat | qq, dingtalk] == qq | dingtalk   # only interconnected ends carry it
    assert route[wechat | qq, wechat] == wechat            # a common platform comes first
    hosts = len(scenario.messaging)
    ordered = market_view(small("china_2021_homogeneous"), LinkPolicy(scenario), np.zeros(hosts),
                          np.zeros(hosts, bool), interoperable=True).route
    assert ordered[wechat, qq] == wechat | qq
    reach = view_of(scenario).reach[list(view_of(scenario).options).index(qq)]
    assert reach[dingtalk] == scenario.regulator.interoperability_reach
    assert reach[wechat] == 0 and reach[qq] == 1
