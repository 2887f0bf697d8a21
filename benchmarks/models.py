"""CPU inference latency of yololab's execution modes, side by side with Ultralytics' default path.

For each model (default yolov8n and yolo11n, 640x640, batch 1) this measures, in one process, with the
same threads and the same input (a letterboxed coco8 photograph):

* yololab in every mode of :func:`yololab.deploy.runtime.prepare_for_inference` (fp32, fp32-cl,
  bf16-cl, onnx, openvino, openvino-bf16; ``auto`` is whichever of these this machine gets; modes whose
  runtime is not installed are left out),
* Ultralytics' default: ``ultralytics.nn.autobackend.AutoBackend(model, fuse=True)`` under
  ``torch.inference_mode()``, which is what ``YOLO(...).predict()`` builds. On an x86 Linux CPU AutoBackend
  also puts the weights in channels-last, so the baseline is "fused + channels-last fp32", not plain fp32.

Runs are interleaved (one call of each candidate per round, order rotated every round) so that load from
other processes hits all candidates alike. It reports median and p90 ms, the ratio to the Ultralytics
default, the one-off cost of the first call (export + compile for onnx / openvino), and how far each
mode's output is from our fp32 eval output.

Both networks have the same random weights (Ultralytics' initialisation, copied into ours with
:func:`yololab.checkpoint.reference.reference_state_dict_to_yololab`), with BatchNorm statistics calibrated on
the 8 coco8 images so activations have realistic scale. No trained weights are used (none are available
offline), which matters for the accuracy columns: see benchmarks/README.md.

The output is markdown, ready to paste into benchmarks/README.md.

    .venv/bin/python benchmarks/models.py --models yolov8n,yolo11n --imgsz 640 --warmup 10 --runs 50
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import update_bn

from yololab.detect.evaluate import match_detections
from yololab.detect.postprocess import Detections, postprocess
from yololab.detect.preprocess import load_input
from yololab.errors import YololabError
from yololab.models import build_model
from yololab.deploy.runtime import (MODES, best_mode, cpu_has_native_bf16, mode_available, onnxruntime_available,
                                    openvino_available, prepare_for_inference)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "coco8" / "images"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default="yolov8n,yolo11n", help="comma-separated yololab/Ultralytics model names")
    p.add_argument("--imgsz", type=int, default=640, help="square input size in pixels")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls of each candidate before timing")
    p.add_argument("--runs", type=int, default=50, help="timed calls of each candidate (interleaved rounds)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(),
                   help="intra-op threads for torch and ONNX Runtime")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated yololab modes to time")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES,
                   help="folder of photographs (searched recursively): BN calibration, timing input, "
                        "detection comparison")
    p.add_argument("--topk", type=int, default=100, help="detections kept per image after NMS for the comparison")
    p.add_argument("--no-detections", action="store_true", help="skip the top-k detection comparison")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ inputs

def load_images(folder: Path, imgsz: int) -> list[torch.Tensor]:
    """Every .jpg/.png under ``folder``, letterboxed to ``imgsz``, as float32 (1, 3, H, W) in [0, 1]."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise YololabError(f"no .jpg/.png images under {folder}")
    return [load_input(path, imgsz)[0] for path in paths]


