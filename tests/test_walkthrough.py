"""The README's walk-through, from a sweep to a Sobol table and a PRIM box, runs as
written (smaller, through overrides, so that it fits in a test)."""

import csv
import re
import shlex

import pytest

from sim.cli import main

from conftest import ROOT

pytest.importorskip("ema_workbench")

HEADING = "## A first sweep: a Sobol table and a PRIM box"
# Fewer users and one replicate: the same design, its points and its commands.
SMALLER = ["--replicates", "1", "--set", "grid.width=10", "--set", "grid.height=10",
           "--no-png", "--quiet", "--workers", "2"]


def walkthrough_commands() -> list[list[str]]:
    """The `python run.py ...` lines of the README's walk-through, as arguments."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split(HEADING, 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line, comments=True)[2:] for line in block.splitlines()
            if line.startswith("python run.py ")]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_readme_walkthrough_gives_sobol_indices_and_a_prim_box(tmp_path, monkeypatch,
                                                                    capsys):
    commands = walkthrough_commands()
    assert [c[0] for c in commands] == ["sweep", "discover"]
    sweep, discover = commands
    # Run from a fresh folder that sees the project's scenarios, as a new user would
    # from the top of the repository; results/ is then the test's own.
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    monkeypatch.chdir(tmp_path)
    assert main(sweep + SMALLER) == 0
    assert main(discover) == 0
    printed = capsys.readouterr().out

    results = tmp_path / "results"
    indices = read(results / "opening/figures/sobol.csv")
    parameters = {"regulator.deadline_step", "regulator.audit_probability", "regulator.fine"}
    for metric in ("mean_links_blocked", "total_fines", "mean_consumer_surplus"):
        rows = [r for r in indices if r["metric"] == metric]
        assert {(r["index"], r["parameter"]) for r in rows} == {
            (index, p) for index in ("S1", "ST") for p in parameters}
        assert all(float(r["ci_low"]) < float(r["estimate"]) < float(r["ci_high"])
                   for r in rows)
    # Links open before week 20 in some runs and not in others, so there is a box.
    boxes = read(results / "discover/opening-steps_to_open/boxes.csv")
    chosen = [r for r in boxes if r["method"] == "prim" and r["chosen"] == "1"]
    assert {r["parameter"] for r in chosen} == parameters
    assert any(r["restricted"] == "1" for r in chosen)
    coverage, density = float(chosen[0]["coverage"]), float(chosen[0]["density"])
    assert 0 < coverage <= 1 and 0 < density <= 1
    everywhere = float(read(results / "discover/opening-steps_to_open/trajectory.csv")[0]["density"])
    assert everywhere < 1 and density > everywhere     # the box holds more of them than all runs
    assert "steps_to_open < 20.0" in printed and "PRIM box: coverage" in printed
