"""Calibration by the method of simulated moments (McFadden 1989; Pakes & Pollard 1989).

The parameters that no source pins down are fitted so that the case's simulated
moments match the record (`sim.validation.RECORD`): how long the largest platform
took to open one-on-one chat after the deadline, QQ's opening for the deadline and
its re-block, the feed staying closed, and WeChat's and QQ's 2021 sizes. Every evaluation uses the same replicate
seeds (common random numbers), so the objective is a fixed function of the
parameters. A scrambled Sobol design over the search box finds a start, Nelder-Mead
polishes it, and the standard errors come from the sandwich formula with a
finite-difference Jacobian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from sim.scenario import Scenario, ScenarioError
from sim.validation import RECORD, WECHAT, case_moments, derive, has_record, simulate


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

    def slope(self, u: float) -> float:
        """d value / d u, for the delta method."""
        if self.log:
            return self.value(u) * math.log(self.high / self.low)
        return self.high - self.low


def parameters(case: Scenario) -> list[Parameter]:
    """The unpinned parameters; platform-level ones are shared by the messaging platforms."""
    def each(key):
        return tuple(f"platforms.{p.name}.{key}" for p in case.messaging)
    return [
        Parameter("token_cost", ("users.token_cost",), 0.05, 1.5,
                  "time cost of a copy-paste token, in units of a share's mean value"),
        Parameter("diversion", each("diversion"), 0.1, 1.0,
                  "share of blocked visits diverted to the host owner's services"),
        Parameter("audit_belief", each("audit_belief"), 0.001, 0.1,
                  "platforms' prior belief of the weekly audit probability after a deadline",
                  log=True),
        Parameter("deadline_credibility", each("deadline_credibility"), 0.02, 1.0,
                  "platforms' belief that the announced deadline check will come", log=True),
    ] + [Parameter(f"quality_{p.name}", (f"platforms.{p.name}.quality",), 0.0, 0.6,
                   f"{p.name}'s intrinsic appeal to users ({WECHAT}'s is the reference)")
         for p in case.messaging if p.name != WECHAT]


MOMENTS = tuple(RECORD)


@dataclass(frozen=True)
class Budget:
    replicates: int = 20
    design_points: int = 128     # Sobol points (a power of two)
    polish_evaluations: int = 120
    starts: int = 3              # Nelder-Mead runs, from the best design points
    weeks: int = 60


QUICK_BUDGET = Budget(replicates=6, design_points=8, polish_evaluations=10, weeks=40, starts=1)


class Problem:
    """The simulated moments of the case as a function of the search position u."""

    def __init__(self, case: Scenario, budget: Budget, progress=None):
        self.case, self.budget, self.progress = case, budget, progress
        self.params = parameters(case)
        self.evaluations = 0

    def values(self, u) -> list[float]:
        return [p.value(float(x)) for p, x in zip(self.params, u)]

    def scenario(self, u) -> Scenario:
        overrides = [(key, value) for p, value in zip(self.params, self.values(u))
                     for key in p.keys]
        return derive(self.case, ("steps", self.budget.weeks), *overrides)

    def moments(self, u) -> np.ndarray:
        """Moments per replicate, shape (replicates, moments)."""
        self.evaluations += 1
        if self.progress:
            self.progress.update(1)
        runs = simulate(self.scenario(u), self.budget.replicates)
        per_run = [case_moments(self.case, run) for run in runs]
        return np.array([[m[k] for k in MOMENTS] for m in per_run])


def moment_weights() -> np.ndarray:
    """Each moment's miss is measured in units of 10% of its target (of 0.01 for
    targets below 0.1): a week of lag, a re-block probability and a market share
    then weigh alike as relative errors."""
    scale = 0.1 * np.array([max(abs(RECORD[k]), 0.1) for k in MOMENTS])
    return 1.0 / scale ** 2


def objective(mean: np.ndarray, weights: np.ndarray) -> float:
    gap = mean - np.array([RECORD[k] for k in MOMENTS])
    return float(gap @ (weights * gap))


def calibrate(case: Scenario, budget: Budget = Budget(), progress: bool = True) -> dict:
    """Fit the unpinned parameters; return the fit as tidy tables and the overrides."""
    from tqdm import tqdm

    if not has_record(case):
        raise ScenarioError(case.source, "platforms", "calibrate fits the 2021 record: the "
                            "case needs WeChat and QQ among its messaging platforms and "
                            "regulator.policy = \"order\"")
    dims = len(parameters(case))
    total = budget.design_points + budget.polish_evaluations + 2 * dims + 1
    with tqdm(total=total, desc="calibrate", unit="eval", disable=not progress) as bar:
        problem = Problem(case, budget, bar)
        design = stats.qmc.Sobol(dims, scramble=True, seed=np.random.default_rng(case.seed)
                                 ).random(budget.design_points)
        pilot = [problem.moments(u) for u in design]
        weights = moment_weights()
        scores = [objective(m.mean(axis=0), weights) for m in pilot]
        start_score = min(scores)
        cache = {tuple(u): m for u, m in zip(design, pilot)}

        def loss(u):
            u = np.clip(u, 0.0, 1.0)
            if tuple(u) not in cache:
                cache[tuple(u)] = problem.moments(u)
            return objective(cache[tuple(u)].mean(axis=0), weights)

        # the objective is a step function with several near-equal valleys: polish the
        # best few design points, not only the best one
        candidates = []
        for start in design[np.argsort(scores)[:budget.starts]]:
            polished = optimize.minimize(
                loss, start, method="Nelder-Mead", bounds=[(0, 1)] * dims,
                options={"maxfev": budget.polish_evaluations // budget.starts, "xatol": 1e-3,
                         "fatol": 1e-4, "initial_simplex": simplex(start, 0.1)})
            candidates.append(np.clip(polished.x, 0.0, 1.0))
        u = min(candidates, key=loss)
        fitted = cache[tuple(u)]
        errors, jacobian = standard_errors(problem, u, fitted, weights)
        bar.total = problem.evaluations
        bar.refresh()
    theta = problem.values(u)
    mean, sd = fitted.mean(axis=0), fitted.std(axis=0, ddof=1)
    fit = [{"parameter": p.name, "estimate": v, "std_error": float(e),
            "ci_low": float(v - 1.96 * e), "ci_high": float(v + 1.96 * e),
            "low": p.low, "high": p.high, "meaning": p.doc}
           for p, v, e in zip(problem.params, theta, errors)]
    moments = [{"moment": k, "target": RECORD[k], "simulated": float(mean[i]),
                "sd": float(sd[i]), "weight": float(weights[i])} for i, k in enumerate(MOMENTS)]
    return {"fit": fit, "moments": moments, "jacobian": jacobian.tolist(),
            "objective": objective(mean, weights), "start_objective": start_score,
            "design": [{**{p.name: v for p, v in zip(problem.params, problem.values(u))},
                        "objective": score} for u, score in zip(design, scores)],
            "evaluations": problem.evaluations,
            "replicates": budget.replicates,
            "overrides": {key: v for p, v in zip(problem.params, theta) for key in p.keys}}


def simplex(start: np.ndarray, size: float) -> np.ndarray:
    """A Nelder-Mead starting simplex around `start`, inside the unit cube."""
    vertices = [start]
    for i in range(len(start)):
        vertex = start.copy()
        vertex[i] = vertex[i] + size if vertex[i] + size <= 1 else vertex[i] - size
        vertices.append(vertex)
    return np.array(vertices)


def standard_errors(problem: Problem, u: np.ndarray, fitted: np.ndarray,
                    weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sandwich standard errors of the MSM estimate for one observed history.

    V = (1 + 1/S) (G'WG)^-1 G'W Omega W G (G'WG)^-1, with G the Jacobian of the mean
    moments (central differences under common random numbers), Omega the moments'
    covariance across replicates and S the number of replicates; then the delta
    method takes V from the search scale to the parameters'. A parameter the moments
    do not move is not identified: its standard error is infinite.
    """
    h = 0.05
    columns = []
    for i in range(len(u)):
        up, down = u.copy(), u.copy()
        up[i], down[i] = min(u[i] + h, 1.0), max(u[i] - h, 0.0)
        columns.append((problem.moments(up).mean(axis=0) - problem.moments(down).mean(axis=0))
                       / (up[i] - down[i]))
    G = np.array(columns).T                                  # (moments, parameters)
    W = np.diag(weights)
    omega = np.atleast_2d(np.cov(fitted, rowvar=False))
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
