"""``yololab benchmark``: speed and accuracy of each model in each execution mode, end to end.

For each model (a zoo name, random init, or a weights file) and each execution mode
(:data:`yololab.deploy.runtime.MODES`), through :class:`yololab.deploy.predict.Predictor`, the same path as
``yololab predict``:

* preprocess, inference and postprocess latency at batch 1 (median ms per photo over ``runs`` rounds, after
  ``warmup`` untimed rounds that also pay OpenVINO's compilation);
* throughput at batch 8 (photos per second);
* parameters and GFLOPs at ``imgsz`` (the caller's ``cost``: ``yololab benchmark`` passes
  :func:`yololab.analysis.summary.trace_model`'s);
* with ``data``: COCO mAP50-95 and mAP50 on its val split (conf 0.001, IoU 0.7, 300 detections,
  faster-coco-eval).

Writes ``benchmark.csv``, ``benchmark.md``, ``latency_vs_map.png`` (latency against mAP, or GFLOPs without data,
with the Pareto front: the rows no other row beats on both) and ``ours.csv``, the rows in the format
``yololab sota plot --ours`` overlays, marked with this machine.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from torch import nn

from yololab.fileio import write_bytes_atomic, write_text_atomic

FIELDS = ("model", "mode", "imgsz", "params_M", "gflops", "pre_ms", "infer_ms", "post_ms", "total_ms",
          "throughput_b8", "map50_95", "map50")


@dataclass
class Row:
    model: str
    mode: str
    imgsz: int
    params_M: float
    gflops: float
    pre_ms: float
    infer_ms: float
    post_ms: float
    total_ms: float
    throughput_b8: float  # photos per second at batch 8
    map50_95: float | None
    map50: float | None


def machine() -> str:
    """The CPU model name and logical CPU count, as a row's ``hardware``."""
    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} CPUs"


def _timed_latency(predictor, images: list[np.ndarray], runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        for im in images:
            predictor.predict_arrays([im])
    per_step: dict[str, list[float]] = {k: [] for k in predictor.times}
    for _ in range(runs):
        for im in images:
            before = dict(predictor.times)
            predictor.predict_arrays([im])
            for k in per_step:
                per_step[k].append((predictor.times[k] - before[k]) * 1e3)
    return {k: statistics.median(v) for k, v in per_step.items()}


def _throughput(predictor, images: list[np.ndarray], batch: int = 8, rounds: int = 3) -> float:
    chunk = [images[i % len(images)] for i in range(batch)]
    predictor.predict_arrays(chunk)  # compile / warm this shape
    t0 = time.perf_counter()
    for _ in range(rounds):
        predictor.predict_arrays(chunk)
    return batch * rounds / (time.perf_counter() - t0)


def _accuracy(predictor, data: str | os.PathLike) -> tuple[float, float]:
    from yololab.data.io import read_image
    from yololab.detect.evaluate import coco_map, coco_results, ground_truth

    gt, paths = ground_truth(data, "val")
    results = []
    for image_id, path in enumerate(paths, 1):
        results += coco_results(predictor.predict_arrays([read_image(path)])[0], image_id)
    stats = coco_map(gt, results)
    return stats["mAP50-95"], stats["mAP50"]


def benchmark(models: list[str], modes: list[str], imgsz: int, images: list[np.ndarray],
              cost: Callable[[nn.Module, int], tuple[int, float]], weights=None, data=None, runs: int = 10,
              warmup: int = 2, progress_enabled: bool = True) -> list[Row]:
    """One :class:`Row` per model and mode (module docstring); ``cost(model, imgsz) -> (params, GFLOPs)``."""
    from yololab.deploy.load import build_detector
    from yololab.deploy.predict import Predictor
    from yololab.progress import progress

    rows = []
    bar = progress(total=len(models) * len(modes), desc="benchmark", enabled=progress_enabled)
    for name in models:
        net, _, _ = build_detector(weights, name, None)
        params, gflops = cost(net, imgsz)
        for mode in modes:
            bar.set_postfix_str(f"{name} {mode}")
            predictor = Predictor(model=net, mode=mode, imgsz=imgsz)
            lat = _timed_latency(predictor, images, runs, warmup)
            fast = Predictor(model=net, mode=mode, imgsz=imgsz, rect=False)
            tput = _throughput(fast, images)
            m5095 = m50 = None
            if data is not None:
                acc = Predictor(model=net, mode=mode, imgsz=imgsz, conf=0.001, iou=0.7, max_det=300)
                m5095, m50 = _accuracy(acc, data)
            rows.append(Row(net.meta.name, predictor.meta.mode, imgsz, round(params / 1e6, 3),
                            round(gflops, 2), lat["preprocess"], lat["inference"], lat["postprocess"],
                            sum(lat.values()), tput, m5095, m50))
            bar.update(1)
    bar.close()
    return rows


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4f}" if isinstance(v, float) and v < 1 else f"{v:.2f}" if isinstance(v, float) else str(v)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both: lower x (latency) and higher y (accuracy)."""
    return [i for i, (x, y) in enumerate(points)
            if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for x2, y2 in points)]


