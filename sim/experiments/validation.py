"""Validation: does the model reproduce what theory predicts and what happened, and
for the stated reason?

Each check is a plain function of the case scenario (china_2021, or a fitted
version of it) and an `Effort` (how many replicates, how large a grid), registered
in `CHECKS` with the mechanism it tests and an ablation: dotted overrides that switch
that mechanism off in every run of the check. `validate` runs each check twice, as
is and ablated; a check is evidence only if it passes as is and fails ablated (a
check that passes for another reason is a bug). It runs the experiments it needs,
with common random numbers wherever two scenarios are compared (replicate r of each
uses the same seed stream), and returns tidy rows of `Evidence`.
Counterfactuals are derived from the case with dotted overrides, so a fitted case
is validated against its own counterfactuals.
"""

from __future__ import annotations

import copy
import datetime
import math
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, stats

from sim.model.decisions import PenaltyOutlook, gain_weight, link_values
from sim.model.market import BLOCKED, OPEN, LinkPolicy
from sim.model.model import WalledGardenModel
from sim.experiments.record import (REBLOCK_WINDOW, USER_WINDOW, WECHAT, calendar_week, event,
                                    has_record, load_record, measure,
                                    moments as record_moments, record_links, users_at)
from sim.outputs.results import confidence_interval
from sim.experiments.runner import replicate_seed
from sim.scenario import LARGE, SURFACES, Scenario, apply_override, from_dict
from sim.model.strategies import STRATEGIES

ALPHA = 0.01          # significance level of every test


@dataclass(frozen=True)
class Effort:
    """How much simulation a validation run spends."""

    replicates: int
    size: int          # grid side of the case runs
    weeks: int         # weeks of the case runs
    mean_field_side: int
    mean_field_replicates: int
    brute_replicates: int


QUICK = Effort(replicates=16, size=20, weeks=60, mean_field_side=100, mean_field_replicates=1,
               brute_replicates=30)
FULL = Effort(replicates=30, size=40, weeks=104, mean_field_side=100, mean_field_replicates=4,
              brute_replicates=60)


@dataclass
class Evidence:
    """One row of the validation table."""

    check: str
    claim: str            # what theory or the record says
    source: str
    measure: str          # what the model value is
    expected: str         # the pass condition
    value: float
    ci_low: float
    ci_high: float
    n: int
    test: str
    p_value: float
    passed: bool

    def row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    name: str
    mechanism: str                           # what makes the check pass
    ablation: tuple[tuple[str, object], ...]  # overrides that switch the mechanism off
    without: str                             # the ablation, in words
    run: Callable[[Scenario, Effort], list[Evidence]]


CHECKS: dict[str, Check] = {}


def check(name: str, mechanism: str, *ablation: tuple[str, object], without: str = ""):
    def register(function):
        words = without or ", ".join(f"{k} = {v}" for k, v in ablation)
        CHECKS[name] = Check(name, mechanism, tuple(ablation), words, function)
        return function
    return register


# --- Running experiments ---------------------------------------------------------

_ablation: tuple[tuple[str, object], ...] | None = None


@contextmanager
def switched_off(ablation: tuple[tuple[str, object], ...]):
    """Every scenario simulated inside runs with these overrides (the ablation), and
    `ablating()` is true for checks whose mechanism is not a scenario key."""
    global _ablation
    before, _ablation = _ablation, tuple(ablation)
    try:
        yield
    finally:
        _ablation = before


def ablating() -> bool:
    return _ablation is not None


@dataclass
class Run:
    rows: list[dict]
    states: np.ndarray       # (weeks, hosts, contents, surfaces): rival links' states each week

    @property
    def blocked(self) -> np.ndarray:
        return self.states == BLOCKED

    @property
    def restricted(self) -> np.ndarray:
        """Blocked or behind a warning page."""
        return self.states != OPEN


RECENT_RUNS = 12
_recent: dict[tuple[str, int], list[Run]] = {}
_pool = None


@contextmanager
def in_parallel(workers: int):
    """Inside, `simulate` runs replicates on `workers` processes (one numba thread each,
    so the processes fill the cores without crowding them). Results are the same
    bytes: each replicate's stream depends only on its seed."""
    global _pool
    if workers <= 1:
        yield
        return
    from sim.experiments.workers import process_pool, stop

    with process_pool(workers, initializer=_one_thread) as pool:
        _pool = pool
        try:
            yield
        except KeyboardInterrupt:
            stop(pool)                  # end the replicates in flight now
            raise
        finally:
            _pool = None


def _one_thread() -> None:
    import numba

    numba.set_num_threads(1)


def simulate(scenario: Scenario, replicates: int) -> list[Run]:
    """Replicates 0..n-1 of a scenario (the same seed streams for every scenario), with
    the ablation in force applied.

    Several checks run the same scenario (the case, its no-order twin); runs are
    deterministic, so the last few are kept and shared (read them, do not change them).
    """
    scenario = derive(scenario, *(_ablation or ()))
    key = (repr(scenario), replicates)
    if key not in _recent:
        if len(_recent) >= RECENT_RUNS:
            del _recent[next(iter(_recent))]
        if _pool is None:
            _recent[key] = [run_with_links(scenario, r) for r in range(replicates)]
        else:
            _recent[key] = list(_pool.map(run_with_links, [scenario] * replicates,
                                          range(replicates)))
    return _recent[key]


def run_with_links(scenario: Scenario, replicate: int) -> Run:
    model = WalledGardenModel(scenario, rng=replicate_seed(scenario.seed, replicate))
    states = []
    for _ in range(scenario.steps):
        model.step()
        states.append(np.where(model.links.rival, model.links.state, OPEN))
    return Run(model.rows, np.array(states, dtype=np.uint8))


def derive(case: Scenario, *overrides: tuple[str, object]) -> Scenario:
    """The case with dotted keys overridden (as `--set` does)."""
    data = case.to_dict()
    for dotted, value in overrides:
        apply_override(data, dotted, value, case.source)
    return from_dict(data, case.source)


def sized(case: Scenario, effort: Effort, *overrides) -> Scenario:
    return derive(case, ("grid.width", effort.size), ("grid.height", effort.size),
                  ("steps", effort.weeks), *overrides)


def no_order(case: Scenario, effort: Effort) -> Scenario:
    return sized(case, effort, ("regulator.policy", "none"))


def open_start(case: Scenario, effort: Effort, *overrides) -> Scenario:
    """No order, and every rival link open at the start."""
    return sized(case, effort, ("regulator.policy", "none"), ("platforms.*.blocks", []),
                 ("platforms.*.warns", []), *overrides)


def open_world(case: Scenario, effort: Effort, *overrides) -> Scenario:
    """Every rival link open from the start, and kept open."""
    return open_start(case, effort, ("platforms.*.strategy", "static"), *overrides)


def largest(case: Scenario) -> int:
    return int(np.argmax([p.initial_share for p in case.messaging]))


def second_largest(case: Scenario) -> int:
    return int(np.argsort([p.initial_share for p in case.messaging])[-2])


