"""``yololab demo``: yololab's main job on a fresh clone, offline, on a CPU (``make demo``).

1. A tour of the model zoo with the same code the ``yololab models`` commands use: the table of every model
   (parameters, GFLOPs, strides, anchors), the per-block summary of one model, its architecture diagram and
   the comparison table (well under a minute).
2. Training: it synthesizes the shapes set (``yololab data synth shapes``), trains ``--model`` on it with
   ``yololab train``'s task and engine (about 5-10 minutes on 2 CPU cores with the default recipe), validates
   ``best.pt`` with the COCO protocol and writes ``report.md``: the metric table, the per-class APs, the
   recipe, the hardware, the wall time and every plot. ``--epochs 0`` skips it.

Everything goes into ``--out``: the tour's files, ``shapes/`` (the data), ``train/`` (the run folder) and
``report.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from yololab._cli_group import FORMATTER, add_overwrite, non_negative_int, output_dir, positive_int, refuse_to_replace

# The training recipe of the demo: sized for about 5-10 minutes on 2 CPU cores (benchmarks/README.md). Ultralytics'
# optimizer=auto for a run this short (AdamW at 0.000909, nominal batch 64) takes one optimizer step per 64 images:
# 625 in all. One step per batch of 16 (nbs 16) at lr0 0.002 ranked far ahead (15-epoch trials: mAP50-95 0.18
# against 0.016; benchmarks/README.md, "The demo")
RECIPE = {"epochs": 50, "train_images": 800, "val_images": 200, "train_imgsz": 256, "batch": 16}
OPTIMIZER = {"nbs": 16, "optimizer": "AdamW", "lr0": 0.002, "momentum": 0.9, "warmup_bias_lr": 0.0}
TARGET = 0.6  # COCO mAP50-95 on the shapes validation split


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="The zoo in a minute, then train and validate a detector on synthetic shapes.",
        description="Print every model of the zoo (parameters, GFLOPs, strides, anchors) and the per-block "
                    "summary of --model, and write the tables, the diagram of --model (PNG, SVG, Mermaid, "
                    "draw.io) and the comparison table (CSV, Markdown) into --out. Then synthesize the shapes "
                    "set, train --model on it (about 5-10 min on 2 CPU cores), validate best.pt with the COCO "
                    "protocol and write report.md with the metrics, the recipe, the hardware, the wall time "
                    "and the plots. Offline, CPU only.",
        formatter_class=FORMATTER)
    p.add_argument("--out", type=output_dir, default="runs/demo",
                   help="folder for everything the demo writes (created if needed)")
    p.add_argument("--model", default="yolov8n", help="the model to summarize and draw")
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size of the zoo tables, in pixels")
    p.add_argument("--epochs", type=non_negative_int, default=RECIPE["epochs"],
                   help="training epochs on the shapes set (0: the zoo tour only)")
    p.add_argument("--train-images", type=positive_int, default=RECIPE["train_images"],
                   help="synthetic training images")
    p.add_argument("--val-images", type=positive_int, default=RECIPE["val_images"],
                   help="synthetic validation images")
    p.add_argument("--train-imgsz", type=positive_int, default=RECIPE["train_imgsz"],
                   help="training image size (and the synthetic images' size); a multiple of 32")
    p.add_argument("--batch", type=positive_int, default=RECIPE["batch"], help="training batch size")
    add_overwrite(p, "the files of an earlier demo in --out")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from yololab.errors import ConfigError
    from yololab.models.registry import resolve_name

    if args.train_imgsz % 32:
        raise ConfigError(f"--train-imgsz {args.train_imgsz}: expected a multiple of 32 (the models' largest stride)")
    out = Path(args.out)
    model = resolve_name(args.model)
    if args.epochs:
        refuse_to_replace(demo_outputs(out, model) + training_outputs(out), args.overwrite)
    t0 = time.perf_counter()
    run_demo(out, model, args.imgsz, overwrite=args.overwrite)
    if args.epochs:
        train_demo(out, model, epochs=args.epochs, train_images=args.train_images, val_images=args.val_images,
                   imgsz=args.train_imgsz, batch=args.batch, started=t0)
    return 0


def demo_outputs(out: Path, model: str) -> list[Path]:
    """The files the demo's zoo tour writes into ``out`` for ``model`` (a zoo name)."""
    from yololab.analysis.diagrams import FORMATS

    return ([out / "models.txt", out / f"summary_{model}.txt"] + [out / f"{model}.{f}" for f in FORMATS]
            + [out / "architectures.csv", out / "architectures.md"])


