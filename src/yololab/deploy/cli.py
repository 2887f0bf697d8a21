"""``yololab predict`` and ``yololab export``: run a trained detector on photos and videos, write it for other
runtimes. Standard library only at the top (docs/design.md, "Adding a command group")."""

from __future__ import annotations

import argparse
from pathlib import Path

from yololab._cli_group import (FORMATTER, UsageError, add_overwrite, input_path, output_dir, output_file,
                                positive_int, probability, refuse_to_replace)

MODES = ("auto", "fp32", "fp32-cl", "bf16-cl", "onnx", "openvino", "openvino-bf16")  # = runtime.MODES + auto
EXPORT_FORMATS = ("onnx", "openvino")  # = deploy.export.FORMATS
INT8_FORMAT = "openvino"  # --int8's default format: NNCF beat ORT's quantizer (benchmarks/README.md, "INT8")


def _model_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--weights", type=input_path, default=None,
                   help=f"{what}: a yololab / Ultralytics / yolov5 .pt, a Darknet .weights (the model is "
                        "recognised from the file), an exported .onnx, or an OpenVINO .xml or its folder")
    p.add_argument("--model", default=None,
                   help="zoo model name: the model --weights must hold; alone, a random-init model")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="class count (default: the file's; 80 for a random-init --model)")


def _check_model_args(args: argparse.Namespace) -> None:
    if args.weights is None and args.model is None:
        raise UsageError("give --weights FILE (or --model NAME for a random-init model)")
    if args.model is not None:
        from yololab.models.registry import resolve_name

        args.model = resolve_name(args.model)


def register_predict(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="Detect objects in images and videos.",
        description="Run a detector on an image, a folder, a glob pattern, a video or a .txt list of them: "
                    "letterbox, batched inference, NMS (torchvision), boxes in each photo's own pixels. Writes "
                    "the images (videos) with their boxes drawn, one JSON per image (labels/), and with "
                    "--save-txt YOLO labels with confidences, into --project/--name. The default --mode auto "
                    "runs the fastest execution mode of this machine that keeps mAP within 0.001 of float32 "
                    "(docs/design.md) and says which one it used; --mode fp32 gives Ultralytics' own results. "
                    "A corrupt image among several is skipped with a warning.",
        formatter_class=FORMATTER)
    _model_args(p, "the detector")
    p.add_argument("--source", required=True,
                   help="image, folder, glob pattern (quoted), video file, or .txt list of images / videos")
    p.add_argument("--imgsz", type=positive_int, default=640, help="long side of the network input in pixels "
                   "(a static export uses its own size)")
    p.add_argument("--conf", type=probability, default=0.25, help="confidence threshold")
    p.add_argument("--iou", type=probability, default=0.7, help="NMS IoU threshold")
    p.add_argument("--max-det", type=positive_int, default=300, help="most detections per image")
    p.add_argument("--classes", type=int, nargs="+", default=None, help="keep only these class indices")
    p.add_argument("--agnostic-nms", action="store_true", help="NMS across classes")
    p.add_argument("--batch", type=positive_int, default=1, help="images per network call")
    p.add_argument("--mode", choices=MODES, default="auto",
                   help="execution mode for PyTorch weights (exported models run in their own runtime)")
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads (default: all cores)")
    p.add_argument("--no-rect", action="store_true",
                   help="letterbox to a square imgsz x imgsz instead of the minimum rectangle")
    p.add_argument("--save-txt", action="store_true", help="also write YOLO label files with confidences")
    p.add_argument("--no-save", action="store_true", help="write no annotated images / videos (JSON only)")
    p.add_argument("--project", type=output_dir, default=Path("runs/predict"), help="folder of the run folders")
    p.add_argument("--name", default="predict", help="run folder inside --project")
    p.add_argument("--exist-ok", action="store_true", help="write into the run folder if already there")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-image lines")
    p.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> int:
    refuse_to_replace([args.project / args.name], args.exist_ok, flag="--exist-ok")
    _check_model_args(args)
    from yololab.deploy.predict import run_predict

    run_predict(args.source, args.weights, model=args.model, project=args.project, name=args.name,
                save_images=not args.no_save, save_txt=args.save_txt, quiet=args.quiet,
                num_classes=args.num_classes, mode=args.mode, imgsz=args.imgsz, conf=args.conf, iou=args.iou,
                max_det=args.max_det, agnostic=args.agnostic_nms, classes=args.classes, batch=args.batch,
                rect=not args.no_rect, threads=args.threads)
    return 0


