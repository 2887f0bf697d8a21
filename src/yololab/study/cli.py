"""``yololab sota``: the sourced state-of-the-art table and its plots.

Standard library only at the top: each command imports what it runs (see yololab/_cli_group.py). Both
commands read the table that ships with yololab unless ``--table`` names another, so they work from any folder.
"""

from __future__ import annotations

import argparse

from yololab._cli_group import (FORMATTER, add_group, add_overwrite, input_file, output_dir,
                                refuse_to_replace)

TASKS = ("classification", "detection", "segmentation", "video")  # yololab.study.sota.METRICS


def register(subparsers) -> None:
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
