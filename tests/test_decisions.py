"""The platforms' and the regulator's economics: the counterfactual a host decides by,
its comparative statics under common random numbers, the penalty it expects, the
beliefs it holds and the learner."""

import dataclasses
import functools
import itertools

import numpy as np
import pytest

from sim.experiments import validation
from sim.model import decisions, strategies as strategies_module
from sim.model.strategies import BestResponse
from sim.model.decisions import (Evaluation, PenaltyOutlook, ReviewCache, UserDynamics,
                                 free_links, later_net_costs, link_values, option_revenue,
                                 team_value, violating_states)
from sim.model.market import BLOCKED, OPEN, WARNED
from sim.model.model import WalledGardenModel
from sim.model.rules import choice_probabilities
from sim.experiments.runner import replicate_seed, run_replicate
from sim.scenario import load

from conftest import SCENARIOS, small

CASE = load(SCENARIOS / "china_2021_homogeneous.toml")
HOSTS = ("WeChat", "QQ", "DingTalk")
STATIC = [f'platforms.{p}.strategy="static"' for p in HOSTS]


def settled(*overrides, week: int, size: int = 20, seed: int = 5):
    """The case with static platforms, stepped to the end of `week`: the same state for
    any value of a parameter that static platforms' users do not see (common random
    numbers)."""
    scenario = small("china_2021_homogeneous", *STATIC, *overrides, size=size, steps=week)
    model = WalledGardenModel(scenario, rng=replicate_seed(seed, 0))
    for _ in range(week):
        model.step()
    return model


def cohort_shift(dynamics, moved: np.ndarray) -> np.ndarray:
    """(..., G, K): each cohort's shift of the chosen-set distribution, per user of the
    population, when the users' choice probabilities move by `moved` (..., R, K)."""
    return np.einsum("rg,r,...rk->...gk", dynamics.members, dynamics.weight, moved) / max(
        dynamics.people, 1.0)


def chosen_violations(model, period: int = 4) -> int:
    """Links every host's best plan would hold blocked or behind a warning page."""
    total = 0
    for host in range(len(model.scenario.messaging)):
        plans = Evaluation(model, host, period).plans()
        best = max(plans, key=lambda p: p.value)
        total += sum(state != OPEN for state in best.states)
    return total


@pytest.mark.parametrize("key, values, sign, week", [
    ("platforms.{}.diversion", (0.0, 0.3, 0.6, 1.0), 1, 4),
    ("platforms.{}.revenue_per_user", (0.1, 0.5, 2.0, 8.0), -1, 4),
    ("regulator.fine", (0.0, 0.01, 0.05, 0.5), -1, 10),
    ("platforms.{}.deadline_credibility", (0.0, 0.1, 0.4, 1.0), -1, 10),
    ("platforms.{}.audit_belief", (0.0, 0.01, 0.05, 0.3), -1, 12),
])
def test_comparative_statics_of_the_decision(key, values, sign, week):
    """Same state, same seed, one parameter moved: the links the best plans hold closed
    move in the direction IO theory says, weakly at every step and strictly overall.
    Diversion is the motive to block; revenue per user, the fine, the credibility of the
    deadline check and the believed audit rate are reasons not to."""
    counts = []
    for value in values:
        overrides = ([key.format(h) + f"={value}" for h in HOSTS] if "{}" in key
                     else [f"{key}={value}", "regulator.fine_cap=10"])
        counts.append(chosen_violations(settled(*overrides, week=week)))
    steps = np.diff(counts) * sign
    assert (steps >= 0).all() and steps.sum() > 0, counts


def test_the_estimate_of_a_warning_page_matches_a_brute_force_run():
    """The counterfactual of putting a link behind a warning page (not blocking it),
    against the model played out both ways from the same state and stream."""
    world = validation.brute_world(CASE, ("platforms.*.diversion", 0.0),
                                   ("users.token_cost", 1.0), ("users.choice_intensity", 1.5),
                                   ("users.network_weight", 1.0), ("users.revision_rate", 0.2),
                                   ("users.warning_dropout", 0.6))
    estimates, played = warning_pairs(world, replicates=16)
    spread = played.std(ddof=1) / np.sqrt(len(played))
    assert played.mean() < 0
    assert abs(estimates.mean() - played.mean()) <= max(3 * spread, 0.1 * abs(played.mean()))