def register_export(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="Export a detector to ONNX or OpenVINO (fp32, fp16 weights, INT8).",
        description="Write a detector for ONNX Runtime (.onnx) or OpenVINO (a folder with the .xml and .bin), "
                    "with its metadata (model, class names, input size, precision), so that `yololab predict "
                    "--weights` (and val) take it directly. --int8: post-training quantization calibrated on "
                    "the training images of --data, by the runtime's own quantizer (NNCF for OpenVINO, ONNX "
                    "Runtime's quantize_static for ONNX); the box decoding stays float.",
        formatter_class=FORMATTER)
    _model_args(p, "the detector to export")
    p.add_argument("--format", choices=EXPORT_FORMATS, default=None,
                   help=f"what to write (default: onnx; with --int8 {INT8_FORMAT}, the faster INT8 path as "
                        "measured by benchmarks/int8.py)")
    p.add_argument("--imgsz", type=positive_int, nargs="+", default=[640],
                   help="input size: one number (square) or height width")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size of the static input")
    p.add_argument("--dynamic", action="store_true", help="batch, height and width free (any multiple of the "
                   "stride) instead of fixed")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset")
    p.add_argument("--half", action="store_true", help="fp16 weights (OpenVINO)")
    p.add_argument("--int8", action="store_true", help="INT8 post-training quantization (needs --data)")
    p.add_argument("--data", type=input_path, default=None, help="data.yaml whose train images calibrate --int8")
    p.add_argument("--calib-images", type=positive_int, default=300, help="calibration images for --int8")
    p.add_argument("--out", type=output_file(".onnx", ".xml"), default=None,
                   help="output file: .onnx, or the OpenVINO .xml (default: runs/export/<weights stem>[-int8|-fp16]"
                        ".onnx or runs/export/<stem>[...]_openvino_model/<stem>.xml)")
    add_overwrite(p, "the exported files")
    p.set_defaults(func=_export)


def export_paths(args: argparse.Namespace) -> list[Path]:
    """The files ``yololab export`` writes for these arguments (the OpenVINO .bin beside its .xml)."""
    if args.out is not None:
        out = args.out
    else:
        stem = Path(args.weights).stem if args.weights is not None else args.model
        stem += "-int8" if args.int8 else "-fp16" if args.half else ""
        out = (Path("runs/export") / f"{stem}.onnx" if args.format == "onnx"
               else Path("runs/export") / f"{stem}_openvino_model" / f"{stem}.xml")
    if args.format == "openvino":
        if out.suffix.lower() != ".xml":
            raise UsageError(f"--out {out}: an OpenVINO model is an .xml file (with its .bin beside it)")
        return [out, out.with_suffix(".bin")]
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"--out {out}: an ONNX model is an .onnx file")
    return [out]


def _export(args: argparse.Namespace) -> int:
    if args.weights is None and args.model is None:
        raise UsageError("give --weights FILE (or --model NAME for a random-init model)")
    if args.format is None:
        args.format = INT8_FORMAT if args.int8 else "onnx"
    paths = export_paths(args)
    refuse_to_replace(paths, args.overwrite)
    _check_model_args(args)
    if len(args.imgsz) > 2:
        raise UsageError(f"--imgsz takes one or two numbers (height width), got {len(args.imgsz)}")
    if args.int8 and args.data is None:
        raise UsageError("--int8 needs --data DATA.yaml: its train images calibrate the quantization")
    if args.half and args.int8:
        raise UsageError("--half and --int8 exclude each other: choose one precision")
    if args.half and args.format == "onnx":
        raise UsageError("--half: ONNX Runtime's CPU provider runs float32 and int8, not fp16; use --format "
                         "openvino --half (fp16 weights) or --int8")
    from yololab.deploy.load import run_export

    imgsz = (args.imgsz[0], args.imgsz[-1])
    out = run_export(args.weights, paths[0], model=args.model, num_classes=args.num_classes, fmt=args.format,
                     imgsz=imgsz, batch=args.batch, dynamic=args.dynamic, opset=args.opset, half=args.half,
                     int8=args.int8, data=args.data, calib_images=args.calib_images)
    print(f"wrote {out}")
    return 0


def register_features(subparsers) -> None:
    p = subparsers.add_parser(
        "features", help="Feature maps, per-level head maps and receptive fields of a detector on one photo.",
        description="Save each backbone stage's output and each neck output as image grids, the head's per-level "
                    "class (anchor-free) or objectness (anchor-based) maps over the photo, and the theoretical "
                    "receptive field of each stage, computed from the architecture, as a table and a figure.",
        formatter_class=FORMATTER)
    _model_args(p, "the detector")
    p.add_argument("--image", type=input_path, required=True, help="the photo")
    p.add_argument("--out", type=output_dir, default=Path("runs/features"), help="output folder")
    p.add_argument("--imgsz", type=positive_int, default=640, help="network input size (square letterbox)")
    p.add_argument("--channels", type=positive_int, default=16, help="channels shown per feature map")
    add_overwrite(p, "the pictures and tables")
    p.set_defaults(func=_features)


