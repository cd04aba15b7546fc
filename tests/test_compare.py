"""compare: runs or sweep points by name, paired tests under common random numbers,
corrections across metrics, effect sizes, files, and inputs it cannot compare."""

import csv
import json
import math

import pytest
from scipy import stats

from sim.cli import main
from sim.outputs.compare import benjamini_hochberg, compare_runs, holm

from conftest import ROOT
from test_sweep import sweep_cli, write_sweep

CASE = ROOT / "scenarios/china_2021_homogeneous.toml"
SMALL = ["--set", "grid.width=8", "--set", "grid.height=8", "--steps", "12",
         "--replicates", "5", "--quiet"]


def run(out, *extra):
    assert main(["run", str(CASE), *SMALL, *extra, "--out", str(out)]) == 0


def summary_column(folder, metric):
    with open(folder / "summary.csv", newline="") as f:
        return [float(r[metric]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    run(tmp / "lenient", "--set", "regulator.fine=0.0")
    run(tmp / "strict", "--set", "regulator.fine=0.08")
    run(tmp / "strict_other_seed", "--set", "regulator.fine=0.08", "--seed", "77")
    return tmp


def test_common_seeds_are_paired_and_the_test_is_scipys(runs):
    rows = {r["metric"]: r for r in compare_runs(runs / "lenient", runs / "strict")}
    row = rows["mean_consumer_surplus"]
    assert row["paired"] and row["test"] == "paired t" and row["baseline"] == "lenient"
    x = summary_column(runs / "lenient", "mean_consumer_surplus")
    y = summary_column(runs / "strict", "mean_consumer_surplus")
    expected = stats.ttest_rel(y, x)
    assert row["p_value"] == pytest.approx(expected.pvalue)
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx(
        tuple(expected.confidence_interval()))
    assert row["effect_ci_low"] < row["effect_size"] < row["effect_ci_high"]


def test_other_seeds_are_independent_samples(runs):
    rows = {r["metric"]: r for r in compare_runs(runs / "lenient", runs / "strict_other_seed")}
    row = rows["mean_consumer_surplus"]
    assert not row["paired"] and row["test"] == "Welch t"
    x = summary_column(runs / "lenient", "mean_consumer_surplus")
    y = summary_column(runs / "strict_other_seed", "mean_consumer_surplus")
    assert row["p_value"] == pytest.approx(stats.ttest_ind(y, x, equal_var=False).pvalue)
    assert row["rank_p"] == pytest.approx(stats.mannwhitneyu(y, x).pvalue)


def test_p_values_are_adjusted_across_metrics(runs):
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan],
                                                               nan_ok=True)
    rows = compare_runs(runs / "lenient", runs / "strict")
    ps = [r["p_value"] for r in rows]
    assert [r["p_value_holm"] for r in rows] == pytest.approx(holm(ps), nan_ok=True)
    assert all(r["p_value_holm"] >= r["p_value"] for r in rows if not math.isnan(r["p_value"]))
    finite = [p for p in ps if not math.isnan(p)]
    assert [p for p in benjamini_hochberg(ps) if not math.isnan(p)] == pytest.approx(
        list(stats.false_discovery_control(finite)))


def test_the_comparison_is_written_with_names(runs, capsys):
    out = runs / "comparison"
    assert main(["compare", str(runs / "lenient"), str(runs / "strict"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "strict against lenient" in printed and "A/B" not in printed
    with open(out / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["baseline"] for r in rows} == {"lenient"} and {r["other"] for r in rows} == {"strict"}
    page = (out / "compare.html").read_text()
    assert "strict against lenient" in page and 'src="plotly.min.js"' in page
    assert (out / "plotly.min.js").stat().st_size > 1_000_000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "compare" and "compare.csv" in manifest["files"]
    # The same command again replaces its result; a run's folder is not a place for it.
    assert main(["compare", str(runs / "lenient"), str(runs / "strict"), "--out", str(out)]) == 0
    assert main(["compare", str(runs / "lenient"), str(runs / "strict"), "--out",
                 str(runs / "strict")]) == 2


@pytest.fixture(scope="module")
def crn_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crn")
    path = write_sweep(tmp, '"regulator.fine" = [0.0, 0.08]', replicates=4)
    # 30 weeks: a platform fined needs one that re-blocks and is caught after the deadline
    path.write_text(path.read_text().replace("seed = 9", "seed = 9\ncommon_random_numbers = true")
                    .replace('"steps" = 14', '"steps" = 30'))
    assert sweep_cli(path, tmp / "sweep") == 0
    return tmp / "sweep"


def test_sweep_points_by_number_or_id_paired_under_common_random_numbers(crn_sweep, capsys):
    with open(crn_sweep / "summary.csv", newline="") as f:
        second_id = next(r["point_id"] for r in csv.DictReader(f) if r["point"] == "1")
    rows = {r["metric"]: r for r in compare_runs(f"{crn_sweep}@0", f"{crn_sweep}@{second_id}")}
    row = rows["total_fines"]
    assert row["paired"] and row["baseline"] == "sweep@0" and row["other"] == "sweep@1"
    assert row["mean_baseline"] == 0 and row["difference"] > 0 and row["n_other"] == 4
    assert main(["compare", str(crn_sweep), f"{crn_sweep}@1", "--out",
                 str(crn_sweep.parent / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "@POINT" in err
    assert main(["compare", f"{crn_sweep}@7", f"{crn_sweep}@1", "--out",
                 str(crn_sweep.parent / "c")]) == 2
    assert "no such point" in capsys.readouterr().err
    assert not (crn_sweep.parent / "c").exists()
