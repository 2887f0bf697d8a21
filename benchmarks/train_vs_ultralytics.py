"""Training side by side: `yololab train` against the reference trainer, same data, model and settings, on CPU.

yolov8n / yolo11n train against Ultralytics' `yolo train`, yolov5n against the yolov5 package's `train.py`
(7.0.14, the v7.0 recipe). Both sides train from scratch on the same synthetic shapes set
(:func:`yololab.data.synthetic.synth_shapes`) at ``--imgsz`` and ``--batch`` for ``--epochs``, one after the
other in this one run, each in its own process.

* yolov8n / yolo11n: both at their defaults (optimizer auto, nominal batch 64, warmup 3 epochs, mosaic with
  close_mosaic 10, EMA, validation every epoch).
* yolov5n: both with yolov5's hyp.scratch-low.yaml (its default): SGD lr0 0.01 momentum 0.937, weight decay
  5e-4 for the nominal batch 64, linear LR to 0.01 lr0, warmup max(3 epochs, 100 batches) with bias LR 0.1
  and momentum 0.8, the same loss gains and augmentation, mosaic in every epoch (yolov5 has no close_mosaic),
  EMA, auto-anchor, validation every epoch. What differs: yolov5 moves the LR once per epoch (yololab every
  step, along the same line); its validation during training uses NMS IoU 0.6 (yololab 0.7), which only
  picks best.pt; the seeds cannot give the same weights or batches.

Data loader workers: ``--workers`` gives both sides the same number; by default each side keeps its own
(yololab: 0 on a CPU with 2 cores, else 2; Ultralytics: 0 on any CPU device, whatever it is given; yolov5:
min(8, cores, batch)). yololab uses what the CPU offers (bf16 autocast + channels-last where it has native bf16);
both references train in fp32 on CPU (they refuse AMP there). The table says how many workers and compute
threads each side used.

Offline: Ultralytics with YOLO_OFFLINE=1, its settings inside --work-dir and no font download; the yolov5 package
with its settings inside --work-dir, no font download, no requirement check (it would pip install), no Hugging
Face lookup of its weights paths, and its Roboflow uploader, an uninstalled package imported at the top of
train.py, replaced by a module that refuses to be used (W&B, ClearML, Comet and Neptune are not installed: off).
Both references run with plots off (their plots fetch a font); yololab draws its plots, which counts against it.

Both best checkpoints are then scored by the same evaluator, yololab's COCO-protocol ``validate`` (the numbers
pycocotools gives). Prints a Markdown table: wall time (process start to exit), training images per second end
to end (epochs x images / wall), mAP50-95 and mAP50, and the ratios. Run it under ``flock /work/cpu.lock`` on a
shared machine; the load average before and after each side is printed.

    .venv/bin/python benchmarks/train_vs_ultralytics.py --model yolov8n --epochs 10
    .venv/bin/python benchmarks/train_vs_ultralytics.py --model yolov5n --epochs 10
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# The reference trainers, each run as `python -c CODE data model epochs imgsz batch workers project`
# (workers "default": the trainer's own); each prints its torch thread count last.
ULTRALYTICS_TRAIN = """
import sys
import torch
import ultralytics.data.utils
from ultralytics import YOLO
ultralytics.data.utils.check_font = lambda *a, **k: None  # fonts are for plots (off); never download one
data, model, epochs, imgsz, batch, workers, project = sys.argv[1:8]
YOLO(model + ".yaml").train(data=data, epochs=int(epochs), imgsz=int(imgsz), batch=int(batch), device="cpu", seed=0,
                            project=project, name="reference", exist_ok=True, plots=False, verbose=False,
                            **({} if workers == "default" else {"workers": int(workers)}))
print("torch threads", torch.get_num_threads())
"""

YOLOV5_TRAIN = """
import os, sys, types
os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # yolov5 reads back its own pickled checkpoints (torch >= 2.6)
import numpy as np
import torch
if not hasattr(np, "trapz"):  # yolov5 7.0.14 integrates AP with np.trapz, which NumPy 2.4 removed
    np.trapz = np.trapezoid
