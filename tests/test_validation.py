"""Validation against theory and the record: every check of `sim.experiments.validation` must pass
on the shipped case, and the machinery behind `validate` and `calibrate` must hold."""

import csv
import dataclasses
import datetime
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from sim.experiments import calibration
from sim.experiments import record
from sim.experiments import validation
from sim.model.market import BLOCKED, OPEN, WARNED
from sim.scenario import load

from conftest import ROOT, SCENARIOS, assert_reads_plotlyjs_from_beside

HOMOGENEOUS = SCENARIOS / "china_2021_homogeneous.toml"   # users alike, no burn-in: fast


@pytest.fixture(scope="module")
def case():
    return load(SCENARIOS / "china_2021.toml")


@pytest.fixture(scope="module")
def workers():
    """Replicates on one process per core this test process has (the cores shared among
    pytest-xdist's workers), one numba thread each (as `validate` runs them): the same
    bytes as one process, in a fraction of the time."""
    sharing = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    with validation.in_parallel(max(1, (os.cpu_count() or 1) // sharing)):
        yield


# Checks the shipped case does not pass, as ODD.md section 8 reports (quick effort,
# 2026-12-05, the fit of that day): each stays listed until the model reproduces it, and the
# slow test (`python -m pytest -m slow`) fails if one starts to pass unannounced.
KNOWN_GAPS = {"counterfactual", "counterfactual_held", "starting_equilibrium", "incentives",
              "opening_effects", "doganoglu_wright", "record_sizes", "record_timing",
              "market_at_rest", "deterrence", "penalty_detection", "weak_audits_reblock",
              "surface_order", "record_sanctions"}


def failures(rows: list[dict]) -> list[str]:
    return [f"{r['measure']}: {r['value']:.4g} (needs {r['expected']}; p = {r['p_value']:.3g})"
            for r in rows if not r["passed"]]


@pytest.mark.parametrize("name", [name for name in validation.CHECKS if name not in KNOWN_GAPS])
def test_every_check_holds_for_its_mechanism_and_fails_without_it(case, name, workers):
    rows = validation.validate(case, validation.QUICK, [name], progress=False)
    assert rows, f"{name} produced no evidence"
    assert not failures(rows), "\n".join(failures(rows))
    assert rows[0]["without_mechanism"] is False, (
        f"{name} still passes with its mechanism switched off ({rows[0]['ablation']})")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KNOWN_GAPS))
def test_a_known_gap_still_fails(case, name, workers):
    """A check that fails is no evidence, ablated or not; this keeps KNOWN_GAPS in step
    with the model (`python -m pytest -m slow`; `run.py validate` reports the same)."""
    rows = validation.validate(case, validation.QUICK, [name], progress=False, ablate=False)
    assert rows, f"{name} produced no evidence"
    assert failures(rows), f"{name} now passes: update KNOWN_GAPS and ODD.md section 8"


def test_roots_solve_the_brock_durlauf_equation():
    for beta, dq, J, count in ((2.0, 0.2, 0.4, 1), (2.0, 0.1, 1.5, 3)):
        roots = validation.brock_durlauf_roots(beta, dq, J)
        assert len(roots) == count
        for x in roots:
            assert x == pytest.approx(1 / (1 + math.exp(-beta * (dq + J * (2 * x - 1)))),
                                      abs=1e-9)


def test_counterfactuals_are_the_shipped_scenario_files(case):
    """Validation derives its counterfactuals from the case; for the shipped case they
    are exactly the shipped no_regulation, open_by_default and interoperability files."""
    effort = validation.QUICK
    size = [f"grid.width={effort.size}", f"grid.height={effort.size}", f"steps={effort.weeks}"]

    def same_market(derived, shipped):
        return dataclasses.replace(derived, name=shipped.name,
                                   description=shipped.description) == shipped
    assert same_market(validation.no_order(case, effort),
                       load(SCENARIOS / "no_regulation.toml", size))
    assert same_market(validation.open_world(case, effort),
                       load(SCENARIOS / "open_by_default.toml", size))
    assert same_market(validation.sized(case, effort, ("regulator.interoperability", True)),
                       load(SCENARIOS / "interoperability.toml", size))
    assert not same_market(validation.no_order(case, effort), validation.sized(case, effort))