def plot(rows: list[Row], title: str) -> bytes:
    """PNG: latency (batch 1, total ms) against mAP50-95, or against GFLOPs without accuracy; Pareto front drawn."""
    import matplotlib.pyplot as plt

    with_map = all(r.map50_95 is not None for r in rows)
    ys = [r.map50_95 * 100 if with_map else r.gflops for r in rows]
    xs = [r.total_ms for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(xs, ys, zorder=3)
    for r, x, y in zip(rows, xs, ys):
        ax.annotate(f"{r.model} {r.mode}", (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    front = sorted(pareto(list(zip(xs, ys if with_map else [-y for y in ys]))), key=lambda i: xs[i])
    ax.plot([xs[i] for i in front], [ys[i] for i in front], "r--", label="Pareto front", zorder=2)
    ax.set_xlabel("latency, batch 1, image in -> boxes out (ms)")
    ax.set_ylabel("mAP50-95 (%)" if with_map else "GFLOPs (no --data: cost instead of accuracy)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


NO_MAP_NOTE = ("mAP is empty for random-init weights, where it means nothing (pass --weights and --data to "
               "measure it); ours.csv then carries the architecture's published COCO mAP beside the latency "
               "measured here.")


def write_outputs(rows: list[Row], out: Path, title: str, published: dict[str, tuple[float, str]] | None = None,
                  data_name: str = "--data") -> list[Path]:
    """benchmark.csv, benchmark.md, latency_vs_map.png and ours.csv (for ``yololab sota plot --ours``).

    ours.csv holds one row per benchmark row with the mAP50-95 (in %) measured on ``data_name``, or, for a row
    without one (random-init weights), the architecture's published COCO val2017 mAP50-95 from ``published``
    (model -> (value in %, where it comes from)), the note saying which. Every row names this machine."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, FIELDS)
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in asdict(r).items()} for r in rows)
    md = [f"{title}\n", "| " + " | ".join(FIELDS) + " |", "|" + "---|" * len(FIELDS)]
    md += ["| " + " | ".join(_fmt(getattr(r, f)) for f in FIELDS) + " |" for r in rows]
    if any(r.map50_95 is None for r in rows):
        md += ["", NO_MAP_NOTE]
    hardware = machine()
    ours = io.StringIO()
    w = csv.writer(ours)
    w.writerow(["model", "value", "params_M", "speed", "speed_unit", "hardware", "precision", "batch", "note"])
    for r in rows:
        how = f"yololab benchmark, imgsz {r.imgsz}, image in -> boxes out"
        if r.map50_95 is not None:
            value, note = round(r.map50_95 * 100, 2), f"{how}; mAP50-95 measured on {data_name}"
        elif published and r.model in published:
            value, where = published[r.model]
            note = f"{how}, random-init weights; value: the architecture's published COCO mAP50-95 ({where})"
        else:
            continue
        w.writerow([r.model, value, r.params_M, round(r.total_ms, 2), "ms", hardware, r.mode, 1, note])
    return [write_text_atomic(out / "benchmark.csv", buf.getvalue()),
            write_text_atomic(out / "benchmark.md", "\n".join(md) + "\n"),
            write_bytes_atomic(out / "latency_vs_map.png", plot(rows, title)),
            write_text_atomic(out / "ours.csv", ours.getvalue())]