roboflow = types.ModuleType("yolov5.utils.roboflow")  # train.py imports its Roboflow uploader (not installed)
class RoboflowConnector:
    def __getattr__(self, name):
        raise RuntimeError("Roboflow is off in this offline benchmark")
roboflow.RoboflowConnector = RoboflowConnector()
sys.modules["yolov5.utils.roboflow"] = roboflow
import yolov5.train as train
import yolov5.utils.downloads as downloads
import yolov5.utils.general as general
general.check_font = lambda *a, **k: None  # fonts are for plots (off); never download one
train.check_requirements = lambda *a, **k: None  # would pip install what --no-deps left out
# every weights path (the empty one, best.pt) is first looked up on the Hugging Face hub
train.attempt_download_from_hub = downloads.attempt_download_from_hub = lambda *a, **k: None
data, model, epochs, imgsz, batch, workers, project = sys.argv[1:8]
sys.argv = sys.argv[:1]  # train.run parses the command line for its defaults
train.run(data=data, cfg=model + ".yaml", weights="", epochs=int(epochs), imgsz=int(imgsz), batch_size=int(batch),
          device="cpu", seed=0, project=project, name="reference", exist_ok=True, noplots=True,
          **({} if workers == "default" else {"workers": int(workers)}))
print("torch threads", torch.get_num_threads())
"""

REFERENCES = {"yolov8n": ("ultralytics", ULTRALYTICS_TRAIN), "yolo11n": ("ultralytics", ULTRALYTICS_TRAIN),
              "yolov5n": ("yolov5", YOLOV5_TRAIN)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=None,
                   help="dataset and both run folders go here, reused by later runs (none: "
                        "/tmp/yololab-train-vs-<model>)")
    p.add_argument("--model", default="yolov8n", choices=sorted(REFERENCES),
                   help="the network both train (the reference builds it from its own YAML): yolov8n and yolo11n "
                        "against Ultralytics, yolov5n against the yolov5 package")
    p.add_argument("--train", type=int, default=1000, help="synthetic training images")
    p.add_argument("--val", type=int, default=200, help="synthetic validation images")
    p.add_argument("--imgsz", type=int, default=320, help="image size of the data, the training and the scoring")
    p.add_argument("--epochs", type=int, default=10, help="training epochs, both sides")
    p.add_argument("--batch", type=int, default=16, help="batch size, both sides")
    p.add_argument("--workers", type=int, default=None,
                   help="data loader workers, both sides (none: each side's own default)")
    p.add_argument("--first", choices=["yololab", "reference"], default="yololab", help="which side runs first")
    return p.parse_args(argv)


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def timed(cmd: list[str], env: dict, log: Path) -> float:
    """Run ``cmd``, its output into ``log``; the wall time in seconds (fails loudly on a non-zero exit)."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc:
        sys.exit(f"error: the {log.stem} side failed with exit code {rc}; see {log}")
    return time.perf_counter() - t0


def score(weights: Path, model: str, data_yaml: Path, imgsz: int) -> dict[str, float]:
    """mAP of a best.pt (either trainer's) with yololab's COCO-protocol evaluator on the val split."""
    from yololab.data.dataset import DetectionDataset
    from yololab.detect.val import validate
    from yololab.models import build_model

    ds = DetectionDataset(data_yaml, "val", imgsz, augment=False, rect=True, batch_size=32, verbose=False)
    net = build_model(model, num_classes=ds.cfg.num_classes, weights=weights).eval()
    return validate(net, ds, batch=32).metrics


def yolov5_data_yaml(data: Path, out: Path) -> Path:
    """``data`` as the yolov5 package reads it: it resolves relative split paths against its own package folder
    (not the YAML's), so the splits are written as absolute paths."""
    import yaml

    from yololab.fileio import write_text_atomic

    cfg = yaml.safe_load(data.read_text())
    cfg.update({k: str((data.parent / cfg[k]).resolve()) for k in ("train", "val")})
    write_text_atomic(out, yaml.safe_dump(cfg, sort_keys=False))
    return out


def yolov5_recipe(n_train: int, batch: int) -> list[str]:
    """yololab's flags for yolov5's hyp.scratch-low.yaml where its defaults differ: SGD at 0.01 (not auto), mosaic in
    every epoch, warmup of max(3 epochs, 100 batches) (yolov5's train.py)."""
    warmup = max(round(3 * math.ceil(n_train / batch)), 100)
    return ["--optimizer", "SGD", "--lr0", "0.01", "--momentum", "0.937", "--close-mosaic", "0",
            "--warmup-steps", str(warmup)]