def test_record_moments_come_from_the_record_file(case):
    """Targets are read from scenarios/data/record_2021.csv: QQ per WeChat user at the
    record's dates inside the run as a level and a change, the record's blocks before
    the order, WeChat's lags (the feed censored at the run's end) and surfaces closed
    at the check."""
    targets = {m.name: m for m in record.moments(case, 104)}
    ratios = [552 / record.users_at(record.load_record(), "WeChat", datetime.date(2021, 12, 31)),
              574 / 1309, 570 / 1327]
    assert targets["qq_per_wechat_level"].target == pytest.approx(np.mean(ratios))
    assert targets["qq_per_wechat_change"].target == pytest.approx(ratios[-1] - ratios[0])
    assert targets["qq_per_wechat_level"].weeks == tuple(
        record.calendar_week(case, d) for d in (datetime.date(2021, 12, 31),
                                                datetime.date(2022, 9, 30),
                                                datetime.date(2023, 6, 30)))
    assert targets["pre_order_blocks"].target == 1
    assert targets["pre_order_blocks"].week == case.regulator.announce_step - 1
    assert targets["pre_order_open"].target == 1 and "JD" in targets["pre_order_open"].doc
    assert targets["wechat_chat_lag"].target == pytest.approx(73 / 7)
    assert targets["wechat_chat_warned_lag"].target == 0
    assert targets["wechat_group_open_for_check"].target == 0
    deadline = record.first_deadline(case)
    assert targets["wechat_feed_lag"].target == 104 - deadline
    short = {m.name for m in record.moments(case, 40)}
    assert "qq_per_wechat_level" in short and "qq_per_wechat_change" not in short
    assert all(m.source for m in targets.values())


def test_record_moments_read_the_link_history(case):
    """A hand-made history: WeChat holds its Douyin and DingTalk blocks and QQ its
    Taobao block before the order (QQ's Douyin open; WeChat's Taobao, closed by Alibaba,
    is not a block the host made); QQ opens Taobao for the
    deadline check and blocks it again two weeks later; WeChat puts chat behind a
    warning page at the deadline and opens it plainly five weeks later, opens groups
    for the check and keeps them open, and opens the feed for the check's week only
    (which is not opening it: the lag is censored). A re-block of WeChat's chat later
    restarts its lags: a lag ends at an opening that holds to the run's end."""
    deadline = record.first_deadline(case)
    weeks, hosts, contents = 30, len(case.messaging), len(case.content)
    states = np.zeros((weeks, hosts, contents, 3), np.uint8)
    wechat, qq = 0, 1
    names = [c.name for c in case.content]
    taobao = names.index("Taobao")
    states[:deadline - 1, wechat, :, 0] = BLOCKED            # chat blocked until the check
    states[deadline - 1:deadline - 1 + 5, wechat, :, 0] = WARNED   # then a warning page
    states[:deadline - 2, wechat, :, 1] = BLOCKED            # groups open for the check
    states[:, wechat, :, 2] = BLOCKED                        # feed never, but for
    states[deadline - 2, wechat, :, 2] = OPEN                # the check's week alone
    states[:deadline - 2, qq, taobao, :] = BLOCKED           # QQ opens Taobao for the check
    states[deadline + 1:, qq, taobao, 0] = BLOCKED           # and blocks it again
    rows = [{"users_WeChat": 0.6, "users_QQ": 0.3, "users_DingTalk": 0.1}] * weeks
    states[:, ~np.array([[h.owner != c.owner for c in case.content]
                         for h in case.messaging])] = OPEN   # own links are always open
    values = record.measure(case, record.moments(case, weeks), rows, states)
    assert values["wechat_chat_warned_lag"] == 0 and values["wechat_chat_lag"] == 5
    assert values["wechat_group_lag"] == 0 and values["wechat_feed_lag"] == weeks - deadline
    assert values["wechat_group_open_for_check"] == 1
    assert values["wechat_feed_open_for_check"] == 1         # window dressing: open for it
    assert values["qq_opened_for_check"] == 1 and values["qq_reblocked"] == 1
    assert values["pre_order_blocks"] == pytest.approx(3 / 4)   # QQ's Douyin open
    assert values["pre_order_open"] == pytest.approx(1 / 2)     # WeChat blocks JD too
    states[:deadline - 2, qq, names.index("JD"), 1] = BLOCKED   # and QQ in groups
    values = record.measure(case, record.moments(case, weeks), rows, states)
    assert values["pre_order_open"] == pytest.approx(2 / 6)
    states[:deadline - 2, qq, names.index("JD"), 1] = WARNED    # a warning page is not open
    values = record.measure(case, record.moments(case, weeks), rows, states)
    assert values["pre_order_open"] == pytest.approx(2 / 6)
    assert values["qq_per_wechat_level"] == pytest.approx(0.5)
    states[deadline + 9:deadline + 11, wechat, names.index("Douyin"), 0] = BLOCKED
    values = record.measure(case, record.moments(case, weeks), rows, states)
    assert values["wechat_chat_lag"] == 12, "a re-block restarts the lag: open for good"
    assert values["wechat_chat_warned_lag"] == 12
    states[weeks - 1, wechat, names.index("Douyin"), 0] = BLOCKED
    values = record.measure(case, record.moments(case, weeks), rows, states)
    assert values["wechat_chat_lag"] == weeks - deadline       # blocked at the end: censored


