"""Calibration by the method of simulated moments (McFadden 1989; Pakes & Pollard 1989).

The parameters that no source pins down are fitted so that the case's simulated
moments match the record in `scenarios/data/record_2021.csv` (`sim.experiments.record.moments`):
QQ's users per WeChat user at the record's quarterly figures, the weeks from the
deadline until WeChat opens each surface (censored at the run's end), and the
share of QQ's blocked chat links it opens for the deadline's check and blocks again.

Every evaluation uses the same replicate seeds (common random numbers), so the
objective is a fixed function of the parameters. Two steps: a scrambled Sobol
design scored with a diagonal weighting (each moment's miss in units of a stated
tolerance); then the weighting matrix is the inverse of the moments' covariance
across replicates at the best design point (with a floor on each variance, since a
0/1 outcome can have none), the design is re-scored and its best points polished
by Nelder-Mead. Standard errors come from the sandwich formula with a central
finite-difference Jacobian; the identification report gives the Jacobian's
singular values, rank and condition number and the objective's profile along each
parameter, and says which parameters the moments do not pin down. The estimate's
moments and Hansen's J are also given on fresh replicate streams, which the search did
not select the estimate on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from sim.experiments.record import QQ, WECHAT, has_record, measure, moments as record_moments
from sim.scenario import Scenario, ScenarioError
from sim.experiments.validation import RECENT_RUNS, derive, simulate

# a miss of one tolerance weighs 1 in the first step: 0.05 of QQ's users per WeChat
# user, four weeks of a lag, a quarter of a platform's links
TOLERANCE = {"ratio": 0.05, "lag": 4.0, "share": 0.25, "blocks": 0.25}
IDENTIFIED_RANGE = 0.125  # a 95% interval wider than half the search range: not pinned
AT_BOUND = 0.01           # an estimate this close (search scale) to its range's end
PROFILE_POINTS = 5


@dataclass(frozen=True)
class Parameter:
    name: str
    keys: tuple[str, ...]         # scenario keys it sets (all to the same value)
    low: float
    high: float
    doc: str
    log: bool = False             # searched on a log scale (probabilities spanning decades)

    def value(self, u: float) -> float:
        """The parameter at position u in [0, 1] of its search range."""
        if self.log:
            return self.low * (self.high / self.low) ** u
        return self.low + u * (self.high - self.low)

    def position(self, value: float) -> float:
        """The search position of a value (clipped to the range)."""
        value = min(max(value, self.low), self.high)
        if self.log:
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)

    def slope(self, u: float) -> float:
        """d value / d u, for the delta method."""
        if self.log:
            return self.value(u) * math.log(self.high / self.low)
        return self.high - self.low

    def settings(self, case: Scenario, value: float) -> list[tuple[str, float]]:
        """The scenario overrides that give the case this value."""
        return [(key, value) for key in self.keys]


@dataclass(frozen=True)
class CohortShare(Parameter):
    """A cohort's size. The other cohorts shrink or grow in proportion to fill the rest,
    and when every cohort gives its own starting shares, the platforms' starting shares
    follow as the cohorts' mix (the scenario requires the two to agree)."""

    cohort: str = ""

    def settings(self, case: Scenario, value: float) -> list[tuple[str, float]]:
        cohorts = case.users.cohorts
        rest = sum(c.share for c in cohorts if c.name != self.cohort)
        shares = {c.name: value if c.name == self.cohort else c.share * (1 - value) / rest
                  for c in cohorts}
        found = [(f"users.cohorts.{name}.share", share) for name, share in shares.items()]
        if all(c.initial_share for c in cohorts):
            found += [(f"platforms.{p.name}.initial_share",
                       sum(shares[c.name] * c.initial_share.get(p.name, 0.0) for c in cohorts))
                      for p in case.messaging]
        return found


@dataclass(frozen=True)
class SurfaceVisibility(Parameter):
    """The chance that an audit finds a blocked group link; a feed link's keeps its ratio
    to it in the case (a chat's is 1: complaints come from chats)."""

    def settings(self, case: Scenario, value: float) -> list[tuple[str, float]]:
        visibility = case.regulator.visibility
        return [("regulator.visibility.group", value),
                ("regulator.visibility.feed", value * visibility["feed"] / visibility["group"])]


