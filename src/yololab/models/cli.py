"""``yololab models``: list, summarize, draw and compare the model zoo; convert weights files.

With no command, ``yololab models`` prints the zoo table (same as ``yololab models list``). Standard library
only at the top: each command imports what it runs (see yololab/_cli_group.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from yololab._cli_group import FORMATTER, add_group, positive_int

DIAGRAM_FORMATS = ("png", "svg", "mmd", "drawio")  # yololab.analysis.diagrams.FORMATS (a test keeps them equal)


def register(subparsers) -> None:
    commands = add_group(subparsers, "models", "The YOLO model zoo: list, summary, diagram, compare, convert-weights.",
                         default_func=_list)

    p = commands.add_parser(
        "list", help="Table of every model: parameters, GFLOPs, strides, anchors.",
        description="Print every model of the zoo with its family, scale, parameter count, GFLOPs, output "
                    "strides and whether it is anchor-based. Counted from a traced forward pass on the "
                    "meta device (exact, no memory).", formatter_class=FORMATTER)
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size in pixels for the GFLOPs")
    p.set_defaults(func=_list)

    p = commands.add_parser(
        "summary", help="Per-block table of one model: shapes, strides, parameters, GFLOPs.",
        description="Trace one forward pass of NAME and print one row per reference block, grouped "
                    "backbone / neck / head: index, the blocks it reads from, type, input -> output "
                    "shape (CxHxW), stride, parameters and GFLOPs, with subtotals.", formatter_class=FORMATTER)
    p.add_argument("name", metavar="NAME", help="model name, as printed by `yololab models list`")
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size in pixels")
    p.set_defaults(func=_summary)

    p = commands.add_parser(
        "compare", help="Comparison table of all models as CSV and Markdown.",
        description="Write a table of every model (version, backbone, neck, head, anchors, strides, input "
                    "size, parameters, GFLOPs) as CSV at --out and as Markdown next to it (.md).",
        formatter_class=FORMATTER)
    p.add_argument("--out", default="runs/models/architectures.csv",
                   help="CSV file to write; the .md goes beside it (`make diagrams` writes docs/architectures.csv)")
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size in pixels for the GFLOPs")
    p.set_defaults(func=_compare)

    p = commands.add_parser(
        "diagram", help="Draw a model's architecture: PNG, SVG, Mermaid, draw.io.",
        description="Trace NAME at --imgsz and draw one box per block in three columns (backbone, neck, "
                    "head), coloured by block type, with the data flow (skip and concat edges included) "
                    "and each block's output size and channels. Writes OUT/NAME.{png,svg,mmd,drawio}; "
                    "the .drawio file opens in diagrams.net.", formatter_class=FORMATTER)
    p.add_argument("names", nargs="+", metavar="NAME", help="model name(s), see `yololab models list`")
    p.add_argument("--out", required=True, default=argparse.SUPPRESS,
                   help="folder to write the diagrams into (created if needed)")
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size in pixels")
    p.add_argument("--formats", default=",".join(DIAGRAM_FORMATS),
                   help="comma-separated subset of " + ",".join(DIAGRAM_FORMATS))
    p.add_argument("--dpi", type=positive_int, default=150, help="resolution of the PNG")
    p.add_argument("--generations", action="store_true",
                   help="also draw all NAMEs side by side in OUT/generations.{png,svg}")
    p.set_defaults(func=_diagram)

    p = commands.add_parser(
        "convert-weights", help="Convert Darknet / Ultralytics / yolov5 weights into a yololab checkpoint.",
        description="Read SRC (a Darknet .weights file, an Ultralytics or yolov5 .pt checkpoint, or a yololab "
                    "checkpoint; the format is detected from the bytes), load it into the matching zoo model and "
                    "write DST as a yololab checkpoint that build_model(name, weights=DST) and every yololab "
                    "command read. Reference .pt files are read without their packages and without running any "
                    "code in them. The model is guessed from the file (yaml name, or the size of a .weights "
                    "file) unless --model is given.", formatter_class=FORMATTER)
    p.add_argument("src", help="weights file to convert")
    p.add_argument("dst", help="yololab checkpoint to write (written atomically; never replaces SRC)")
    p.add_argument("--model", default=None,
                   help="zoo model name (see `yololab models list`); None: guessed from the file")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="class count of the model to build; None: the file's (a different count keeps the "
                        "class outputs at init)")
    p.add_argument("--force", action="store_true", help="replace DST if it exists")
    p.set_defaults(func=_convert_weights)


def _list(args: argparse.Namespace) -> int:
    from yololab.analysis.summary import format_list, zoo_rows

    print(format_list(zoo_rows(getattr(args, "imgsz", 640))))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from yololab.analysis.summary import format_summary, trace_zoo_model

    print(format_summary(trace_zoo_model(args.name, args.imgsz)))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from yololab.analysis.summary import compare_markdown, compare_records, write_compare, zoo_rows

    rows = zoo_rows(args.imgsz)
    csv_path, md_path = write_compare(rows, Path(args.out))
    print(compare_markdown(compare_records(rows)))
    print(f"wrote {csv_path} and {md_path}")
    return 0


def _diagram(args: argparse.Namespace) -> int:
    from yololab.analysis.diagrams import write_diagrams

    for path in write_diagrams(args.names, Path(args.out), args.formats, imgsz=args.imgsz, dpi=args.dpi,
                               generations=args.generations):
        print(f"wrote {path}")
    return 0


def _convert_weights(args: argparse.Namespace) -> int:
    from yololab.checkpoint.convert import convert_weights

    model, fmt = convert_weights(args.src, args.dst, model=args.model, num_classes=args.num_classes,
                                 force=args.force)
    n = sum(p.numel() for p in model.parameters())
    style = (model.meta.extra or {}).get("style")
    print(f"wrote {args.dst}: yololab checkpoint of {model.meta.name} (num_classes={model.meta.num_classes}"
          f"{f', style={style}' if style else ''}, {n:,} parameters) from the {fmt} file {args.src}")
    return 0
