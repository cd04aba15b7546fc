"""The model's behaviour and economics: identities, bounds, limits, comparative statics."""

import numpy as np
import pytest

from sim.model import WalledGardenModel
from sim.runner import replicate_seed, run_replicate

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


def test_token_costs_are_token_shares_times_token_cost():
    scenario = small("china_2021")
    for row in rows_of(scenario):
        assert row["friction_cost"] == pytest.approx(scenario.users.token_cost * row["shares_token"])


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
    Token costs paid rise with the cost as long as it is below the mean share value."""
    friction, abandoned = [], []
    for cost in (0.0, 0.25, 0.5, 0.75, 1.0):
        scenario = small("no_regulation", f"users.token_cost={cost}", "users.revision_rate=0",
                         f"engine=\"{engine}\"",
                         "platforms.WeChat.strategy=\"static\"", "platforms.QQ.strategy=\"static\"",
                         "platforms.DingTalk.strategy=\"static\"", size=20, steps=20)
        rows = rows_of(scenario)
        friction.append(sum(r["friction_cost"] for r in rows))
        abandoned.append(sum(r["shares_abandoned"] for r in rows))
    assert abandoned[0] == 0 and friction[0] == 0
    assert all(a < b for a, b in zip(abandoned, abandoned[1:]))
    assert all(a < b for a, b in zip(friction, friction[1:]))


def test_credible_order_leaves_no_link_blocked_after_its_deadline():
    """Audits certain and a fine far above any diversion gain: best responders open
    every link by the deadline, without the regulator forcing them."""
    scenario = small("china_2021", "regulator.phases=[]", "regulator.announce_step=5",
                     "regulator.deadline_step=8", "regulator.deadline_audit=1.0",
                     "regulator.audit_probability=1.0", "regulator.fine=5.0",
                     "regulator.fine_cap=100.0", "regulator.forced_open=false", steps=30)
    for replicate in range(3):
        rows = rows_of(scenario, replicate)
        assert rows[0]["links_blocked"] > 0
        after = [r for r in rows if r["step"] >= 8]
        assert all(r["links_blocked"] == 0 for r in after)
        assert all(r["violations"] == 0 and r["fines"] == 0 for r in after)


def test_weak_order_is_violated_and_fined():
    """The same order with static platforms: the blitz finds every blocked link."""
    scenario = small("china_2021", "regulator.phases=[]", "regulator.deadline_step=12",
                     "regulator.forced_open=false", "platforms.WeChat.strategy=\"static\"",
                     "platforms.QQ.strategy=\"static\"", steps=14)
    rows = rows_of(scenario)
    deadline = rows[11]
    assert deadline["violations"] == deadline["links_blocked"] == 15
    assert deadline["fines"] > 0
    assert sum(r["fines"] for r in rows[:11]) == 0


def test_static_platform_never_changes_its_policy():
    scenario = small("china_2021", "platforms.WeChat.strategy=\"static\"",
                     "platforms.QQ.strategy=\"static\"", "platforms.DingTalk.strategy=\"static\"",
                     "regulator.forced_open=false", steps=40)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    before = model.links.blocked.copy()
    for _ in range(scenario.steps):
        model.step()
        assert np.array_equal(model.links.blocked, before)
    assert {r["links_blocked"] for r in model.rows} == {15}
    assert sum(r["reblocks"] for r in model.rows) == 0


def test_forced_opening_opens_a_repeat_offender_for_good():
    scenario = small("china_2021", "regulator.phases=[]", "regulator.deadline_step=12",
                     "regulator.audit_probability=1.0", "regulator.forced_open_after=2",
                     "platforms.WeChat.strategy=\"static\"", "platforms.QQ.strategy=\"static\"",
                     steps=20)
    rows = rows_of(scenario)
    assert rows[11]["links_blocked"] == 15          # caught once at the deadline blitz
    assert all(r["links_blocked"] == 0 for r in rows[12:])


def test_same_seed_same_rows_and_replicates_differ():
    scenario = small("china_2021")
    assert rows_of(scenario, 0) == rows_of(scenario, 0)
    first = [r["shares_attempted"] for r in rows_of(scenario, 0)]
    second = [r["shares_attempted"] for r in rows_of(scenario, 1)]
    assert first != second


def test_array_engine_results_do_not_depend_on_the_number_of_threads():
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least two threads to compare")
    scenario = small("china_2021", "engine=\"array\"", size=20)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = rows_of(scenario)
        numba.set_num_threads(2)
        two = rows_of(scenario)
    finally:
        numba.set_num_threads(before)
    assert one == two
