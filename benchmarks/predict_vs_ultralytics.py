"""End to end, image file -> boxes: ``yololab predict``'s Python API against ``ultralytics`` ``YOLO.predict``.

Both sides get the same weights file (default: the Ultralytics-trained yolov8n of tests/fixtures, also what the
parity test uses), the same photos (coco8's 8 real photographs), the same image size and NMS settings, and are
timed on the whole path: read the JPEG, letterbox, network, NMS, boxes in the photo's pixels. Calls are
interleaved photo by photo (the order of the candidates rotated every round) so that load from other processes
hits all alike. Candidates:

* ``ultralytics predict``: ``YOLO(weights).predict(path, device="cpu")`` (its default CPU path: fused,
  channels-last fp32, minimum-rectangle letterbox);
* ``yololab fp32``: :class:`yololab.deploy.predict.Predictor` in exact mode (the same boxes as Ultralytics);
* ``yololab auto``: the default mode (the fastest this machine offers within docs/design.md's tolerance).

The first calls (warm-up rounds, where OpenVINO compiles) are not timed. Prints a markdown table.

    flock /work/cpu.lock .venv/bin/python benchmarks/predict_vs_ultralytics.py --rounds 10
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weights", type=Path, default=ROOT / "tests" / "fixtures" / "yolov8n-shapes.pt",
                   help="an Ultralytics checkpoint (both sides load this file)")
    p.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "coco8" / "images",
                   help="folder searched recursively for .jpg photos")
    p.add_argument("--imgsz", type=int, default=640, help="inference size (long side)")
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold (both sides)")
    p.add_argument("--rounds", type=int, default=10, help="timed rounds over all photos")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (both sides)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    from yololab.deploy.predict import Predictor

    photos = sorted(str(p) for p in args.images.rglob("*.jpg"))
    ultra = YOLO(str(args.weights))
    exact = Predictor(args.weights, mode="fp32", imgsz=args.imgsz, conf=args.conf)
    auto = Predictor(args.weights, imgsz=args.imgsz, conf=args.conf)
    candidates = {
        "ultralytics predict": lambda p: ultra.predict(p, imgsz=args.imgsz, conf=args.conf, device="cpu",
                                                       verbose=False)[0].boxes.xyxy.numpy(),
        "yololab fp32": lambda p: exact(p)[0].boxes.numpy(),
        f"yololab auto ({auto.meta.mode})": lambda p: auto(p)[0].boxes.numpy(),
    }
    names = list(candidates)
    times: dict[str, list[float]] = {n: [] for n in names}
    boxes: dict[str, dict[str, int]] = {n: {} for n in names}
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    for r in range(args.warmup + args.rounds):
        for i, photo in enumerate(photos):
            k = (r * len(photos) + i) % len(names)
            for name in names[k:] + names[:k]:
                t0 = time.perf_counter()
                out = candidates[name](photo)
                dt = time.perf_counter() - t0
                if r >= args.warmup:
                    times[name].append(dt)
                boxes[name][photo] = len(out)
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    base = statistics.median(times[names[0]])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"{len(photos)} photos x {args.rounds} rounds, imgsz {args.imgsz}, {args.threads} threads, weights "
          f"{args.weights.name}; {cpu}, {os.cpu_count()} logical CPUs\nuptime before: {load}\nuptime after:  "
          f"{load_after}\n")
    print("| candidate | median ms / photo | p90 ms | vs Ultralytics | boxes (8 photos) |\n|---|---:|---:|---:|---:|")
    for name in names:
        t = sorted(times[name])
        med, p90 = statistics.median(t), t[int(0.9 * (len(t) - 1))]
        print(f"| {name} | {med * 1e3:.1f} | {p90 * 1e3:.1f} | {med / base:.2f}x | {sum(boxes[name].values())} |")
    print(f"\nnetwork inputs of yololab auto: {', '.join('x'.join(map(str, s[2:])) for s in sorted(auto.shapes))}")


if __name__ == "__main__":
    main()
