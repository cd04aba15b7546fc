"""The model and its engines: the market (`model.py`), its agents (`agents.py`) or the
same users as arrays (`array_engine.py`), the users' rules (`rules.py`, `cohorts.py`,
`network.py`), the shared market state (`market.py`), the platforms' decisions
(`decisions.py`, `strategies.py`) and what is measured each week (`metrics.py`)."""
