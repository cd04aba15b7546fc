"""The model's behaviour and economics: identities, bounds, limits, comparative statics."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from sim.experiments import validation
from sim.model.decisions import Evaluation, link_values, violating_states
from sim.model.market import (BLOCKED, DELIVERED, OPEN, TOKEN_FAIL, TOKEN_OK, UNREACHABLE,
                              WARNED, WARNED_OK, attention, route_states, stake)
from sim.model.rules import view_loss
from sim.model.metrics import choice_surplus
from sim.model.model import UserProfile, WalledGardenModel
from sim.experiments.runner import replicate_seed, run_replicate

from conftest import small


def rows_of(scenario, replicate=0):
    return run_replicate(scenario, replicate).rows


@pytest.mark.parametrize("name", ["china_2021", "no_regulation", "open_by_default"])
def test_share_accounting_identity_holds_in_every_row(name):
    for row in rows_of(small(name)):
        parts = (row["shares_direct"] + row["shares_token"] + row["shares_abandoned"]
                 + row["shares_unreachable"])
        assert row["shares_attempted"] == parts
        assert min(row["shares_direct"], row["shares_token"], row["shares_abandoned"],
                   row["shares_unreachable"]) >= 0


def test_friction_is_token_and_warning_costs_paid():
    scenario = small("china_2021_homogeneous", 'platforms.QQ.warns=["JD"]', steps=12)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    users = scenario.users
    for _ in range(scenario.steps):
        model.step()
        row, ledger = model.rows[-1], model.ledger
        assert row["friction_cost"] == pytest.approx(
            users.token_cost * row["shares_token"]
            + users.warning_cost * ledger.total(WARNED_OK))
    assert sum(r["shares_warned"] for r in model.rows) > 0


def test_each_platforms_traffic_estimate_averages_the_ledger_with_its_own_memory():
    # WeChat renews half its estimate each week, QQ all of it: each reads its own average
    scenario = small("china_2021", "burn_in.weeks=0", "platforms.WeChat.traffic_memory=0.5",
                     "platforms.QQ.traffic_memory=1.0", size=12, steps=5)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    assert set(model.traffic) == {0.5, 1.0, 0.25}          # DingTalk keeps the default
    average = None
    for _ in range(scenario.steps):
        model.step()
        views = model.ledger.counts.sum(axis=-1)
        average = views if average is None else average + 0.5 * (views - average)
        assert np.allclose(model.traffic[0.5], average)
        assert np.array_equal(model.traffic[1.0], views)
    assert not np.allclose(model.traffic[0.5], model.traffic[1.0])


def test_each_users_views_of_the_week_are_the_weeks_ledger():
    # The agent engine decides the week's outcomes in one call for every user's views:
    # each user keeps their own, in order, and all of them together make the ledger.
    scenario = small("china_2021", 'engine="agent"', "burn_in.weeks=0", size=12, steps=4)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    for _ in range(scenario.steps):
        model.step()
        counts, unreachable = np.zeros_like(model.ledger.counts), 0
        for user in model.users.members:
            for route, content, surface, outcome, _ in user.last_views:
                assert (route == 0) == (outcome == UNREACHABLE)
                if outcome == UNREACHABLE:
                    unreachable += 1
                else:
                    counts[route, content, surface, outcome] += 1
            assert user.paid_token == any(v[3] in (TOKEN_OK, TOKEN_FAIL) for v in user.last_views)
        assert (counts == model.ledger.counts).all() and counts.sum() > 0
        assert unreachable == model.ledger.unreachable


def test_a_multihomers_revenue_is_split_between_their_platforms():
    """With no shares (so no visits) and no order, an owner's revenue is its platforms'
    revenue per user times their users, each multihomer counted once, split equally
    between their platforms: a second app adds no revenue from nothing."""
    from sim.model.market import attention

    assert attention(2).tolist() == [[0, 0], [1, 0], [0, 1], [0.5, 0.5]]
    scenario = small("china_2021_homogeneous", "users.share_rate=0", 'regulator.policy="none"',
                     "users.initial_multihoming=0.6", steps=1)
    model = WalledGardenModel(scenario, rng=replicate_seed(0, 0))
    masks = model.users.masks().copy()
    model.step()
    hosts = scenario.messaging
    expected = dict.fromkeys(scenario.owners, 0.0)
    for mask in masks:
        on = [h for h in range(len(hosts)) if mask >> h & 1]
        for h in on:
            expected[hosts[h].owner] += hosts[h].revenue_per_user / len(on)
    for o, owner in enumerate(scenario.owners):
        assert model.revenue_history[-1, o] == pytest.approx(expected[owner])


def test_welfare_adds_up_and_fines_are_a_transfer():
    """total_welfare = consumer surplus + profits + fines; with everything open the
    anticipated and realised losses are both zero, so consumer surplus is the inclusive
    value plus the value of the views delivered."""
    for name in ("china_2021", "open_by_default"):
        scenario = small(name, steps=14)
        model = WalledGardenModel(scenario, rng=replicate_seed(2, 0))
        for _ in range(scenario.steps):
            model.step()
            row = model.rows[-1]
            profits = sum(row[f"profit_{o}"] for o in scenario.owners)
            assert row["total_welfare"] == pytest.approx(row["consumer_surplus"] + profits
                                                         + row["fines"])
            included, anticipated = model.surplus
            if name == "open_by_default":
                assert anticipated == 0 and model.ledger.friction == 0
                assert row["consumer_surplus"] == pytest.approx(
                    included + model.ledger.value_delivered)


COHORTS = ('users.cohorts=[{name="young", share=0.4, taste={QQ=1.5}, sharing=3.0}, '
           '{name="others", share=0.6}]')


def test_inclusive_value_of_every_user_from_a_direct_computation():
    """The model's summed inclusive value against one computed user by user from their
    ties' platforms, utility by utility, without the merged profile; users in two
    cohorts with their own tastes and sharing."""
    scenario = small("china_2021_homogeneous", 'engine="agent"', COHORTS, size=8, steps=3)
    model = WalledGardenModel(scenario, rng=replicate_seed(3, 0))
    for _ in range(scenario.steps):
        model.step()
    users, view = scenario.users, model.market_view()
    cohort_names = [c.name for c in users.cohorts]
    assert {p.cohort for p in model.users.members} == {0, 1}
    included, _ = choice_surplus(view, users, model.user_profile())
    direct = 0.0
    for person in model.users.members:
        utilities = []
        for k, option in enumerate(view.options):
            sharing = {"young": 3.0, "others": 1.0}[cohort_names[person.cohort]]
            taste = {"young": 1.5 * (option >> 1 & 1), "others": 0.0}[cohort_names[person.cohort]]
            social = np.mean([users.network_weight * view.reach[k, t.platforms]
                              - sharing * view.loss_with[k, t.platforms] for t in person.ties])
            joined = bin(option & ~person.platforms).count("1")
            u = (view.option_quality[k] + taste + social - users.switching_cost * joined
                 - users.multihoming_cost * (bin(option).count("1") - 1))
            utilities.append(u if view.allowed[person.platforms, k] else -np.inf)
        finite = np.array([u for u in utilities if np.isfinite(u)])
        direct += np.log(np.exp(users.choice_intensity * finite).sum()) / users.choice_intensity
    assert included == pytest.approx(direct, rel=1e-9)


def test_user_profile_merges_identical_users_in_the_order_of_np_unique():
    """The profile's rows, their order and their weights are np.unique's over the rows
    (cohort, mask, counts): the order fixes the last digits of every sum over them."""
    rng = np.random.default_rng(5)
    cohorts, masks = rng.integers(0, 3, 500).astype(np.uint8), rng.integers(1, 8, 500)
    counts = rng.integers(0, 4, (500, 2)).astype(np.int32)      # many users alike
    profile = UserProfile.of(cohorts, masks, counts)
    rows, weight = np.unique(np.column_stack([cohorts, masks, counts]).astype(np.int64),
                             axis=0, return_counts=True)
    assert np.array_equal(np.column_stack([profile.cohort, profile.current, profile.counts]),
                          rows)
    assert np.array_equal(profile.weight, weight) and weight.max() > 1


@pytest.mark.parametrize("name", ["china_2021", "no_regulation"])
def test_user_shares_and_concentration_stay_in_bounds(name):
    scenario = small(name, "users.revision_rate=0.5")
    users = [f"users_{p.name}" for p in scenario.messaging]
    for row in rows_of(scenario):
        assert all(0.0 <= row[u] <= 1.0 for u in users)
        # everyone is on at least one platform and at most max_platforms
        assert 1.0 - 1e-12 <= sum(row[u] for u in users) <= scenario.users.max_platforms + 1e-12
        assert 0.0 < row["hhi"] <= 1.0
        assert 0.0 <= row["multihoming_rate"] <= 1.0


def test_open_world_has_no_blocks_and_no_friction():
    rows = rows_of(small("open_by_default", "users.revision_rate=0.3"))
    assert all(r["links_blocked"] == 0 for r in rows)
    assert all(r["shares_token"] == 0 and r["shares_abandoned"] == 0 for r in rows)
    assert all(r["friction_cost"] == 0 for r in rows)
    assert sum(r["shares_direct"] for r in rows) > 0


@pytest.mark.parametrize("engine", ["agent", "array"])
def test_higher_token_cost_means_more_friction_and_more_abandoned_shares(engine):
    """Same seeds, users and policies fixed, so only the token cost differs (in the
    agent engine every draw is common; the array engine draws a share's value only
    when it is blocked, so there the comparison holds by the law of large numbers).
    Token costs paid rise with the cost as long as it is below the mean value of a view,
    here the same on every surface."""
    friction, abandoned = [], []
    for cost in (0.0, 0.25, 0.5, 0.75, 1.0):
        scenario = small("no_regulation", f"users.token_cost={cost}", "users.revision_rate=0",
                         f"engine=\"{engine}\"", "users.surface_value={chat=1.0,group=1.0,feed=1.0}",
                         "platforms.WeChat.strategy=\"static\"", "platforms.QQ.strategy=\"static\"",
                         "platforms.DingTalk.strategy=\"static\"", size=20, steps=20)
        rows = rows_of(scenario)
        friction.append(sum(r["friction_cost"] for r in rows))
        abandoned.append(sum(r["shares_abandoned"] for r in rows))
    assert abandoned[0] == 0 and friction[0] == 0
    assert all(a < b for a, b in zip(abandoned, abandoned[1:]))
    assert all(a < b for a, b in zip(friction, friction[1:]))


def test_credible_order_leaves_no_link_blocked_after_its_deadline():
    """Audits certain, believed, and a fine far above any diversion gain: best responders
    open every link by the deadline, without the regulator forcing them, and keep them
    open."""
    scenario = small("china_2021_homogeneous", "regulator.announce_step=5", "regulator.deadline_step=8",
                     "regulator.deadline_audit=1.0", "regulator.audit_probability=1.0",
                     "regulator.fine=5.0", "regulator.fine_cap=10.0",
                     "regulator.forced_open=false", *believe(1.0), steps=30)
    for replicate in range(3):
        rows = rows_of(scenario, replicate)
        assert rows[0]["links_blocked"] > 0
        after = [r for r in rows if r["step"] >= 8]
        assert all(r["links_blocked"] == 0 and r["links_warned"] == 0 for r in after)
        assert all(r["violations"] == 0 and r["fines"] == 0 for r in after)


def believe(audits: float, credibility: float = 1.0) -> list[str]:
    """Overrides giving every messaging platform of the case these beliefs."""
    return [f"platforms.{p}.{key}={value}" for p in ("WeChat", "QQ", "DingTalk")
            for key, value in (("audit_belief", audits), ("deadline_credibility", credibility))]


STATIC = [f'platforms.{p}.strategy="static"' for p in ("WeChat", "QQ", "DingTalk")]


def started_blocked(scenario) -> int:
    """Rival links blocked at the start: every listed platform, on every surface."""
    return 3 * sum(len(p.blocks) for p in scenario.messaging)
SEEN = "regulator.visibility={chat=1.0,group=1.0,feed=1.0}"


def test_an_audit_is_one_decision_whatever_the_links_found():
    """Static platforms: the blitz finds every blocked link (all visible); each platform
    caught is one decision against its group, fined `fine` x the group's previous year's
    revenue, escalated for the group's earlier decision (WeChat's, then QQ's)."""
    scenario = small("china_2021_homogeneous", "regulator.deadline_step=12", "regulator.forced_open=false",
                     SEEN, *STATIC, steps=12)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    for _ in range(11):
        model.step()
    annual = {o: 52 * model.weekly_revenue(o) for o in scenario.owners}
    model.step()
    deadline = model.rows[-1]
    regulator = scenario.regulator
    assert deadline["violations"] == deadline["links_blocked"] == started_blocked(scenario)
    caught = [scenario.messaging[a["host"]].name for a in model.regulator.audits if a["fine"]]
    assert caught == ["WeChat", "QQ"]
    assert deadline["fines"] == pytest.approx(
        regulator.fine * annual["Tencent"] * (1 + regulator.fine_escalation))
    assert sum(r["fines"] for r in model.rows[:11]) == 0


