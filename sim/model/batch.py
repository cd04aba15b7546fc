"""The model with flat keyword parameters, for `mesa.batch_run`.

    from mesa import batch_run
    from sim.model.batch import BatchModel
    rows = batch_run(BatchModel, {"scenario": "scenarios/china_2021.toml",
                                  "regulator__fine": [0.0, 0.04], "replicate": range(10)},
                     number_processes=1, data_collection_period=-1)

Dotted scenario keys are written with double underscores (`regulator__fine`,
`platforms__WeChat__strategy`). Seeds map as on the command line: replicate r of
seed s (the scenario's `seed` unless given) runs on `SeedSequence(s, spawn_key=(r,))`,
so `replicate=r` gives the same weeks as row `replicate == r` of `python run.py run`
or `sim.run()`. batch_run's `iterations` pass nothing to the model (every iteration
would repeat the same run): vary `replicate` instead.

The model stops after the scenario's `steps`, so batch_run's last row is the final
week whatever its `max_steps` above that. batch_run's own `Step` counts collections
from 0 (week 1 is its Step 0); the `step` column is the week.
"""

from __future__ import annotations

import json

from sim.model.model import WalledGardenModel
from sim.experiments.runner import replicate_seed
from sim.scenario import load


class BatchModel(WalledGardenModel):
    """WalledGardenModel built from a scenario file plus flat keyword overrides."""

    def __init__(self, scenario: str = "scenarios/china_2021.toml", seed: int | None = None,
                 replicate: int = 0, **parameters):
        overrides = [f"{name.replace('__', '.')}={json.dumps(value)}"
                     for name, value in parameters.items()]
        if seed is not None:
            overrides.append(f"seed={int(seed)}")
        spec = load(scenario, overrides)
        super().__init__(spec, rng=replicate_seed(spec.seed, replicate))