class LinearProblem:
    """Moments linear in the search position plus replicate noise, for which the
    sandwich formula has a closed form."""

    def __init__(self, slope, noise):
        self.slope, self.noise = np.asarray(slope, float), np.asarray(noise, float)
        self.params = [calibration.Parameter(f"p{i}", (), 0.0, 1.0, "") for i in range(2)]

    def moments(self, u):
        return self.slope @ np.asarray(u) + self.noise


def test_standard_errors_follow_the_sandwich_formula():
    rng = np.random.default_rng(1)
    slope = np.array([[2.0, 0.0], [0.5, 1.0], [0.0, 3.0]])
    noise = rng.normal(size=(50, 3))
    weights = np.array([1.0, 2.0, 0.5])
    fitted = LinearProblem(slope, noise).moments(np.array([0.5, 0.5]))
    errors, jacobian = calibration.standard_errors(LinearProblem(slope, noise),
                                                   np.array([0.5, 0.5]), fitted, weights,
                                                   np.zeros(3))
    assert jacobian == pytest.approx(slope)
    W, omega = np.diag(weights), np.cov(noise, rowvar=False)
    bread = np.linalg.inv(slope.T @ W @ slope)
    V = (1 + 1 / 50) * bread @ slope.T @ W @ omega @ W @ slope @ bread
    assert errors == pytest.approx(np.sqrt(np.diag(V)))


def test_a_moment_that_never_varies_adds_its_floor_of_noise():
    """Without the floor in the middle term, a moment with no variance across
    replicates and a steep slope makes the standard error vanish; with it, the
    error is the sandwich's with Omega + diag(floor)."""
    slope = np.array([[50.0], [1.0]])
    noise = np.column_stack([np.zeros(40), np.random.default_rng(4).normal(size=40)])

    class Problem(LinearProblem):
        def __init__(self):
            self.slope, self.noise = slope, noise
            self.params = [calibration.Parameter("p", (), 0.0, 1.0, "")]
    floor = np.array([0.01, 0.01])
    weights = np.linalg.inv(np.cov(noise, rowvar=False) + np.diag(floor))
    u = np.array([0.5])
    bare, _ = calibration.standard_errors(Problem(), u, Problem().moments(u), weights,
                                          np.zeros(2))
    floored, _ = calibration.standard_errors(Problem(), u, Problem().moments(u), weights, floor)
    omega = np.cov(noise, rowvar=False) + np.diag(floor)
    bread = 1 / (slope.T @ weights @ slope)
    expected = np.sqrt((1 + 1 / 40) * bread @ slope.T @ weights @ omega @ weights @ slope @ bread)
    assert floored == pytest.approx(expected.ravel())
    assert floored[0] > 1.5 * bare[0]


