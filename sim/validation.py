"""Validation: does the model reproduce what theory predicts and what happened?

Each check is a plain function of the case scenario (china_2021, or a fitted
version of it) and an `Effort` (how many replicates, how large a grid), registered
in `CHECKS`. It runs the experiments it needs, with common random numbers wherever
two scenarios are compared (replicate r of each uses the same seed stream), and
returns tidy rows of `Evidence`: what theory or the record says, what the model
gives with its 95% confidence interval, the statistical test and pass or fail.
Counterfactuals are derived from the case with dotted overrides, so a fitted case
is validated against its own counterfactuals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, stats

from sim.model import WalledGardenModel
from sim.results import confidence_interval
from sim.runner import replicate_seed
from sim.scenario import SURFACES, Scenario, apply_override, from_dict

ALPHA = 0.01          # significance level of every test


@dataclass(frozen=True)
class Effort:
    """How much simulation a validation run spends."""

    replicates: int
    size: int          # grid side of the case runs
    weeks: int         # weeks of the case runs
    mean_field_side: int
    mean_field_replicates: int


QUICK = Effort(replicates=20, size=20, weeks=60, mean_field_side=100, mean_field_replicates=1)
FULL = Effort(replicates=30, size=40, weeks=104, mean_field_side=100, mean_field_replicates=4)


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


CHECKS: dict[str, Callable[[Scenario, Effort], list[Evidence]]] = {}


def check(name: str):
    def register(function):
        CHECKS[name] = function
        return function
    return register


# --- Running experiments ---------------------------------------------------------

@dataclass
class Run:
    rows: list[dict]
    blocked: np.ndarray      # (weeks, hosts, contents, surfaces): rival links blocked each week


RECENT_RUNS = 8
_recent: dict[tuple[str, int], list[Run]] = {}


def simulate(scenario: Scenario, replicates: int) -> list[Run]:
    """Replicates 0..n-1 of a scenario (the same seed streams for every scenario).

    Several checks run the same scenario (the case, its no-order twin); runs are
    deterministic, so the last few are kept and shared (read them, do not change them).
    """
    key = (repr(scenario), replicates)
    if key not in _recent:
        if len(_recent) >= RECENT_RUNS:
            del _recent[next(iter(_recent))]
        _recent[key] = [run_with_links(scenario, r) for r in range(replicates)]
    return _recent[key]


def run_with_links(scenario: Scenario, replicate: int) -> Run:
    model = WalledGardenModel(scenario, rng=replicate_seed(scenario.seed, replicate))
    blocked = []
    for _ in range(scenario.steps):
        model.step()
        blocked.append(model.links.blocked & model.links.rival)
    return Run(model.rows, np.array(blocked))


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


def open_world(case: Scenario, effort: Effort, *overrides) -> Scenario:
    """Every rival link open from the start, and kept open."""
    platform_keys = [(f"platforms.{p.name}.{key}", value) for p in case.messaging
                     for key, value in (("blocks", []), ("strategy", "static"))]
    return sized(case, effort, ("regulator.policy", "none"), *platform_keys, *overrides)


def largest(case: Scenario) -> int:
    return int(np.argmax([p.initial_share for p in case.messaging]))


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
                    sign * d.mean() > 0 and p < ALPHA)


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


@check("brock_durlauf_unique")
def brock_durlauf_unique(case: Scenario, effort: Effort) -> list[Evidence]:
    beta, dq, J = 2.0, 0.2, 0.4                     # beta J < 1: one equilibrium
    (root,) = brock_durlauf_roots(beta, dq, J)
    return [mean_field_evidence(
        "brock_durlauf_unique",
        f"beta J < 1: a single equilibrium x = {root:.4f}, whatever the start ({start})",
        root, long_run_shares(two_platform_world(beta, dq, J, start, effort.mean_field_side),
                              effort.mean_field_replicates), effort.mean_field_side)
        for start in (0.1, 0.9)]


@check("brock_durlauf_bistable")
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

@check("largest_blocks")
def largest_blocks(case: Scenario, effort: Effort) -> list[Evidence]:
    scenario = no_order(case, effort)
    big = largest(case)
    small = int(np.argmin([p.initial_share for p in case.messaging]))
    differences = []
    for run in simulate(scenario, effort.replicates):
        late_weeks = run.blocked[len(run.blocked) // 2:]
        per_host = late_weeks.sum(axis=(2, 3)).mean(axis=0)
        differences.append(per_host[big] - per_host[small])
    names = case.messaging[big].name, case.messaging[small].name
    return [paired_change(
        "largest_blocks", "without an order the largest network blocks rival links and the "
        "smallest leaves them open", "Katz & Shapiro (1985); Crémer, Rey & Tirole (2000)",
        f"links blocked by {names[0]} minus by {names[1]} (second half, no order)",
        differences)]


RIVALS = 3


def size_world(case: Scenario, share: float, weeks: int, side: int) -> Scenario:
    """A largest network, with the case's largest platform's spec and strategy, facing
    smaller rivals alike but for size: they split the rest equally, each sells content
    and leaves every link open."""
    spec = case.messaging[largest(case)]
    large = asdict(spec)
    large.update(name="Large", owner="L", initial_share=share, blocks=[], content=False)
    rivals = [dict(large, name=f"Rival{i}", owner=f"R{i}", initial_share=(1 - share) / RIVALS,
                   strategy="static", content=True, content_weight=1.0,
                   revenue_per_visit=float(np.mean([c.revenue_per_visit for c in case.content])))
              for i in range(1, RIVALS + 1)]
    data = case.to_dict()
    data.update(name="size_world", steps=weeks, platforms=[large, *rivals])
    data["grid"] = dict(data["grid"], width=side, height=side)
    data["users"] = dict(data["users"], initial_multihoming=0.0)
    data["regulator"] = dict(data["regulator"], policy="none")
    return from_dict(data, case.source)


@check("blocking_by_size")
def blocking_by_size(case: Scenario, effort: Effort) -> list[Evidence]:
    """Propensity to block the rivals' content links, by relative size, in the market's
    first weeks. Where it crosses one half depends on diversion (see ODD section 8)."""
    sizes = np.round(np.linspace(0.1, 0.9, 9), 2)
    propensity = np.array([[run.blocked[3:, 0].mean() for run in
                            simulate(size_world(case, float(s), 12, 30), effort.replicates)]
                           for s in sizes])                         # (sizes, replicates)
    rho, p = stats.spearmanr(np.repeat(sizes, propensity.shape[1]), propensity.ravel())
    return [Evidence(
        "blocking_by_size", "the propensity to block rises with relative size",
        "Katz & Shapiro (1985); Crémer, Rey & Tirole (2000)",
        "Spearman correlation of size and share of links blocked", f"rho > 0, p < {ALPHA}",
        float(rho), math.nan, math.nan, propensity.size, "Spearman rank correlation",
        float(p), rho > 0 and p < ALPHA)]


def compatibility_world(case: Scenario, share: float, compatible: bool) -> Scenario:
    """Malueg & Schwartz's market: a largest network and smaller rivals interconnected
    with each other (mutually compatible); the largest joins their interconnection or
    not. All alike but for size, users on one platform each, no link blocked."""
    data = size_world(case, share, weeks=52, side=30).to_dict()
    for platform in data["platforms"]:
        platform.update(strategy="static",
                        interconnected=compatible or platform["name"] != "Large")
    data["users"] = dict(data["users"], max_platforms=1)
    data["regulator"] = dict(data["regulator"], interoperability_reach=1.0)
    return from_dict(data, case.source)


@check("malueg_schwartz")
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
    low, high = np.nanpercentile(boot, [2.5, 97.5])
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
    if len(above) == 0 or above[0] == 0:
        return math.nan if len(above) == 0 else float(sizes[0])
    i = above[0]
    return float(np.interp(level, curve[i - 1:i + 1], sizes[i - 1:i + 1]))


# --- The case's stylized facts -------------------------------------------------------

@check("credible_deadline")
def credible_deadline(case: Scenario, effort: Effort) -> list[Evidence]:
    scenario = sized(case, effort, ("regulator.policy", "order"), ("regulator.phases", []),
                     ("regulator.announce_step", 10), ("regulator.deadline_step", 12),
                     ("regulator.audit_probability", 1.0), ("regulator.deadline_audit", 1.0),
                     ("regulator.fine", 5.0), ("regulator.fine_kind", "revenue_share"),
                     ("regulator.fine_cap", 100.0), ("regulator.forced_open", False))
    runs = simulate(scenario, effort.replicates)
    before = [np.mean([r["friction_cost"] for r in run.rows[:9]]) for run in runs]
    after = [np.mean([r["friction_cost"] for r in run.rows[12:]]) for run in runs]
    still_blocked = [int(run.blocked[11:].sum()) for run in runs]
    source = "CASE.md fact 2; Becker (1968) deterrence"
    return [
        evidence("credible_deadline", "a deadline with a credible penalty opens every link",
                 source, "rival links blocked, summed over the weeks from the deadline",
                 "0 in every replicate", still_blocked, "count", math.nan,
                 max(still_blocked) == 0),
        paired_change("credible_deadline", "friction collapses after the deadline", source,
                      "token costs per week after minus before the deadline",
                      np.subtract(after, before), sign=-1),
    ]


@check("weak_audits_reblock")
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


def open_week(blocked: np.ndarray, host: int, surface: int, since: int = 0) -> float:
    """First week (from `since`) after which every rival link of the host on the
    surface is open; infinity if that never happens in the run."""
    closed = blocked[:, host, :, surface].any(axis=1)
    for week in range(since, len(closed)):
        if not closed[week]:
            return float(week + 1)
    return math.inf


@check("phased_opening")
def phased_opening(case: Scenario, effort: Effort) -> list[Evidence]:
    scenario = sized(case, effort)
    host = largest(case)
    order = []
    for run in simulate(scenario, effort.replicates):
        chat, group, feed = (open_week(run.blocked, host, s) for s in range(len(SURFACES)))
        order.append(float(chat <= group < feed))
    p = stats.binomtest(int(sum(order)), len(order), 0.5, alternative="greater").pvalue
    return [evidence(
        "phased_opening", "opening is phased by surface: one-on-one chat, then groups, then "
        "the feed (which never opened)", "CASE.md fact 4 (WeChat, Sep-Nov 2021)",
        f"share of replicates in which {case.messaging[host].name} opens chat, then groups, "
        "before the feed", f"at least 0.8, binomial p < {ALPHA}", order,
        "binomial test against 0.5", p, np.mean(order) >= 0.8 and p < ALPHA)]


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


@check("opening_effects")
def opening_effects(case: Scenario, effort: Effort) -> list[Evidence]:
    """The order as shipped against the same market without it."""
    return market_effects(
        "opening_effects", "opening", "CASE.md fact 5; Scott Morton et al. (2023)",
        "order minus no order", case, simulate(sized(case, effort), effort.replicates),
        simulate(no_order(case, effort), effort.replicates),
        "sharing", "direct shares of rival content", lambda rows: late(rows, "shares_direct"))


@check("interoperability_effects")
def interoperability_effects(case: Scenario, effort: Effort) -> list[Evidence]:
    """An order that adds messaging interoperability (EU DMA Art. 7) against no order."""
    mandated = sized(case, effort, ("regulator.policy", "order"),
                     ("regulator.interoperability", True))
    return market_effects(
        "interoperability_effects", "an interoperability mandate",
        "Scott Morton et al. (2023); EU DMA Art. 7", "mandate minus no order", case,
        simulate(mandated, effort.replicates), simulate(no_order(case, effort), effort.replicates),
        "traffic", "shares that reach their recipient",
        lambda rows: late(rows, "shares_attempted") - late(rows, "shares_unreachable"))


@check("doganoglu_wright")
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


# --- The record: what the calibration targets -----------------------------------------

RECORD = {
    # WeChat's direct one-on-one access came on 29 Nov 2021, 73 days after the
    # 17 Sep deadline (CASE.md timeline)
    "chat_lag": 73 / 7,
    # QQ opened Taobao and Douyin links on the deadline and blocked them again that day
    "qq_opened": 1.0,
    "reblock": 1.0,
    # WeChat Moments (the feed) never opened
    "feed_closed": 1.0,
    # 2021 sizes: WeChat 1,251M and QQ ~590M monthly users, DingTalk 150M daily users
    # (CASE.md), as parts of all memberships over the first year
    "wechat_share": 1251 / 1991,
    "qq_share": 590 / 1991,
}
WECHAT, QQ = "WeChat", "QQ"
REBLOCK_WINDOW = 4    # weeks after the deadline in which a re-block counts
LAG_CAP = 40          # a chat lag counts as "40 weeks or more", so runs of any length agree
YEAR = 52


def case_moments(case: Scenario, run: Run) -> dict[str, float]:
    """The moments of the record (RECORD's keys), measured in one run of the case.

    `run.blocked[i]` is the policy after week i + 1, so the deadline's blitz audits
    the policy at index deadline - 2 (set on the eve of the deadline).
    """
    names = [p.name for p in case.messaging]
    deadline = first_deadline(case)
    chat, feed = SURFACES.index("chat"), SURFACES.index("feed")
    wechat, qq = names.index(WECHAT), names.index(QQ)
    opened = open_week(run.blocked, wechat, chat, since=deadline - 1)
    lag = min(opened - deadline, LAG_CAP)
    at_blitz = run.blocked[deadline - 2, qq]
    opened_for_blitz = run.blocked[0, qq] & ~at_blitz
    blocked_again = run.blocked[deadline - 1:deadline - 1 + REBLOCK_WINDOW, qq].any(axis=0)
    year = run.rows[:YEAR]
    memberships = np.array([[r[f"users_{name}"] for name in names] for r in year])
    shares = (memberships / memberships.sum(axis=1, keepdims=True)).mean(axis=0)
    return {"chat_lag": float(lag),
            "qq_opened": float(opened_for_blitz.any()),
            "reblock": float((opened_for_blitz & blocked_again).any()),
            "feed_closed": float(run.blocked[-1, wechat, :, feed].any()),
            "wechat_share": float(shares[wechat]),
            "qq_share": float(shares[qq])}


def first_deadline(case: Scenario) -> int:
    phases = case.regulator.phases
    return min(p.step for p in phases) if phases else case.regulator.deadline_step


def has_record(case: Scenario) -> bool:
    names = [p.name for p in case.messaging]
    return WECHAT in names and QQ in names and case.regulator.policy == "order"


@check("record")
def record(case: Scenario, effort: Effort) -> list[Evidence]:
    """The calibration targets, against the record (CASE.md)."""
    if not has_record(case):
        return []
    runs = simulate(sized(case, effort), effort.replicates)
    per_run = [case_moments(case, run) for run in runs]
    moments = {k: [m[k] for m in per_run] for k in RECORD}
    timeline, sizes = "CASE.md timeline (Sep-Nov 2021)", "CASE.md sizes (2021)"
    lag = confidence_interval(moments["chat_lag"])

    def share_of_runs(key, claim, measure, least=0.5):
        return evidence("record", claim, timeline, measure, f"at least {least}", moments[key],
                        "share of replicates", math.nan, np.mean(moments[key]) >= least)

    def size(key, platform):
        ci = confidence_interval(moments[key])
        farthest = max(abs(ci["ci_low"] - RECORD[key]), abs(ci["ci_high"] - RECORD[key]))
        return evidence("record", f"{platform} held {RECORD[key]:.2f} of all memberships in 2021",
                        sizes, f"{platform}'s part of all memberships over the first year",
                        "95% CI within 0.1 of the record", moments[key], "t interval",
                        math.nan, farthest <= 0.1)
    return [
        evidence("record", f"WeChat opened one-on-one chat about {RECORD['chat_lag']:.1f} "
                 "weeks after the deadline", timeline, "weeks from the chat deadline until "
                 "WeChat's chat links are all open", "95% CI overlaps 6 to 15 weeks",
                 moments["chat_lag"], "t interval", math.nan,
                 lag["ci_low"] <= 15 and lag["ci_high"] >= 6),
        share_of_runs("qq_opened", "QQ opened Taobao and Douyin links for the deadline",
                      "share of replicates in which QQ opens a blocked link for the check"),
        share_of_runs("reblock", "QQ blocked them again the same day",
                      f"share of replicates in which QQ re-blocks within {REBLOCK_WINDOW} weeks"),
        share_of_runs("feed_closed", "WeChat's feed (Moments) never opened",
                      "share of replicates with WeChat's feed still blocked at the end",
                      least=0.9),
        size("wechat_share", WECHAT),
        size("qq_share", QQ),
    ]


def validate(case: Scenario, effort: Effort, names=None, progress: bool = True) -> list[dict]:
    """Run the checks (all, or those named) and return the tidy validation table."""
    from tqdm import tqdm

    selected = list(names or CHECKS)
    rows = []
    for name in tqdm(selected, desc="validate", unit="check", disable=not progress):
        rows += [e.row() for e in CHECKS[name](case, effort)]
    return rows
