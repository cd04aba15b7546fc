"""The model with flat keyword parameters and a DataCollector, for `mesa.batch_run`.

    from mesa import batch_run
    from sim.batch import BatchModel
    rows = batch_run(BatchModel, {"scenario": "scenarios/china_2021.toml",
                                  "regulator__fine": [0.0, 0.04], "seed": [1, 2, 3]},
                     number_processes=1, max_steps=200)

Dotted scenario keys are written with double underscores (`regulator__fine`,
`platforms__WeChat__strategy`). batch_run reuses one seed for every iteration, so
vary `seed` as a parameter rather than using `iterations`.
"""

from __future__ import annotations

import json
import math
from functools import partial

from mesa.datacollection import DataCollector

from sim.metrics import columns
from sim.model import WalledGardenModel
from sim.scenario import load


def latest(model, column: str):
    """The last recorded week's value (NaN before the first week)."""
    return model.rows[-1][column] if model.rows else math.nan


class BatchModel(WalledGardenModel):
    """WalledGardenModel built from a scenario file plus flat keyword overrides."""

    def __init__(self, scenario: str = "scenarios/china_2021.toml", seed=None, **parameters):
        overrides = [f"{name.replace('__', '.')}={json.dumps(value)}"
                     for name, value in parameters.items()]
        super().__init__(load(scenario, overrides), rng=seed)
        reporters = {column: partial(latest, column=column)
                     for column in columns(self.scenario) if column not in ("replicate", "step")}
        self.datacollector = DataCollector(model_reporters=reporters)
        self.datacollector.collect(self)

    def step(self) -> None:
        super().step()
        self.datacollector.collect(self)
        self.running = self.steps < self.scenario.steps