def test_fines_escalate_and_the_cap_bounds_one_decision_not_a_year():
    """Audits every week: the group's decision n costs fine x escalation^(n-1), at most
    the cap; every capped decision still costs the cap (no licence) and climbs the
    ladder of measures."""
    scenario = small("china_2021_homogeneous", "regulator.deadline_step=12", "regulator.forced_open=false",
                     "regulator.audit_probability=1.0", "regulator.fine=0.04",
                     "regulator.fine_escalation=2.0", "regulator.fine_cap=0.10",
                     "regulator.naming_after=50", "regulator.suspend_after=50", SEEN, *STATIC,
                     steps=20)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    annual = []
    for _ in range(scenario.steps):
        annual.append(52 * model.weekly_revenue("Tencent"))    # what the week's audit uses
        model.step()
    tencent = [a for a in model.regulator.audits if a["host"] in (0, 1) and a["fine"] > 0]
    assert len(tencent) == 18                                 # WeChat and QQ, 9 weeks
    ratio = [a["fine"] / annual[a["step"] - 1] for a in tencent]
    assert ratio[:2] == pytest.approx([0.04, 0.08], rel=1e-6)
    assert ratio[2:] == pytest.approx([0.10] * 16, rel=1e-6)
    names = [p.name for p in scenario.messaging]
    events = {(e["step"], e["platform"], e["event"]) for e in model.events}
    third, fourth = tencent[2], tencent[3]                    # the first capped decisions
    assert (third["step"], names[third["host"]], "naming") in events
    assert (fourth["step"], names[fourth["host"]], "suspension") in events