def warning_pairs(world, replicates):
    import copy
    import sys

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))
    horizon = world.messaging[0].planning_horizon
    c = [p.name for p in world.content].index("Taobao")
    estimates, played = [], []
    for replicate in range(replicates):
        model = WalledGardenModel(world, rng=replicate_seed(11, replicate))
        for _ in range(80):
            model.step()
        values = link_values(model, 0)
        i = values.links.index((c, 0))
        estimates.append(values.diverted(horizon)[i, WARNED] + values.users(horizon)[i, WARNED])
        warned, opened = copy.deepcopy(model), copy.deepcopy(model)
        warned.links.set(0, c, 0, WARNED)
        for _ in range(horizon):
            warned.step()
            opened.step()
        gap = warned.revenue_history[-horizon:, 0] - opened.revenue_history[-horizon:, 0]
        played.append(sum(world.messaging[0].discount ** (u + 1) * g for u, g in enumerate(gap)))
    return np.array(estimates), np.array(played)


def test_users_who_move_to_the_owners_other_platform_are_kept():
    """Blocking on WeChat costs Tencent fewer users when QQ, where they can go, is
    Tencent's too: the user term of the same link, same state, QQ owned or not."""
    def users_term(qq_owner):
        model = settled(f'platforms.QQ.owner="{qq_owner}"', week=6, size=16)
        values = link_values(model, 0)
        taobao = [c.name for c in model.scenario.content].index("Taobao")
        return values.users(12)[values.links.index((taobao, 0)), BLOCKED]
    kept, lost = users_term("Tencent"), users_term("Other")
    assert lost < kept


def test_a_block_diverts_only_to_what_the_owner_holds():
    """Without Tencent's stake in JD, a blocked Taobao visit earns Tencent nothing; with
    it, some; a blocked Douyin visit goes to Channels, Tencent's own, either way."""
    def diversion(*overrides):
        model = settled(*overrides, week=4, size=16)
        values = link_values(model, 0)
        names = [c.name for c in model.scenario.content]
        return {name: values.diversion[values.links.index((names.index(name), 0)), BLOCKED]
                for name in ("Taobao", "Douyin")}
    with_stake, without = diversion(), diversion("platforms.JD.stakes={}")
    assert without["Taobao"] == 0 < with_stake["Taobao"]
    assert with_stake["Douyin"] > 0 and without["Douyin"] > 0


def test_the_review_cache_gives_what_a_fresh_evaluation_gives():
    """From the week's review cache, an evaluation equals one computed afresh, at the
    week's states and at others; states seen again give the same evaluation; a view left
    behind the states (a link moved, the view not rebuilt) is not taken for the states'
    own; owners share the users' traffic path."""
    model = settled(week=6, size=16)
    cache = ReviewCache(model)
    links = free_links(model, 0)
    start = [model.links.state[0, c, s] for c, s in links]

    def same(a, b):
        return all(np.array_equal(x, y) for x, y in zip(a.candidates, b.candidates))
    first = cache.evaluation(0, 4, start)
    assert same(first, Evaluation(model, 0, 4, start))
    (c, s), was = links[0], start[0]
    model.links.state[0, c, s] = OPEN if was == BLOCKED else BLOCKED
    stale = cache.evaluation(0, 4, start)
    assert same(stale, Evaluation(model, 0, 4, start))
    model.view = cache.market_view()
    moved = cache.evaluation(0, 4, start)
    assert same(moved, Evaluation(model, 0, 4, start)) and not same(moved, stale)
    model.links.state[0, c, s] = was
    model.view = cache.market_view()
    assert cache.evaluation(0, 4, start) is first
    tencent, alibaba = cache.dynamics(0), cache.dynamics(2)
    assert tencent.paths is alibaba.paths and len(tencent.paths) > 4
    assert np.array_equal(alibaba.traffic(8), UserDynamics(model, "Alibaba", 2).traffic(8))


def test_a_policys_shift_is_the_logit_recomputed_for_it_from_every_link_open():
    """A policy's direct shift is each user's logit recomputed for the policy as a whole,
    from the utilities with every link of the host open (the present states given back:
    the utilities of the market with the links relabelled open); the links do not add
    up (a block moves more users where the others are blocked too). Logit probabilities
    of a stack are each slice's, for a wider set of options too."""
    model = settled(week=6, size=16)
    values = link_values(model, 0)
    assert (values.now != OPEN).any()
    links = values.links
    for (c, s), state in zip(links, values.now):
        model.links.state[0, c, s] = OPEN
    model.view = model.market_view()
    opened = UserDynamics(model, "Tencent", 0)
    np.testing.assert_allclose(values.open_utilities, opened.utilities, atol=1e-12)
    blocked = np.full((1, len(links)), BLOCKED)
    rows = np.arange(len(links))
    np.testing.assert_allclose(cohort_shift(values.dynamics, values.moved(blocked))[0],
                               cohort_shift(opened, choice_probabilities(
                                   opened.utilities + values.felt[rows, BLOCKED].sum(axis=0),
                                   opened.beta) - opened.p),
                               atol=1e-12)
    alone = np.where(np.eye(len(links), dtype=bool), BLOCKED, OPEN)
    one_by_one = np.abs(cohort_shift(values.dynamics, values.moved(alone)).sum(axis=0)).sum()
    together = cohort_shift(values.dynamics, values.moved(blocked))[0]
    assert np.abs(together).sum() > 1.2 * one_by_one
    rng = np.random.default_rng(3)
    wide = rng.normal(size=(5, 40, 10))
    assert np.array_equal(choice_probabilities(wide, 2.0),
                          np.array([choice_probabilities(w, 2.0) for w in wide]))