def test_a_parameter_the_moments_do_not_move_is_not_identified():
    slope = np.array([[2.0, 0.0], [1.0, 0.0]])
    noise = np.random.default_rng(2).normal(size=(20, 2))
    errors, _ = calibration.standard_errors(LinearProblem(slope, noise), np.array([0.5, 0.5]),
                                            noise, np.ones(2), np.zeros(2))
    assert math.isfinite(errors[0]) and errors[1] == math.inf


def test_an_estimate_at_the_end_of_its_range_is_not_identified():
    """The sandwich assumes an interior minimum: at a bound the moments may ask for a
    value beyond the range, so a steep Jacobian there (a tiny standard error) must not
    count as identification."""
    slope = np.array([[2.0, 0.0], [0.5, 1.0], [0.0, 3.0]])
    noise = np.random.default_rng(3).normal(scale=0.01, size=(30, 3))
    weights = np.eye(3)
    rows = {}
    for u in (np.array([0.5, 0.5]), np.array([0.0, 0.5])):
        problem = LinearProblem(slope, noise)
        errors, jacobian = calibration.standard_errors(problem, u, problem.moments(u), weights,
                                                       np.zeros(3))
        rows[u[0]] = calibration.identify(problem, u, jacobian, weights, errors)["parameters"]
    assert rows[0.5][0]["identified"] and not rows[0.5][0]["at_bound"]
    assert rows[0.0][0]["at_bound"] and not rows[0.0][0]["identified"]
    assert rows[0.0][1]["identified"]


def test_a_flat_profile_unidentifies_a_parameter_whatever_its_standard_error():
    """The cohort fit's diversion: a finite-difference Jacobian across a jump gave
    s.e. 0.067, while its profile stays within the 95% threshold from 0.1 to 0.775."""
    params = [calibration.Parameter(name, (), 0.1, 1.0, "") for name in ("flat", "sharp")]
    objectives = {"flat": [8.12, 4.21, 4.55, 7.61, 9.83], "sharp": [171.6, 83.0, 4.21, 27.4, 253.2]}
    profiles = [{"parameter": name, "position": float(x), "objective": q}
                for name, qs in objectives.items()
                for x, q in zip(np.linspace(0, 1, 5), qs)]
    rows = [{"parameter": "flat", "identified": True}, {"parameter": "sharp", "identified": True}]
    calibration.bound_by_profiles(rows, profiles, np.array([0.25, 0.5]), params, 4.21, 10)
    flat, sharp = rows
    assert not flat["identified"] and sharp["identified"]
    assert (flat["profile_low"], flat["profile_high"]) == pytest.approx((0.1, 0.775))
    assert sharp["profile_low"] == sharp["profile_high"] == pytest.approx(0.55)


def test_hansen_j_is_the_optimally_weighted_objective_over_one_plus_one_over_s():
    test = calibration.hansen_j(11.0, replicates=10, moments=9, parameters=6)
    assert test["J"] == pytest.approx(10.0)
    assert test["degrees_of_freedom"] == 3
    assert test["p_value"] == pytest.approx(stats.chi2.sf(10.0, 3))
    assert math.isnan(calibration.hansen_j(1.0, 10, 6, 6)["p_value"])


def test_a_profile_that_finds_a_better_point_moves_the_fit_there():
    problem = LinearProblem(np.eye(2), np.zeros((1, 2)))
    target = np.array([0.75, 0.25])

    def loss(u):
        return float(((np.asarray(u) - target) ** 2).sum())
    u, rows = calibration.line_searches(problem, np.array([0.5, 0.5]), loss, rounds=3)
    assert u == pytest.approx(target)
    assert {row["fitted"] for row in rows if row["parameter"] == "p0"} == {0.75}
    stuck, _ = calibration.line_searches(problem, np.array([0.5, 0.5]), loss, rounds=0)
    assert stuck == pytest.approx([0.5, 0.5])


