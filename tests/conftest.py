"""Shared helpers: small, fast variants of the shipped scenarios."""

import os
from pathlib import Path

import pytest

# Every model in the tests checks its invariants each week (sim.model.model.check_invariants);
# worker processes inherit the setting. Set before anything imports sim.model.model.
os.environ["WALLED_GARDEN_DEBUG"] = "1"

from sim.scenario import load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def small(name: str = "china_2021_homogeneous", *overrides: str, size: int = 16, steps: int = 30,
          replicates: int = 2):
    """A shipped scenario on a small grid, for tests."""
    return load(SCENARIOS / f"{name}.toml",
                [f"grid.width={size}", f"grid.height={size}", f"steps={steps}",
                 f"replicates={replicates}", *overrides])


@pytest.fixture
def root() -> Path:
    return ROOT


def assert_reads_plotlyjs_from_beside(page: Path) -> None:
    """An HTML page whose plotly.js is the plotly.min.js in its own folder: not embedded
    (4.8 MB per page), not fetched from a CDN, and there."""
    text = page.read_text(encoding="utf-8")
    assert len(text) < 300_000, f"{page.name} embeds plotly.js"
    assert 'src="plotly.min.js"' in text and "cdn." not in text
    assert (page.parent / "plotly.min.js").stat().st_size > 1_000_000