def test_forced_opening_opens_a_repeat_offender_for_good():
    """Forced opening after the group's second decision: QQ, caught second at the blitz,
    is opened then; WeChat at its group's third decision, the next week."""
    scenario = small("china_2021_homogeneous", "regulator.deadline_step=12",
                     "regulator.audit_probability=1.0", "regulator.forced_open_after=2", SEEN,
                     *STATIC, steps=20)
    rows = rows_of(scenario)
    wechat = 3 * len(scenario.messaging[0].blocks)
    assert rows[10]["links_blocked"] == started_blocked(scenario)
    assert rows[11]["links_blocked"] == wechat        # QQ opened by the regulator
    assert all(r["links_blocked"] == 0 for r in rows[12:])


def test_a_warning_page_is_a_violation_unless_the_regulator_accepts_it():
    def violations(accept):
        scenario = small("china_2021_homogeneous", "regulator.announce_step=5", "regulator.deadline_step=6",
                         SEEN, *STATIC,
                         "platforms.WeChat.blocks=[]", 'platforms.WeChat.warns=["Taobao"]',
                         "platforms.QQ.blocks=[]", f"regulator.accept_warning={accept}",
                         steps=6)
        return rows_of(scenario)[-1]["violations"]
    assert violations("false") == 3 and violations("true") == 0