def test_the_profiles_are_drawn_around_the_estimate():
    """The estimate is the best point evaluated; where the last profiles found it, they
    are redrawn around it (otherwise their region bounds another point)."""
    problem = LinearProblem(np.eye(2), np.zeros((1, 2)))
    target = np.array([0.75, 0.25])

    def loss(u):
        return float(((np.asarray(u) - target) ** 2).sum())
    start, rows = calibration.line_searches(problem, np.array([0.5, 0.5]), loss, rounds=0)
    assert calibration.profiles_at(problem, start, rows, loss) is rows
    redrawn = calibration.profiles_at(problem, target, rows, loss)
    assert {row["fitted"] for row in redrawn if row["parameter"] == "p0"} == {0.75}
    assert {row["fitted"] for row in redrawn if row["parameter"] == "p1"} == {0.25}


def test_a_cohorts_size_is_fitted_with_the_others_and_the_starting_shares_following():
    """The cohort with tastes of its own is fitted by its size, its tastes held; setting
    the size rescales the other cohorts and moves the platforms' starting shares to the
    cohorts' mix, so the fitted case still loads."""
    case = load(SCENARIOS / "china_2021.toml")
    found = {p.name: p for p in calibration.parameters(case)}
    assert "share_qq_natives" in found and not any(n.startswith("taste_") for n in found)
    size = found["share_qq_natives"]
    natives = next(c for c in case.users.cohorts if c.name == "qq_natives")
    assert calibration.current_value(case, size.keys[0]) == pytest.approx(natives.share)
    moved = validation.derive(case, *size.settings(case, 0.45))
    shares = {c.name: c.share for c in moved.users.cohorts}
    assert shares["qq_natives"] == pytest.approx(0.45)
    assert sum(shares.values()) == pytest.approx(1.0)
    for platform in moved.messaging:
        mix = sum(c.share * c.initial_share.get(platform.name, 0.0)
                  for c in moved.users.cohorts)
        assert platform.initial_share == pytest.approx(mix)
    qq = next(p for p in moved.messaging if p.name == "QQ")
    assert qq.initial_share > next(p for p in case.messaging if p.name == "QQ").initial_share
    assert not any(p.name.startswith("share_") for p in calibration.parameters(
        load(HOMOGENEOUS)))


def run_cli(*args):
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, capture_output=True,
                          text=True)


