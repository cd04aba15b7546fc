"""Running replicates of a scenario: seeds, steps, rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.experiments.interrupts import INTERRUPTED
from sim.model.model import WalledGardenModel
from sim.scenario import Scenario


BYTES_PER_USER = {"agent": 4000, "array": 64}   # state and working memory, measured by bench
BYTES_PER_ROW = 3000                            # one week's row as Python objects
BYTES_PER_SUMMARY = 10000                       # one run's summary and task, in a sweep


def memory_estimate(scenario: Scenario) -> float:
    """Bytes a run of this scenario needs at its peak (one replicate's users at a
    time, every replicate's rows)."""
    return users_memory(scenario) + scenario.replicates * scenario.steps * BYTES_PER_ROW


def users_memory(scenario: Scenario) -> float:
    users = scenario.grid.width * scenario.grid.height * scenario.grid.density
    return users * BYTES_PER_USER[scenario.engine]


def sweep_memory_estimate(scenarios: list[Scenario], replicates: int, workers: int) -> float:
    """Bytes a sweep needs at its peak: each worker runs one replicate at a time (its
    users and rows), and the main process keeps every run's summary."""
    one_run = max(users_memory(s) + s.steps * BYTES_PER_ROW for s in scenarios)
    return workers * one_run + len(scenarios) * replicates * BYTES_PER_SUMMARY


def available_memory() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return float("inf")


def replicate_seed(root: int, replicate: int) -> np.random.SeedSequence:
    """The replicate's own stream, derived by key so it does not depend on run order
    (the same stream as SeedSequence(root).spawn(n)[replicate])."""
    return np.random.SeedSequence(root, spawn_key=(replicate,))


@dataclass
class ReplicateResult:
    replicate: int
    rows: list[dict]
    events: list[dict]


def run_replicate(scenario: Scenario, replicate: int,
                  on_step: Callable[[], None] | None = None) -> ReplicateResult:
    """Run one replicate for scenario.steps weeks and return its rows and events."""
    model = WalledGardenModel(scenario, rng=replicate_seed(scenario.seed, replicate))
    for _ in range(scenario.steps):
        model.step()
        if INTERRUPTED.is_set():            # a Ctrl-C that numba's compiler swallowed
            raise KeyboardInterrupt
        if on_step:
            on_step()
    for row in model.rows:
        row["replicate"] = replicate
    return ReplicateResult(replicate, model.rows, model.events)


def run_scenario(scenario: Scenario, progress: bool = True) -> list[ReplicateResult]:
    """Every replicate of a scenario, in replicate order, with a progress bar."""
    from tqdm import tqdm

    with tqdm(total=scenario.replicates * scenario.steps, unit="week", disable=not progress,
              desc=scenario.name, leave=False) as bar:
        return [run_replicate(scenario, r, on_step=lambda: bar.update(1))
                for r in range(scenario.replicates)]
