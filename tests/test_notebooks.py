"""The notebooks run from top to bottom, so they never rot."""

import pytest

nbclient = pytest.importorskip("nbclient", reason="the notebooks' tests need nbclient "
                               "(pip install -e '.[test]')")
nbformat = pytest.importorskip("nbformat")

PLOTLY = "application/vnd.plotly.v1+json"


def test_first_run_notebook_runs_and_draws_its_figures(root):
    folder = root / "notebooks"
    notebook = nbformat.read(folder / "01_first_run.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if PLOTLY in o.get("data", {})]
    assert len(figures) == 2
    traces = figures[0]["data"][PLOTLY]["data"]
    assert {t["name"] for t in traces} == {"order", "no order"}