def _features(args: argparse.Namespace) -> int:
    refuse_to_replace([args.out / "receptive_fields.csv", args.out / "head_levels.png"], args.overwrite)
    _check_model_args(args)
    from yololab.analysis.features import write_features
    from yololab.data.io import read_image
    from yololab.deploy.load import build_detector, check_imgsz

    image = read_image(args.image)
    net, _, _ = build_detector(args.weights, args.model, args.num_classes)
    check_imgsz(net, [args.imgsz])
    files = write_features(net, image, args.out, imgsz=args.imgsz, channels=args.channels)
    print(f"wrote {len(files)} files into {args.out}; receptive fields: {args.out / 'receptive_fields.md'}")
    return 0


def register_benchmark(subparsers) -> None:
    p = subparsers.add_parser(
        "benchmark", help="Latency, throughput, cost and mAP of models in each execution mode.",
        description="For each model and execution mode, through predict's own pipeline: preprocess, inference and "
                    "postprocess latency at batch 1, throughput at batch 8, parameters, GFLOPs, and with --data "
                    "mAP50-95 on its val split. Writes benchmark.csv, benchmark.md, latency_vs_map.png (with the "
                    "Pareto front) and ours.csv for `yololab sota plot --ours`. Time it on a quiet machine.",
        formatter_class=FORMATTER)
    p.add_argument("--models", nargs="+", default=["yolov8n"], help="zoo model names (random init without --weights)")
    p.add_argument("--weights", type=input_path, default=None, help="weights for the one model of --models")
    p.add_argument("--imgsz", type=positive_int, default=640, help="inference size (long side)")
    p.add_argument("--data", type=input_path, default=None, help="data.yaml: mAP on its val split")
    p.add_argument("--source", type=input_path, default=None,
                   help="photos to time on (default: --data's val images, else coco-sized grey noise)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=["fp32", "auto"], help="execution modes")
    p.add_argument("--runs", type=positive_int, default=10, help="timed rounds over the photos")
    p.add_argument("--warmup", type=positive_int, default=2, help="untimed rounds first")
    p.add_argument("--max-images", type=positive_int, default=8, help="photos used for timing")
    p.add_argument("--out", type=output_dir, default=Path("runs/benchmark"), help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(p, "the tables and the plot")
    p.set_defaults(func=_benchmark)


def _benchmark(args: argparse.Namespace) -> int:
    refuse_to_replace([args.out / f for f in ("benchmark.csv", "benchmark.md", "latency_vs_map.png", "ours.csv")],
                      args.overwrite)
    if args.weights is not None and len(args.models) != 1:
        raise UsageError(f"--weights goes with one model, got --models {' '.join(args.models)}")
    from yololab.models.registry import resolve_name

    models = [resolve_name(m) for m in args.models]
    from yololab.deploy.benchmark import benchmark, write_outputs
    from yololab.deploy.predict import iter_frames, resolve_source

    if args.source is not None:
        files = resolve_source(args.source)
    elif args.data is not None:
        from yololab.data.yolo import load_data_yaml

        files = load_data_yaml(args.data).splits.get("val") or []
    else:
        files = []
    images = [f.image for f, _ in zip(iter_frames(files), range(args.max_images))]
    if not images:
        import numpy as np

        images = [np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)]
    from yololab.analysis.summary import trace_model

    def cost(net, imgsz):
        trace = trace_model(net, imgsz)
        return trace.params, trace.gflops

    import os

    load = os.getloadavg()[0]
    rows = benchmark(models, args.modes, args.imgsz, images, cost, weights=args.weights, data=args.data,
                     runs=args.runs, warmup=args.warmup, progress_enabled=not args.quiet)
    from yololab.deploy.benchmark import machine

    published = None
    if args.weights is None:  # random-init weights: ours.csv pairs the latency with the published COCO mAP
        from yololab.study.sota import load_sota_table, packaged_table, zoo_accuracy

        table = packaged_table()
        published = {m: (r.value, f"{Path(table).name} line {r.line}")
                     for m, r in zoo_accuracy(load_sota_table(table), models, table).items()}
    title = (f"yololab benchmark, imgsz {args.imgsz}, {len(images)} photos x {args.runs} runs; {machine()}; load "
             f"average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    data_name = str(args.data) if args.data is not None else "--data"
    for path in write_outputs(rows, args.out, title, published, data_name):
        print(f"wrote {path}")
    print((args.out / "benchmark.md").read_text())
    return 0


def register(subparsers) -> None:
    register_predict(subparsers)
    register_export(subparsers)
    register_features(subparsers)
    register_benchmark(subparsers)
