"""The benchmark's machinery (its numbers are reported, never asserted on speed)."""

import json

import pytest

from sim.experiments import bench
from sim.cli import main

from conftest import assert_reads_plotlyjs_from_beside


@pytest.mark.parametrize("engine", ["agent", "array"])
def test_measure_reports_speed_and_memory_for_a_small_grid(engine):
    row = bench.measure(engine, 8, 2)
    assert row["users"] == 64 and row["weeks"] == 2
    assert row["seconds_per_step"] > 0 and row["user_steps_per_second"] > 0
    assert row["peak_rss_mib"] > 0


def test_array_engine_state_stays_within_64_bytes_per_user():
    row = bench.measure("array", 60, 1)
    assert 0 < row["bytes_per_user"] <= 64


def test_summary_recovers_ratio_and_linear_growth():
    rows = [{"engine": e, "side": side, "users": side * side, "weeks": 1,
             "seconds_per_step": cost * side * side, "user_steps_per_second": 1 / cost,
             "total_seconds": 1.0, "peak_rss_mib": 1.0}
            for e, cost in (("agent", 1e-4), ("array", 1e-6)) for side in (10, 100)]
    summary = bench.summarise(rows)
    assert summary["speed_ratio_array_over_agent"]["100"] == pytest.approx(100)
    assert summary["growth_exponent"]["array"] == pytest.approx(1.0)


def test_bench_page_reads_plotlyjs_from_beside_it(tmp_path, monkeypatch):
    # Measured for real, on grids small enough for a test; the sweep and server parts
    # of the plan only add rows to bench.json, not to the page.
    rows = [bench.measure(engine, side, 2) for engine in ("agent", "array") for side in (6, 10)]
    summary = {**bench.summarise(rows), "sweeps": [],
               "page": bench.page_timings(chromium=str(tmp_path / "no-browser"))}
    monkeypatch.setattr(bench, "run", lambda quick, progress: (rows, summary))
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--quiet", "--out", str(out)]) == 0
    assert_reads_plotlyjs_from_beside(out / "bench.html")
    assert "plotly.min.js" in json.loads((out / "manifest.json").read_text())["files"]


def test_student_page_share_of_a_step_is_measured():
    row = bench.server_update(side=10, weeks=1)
    assert row["side"] == 10 and row["seconds_per_step_and_update"] > 0


def test_student_page_timing_says_why_when_there_is_no_browser(tmp_path):
    assert "no browser" in bench.page_timings(chromium=str(tmp_path / "none"))["skipped"]


def test_each_target_is_printed_beside_its_figure_or_as_not_measured():
    lines = bench.target_lines({"targets": bench.TARGETS, "reached": {
        "page_new_tab_seconds": 2.5, "page_40x40_play_steps_per_second_at_200ms": 5.2}})
    assert len(lines) == len(bench.TARGETS)
    by_name = dict(line.split(": ", 1) for line in lines)
    assert by_name["page_new_tab_seconds"] == "2.50 (target: at most 2.00; NOT met)"
    assert by_name["page_40x40_play_steps_per_second_at_200ms"] == \
        "5.20 (target: at least 5.00; met)"
    assert by_name["case_1_100_seconds"] == "not measured (target: at most 120)"
