"""``yololab demo``: a first look at yololab in well under a minute, offline, on a CPU.

It tours the model zoo with the same code the ``yololab models`` commands use: the table of every model
(parameters, GFLOPs, strides, anchors), the per-block summary of one model, its architecture diagram and
the comparison table, and writes all of it into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from yololab._cli_group import FORMATTER, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="A one-minute tour: the model zoo table, a summary, a diagram, the comparison.",
        description="Print every model of the zoo (parameters, GFLOPs, strides, anchors) and the per-block "
                    "summary of --model, and write the tables, the diagram of --model (PNG, SVG, Mermaid, "
                    "draw.io) and the comparison table (CSV, Markdown) into --out. Offline, CPU only.",
        formatter_class=FORMATTER)
    p.add_argument("--out", default="runs/demo", help="folder for everything the demo writes (created if needed)")
    p.add_argument("--model", default="yolov8n", help="the model to summarize and draw")
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size in pixels")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    run_demo(Path(args.out), args.model, args.imgsz)
    return 0


def run_demo(out: Path, model: str = "yolov8n", imgsz: int = 640) -> list[Path]:
    """Print the zoo, one summary and write the files; returns the paths written."""
    from yololab.analysis.diagrams import write_diagram
    from yololab.analysis.summary import format_list, format_summary, trace_zoo_model, write_compare, zoo_rows
    from yololab.fileio import write_text_atomic

    t0 = time.perf_counter()
    out = Path(out)
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
