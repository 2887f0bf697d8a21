"""``yololab demo``: a first look at yololab in well under a minute, offline, on a CPU.

It tours the model zoo with the same code the ``yololab models`` commands use: the table of every model
(parameters, GFLOPs, strides, anchors), the per-block summary of one model, its architecture diagram and
the comparison table, and writes all of it into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from yololab._cli_group import FORMATTER, add_overwrite, output_dir, positive_int, refuse_to_replace


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="A one-minute tour: the model zoo table, a summary, a diagram, the comparison.",
        description="Print every model of the zoo (parameters, GFLOPs, strides, anchors) and the per-block "
                    "summary of --model, and write the tables, the diagram of --model (PNG, SVG, Mermaid, "
                    "draw.io) and the comparison table (CSV, Markdown) into --out. Offline, CPU only.",
        formatter_class=FORMATTER)
    p.add_argument("--out", type=output_dir, default="runs/demo",
                   help="folder for everything the demo writes (created if needed)")
    p.add_argument("--model", default="yolov8n", help="the model to summarize and draw")
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size in pixels")
    add_overwrite(p, "the files of an earlier demo in --out")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    run_demo(args.out, args.model, args.imgsz, overwrite=args.overwrite)
    return 0


def demo_outputs(out: Path, model: str) -> list[Path]:
    """The files the demo writes into ``out`` for ``model`` (a zoo name)."""
    from yololab.analysis.diagrams import FORMATS

    return ([out / "models.txt", out / f"summary_{model}.txt"] + [out / f"{model}.{f}" for f in FORMATS]
            + [out / "architectures.csv", out / "architectures.md"])


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