def test_a_users_revenue_is_read_at_their_own_cohorts_ties():
    """The owner's revenue from a user of a cohort on a set is the mean, over the cohort's
    members, of what a user with that member's own ties would bring: QQ's natives, who
    cluster, send their views to QQ users, not to the population's WeChat users."""
    scenario = small("china_2021", *STATIC, "burn_in.weeks=0", size=16, steps=4)
    model = WalledGardenModel(scenario, rng=replicate_seed(5, 0))
    for _ in range(4):
        model.step()
    dynamics = UserDynamics(model, "Tencent", 0)
    share, weight, cohort = dynamics.share, dynamics.weight, dynamics.cohort
    mean_sharing = float(weight @ model.view.sharing[cohort]) / weight.sum()
    for g, sharing in enumerate(model.view.sharing):
        members = cohort == g
        each = np.array([option_revenue(model, "Tencent", ties, sharing, mean_sharing)
                         for ties in share[members]])
        np.testing.assert_allclose(dynamics.revenue[g], weight[members] @ each / weight[members].sum())
    qq = [p.name for p in model.scenario.messaging].index("QQ")
    holds_qq = (np.arange(share.shape[1]) >> qq) & 1 == 1
    natives, others = dynamics.cohort_ties()[:, holds_qq].sum(axis=1)
    assert natives > others + 0.1


def test_the_direct_movers_are_valued_at_their_own_ties():
    """Accounting: a change's direct shift valued at the cohorts' revenue plus the movers'
    excess over it equals each moving user valued at their own ties. A change felt in
    proportion to ties on QQ moves QQ's most tied users, whose views go elsewhere than
    their cohort's: the excess is not small."""
    scenario = small("china_2021", *STATIC, "burn_in.weeks=0", size=16, steps=4)
    model = WalledGardenModel(scenario, rng=replicate_seed(5, 0))
    for _ in range(4):
        model.step()
    dynamics = UserDynamics(model, "Tencent", 1)
    on_qq = (model.view.options >> 1) & 1
    qq_masks = (np.arange(dynamics.phi.shape[2]) >> 1) & 1
    tie = -np.outer(on_qq, qq_masks).astype(float)     # a user on QQ loses 1 per tie on QQ
    du = dynamics.felt(tie)
    moved = choice_probabilities(dynamics.utilities + du, dynamics.beta) - dynamics.p
    shift = cohort_shift(dynamics, moved)
    movers = dynamics.movers(moved)
    sharing, weight = model.view.sharing, dynamics.weight
    mean_sharing = float(weight @ sharing[dynamics.cohort]) / weight.sum()
    own = np.array([option_revenue(model, "Tencent", ties, sharing[g], mean_sharing)
                    for ties, g in zip(dynamics.share, dynamics.cohort)])
    each = float((weight[:, None] * moved * own).sum()) / weight.sum()
    cohorts = float((shift * dynamics.revenue).sum())
    assert cohorts + movers == pytest.approx(each, rel=1e-9)
    assert abs(movers) > 0.05 * abs(each)


def test_an_owner_never_keeps_a_joint_policy_worth_less_than_its_start(monkeypatch):
    """Tencent's hosts decide together; whatever the rounds visit (here drawn nearly at
    random, a low strategy intensity), the joint policy kept is worth at least the
    policies they began with, the start being one of those compared."""
    visited, kept = {}, []

    def recording(model, hosts, periods, begin, cache):
        value = team_value(model, hosts, periods, begin, cache)
        visited[model.links.state.tobytes()] = value
        return value

    def review(self, model):
        visited.clear()
        start = model.links.state.tobytes()
        deciding(self, model)
        if visited:
            kept.append({start: 0.0, **visited}[model.links.state.tobytes()])
            everything.extend(visited.values())
    everything, deciding = [], BestResponse.review
    monkeypatch.setattr(strategies_module, "team_value", recording)
    monkeypatch.setattr(BestResponse, "review", review)
    scenario = small("china_2021_homogeneous", *[f"platforms.{p}.strategy_intensity=0.01"
                                                 for p in ("WeChat", "QQ")], steps=13)
    model = WalledGardenModel(scenario, rng=replicate_seed(5, 0))
    for _ in range(13):
        model.step()
    assert kept and min(everything) < 0, "no joint review visited a policy worse than its start"
    assert min(kept) >= 0


