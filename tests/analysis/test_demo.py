"""`yololab demo` end to end into a temporary folder."""

import pytest

from yololab.cli import main


@pytest.mark.slow
def test_demo_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["architectures.csv", "architectures.md", "models.txt", "summary_yolov8n.txt",
                     "yolov8n.drawio", "yolov8n.mmd", "yolov8n.png", "yolov8n.svg"]
    printed = capsys.readouterr().out
    assert "yolo11x" in printed and "model total (23 blocks)" in printed and str(out / "yolov8n.png") in printed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind
