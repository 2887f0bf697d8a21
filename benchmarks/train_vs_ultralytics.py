"""Training side by side: `yololab train` against Ultralytics' `yolo train`, same data, model and settings, on CPU.

Both train yolov8n from scratch on the same synthetic shapes set (:func:`yololab.data.synthetic.synth_shapes`)
with their defaults (optimizer auto, nominal batch 64, warmup 3 epochs, mosaic with close_mosaic 10, EMA,
validation every epoch) at ``--imgsz`` and ``--batch`` for ``--epochs``, one after the other in this one run,
each in its own process. yololab uses what the CPU offers (bf16 autocast + channels-last where the CPU has
native bf16); Ultralytics trains in fp32 on CPU (it refuses AMP there). Ultralytics runs offline
(YOLO_OFFLINE=1, its settings inside --work-dir, no font download) with ``plots=False`` (its plots would
fetch a font); yololab draws its plots, which counts against it.

Both best checkpoints are then scored by the same evaluator, yololab's COCO-protocol ``validate`` (the
numbers pycocotools gives). Prints a Markdown table: wall time (process start to exit), training images per
second end to end (epochs x images / wall), mAP50-95 and mAP50, and the ratios. Run it under
``flock /work/cpu.lock`` on a shared machine; the load average before and after each side is printed.

    .venv/bin/python benchmarks/train_vs_ultralytics.py --work-dir /tmp/yololab-train-vs-ul --epochs 10

(yolov5n against the yolov5 package is not here yet: Ultralytics' own yolov5n.yaml is the anchor-free "u" variant.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ULTRALYTICS_TRAIN = """
import sys
import ultralytics.data.utils
from ultralytics import YOLO
ultralytics.data.utils.check_font = lambda *a, **k: None  # fonts are for plots (off); never download one
data, model, epochs, imgsz, batch, workers, project = sys.argv[1:8]
YOLO(model + ".yaml").train(data=data, epochs=int(epochs), imgsz=int(imgsz), batch=int(batch), workers=int(workers),
                            device="cpu", seed=0, project=project, name="ultralytics", exist_ok=True, plots=False,
                            verbose=False)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/yololab-train-vs-ultralytics"),
                   help="dataset and both run folders go here (the dataset is reused by later runs)")
    p.add_argument("--model", default="yolov8n", choices=["yolov8n", "yolo11n"],
                   help="the network both train (Ultralytics builds it from its own YAML)")
    p.add_argument("--train", type=int, default=1000, help="synthetic training images")
    p.add_argument("--val", type=int, default=200, help="synthetic validation images")
    p.add_argument("--imgsz", type=int, default=320, help="image size of the data, the training and the scoring")
    p.add_argument("--epochs", type=int, default=10, help="training epochs, both sides")
    p.add_argument("--batch", type=int, default=16, help="batch size, both sides")
    p.add_argument("--workers", type=int, default=2, help="data loader workers, both sides")
    p.add_argument("--first", choices=["yololab", "ultralytics"], default="yololab", help="which side runs first")
    return p.parse_args(argv)


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def timed(cmd: list[str], env: dict, log: Path) -> float:
    """Run ``cmd``, its output into ``log``; the wall time in seconds (fails loudly on a non-zero exit)."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc:
        sys.exit(f"error: {' '.join(cmd[:4])} ... failed with exit code {rc}; see {log}")
    return time.perf_counter() - t0


def score(weights: Path, model: str, data_yaml: Path, imgsz: int) -> dict[str, float]:
    """mAP of a best.pt (either trainer's) with yololab's COCO-protocol evaluator on the val split."""
    from yololab.data.dataset import DetectionDataset
    from yololab.detect.val import validate
    from yololab.models import build_model

    ds = DetectionDataset(data_yaml, "val", imgsz, augment=False, rect=True, batch_size=32, verbose=False)
    net = build_model(model, num_classes=ds.cfg.num_classes, weights=weights).eval()
    return validate(net, ds, batch=32).metrics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from yololab.data.synthetic import synth_shapes
    from yololab.engine.hardware import cpu_has_native_bf16, cpu_name

    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "shapes" / "data.yaml"
    if not data.is_file():
        synth_shapes(work / "shapes", train=args.train, val=args.val, imgsz=args.imgsz, progress=False)
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(work / "ultralytics-settings")}
    py = sys.executable
    common = [str(data), args.model, str(args.epochs), str(args.imgsz), str(args.batch), str(args.workers)]
    runs = {
        "yololab": ([py, "-m", "yololab.cli", "train", "--model", args.model, "--data", str(data), "--epochs",
                     str(args.epochs), "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--workers",
                     str(args.workers), "--project", str(work), "--name", "yololab", "--exist-ok"],
                    work / "yololab" / "weights" / "best.pt"),
        "ultralytics": ([py, "-c", ULTRALYTICS_TRAIN, *common, str(work)], work / "ultralytics" / "weights" / "best.pt"),
    }
    order = [args.first] + [k for k in runs if k != args.first]
    rows = {}
    for side in order:
        cmd, best = runs[side]
        before = load()
        print(f"{side}: training ... (load {before})", flush=True)
        wall = timed(cmd, env, work / f"{side}.log")
        rows[side] = {"wall": wall, "load": f"{before} -> {load()}", "best": best}
        print(f"{side}: {wall:.0f} s (load {rows[side]['load']})", flush=True)
    for side in order:
        rows[side].update(score(rows[side]["best"], args.model, data, args.imgsz))

    n = len(list((work / "shapes" / "images" / "train").iterdir()))
    print(f"\n{args.model}, {n} training images of {args.imgsz} px, batch {args.batch}, {args.epochs} epochs, "
          f"{args.workers} workers, CPU: {cpu_name()} ({os.cpu_count()} cores, native bf16: "
          f"{'yes' if cpu_has_native_bf16() else 'no'}); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| trainer | wall s | img/s (end to end) | mAP50-95 | mAP50 | load average (1, 5, 15 min) before -> after |")
    print("|---|---:|---:|---:|---:|---|")
    for side in order:
        r = rows[side]
        print(f"| {side} | {r['wall']:.0f} | {args.epochs * n / r['wall']:.1f} | {r['mAP50-95']:.4f} | "
              f"{r['mAP50']:.4f} | {r['load']} |")
    ours, theirs = rows["yololab"], rows["ultralytics"]
    print(f"\nwall-clock ratio yololab / Ultralytics: {ours['wall'] / theirs['wall']:.2f} (goal <= 0.40); "
          f"mAP50-95 difference: {ours['mAP50-95'] - theirs['mAP50-95']:+.4f} (goal >= 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