def late(rows: list[dict], column: str) -> float:
    """Mean of a column over the second half of a run."""
    return float(np.mean([r[column] for r in rows[len(rows) // 2:]]))


def evidence(check: str, claim: str, source: str, measure: str, expected: str, values,
             test: str, p_value: float, passed: bool) -> Evidence:
    ci = confidence_interval(values)
    return Evidence(check, claim, source, measure, expected, ci["mean"], ci["ci_low"],
                    ci["ci_high"], ci["n"], test, float(p_value), bool(passed))


def paired_change(check: str, claim: str, source: str, measure: str, differences,
                  sign: int = 1) -> Evidence:
    """Evidence that paired differences are positive (sign=1) or negative (sign=-1)."""
    d = np.asarray(differences, float)
    direction = "greater" if sign > 0 else "less"
    p = 1.0 if not np.any(d) else stats.wilcoxon(d, alternative=direction).pvalue
    return evidence(check, claim, source, measure,
                    f"mean difference {'>' if sign > 0 else '<'} 0, Wilcoxon p < {ALPHA}", d,
                    "Wilcoxon signed-rank, paired by seed", p,
                    len(d) > 0 and sign * d.mean() > 0 and p < ALPHA)


def trend(check: str, claim: str, source: str, measure: str, levels, outcomes,
          sign: int) -> Evidence:
    """Evidence that an outcome rises (sign=1) or falls (sign=-1) with a level: Spearman's
    rank correlation over every (level, replicate) pair, replicates paired by seed."""
    x = np.repeat(np.asarray(levels, float), len(outcomes[0]))
    y = np.concatenate([np.asarray(o, float) for o in outcomes])
    if np.ptp(y) == 0:
        rho, p = 0.0, 1.0
    else:
        rho, p = stats.spearmanr(x, y)
        p = p / 2 if sign * rho > 0 else 1 - p / 2
    return Evidence(check, claim, source, measure,
                    f"Spearman rho {'>' if sign > 0 else '<'} 0, one-sided p < {ALPHA}",
                    float(rho), math.nan, math.nan, len(y), "Spearman rank correlation",
                    float(p), sign * rho > 0 and p < ALPHA)


# --- Theory: the mean-field limit -------------------------------------------------

def brock_durlauf_roots(beta: float, dq: float, J: float) -> list[float]:
    """Every solution of x = 1 / (1 + exp(-beta (dq + J (2x - 1)))) in (0, 1)."""
    def gap(x):
        return 1.0 / (1.0 + np.exp(-beta * (dq + J * (2 * x - 1)))) - x
    grid = np.linspace(1e-9, 1 - 1e-9, 2001)
    values = gap(grid)
    return [optimize.brentq(gap, a, b) for a, b, fa, fb in
            zip(grid, grid[1:], values, values[1:]) if fa * fb < 0]


def two_platform_world(beta: float, dq: float, J: float, start: float, side: int) -> Scenario:
    """Two messaging platforms, one each, nothing blocked, no friction or switching
    cost, everyone meets everyone: the model reduced to Brock & Durlauf's."""
    return from_dict({
        "name": "brock_durlauf", "steps": 160, "seed": 3,
        "grid": {"width": side, "height": side, "well_mixed": True, "rewire": 0.0},
        "users": {"share_rate": 0.0, "token_cost": 0.0, "revision_rate": 0.2,
                  "choice_intensity": beta, "network_weight": J, "switching_cost": 0.0,
                  "multihoming_cost": 0.0, "max_platforms": 1},
        "platforms": [
            {"name": "A", "owner": "a", "messaging": True, "initial_share": start, "quality": dq},
            {"name": "B", "owner": "b", "messaging": True, "initial_share": 1 - start,
             "quality": 0.0},
            {"name": "C", "owner": "c", "content": True, "content_weight": 1.0}],
    })


def long_run_shares(world: Scenario, replicates: int) -> list[float]:
    """Share on platform A over the last 60 weeks, one mean per replicate."""
    return [float(np.mean([r["users_A"] for r in run.rows[-60:]]))
            for run in simulate(world, replicates)]


def mean_field_evidence(name: str, claim: str, root: float, shares: list[float],
                        side: int) -> Evidence:
    """Pass if the model's long-run share is within sampling error of the root:
    four standard errors of a share among N users, plus the root's precision."""
    tolerance = 4 * math.sqrt(root * (1 - root) / side ** 2) + 1e-3
    gap = abs(float(np.mean(shares)) - root)
    return evidence(name, claim, "Brock & Durlauf (2001)", "long-run share on platform A",
                    f"within {tolerance:.4f} of the fixed point {root:.4f}", shares,
                    "distance to the root vs sampling error", math.nan, gap <= tolerance)


SOCIAL = "logit platform choice with social interactions (users.network_weight)"


@check("brock_durlauf_unique", SOCIAL, ("users.network_weight", 0.0))
def brock_durlauf_unique(case: Scenario, effort: Effort) -> list[Evidence]:
    beta, dq, J = 2.0, 0.2, 0.4                     # beta J < 1: one equilibrium
    (root,) = brock_durlauf_roots(beta, dq, J)
    return [mean_field_evidence(
        "brock_durlauf_unique",
        f"beta J < 1: a single equilibrium x = {root:.4f}, whatever the start ({start})",
        root, long_run_shares(two_platform_world(beta, dq, J, start, effort.mean_field_side),
                              effort.mean_field_replicates), effort.mean_field_side)
        for start in (0.1, 0.9)]


@check("brock_durlauf_bistable", SOCIAL, ("users.network_weight", 0.0))
def brock_durlauf_bistable(case: Scenario, effort: Effort) -> list[Evidence]:
    beta, dq, J = 2.0, 0.1, 1.5                     # beta J > 1: three fixed points
    low, middle, high = brock_durlauf_roots(beta, dq, J)
    side = effort.mean_field_side
    rows = []
    for start, root, label in ((0.8, high, "high"), (0.2, low, "low")):
        shares = long_run_shares(two_platform_world(beta, dq, J, start, side),
                                 effort.mean_field_replicates)
        rows.append(mean_field_evidence(
            "brock_durlauf_bistable",
            f"beta J > 1: starting at {start} selects the {label} equilibrium {root:.4f}",
            root, shares, side))
    for offset in (0.05, -0.05):
        start = middle + offset
        shares = long_run_shares(two_platform_world(beta, dq, J, start, side),
                                 effort.mean_field_replicates)
        away = [np.sign(offset) * (s - middle) for s in shares]
        rows.append(evidence(
            "brock_durlauf_bistable",
            f"the middle root {middle:.4f} is unstable: from {start:.3f} the share moves away",
            "Brock & Durlauf (2001)", "long-run distance from the middle root, outwards",
            "more than 0.2", away, "distance vs 0.2", math.nan, min(away) > 0.2))
    return rows


# --- Theory: who blocks ------------------------------------------------------------

DIVERSION = ("diversion of the views a block loses to services its owner holds "
             "(platforms[].diversion)")


@check("largest_blocks", DIVERSION, ("platforms.*.diversion", 0.0))
def largest_blocks(case: Scenario, effort: Effort) -> list[Evidence]:
    # from every link open, so that a block kept only because changing costs a menu cost
    # (or the start put it there) does not count
    scenario = open_start(case, effort)
    big = largest(case)
    small = int(np.argmin([p.initial_share for p in case.messaging]))
    differences = []
    for run in simulate(scenario, effort.replicates):
        late_weeks = run.restricted[len(run.states) // 2:]
        per_host = late_weeks.sum(axis=(2, 3)).mean(axis=0)
        differences.append(per_host[big] - per_host[small])
    names = case.messaging[big].name, case.messaging[small].name
    return [paired_change(
        "largest_blocks", "without an order and from every link open, the largest network, "
        "whose group holds services to divert to, restricts rival links (blocks or warns), "
        "and the smallest, whose group holds almost none, leaves them open (size alone is "
        "tested by blocking_by_size)",
        "Katz & Shapiro (1985); Crémer, Rey & Tirole (2000)",
        f"links restricted by {names[0]} minus by {names[1]} (second half, no order, "
        "all open at the start)",
        differences)]


RIVALS = 3
# a prior worth a million observations: no run's inspections move it
FROZEN_BELIEFS = LARGE


def size_world(case: Scenario, share: float, weeks: int, side: int) -> Scenario:
    """A largest network, with the case's largest platform's spec and strategy, facing
    smaller rivals alike but for size: they split the rest equally, each sells short
    video and leaves every link open; the largest network's group has a video service
    of its own, to which its blocks divert."""
    spec = case.messaging[largest(case)]
    large = asdict(spec)
    # no menu cost: in the theory tested a block is chosen on its gains alone (a cost
    # scaled by the owner's revenue would hold a large network's links where they start)
    large.update(name="Large", owner="L", initial_share=share, blocks=[], warns=[],
                 content=False, category="", stakes={}, adjustment_cost=0.0)
    visit = float(np.mean([c.revenue_per_visit for c in case.content]))
    rivals = [dict(large, name=f"Rival{i}", owner=f"R{i}", initial_share=(1 - share) / RIVALS,
                   strategy="static", content=True, content_weight=1.0, category="video",
                   revenue_per_visit=visit)
              for i in range(1, RIVALS + 1)]
    own = {"name": "LargeVideo", "owner": "L", "content": True, "content_weight": 1.0,
           "category": "video", "revenue_per_visit": visit}
    data = case.to_dict()
    data.update(name="size_world", steps=weeks, platforms=[large, *rivals, own])
    data["grid"] = dict(data["grid"], width=side, height=side)
    # users alike, as in the theory tested: the case's cohorts name platforms not here
    data["users"] = dict(data["users"], initial_multihoming=0.0, cohorts=[])
    data["regulator"] = dict(data["regulator"], policy="none")
    # the theory's market starts at the size tested: no burn-in to move it
    data["burn_in"] = dict(data["burn_in"], weeks=0)
    return from_dict(data, case.source)


@check("blocking_by_size", "network lock-in: a large host's users can hardly leave, so its "
       "blocks lose it fewer users for the visits they divert (users.network_weight)",
       ("users.network_weight", 0.0))
def blocking_by_size(case: Scenario, effort: Effort) -> list[Evidence]:
    """Propensity to restrict the rivals' content links, by relative size, in the
    market's first weeks."""
    sizes = np.round(np.linspace(0.1, 0.9, 9), 2)
    # restricted, blocked or behind a warning page: where the two cost users alike the
    # label is not the economics (ODD 7.4)
    propensity = [[run.restricted[3:, 0].mean() for run in
                   simulate(size_world(case, float(s), 12, 30), effort.replicates)]
                  for s in sizes]
    return [trend("blocking_by_size", "the propensity to restrict (block or warn) rises with relative size",
                  "Katz & Shapiro (1985); Crémer, Rey & Tirole (2000)",
                  "rank correlation of size and the share of links restricted", sizes,
                  propensity, sign=1)]


def compatibility_world(case: Scenario, share: float, compatible: bool) -> Scenario:
    """Malueg & Schwartz's market: a largest network and smaller rivals interconnected
    with each other (mutually compatible); the largest joins their interconnection or
    not. All alike but for size, users on one platform each, no link blocked."""
    data = size_world(case, share, weeks=52, side=30).to_dict()
    for platform in data["platforms"]:
        platform.update(strategy="static", interconnected=platform["messaging"] and (
            compatible or platform["name"] != "Large"))
    data["users"] = dict(data["users"], max_platforms=1)
    data["regulator"] = dict(data["regulator"], interoperability_reach=1.0)
    return from_dict(data, case.source)


@check("malueg_schwartz", SOCIAL, ("users.network_weight", 0.0))
def malueg_schwartz(case: Scenario, effort: Effort) -> list[Evidence]:
    """The largest network's gain from incompatibility (its mean share of users over a
    year, incompatible minus compatible, paired by seed) by its starting size."""
    sizes = np.round(np.linspace(0.2, 0.8, 7), 2)

    def share(run: Run) -> float:
        return float(np.mean([r["users_Large"] for r in run.rows]))

    gain = np.array([[share(alone) - share(joined) for alone, joined in zip(
        simulate(compatibility_world(case, float(s), False), effort.replicates),
        simulate(compatibility_world(case, float(s), True), effort.replicates))]
        for s in sizes])                                            # (sizes, replicates)
    rng = np.random.default_rng(case.seed)
    boot = [threshold(sizes, gain[:, rng.integers(0, gain.shape[1], gain.shape[1])].mean(axis=1),
                      level=0.0) for _ in range(999)]
    estimate = threshold(sizes, gain.mean(axis=1), level=0.0)
    low, high = np.nanpercentile(boot, [2.5, 97.5]) if np.isfinite(boot).any() else (
        math.nan, math.nan)
    return [Evidence(
        "malueg_schwartz", "a largest firm facing mutually compatible rivals prefers "
        "incompatibility only above about a 50% share (above 50% is necessary)",
        "Malueg & Schwartz (2006)",
        "size above which incompatibility gains the largest network users "
        "(bootstrap 95% CI)", "between 0.45 and 0.65", estimate, float(low), float(high),
        gain.shape[1], "bootstrap over replicates", math.nan, 0.45 <= estimate <= 0.65)]


def threshold(sizes: np.ndarray, curve: np.ndarray, level: float) -> float:
    """First size at which the curve reaches the level (linear interpolation)."""
    above = np.flatnonzero(curve >= level)
    if len(above) == 0 or above[0] == 0 or np.ptp(curve) == 0:
        return math.nan if len(above) == 0 or np.ptp(curve) == 0 else float(sizes[0])
    i = above[0]
    return float(np.interp(level, curve[i - 1:i + 1], sizes[i - 1:i + 1]))


# --- The platforms' own economics ------------------------------------------------------

def brute_world(case: Scenario, *overrides) -> Scenario:
    """A small market to play a link's counterfactual out in: static platforms, no
    order, every link open, settled for 80 weeks (the platforms' traffic estimate is a
    static expectation, so the market must be near its own steady state)."""
    return derive(case, ("grid.width", 20), ("grid.height", 20), ("steps", 400),
                  ("engine", "array"), ("regulator.policy", "none"), ("burn_in.weeks", 0),
                  ("platforms.*.strategy", "static"), ("platforms.*.blocks", []),
                  ("platforms.*.warns", []), ("platforms.*.planning_horizon", 12), *overrides)


def counterfactual_pairs(world: Scenario, host: int, content: str, surface: int,
                         replicates: int, warm: int = 80, held: bool = False
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The host's estimate of blocking one link for its planning horizon H, against the
    owner's discounted revenue difference when the model is played out both ways from
    the same state and random stream (blocked minus open, every platform's policy then
    held), one pair per replicate; `held`: the link was blocked through the warm-up, so
    the users settled around the block (keeping it against opening it)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))   # deep copies of a model
    spec = world.messaging[host]
    horizon, owner = spec.planning_horizon, world.owners.index(spec.owner)
    c = [p.name for p in world.content].index(content)
    estimates, outcomes = [], []
    for replicate in range(replicates):
        model = WalledGardenModel(world, rng=replicate_seed(world.seed + 77, replicate))
        if held:
            model.links.set(host, c, surface, BLOCKED)
        for _ in range(warm):
            model.step()
        values = link_values(model, host)
        i = values.links.index((c, surface))
        users = 0.0 if ablating() else values.users(horizon)[i, BLOCKED]
        estimates.append(values.diverted(horizon)[i, BLOCKED] + users)
        for platform in model.platforms:
            platform.strategy = STRATEGIES["static"](platform)
        blocked, opened = copy.deepcopy(model), copy.deepcopy(model)
        blocked.links.set(host, c, surface, BLOCKED)
        opened.links.set(host, c, surface, OPEN)
        for _ in range(horizon):
            blocked.step()
            opened.step()
        gap = blocked.revenue_history[-horizon:, owner] - opened.revenue_history[-horizon:, owner]
        outcomes.append(float(sum(spec.discount ** (u + 1) * g for u, g in enumerate(gap))))
    return np.array(estimates), np.array(outcomes)


HEAVY_SHARERS = [{"name": "heavy", "share": 0.1, "sharing": 9.1},
                 {"name": "light", "share": 0.9, "sharing": 0.1}]
RESPONSIVE_USERS = (("platforms.*.diversion", 0.0), ("users.token_cost", 1.0),
                    ("users.choice_intensity", 1.5), ("users.network_weight", 1.0),
                    ("users.revision_rate", 0.2))


@check("counterfactual", "the platform's estimate counts the visits diverted and the users "
       "(with their own and their views' revenue) lost to a block, from the users' logit "
       "choice probabilities", without="the estimate without its users' term")
def counterfactual(case: Scenario, effort: Effort) -> list[Evidence]:
    """The decision rule's estimate of blocking a link against a brute-force run of the
    model with the link blocked and open; ablated, the estimate leaves out the users."""
    wechat, second = largest(case), second_largest(case)
    group, chat = SURFACES.index("group"), SURFACES.index("chat")
    worlds = {
        "a link whose value is diversion (WeChat, Douyin, groups)":
            (brute_world(case), wechat, "Douyin", group),
        "a link whose value is users (no diversion, responsive users; WeChat, Taobao, chat)":
            (brute_world(case, *RESPONSIVE_USERS), wechat, "Taobao", chat),
        "a link whose value is users who differ (as above, a tenth of them sharing 9.1 "
        "times the mean and the rest 0.1 times)":
            (brute_world(case, *RESPONSIVE_USERS, ("users.cohorts", HEAVY_SHARERS)),
             wechat, "Taobao", chat),
        "the second network's link whose value is diversion (its users a cohort of their "
        "own in the case; Douyin, groups)":
            (brute_world(case), second, "Douyin", group),
    }
    return played_out("counterfactual", {f"blocking {label}": world
                                         for label, world in worlds.items()}, effort)


@check("counterfactual_held", "the platform's estimate of keeping a block it holds: the "
       "users' shift measured from the link open, around a market settled with it blocked",
       without="the estimate without its users' term")
def counterfactual_held(case: Scenario, effort: Effort) -> list[Evidence]:
    """As `counterfactual`, for a link blocked since the warm-up began (keeping it blocked
    against opening it): the users' term is first order around the market as it is, which
    here has settled around the block (ODD 8, gap 12)."""
    wechat = largest(case)
    worlds = {
        "keeping a held block whose value is diversion (WeChat, Douyin, groups)":
            (brute_world(case), wechat, "Douyin", SURFACES.index("group")),
        "keeping a held block whose value is users (no diversion, responsive users; "
        "WeChat, Taobao, chat)":
            (brute_world(case, *RESPONSIVE_USERS), wechat, "Taobao", SURFACES.index("chat")),
    }
    return played_out("counterfactual_held", worlds, effort, held=True)


def played_out(check: str, worlds: dict, effort: Effort, held: bool = False) -> list[Evidence]:
    """One `agreement` row per labelled (world, host, content, surface)."""
    rows = []
    for label, (world, host, content, surface) in worlds.items():
        estimate, played = counterfactual_pairs(world, host, content, surface,
                                                effort.brute_replicates, held=held)
        rows.append(agreement(check, label, estimate, played))
    return rows


ROUTINE_AUDITS = 0.4     # a week, in the penalty checks' world: decisions often enough to climb


def penalty_world(case: Scenario) -> Scenario:
    """A small market under the order, weeks past its deadline, with fines the only
    penalty (the measures' costs are users and links, which the users' checks above
    cover), no later penalties, and each host believing the regulator's true chance of
    an audit."""
    return brute_world(
        case, ("grid.width", 12), ("grid.height", 12), ("regulator.policy", "order"),
        ("regulator.announce_step", 1), ("regulator.deadline_step", 2),
        ("regulator.audit_probability", ROUTINE_AUDITS), ("regulator.reblock_audit", 0.0),
        ("regulator.naming", False), ("regulator.suspend_registrations", False),
        ("regulator.forced_open", False), ("platforms.*.audit_belief", ROUTINE_AUDITS),
        ("platforms.*.belief_weight", 1e6), ("platforms.*.foresee_escalation", False))


# the fines paid are noisy (a decision in four weeks of ten): a row plays out this many
# audit streams per brute-force replicate, from each of WARM_STATES markets
PENALTY_STREAMS, WARM_STATES = 20, 3
_played: dict[tuple, np.ndarray] = {}


def penalty_pairs(world: Scenario, host: int, surfaces: tuple[int, ...], sibling: int | None,
                  streams: int, estimate_of=lambda outlook: outlook
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The host's expected penalty for holding its Douyin links blocked on `surfaces`
    through its review period, against the fines its owner pays in the model played out
    with them blocked less with them open (`sibling`: another host of the owner holds a
    blocked chat link in both), one pair per audit stream, from a few warmed markets.
    `estimate_of` turns the host's outlook into the one estimated with (an ablation);
    the played-out fines do not depend on it and are computed once."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))   # deep copies of a model
    spec = world.messaging[host]
    owner, period = world.owners.index(spec.owner), spec.review_period
    douyin = [p.name for p in world.content].index("Douyin")
    counts = np.zeros((1, len(SURFACES)), int)
    counts[0, list(surfaces)] = 1
    key = (repr(world), host, surfaces, sibling, streams)
    estimates, played = [], []
    for warm in range(WARM_STATES):
        lawful = WalledGardenModel(world, rng=replicate_seed(world.seed + 91, warm))
        for _ in range(20):
            lawful.step()
        for platform in lawful.platforms:
            platform.strategy = STRATEGIES["static"](platform)
        if sibling is not None:
            lawful.links.set(sibling, douyin, SURFACES.index("chat"), BLOCKED)
        violating = copy.deepcopy(lawful)
        for surface in surfaces:
            violating.links.set(host, douyin, surface, BLOCKED)
        values = link_values(violating, host)
        outlook = estimate_of(PenaltyOutlook(violating, host, period, values))
        blocked = np.array([c == douyin and s in surfaces for c, s in values.links])
        complained = outlook.complained(
            blocked[None], np.array([s for _, s in values.links], int),
            values.harm[np.arange(len(values.links)), values.now][None])
        estimates += [float(outlook.expected(counts, np.zeros(1),
                                             complained=complained)[0])] * streams
        if key in _played:
            continue
        for stream in range(streams):
            fines = []
            for start in (violating, lawful):
                model = copy.deepcopy(start)
                model.rng = np.random.default_rng(replicate_seed(world.seed + 92,
                                                                 warm * streams + stream))
                paid = 0.0
                for week in range(period):
                    model.step()
                    paid += spec.discount ** (week + 1) * model.regulator.fines[owner]
                fines.append(paid)
            played.append(fines[0] - fines[1])
    if key not in _played:
        _played[key] = np.array(played)
    return np.array(estimates), _played[key]


def penalty_rows(check: str, case: Scenario, effort: Effort, rows: dict, estimate_of,
                 world: Scenario | None = None) -> list[Evidence]:
    world = world or penalty_world(case)
    wechat = largest(case)
    found = []
    for label, (surfaces, sibling) in rows.items():
        if sibling is not None and world.messaging[sibling].owner != world.messaging[
                wechat].owner:
            continue
        estimate, played = penalty_pairs(world, wechat, surfaces, sibling,
                                         PENALTY_STREAMS * effort.brute_replicates // WARM_STATES,
                                         estimate_of if ablating() else lambda o: o)
        found.append(agreement(check, f"the expected penalty of {label}", estimate, played,
                               "the owner's discounted fines over the review period, "
                               "violating minus lawful"))
    return found


def every_violation_found(outlook: PenaltyOutlook) -> PenaltyOutlook:
    outlook = copy.copy(outlook)
    outlook.visibility = np.ones_like(outlook.visibility)
    return outlook


def one_rung_alone(outlook: PenaltyOutlook) -> PenaltyOutlook:
    outlook = copy.deepcopy(outlook)
    outlook.own.costs[:] = outlook.own.costs[0]
    outlook.siblings = []
    return outlook


@check("penalty_detection", "the host's penalty outlook finds a violating link with its "
       "surface's visibility (regulator.visibility): a blocked group or feed link is found "
       "less often than a blocked chat link",
       without="the estimate with every violating link found")
def penalty_detection(case: Scenario, effort: Effort) -> list[Evidence]:
    """The penalty side of a link decision against the regulator played out, for links
    whose detection is uncertain: where a host believes the true chance of an audit, its
    expected penalty is the fines its owner then pays."""
    group, feed = SURFACES.index("group"), SURFACES.index("feed")
    return penalty_rows("penalty_detection", case, effort, {
        "violating on groups and the feed (WeChat, Douyin)": ((group, feed), None)},
        every_violation_found)


# users' complaints in the penalty checks' world, where a violating Douyin group link
# does users harm of the order of 100 a week per thousand users: reports in about one
# week of three
WORLD_COMPLAINTS = 0.002


def no_complaints_foreseen(outlook: PenaltyOutlook) -> PenaltyOutlook:
    outlook = copy.copy(outlook)
    outlook.complaints = 0.0
    return outlook


@check("penalty_complaints", "the host's penalty outlook foresees users' complaints "
       "(regulator.complaints): each week a violating link is reported, audited or not, "
       "with chance 1 - exp(-complaints x the harm it does users)",
       without="the estimate with complaints left out")
def penalty_complaints(case: Scenario, effort: Effort) -> list[Evidence]:
    """As `penalty_detection`, in a world where only complaints find violations (no
    routine audit, nothing visible to an inspector, platforms believing so)."""
    world = derive(penalty_world(case), ("regulator.complaints", WORLD_COMPLAINTS),
                   ("regulator.audit_probability", 0.0), ("platforms.*.audit_belief", 0.0),
                   ("regulator.visibility.chat", 0.0), ("regulator.visibility.group", 0.0),
                   ("regulator.visibility.feed", 0.0))
    group, feed = SURFACES.index("group"), SURFACES.index("feed")
    return penalty_rows("penalty_complaints", case, effort, {
        "violating on groups and the feed (WeChat, Douyin), found by complaints alone":
            ((group, feed), None)}, no_complaints_foreseen, world)


@check("penalty_ladder", "the host's penalty outlook: one decision per audit, each fined at "
       "its group's rung of the ladder (x fine_escalation for every earlier decision, its "
       "sibling hosts' included)",
       without="the estimate with every decision fined at the starting rung and the "
       "siblings' violations left out")
def penalty_ladder(case: Scenario, effort: Effort) -> list[Evidence]:
    """As `penalty_detection`, for links an audit surely finds, where what a decision
    costs depends on the decisions before it: the host's own, and its siblings'."""
    chat, group = SURFACES.index("chat"), SURFACES.index("group")
    return penalty_rows("penalty_ladder", case, effort, {
        "violating on chat and groups (WeChat, Douyin) alone": ((chat, group), None),
        "violating on chat and groups beside a sibling host of its owner that violates "
        "too (QQ, Douyin, chat)": ((chat, group), second_largest(case))},
        one_rung_alone)


AGREEMENT_MARGIN = 0.25     # of the played-out value (an assumption): the tolerance of a decision rule


def agreement(check: str, label: str, estimate: np.ndarray, played: np.ndarray,
              quantity: str = "the owner's discounted revenue over the horizon, blocked "
              "minus open") -> Evidence:
    """Evidence that the estimate is what the model plays out, paired by replicate (same
    state, same stream): the 99% interval of the mean difference, estimate minus played,
    lies within ±25% of the played-out mean (an equivalence test, so noise fails it
    rather than passing it)."""
    differences = np.asarray(estimate, float) - np.asarray(played, float)
    n = len(differences)
    mean_played = float(np.mean(played))
    half = (float(stats.t.ppf(0.995, n - 1) * differences.std(ddof=1) / math.sqrt(n))
            if n > 1 else math.inf)
    low, high = differences.mean() - half, differences.mean() + half
    margin = AGREEMENT_MARGIN * abs(mean_played)
    return Evidence(
        check, f"the host's estimate of {label} is what the model plays out",
        "ODD 7.4; McKelvey & Palfrey (1995)",
        f"estimate minus played out: {quantity}, paired by replicate (99% CI; played "
        f"out {mean_played:.4g}, estimate "
        f"{np.mean(estimate):.4g})", f"99% CI within ±{AGREEMENT_MARGIN:.0%} of the "
        "played-out value", float(differences.mean()), float(low), float(high), n,
        "paired t interval (equivalence)", math.nan,
        margin > 0 and -margin <= low and high <= margin)


@check("starting_equilibrium", "the platforms' best response to the case's economics "
       "(diversion against users lost), settled with the users before the order",
       ("platforms.*.diversion", 0.0))
def starting_equilibrium(case: Scenario, effort: Effort) -> list[Evidence]:
    """The blocks in force before the order as the market's own rest: for a case with
    the record, the share of the record's blocks held in the week before the
    announcement (a calibration target); otherwise the share of the case's starting
    link states kept over the weeks before it."""
    if has_record(case):
        return record_rows(case, effort, ("blocks",))[0] + [restricted_from_open(case, effort)]
    scenario = no_order(case, effort)
    links = LinkPolicy(case)
    weeks = max(case.regulator.announce_step - 1, 1)
    kept = [float((run.states[:weeks, links.rival] == links.state[links.rival][None]).mean())
            for run in simulate(scenario, effort.replicates)]
    return [evidence(
        "starting_equilibrium", "the starting blocks are close to an equilibrium of the "
        "model's own economics before the order", "ODD 7.4",
        f"share of the starting link states kept over weeks 1-{weeks} (no order)",
        "at least 0.8", kept, "mean", math.nan, np.mean(kept) >= 0.8)]


def restricted_from_open(case: Scenario, effort: Effort) -> Evidence:
    """The record's blocked links as an outcome, whatever the start: from every link open,
    the share of them restricted (blocked or behind a warning page: where the two cost
    users alike, with a menu cost, the start would decide the label) in the week before
    the announcement."""
    start = sized(case, effort, ("platforms.*.blocks", []), ("platforms.*.warns", []))
    pairs = [([p.name for p in case.messaging].index(e.platform),
              [c.name for c in case.content].index(e.content))
             for e in record_links(case, load_record())]
    week = case.regulator.announce_step - 1
    shares = [float(np.mean([run.states[week - 1, h, c] != OPEN for h, c in pairs]))
              for run in simulate(start, effort.replicates)]
    return evidence(
        "starting_equilibrium", "from every link open, the record's blocked links (every "
        "surface) are restricted again before the order: blocked or behind a warning page",
        f"{RECORD_FILE_NAME}: the record's blocks", "share of the record's links not open "
        f"in week {week}, the market started with every link open", "95% CI overlaps 1 ± 0.25",
        shares, "t interval", math.nan,
        confidence_interval(shares)["ci_high"] >= 1 - RECORD_TOLERANCE["blocks"])


@check("incentives", "the platform's counterfactual: diversion against users lost "
       "(best_response)", ("platforms.*.strategy", "static"))
def incentives(case: Scenario, effort: Effort) -> list[Evidence]:
    """Comparative statics of blocking without an order, replicates paired by seed."""
    def blocked(*overrides):
        return [float(run.blocked.sum(axis=(1, 2, 3)).mean())
                for run in simulate(sized(case, effort, ("regulator.policy", "none"),
                                          *overrides), effort.replicates // 2)]
    diversions = (0.1, 0.4, 0.7, 1.0)
    revenues = (0.2, 0.5, 1.0, 2.0)
    source = "Crémer, Rey & Tirole (2000); ODD 7.4"
    return [
        trend("incentives", "blocking rises with the value of diverted visits", source,
              "links blocked (mean over the run) against platforms' diversion", diversions,
              [blocked(("platforms.*.diversion", d)) for d in diversions], sign=1),
        trend("incentives", "blocking falls with what a user brings the host", source,
              "links blocked against messaging revenue per user", revenues,
              [blocked(*((f"platforms.{p.name}.revenue_per_user", r) for p in case.messaging))
               for r in revenues], sign=-1),
    ]


# --- The regulator's side -----------------------------------------------------------------

PENALTIES = ("expected penalties in the platforms' decisions: believed audits x the "
             "regulator's decision and measures")
IGNORE_PENALTIES = (("platforms.*.audit_belief", 0.0), ("platforms.*.deadline_credibility", 0.0),
                    ("platforms.*.belief_weight", FROZEN_BELIEFS))


def inspected(run: Run, week: int) -> np.ndarray:
    """Rival links' states as the audits of `week` find them: the policy its week began
    with, set by the reviews of the week before (week w's reviews are `states[w - 1]`)."""
    return run.states[week - 2]


def after_check(run: Run, deadline: int) -> np.ndarray:
    """Rival links' states from the reviews of the deadline's week (right after its
    check) on."""
    return run.states[deadline - 1:]


CREDIBLE_DEADLINE = 12


def credible(case: Scenario, effort: Effort) -> Scenario:
    """The case's order with certain audits, a fine far above any diversion gain, no
    forced opening, and platforms that believe the regulator (rational expectations)."""
    return sized(case, effort, ("regulator.policy", "order"), ("regulator.phases", []),
                 ("regulator.announce_step", 10),
                 ("regulator.deadline_step", CREDIBLE_DEADLINE),
                 ("regulator.audit_probability", 1.0), ("regulator.deadline_audit", 1.0),
                 ("regulator.fine", 5.0), ("regulator.fine_kind", "revenue_share"),
                 ("regulator.fine_cap", 10.0), ("regulator.forced_open", False),
                 ("platforms.*.audit_belief", 1.0), ("platforms.*.deadline_credibility", 1.0))


@check("credible_deadline", PENALTIES, *IGNORE_PENALTIES)
def credible_deadline(case: Scenario, effort: Effort) -> list[Evidence]:
    runs = simulate(credible(case, effort), effort.replicates)
    before = [np.mean([r["friction_cost"] for r in run.rows[:9]]) for run in runs]
    after = [np.mean([r["friction_cost"] for r in run.rows[12:]]) for run in runs]
    violating = [int((after_check(run, CREDIBLE_DEADLINE) != OPEN).sum()) for run in runs]
    source = "CASE.md fact 2; Becker (1968) deterrence"
    return [
        evidence("credible_deadline", "a deadline with certain enforcement after it (weekly "
                 "audits, a fine far above any gain, both believed) opens every link by the "
                 "week after it, and they stay open", source,
                 "rival links blocked or behind a warning page, summed over the weeks from "
                 "the deadline", "0 in every replicate", violating, "count", math.nan,
                 max(violating) == 0),
        paired_change("credible_deadline", "friction collapses after the deadline", source,
                      "token and warning costs per week after minus before the deadline",
                      np.subtract(after, before), sign=-1),
    ]


def deadline_belief_runs(case: Scenario, effort: Effort, credibility: float) -> list[Run]:
    """The case's order with every platform believing the deadline's check comes with
    this probability, all else as in the case."""
    return simulate(sized(case, effort, ("regulator.policy", "order"), ("regulator.phases", []),
                          ("platforms.*.deadline_credibility", credibility)), effort.replicates)


@check("believed_check", "the platforms' belief that the deadline's check comes, in their "
       "expected penalty", ("regulator.deadline_audit", 0.0))
def believed_check(case: Scenario, effort: Effort) -> list[Evidence]:
    """The deadline's check believed (deadline_credibility 1) against doubted (0),
    replicates paired by seed. Switched off, there is no check to believe (the belief's
    prior is credibility x deadline_audit): the contrast itself goes."""
    deadline = case.regulator.deadline_step
    believed, doubted = (deadline_belief_runs(case, effort, c) for c in (1.0, 0.0))

    def violating(run):
        return float((inspected(run, deadline) != OPEN).sum())
    return [paired_change(
        "believed_check", "a deadline check the platforms believe finds fewer links "
        "violating", "Becker (1968); CASE.md timeline (17 Sep 2021)", "rival links blocked "
        f"or behind a warning page as the check of week {deadline} finds them, believed "
        "minus doubted", [violating(b) - violating(d) for b, d in zip(believed, doubted)],
        sign=-1)]


@check("window_dressing", "a one-off check: what is opened for it alone closes again when no "
       "routine enforcement follows", ("regulator.audit_probability", 1.0),
       ("platforms.*.audit_belief", 1.0), ("platforms.*.belief_weight", FROZEN_BELIEFS),
       without="routine audits after the check certain and believed (audit_probability = 1, "
               "platforms.*.audit_belief = 1, beliefs frozen)")
def window_dressing(case: Scenario, effort: Effort) -> list[Evidence]:
    """Links restricted the week before the deadline's check, open for it, and restricted
    again within four weeks of it, with the check believed against doubted (the flicker
    of links a doubted check leaves is the baseline), replicates paired by seed."""
    deadline = case.regulator.deadline_step
    believed, doubted = (deadline_belief_runs(case, effort, c) for c in (1.0, 0.0))

    def dressed(run):
        before = inspected(run, deadline - 1) != OPEN
        for_check = inspected(run, deadline) == OPEN
        after = (after_check(run, deadline)[:REBLOCK_WINDOW] != OPEN).any(axis=0)
        return float((before & for_check & after).sum())
    return [paired_change(
        "window_dressing", "links opened for a believed check are restricted again within "
        "four weeks", "CASE.md timeline (QQ, 17 Sep 2021: opened in the morning, re-blocked "
        "the same day)", "rival links restricted before the deadline's check, open for it "
        "and restricted again within four weeks, believed minus doubted",
        [dressed(b) - dressed(d) for b, d in zip(believed, doubted)])]


@check("deterrence", PENALTIES, *IGNORE_PENALTIES)
def deterrence(case: Scenario, effort: Effort) -> list[Evidence]:
    """Links left blocked after the deadline against the fine and the believed audit
    rate, replicates paired by seed."""
    def violating(*overrides):
        return [float((after_check(run, case.regulator.deadline_step) != OPEN).sum(
                    axis=(1, 2, 3)).mean())
                for run in simulate(sized(case, effort, ("regulator.forced_open", False),
                                          *overrides), effort.replicates // 2)]
    fines = (0.0, 0.02, 0.05, 0.1)
    beliefs = (0.001, 0.01, 0.05, 0.2)
    scrutiny = (0.0, 0.2, 0.5, 1.0)
    source = "Becker (1968); ODD 7.5"
    return [
        trend("deterrence", "a larger fine leaves fewer links violating after the deadline",
              source, "violating links per week after the deadline against the fine",
              fines, [violating(("regulator.fine", f), ("regulator.fine_cap", 10.0))
                      for f in fines], sign=-1),
        trend("deterrence", "platforms that expect more audits leave fewer links violating",
              source, "violating links per week after the deadline against audit_belief",
              beliefs, [violating(("platforms.*.audit_belief", b)) for b in beliefs],
              sign=-1),
        trend("deterrence", "when re-blocks are noticed and bring audits, fewer links are "
              "blocked again after the deadline check", source,
              "violating links per week after the deadline against reblock_audit", scrutiny,
              [violating(("regulator.reblock_audit", r)) for r in scrutiny], sign=-1),
    ]


@check("weak_audits_reblock", "post-deadline enforcement: audits bring decisions (fines, "
       "then the ladder up to forced opening) that platforms expect and meet",
       ("regulator.fine", 0.0), ("regulator.naming", False),
       ("regulator.suspend_registrations", False), ("regulator.forced_open", False))
def weak_audits_reblock(case: Scenario, effort: Effort) -> list[Evidence]:
    def reblocks(audit_probability):
        scenario = sized(case, effort, ("regulator.policy", "order"),
                         ("regulator.audit_probability", audit_probability))
        return [sum(r["reblocks"] for r in run.rows)
                for run in simulate(scenario, effort.replicates)]
    return [paired_change(
        "weak_audits_reblock", "with little monitoring after the deadline blitz, platforms "
        "that opened block again", "CASE.md fact 3 (QQ, 17 Sep 2021)",
        "re-blocks with no routine audits minus with audits at 0.3 a week",
        np.subtract(reblocks(0.0), reblocks(0.3)))]


@check("belief_learning", "Bayesian beliefs learn the audit rate from every inspection "
       "seen", ("platforms.*.belief_weight", FROZEN_BELIEFS),
       without="beliefs frozen at their priors (belief_weight = 1e6)")
def belief_learning(case: Scenario, effort: Effort) -> list[Evidence]:
    """Platforms that start out expecting few audits meet a regulator that audits 0.3 a
    week after the deadline: learning it, they keep fewer links violating than
    platforms whose beliefs stay at the prior (paired by seed)."""
    def violating(weight):
        scenario = sized(case, effort, ("regulator.policy", "order"),
                         ("regulator.audit_probability", 0.3),
                         ("regulator.forced_open", False), ("platforms.*.belief_weight", weight))
        deadline = case.regulator.deadline_step
        return [float((after_check(run, deadline) != OPEN).sum(axis=(1, 2, 3)).mean())
                for run in simulate(scenario, effort.replicates)]
    weight = case.messaging[largest(case)].belief_weight
    return [paired_change(
        "belief_learning", "platforms that see frequent audits come to expect them and "
        "violate less", "Becker (1968); ODD 7.5",
        f"violating links per week after the deadline, beliefs learning (weight {weight:g}) "
        "minus frozen", np.subtract(violating(weight), violating(FROZEN_BELIEFS)), sign=-1)]


def open_week(states: np.ndarray, host: int, surface: int, since: int = 0) -> float:
    """First week (from `since`) after which every rival link of the host on the
    surface is plainly open (no block, no warning page); infinity if never."""
    closed = (states[:, host, :, surface] != OPEN).any(axis=1)
    for week in range(since, len(closed)):
        if not closed[week]:
            return float(week + 1)
    return math.inf


@check("surface_order", "surfaces differ: a chat view is worth more to its user and a "
       "blocked chat is the likeliest to be found (users.surface_value, regulator.visibility)",
       ("users.surface_value", {"chat": 1.0, "group": 1.0, "feed": 1.0}),
       ("regulator.visibility", {"chat": 1.0, "group": 1.0, "feed": 1.0}))
def surface_order(case: Scenario, effort: Effort) -> list[Evidence]:
    """With one deadline for every surface, the share of the weeks after it in which the
    largest network keeps some link of each surface blocked or behind a warning page.
    Which surface opens first is seen only where both were closed before the order: a
    replicate in which the first was open all along says nothing of the order of opening,
    and would make the difference largest with no order at all."""
    host = largest(case)
    deadline, before = case.regulator.deadline_step, case.regulator.announce_step - 2
    runs = simulate(sized(case, effort), effort.replicates)
    closed = np.array([run.restricted[deadline:, host].any(axis=1).mean(axis=0) for run in runs])
    held = np.array([run.restricted[before, host].any(axis=0) for run in runs])
    name = case.messaging[host].name
    source = "CASE.md fact 4 (WeChat, Sep-Nov 2021)"

    def opens_first(first: int, then: int, claim: str) -> Evidence:
        both = held[:, first] & held[:, then]
        return paired_change(
            "surface_order", claim, source,
            f"share of weeks after the deadline with {SURFACES[then]} links closed minus with "
            f"{SURFACES[first]} links closed, in the {int(both.sum())} of {len(runs)} replicates "
            "with both closed the week before the announcement",
            closed[both, then] - closed[both, first])

    return [opens_first(0, 1, f"{name} opens one-on-one chat before groups"),
            opens_first(1, 2, f"{name} opens groups before the feed")]


# --- Opening, interoperability, welfare ------------------------------------------------------

def small_platforms(case: Scenario, rows: list[dict]) -> float:
    """Market share of all but the largest platform: their part of all memberships
    (multihomers count on each platform, as in the HHI), over the second half."""
    big = case.messaging[largest(case)].name
    users = {p.name: late(rows, f"users_{p.name}") for p in case.messaging}
    return 1.0 - users[big] / sum(users.values())


def market_effects(check: str, cause: str, source: str, contrast: str, case: Scenario,
                   treated: list[Run], control: list[Run], traffic: str, traffic_label: str,
                   traffic_measure: Callable[[list[dict]], float]) -> list[Evidence]:
    """Cross-platform traffic and small platforms' shares rise and HHI falls, treated
    against control, paired by seed."""
    def change(measure):
        return [measure(a.rows) - measure(b.rows) for a, b in zip(treated, control)]
    return [
        paired_change(check, f"{cause} raises cross-platform {traffic}", source,
                      f"{traffic_label} per week ({contrast})", change(traffic_measure)),
        paired_change(check, f"{cause} raises small platforms' shares", source,
                      f"market share of all but the largest platform ({contrast})",
                      change(lambda rows: small_platforms(case, rows))),
        paired_change(check, f"{cause} lowers concentration (HHI)", source,
                      f"HHI of messaging users ({contrast})",
                      change(lambda rows: late(rows, "hhi")), sign=-1),
    ]


@check("opening_effects", "blocks cost users friction and lost views, which moves them "
       "between platforms", ("users.token_cost", 0.0), ("users.token_success", 1.0),
       ("users.warning_cost", 0.0), ("users.warning_dropout", 0.0))
def opening_effects(case: Scenario, effort: Effort) -> list[Evidence]:
    """Every link open against the same market's own blocking, without an order."""
    return market_effects(
        "opening_effects", "opening", "CASE.md fact 5; Scott Morton et al. (2023)",
        "every link open minus the market's own blocks", case,
        simulate(open_world(case, effort), effort.replicates),
        simulate(no_order(case, effort), effort.replicates),
        "sharing", "views delivered", lambda rows: late(rows, "shares_delivered"))


@check("interoperability_effects", "interconnection: users with no platform in common reach "
       "each other", ("regulator.interoperability", False))
def interoperability_effects(case: Scenario, effort: Effort) -> list[Evidence]:
    """The order with messaging interoperability (EU DMA Art. 7) against the order alone."""
    ordered = ("regulator.policy", "order")
    return market_effects(
        "interoperability_effects", "an interoperability mandate",
        "Scott Morton et al. (2023); EU DMA Art. 7", "mandate minus the order alone", case,
        simulate(sized(case, effort, ordered, ("regulator.interoperability", True)),
                 effort.replicates),
        simulate(sized(case, effort, ordered, ("regulator.interoperability", False)),
                 effort.replicates),
        "traffic", "shares that reach their recipient",
        lambda rows: late(rows, "shares_attempted") - late(rows, "shares_unreachable"))


@check("doganoglu_wright", "multihoming lets users reach ties on other platforms, so the "
       "loss from blocks falls on fewer of them", ("users.max_platforms", 1),
       ("users.initial_multihoming", 0.0))
def doganoglu_wright(case: Scenario, effort: Effort) -> list[Evidence]:
    """Welfare gain from opening with multihoming possible (as in the case) and without."""
    def gains(*overrides):
        closed = simulate(sized(case, effort, ("regulator.policy", "none"), *overrides),
                          effort.replicates)
        opened = simulate(open_world(case, effort, *overrides), effort.replicates)
        return np.array([(np.mean([r["consumer_surplus"] for r in a.rows])
                          - np.mean([r["consumer_surplus"] for r in b.rows]))
                         / (effort.size ** 2 * case.grid.density)
                         for a, b in zip(opened, closed)])
    single = (("users.max_platforms", 1), ("users.initial_multihoming", 0.0))
    return [paired_change(
        "doganoglu_wright", "the welfare gain from opening is larger where multihoming is "
        "common", "Doganoglu & Wright (2006)",
        "consumer surplus gain per user-week from opening: multihoming possible minus not",
        gains() - gains(*single))]


@check("learning", "reinforcement of each link's own payoff (EWA, strategy = learning)",
       ("platforms.*.credit", "owner"),
       without="every link credited with the owner's profit (credit = \"owner\")")
def learning(case: Scenario, effort: Effort) -> list[Evidence]:
    """Learning platforms, starting with every link open without an order, learn to
    block; starting blocked under a credible order, they learn to open."""
    learners = ("platforms.*.strategy", "learning")
    free = open_start(case, effort, learners)
    ordered = credible(case, effort)
    ordered = derive(ordered, learners)
    gained = [float(run.blocked[-10:].sum(axis=(1, 2, 3)).mean())
              for run in simulate(free, effort.replicates)]
    left = [float(run.blocked[-10:].sum(axis=(1, 2, 3)).mean()
                  / max(run.blocked[0].sum(), 1))
            for run in simulate(ordered, effort.replicates)]
    source = "Camerer & Ho (1999); ODD 7.4"
    return [
        evidence("learning", "where blocking pays, a learner that starts open learns to "
                 "block", source, "links blocked over the last 10 weeks (no order, all "
                 "open at the start)", "more than 1", gained, "mean", math.nan,
                 np.mean(gained) > 1),
        evidence("learning", "where blocking does not pay, a learner that starts blocked "
                 "learns to open", source, "links blocked over the last 10 weeks, as a share "
                 "of those blocked at the start (a credible order)", "below 0.2", left,
                 "mean", math.nan, np.mean(left) < 0.2),
    ]


# --- The record ------------------------------------------------------------------------------

# how far a moment's 95% interval may sit from the record and still match it
RECORD_TOLERANCE = {"ratio": 0.05, "lag": 4.0, "share": 0.25, "blocks": 0.25}
RECORD_FILE_NAME = "scenarios/data/record_2021.csv"
RECORD_CHECKS = {"ratio": "record_sizes", "lag": "record_timing", "share": "record_timing",
                 "blocks": "starting_equilibrium"}


def record_rows(case: Scenario, effort: Effort, kinds: tuple[str, ...]
                ) -> tuple[list[Evidence], list[Run]]:
    """The case against the record's moments of these kinds (`sim.experiments.record.moments`, the
    targets the calibration fits), and the runs."""
    runs = simulate(sized(case, effort), effort.replicates)
    targets = [m for m in record_moments(case, effort.weeks) if m.kind in kinds]
    per_run = [measure(case, targets, run.rows, run.states) for run in runs]
    rows = []
    for m in targets:
        values = [r[m.name] for r in per_run]
        ci = confidence_interval(values)
        tolerance = RECORD_TOLERANCE[m.kind]
        rows.append(evidence(
            RECORD_CHECKS[m.kind],
            f"in sample (a calibration target): {m.doc}: {m.target:.3g} in the "
            "record" + (" (approx.)" if m.approximate else ""),
            f"{RECORD_FILE_NAME}: {m.source}",
            m.doc, f"95% CI overlaps {m.target:.3g} ± {tolerance:g}", values, "t interval",
            math.nan, ci["ci_low"] <= m.target + tolerance and ci["ci_high"] >= m.target - tolerance))
    return rows, runs


@check("record_sizes", "users' persistent tastes (the cohorts' mixed logit) keep QQ beside "
       "WeChat", ("users.cohorts", []))
def record_sizes(case: Scenario, effort: Effort) -> list[Evidence]:
    """QQ's users per WeChat user at the record's dates, then what the calibration was
    not fitted to: DingTalk's growth."""
    if not has_record(case):
        return []
    rows, runs = record_rows(case, effort, ("ratio",))
    if "DingTalk" in [p.name for p in case.messaging]:
        dingtalk = size_changes(runs, "DingTalk")
        p = float(stats.ttest_1samp(dingtalk, 0.0, alternative="greater").pvalue)
        rows.append(evidence(
            "record_sizes", "out of sample: DingTalk's users grew", f"{RECORD_FILE_NAME}: DingTalk "
            "2020 and 2022 (approx.)", "relative change in DingTalk's users from the first "
            "to the last four weeks", "mean > 0, one-sided t test p < 0.01", dingtalk,
            "t test", p, p < ALPHA))
    return rows


@check("record_timing", "the order, the platforms' economics and beliefs: who opens which "
       "surface when, who re-blocks", ("regulator.policy", "none"))
def record_timing(case: Scenario, effort: Effort) -> list[Evidence]:
    """WeChat's lag to open each surface and QQ's opening and re-block."""
    if not has_record(case):
        return []
    return record_rows(case, effort, ("lag", "share"))[0]


@check("record_sanctions", "platforms that weigh the order's penalties (their beliefs in "
       "audits and in the deadline's check) comply where an audit would look, leaving the "
       "regulator nothing to decide", ("platforms.*.audit_belief", 0.0),
       ("platforms.*.deadline_credibility", 0.0), ("platforms.*.belief_weight", 1e6))
def record_sanctions(case: Scenario, effort: Effort) -> list[Evidence]:
    """Out of sample: no decision against any platform (a fine, a naming, a suspension or
    a forced opening) from the announcement until the minister called link blocking
    resolved. A decision follows every audit that finds a violation, so the measure is
    whether any audit found one. The record is a none, so the check asks the model to show
    it with confidence: the share of runs with a decision at most the tolerance at the
    top of its 95% interval (an interval that merely reaches down to the tolerance would
    pass half the runs sanctioned, and more easily the fewer the replicates)."""
    if not has_record(case):
        return []
    resolved = event(load_record(), "resolved").date
    weeks = range(case.regulator.announce_step, calendar_week(case, resolved) + 1)
    runs = simulate(sized(case, effort), effort.replicates)
    decided = [float(any(run.rows[w - 1]["violations"] > 0 for w in weeks if w <= len(run.rows)))
               for run in runs]
    tolerance = RECORD_TOLERANCE["share"]
    ci = confidence_interval(decided)
    return [evidence(
        "record_sanctions", f"out of sample: no platform was fined, named, suspended or forced "
        f"open for blocking links before {resolved:%d %b %Y}, when the minister called it "
        "resolved", f"{RECORD_FILE_NAME}: the minister's statement (CASE.md timeline)",
        f"share of replicates with a decision against any platform in weeks "
        f"{weeks.start}-{weeks.stop - 1}", f"95% CI within 0 to {tolerance:g}", decided,
        "t interval", math.nan, ci["ci_high"] <= tolerance)]


@check("market_at_rest", "users and platforms who have settled before the order "
       "(burn_in): the order meets a market at its own rest point", ("burn_in.weeks", 0))
def market_at_rest(case: Scenario, effort: Effort) -> list[Evidence]:
    """Out of sample (the calibration fits ratios, not levels): WeChat's users change
    over the run's dates by what Tencent's results say, within 5 points."""
    if not has_record(case):
        return []
    runs = simulate(sized(case, effort), effort.replicates)
    facts = load_record()
    start = datetime.date.fromisoformat(case.start_date)
    end = start + datetime.timedelta(weeks=min(len(r.rows) for r in runs))
    growth = users_at(facts, WECHAT, end) / users_at(facts, WECHAT, start) - 1
    change = size_changes(runs, WECHAT)
    ci = confidence_interval(change)
    return [evidence(
        "market_at_rest", f"out of sample: {WECHAT}'s monthly users changed by {growth:+.1%} "
        "over the run's dates", f"{RECORD_FILE_NAME}: Tencent's quarterly results",
        f"relative change in {WECHAT}'s users from the first to the last four weeks",
        f"95% CI overlaps {growth:.3f} ± 0.05", change, "t interval", math.nan,
        ci["ci_low"] <= growth + 0.05 and ci["ci_high"] >= growth - 0.05)]


def size_changes(runs: list[Run], platform: str) -> list[float]:
    """Per run, the relative change in a platform's users from the first to the last
    four weeks."""
    weeks, window = min(len(r.rows) for r in runs), USER_WINDOW
    return [np.mean([r[f"users_{platform}"] for r in run.rows[weeks - window:weeks]])
            / np.mean([r[f"users_{platform}"] for r in run.rows[:window]]) - 1 for run in runs]


def validate(case: Scenario, effort: Effort, names=None, progress: bool = True,
             ablate: bool = True) -> list[dict]:
    """Run the checks (all, or those named), each as is and with its mechanism switched
    off, and return the tidy validation table. `without_mechanism` says whether the
    check (every one of its rows) still passes ablated: it must not.
    `row_without_mechanism` says it for each row (when the ablated run gives the same
    rows): a row that still passes is not evidence for the mechanism, even if its check
    as a whole fails ablated."""
    from tqdm import tqdm

    selected = list(names or CHECKS)
    rows = []
    for name in tqdm(selected, desc="validate", unit="check", disable=not progress):
        entry = CHECKS[name]
        found = entry.run(case, effort)
        still, per_row, values = None, [None] * len(found), [math.nan] * len(found)
        if ablate and found:
            with switched_off(entry.ablation):
                ablated = entry.run(case, effort)
            still = all(e.passed for e in ablated)
            if [e.claim for e in ablated] == [e.claim for e in found]:
                per_row = [e.passed for e in ablated]
                values = [e.value for e in ablated]
        rows += [{**e.row(), "mechanism": entry.mechanism, "ablation": entry.without,
                  "without_mechanism": still, "row_without_mechanism": row,
                  "value_without_mechanism": value}
                 for e, row, value in zip(found, per_row, values)]
    return rows
