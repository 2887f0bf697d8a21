"""`yololab demo` end to end into a temporary folder."""

import os
import subprocess
import sys

import pytest

from helpers import REPO
from yololab.cli import main
from yololab.demo import demo_outputs

# what `make demo` does not install: the test extras and the reference packages (Makefile, pyproject.toml)
NOT_FOR_THE_DEMO = ("pytest", "pycocotools", "nbformat", "nbclient", "ipykernel", "onnx", "onnxruntime",
                    "ultralytics", "yolov5", "thop", "pandas", "seaborn", "scipy", "polars")

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
    assert main(["demo", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["architectures.csv", "architectures.md", "models.txt", "summary_yolov8n.txt",
                     "yolov8n.drawio", "yolov8n.mmd", "yolov8n.png", "yolov8n.svg"]
    assert sorted(p.name for p in demo_outputs(out, "yolov8n")) == names  # what --overwrite guards is what it writes
    printed = capsys.readouterr().out
    assert "yolo11x" in printed and "model total (23 blocks)" in printed and str(out / "yolov8n.png") in printed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    assert main(["demo", "--out", str(out)]) == 2  # a second run asks before replacing the first one's files
    assert "pass --overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_needs_only_the_runtime_dependencies(tmp_path):
    """`make demo` installs yololab without the test extras and reference packages: the demo must not need them."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    run = subprocess.run([sys.executable, "-c", WITHOUT_THEM.format(blocked=NOT_FOR_THE_DEMO), "demo", "--out",
                          str(tmp_path / "demo"), "--model", "YOLO11n", "--imgsz", "320"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "demo" / "yolo11n.png").is_file() and "yolo11n" in run.stdout