def machine_line(threads: int) -> str:
    model_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model_name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import ultralytics

    ort = "absent"
    if onnxruntime_available():
        import onnxruntime

        ort = onnxruntime.__version__
    ov = "absent"
    if openvino_available():
        import openvino

        ov = openvino.__version__.split("-")[0]
    return (f"{model_name}, {os.cpu_count()} logical CPUs, {threads} threads; torch {torch.__version__}, "
            f"onnxruntime {ort}, openvino {ov}, ultralytics {ultralytics.__version__}; "
            f"native bf16: {cpu_has_native_bf16()} "
            f"(auto = {best_mode()}); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


# ------------------------------------------------------------------------------------------------ models

def build_pair(name: str, calib: list[torch.Tensor], seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Ultralytics' DetectionModel and our model of the same name, holding the same weights."""
    from ultralytics.nn.tasks import DetectionModel

    from yololab.checkpoint.reference import reference_state_dict_to_yololab

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = DetectionModel(f"{name}.yaml", nc=80, verbose=False)
    update_bn([torch.cat(calib)], ref)
    ref.eval()
    ours = build_model(name, num_classes=80)
    ours.load_state_dict(reference_state_dict_to_yololab(ours, ref.state_dict()))
    return ours.eval(), ref


def ultralytics_default(ref: torch.nn.Module,
                        channels_last: bool | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """What ``YOLO.predict`` runs: AutoBackend(fuse=True) (+ channels-last on x86 Linux), inference_mode.

    ``channels_last=False`` gives the fused NCHW model that Ultralytics versions before the automatic
    channels-last ran (for reference only; the default is what users get now).
    """
    from ultralytics.nn.autobackend import AutoBackend

    backend = AutoBackend(model=copy.deepcopy(ref), device=torch.device("cpu"), fuse=True, verbose=False,
                          channels_last=channels_last).eval()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = backend(x)
        return out[0] if isinstance(out, (list, tuple)) else out

    return run


# ------------------------------------------------------------------------------------------------ timing

def time_interleaved(fns: dict[str, Callable], x: torch.Tensor, warmup: int, runs: int) -> dict[str, list[float]]:
    """Per candidate, ``runs`` latencies in ms; one call of each per round, order rotated each round."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n](x)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            t0 = time.perf_counter()
            fns[n](x)
            times[n].append((time.perf_counter() - t0) * 1e3)
    return times


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


# ------------------------------------------------------------------------------------------------ accuracy

def top_detections(pred: torch.Tensor, k: int, iou: float = 0.7) -> Detections:
    """(1, 4 + nc, A) eval output -> the top ``k`` detections after per-class NMS, one class per anchor, no
    threshold: random weights give low scores everywhere, and the top ``k`` by score are what a trained
    model's thresholded output would be drawn from. As every YOLO, only the 10 k best enter NMS."""
    return postprocess(pred, conf=0.0, iou=iou, max_det=k, max_nms=10 * k, multi_label=False)[0]


def compare_detections(a: Detections, b: Detections) -> tuple[int, int, float, float]:
    """``b``'s detections matched to ``a``'s (same class, IoU >= 0.9, greedy by ``a``'s score): (matched,
    total in a, mean IoU of the matches, max |score difference| of the matches)."""
    pairs = list(match_detections(a, b, iou=0.9))
    if not pairs:
        return 0, len(a.boxes), float("nan"), float("nan")
    score_diff = [abs(float(a.scores[i] - b.scores[j])) for i, j, _ in pairs]
    return len(pairs), len(a.boxes), float(np.mean([m for _, _, m in pairs])), float(np.max(score_diff))


def output_diffs(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, float]:
    """(max |box diff| in px, median |box diff| in px, max |class-score diff|)."""
    d = (out.float() - ref.float()).abs()
    return float(d[:, :4].max()), float(d[:, :4].median()), float(d[:, 4:].max())


# ------------------------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        print("error: this benchmark compares with Ultralytics: pip install --no-deps ultralytics", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"error: unknown mode(s) {bad}; choose from {', '.join(MODES)}", file=sys.stderr)
        return 2
    modes = [m for m in modes if mode_available(m)]  # runtime not installed: left out
    try:
        images = load_images(args.images, args.imgsz)
    except YololabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    auto = best_mode()

    print(f"Machine: {machine_line(args.threads)}\n")
    print(f"Input: {args.imgsz}x{args.imgsz}, batch 1, {args.warmup} warm-up + {args.runs} timed calls each, "
          f"interleaved. Ultralytics default = AutoBackend(fuse=True), which on this CPU also uses channels-last. "
          "Diff columns: vs our unfused fp32 eval output on the same image.\n")
    print("| model | runs as | median ms | p90 ms | vs Ultralytics default | first call s | max box diff px | "
          "median box diff px | max score diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    detection_rows, parity_rows, summary = [], [], []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        ours, ref = build_pair(name, images, args.seed)
        x = images[0]
        with torch.inference_mode():
            ours_eval = ours(x)
            ref_eval = ref(x)[0]
        parity_rows.append((name, *output_diffs(ours_eval, ref_eval)))

        candidates: dict[str, Callable] = {"ultralytics default": ultralytics_default(ref),
                                           "ultralytics fused NCHW": ultralytics_default(ref, channels_last=False)}
        first_call = {}
        for mode in modes:
            t0 = time.perf_counter()
            candidates[f"yololab {mode}"] = prepare_for_inference(ours, mode, threads=args.threads)
            candidates[f"yololab {mode}"](x)  # onnx / openvino: export + compile for this shape
            first_call[f"yololab {mode}"] = time.perf_counter() - t0
        times = time_interleaved(candidates, x, args.warmup, args.runs)
        base = statistics.median(times["ultralytics default"])
        for label, ts in times.items():
            med = statistics.median(ts)
            out = candidates[label](x)
            diffs = output_diffs(out, ours_eval)  # Ultralytics rows too: same weights
            tag = f"{label} (auto)" if label == f"yololab {auto}" else label
            first = f"{first_call[label]:.1f}" if label in first_call else "-"
            print(f"| {name} | {tag} | {med:.1f} | {p90(ts):.1f} | {med / base:.2f}x | {first} | {diffs[0]:.2g} | "
                  f"{diffs[1]:.2g} | {diffs[2]:.2g} |")
            if label == f"yololab {auto}":
                summary.append(f"{name}: yololab auto ({auto}) {med:.1f} ms = {med / base:.2f}x Ultralytics default "
                               f"({base:.1f} ms); max box diff vs fp32 eval {diffs[0]:.2g} px, max score diff "
                               f"{diffs[2]:.2g}")

        if not args.no_detections:
            with torch.inference_mode():
                reference = [top_detections(ours(img), args.topk) for img in images]
            for mode in modes:
                if mode == "fp32":
                    continue
                runner = candidates[f"yololab {mode}"]
                # matched against the mode's top 2k, so that a tie broken differently at rank k is no miss
                stats = [compare_detections(r, top_detections(runner(img), 2 * args.topk))
                         for r, img in zip(reference, images)]
                matched = sum(s[0] for s in stats)
                total = sum(s[1] for s in stats)
                mean_iou = np.nanmean([s[2] for s in stats])
                max_sd = np.nanmax([s[3] for s in stats])
                detection_rows.append(f"| {name} | {mode} | {matched}/{total} ({100 * matched / max(total, 1):.1f} %) "
                                      f"| {mean_iou:.4f} | {max_sd:.2g} |")

    print("\nSame weights, our fp32 eval vs Ultralytics' eval (unfused, contiguous) on the same image:\n")
    print("| model | max box diff px | median box diff px | max score diff |")
    print("|---|---:|---:|---:|")
    for name, a, b, c in parity_rows:
        print(f"| {name} | {a:.2g} | {b:.2g} | {c:.2g} |")
    if detection_rows:
        print(f"\nTop-{args.topk} detections after NMS (IoU 0.7) on the {len(images)} images under "
              f"{args.images.parent.name}/{args.images.name}, "
              "each mode vs our fp32 eval: matched = same class and IoU >= 0.9:\n")
        print("| model | mode | matched | mean IoU of matches | max score diff of matches |")
        print("|---|---|---:|---:|---:|")
        print("\n".join(detection_rows))
    print("\n" + "\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
