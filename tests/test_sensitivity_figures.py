"""Sweeps' numbers and figures: sensitivity indices as tables, convergence with
replicates, one shared plotly.js, bands within a metric's range, notes for the empty."""

import csv
import json
import math

import numpy as np
import pytest

from sim.outputs import figures
from sim.cli import main

from test_sweep import sweep_cli, write_sweep

RANGES = ('"regulator.fine" = { low = 0.0, high = 0.1 }\n'
          '"users.token_cost" = { low = 0.05, high = 1.0 }')


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sobol_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sobol")
    path = write_sweep(tmp, RANGES, kind="sobol", samples=4)
    path.write_text(path.read_text().replace("samples = 4", "samples = 4\nsecond_order = true"))
    assert sweep_cli(path, tmp / "out", "--workers", "2") == 0
    return tmp / "out"


def test_sobol_indices_are_salibs_on_the_point_means_with_their_intervals(sobol_sweep):
    from SALib.analyze import sobol

    rows = read(sobol_sweep / "figures/sobol.csv")
    metric = "mean_consumer_surplus"
    mine = {(r["index"], r["parameter"], r["other_parameter"]): r for r in rows
            if r["metric"] == metric}
    assert set(mine) == {("S1", "regulator.fine", ""), ("S1", "users.token_cost", ""),
                         ("ST", "regulator.fine", ""), ("ST", "users.token_cost", ""),
                         ("S2", "regulator.fine", "users.token_cost")}
    summary = [r for r in read(sobol_sweep / "summary.csv") if r["metric"] == metric]
    assert len(summary) == 4 * (2 * 2 + 2)          # Saltelli with second order
    means = np.array([float(r["mean"]) for r in sorted(summary, key=lambda r: int(r["point"]))])
    problem = {"num_vars": 2, "names": ["regulator.fine", "users.token_cost"],
               "bounds": [[0.0, 0.1], [0.05, 1.0]]}
    expected = sobol.analyze(problem, means, calc_second_order=True, seed=9)
    for i, name in enumerate(problem["names"]):
        row = mine[("S1", name, "")]
        assert float(row["estimate"]) == pytest.approx(expected["S1"][i])
        half = (float(row["ci_high"]) - float(row["ci_low"])) / 2
        assert half == pytest.approx(expected["S1_conf"][i]) and half > 0
    assert float(mine[("S2", "regulator.fine", "users.token_cost")]["estimate"]) == \
        pytest.approx(expected["S2"][0, 1])


def test_convergence_table_ends_at_the_summary_and_figures_share_one_plotly(sobol_sweep):
    summary = {(r["point"], r["metric"]): r for r in read(sobol_sweep / "summary.csv")}
    rows = read(sobol_sweep / "figures/convergence.csv")
    last = [r for r in rows if r["replicates"] == "2"]
    assert len(last) == len(summary)
    for r in last:
        assert float(r["mean"]) == pytest.approx(float(summary[(r["point"], r["metric"])]["mean"]))
    first = [r for r in rows if r["replicates"] == "1"]
    assert all(r["ci_low"] == r["ci_high"] == r["mean"] for r in first)  # one replicate: no spread
    pages = sorted((sobol_sweep / "figures").glob("*.html"))
    assert {p.stem for p in pages} >= {"sobol_total_fines", "convergence_total_fines"}
    for page in pages:        # plotly.js is read from beside the page, not embedded
        text = page.read_text()
        assert len(text) < 200_000 and 'src="plotly.min.js"' in text
    manifest = json.loads((sobol_sweep / "manifest.json").read_text())
    assert manifest["files"]["figures/plotly.min.js"]
    assert {"figures/sobol.csv", "figures/convergence.csv"} <= set(manifest["files"])


def test_morris_indices_as_a_table(tmp_path):
    path = write_sweep(tmp_path, RANGES, kind="morris", samples=2)
    assert sweep_cli(path, tmp_path / "out") == 0
    rows = read(tmp_path / "out/figures/morris.csv")
    metric = "total_fines"
    got = {(r["index"], r["parameter"]): r for r in rows if r["metric"] == metric}
    for name in ("regulator.fine", "users.token_cost"):
        mu_star, mu = float(got[("mu_star", name)]["estimate"]), float(got[("mu", name)]["estimate"])
        assert mu_star >= abs(mu) - 1e-12 and float(got[("sigma", name)]["estimate"]) >= 0
        assert float(got[("mu_star", name)]["ci_low"]) <= mu_star <= float(
            got[("mu_star", name)]["ci_high"])
    assert not (tmp_path / "out/figures/sobol.csv").exists()


def test_second_order_belongs_to_sobol_designs_only(tmp_path, capsys):
    path = write_sweep(tmp_path, RANGES, kind="lhs", samples=4)
    path.write_text(path.read_text().replace("samples = 4", "samples = 4\nsecond_order = true"))
    assert sweep_cli(path, tmp_path / "out") == 2
    assert "design.second_order" in capsys.readouterr().err


def test_bands_stay_within_what_the_metric_can_take():
    rows = [{"a": x, "b": 1, "mean": m, "ci_low": m - 3, "ci_high": m + 3}
            for x, m in ((1, 0.5), (2, 0.9))]
    for metric, low, high in (("total_reblocks", 0, math.inf), ("final_hhi", 0, 1),
                              ("mean_consumer_surplus", -math.inf, math.inf)):
        band = figures.lines(rows, ["a", "b"], metric).data[0].y
        assert min(band) >= low and max(band) <= high
        assert (min(band) == low) == (low == 0)


def opening_runs(weeks):
    """Runs on a 2 x 2 grid: per cell, the weeks to open of each replicate (None: never)."""
    return [{"point": i, "replicate": r, "fine": fine, "deadline": deadline,
             "steps_to_open": math.nan if w is None else w}
            for i, ((fine, deadline), ws) in enumerate(weeks.items()) for r, w in enumerate(ws)]


def test_opening_heatmap_shows_how_often_and_when():
    runs = opening_runs({(0.0, 11): [None, None], (0.0, 14): [None, 20],
                         (0.1, 11): [12, 16], (0.1, 14): [None, None]})
    fig = figures.opening_heatmaps(runs, ["fine", "deadline"])
    share, never, weeks = fig.data
    assert np.array_equal(share.z, [[0.0, 1.0], [0.5, 0.0]])    # rows: deadline; cols: fine
    assert weeks.z[0][1] == 14 and weeks.z[1][0] == 20 and np.isnan(weeks.z[0][0])
    assert never.text[0][0] == "never" and never.z[0][0] == 1 and never.z[0][1] == 0
    assert not fig.layout.annotations[2:]       # the two panel titles, no note


def test_nothing_to_draw_is_said_not_left_blank():
    runs = opening_runs({(0.0, 11): [None], (0.1, 11): [None]})
    notes = [a.text for a in figures.opening_heatmaps(runs, ["fine", "deadline"]).layout.annotations]
    assert "it never happens at any point" in notes
    rows = [{"a": 1, "b": 2, "mean": math.nan}]
    fig = figures.heatmap(rows, ["a", "b"], "steps_to_open")
    assert "no replicate has a value" in fig.layout.annotations[0].text
