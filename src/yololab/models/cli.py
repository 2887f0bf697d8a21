"""``yololab models``: list, summarize, draw and compare the model zoo; convert weights files.

With no command, ``yololab models`` prints the zoo table (same as ``yololab models list``). Standard library
only at the top: each command imports what it runs (see yololab/_cli_group.py).
"""

from __future__ import annotations

import argparse

from yololab._cli_group import (FORMATTER, UsageError, add_group, add_overwrite, input_file, output_dir,
                                output_file, positive_int, refuse_to_replace)

DIAGRAM_FORMATS = ("png", "svg", "mmd", "drawio")  # yololab.analysis.diagrams.FORMATS (a test keeps them equal)
# yololab.analysis.blocks.BLOCKS (a test keeps them equal)
EXPLAIN_IDEAS = ("dfl", "tal")  # yololab.analysis.explain.IDEAS (a test keeps them equal)
DIAGRAM_BLOCKS = ("DarknetResidual", "C3", "C2f", "C3k2", "SPP", "SPPF", "C2PSA", "AnchorHead", "DetectHead")


def register(subparsers) -> None:
    commands = add_group(subparsers, "models",
                         "The YOLO model zoo: list, summary, diagram, compare, explain, convert-weights.",
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
        "compare", help="Comparison table of all models as CSV and Markdown, with COCO mAP beside cost.",
        description="Write a table of every model (version, backbone, neck, head, anchors, strides, input "
                    "size, parameters, GFLOPs, and the published COCO val2017 mAP50-95 at 640 with its source, "
                    "read from yololab's SOTA table) as CSV at --out and as Markdown next to it (.md), whose "
                    "'Accuracy beside cost' section sets mAP beside parameters and GFLOPs; at --imgsz 640 also "
                    "a plot of mAP against GFLOPs and parameters (OUT-accuracy.png/.svg). Rerunning on an "
                    "existing .md rewrites only its generated regions: text written around them is kept.",
        formatter_class=FORMATTER)
    p.add_argument("--out", type=output_file(".csv"), default="runs/models/architectures.csv",
                   help="CSV file to write; the .md goes beside it (`make docs` writes docs/architectures.csv)")
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size in pixels for the GFLOPs")
    add_overwrite(p, "the CSV and Markdown files and the accuracy plot")
    p.set_defaults(func=_compare)

    p = commands.add_parser(
        "diagram", help="Draw a model's architecture, or a block's inside: PNG, SVG, Mermaid, draw.io.",
        description="Trace NAME at --imgsz and draw one box per block in three columns (backbone, neck, "
                    "head), coloured by block type, with the data flow (skip and concat edges included) "
                    "and each block's output size and channels. Writes OUT/NAME.{png,svg,mmd,drawio}; "
                    "the .drawio file opens in diagrams.net. With --block, trace one block where a zoo model "
                    "uses it and draw its inner graph: submodules, split / concat / add, pooling, attention, "
                    "with shapes (OUT/BLOCK.*).", formatter_class=FORMATTER)
    p.add_argument("names", nargs="*", metavar="NAME", help="model name(s), see `yololab models list`")
    p.add_argument("--block", nargs="+", action="extend", default=[], metavar="BLOCK",
                   help="block(s) to draw from the inside: " + ", ".join(DIAGRAM_BLOCKS) + ", or MODEL:LAYER "
                        "(any block of a zoo model by its index in `yololab models summary MODEL`)")
    p.add_argument("--side-by-side", action="append", default=[], metavar="BLOCK,BLOCK[,...]",
                   help="also draw these blocks next to each other in OUT/BLOCK-BLOCK.{png,svg} (repeatable)")
    p.add_argument("--out", type=output_dir, required=True,
                   help="folder to write the diagrams into (created if needed)")
    p.add_argument("--imgsz", type=positive_int, default=640, help="square input size in pixels")
    p.add_argument("--formats", type=_formats, default=",".join(DIAGRAM_FORMATS),
                   help="comma-separated subset of " + ",".join(DIAGRAM_FORMATS))
    p.add_argument("--dpi", type=positive_int, default=150, help="resolution of the PNG")
    p.add_argument("--generations", action="store_true",
                   help="also draw all NAMEs side by side in OUT/generations.{png,svg}")
    add_overwrite(p, "diagram files")
    p.set_defaults(func=_diagram)

    p = commands.add_parser(
        "explain", help="Pictures of the training ideas, computed by running our code: DFL, TAL.",
        description="Draw a training idea the architecture notes explain, computed with yololab's own code. "
                    "dfl: one box edge as a distribution over 16 bins (Distribution Focal Loss): 16 logits "
                    "optimised with the DFL loss for a sharp and an ambiguous edge, their expectation computed by "
                    "yololab.nn.blocks.DFL. tal: the Task-Aligned Assigner run on a detector's predictions for one "
                    "image and its labels: candidate anchor points, alignment scores, the top-k positives per "
                    "object and the level each object is learned on. Writes OUT/dfl.{png,svg} or OUT/tal.png.",
        formatter_class=FORMATTER)
    p.add_argument("idea", choices=EXPLAIN_IDEAS, help="what to draw")
    p.add_argument("--out", type=output_dir, default="runs/models/explain",
                   help="folder to write the figure into (created if needed)")
    p.add_argument("--dpi", type=positive_int, default=150, help="resolution of the PNG")
    tal = p.add_argument_group("tal")
    tal.add_argument("--model", default="yolov8n", help="anchor-free zoo detector whose predictions are assigned")
    tal.add_argument("--weights", type=input_file, default=None,
                     help="weights for --model (any checkpoint build_model reads; default: random initialisation)")
    tal.add_argument("--image", type=input_file, default=None,
                     help="the image (default: a synthetic shapes image with its labels)")
    tal.add_argument("--labels", type=input_file, default=None,
                     help="its YOLO label file (default: the one beside it in a YOLO layout, images/ -> labels/)")
    tal.add_argument("--imgsz", type=positive_int, default=640, help="letterboxed input size")
    add_overwrite(p, "the figure")
    p.set_defaults(func=_explain)

    p = commands.add_parser(
        "convert-weights", help="Convert Darknet / Ultralytics / yolov5 weights into a yololab checkpoint.",
        description="Read SRC (a Darknet .weights file, an Ultralytics or yolov5 .pt checkpoint, or a yololab "
                    "checkpoint; the format is detected from the bytes), load it into the matching zoo model and "
                    "write DST as a yololab checkpoint that build_model(name, weights=DST) and every yololab "
                    "command read. Reference .pt files are read without their packages and without running any "
                    "code in them. The model is guessed from the file (yaml name, or the size of a .weights "
                    "file) unless --model is given.", formatter_class=FORMATTER)
    p.add_argument("src", type=input_file, help="weights file to convert")
    p.add_argument("dst", type=output_file(), help="yololab checkpoint to write (written atomically; never replaces SRC)")
    p.add_argument("--model", default=None,
                   help="zoo model name (see `yololab models list`); default: guessed from the file")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="class count of the model to build; default: the file's (a different count keeps the "
                        "class outputs at init)")
    p.add_argument("--overwrite", "--force", dest="overwrite", action="store_true", help="replace DST if already there")
    p.set_defaults(func=_convert_weights)


