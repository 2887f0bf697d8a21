"""``yololab data``: convert, check, synthesize, preview and download detection datasets.

Standard library only at the top: each command imports what it runs (see yololab/_cli_group.py). The few
choices listed here (formats, dataset names, shape classes) are checked against the implementations by
tests/test_cli.py.
"""

from __future__ import annotations

import argparse
import json
import os

from yololab._cli_group import (FORMATTER, add_group, add_overwrite, input_file, input_path, non_negative_int,
                                output_dir, output_file, positive_int, refuse_to_replace, url)

CONVERT_FROM = ("coco", "voc", "yolo")  # yololab.data.formats.READERS
CONVERT_TO = ("coco", "yolo")  # yololab.data.formats.WRITERS
DOWNLOADS = ("coco", "coco128", "voc")  # yololab.data.download.DATASETS
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross", "ring")  # yololab.data.synthetic.CLASSES
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def register(subparsers) -> None:
    commands = add_group(subparsers, "data", "Detection datasets: convert, check, synth, preview, download.")

    p = commands.add_parser(
        "convert", help="Convert a dataset between YOLO, COCO and VOC.",
        description="Convert a detection dataset: --from coco|voc|yolo --to yolo|coco. SRC is a data.yaml "
                    "(or its folder) for yolo, a folder with annotations/instances_<split>.json for coco, a "
                    "VOC year folder (Annotations, JPEGImages, ImageSets/Main) for voc. Never writes into "
                    "SRC; refuses a non-empty DST unless --overwrite. COCO crowd and VOC difficult boxes "
                    "become ignore regions (a COCO json beside the YOLO labels, named in data.yaml).",
        formatter_class=FORMATTER)
    p.add_argument("src", metavar="SRC", type=input_path, help="the dataset to read")
    p.add_argument("dst", metavar="DST", type=output_dir, help="the folder to write (created)")
    p.add_argument("--from", dest="src_format", required=True, choices=CONVERT_FROM, help="format of SRC")
    p.add_argument("--to", dest="dst_format", required=True, choices=CONVERT_TO, help="format of DST")
    p.add_argument("--names-map", metavar="FILE", type=input_file, default=None,
                   help="YAML 'old name: new name' to rename or merge classes; 'old name: null' drops one")
    p.add_argument("--names", default=None,
                   help="comma-separated output classes, in order (after --names-map); other classes dropped; "
                        "a name the source lacks is an error")
    p.add_argument("--link", action="store_true", help="hard-link images instead of copying them")
    add_overwrite(p, "a non-empty DST (never SRC)")
    p.set_defaults(func=_convert)

    p = commands.add_parser(
        "check", help="Verify every image and label of a dataset.",
        description="Read every image and label of a YOLO dataset (its data.yaml, or the folder holding it) and "
                    "report each problem (file and line), then a summary per split and per class. Never modifies "
                    "the dataset. "
                    "Exit code: 0 if nothing was rejected, 1 if some image or label was rejected, "
                    "2 for unusable input (e.g. a bad data.yaml).",
        formatter_class=FORMATTER)
    p.add_argument("data", type=input_path, help="the dataset's data.yaml, or its folder")
    p.add_argument("--json", metavar="REPORT", type=output_file(".json"), default=None,
                   help="also write the full report to this JSON file")
    p.add_argument("--plot", metavar="IMAGE", type=output_file(*PLOT_SUFFIXES), default=None,
                   help="also save a chart of instances per class and images per split (.png, .svg, .pdf)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="threads reading files (default: min(8, cores + 2))")
    p.add_argument("--decode", action="store_true",
                   help="decode every image's pixels too: catches corrupt JPEG data, several times slower")
    p.add_argument("--cache-dir", type=output_dir, default=None,
                   help="keep a label cache in this folder (never beside the data); none by default")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is no terminal)")
    add_overwrite(p, "the --json and --plot files")
    p.set_defaults(func=_check)

    p = commands.add_parser(
        "synth", help="Generate a synthetic detection dataset (offline).",
        description="Generate a synthetic YOLO-format detection dataset with its data.yaml, offline.",
        formatter_class=FORMATTER)
    kinds = p.add_subparsers(dest="kind", metavar="<kind>", required=True)
    s = kinds.add_parser(
        "shapes", help=f"Coloured shapes on textured backgrounds ({len(SHAPES)} classes).",
        description=(f"Draw {len(SHAPES)} shape classes ({', '.join(SHAPES)}) at 2%-60% of the image side, "
                     "rotated, coloured, overlapping, on textured noisy backgrounds with distractors (lines, arcs, "
                     "scribbles, blurred blobs, text-like marks); some images are background only. Boxes are the "
                     "whole shape's box; objects more than 60% hidden get no label. Image i uses seed + i, so the "
                     "output does not depend on --workers. Refuses a non-empty folder not written by this command, "
                     "and replaces an earlier output of it only with --overwrite. The data.yaml has no 'path': "
                     "the dataset can be copied or moved, and Ultralytics reads it as it is."),
        formatter_class=FORMATTER)
    s.add_argument("--out", type=output_dir, required=True,
                   help="output folder (new, empty, or an earlier synth output with --overwrite)")
    s.add_argument("--train", type=positive_int, default=2000, help="number of training images")
    s.add_argument("--val", type=positive_int, default=400, help="number of validation images")
    s.add_argument("--imgsz", type=positive_int, default=320, help="image side in pixels (square images)")
    s.add_argument("--seed", type=int, default=0, help="base random seed (image i uses seed + i)")
    s.add_argument("--workers", type=non_negative_int, default=os.cpu_count() or 1,
                   help="drawing processes (0 or 1: in-process)")
    add_overwrite(s, "an earlier synth output in --out")
    s.set_defaults(func=_synth)

    p = commands.add_parser(
        "preview", help="Draw a grid of samples with boxes, before or after augmentation.",
        description="Draw a grid of samples of a dataset split with their boxes and class names: as loaded "
                    "(letterboxed) or, with --augment, as the training loader makes them (mosaic, affine, "
                    "HSV, flips, ...).",
        formatter_class=FORMATTER)
    p.add_argument("data", type=input_path, help="the dataset's data.yaml, or its folder")
    p.add_argument("--out", type=output_file(".png", ".jpg", ".jpeg"), required=True,
                   help="output image (.png or .jpg)")
    p.add_argument("--split", default="train", help="split to draw from (train, val or test)")
    p.add_argument("--augment", action="store_true", help="apply the training augmentations (default hyperparameters)")
    p.add_argument("--n", type=positive_int, default=16,
                   help="number of samples in the grid (at most the split's size)")
    p.add_argument("--seed", type=int, default=0, help="seed for picking samples and augmenting them")
    p.add_argument("--imgsz", type=positive_int, default=640, help="training image size")
    p.add_argument("--tile", type=positive_int, default=320, help="side of one grid cell in pixels")
    p.add_argument("--cache-dir", type=output_dir, default=None,
                   help="folder for the label cache (default: $YOLOLAB_CACHE/labels, else ~/.cache/yololab/labels)")
    add_overwrite(p, "the --out image")
    p.set_defaults(func=_preview)

    p = commands.add_parser(
        "download", help="Download a public dataset and convert it to YOLO form.",
        description="Download (resuming interrupted downloads), verify, unpack and convert a dataset to "
                    f"YOLO form in OUT/<name>/. Datasets: {', '.join(DOWNLOADS)} (coco: COCO 2017 detection, "
                    "~19 GB; coco128: its first 128 train images, ~7 MB; voc: Pascal VOC 2007+2012).",
        formatter_class=FORMATTER)
    p.add_argument("name", help=f"which dataset: {', '.join(DOWNLOADS)}")
    p.add_argument("--out", type=output_dir, required=True,
                   help="folder for downloads/, raw/ and the converted <name>/ (an archive already in "
                        "downloads/ is used as it is: the way to install a dataset without network)")
    p.add_argument("--url-base", type=url, default=None,
                   help="download every file from this base URL instead (a mirror, http(s):// or file://); "
                        "checksums still apply")
    p.add_argument("--retries", type=non_negative_int, default=5,
                   help="times to resume an interrupted download (0: no retry)")
    p.set_defaults(func=_download)


