"""`yololab demo` end to end into a temporary folder: the zoo tour alone (--epochs 0), and with a tiny training."""

import os
import subprocess
import sys

import pytest

from helpers import REPO
from yololab.cli import main
from yololab.demo import demo_outputs

# what `make demo` does not install: the test extras and the reference packages (Makefile, pyproject.toml);
# scipy is not among them: albumentations, a runtime dependency the demo's training uses, requires it
NOT_FOR_THE_DEMO = ("pytest", "pycocotools", "nbformat", "nbclient", "ipykernel", "onnx", "onnxruntime",
                    "ultralytics", "yolov5", "thop", "pandas", "seaborn", "polars")

# None in sys.modules is how Python spells "not installed" for both `import x` and importlib.util.find_spec("x")
WITHOUT_THEM = """
import sys
sys.modules.update(dict.fromkeys({blocked!r}))
from yololab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_demo_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "0"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["architectures.csv", "architectures.md", "models.txt", "summary_yolov8n.txt",
                     "yolov8n.drawio", "yolov8n.mmd", "yolov8n.png", "yolov8n.svg"]
    assert sorted(p.name for p in demo_outputs(out, "yolov8n")) == names  # what --overwrite guards is what it writes
    printed = capsys.readouterr().out
    assert "yolo11x" in printed and "model total (23 blocks)" in printed and str(out / "yolov8n.png") in printed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    assert main(["demo", "--out", str(out), "--epochs", "0"]) == 2  # a second run asks before replacing the first's
    assert "pass --overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_trains_validates_and_reports(tmp_path, capsys):
    """The demo's training part at a tiny size (the full recipe is the same code with bigger numbers)."""
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--epochs", "1", "--train-images", "8", "--val-images", "4", "--train-imgsz",
            "64", "--batch", "8"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    for text in ("# yololab demo: yolov8n trained on the synthetic shapes set", "| mAP50-95 |", "## Per class",
                 "| lr0 | 0.002 |", "| nbs | 16 |", "| optimizer | AdamW |", "## Hardware", "load average", "## Time",
                 "![results](train/results.png)", "![PR_curve](train/PR_curve.png)",
                 "![confusion_matrix](train/confusion_matrix.png)"):
        assert text in report, text
    for name in ("yolov8n.png", "models.txt", "shapes/data.yaml", "train/weights/best.pt", "train/results.csv"):
        assert (out / name).is_file(), name
    assert "best.pt: mAP50-95" in capsys.readouterr().out
    assert main(argv) == 2  # the data, run folder and report are guarded like the tour's files
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "train2").exists()  # --overwrite replaces the run folder, it does not add one


@pytest.mark.slow
def test_demo_needs_only_the_runtime_dependencies(tmp_path):
    """`make demo` installs yololab without the test extras and reference packages: the demo must not need them."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    run = subprocess.run([sys.executable, "-c", WITHOUT_THEM.format(blocked=NOT_FOR_THE_DEMO), "demo", "--out",
                          str(tmp_path / "demo"), "--model", "YOLO11n", "--imgsz", "320", "--epochs", "1", "--train-images", "4",
                          "--val-images", "2", "--train-imgsz", "64", "--batch", "4"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "demo" / "yolo11n.png").is_file() and "yolo11n" in run.stdout
    assert (tmp_path / "demo" / "report.md").is_file()