def parameters(case: Scenario) -> list[Parameter]:
    """The unpinned parameters the record's moments speak to; platform-level ones are
    shared by the messaging platforms."""
    def each(key):
        return tuple(f"platforms.{p.name}.{key}" for p in case.messaging)
    found = [
        Parameter("token_cost", ("users.token_cost",), 0.05, 1.5,
                  "time cost of a copy-paste token, in units of a share's mean value"),
        Parameter("diversion", each("diversion"), 0.1, 1.0,
                  "share of blocked visits diverted to the host owner's services"),
        Parameter("audit_belief", each("audit_belief"), 0.001, 0.1,
                  "platforms' prior belief of the weekly audit probability after a deadline",
                  log=True),
        Parameter("deadline_credibility", each("deadline_credibility"), 0.02, 1.0,
                  "platforms' belief that the announced deadline check will come", log=True),
        # what an inspection sees decides which surfaces it pays to open first: the
        # record's groups and feed closed at the check speak to it
        SurfaceVisibility("visibility_group", ("regulator.visibility.group",), 0.02, 1.0,
                          "chance that an audit finds a blocked group link (a feed link's "
                          "in the case's ratio to it; a chat link's is 1)"),
        # a menu cost per link changed makes opening for one week and blocking again
        # (window dressing) cost something: the record's groups and feed closed at the
        # check while chat opened, and QQ's re-block, speak to it
        Parameter("adjustment_cost", each("adjustment_cost"), 0.001, 0.2,
                  "cost of changing one link's state, in weeks of the owner's revenue",
                  log=True),
    ]
    # QQ's size level has one parameter: a cohort with tastes of its own enters by its
    # size (QQ's size is a step in the cohort's taste, not a slope, and follows its
    # size above it: the qq_cohort sweep, ODD 8; its tastes and QQ's quality are held),
    # and without one QQ's quality (another platform's quality would be pinned only
    # through what it takes from WeChat, not by data)
    sized = [CohortShare(f"share_{c.name}", (f"users.cohorts.{c.name}.share",), 0.05, 0.6,
                         f"the {c.name} cohort's share of users", cohort=c.name)
             for c in case.users.cohorts if c.taste and len(case.users.cohorts) > 1]
    found += sized or [Parameter(f"quality_{QQ}", (f"platforms.{QQ}.quality",), -0.5, 1.0,
                                 f"{QQ}'s intrinsic appeal to users ({WECHAT}'s is the "
                                 "reference)")]
    return found


@dataclass(frozen=True)
class Budget:
    replicates: int = 8
    design_points: int = 32      # Sobol points (a power of two)
    polish_evaluations: int = 40
    starts: int = 2              # Nelder-Mead runs, from the best design points
    weeks: int | None = None     # None: the case's own length
    profile_rounds: int = 3      # moves to a better point a profile finds


QUICK_BUDGET = Budget(replicates=3, design_points=4, polish_evaluations=4, starts=1, weeks=30,
                      profile_rounds=1)


def memory_estimate(case: Scenario, budget: Budget, workers: int) -> float:
    """Bytes a calibration needs at its peak: each worker runs one replicate at a time,
    and the last evaluations' runs (rows and link states) are kept to be shared."""
    from sim.experiments.runner import BYTES_PER_ROW, users_memory

    weeks = budget.weeks or case.steps
    return (workers * users_memory(case)
            + RECENT_RUNS * budget.replicates * weeks * BYTES_PER_ROW)


class Problem:
    """The simulated moments of the case as a function of the search position u."""

    def __init__(self, case: Scenario, budget: Budget, progress=None):
        self.case, self.budget, self.progress = case, budget, progress
        self.weeks = budget.weeks or case.steps
        self.params = parameters(case)
        self.targets = record_moments(case, self.weeks)
        self.evaluations = 0
        self.cache: dict[tuple, np.ndarray] = {}

    @property
    def target(self) -> np.ndarray:
        return np.array([m.target for m in self.targets])

    def values(self, u) -> list[float]:
        return [p.value(float(x)) for p, x in zip(self.params, u)]

    def scenario(self, u) -> Scenario:
        overrides = [setting for p, value in zip(self.params, self.values(u))
                     for setting in p.settings(self.case, value)]
        return derive(self.case, ("steps", self.weeks), *overrides)

    def moments(self, u) -> np.ndarray:
        """Moments per replicate, shape (replicates, moments)."""
        u = tuple(float(x) for x in np.clip(u, 0.0, 1.0))
        if u not in self.cache:
            self.evaluations += 1
            if self.progress:
                self.progress.update(1)
            self.cache[u] = self.measured(self.scenario(u))
        return self.cache[u]

    def fresh_moments(self, u) -> np.ndarray:
        """Moments per replicate at u on replicate streams no evaluation of the search
        used: the estimate is the best of many evaluations on the same streams, so its
        own moments are biased towards the record and its J downwards."""
        self.evaluations += 1
        if self.progress:
            self.progress.update(1)
        return self.measured(derive(self.scenario(u), ("seed", fresh_seed(self.case.seed))))

    def measured(self, scenario: Scenario) -> np.ndarray:
        runs = simulate(scenario, self.budget.replicates)
        return np.array([[row[m.name] for m in self.targets] for row in (
            measure(self.case, self.targets, run.rows, run.states) for run in runs)])


