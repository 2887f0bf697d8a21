"""notebooks/visualize_data.ipynb runs from top to bottom (synthesizes data, draws previews)."""

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "visualize_data.ipynb"


@pytest.mark.slow
def test_visualize_data_notebook_runs(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # run in tmp_path so that nothing is written into the repository
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the two preview grids were displayed
    text = "".join(o.get("text", "") for o in outputs)
    assert "circle" in text and "batch_idx" in text
    assert not [o for o in outputs if o.get("output_type") == "error"]