UNSEEN = ("regulator.visibility={chat=0.0,group=0.0,feed=0.0}", "regulator.audit_probability=0",
          "regulator.deadline_audit=0")


def test_complaints_report_a_violating_link_with_one_minus_exp_of_the_harm_it_does():
    """No audit and nothing visible: only complaints find a violation, each violating
    link reported in a week with chance 1 - exp(-complaints x what it cost users a week
    per thousand users); a lawful link never. With complaints off, no number is drawn."""
    complaints = 0.002
    scenario = small("china_2021_homogeneous", "regulator.deadline_step=12",
                     f"regulator.complaints={complaints}", *UNSEEN, *STATIC, steps=12)
    model = WalledGardenModel(scenario, rng=replicate_seed(3, 0))
    for _ in range(12):
        model.step()
    regulator, host = model.regulator, 0
    chance = 1 - np.exp(-complaints * regulator.complained_harm(host))
    violating = regulator.violating(host)
    assert violating.any() and (chance[violating] > 0.05).any()
    draws = 2000
    reported = sum(regulator.complained(host).astype(int) for _ in range(draws))
    assert (reported[~violating] == 0).all()
    for count, p in zip(reported[violating], chance[violating]):
        assert stats.binomtest(int(count), draws, p).pvalue > 1e-4, (count, p)
    off = small("china_2021_homogeneous", "regulator.deadline_step=12", *UNSEEN, *STATIC, steps=12)
    model = WalledGardenModel(off, rng=replicate_seed(3, 0))
    for _ in range(12):
        model.step()
    before = model.rng.bit_generator.state
    assert not model.regulator.complained(host).any()
    assert model.rng.bit_generator.state == before