def fresh_seed(seed: int) -> int:
    """A root seed derived from the case's, for streams independent of the search's."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def first_step_weights(targets) -> np.ndarray:
    """Diagonal: each moment's miss in units of its kind's tolerance."""
    return np.diag([1.0 / TOLERANCE[m.kind] ** 2 for m in targets])


def variance_floor(targets) -> np.ndarray:
    """Each moment's least variance: half its kind's tolerance, squared. A share of links
    that no replicate varies at the pilot point says little about its variance elsewhere;
    with a tenth of the tolerance such a moment weighed a hundred times its first-step
    weight and the fit gave up QQ's size for it (2026-12-03: QQ per WeChat user 0.67
    against 0.43). Half caps any moment at four times its first-step weight."""
    return np.array([(0.5 * TOLERANCE[m.kind]) ** 2 for m in targets])


def optimal_weights(targets, per_replicate: np.ndarray) -> np.ndarray:
    """The inverse of the moments' covariance across replicates, each variance floored
    at half its tolerance squared (a 0/1 outcome that never varies would
    otherwise weigh infinitely). With fewer than twice as many replicates as moments
    the covariances are too noisy to invert: the variances alone are used."""
    floor = variance_floor(targets)
    omega = np.atleast_2d(np.cov(per_replicate, rowvar=False))
    if len(per_replicate) < 2 * len(targets):
        omega = np.diag(np.diag(omega))
    return np.linalg.pinv(omega + np.diag(floor))


def objective(mean: np.ndarray, target: np.ndarray, weights: np.ndarray) -> float:
    gap = mean - target
    return float(gap @ weights @ gap)


def calibrate(case: Scenario, budget: Budget = Budget(), progress: bool = True) -> dict:
    """Fit the unpinned parameters; return the fit, the moments and the identification
    report as tidy tables, and the overrides of the identified parameters."""
    from tqdm import tqdm

    if not has_record(case):
        raise ScenarioError(case.source, "platforms", "calibrate fits the 2021 record: the "
                            "case needs WeChat and QQ among its messaging platforms, a "
                            "start_date and regulator.policy = \"order\"")
    dims = len(parameters(case))
    total = (budget.design_points + 1 + budget.polish_evaluations + 2 * dims
             + PROFILE_POINTS * dims + 1)  # more if a profile finds a better point
    with tqdm(total=total, desc="calibrate", unit="eval", disable=not progress) as bar:
        problem = Problem(case, budget, bar)
        target = problem.target
        # the case's own values join the design: a fit that cannot beat them says so
        design = np.vstack([stats.qmc.Sobol(dims, scramble=True,
                                            seed=np.random.default_rng(case.seed)
                                            ).random(budget.design_points),
                            [p.position(current_value(case, p.keys[0])) for p in problem.params]])
        first = first_step_weights(problem.targets)
        first_scores = [objective(problem.moments(u).mean(axis=0), target, first)
                        for u in design]
        pilot = design[int(np.argmin(first_scores))]
        weights = optimal_weights(problem.targets, problem.moments(pilot))
        scores = [objective(problem.moments(u).mean(axis=0), target, weights) for u in design]

        def loss(u):
            return objective(problem.moments(u).mean(axis=0), target, weights)

        # the objective is a step function with several near-equal valleys: polish the
        # best few design points, not only the best one
        candidates = []
        for start in design[np.argsort(scores)[:budget.starts]]:
            polished = optimize.minimize(
                loss, start, method="Nelder-Mead", bounds=[(0, 1)] * dims,
                options={"maxfev": budget.polish_evaluations // budget.starts, "xatol": 1e-3,
                         "fatol": 1e-4, "initial_simplex": simplex(start, 0.1)})
            candidates.append(np.clip(polished.x, 0.0, 1.0))
        u, profiles = line_searches(problem, min(candidates, key=loss), loss,
                                    budget.profile_rounds)
        u = best_evaluated(problem, loss)
        profiles = profiles_at(problem, u, profiles, loss)
        fitted = problem.moments(u)
        errors, jacobian = standard_errors(problem, u, fitted, weights,
                                           variance_floor(problem.targets))
        fresh = problem.fresh_moments(u)
        bar.total = problem.evaluations
        bar.refresh()
    theta = problem.values(u)
    identification = identify(problem, u, jacobian, weights, errors)
    best = objective(fitted.mean(axis=0), target, weights)
    identification["overidentification"] = hansen_j(best, budget.replicates,
                                                    len(problem.targets), dims)
    bound_by_profiles(identification["parameters"], profiles, u, problem.params, best,
                      budget.replicates)
    # the sandwich's pseudo-inverse gives a finite error along directions the moments
    # do not see; such a parameter has none
    errors = np.where([r["unseen_share"] >= 0.5 for r in identification["parameters"]],
                      math.inf, errors)
    pinned = {row["parameter"]: row["identified"] for row in identification["parameters"]}
    at_bound = {row["parameter"]: row["at_bound"] for row in identification["parameters"]}
    mean, sd = fitted.mean(axis=0), fitted.std(axis=0, ddof=1)
    fresh_mean, fresh_sd = fresh.mean(axis=0), fresh.std(axis=0, ddof=1)
    fresh_objective = objective(fresh_mean, target, weights)
    # intervals on the search scale, mapped back: inside the range, asymmetric for the
    # parameters searched on a log scale
    search = errors / np.array([p.slope(x) for p, x in zip(problem.params, u)])
    fit = [{"parameter": p.name, "estimate": v, "std_error": float(e),
            "ci_low": p.value(float(np.clip(x - 1.96 * se, 0.0, 1.0))) if np.isfinite(se)
            else p.low,
            "ci_high": p.value(float(np.clip(x + 1.96 * se, 0.0, 1.0))) if np.isfinite(se)
            else p.high,
            "identified": pinned[p.name], "at_bound": at_bound[p.name], "low": p.low,
            "high": p.high, "meaning": p.doc}
           for p, v, e, x, se in zip(problem.params, theta, errors, u, search)]
    moment_rows = [{"moment": m.name, "target": m.target, "simulated": float(mean[i]),
                    "sd": float(sd[i]), "simulated_fresh": float(fresh_mean[i]),
                    "sd_fresh": float(fresh_sd[i]), "weight": float(weights[i, i]), "kind": m.kind,
                    "approximate": m.approximate, "meaning": m.doc, "source": m.source}
                   for i, m in enumerate(problem.targets)]
    return {"fit": fit, "moments": moment_rows, "jacobian": jacobian.tolist(),
            "identification": identification, "profiles": profiles,
            "objective": objective(mean, target, weights),
            "fresh": {"seed": fresh_seed(case.seed), "objective": fresh_objective,
                      **hansen_j(fresh_objective, budget.replicates, len(problem.targets),
                                 dims)},
            "start_objective": float(min(scores)),
            "case_objective": float(scores[-1]),
            "design": [{**dict(zip((p.name for p in problem.params), problem.values(x))),
                        "objective": score} for x, score in zip(design, scores)],
            "evaluations": problem.evaluations, "replicates": budget.replicates,
            "weeks": problem.weeks,
            "overrides": {key: value for p, v in zip(problem.params, theta) if pinned[p.name]
                          for key, value in p.settings(case, v)},
            "held": [p.name for p in problem.params if not pinned[p.name]],
            "keys": {p.name: list(p.keys) for p in problem.params},
            "settings": {p.name: p.settings(case, v) for p, v in zip(problem.params, theta)}}


def hansen_j(value: float, replicates: int, moments: int, parameters: int) -> dict:
    """Hansen's test of the over-identifying restrictions. With W the inverse of the
    moments' covariance Omega, J = value / (1 + 1/S) is chi-squared with M - P degrees
    of freedom if the model is right (the floor on each variance makes J smaller, so the
    test errs towards not rejecting)."""
    J = value / (1.0 + 1.0 / replicates)
    df = moments - parameters
    return {"J": J, "degrees_of_freedom": df,
            "p_value": float(stats.chi2.sf(J, df)) if df > 0 else math.nan}


def current_value(case: Scenario, key: str) -> float:
    """The case's value of a parameter's scenario key (the start of the search)."""
    parts = key.split(".")
    if parts[0] == "platforms":
        return getattr(next(p for p in case.platforms if p.name == parts[1]), parts[2])
    if parts[:2] == ["users", "cohorts"]:
        cohort = next(c for c in case.users.cohorts if c.name == parts[2])
        return cohort.taste.get(parts[4], 0.0) if parts[3] == "taste" else cohort.share
    value = getattr(getattr(case, parts[0]), parts[1])
    return value[parts[2]] if len(parts) == 3 else value


def simplex(start: np.ndarray, size: float) -> np.ndarray:
    """A Nelder-Mead starting simplex around `start`, inside the unit cube."""
    vertices = [start]
    for i in range(len(start)):
        vertex = start.copy()
        vertex[i] = vertex[i] + size if vertex[i] + size <= 1 else vertex[i] - size
        vertices.append(vertex)
    return np.array(vertices)


def jacobian_of(problem, u: np.ndarray, h: float = 0.05) -> np.ndarray:
    """d mean moments / d u by central differences under common random numbers."""
    columns = []
    for i in range(len(u)):
        up, down = u.copy(), u.copy()
        up[i], down[i] = min(u[i] + h, 1.0), max(u[i] - h, 0.0)
        columns.append((problem.moments(up).mean(axis=0) - problem.moments(down).mean(axis=0))
                       / (up[i] - down[i]))
    return np.array(columns).T                                  # (moments, parameters)


def standard_errors(problem, u: np.ndarray, fitted: np.ndarray, weights: np.ndarray,
                    floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sandwich standard errors of the MSM estimate for one observed history.

    V = (1 + 1/S) (G'WG)^-1 G'W Omega W G (G'WG)^-1, with G the Jacobian of the mean
    moments, Omega the moments' covariance across replicates and S the number of
    replicates; then the delta method takes V from the search scale to the
    parameters'. A parameter the moments do not move is not identified: its standard
    error is infinite. Omega carries the variance floor the weights carry, so a moment
    that never varies across replicates cannot add information without noise.
    """
    G = jacobian_of(problem, u)
    W = np.atleast_2d(weights) if np.ndim(weights) == 2 else np.diag(weights)
    omega = np.atleast_2d(np.cov(fitted, rowvar=False)) + np.diag(floor)
    S = len(fitted)
    errors = np.full(len(u), math.inf)
    identified = np.abs(G).sum(axis=0) > 0
    if identified.any():
        g = G[:, identified]
        bread = np.linalg.pinv(g.T @ W @ g)
        V = (1 + 1 / S) * bread @ g.T @ W @ omega @ W @ g @ bread
        slopes = np.array([p.slope(x) for p, x in zip(problem.params, u)])[identified]
        errors[identified] = slopes * np.sqrt(np.maximum(np.diag(V), 0.0))
    return errors, G


