"""Does each inference mode keep mAP unchanged? COCO mAP of every execution mode on a *trained* yolov8n.

No pretrained weights are available offline, so this trains one first, with the reference tool:

1. writes the built-in synthetic shapes dataset (:func:`yololab.data.synthetic.synth_shapes`, 7 classes),
2. trains a yolov8n from scratch on it with the Ultralytics trainer (``YOLO("yolov8n.yaml").train``), a
   few minutes on a CPU, offline,
3. loads the trained checkpoint into yololab's yolov8n (``build_model("yolov8n", num_classes=7, weights=...)``),
4. runs every mode of :func:`yololab.deploy.runtime.prepare_for_inference` on the val images (letterboxed
   to ``--imgsz``), decodes + NMS like ``ultralytics val`` (:mod:`yololab.detect.postprocess`: conf 0.001,
   IoU 0.7, max 300 detections, per-class NMS), maps boxes back to the original image and computes COCO
   mAP50-95 / mAP50 (:mod:`yololab.detect.evaluate`, faster-coco-eval) against the val labels,
5. prints a markdown table: mode, mAP50-95, mAP50, their change vs fp32, the max output difference vs fp32
   and the latency per image.

Steps 1-2 are cached in ``--work-dir``: a rerun skips them (delete the folder to start over).

    .venv/bin/python benchmarks/inference_accuracy.py --work-dir /tmp/yololab-accuracy
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

from yololab.deploy.runtime import MODES, best_mode, prepare_for_inference
from yololab.detect.evaluate import coco_map, coco_results, ground_truth
from yololab.detect.postprocess import postprocess, to_image
from yololab.detect.preprocess import load_input
from yololab.errors import YololabError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/yololab-inference-accuracy"),
                   help="dataset, training run and trained weights go here; reused by later runs")
    p.add_argument("--train", type=int, default=800, help="synthetic training images")
    p.add_argument("--val", type=int, default=200, help="synthetic validation images")
    p.add_argument("--imgsz", type=int, default=320, help="image size for the dataset, training and evaluation")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (capped by --train-minutes)")
    p.add_argument("--train-minutes", type=float, default=11.0,
                   help="wall-clock cap for training (Ultralytics' time= option, fits the LR schedule to it)")
    p.add_argument("--continue-minutes", type=float, default=0.0,
                   help="if > 0, first train the cached weights this many minutes more (a new Ultralytics run "
                        "started from them, no warm-up) and cache the result in their place")
    p.add_argument("--batch", type=int, default=16, help="training batch size")
    p.add_argument("--modes", default="all", help="comma-separated modes to evaluate, or 'all' (fp32 always runs)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="inference threads")
    p.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ steps 1-2

def make_dataset(work_dir: Path, train: int, val: int, imgsz: int, seed: int) -> Path:
    """The synthetic shapes dataset's data.yaml under ``work_dir/shapes`` (written once)."""
    from yololab.data.synthetic import synth_shapes

    yaml_path = work_dir / "shapes" / "data.yaml"
    if yaml_path.is_file():
        print(f"dataset: reusing {yaml_path}")
        return yaml_path
    return synth_shapes(work_dir / "shapes", train=train, val=val, imgsz=imgsz, seed=seed)


def train_reference(data_yaml: Path, work_dir: Path, imgsz: int, epochs: int, minutes: float, batch: int,
                    seed: int, continue_minutes: float = 0.0) -> Path:
    """Train yolov8n from scratch with the Ultralytics trainer; return the trained weights (cached).

    With ``continue_minutes`` > 0 and cached weights, train those further (a second run) and cache the result.
    """
    final = work_dir / "yolov8n-shapes.pt"
    start, warmup = "yolov8n.yaml", 3.0
    if final.is_file():
        if continue_minutes <= 0:
            print(f"weights: reusing {final}")
            return final
        start, warmup, minutes = str(final), 0.0, continue_minutes
        print(f"weights: training {final} {continue_minutes:g} minutes more")
    # Offline: no settings sync / hub events, and the config (settings.json) inside work_dir, not in ~.
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work_dir / "ultralytics-config"))
    import ultralytics.data.utils
    from ultralytics import YOLO

    # check_det_dataset() asks for Arial.ttf (for plot labels) and, when it is not cached, tries to download
    # it (an HTTP request, even with YOLO_OFFLINE). Fonts only matter for plots, which are off here.
    ultralytics.data.utils.check_font = lambda *a, **k: None

    run_dir = work_dir / "train"  # reused (exist_ok) by every run: Ultralytics rewrites its files there
    model = YOLO(start)
    model.train(data=str(data_yaml), epochs=epochs, time=minutes / 60, imgsz=imgsz, batch=batch, workers=2,
                device="cpu", amp=False, plots=False, val=False, seed=seed, deterministic=False,
                warmup_epochs=warmup,
                project=str(work_dir), name="train", exist_ok=True, verbose=False)
    weights = run_dir / "weights" / "last.pt"
    if not weights.is_file():
        raise YololabError(f"training finished without writing {weights}")
    tmp = final.with_name(final.name + ".tmp")
    shutil.copyfile(weights, tmp)
    os.replace(tmp, final)
    return final