def used(side: str, log: Path, run: Path) -> tuple[str, str]:
    """(loader workers, torch compute threads) a side trained with: yololab's from its report.md, a reference's
    from its log."""
    if side == "yololab":
        text, workers, threads = (run / "report.md").read_text(), r"\| workers \| (\d+) \|", \
            r"\| CPU threads \(per process\) \| (\d+) \|"
    else:
        text, workers, threads = log.read_text(errors="replace"), r"Using (\d+) dataloader workers", \
            r"torch threads (\d+)"
    found = [re.search(pattern, text) for pattern in (workers, threads)]
    return tuple(m.group(1) if m else "?" for m in found)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from yololab.data.synthetic import synth_shapes
    from yololab.engine.hardware import cpu_has_native_bf16, cpu_name

    work = (args.work_dir or Path(f"/tmp/yololab-train-vs-{args.model}")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "shapes" / "data.yaml"
    if not data.is_file():
        synth_shapes(work / "shapes", train=args.train, val=args.val, imgsz=args.imgsz, progress=False)
    n = len(list((work / "shapes" / "images" / "train").iterdir()))
    reference, code = REFERENCES[args.model]
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "ultralytics-settings"),
           "YOLOV5_CONFIG_DIR": str(work / "yolov5-settings"), "YOLOv5_AUTOINSTALL": "false"}
    (work / "yolov5-settings").mkdir(exist_ok=True)
    ref_data = yolov5_data_yaml(data, work / "yolov5-data.yaml") if reference == "yolov5" else data
    py = sys.executable
    workers = [] if args.workers is None else ["--workers", str(args.workers)]
    recipe = yolov5_recipe(n, args.batch) if reference == "yolov5" else []
    runs = {
        "yololab": [py, "-m", "yololab.cli", "train", "--model", args.model, "--data", str(data), "--epochs",
                    str(args.epochs), "--imgsz", str(args.imgsz), "--batch", str(args.batch), *workers, *recipe,
                    "--project", str(work), "--name", "yololab", "--exist-ok"],
        "reference": [py, "-c", code, str(ref_data), args.model, str(args.epochs), str(args.imgsz), str(args.batch),
                      "default" if args.workers is None else str(args.workers), str(work)],
    }
    order = [args.first] + [k for k in runs if k != args.first]
    rows = {}
    for side in order:
        before = load()
        print(f"{side}: training ... (load {before})", flush=True)
        log = work / f"{side}.log"
        wall = timed(runs[side], env, log)
        rows[side] = {"wall": wall, "load": f"{before} -> {load()}", "used": used(side, log, work / side)}
        print(f"{side}: {wall:.0f} s (load {rows[side]['load']})", flush=True)
    for side in order:
        rows[side].update(score(work / side / "weights" / "best.pt", args.model, data, args.imgsz))

    print(f"\n{args.model}, {n} training images of {args.imgsz} px, batch {args.batch}, {args.epochs} epochs, "
          f"workers: {'each side its default' if args.workers is None else args.workers}; reference: {reference}; "
          f"CPU: {cpu_name()} ({os.cpu_count()} cores, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}); "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| trainer | loader workers | compute threads | wall s | img/s (end to end) | mAP50-95 | mAP50 | "
          "load average (1, 5, 15 min) before -> after |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for side in order:
        r = rows[side]
        print(f"| {side if side == 'yololab' else reference} | {r['used'][0]} | {r['used'][1]} | {r['wall']:.0f} | "
              f"{args.epochs * n / r['wall']:.1f} | {r['mAP50-95']:.4f} | {r['mAP50']:.4f} | {r['load']} |")
    ours, theirs = rows["yololab"], rows["reference"]
    print(f"\nwall-clock ratio yololab / {reference}: {ours['wall'] / theirs['wall']:.2f} (goal <= 0.40); "
          f"mAP50-95 difference: {ours['mAP50-95'] - theirs['mAP50-95']:+.4f} (goal >= 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