def test_a_links_shock_is_measured_from_the_link_open():
    """The users' response to a policy is measured from their utilities with the links
    open, whatever their present states: a block already felt is not felt again. The
    direct shift of every policy changing WeChat's Taobao chat link alone is the same
    whether the link is open or blocked now (the rest of the market alike); measured
    from the present utilities, as before 2026-12-04, a held block was valued as a
    second block, several times what it was, and a host reopened links it would keep.
    What a user is worth under a policy is the model's own pricing at the market view
    with the links in its states: the users an opening regains bring no diverted visits
    on it, those a block drives away would have."""
    model = settled(week=12)
    link = (0, [c.name for c in model.scenario.content].index("Taobao"), 0)

    def at(state):
        model.links.state[link] = state
        model.view = model.market_view()
        values = link_values(model, 0)
        i = values.links.index(link[1:])
        plans = np.repeat(values.now[None], 3, axis=0)
        plans[:, i] = (OPEN, WARNED, BLOCKED)
        change, _ = values.revenue_of(plans)
        now, _ = values.revenue_of(values.now[None])
        priced = values.dynamics.revenue + change - now
        return cohort_shift(values.dynamics, values.moved(plans)), priced

    (held, priced_held), (opened, priced_opened) = at(BLOCKED), at(OPEN)
    assert np.abs(opened[BLOCKED]).sum() > 0
    np.testing.assert_allclose(held, opened, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(priced_held, priced_opened, rtol=1e-9, atol=1e-12)
    assert not np.allclose(priced_opened[OPEN], priced_opened[BLOCKED])


def qq_blocks(model, state: int = BLOCKED) -> None:
    """QQ (host 1) holds every rival link in `state`, none forced open."""
    model.links.forced[1] = False
    model.links.state[1][model.links.rival[1]] = state
    model.view = model.market_view()


def enumerated_penalty(outlook, caught: np.ndarray, forced_value: float, later: float,
                       weeks: int, reset: bool = False) -> float:
    """The owner's expected penalty over `weeks` by following every history of
    decisions, week by week and host by host (WeChat, then its sibling QQ), with
    escalation, the ladder and forced openings: the host is caught in week u of the
    period with chance caught[u]. After the period each host, in each week, either
    keeps its violations (earning their weekly value, caught with chance `later`) or
    complies for the week, whichever costs the owner less at that point of the history;
    `reset` starts the weeks after the period at the rung the period began at."""
    spec = outlook.model.scenario.messaging[outlook.host]
    (sibling, sibling_caught, sibling_value, sibling_later), = outlook.siblings
    hosts = [(outlook.own, caught, later, forced_value),
             (sibling, sibling_caught, sibling_later, sibling_value)]

    @functools.cache
    def follow(u, i, k, forced):
        if i == len(hosts):
            u, i = u + 1, 0
            k = 0 if u == outlook.period and reset else k
        if u == weeks:
            return 0.0
        exposure, chance, after, value = hosts[i]
        p = chance[u] if u < outlook.period else after
        if forced[i] or p == 0:
            return follow(u, i + 1, k, forced)
        weight = spec.discount ** (u + 1)
        opened = tuple(f or (h == i and bool(exposure.forced[k])) for h, f in enumerate(forced))
        up = min(k + 1, len(exposure.costs) - 1)
        if u < outlook.period:
            rest = sum(spec.discount ** (v + 1)
                       for v in range(max(spec.planning_horizon - u - 1, 0)))
            cost = weight * (exposure.costs[k] + exposure.forced[k] * value * rest)
            return (1 - p) * follow(u, i + 1, k, forced) + p * (cost + follow(u, i + 1, up, opened))
        keep = (-weight * value + (1 - p) * follow(u, i + 1, k, forced)
                + p * (weight * exposure.costs[k] + follow(u, i + 1, up, opened)))
        return min(keep, follow(u, i + 1, k, forced))
    return follow(0, 0, 0, (False, False))


@pytest.mark.parametrize("complaints", [0.0, 0.0005])
@pytest.mark.parametrize("foresight", [False, True])
def test_the_penalty_forward_pass_matches_every_audit_history(foresight, complaints):
    """Expected penalty of a policy over a period, against following every history of
    decisions against the group week by week (with escalation, the ladder and a forced
    opening), WeChat's policy with QQ's blocks beside it: the owner's penalty with the
    policy, less with WeChat lawful. Foreseeing escalation adds, over the weeks after
    the period to the horizon, the penalties from the rung the period leaves less those
    from the rung it began at. Users' complaints catch a host in a week whether or not
    an audit comes: audited + (1 - audited)(1 - exp(-reports))."""
    horizon, period = 7, 4
    model = settled("regulator.forced_open_after=2", "regulator.naming_after=1",
                    "regulator.audit_probability=0.3", f"regulator.complaints={complaints}",
                    f"platforms.WeChat.planning_horizon={horizon}",
                    f"platforms.WeChat.foresee_escalation={str(foresight).lower()}", week=12)
    model.regulator.offences[:] = 0
    model.regulator.capped[:] = 0
    qq_blocks(model)
    values = link_values(model, 0)
    outlook = PenaltyOutlook(model, 0, period, values)
    assert [e.host for e, *_ in outlook.siblings] == [1]     # QQ violates beside it
    violating = np.array([2, 1, 3])
    forced_value = 3000.0       # weekly: enough that keeping the violations after the period pays
    complained = np.array([0.6, 0.3, 0.1]) * (complaints > 0)    # reports' strength by surface
    expected = outlook.expected(violating[None, :], np.array([forced_value]),
                                complained=complained[None, :])[0]
    found = np.array([1 - np.prod((1 - outlook.visibility) ** (violating * outlook.required[u]))
                      for u in range(period)])
    reported = 1 - np.exp(-(outlook.required @ complained))
    audited, audited_later = outlook.audit * found, outlook.own.routine * found[-1]
    caught = audited + (1 - audited) * reported
    later = audited_later + (1 - audited_later) * reported[-1]

    def owner(caught, value, later):
        total = enumerated_penalty(outlook, caught, value, later, period)
        if foresight:
            total += (enumerated_penalty(outlook, caught, value, later, horizon)
                      - enumerated_penalty(outlook, caught, value, later, horizon, reset=True))
        return total
    # against WeChat lawful in the period, with the same options after it
    total = owner(caught, forced_value, later) - owner(np.zeros(period), forced_value, later)
    assert expected == pytest.approx(total, rel=1e-9)
    period_only = (enumerated_penalty(outlook, caught, forced_value, later, period)
                   - enumerated_penalty(outlook, np.zeros(period), forced_value, later, period))
    if foresight and not complaints:
        assert expected > period_only * 1.01 > 0, (expected, period_only)
    elif foresight:   # caught most weeks, the links are likely forced open: later fines end
        assert expected > 0 and period_only > 0
    else:
        assert expected == pytest.approx(period_only, rel=1e-9) and period_only > 0


def test_complaints_cost_a_policy_by_the_harm_its_violations_do():
    """A policy's complaints are `complaints` times what its violating links cost users a
    week per thousand users (each link at its own state): they raise the expected
    penalty of violating, the more the more complaints, and leave a lawful policy's at
    nothing; QQ's blocks beside WeChat are reported too, so they raise WeChat's
    penalty through the group's record."""
    def evaluation(complaints, qq=BLOCKED):
        model = settled("regulator.audit_probability=0.05", "regulator.forced_open=false",
                        f"regulator.complaints={complaints}", week=12)
        model.regulator.offences[:] = 0
        model.regulator.capped[:] = 0
        qq_blocks(model, qq)
        return Evaluation(model, 0, 4)

    def penalty(evaluation, state):
        states = np.full((1, len(evaluation.surfaces)), state)
        return evaluation.penalty(states, np.zeros(1))[0]

    base, some, more = (evaluation(k) for k in (0.0, 0.0002, 0.001))
    harms = some.values.harm
    assert (harms[:, OPEN] == 0).all() and (harms[:, BLOCKED] >= harms[:, WARNED]).all()
    assert (harms[:, BLOCKED] > 0).any()
    assert penalty(base, BLOCKED) < penalty(some, BLOCKED) < penalty(more, BLOCKED)
    assert penalty(base, OPEN) == penalty(some, OPEN) == penalty(more, OPEN) == 0
    assert some.outlook.siblings and not evaluation(0.0002, qq=OPEN).outlook.siblings
    assert penalty(some, BLOCKED) > penalty(evaluation(0.0002, qq=OPEN), BLOCKED)


def test_a_platform_weighs_complaints_as_strongly_as_it_believes_them():
    """`complaint_belief` scales the reports a platform foresees, not the regulator's:
    at 0 its penalty of violating is the one without complaints, at 2 above the one
    at the true rate."""
    def penalty(complaints, belief):
        model = settled("regulator.audit_probability=0.05", "regulator.forced_open=false",
                        f"platforms.WeChat.complaint_belief={belief}", week=12)
        # complaints from now on: the same market for every value
        model.regulator.spec = dataclasses.replace(model.regulator.spec, complaints=complaints)
        model.regulator.offences[:] = 0
        model.regulator.capped[:] = 0
        evaluation = Evaluation(model, 0, 4)
        states = np.full((1, len(evaluation.surfaces)), BLOCKED)
        return evaluation.penalty(states, np.zeros(1))[0]
    assert penalty(0.0005, 0.0) == penalty(0.0, 1.0)
    assert penalty(0.0, 1.0) < penalty(0.0005, 1.0) < penalty(0.0005, 2.0)


def test_a_siblings_violations_raise_the_penalty_of_violating():
    """Fines escalate per group: with QQ's blocks beside it, each of WeChat's decisions
    is likelier to come after one against QQ, so violating costs Tencent more than with
    QQ lawful (no forced opening, which would end the fines); with no escalation and no
    ladder the sibling changes nothing."""
    def penalty(*overrides, qq_lawful: bool):
        model = settled("regulator.audit_probability=0.3", "regulator.forced_open=false",
                        *overrides, week=12)
        model.regulator.offences[:] = 0
        model.regulator.capped[:] = 0
        qq_blocks(model, OPEN if qq_lawful else BLOCKED)
        outlook = PenaltyOutlook(model, 0, 4, link_values(model, 0))
        return outlook.expected(np.array([[2, 1, 3]]), np.array([0.0]))[0]

    assert penalty(qq_lawful=False) > penalty(qq_lawful=True) > 0
    flat = ("regulator.fine_escalation=1", "regulator.naming=false",
            "regulator.suspend_registrations=false")
    assert penalty(*flat, qq_lawful=False) == pytest.approx(penalty(*flat, qq_lawful=True),
                                                            rel=1e-9)


def test_foreseeing_escalation_deters():
    """A decision against the group now makes every later one dearer: hosts that count
    it hold fewer links violating after the deadline than hosts that look at the
    coming period's fines alone, at the same state."""
    def violating(foresight: str) -> int:
        return chosen_violations(settled(*[f"platforms.{p}.foresee_escalation={foresight}"
                                           for p in HOSTS], week=16))
    assert violating("true") < violating("false")


def test_beliefs_learn_from_every_inspection_seen():
    """Beta beliefs: the deadline blitz updates the belief in deadline checks, routine
    audits of any platform the belief in routine audits."""
    weight, prior, credibility = 10.0, 0.01, 0.2
    scenario = small("china_2021_homogeneous", *STATIC, "regulator.audit_probability=1.0",
                     "regulator.forced_open=false",
                     *[f"platforms.{h}.{k}={v}" for h in HOSTS for k, v in (
                         ("belief_weight", weight), ("audit_belief", prior),
                         ("deadline_credibility", credibility))], steps=13)
    model = WalledGardenModel(scenario, rng=replicate_seed(1, 0))
    spec = scenario.messaging[0]
    for _ in range(10):
        model.step()
    assert model.regulator.belief(spec, "routine") == pytest.approx(prior)
    model.step()                                     # the blitz: every platform audited
    assert model.regulator.belief(spec, "deadline") == pytest.approx(
        (weight * credibility + 3) / (weight + 3))
    model.step()
    model.step()                                     # two routine weeks, all audited
    assert model.regulator.belief(spec, "routine") == pytest.approx(
        (weight * prior + 6) / (weight + 6))


def test_the_learner_learns_to_block_where_it_pays_and_to_open_where_it_does_not():
    learners = [f'platforms.{h}.strategy="learning"' for h in HOSTS]
    free = small("china_2021_homogeneous", 'regulator.policy="none"', *learners,
                 *[f"platforms.{h}.blocks=[]" for h in HOSTS], steps=40)
    ordered = small("china_2021_homogeneous", *learners, "regulator.announce_step=5",
                    "regulator.deadline_step=6", "regulator.audit_probability=1.0",
                    "regulator.fine=5.0", "regulator.fine_cap=10.0",
                    "regulator.forced_open=false", steps=40)
    for replicate in range(3):
        grown = [r["links_blocked"] for r in run_replicate(free, replicate).rows]
        assert grown[0] == 0 and np.mean(grown[-10:]) > 3
        kept = [r["links_blocked"] for r in run_replicate(ordered, replicate).rows]
        assert np.mean(kept[-10:]) < 0.2 * kept[0]


def test_a_learner_charges_the_reports_its_violating_states_would_have_met():
    """With no audit and nothing visible, only complaints catch a violation: a learner's
    per-link credit charges each violating state, in every week the link was due, the
    chance complaints report it in that state times the fine's share; an open state
    nothing; with complaints off, nothing at all."""
    def met(complaints):
        model = settled("regulator.announce_step=5", "regulator.deadline_step=8",
                        f"regulator.complaints={complaints}",
                        "regulator.visibility={chat=0.0,group=0.0,feed=0.0}",
                        "regulator.audit_probability=0", "regulator.deadline_audit=0",
                        "regulator.forced_open=false", week=12, size=16)
        wechat = model.platforms[[p.spec.name for p in model.platforms].index("WeChat")]
        values = link_values(model, wechat.host)
        return strategies_module.Learning(wechat).fines_met(model, values, 4), values, model
    credit, values, model = met(0.001)
    assert (credit[:, OPEN] == 0).all() and (credit[:, BLOCKED] > 0).any()
    # every one of the 4 weeks since the deadline, audited or not
    played = np.array([model.links.state[0, c, s] for c, s in values.links])
    violators = int(np.isin(played, violating_states(model)).sum())
    fine = model.regulator.fine(0, int(model.regulator.offences[0]))[0]
    reported = 1 - np.exp(-0.001 * values.harm[:, BLOCKED])
    np.testing.assert_allclose(credit[:, BLOCKED], 4 * reported * fine / violators, rtol=1e-9)
    more_harm = values.harm[:, BLOCKED] > values.harm[:, WARNED]
    assert (credit[more_harm, BLOCKED] > credit[more_harm, WARNED]).all()
    assert (met(0.0)[0] == 0).all()


def test_without_an_order_the_case_stays_near_its_starting_blocks():
    """The mid-2021 blocks are close to the model's own pre-order best response: most of
    the starting link states survive the platforms' reviews before the announcement."""
    scenario = small("china_2021_homogeneous", 'regulator.policy="none"', size=20, steps=9)
    links = WalledGardenModel(scenario, rng=replicate_seed(0, 0)).links
    for replicate in range(3):
        run = validation.run_with_links(scenario, replicate)
        kept = (run.states[:, links.rival] == links.state[links.rival][None]).mean()
        assert kept >= 0.8


def test_escalation_costs_at_most_what_the_violations_would_earn():
    """After the period a host complies in any week where keeping its violations would
    cost the owner more than they earn: however steep the ladder, being a rung higher
    costs at most the violations' discounted earnings over the later weeks, and with
    violations worth nothing it costs nothing."""
    weeks, discount, rungs = 20, 0.99, 6
    later = np.array([[0.3]])
    costs = np.array([[10.0 ** k for k in range(rungs)]])     # each decision ten times dearer
    forced = np.zeros((1, rungs), bool)
    earned = sum(discount ** (u + 1) for u in range(weeks))
    for worth in (0.0, 2.0, 50.0):
        net = later_net_costs(later, np.array([[worth]]), costs, forced, weeks, discount)[0, :, 0]
        assert np.all(np.diff(net) >= -1e-12)                 # a higher rung never costs less
        assert net[-1] - net[0] <= worth * earned + 1e-9
        assert (net[-1] - net[0] > 0) == (worth > 0)


def test_a_policys_users_are_priced_under_it_only_while_it_is_held():
    """Accounting: the users' term of a policy X held for P weeks is, week by week along
    the users' dynamics played forward here one week at a time (each row of users
    revising from the sets the change moved them to, their ties shifting with the
    population), the users X shifts priced under X, less the present policy's shift
    repriced by X's links, in the period's weeks, with the direct movers' own ties on
    top; and after it (the next review's policy being taken as the present one) every
    user X moved priced at their own ties under the present links. The model values the
    same dynamics backwards (an adjoint recursion). Held to the horizon, nothing is
    priced after it."""
    model = settled(week=6, size=16)
    values = link_values(model, 0)
    d = values.dynamics
    period = 4
    policies = np.array([np.full(len(values.links), BLOCKED), np.full(len(values.links), OPEN),
                         np.where(values.now == OPEN, BLOCKED, OPEN)])
    change, per_set = values.revenue_of(policies)
    now_change, now_per_set = values.revenue_of(values.now[None])
    masks = d.phi.shape[2]
    own_ties = d.people * d.deviation @ d.per_set.T          # (R, K): beyond the cohort's

    def played(moved, priced_during, priced_after):
        """sum_u delta^u sum_r w_r R_u,g(r) . dy_r,u for a direct move held `period` weeks."""
        dy, total = np.zeros_like(moved), 0.0
        for u in range(1, d.horizon + 1):
            on_masks = np.bincount(d.options, weights=d.weight @ dy, minlength=masks) / d.people
            dy = (1 - d.rate) * dy + d.rate * (np.einsum("rk,rkl->rl", dy, d.transitions)
                                               + d.feedback @ on_masks
                                               + (moved if u <= period else 0.0))
            if u <= period:
                total += d.discount ** u * (d.weight[:, None] * priced_during[d.cohort] * dy).sum()
            else:
                total += d.discount ** u * (priced_after * dy).sum()
        return total
    within, _ = decisions.exposure_weights(period, d.horizon, d.discount, d.rate)
    held = values.moved(values.now[None])[0]
    after_at_own_ties = d.weight[:, None] * d.revenue[d.cohort] + own_ties
    for policy, moved, x_change, x_per_set in zip(
            policies, values.moved(policies), change, per_set):
        priced_x = d.revenue + x_change - now_change[0]
        expected = (played(moved, priced_x, after_at_own_ties)
                    - played(held, x_change, np.zeros_like(own_ties))
                    + d.people * within * (
                        d.beyond(moved[None], (x_per_set - now_per_set[0])[None])
                        - d.beyond(held[None], x_per_set[None]) + d.movers(moved[None]))[0])
        assert values.users_of(policy[None], period)[0] == pytest.approx(expected, rel=1e-9)
    moved = values.moved(policies)
    assert not np.any(d.response(moved, d.horizon)[1])
    after = d.response(moved, period)[1]
    assert after[0] != 0 and after[1] == 0     # every link blocked is felt after it; open is no move


def test_a_user_a_policy_moves_keeps_the_cost_of_moving_back():
    """Users revise from the set they are on, so those a policy moved pay the switching
    cost to return once it is lifted: the users' term after a period is larger than if
    a reviser chose afresh from where they began (as the host's rule did until
    2026-12-05, when a referee found the model played out 1.57 times its estimate after
    the period). A row's choices from its own set are its choices; with no switching
    cost, where a user is does not matter and the two agree."""
    def after_period(*overrides):
        model = settled(*overrides, week=6, size=16)
        values = link_values(model, 0)
        d = values.dynamics
        own = np.searchsorted(d.options, d.current)
        np.testing.assert_allclose(d.transitions[np.arange(len(own)), own], d.p, atol=1e-12)
        blocked = values.moved(np.full((1, len(values.links)), BLOCKED))
        remembered = d.response(blocked, 4)[1][0]
        d.transitions = np.broadcast_to(d.p[:, None], d.transitions.shape)
        d.cache.clear()
        return remembered, d.response(blocked, 4)[1][0]
    remembered, afresh = after_period()
    assert remembered < 1.1 * afresh < 0
    remembered, afresh = after_period("users.switching_cost=0")
    assert remembered == pytest.approx(afresh, rel=1e-9)


def test_the_host_chooses_among_one_plan_per_number_of_violations():
    """After the order the host weighs, for each number of violating links, one plan,
    its present policy and a local search's: not one plan per split of the violations
    over the surfaces, which made the logit's noise grow with the host's links. Before
    the order, the best plan by the links' own worth, the present policy and the
    search's."""
    model = settled(week=12, size=16)
    for host in range(len(model.scenario.messaging)):
        evaluation = Evaluation(model, host, 4)
        states, values = evaluation.candidates
        at_risk = int(evaluation.at_risk.sum())
        assert at_risk > 0
        assert len(states) <= at_risk + 3
        assert (states == evaluation.start).all(axis=1).any()
        violating = (np.isin(states, evaluation.violating_states)
                     & evaluation.at_risk[None]).sum(axis=1)
        assert set(range(at_risk + 1)) <= set(violating.tolist())
        np.testing.assert_allclose(values, evaluation.values_of(states))
    before = settled(week=6, size=16)
    for host in range(len(before.scenario.messaging)):
        assert len(Evaluation(before, host, 4).candidates[1]) <= 3


def test_a_forced_opening_takes_the_policys_value_as_a_whole():
    """What a forced opening takes from a policy is the policy held to the horizon less
    the same with its links on the order's surfaces open, valued as a whole: nothing
    from a lawful policy, and for every link blocked not the sum of the links' one-link
    values (the users' term is not additive)."""
    model = settled(week=12, size=16)
    evaluation = Evaluation(model, 0, 4)
    count = len(evaluation.start)
    blocked, lawful = np.full((1, count), BLOCKED), np.full((1, count), OPEN)
    taken = evaluation.forced_value(blocked)[0]
    held = evaluation.values.held(np.vstack([blocked, lawful]))
    assert taken == pytest.approx(max(held[0] - held[1], 0.0))
    assert evaluation.forced_value(lawful)[0] == 0.0
    one_link = np.maximum(evaluation.steady[:, BLOCKED], 0.0).sum()
    assert abs(taken - one_link) > 0.05 * max(abs(taken), abs(one_link))