def test_validate_writes_a_table_and_a_report(tmp_path):
    out = tmp_path / "validation"
    # checks that hold, for their mechanism, in the homogeneous world too (largest_blocks
    # does not there: WeChat blocks a few links with diversion off, ODD 8 gap 18)
    done = run_cli("validate", "--quick", "--quiet", "--check", "brock_durlauf_unique",
                   "--check", "learning", "--scenario", str(HOMOGENEOUS), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with open(out / "validation.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["check"] for r in rows} == {"brock_durlauf_unique", "learning"}
    assert all(r["passed"] == "1" and r["without_mechanism"] == "0" for r in rows)
    page = (out / "report.html").read_text()
    assert "brock_durlauf_unique" in page and "95% CI" in page and "plotly" in page
    assert "fails, as it should" in page
    assert_reads_plotlyjs_from_beside(out / "report.html")
    assert (out / "manifest.json").exists()


def test_validate_refuses_an_unknown_check(tmp_path):
    done = run_cli("validate", "--check", "no_such_check", "--out", str(tmp_path / "v"))
    assert done.returncode == 2 and "no_such_check" in done.stderr
    assert not (tmp_path / "v").exists()


def test_validate_refuses_a_scenario_no_selected_check_applies_to(tmp_path):
    done = run_cli("validate", "--quick", "--quiet", "--check", "record_sizes", "--scenario",
                   str(SCENARIOS / "no_regulation.toml"), "--out", str(tmp_path / "v"))
    assert done.returncode == 2 and "do not apply" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "v").exists()


def test_validate_exits_1_when_a_check_fails(tmp_path):
    """With no order at all, the record cannot be met: validate says so with status 1."""
    bad = tmp_path / "never_opens.toml"
    bad.write_text(f'base = "{HOMOGENEOUS}"\nname = "never_opens"\n'
                   '[overrides]\n"regulator.deadline_audit" = 0.0\n'
                   '"regulator.audit_probability" = 0.0\n')
    done = run_cli("validate", "--quick", "--quiet", "--check", "record_timing", "--scenario",
                   str(bad), "--out", str(tmp_path / "v"))
    assert done.returncode == 1
    assert "FAIL" in done.stdout


def test_calibrate_writes_a_fitted_scenario_that_loads(tmp_path):
    out = tmp_path / "calibration"
    # two replicates an evaluation and no profile round: the machinery, not a fit
    done = run_cli("calibrate", "--quick", "--quiet", "--replicates", "2", "--profile-rounds",
                   "0", "--scenario", str(HOMOGENEOUS), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with open(out / "fit.csv") as f:
        fit = list(csv.DictReader(f))
    assert [r["parameter"] for r in fit] == [p.name for p in calibration.parameters(
        load(HOMOGENEOUS))]
    for r in fit:
        assert float(r["low"]) <= float(r["estimate"]) <= float(r["high"])
    case = load(HOMOGENEOUS)
    fitted = load(out / "china_2021_homogeneous_fitted.toml")
    for r, parameter in zip(fit, calibration.parameters(case)):
        # An identified parameter takes its estimate; one the moments do not pin down
        # stays at the case's assumption.
        expected = float(r["estimate"]) if r["identified"] == "1" else None
        for key in parameter.keys:
            assert calibration.current_value(fitted, key) == pytest.approx(
                expected if expected is not None else calibration.current_value(case, key)), key
    assert fitted.name == "china_2021_homogeneous_fitted"
    assert_reads_plotlyjs_from_beside(out / "report.html")
    with open(out / "moments.csv") as f:
        moments = list(csv.DictReader(f))
    assert [r["moment"] for r in moments] == [m.name for m in record.moments(load(HOMOGENEOUS), 30)]
    # the estimate re-measured on streams the search never saw: QQ's size, a continuous
    # moment, differs from the search's measure of it
    ratio = next(r for r in moments if r["kind"] == "ratio")
    assert float(ratio["simulated_fresh"]) != float(ratio["simulated"])
    assert "on fresh streams" in (out / "report.html").read_text()
    with open(out / "identification.csv") as f:
        assert {r["parameter"] for r in csv.DictReader(f)} == {r["parameter"] for r in fit}
    text = (out / "china_2021_homogeneous_fitted.toml").read_text()
    for r in fit:
        held = "at the end of its range" if r["at_bound"] == "1" else "not pinned down"
        assert (f"# {r['parameter']}: {held}" in text) != (r["identified"] == "1")


def test_the_estimate_is_the_best_point_evaluated():
    """A profile can find a better point than the one it was drawn around: the estimate
    is the least objective among everything evaluated."""
    problem = LinearProblem(np.eye(2), np.zeros((3, 2)))
    problem.cache = {(0.5, 0.5): None, (0.2, 0.9): None, (0.7, 0.1): None}

    def loss(u):
        return float(((np.asarray(u) - [0.25, 0.8]) ** 2).sum())
    assert calibration.best_evaluated(problem, loss) == pytest.approx([0.2, 0.9])


def test_weights_invert_the_replicate_covariance_with_a_floor(case):
    """Enough replicates: the full covariance (floored) is inverted; too few for the
    number of moments: the variances alone; a moment that never varies gets the
    floor's weight, not an infinite one."""
    targets = record.moments(case, 30)
    rng = np.random.default_rng(3)
    many = rng.normal(size=(4 * len(targets), len(targets)))
    many[:, 1] += many[:, 0]                          # two correlated moments
    many[:, -1] = 1.0                                 # a 0/1 outcome that never varies
    floor = calibration.variance_floor(targets)
    full = calibration.optimal_weights(targets, many)
    assert full @ (np.cov(many, rowvar=False) + np.diag(floor)) == pytest.approx(
        np.eye(len(targets)), abs=1e-8)
    assert full[-1, -1] == pytest.approx(1 / floor[-1])
    few = calibration.optimal_weights(targets, many[:3])
    assert np.count_nonzero(few - np.diag(np.diag(few))) == 0
