"""notebooks/cls_visualize.ipynb runs top to bottom on a tiny training run."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

from yololab.cli import main

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "cls_visualize.ipynb"


@pytest.mark.slow
def test_cls_visualize_notebook_runs(synth_set, tmp_path, monkeypatch):
    assert main(["classify", "train", "--data", str(synth_set), "--project", str(tmp_path), "--name", "tiny",
                 "--width", "4", "--epochs", "1", "--batch", "20", "--workers", "0", "--device", "cpu"]) == 0
    monkeypatch.setenv("YOLOLAB_RUN", str(tmp_path / "tiny"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 5  # curves, confusion matrix, two galleries, the CAM grid
    text = "".join(o.get("text", "") for o in outputs)
    assert "top-1" in text and "gradcam++  pointing game" in text
    assert any("| **macro** |" in o.get("data", {}).get("text/markdown", "") for o in outputs)