def training_outputs(out: Path) -> list[Path]:
    """What the training part writes into ``out``: the data, the run folder, the report."""
    return [out / "shapes", out / "train", out / "report.md"]


def run_demo(out: Path, model: str = "yolov8n", imgsz: int = 640, overwrite: bool = False) -> list[Path]:
    """Print the zoo, one summary and write the files; returns the paths written.

    A bad ``model`` or an earlier demo's files in ``out`` (without ``overwrite``) stop it before it prints anything.
    """
    from yololab.analysis.diagrams import write_diagram
    from yololab.analysis.summary import format_list, format_summary, trace_zoo_model, write_compare, zoo_rows
    from yololab.fileio import write_text_atomic
    from yololab.models.registry import resolve_name

    t0 = time.perf_counter()
    out = Path(out)
    model = resolve_name(model)
    refuse_to_replace(demo_outputs(out, model), overwrite)
    written: list[Path] = []

    print(f"== The model zoo (parameters and GFLOPs at {imgsz}x{imgsz}, traced from the model code) ==")
    rows = zoo_rows(imgsz)
    table = format_list(rows)
    print(table)
    write_text_atomic(out / "models.txt", table + "\n")
    written.append(out / "models.txt")

    print(f"\n== {model}: one row per block (backbone -> neck -> head) ==")
    trace = trace_zoo_model(model, imgsz)
    summary = format_summary(trace)
    print(summary)
    write_text_atomic(out / f"summary_{model}.txt", summary + "\n")
    written.append(out / f"summary_{model}.txt")

    written += write_diagram(trace, out)
    written += write_compare(rows, out / "architectures.csv")

    print(f"\n== Written in {time.perf_counter() - t0:.1f} s ==")
    for p in written:
        print(f"  {p}")
    print(f"Open {out / (model + '.png')} for the diagram; {out / (model + '.drawio')} opens in diagrams.net.\n"
          f"Next: `yololab models summary yolo11s`, `yololab models diagram yolov3 --out DIR`, "
          f"`yololab --help`.")
    return written