def _convert(args: argparse.Namespace) -> int:
    from yololab.data.formats import convert, load_names_map

    names_map = load_names_map(args.names_map) if args.names_map else None
    keep = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    ds = convert(args.src, args.dst, args.src_format, args.dst_format, names_map=names_map, keep=keep,
                 overwrite=args.overwrite, link=args.link, progress=True)
    for note in ds.notes:
        print(f"note: {note}")
    for split, records in ds.splits.items():
        boxes = sum(int((~r.ignore).sum()) for r in records)
        ignored = sum(int(r.ignore.sum()) for r in records)
        print(f"{split}: {len(records)} images, {boxes} boxes, {ignored} ignore regions")
    print(f"{len(ds.names)} classes: {', '.join(ds.names[:20])}{' ...' if len(ds.names) > 20 else ''}")
    print(f"written to {args.dst}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from yololab.data.check import check_dataset, format_summary, plot_report
    from yololab.fileio import write_text_atomic
    from yololab.progress import write

    refuse_to_replace([p for p in (args.json, args.plot) if p], args.overwrite)
    report = check_dataset(args.data, workers=args.workers, decode=args.decode,
                           cache_dir=args.cache_dir, progress=not args.quiet, log=write)
    print(format_summary(report))
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1))
        print(f"report written to {args.json}")
    if args.plot:
        plot_report(report, args.plot)
        print(f"plot written to {args.plot}")
    return 1 if report["rejected"] else 0


def _synth(args: argparse.Namespace) -> int:
    from yololab.data.synthetic import synth_shapes

    synth_shapes(args.out, train=args.train, val=args.val, imgsz=args.imgsz, seed=args.seed, workers=args.workers,
                 overwrite=args.overwrite)
    return 0


def _preview(args: argparse.Namespace) -> int:
    from yololab.data.dataset import DEFAULT_CACHE_DIR
    from yololab.data.preview import preview_grid

    refuse_to_replace([args.out], args.overwrite)
    out = preview_grid(args.data, args.out, split=args.split, augment=args.augment, n=args.n, seed=args.seed,
                       imgsz=args.imgsz, tile=args.tile, cache_dir=args.cache_dir or DEFAULT_CACHE_DIR, log=print)
    print(f"wrote {out} ({args.split} samples, {'augmented' if args.augment else 'letterboxed'})")
    return 0


def _download(args: argparse.Namespace) -> int:
    from yololab.data.download import download_dataset

    data_yaml = download_dataset(args.name, args.out, url_base=args.url_base, retries=args.retries)
    print(f"dataset ready: {data_yaml}  (check it with: yololab data check {data_yaml})")
    return 0