def test_a_lost_view_is_complained_of_once_shared_among_its_routes_platforms():
    """Static platforms: the harm users complain of, summed over the hosts, is what the
    restrictions cost on every route with a platform, each route counted once (a view
    stopped on WeChat and QQ alike is not blamed twice)."""
    scenario = small("china_2021_homogeneous", "regulator.deadline_step=12",
                     "regulator.complaints=0.001", *STATIC, steps=6)
    model = WalledGardenModel(scenario, rng=replicate_seed(3, 0))
    for _ in range(6):
        model.step()
    hosts = len(scenario.messaging)
    total = sum(model.regulator.complained_harm(h) for h in range(hosts))
    states = np.where(model.links.rival, model.links.state, OPEN)
    views = model.ledger.counts.sum(axis=-1)
    per_route = views * view_loss(route_states(states), model.view.view_mean[None, None, :],
                                  scenario.users)
    assert total == pytest.approx(per_route[1:].sum(axis=0) * 1000 / model.population)


@pytest.mark.parametrize("memory", [1.0, 0.25])
def test_what_a_platform_foresees_users_complain_of_is_what_the_regulator_hears(memory):
    """The harm a host expects each link to do in each state, from its traffic estimate,
    against the harm the regulator hears once the link is in that state: the same when
    the estimate is last week's views (memory 1), close when it averages weeks (0.25).
    And the chance a held policy is reported in a week, as the host's penalty outlook
    foresees it, is the regulator's frequency of reports."""
    complaints = 0.0005
    scenario = small("china_2021_homogeneous", "regulator.announce_step=5",
                     "regulator.deadline_step=6", f"regulator.complaints={complaints}", *STATIC,
                     *[f"platforms.{p}.traffic_memory={memory}" for p in ("WeChat", "QQ", "DingTalk")],
                     steps=8)
    model = WalledGardenModel(scenario, rng=replicate_seed(4, 0))
    for _ in range(8):
        model.step()
    host = 0
    values = link_values(model, host)
    heard = np.zeros_like(values.harm)
    for i, (c, s) in enumerate(values.links):
        now = int(model.links.state[host, c, s])
        for state in (OPEN, WARNED, BLOCKED):
            model.links.state[host, c, s] = state
            heard[i, state] = model.regulator.complained_harm(host)[c, s]
        model.links.state[host, c, s] = now
    if memory == 1.0:
        assert values.harm == pytest.approx(heard, rel=1e-9, abs=1e-12)
    else:     # one week's counts on 256 users against an average: close over the links
        assert values.harm.sum(axis=0) == pytest.approx(heard.sum(axis=0), rel=0.15)
        return
    evaluation = Evaluation(model, host, 4)
    violating = (np.isin(evaluation.start, violating_states(model)) & evaluation.at_risk)[None]
    complained = evaluation.outlook.complained(
        violating, evaluation.surfaces,
        values.harm[np.arange(len(values.links)), evaluation.start][None])
    foreseen = 1 - np.exp(-complained.sum())
    assert 0.05 < foreseen < 0.95
    draws = 2000
    heard = sum(bool(model.regulator.complained(host).any()) for _ in range(draws))
    assert stats.binomtest(heard, draws, foreseen).pvalue > 1e-4, (heard / draws, foreseen)