# ------------------------------------------------------------------------------------------------ evaluation

def evaluate_mode(runner, images) -> tuple[list[dict], list[torch.Tensor], list[float]]:
    """Run ``runner`` on every image: (COCO results, raw outputs, per-image latency in ms)."""
    results, outputs, times = [], [], []
    runner(images[0][1])  # warm-up (and, for compiled modes, the one-off compilation)
    for image_id, x, gain, pad, shape in images:
        t0 = time.perf_counter()
        out = runner(x)
        times.append((time.perf_counter() - t0) * 1e3)
        outputs.append(out)
        results += coco_results(to_image(postprocess(out)[0], gain, pad, shape), image_id)
    return results, outputs, times


def max_diffs(outputs: list[torch.Tensor], ref: list[torch.Tensor]) -> tuple[float, float]:
    """(max |box diff| in px, max |class-score diff|) over all images and anchors."""
    box = max(float((o[:, :4] - r[:, :4]).abs().max()) for o, r in zip(outputs, ref))
    score = max(float((o[:, 4:] - r[:, 4:]).abs().max()) for o, r in zip(outputs, ref))
    return box, score


# ------------------------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        print("error: training the reference model needs Ultralytics: pip install --no-deps ultralytics",
              file=sys.stderr)
        return 2
    from yololab.models import build_model
    from yololab.deploy.runtime import mode_available

    modes = list(MODES) if args.modes == "all" else [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"error: unknown mode(s) {bad}; choose from {', '.join(MODES)}", file=sys.stderr)
        return 2
    modes = ["fp32"] + [m for m in modes if m != "fp32" and mode_available(m)]

    args.work_dir.mkdir(parents=True, exist_ok=True)
    data_yaml = make_dataset(args.work_dir, args.train, args.val, args.imgsz, args.seed)
    t0 = time.perf_counter()
    weights = train_reference(data_yaml, args.work_dir, args.imgsz, args.epochs, args.train_minutes, args.batch,
                              args.seed, args.continue_minutes)
    print(f"trained weights: {weights} ({time.perf_counter() - t0:.0f} s)")
    gt, paths = ground_truth(data_yaml, "val")
    images = [(image_id, *load_input(p, args.imgsz)) for image_id, p in enumerate(paths, start=1)]
    model = build_model("yolov8n", num_classes=len(gt["categories"]), weights=str(weights)).eval()

    rows, ref_outputs, ref_map = [], None, None
    for mode in modes:
        t_prep = time.perf_counter()
        runner = prepare_for_inference(model, mode, threads=args.threads)
        results, outputs, times = evaluate_mode(runner, images)
        prep_s = time.perf_counter() - t_prep - sum(times) / 1e3
        metrics = coco_map(gt, results)
        m = metrics["mAP50-95"], metrics["mAP50"]
        if mode == "fp32":
            ref_outputs, ref_map = outputs, m
        box_d, score_d = max_diffs(outputs, ref_outputs)
        rows.append((mode, m, box_d, score_d, statistics.median(times), prep_s))
        print(f"{mode}: mAP50-95 {m[0]:.4f} mAP50 {m[1]:.4f} ({statistics.median(times):.1f} ms/img)", flush=True)

    print(f"\nyolov8n trained {args.imgsz} px on shapes ({args.train} train images), evaluated on "
          f"{len(images)} val images at {args.imgsz}x{args.imgsz}, batch 1, {args.threads} threads; "
          f"auto = {best_mode()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| mode | mAP50-95 | mAP50 | Δ mAP50-95 vs fp32 | Δ mAP50 vs fp32 | max box diff px | max score diff "
          "| median ms/img | prepare + first call s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, (m, m50), box_d, score_d, med, prep in rows:
        print(f"| {mode} | {m:.4f} | {m50:.4f} | {m - ref_map[0]:+.4f} | {m50 - ref_map[1]:+.4f} | {box_d:.2g} | "
              f"{score_d:.2g} | {med:.1f} | {prep:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