def train_demo(out: Path, model: str, epochs: int, train_images: int, val_images: int, imgsz: int, batch: int,
               started: float | None = None) -> Path:
    """Synthesize the shapes set into ``out/shapes``, train ``model`` on it into ``out/train``, validate best.pt
    and write ``out/report.md``; returns its path. Replaces an earlier demo's data and run folder."""
    import shutil

    from yololab.data.synthetic import synth_shapes
    from yololab.detect.task import DetectionTask
    from yololab.engine import TrainConfig, Trainer

    started = time.perf_counter() if started is None else started
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    print(f"\n== Training {model} on {train_images} synthetic shapes images ({imgsz} px, {epochs} epochs) ==")
    data = synth_shapes(out / "shapes", train=train_images, val=val_images, imgsz=imgsz, overwrite=True,
                        progress=True)
    synth_s = time.perf_counter() - t0
    if (out / "train" / "args.yaml").is_file():  # an earlier demo's run folder (--overwrite was given)
        shutil.rmtree(out / "train")
    # workers: the engine's rule (on 2 CPU cores the loader runs in-process and every core computes)
    cfg = TrainConfig(project=str(out), name="train", exist_ok=True, epochs=epochs, batch=batch,
                      val_interval=max(1, epochs // 4), **OPTIMIZER)
    task = DetectionTask(cfg, data=data, model=model, imgsz=imgsz)
    summary = Trainer(task, cfg).fit()
    report = write_demo_report(out, model, task, summary, synth_s, time.perf_counter() - started, load_before)
    final = task.final.metrics
    verdict = "met" if final["mAP50-95"] >= TARGET else "not met"
    print(f"best.pt: mAP50-95 {final['mAP50-95']:.3f}, mAP50 {final['mAP50']:.3f} (target {TARGET}: {verdict}); "
          f"report: {report}")
    return report


def write_demo_report(out: Path, model: str, task, summary: dict, synth_s: float, wall_s: float,
                      load_before: tuple[float, float, float]) -> Path:
    """report.md of the demo: result, per-class APs, recipe, hardware and load, time, plots, the tour's files."""
    import dataclasses

    from yololab.engine.hardware import describe
    from yololab.fileio import write_text_atomic

    trainer_cfg, res = task.cfg, task.final
    m = res.metrics
    run = summary["run_dir"]
    verdict = "**met**" if m["mAP50-95"] >= TARGET else "**not met**"
    rows = [("mAP50-95", "mAP50-95"), ("mAP50", "mAP50"), ("mAP75", "mAP75"), ("precision", "precision"),
            ("recall", "recall"), ("F1", "f1"), ("AR100", "AR100")]
    lines = [f"# yololab demo: {model} trained on the synthetic shapes set", "",
             f"{model} trained from scratch for {summary['epochs_done']} epochs on {len(task.train_data)} "
             f"synthetic images of {task.imgsz} px, validated on {len(task.val_dataset())} with the COCO protocol "
             f"(faster-coco-eval, equal to pycocotools). Target mAP50-95 >= {TARGET}: {verdict} "
             f"({m['mAP50-95']:.3f}).", "",
             "## Result (best.pt, epoch %d)" % summary["best_epoch"], "", "| metric | value |", "|---|---|"]
    lines += [f"| {label} | {m[key]:.4f} |" for label, key in rows if key in m]
    if res.per_class:
        keys = [k for k in res.per_class[0] if k not in ("name", "class")]
        lines += ["", "## Per class", "", "| class | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        lines += ["| " + " | ".join([str(c["name"])] + [f"{c[k]:.4f}" if isinstance(c[k], float) else str(c[k])
                                                        for k in keys]) + " |" for c in res.per_class]
    hyp = dataclasses.asdict(task.loss_hyp) if task.loss_hyp else {}
    recipe = {"model": model, "imgsz": task.imgsz, "train images": len(task.train_data), **trainer_cfg.to_dict(),
              **{f"loss {k}": v for k, v in hyp.items()},
              **{f"aug {k}": v for k, v in dataclasses.asdict(task.augment).items()}}
    lines += ["", "## Hyperparameters", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in recipe.items() if k not in ("project", "name", "resume")]
    facts = describe(task.device, task.trainer.amp) | {"channels-last": str(task.trainer.channels_last),
                                                       "torch threads": str(torch_threads())}
    load_after = os.getloadavg()
    facts["load average (1, 5, 15 min) before"] = ", ".join(f"{v:.2f}" for v in load_before)
    facts["load average after"] = ", ".join(f"{v:.2f}" for v in load_after)
    lines += ["", "## Hardware", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts.items()]
    lines += ["", "## Time", "", "| part | seconds |", "|---|---|",
              f"| synthesize the data | {synth_s:.0f} |",
              f"| train (with validation every {trainer_cfg.val_interval} epochs) | {summary['train_time_s']:.0f} |",
              f"| whole demo (zoo tour, data, training, final validation, report) | {wall_s:.0f} |"]
    plots = [run / "results.png"] + sorted(p for p in run.glob("*.png") if p.name != "results.png")
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.relative_to(out)})" for p in plots if p.is_file()]
    lines += ["", "## Files", "", f"- `{run.relative_to(out)}/`: the run folder (weights/best.pt, weights/last.pt, "
              "results.csv, TensorBoard events, its own report.md)", "- `shapes/`: the synthetic data set",
              "- the zoo tour: " + ", ".join(f"`{p.name}`" for p in demo_outputs(out, model))]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()
