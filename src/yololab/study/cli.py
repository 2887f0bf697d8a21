"""``yololab sota``: the sourced state-of-the-art table and its plots; ``yololab ablate``: focused experiments.

Standard library only at the top: each command imports what it runs (see yololab/_cli_group.py). Both
commands read the table that ships with yololab unless ``--table`` names another, so they work from any folder.
"""

from __future__ import annotations

import argparse

from yololab._cli_group import (FORMATTER, add_group, add_overwrite, input_file, non_negative_int, output_dir,
                                positive_int, refuse_to_replace)

TASKS = ("classification", "detection", "segmentation", "video")  # yololab.study.sota.METRICS


def register(subparsers) -> None:
    _register_sota(subparsers)
    _register_ablate(subparsers)


def _register_sota(subparsers) -> None:
    commands = add_group(subparsers, "sota", "State-of-the-art table: validate, plot.")

    p = commands.add_parser(
        "validate", help="Check the sourced SOTA table and print a summary per task.",
        description="Validate a SOTA table CSV (sources, tasks, metrics, numbers, dates, URLs, speed fields) "
                    "and print, per task, the row counts and the leader of each dataset/split/metric.",
        formatter_class=FORMATTER)
    p.add_argument("--table", type=input_file, default=None,
                   help="the table to check (default: the one shipped with yololab)")
    p.set_defaults(func=_validate)

    p = commands.add_parser(
        "plot", help="Plot accuracy vs parameters, latency and date per task (PNG + SVG).",
        description="Draw, per task, accuracy against parameters, against latency and against publication date, "
                    "with the Pareto front and YOLO models highlighted. Only rows with the same hardware, precision "
                    "and batch share the latency axis (the largest such group); the rest are listed under the "
                    "figure, as are rows of another dataset/split/metric.",
        formatter_class=FORMATTER)
    p.add_argument("--table", type=input_file, default=None,
                   help="the table to plot (default: the one shipped with yololab)")
    p.add_argument("--out", type=output_dir, default="runs/sota",
                   help="folder for sota_<task>.png/.svg (`make docs` writes docs/figures)")
    p.add_argument("--ours", type=input_file, default=None,
                   help="optional CSV of our own measurements to overlay (model, value, params_M, speed, "
                        "speed_unit, hardware, precision, batch, note[, task]; task defaults to detection)")
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS),
                   help="tasks to plot; a task without rows in the table is skipped")
    p.add_argument("--format", nargs="+", choices=["png", "svg", "pdf"], default=["png", "svg"],
                   help="image formats to write")
    add_overwrite(p, "the figures in --out")
    p.set_defaults(func=_plot)


def _validate(args: argparse.Namespace) -> int:
    from yololab.study.sota import load_sota_table, packaged_table, summarize

    table = args.table or packaged_table()
    rows = load_sota_table(table)
    print(f"{table}: {len(rows)} valid rows")
    print(summarize(rows))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from yololab.progress import progress, write
    from yololab.study.sota import PACKAGED_NAME, load_ours, load_sota_table, packaged_table, plot_task

    refuse_to_replace([args.out / f"sota_{task}.{fmt}" for task in args.tasks for fmt in args.format], args.overwrite)
    table = args.table or packaged_table()
    rows = load_sota_table(table)
    ours = load_ours(args.ours) if args.ours else None
    present = {r.task for r in rows}
    for task in args.tasks:
        if task not in present:
            print(f"skipping {task}: no rows in {table}")
    source = str(args.table) if args.table else PACKAGED_NAME
    for task in progress([t for t in args.tasks if t in present], desc="sota plot", unit="task"):
        for path in plot_task(rows, task, args.out, ours=ours, formats=tuple(args.format), source=source):
            write(f"wrote {path}")
    return 0


# --------------------------------------------------------------------------------------------- yololab ablate