def _formats(text: str) -> list[str]:
    """argparse type: ``"png,svg"`` -> ``["png", "svg"]``, each one of DIAGRAM_FORMATS."""
    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in DIAGRAM_FORMATS]
    if bad or not formats:
        raise argparse.ArgumentTypeError(f"unknown format(s) {', '.join(bad) or '(none)'} in {text!r}; "
                                         f"choose a comma-separated subset of {','.join(DIAGRAM_FORMATS)}")
    return formats


def _list(args: argparse.Namespace) -> int:
    from yololab.analysis.summary import format_list, zoo_rows

    print(format_list(zoo_rows(getattr(args, "imgsz", 640))))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from yololab.analysis.summary import format_summary, trace_zoo_model

    print(format_summary(trace_zoo_model(args.name, args.imgsz)))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from yololab.analysis.summary import (ACCURACY_IMGSZ, accuracy_plot_path, compare_markdown, compare_records,
                                          write_compare, zoo_rows)
    from yololab.study.sota import load_sota_table, packaged_table, zoo_accuracy

    plot = accuracy_plot_path(args.out)
    refuse_to_replace([args.out, args.out.with_suffix(".md")]
                      + ([plot, plot.with_suffix(".svg")] if args.imgsz == ACCURACY_IMGSZ else []), args.overwrite)
    table = packaged_table()
    rows = zoo_rows(args.imgsz)
    accuracy = zoo_accuracy(load_sota_table(table), [r.name for r in rows], table)
    csv_path, md_path = write_compare(rows, args.out, accuracy, table)
    print(compare_markdown(compare_records(rows, accuracy)))
    print(f"wrote {csv_path} and {md_path}")
    if args.imgsz == ACCURACY_IMGSZ:
        from yololab.analysis.accuracy import plot_accuracy

        png = accuracy_plot_path(csv_path)
        for path in plot_accuracy(rows, accuracy, [png, png.with_suffix(".svg")]):
            print(f"wrote {path}")
    return 0


