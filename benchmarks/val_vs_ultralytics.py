"""`yololab val` beside `ultralytics val` on one checkpoint and one dataset split, in one process.

Both score the same weights on the same split (rect batches, conf 0.001, NMS IoU 0.7, 300 detections,
fused model, fp32 on the CPU). Printed as markdown: Ultralytics' own figures, ours by the COCO protocol, and
Ultralytics' ap_per_class on our detections (``--compare-ultralytics``), with each side's wall time; the
rounds alternate between the two so that load from other processes hits both alike.

    .venv/bin/python benchmarks/val_vs_ultralytics.py --weights best.pt --data datasets/shapes/data.yaml --imgsz 320
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weights", type=Path, required=True, help="an Ultralytics .pt checkpoint")
    p.add_argument("--data", type=Path, required=True, help="data.yaml")
    p.add_argument("--split", default="val", help="split to score")
    p.add_argument("--imgsz", type=int, default=640, help="image size")
    p.add_argument("--batch", type=int, default=32, help="batch size")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds per side, interleaved")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    return p.parse_args(argv)


def ultralytics_val(args, work: Path) -> tuple[dict, float]:
    import ultralytics.data.utils
    from ultralytics import YOLO

    ultralytics.data.utils.check_font = lambda *a, **k: None  # it would download a font
    t0 = time.perf_counter()
    box = YOLO(str(args.weights)).val(data=str(args.data), split=args.split, imgsz=args.imgsz, batch=args.batch,
                                      device="cpu", workers=0, plots=False, verbose=False, project=str(work),
                                      name="u", exist_ok=True).box
    return {"mAP50-95": box.map, "mAP50": box.map50, "P": box.mp, "R": box.mr}, time.perf_counter() - t0


def yololab_val(args) -> tuple[dict, dict, float]:
    from yololab.detect.metrics import ultralytics_map
    from yololab.detect.val import load_for_val, validate

    t0 = time.perf_counter()
    model, dataset, device = load_for_val(args.weights, args.data, args.split, args.imgsz, args.batch, verbose=False)
    r = validate(model, dataset, batch=args.batch, device=device)
    wall = time.perf_counter() - t0
    d = r.detections
    m = r.metrics
    return ({"mAP50-95": m["mAP50-95"], "mAP50": m["mAP50"], "P": m["precision"], "R": m["recall"]},
            ultralytics_map(d["correct"], d["conf"], d["pred_cls"], d["target_cls"]), wall)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("YOLO_CONFIG_DIR", tmp)
        theirs_t, ours_t = [], []
        for _ in range(args.rounds):
            theirs, t = ultralytics_val(args, Path(tmp))
            theirs_t.append(t)
            ours, ours_u, t = yololab_val(args)
            ours_t.append(t)
    rows = [("ultralytics val (its own metric)", theirs, statistics.median(theirs_t)),
            ("yololab val, COCO protocol", ours, statistics.median(ours_t)),
            ("yololab val, Ultralytics' ap_per_class on our detections", {**ours_u, "P": ours["P"], "R": ours["R"]},
             None)]
    print(f"{args.weights} on {args.data} ({args.split}), imgsz {args.imgsz}, batch {args.batch}, "
          f"{args.threads} threads, median of {args.rounds} rounds\n")
    print("| scored by | mAP50-95 | mAP50 | P | R | wall s |\n|---|---:|---:|---:|---:|---:|")
    for name, m, wall in rows:
        print(f"| {name} | {m['mAP50-95']:.4f} | {m['mAP50']:.4f} | {m['P']:.4f} | {m['R']:.4f} | "
              f"{'-' if wall is None else f'{wall:.1f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
