"""notebooks/mt_interactive.ipynb runs top to bottom on the tiny trained model."""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "mt_interactive.ipynb"


@pytest.mark.slow
def test_mt_interactive_notebook_runs(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MT_CHECKPOINT", str(tiny_run / "weights" / "best.pt"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    src = str(Path(__file__).resolve().parents[2] / "src")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "en -> fr" in text and "parameters" in text
    assert "--- greedy" in text and "--- beam 5" in text and text.count("  -> ") >= 7
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