def _diagram(args: argparse.Namespace) -> int:
    from yololab.analysis.diagrams import block_diagram_paths, diagram_paths, write_block_diagrams, write_diagrams
    from yololab.models.registry import resolve_name

    if not (args.names or args.block or args.side_by_side):
        raise UsageError("nothing to draw: give model NAME(s), --block BLOCK or --side-by-side BLOCK,BLOCK")
    from yololab.classify.registry import CLASSIFIERS

    # everything is checked before the first file is written; the ResNets draw too
    names = [n if n in CLASSIFIERS else resolve_name(n) for n in args.names]
    refuse_to_replace(diagram_paths(names, args.out, args.formats, args.generations)
                      + block_diagram_paths(args.block, args.out, args.formats, args.side_by_side), args.overwrite)
    formats = ",".join(args.formats)
    written = []
    if names:
        written += write_diagrams(names, args.out, formats, imgsz=args.imgsz, dpi=args.dpi,
                                  generations=args.generations)
    if args.block or args.side_by_side:
        written += write_block_diagrams(args.block, args.out, formats, imgsz=args.imgsz, dpi=args.dpi,
                                        side_by_side=args.side_by_side)
    for path in written:
        print(f"wrote {path}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from yololab.analysis.explain import FORMATS, write_explain

    if args.idea != "tal" and any(getattr(args, k) is not None for k in ("weights", "image", "labels")):
        raise UsageError("--weights, --image and --labels apply to `explain tal` only")
    refuse_to_replace([args.out / f"{args.idea}.{f}" for f in FORMATS[args.idea]], args.overwrite)
    for path in write_explain(args.idea, args.out, dpi=args.dpi, model=args.model, weights=args.weights,
                              image=args.image, labels=args.labels, imgsz=args.imgsz):
        print(f"wrote {path}")
    return 0


def _convert_weights(args: argparse.Namespace) -> int:
    from yololab.checkpoint.convert import convert_weights
    from yololab.models.registry import resolve_name

    name = resolve_name(args.model) if args.model else None
    refuse_to_replace([args.dst], args.overwrite)
    model, fmt = convert_weights(args.src, args.dst, model=name, num_classes=args.num_classes,
                                 overwrite=args.overwrite)
    n = sum(p.numel() for p in model.parameters())
    style = (model.meta.extra or {}).get("style")
    print(f"wrote {args.dst}: yololab checkpoint of {model.meta.name} (num_classes={model.meta.num_classes}"
          f"{f', style={style}' if style else ''}, {n:,} parameters) from the {fmt} file {args.src}")
    return 0
