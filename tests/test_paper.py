"""Reproducible papers: manifests, reproduce, and verify catching what changed."""

import contextlib
import csv
import io
import json
import re
import shutil

import pytest

from sim.cli import main
from sim.scenario import load

SMALL = ["--set", "grid.width=10", "--set", "grid.height=10", "--steps", "12",
         "--replicates", "2", "--quiet"]


@pytest.fixture(scope="module")
def quick_paper(tmp_path_factory):
    from conftest import ROOT

    out = tmp_path_factory.mktemp("paper") / "walled_gardens"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["reproduce", str(ROOT / "scenarios/papers/walled_gardens.toml"), "--quick",
                     "--quiet", "--out", str(out)]) == 0
    (out.parent / "printed.txt").write_text(printed.getvalue())
    return out


def test_paper_figures_fit_a_journal_page_and_state_their_claims(quick_paper):
    import struct

    from conftest import ROOT
    from sim.experiments.paper import COLUMN_WIDTH, PNG_SCALE, load_spec

    spec = load_spec(ROOT / "scenarios/papers/walled_gardens.toml")
    printed = (quick_paper.parent / "printed.txt").read_text()
    with open(quick_paper / "figures/claims.csv", newline="") as f:
        claims = {r["figure"]: r["claim"] for r in csv.DictReader(f)}
    for item in spec["figures"]:
        assert len(item["claim"]) > 40 and claims[item["name"]] == item["claim"]
        assert f"{item['name']}: {item['claim']}" in printed
        png = (quick_paper / f"figures/{item['name']}.png").read_bytes()
        width, height = struct.unpack(">II", png[16:24])
        assert width == item.get("columns", 1) * COLUMN_WIDTH * PNG_SCALE
        assert height < 9 * 96 * PNG_SCALE                     # fits a page
        page = (quick_paper / f"figures/{item['name']}.html").read_text()
        assert len(page) < 500_000 and "legend2" not in page      # plotly.js beside; one legend
    # Weeks to open is drawn with how often it happens, never as a blank heatmap.
    fig2 = (quick_paper / "figures/fig2_fine_deadline.html").read_text()
    assert "share of replicates where it happens" in fig2


def test_quick_paper_makes_every_figure_and_table(quick_paper):
    for n, stem in enumerate(["fig1_timeline", "fig2_fine_deadline", "fig3_audit_reblock",
                              "fig4_welfare_multihoming", "fig5_order_effect"], start=1):
        assert (quick_paper / f"figures/{stem}.html").stat().st_size > 0
        assert (quick_paper / f"figures/{stem}.png").read_bytes()[:4] == b"\x89PNG"
    tex = (quick_paper / "tables/table1_order_effect.tex").read_text()
    assert r"\begin{tabular}" in tex and "mean\\_consumer\\_surplus" in tex
    manifest = json.loads((quick_paper / "manifest.json").read_text())
    assert manifest["recipe"][0] == "reproduce" and "--quick" in manifest["recipe"]
    assert "experiments/case/timeseries.csv" in manifest["files"]
    assert manifest["versions"]["numpy"] and manifest["git"]["commit"]


def test_rerun_of_the_quick_paper_verifies_clean(quick_paper, capsys):
    assert main(["verify", str(quick_paper)]) == 0
    assert "byte for byte" in capsys.readouterr().out


@pytest.fixture
def run_dir(root, tmp_path):
    scenario = tmp_path / "case.toml"
    shutil.copy(root / "scenarios/china_2021_homogeneous.toml", scenario)
    out = tmp_path / "run"
    assert main(["run", str(scenario), *SMALL, "--out", str(out)]) == 0
    return scenario, out


def test_a_changed_byte_in_a_data_file_fails_and_names_the_file(run_dir, capsys):
    _, out = run_dir
    data = bytearray((out / "timeseries.csv").read_bytes())
    data[-3] = ord("7") if data[-3] != ord("7") else ord("8")
    (out / "timeseries.csv").write_bytes(bytes(data))
    assert main(["verify", str(out)]) == 1
    report = capsys.readouterr().out
    assert "timeseries.csv: changed since it was written" in report


def test_a_changed_parameter_fails_and_says_which(run_dir, capsys):
    scenario, out = run_dir
    recorded = load(scenario).users.token_cost
    text = re.sub(r"(?m)^token_cost = [0-9.]+", "token_cost = 0.6", scenario.read_text())
    scenario.write_text(text)
    assert main(["verify", str(out)]) == 1
    report = capsys.readouterr().out
    assert "timeseries.csv: differs when re-run; likely cause: parameters: users.token_cost" in report
    assert f"recorded {recorded}, re-run 0.6" in report


def test_a_changed_seed_fails_and_says_so(run_dir, capsys):
    _, out = run_dir
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["parameters"]["seed"] = 7
    manifest["seeds"]["root"] = 7
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(out)]) == 1
    report = capsys.readouterr().out
    assert "seeds do not match" in report and "root (recorded 7, re-run 2021)" in report


def test_verify_needs_a_manifest(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
