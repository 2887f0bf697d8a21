"""Time per training-loss call: yololab's losses side by side with the reference packages', same inputs.

For each model the predictions are those of our network's forward pass in training mode on a random batch
(random weights, so the heads' prior-probability bias init gives realistic scores), the targets ~``--boxes``
random boxes per image. Each round calls every candidate once (order rotated every round, so that load from
other processes hits all alike) on fresh copies of the predictions, timing the loss alone and the loss plus
its backward pass to the predictions (what training adds to the network's own forward/backward). Both wall
time and the process's CPU time (``time.process_time``, all threads) are taken: on a shared, loaded machine
wall time mostly measures waiting for a core, CPU time the work done, and its minimum over the rounds is the
figure least disturbed by other processes.

* yolov8n / yolo11n: :class:`yololab.detect.loss.YOLOv8Loss` vs ``ultralytics.utils.loss.v8DetectionLoss``
  (ultralytics 8.4.190, ``model.args = get_cfg()``; its (3,) loss is summed as its trainer does);
* yolov5n: :class:`yololab.detect.loss.YOLOv5Loss` vs ``yolov5.utils.loss.ComputeLoss`` (yolov5 7.0.14,
  hyp.scratch-low.yaml scaled as its train.py);
* yolov3 (Darknet style): :class:`yololab.detect.loss.DarknetLoss` alone (Darknet's loss is C code inside its
  layer: no Python reference).

The output is markdown, ready to paste into benchmarks/README.md. Run it under ``flock /work/cpu.lock``.

    .venv/bin/python benchmarks/loss_speed.py --models yolov8n,yolov5n,yolov3 --imgsz 320 --batch 16 --boxes 10
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from yololab.detect.loss import build_loss
from yololab.models import build_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default="yolov8n,yolov5n,yolov3", help="comma-separated zoo model names")
    p.add_argument("--imgsz", type=int, default=320, help="square input size in pixels")
    p.add_argument("--batch", type=int, default=16, help="images per batch")
    p.add_argument("--boxes", type=int, default=10, help="mean boxes per image (uniform in [boxes/2, 3*boxes/2])")
    p.add_argument("--nc", type=int, default=80, help="number of classes")
    p.add_argument("--runs", type=int, default=40, help="timed rounds")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for k in ("imgsz", "batch", "boxes", "nc", "runs"):
        if getattr(args, k) < 1:
            p.error(f"--{k} must be positive")
    if args.warmup < 0 or args.threads < 0:
        p.error("--warmup and --threads must be >= 0")
    return args


def quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*args, **kwargs)


def make_batch(args: argparse.Namespace) -> dict:
    g = torch.Generator().manual_seed(args.seed)
    counts = torch.randint(args.boxes // 2, args.boxes * 3 // 2 + 1, (args.batch,), generator=g)
    n = int(counts.sum())
    return {"batch_idx": torch.arange(args.batch).repeat_interleave(counts).float(),
            "cls": torch.randint(0, args.nc, (n, 1), generator=g).float(),
            "bboxes": torch.cat((0.1 + 0.8 * torch.rand(n, 2, generator=g), 0.02 + 0.4 * torch.rand(n, 2, generator=g)), 1)}


def ours_call(loss, batch: dict):
    def call(preds):
        total, parts = loss(preds, batch)
        return total, {k: float(v) for k, v in parts.items()}

    return call


def reference_v8(name: str, nc: int, batch: dict):
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.loss import v8DetectionLoss

    model = quiet(DetectionModel, f"{name}.yaml", nc=nc, verbose=False)
    model.args = get_cfg()
    criterion = v8DetectionLoss(model)

    def call(preds):
        bs = preds[0].shape[0]
        flat = [p.view(bs, p.shape[1], -1) for p in preds]
        reg = criterion.reg_max * 4
        loss, parts = criterion({"boxes": torch.cat([f[:, :reg] for f in flat], 2),
                                 "scores": torch.cat([f[:, reg:] for f in flat], 2), "feats": preds}, batch)
        return loss.sum(), {k: float(v) for k, v in parts.items()}

    return "ultralytics 8.4.190 v8DetectionLoss", call


def reference_v5(nc: int, imgsz: int, batch: dict):
    import yaml
    import yolov5
    from yolov5.models.yolo import Model
    from yolov5.utils.general import LOGGER
    from yolov5.utils.loss import ComputeLoss

    root = Path(yolov5.__file__).parent
    LOGGER.setLevel("ERROR")
    model = quiet(Model, str(root / "models" / "yolov5n.yaml"), nc=nc)
    hyp = yaml.safe_load((root / "data" / "hyps" / "hyp.scratch-low.yaml").read_text())
    nl = model.model[-1].nl
    hyp["box"] *= 3 / nl
    hyp["cls"] *= nc / 80 * 3 / nl
    hyp["obj"] *= (imgsz / 640) ** 2 * 3 / nl
    hyp["label_smoothing"] = 0.0
    model.hyp = hyp
    criterion = ComputeLoss(model)
    targets = torch.cat((batch["batch_idx"][:, None], batch["cls"], batch["bboxes"]), 1)

    def call(preds):
        loss, parts = criterion(preds, targets)
        return loss, dict(zip(("box_loss", "obj_loss", "cls_loss"), parts.tolist()))

    return "yolov5 7.0.14 ComputeLoss", call


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(fn, preds) -> tuple[float, float, float]:
    """Wall seconds of the loss, of loss + backward, and CPU seconds of loss + backward."""
    p = [x.clone().requires_grad_() for x in preds]
    c0, t0 = time.process_time(), time.perf_counter()
    loss = fn(p)[0]
    t1 = time.perf_counter()
    loss.backward()
    t2, c2 = time.perf_counter(), time.process_time()
    return t1 - t0, t2 - t0, c2 - c0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    batch = make_batch(args)
    load0 = os.getloadavg()
    rows = []
    for name in args.models.split(","):
        kwargs = {"style": "darknet"} if name.startswith("yolov3") else {}
        model = build_model(name, num_classes=args.nc, **kwargs).train()
        with torch.no_grad():
            preds = [p.detach() for p in model(torch.rand(args.batch, 3, args.imgsz, args.imgsz))]
        ours = build_loss(model, imgsz=args.imgsz)
        cands = {"yololab " + type(ours).__name__: ours_call(ours, batch)}
        if name.startswith(("yolov8", "yolo11")):
            label, fn = reference_v8(name, args.nc, batch)
            cands[label] = fn
        elif name.startswith("yolov5"):
            label, fn = reference_v5(args.nc, args.imgsz, batch)
            cands[label] = fn
        labels = list(cands)
        # agreement on these inputs
        outs = [cands[k](preds) for k in labels]
        diff = "-"
        if len(outs) == 2:
            (t1, p1), (t2, p2) = outs
            rel = [abs(t1.item() - t2.item()) / abs(t2.item())] + [abs(p1[k] - p2[k]) / abs(p2[k]) for k in p2 if p2[k]]
            diff = f"{max(rel):.1e}"
        times = {k: ([], [], []) for k in labels}
        for r in tqdm(range(args.warmup + args.runs), desc=name, disable=not sys.stderr.isatty()):
            order = labels[r % len(labels):] + labels[:r % len(labels)]
            for k in order:
                for series, t in zip(times[k], timed(cands[k], preds)):
                    if r >= args.warmup:
                        series.append(t)
        med = {k: [1000 * statistics.median(x) for x in times[k]] + [1000 * min(times[k][2])] for k in labels}
        ref = labels[-1] if len(labels) == 2 else None
        for k in labels:
            f, fb, cpu, cpu_min = med[k]
            ratios = [f"{fb / med[ref][1]:.2f}x", f"{cpu_min / med[ref][3]:.2f}x"] if ref else ["-", "-"]
            rows.append((name, k, f"{f:.1f}", f"{fb:.1f}", f"{cpu:.1f} / {cpu_min:.1f}", *ratios,
                         diff if k.startswith("yololab") else ""))
    load1 = os.getloadavg()
    n_boxes = len(batch["cls"])
    print(f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads. Load average {load0[0]:.2f} at start, {load1[0]:.2f} at end.")
    print(f"Inputs: {args.imgsz}x{args.imgsz}, batch {args.batch}, {n_boxes} boxes ({n_boxes / args.batch:.1f} per "
          f"image), {args.nc} classes; {args.runs} timed rounds after {args.warmup} warm-up, interleaved.\n")
    print("| model | loss | loss ms | loss + backward ms | loss + backward CPU ms (median / min) | "
          "wall vs reference | CPU (min) vs reference | max rel diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nWall times are medians over the timed rounds; ratios below 1 mean yololab is faster.")


if __name__ == "__main__":
    main()