def identify(problem, u, jacobian: np.ndarray, weights: np.ndarray,
             errors: np.ndarray) -> dict:
    """What the moments pin down: the singular values of W^1/2 G (search scale), its
    numerical rank and condition number, and per parameter whether it is identified
    (a finite standard error, on the search scale, below IDENTIFIED_RANGE of the
    search range, and an estimate inside the range) and how much of it lies in the
    directions the moments barely see. At a bound of its range the minimum may lie
    beyond it and the sandwich's standard error, which assumes an interior minimum,
    does not apply: such a parameter is not identified by its range."""
    root = np.linalg.cholesky(weights + 1e-12 * np.eye(len(weights))).T
    scaled = root @ jacobian
    _, singular, right = np.linalg.svd(scaled, full_matrices=True)
    tolerance = max(scaled.shape) * np.finfo(float).eps * max(singular.max(initial=0.0), 1e-300)
    weak = 1e-3 * singular.max(initial=0.0)
    rank = int((singular > max(tolerance, weak)).sum())
    strong = singular[singular > 0]
    condition = float(strong.max() / strong.min()) if len(strong) == len(u) else math.inf
    null = right[rank:]                          # directions the moments do not see
    rows = []
    for i, p in enumerate(problem.params):
        search = float(errors[i] / p.slope(u[i]))      # the error in units of the range
        share = float((null[:, i] ** 2).sum()) if len(null) else 0.0
        at_bound = bool(min(u[i], 1 - u[i]) < AT_BOUND)
        rows.append({"parameter": p.name,
                     "std_error_share_of_range": search,
                     "unseen_share": share,
                     "at_bound": at_bound,
                     "identified": bool(math.isfinite(search) and search <= IDENTIFIED_RANGE
                                        and share < 0.5 and not at_bound)})
    return {"singular_values": singular.tolist(), "rank": rank, "parameters_count": len(u),
            "condition_number": condition, "parameters": rows}


