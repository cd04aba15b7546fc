"""The notebooks run from top to bottom, so they never rot."""

import re

import pytest

nbclient = pytest.importorskip("nbclient", reason="the notebooks' tests need nbclient "
                               "(pip install -e '.[test]')")
nbformat = pytest.importorskip("nbformat")

PLOTLY = "application/vnd.plotly.v1+json"


def test_first_run_notebook_runs_and_draws_its_figures(root):
    folder = root / "notebooks"
    notebook = nbformat.read(folder / "01_first_run.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if PLOTLY in o.get("data", {})]
    assert len(figures) == 2
    traces = figures[0]["data"][PLOTLY]["data"]
    assert {t["name"] for t in traces} == {"order", "no order"}


def test_sweep_notebook_gives_sobol_indices_and_a_prim_box(root):
    pytest.importorskip("ema_workbench")
    folder = root / "notebooks"
    notebook = nbformat.read(folder / "02_sweep_and_sensitivity.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [o for cell in code for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    opened, runs, never = map(int, re.search(
        r"(\d+) of (\d+) runs open every link before week 20; (\d+) never do", printed).groups())
    assert 0 < opened < runs and never < runs       # the outcome varies across the design
    tables = [o["data"]["text/plain"] for o in outputs
              if "text/plain" in o.get("data", {}) and "ci_low" in o["data"]["text/plain"]]
    assert tables and "ST" in tables[0] and "regulator.audit_probability" in tables[0]
    everywhere, density, coverage = map(float, re.search(
        r"Of all runs, ([\d.]+) open before week 20; in PRIM's box, ([\d.]+) do \(density\), "
        r"and it holds ([\d.]+) of them", printed).groups())
    assert density > everywhere and coverage > 0      # the box is where links open
    figures = [o for o in outputs if PLOTLY in o.get("data", {})]
    assert len(figures) == 2
    bars = figures[0]["data"][PLOTLY]["data"]
    assert {t["name"] for t in bars} == {"S1", "ST"} and all(t["error_y"]["array"] for t in bars)