def test_complaints_alone_bring_decisions_after_the_deadline():
    """Static platforms, no audit, nothing visible: without complaints no violation is
    ever fined; with them the blocks held past the deadline are, and none before it."""
    def fined(complaints):
        scenario = small("china_2021_homogeneous", "regulator.announce_step=5",
                         "regulator.deadline_step=8", "regulator.forced_open=false",
                         f"regulator.complaints={complaints}", *UNSEEN, *STATIC, steps=16)
        return [r["fines"] > 0 for r in rows_of(scenario)]
    assert not any(fined(0.0))
    with_complaints = fined(0.002)
    assert not any(with_complaints[:7]) and sum(with_complaints[7:]) >= 5


def test_complaints_bring_compliance_under_common_random_numbers():
    """Best responders who see no audit coming (none, nothing visible) keep fewer links
    restricted after the deadline when users' complaints report violations, replicate by
    replicate on the same streams: they foresee the reports (no link is forced open)."""
    def restricted(complaints, replicate):
        scenario = small("china_2021_homogeneous", "regulator.announce_step=4",
                         "regulator.deadline_step=6", f"regulator.complaints={complaints}",
                         "regulator.forced_open=false", *UNSEEN, steps=16)
        rows = rows_of(scenario, replicate)
        return sum(r["links_blocked"] + r["links_warned"] for r in rows[8:])
    for replicate in range(2):     # 4 and 36 of 195 and 190; blind to the reports 197 and 177
        assert restricted(0.001, replicate) < 0.5 * restricted(0.0, replicate)


def test_a_stake_is_paid_on_the_margin():
    """Tencent's stake in JD earns its share of JD's profit (stake x margin x revenue per
    visit); JD keeps the rest, so every visit's revenue is still split whole, in the
    owners' accounts too."""
    for margin in (1.0, 0.15):
        scenario = small("china_2021", f"platforms.JD.stake_margin={margin}", steps=3)
        jd = [c.name for c in scenario.content].index("JD")
        shares = np.array([[stake(c, o) for o in scenario.owners] for c in scenario.content])
        assert shares.sum(axis=1) == pytest.approx(1.0)
        assert shares[jd, scenario.owners.index("Tencent")] == pytest.approx(0.17 * margin)
        model = WalledGardenModel(scenario, rng=replicate_seed(2, 0))
        for _ in range(scenario.steps):
            model.step()
        delivered = model.ledger.counts[..., list(DELIVERED)].sum(axis=(0, 2, 3))
        visits = (delivered + model.diverted) @ [c.revenue_per_visit for c in scenario.content]
        users = model.mask_counts @ attention(len(scenario.messaging)) @ [
            p.revenue_per_user for p in scenario.messaging]
        assert model.revenue_history[-1].sum() == pytest.approx(visits + users)


def test_static_platform_never_changes_its_policy():
    scenario = small("china_2021_homogeneous", *STATIC, "regulator.forced_open=false", steps=40)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    before = model.links.state.copy()
    for _ in range(scenario.steps):
        model.step()
        assert np.array_equal(model.links.state, before)
    assert {r["links_blocked"] for r in model.rows} == {started_blocked(scenario)}
    assert sum(r["reblocks"] for r in model.rows) == 0


def test_same_seed_same_rows_and_replicates_differ():
    scenario = small("china_2021_homogeneous")
    assert rows_of(scenario, 0) == rows_of(scenario, 0)
    first = [r["shares_attempted"] for r in rows_of(scenario, 0)]
    second = [r["shares_attempted"] for r in rows_of(scenario, 1)]
    assert first != second


def test_array_engine_results_do_not_depend_on_the_number_of_threads(monkeypatch):
    import numba

    from sim.model import array_engine

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least two threads to compare")
    monkeypatch.setattr(array_engine, "PARALLEL_FROM_USERS", 0)    # a small grid on every thread
    scenario = small("china_2021_homogeneous", "engine=\"array\"", size=20)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = rows_of(scenario)
        numba.set_num_threads(2)
        two = rows_of(scenario)
    finally:
        numba.set_num_threads(before)
    assert one == two