def _register_ablate(subparsers) -> None:
    p = subparsers.add_parser(
        "ablate", help="Train a grid of model or recipe variants alike and compare them against the seed spread.",
        description="Train every variant of an ablation config (configs/ablations/*.yaml: the data, image size, "
                    "epochs, >= 2 seeds, and variants that change the block (C3 | C2f | C3k2), the pooling "
                    "(SPPF | SPP | none), the head (anchor-free | anchor-based) or training settings) with `yololab "
                    "train`'s code, once per seed; validate each best.pt (COCO protocol) and time it on the CPU. "
                    "Writes results.csv, table.md (mean and spread per variant, and whether the difference from "
                    "the first variant exceeds the seed-to-seed spread), map_vs_latency.png and report.md into "
                    "--project/--name. Finished training runs in --project/trained are reused when every setting "
                    "matches, so an interrupted ablation resumes and configs share their common baseline.",
        formatter_class=FORMATTER)
    p.add_argument("--config", type=input_file, required=True, help="the ablation config (YAML)")
    p.add_argument("--project", type=output_dir, default="runs/ablate",
                   help="folder of the ablation folders, the trained runs and the synthesized data")
    p.add_argument("--name", default=None, help="ablation folder name inside --project (default: the config's name)")
    p.add_argument("--exist-ok", action="store_true", help="write into an existing ablation folder")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", default=None,
                   help="seeds, at least 2 (default: the config's)")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs per run (default: the config's)")
    p.add_argument("--train-images", type=positive_int, default=None,
                   help="synthetic training images, data: shapes only (default: the config's)")
    p.add_argument("--val-images", type=positive_int, default=None,
                   help="synthetic validation images, data: shapes only (default: the config's)")
    p.add_argument("--latency-runs", type=positive_int, default=30, help="timed batch-1 calls per trained model")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no per-epoch lines")
    p.set_defaults(func=_ablate)


def _ablate(args: argparse.Namespace) -> int:
    import shlex

    from yololab.errors import ConfigError

    name = args.name or args.config.stem
    out = args.project / name
    refuse_to_replace([out], args.exist_ok, flag="--exist-ok")
    if args.seeds is not None and len(set(args.seeds)) < 2:
        raise ConfigError(f"--seeds {' '.join(map(str, args.seeds))}: expected at least 2 different seeds")
    from yololab.study.ablate import load_config, run_ablation

    cfg = load_config(args.config)
    if args.seeds is not None:
        cfg.seeds = list(dict.fromkeys(args.seeds))
    cfg.epochs = args.epochs or cfg.epochs
    cfg.shapes = {"train": args.train_images or cfg.shapes["train"], "val": args.val_images or cfg.shapes["val"]}
    given = [("--project", args.project if str(args.project) != "runs/ablate" else None), ("--name", args.name),
             ("--seeds", " ".join(map(str, cfg.seeds)) if args.seeds else None), ("--epochs", args.epochs),
             ("--train-images", args.train_images), ("--val-images", args.val_images)]
    command = " ".join(["yololab ablate --config", shlex.quote(str(args.config))]
                       + [f"{flag} {value}" for flag, value in given if value is not None]
                       + ["--exist-ok"] * args.exist_ok)
    rows = run_ablation(cfg, out, _measure(args.latency_runs), args.project, quiet=args.quiet, command=command)
    print((out / "table.md").read_text(encoding="utf-8"))
    print(f"{len(rows)} runs; results in {out}/ (results.csv, table.md, map_vs_latency.png, report.md)")
    return 0


def _measure(runs: int):
    """(models, imgsz) -> per model: latency (fused fp32, batch 1, median ms of ``runs`` calls, the models timed
    in turn so that all see the same load), parameters and GFLOPs."""

    def measure(models: list, imgsz: int) -> list[dict]:
        import statistics
        import time

        import torch

        from yololab.analysis.summary import trace_model
        from yololab.deploy.runtime import prepare_for_inference

        nets = [prepare_for_inference(m, "fp32") for m in models]
        x = torch.rand(1, 3, imgsz, imgsz)
        times: list[list[float]] = [[] for _ in nets]
        for i in range(runs + 2):  # two untimed rounds first
            for net, t in zip(nets, times):
                t0 = time.perf_counter()
                net(x)
                if i >= 2:
                    t.append((time.perf_counter() - t0) * 1e3)
        traces = [trace_model(m.eval(), imgsz) for m in models]
        return [{"latency_ms": statistics.median(t), "params": tr.params, "gflops": tr.gflops}
                for t, tr in zip(times, traces)]

    return measure