def bound_by_profiles(rows: list[dict], profiles: list[dict], u: np.ndarray, params,
                      best: float, replicates: int) -> None:
    """The profile's view of identification, beside the sandwich's. Under optimal
    weights Q(theta) - Q(theta_hat) is (1 + 1/S) chi-squared(1) along one parameter, so
    the profile points within (1 + 1/S) x 3.84 of the fit's objective span a 95%
    region (the others held, so it is narrower than the joint one). On a rough
    simulated objective the finite-difference Jacobian can be steep across a jump
    where the profile is flat: a parameter whose profile region spans more than half
    its range is not identified, whatever its standard error."""
    threshold = best + (1 + 1 / replicates) * stats.chi2.ppf(0.95, 1)
    for row, p, x in zip(rows, params, u):
        inside = [r["position"] for r in profiles if r["parameter"] == p.name
                  and r["objective"] <= threshold] + [float(x)]
        row["profile_low"], row["profile_high"] = p.value(min(inside)), p.value(max(inside))
        row["identified"] = row["identified"] and max(inside) - min(inside) <= 0.5


def line_searches(problem, u: np.ndarray, loss, rounds: int) -> tuple[np.ndarray, list[dict]]:
    """Profile the objective at u; a profile is a line search along one parameter, and
    on a rough simulated objective it can find a better point than the polish: move
    there and profile again, up to `rounds` times. Returns the point and its profiles."""
    rows = profile(problem, u, loss)
    for _ in range(rounds):
        best = min(rows, key=lambda row: row["objective"])
        if best["objective"] >= loss(u):
            break
        u = u.copy()
        u[[p.name for p in problem.params].index(best["parameter"])] = best["position"]
        rows = profile(problem, u, loss)
    return u, rows


def best_evaluated(problem, loss) -> np.ndarray:
    """The point of least objective among every point evaluated (the design, the polish,
    the profiles): on a rough simulated objective the last profile can find a better
    point than the one it was drawn around, and the estimate is the best one seen."""
    return np.array(min(problem.cache, key=lambda u: loss(np.array(u))))


def profiles_at(problem, u: np.ndarray, profiles: list[dict], loss) -> list[dict]:
    """The profiles around the estimate: the best point evaluated can be one the last
    profiles found rather than the point they were drawn around, and then they are
    redrawn at it, so that the region they bound is the estimate's (a referee found the
    fifth fit's profiles drawn around another point, every one of them above the
    threshold, so they bounded nothing). A redrawn profile may find a better point
    still; the estimate stays, and that point widens the profile's region."""
    names = [p.name for p in problem.params]
    at = [p.value(float(x)) for p, x in zip(problem.params, u)]
    if profiles and all(row["fitted"] == at[names.index(row["parameter"])] for row in profiles):
        return profiles
    return profile(problem, u, loss)


def profile(problem, u: np.ndarray, loss) -> list[dict]:
    """The objective along each parameter's range, the others held at the fit."""
    rows = []
    for i, p in enumerate(problem.params):
        for x in np.linspace(0.0, 1.0, PROFILE_POINTS):
            moved = u.copy()
            moved[i] = x
            rows.append({"parameter": p.name, "value": p.value(x), "position": float(x),
                         "objective": loss(moved), "fitted": p.value(u[i])})
    return rows