def test_array_engine_keeps_neighbour_counts_only_while_no_user_switches():
    """The week's revisers read the profile's counts; once users switch, they are counted
    again."""
    from sim.model.array_engine import _neighbour_counts

    scenario = small("china_2021", "engine=\"array\"", "users.revision_rate=0.5", size=12)
    model = WalledGardenModel(scenario, rng=replicate_seed(2, 0))
    users = model.users
    everyone = np.arange(len(users.platforms))

    def fresh():
        return _neighbour_counts(everyone, users.platforms, *users.neighbourhood()[:-1],
                                 2 ** len(scenario.messaging))
    assert np.array_equal(users.neighbour_counts(), fresh())
    assert users.counted_now() is not None
    assert users.choose_platforms(model.view) > 0
    assert users.counted_now() is None
    assert np.array_equal(users.neighbour_counts(), fresh())


@pytest.mark.parametrize("engine", ["array", "agent"])
def test_burn_in_starts_the_market_at_its_rest_point(engine):
    """Analytical limit: in Brock & Durlauf's market (beta J < 1, one fixed point
    x = 0.657), a market run for up to 100 weeks before week 1 starts at the fixed
    point, wherever the starting shares put them; with no burn-in the first week is
    still near the start (0.1)."""
    beta, dq, J = 2.0, 0.2, 0.4
    (root,) = validation.brock_durlauf_roots(beta, dq, J)
    side = 30
    first_week = {}
    for weeks in (0, 100):
        world = validation.two_platform_world(beta, dq, J, 0.1, side)
        world = dataclasses.replace(world, engine=engine, steps=1, burn_in=dataclasses.replace(
            world.burn_in, weeks=weeks))
        first_week[weeks] = [run_replicate(world, r).rows[0]["users_A"] for r in range(3)]
    tolerance = 4 * (root * (1 - root) / side ** 2) ** 0.5
    assert abs(np.mean(first_week[100]) - root) < tolerance
    assert np.mean(first_week[0]) < 0.3


def test_burn_in_stops_at_rest_and_says_so():
    """The burn-in ends once the market is at rest, well before its limit, and the
    events say how long it ran; with a tolerance of 0 it runs to the limit."""
    world = validation.two_platform_world(2.0, 0.2, 0.4, 0.1, 20)
    ran = {}
    for tolerance in (0.01, 0.0):
        settled = dataclasses.replace(world, steps=1, burn_in=dataclasses.replace(
            world.burn_in, weeks=400, tolerance=tolerance))
        (event,) = [e for e in run_replicate(settled, 0).events if e["event"] == "burn_in"]
        ran[tolerance] = int(event["detail"].split()[0])
        assert event["step"] == 0
    assert 52 <= ran[0.01] < 400
    assert ran[0.0] == 400


def test_at_rest_compares_the_two_halves_of_the_window():
    from sim.model.model import at_rest

    flat = [np.array([0.5, 0.2])] * 52
    rising = [np.array([0.5 + 0.001 * t, 0.2]) for t in range(52)]
    assert at_rest(flat, 52, 0.01)
    assert not at_rest(flat[:51], 52, 0.01)       # not a whole window yet
    assert not at_rest(rising, 52, 0.01)          # halves 0.026 apart
    assert not at_rest(flat, 52, 0.0)             # tolerance 0: never


def test_joint_burn_in_keeps_only_the_blocks_that_pay():
    """Platforms settle with their users: the case's starting blocks survive a burn-in
    where diverting the blocked visits pays, and most are dropped where the owners
    hold no service to divert to (diversion 0); a burn-in of users alone (static
    platforms) keeps them all. Common random numbers."""
    def blocked_at_week_1(*overrides):
        scenario = small("china_2021_homogeneous", "burn_in.weeks=80", 'regulator.policy="none"',
                         *overrides, size=12, steps=1, replicates=1)
        return run_replicate(scenario, 0).rows[0]["links_blocked"]

    no_diversion = [f"platforms.{p}.diversion=0" for p in ("WeChat", "QQ", "DingTalk")]
    static = [f'platforms.{p}.strategy="static"' for p in ("WeChat", "QQ", "DingTalk")]
    started = blocked_at_week_1("burn_in.weeks=0")
    assert blocked_at_week_1(*static) == started
    assert blocked_at_week_1(*no_diversion) < started / 2
    assert blocked_at_week_1() > started / 2
