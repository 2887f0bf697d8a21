"""``yololab val`` (and, from the training work, ``yololab train``): the detection commands.

Standard library only at the top: each command imports what it runs (see yololab/_cli_group.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from yololab._cli_group import (FORMATTER, UsageError, input_file, input_path, non_negative_int, output_dir,
                                positive_float, positive_int, probability, refuse_to_replace)
from yololab.engine.args import add_train_args

COMPARE_NOTE = (
    "Why the two differ (Ultralytics issues #10326, #13363, #17270): both rank the same detections and match "
    "them to the boxes the same way, but they integrate each class's precision-recall curve differently. The "
    "COCO protocol reads the monotone precision envelope as a step function at 101 fixed recall points (the "
    "precision of the first detection reaching that recall, 0 beyond the last recall reached) and averages "
    "them; Ultralytics joins the envelope's points with straight lines (from precision 1 at recall 0) and takes "
    "the trapezoid rule over the same 101 points, which credits the slopes between detections. COCO also keeps "
    "only the 100 best detections of each image (maxDets=100; Ultralytics all 300), and ignores detections "
    "lying in crowd / difficult regions, which Ultralytics' labels do not carry (there they count as false "
    "positives). APs/APm/APl and AR100 exist only in the COCO protocol. (`ultralytics val` itself also matches "
    "boxes in the letterboxed input's pixels, before they are clipped to the image, so the figure it prints can "
    "differ a little more.) The COCO number is the one papers report.")


def register(subparsers) -> None:
    _register_train(subparsers)
    _register_val(subparsers)


# --------------------------------------------------------------------------------------------- yololab val

def _register_val(subparsers) -> None:
    p = subparsers.add_parser(
        "val", help="Score a detector on a dataset split with the COCO protocol.",
        description="Score any checkpoint build_model reads (yololab, Ultralytics or yolov5 .pt, Darknet .weights), "
                    "or a model `yololab export` wrote (.onnx, OpenVINO .xml or its folder; a static export at its "
                    "own size), on a split of a YOLO dataset: mAP50-95, mAP50, mAP75, APs/APm/APl and AR100 by the COCO "
                    "protocol (faster-coco-eval, equal to pycocotools; crowd and VOC difficult regions ignored), "
                    "precision, recall and F1 at the best-F1 confidence, a per-class table. Writes a run folder "
                    "with metrics.json, metrics.csv, predictions.json (COCO results), the plots and report.md. "
                    "Never writes into the dataset.",
        formatter_class=FORMATTER)
    p.add_argument("--weights", type=input_path, required=True,
                   help="the checkpoint to score, or an exported .onnx / OpenVINO .xml (or its folder)")
    p.add_argument("--data", type=input_path, required=True, help="the dataset's data.yaml, or its folder")
    p.add_argument("--model", default=None,
                   help="zoo model name, if it cannot be told from the weights (default: from the weights)")
    p.add_argument("--split", default="val", help="the split to score")
    p.add_argument("--imgsz", type=positive_int, default=640, help="longest image side, a multiple of the stride")
    p.add_argument("--batch", type=positive_int, default=32, help="images per batch")
    p.add_argument("--conf", type=probability, default=0.001, help="confidence threshold of the detections")
    p.add_argument("--iou", type=probability, default=0.7, help="IoU threshold of the NMS")
    p.add_argument("--max-det", type=positive_int, default=300, help="detections kept per image")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or N")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data loader processes (0: in-process)")
    p.add_argument("--project", type=output_dir, default=Path("runs/val"), help="folder of the run folders")
    p.add_argument("--name", default="val", help="run folder name inside --project")
    p.add_argument("--exist-ok", action="store_true", help="write into an existing run folder")
    p.add_argument("--compare-ultralytics", action="store_true",
                   help="also compute Ultralytics' mAP on the same detections and explain the difference")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True,
                   help="PR / F1 curves, confusion matrices, image grids")
    p.add_argument("--save-json", action=argparse.BooleanOptionalAction, default=True,
                   help="write predictions.json (COCO results in original-image pixels)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_val)


def _val(args: argparse.Namespace) -> int:
    run_dir = args.project / args.name
    refuse_to_replace([run_dir], args.exist_ok, flag="--exist-ok")
    from yololab.deploy.load import exported_kind
    from yololab.detect.report import print_table, write_val_outputs
    from yololab.detect.val import load_for_val, validate

    if exported_kind(args.weights) is not None:  # an exported model runs in its own runtime, on the CPU
        if args.device != "cpu":
            raise UsageError(f"--device {args.device}: an exported model ({args.weights}) runs on the CPU in its "
                             "own runtime; --device applies to PyTorch weights")
        from yololab.deploy.load import load_exported_for_val

        model, dataset = load_exported_for_val(args.weights, args.data, args.split, args.imgsz, args.batch,
                                               args.model, verbose=not args.quiet)
        device = "cpu"
        if model.meta.imgsz is not None and model.meta.imgsz[0] != args.imgsz and not args.quiet:
            print(f"{args.weights}: a static export for {model.meta.imgsz[0]} px inputs: scored at that size")
    else:
        model, dataset, device = load_for_val(args.weights, args.data, args.split, args.imgsz, args.batch,
                                              args.device, args.model, verbose=not args.quiet)
    result = validate(model, dataset, batch=args.batch, conf=args.conf, iou=args.iou, max_det=args.max_det,
                      device=device, workers=args.workers, save_dir=run_dir, plots=args.plots,
                      progress=not args.quiet)
    compare = None
    if args.compare_ultralytics:
        from yololab.detect.metrics import ultralytics_map

        d = result.detections
        compare = ultralytics_map(d["correct"], d["conf"], d["pred_cls"], d["target_cls"])
    print_table(result)
    if compare is not None:
        print(f"\n{'':>12}{'mAP50-95':>10}{'mAP50':>10}{'mAP75':>10}")
        for who, m in (("COCO (ours)", result.metrics), ("Ultralytics", compare)):
            print(f"{who:>12}{m['mAP50-95']:>10.4f}{m['mAP50']:>10.4f}{m['mAP75']:>10.4f}")
        print("\n" + COMPARE_NOTE)
    written = write_val_outputs(run_dir, result, vars(args), compare, COMPARE_NOTE, save_json=args.save_json)
    print(f"\nresults in {run_dir}/ ({', '.join(p.name for p in written)})")
    return 0


# --------------------------------------------------------------------------------------------- yololab train

# (flag, type, help) of the loss gains and augmentations; None = the model's reference default (in the help)
LOSS_FLAGS = [
    ("box", positive_float, "box loss gain (default: 7.5; anchor-based models: yolov5's 0.05)"),
    ("cls", positive_float, "class loss gain (default: 0.5)"),
    ("dfl", positive_float, "distribution focal loss gain, anchor-free models (default: 1.5)"),
    ("obj", positive_float, "objectness loss gain, yolov5-style models (default: 1.0)"),
    ("anchor_t", positive_float, "largest truth/anchor size ratio that matches, yolov5-style models (default: 4.0)"),
    ("label_smoothing", probability, "class label smoothing, yolov5-style models (default: 0.0)"),
]
AUG_FLAGS = [
    ("hsv_h", probability, "hue jitter, fraction of the hue circle (default: 0.015)"),
    ("hsv_s", probability, "saturation jitter, fraction (default: 0.7)"),
    ("hsv_v", probability, "brightness jitter, fraction (default: 0.4)"),
    ("degrees", float, "rotation, +/- degrees (default: 0.0)"),
    ("translate", probability, "translation, +/- fraction of the image side (default: 0.1)"),
    ("scale", probability, "scale jitter, +/- fraction (default: 0.5)"),
    ("shear", float, "shear, +/- degrees (default: 0.0)"),
    ("perspective", float, "perspective, +/- fraction (default: 0.0)"),
    ("flipud", probability, "probability of an upside-down flip (default: 0.0)"),
    ("fliplr", probability, "probability of a left-right flip (default: 0.5)"),
    ("mosaic", probability, "probability of a 4-image mosaic (default: 1.0)"),
    ("mixup", probability, "probability of mixing two mosaics (default: 0.0)"),
    ("close_mosaic", non_negative_int, "turn mosaic and mixup off for the last N epochs (default: 10)"),
]
TRAIN_DEFAULTS = {"epochs": 100, "batch": 16, "nbs": 64, "optimizer": "auto"}  # workers: the engine's rule


def cache_mode(text: str) -> str | None:
    """argparse type of --cache: ram | none (Ultralytics' True / False too)."""
    low = str(text).strip().lower()
    if low in ("ram", "true", "1"):
        return "ram"
    if low in ("none", "false", "0", ""):
        return None
    raise argparse.ArgumentTypeError(f"expected ram or none (true / false), got {text!r}")


def _register_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="Train a YOLO detector on a YOLO-format dataset.", formatter_class=FORMATTER,
        description="Train a zoo detector (or a Darknet .cfg network) on a data.yaml with Ultralytics' recipe: "
                    "mosaic, SGD/AdamW with warmup, nominal batch 64, EMA, close-mosaic, validation every epoch "
                    "(COCO protocol; best.pt by 0.1 mAP50 + 0.9 mAP50-95). `yolo train` key=value settings work "
                    "as they are, e.g. `yololab train model=yolov8n.yaml data=coco8.yaml epochs=3 imgsz=320`. "
                    "The run folder (--project/--name, default runs/detect/train) gets weights/last.pt and "
                    "best.pt, results.csv, TensorBoard events, plots and report.md. Multi-GPU / multi-node: "
                    "torchrun --nproc-per-node N -m yololab.cli train ...")
    p.add_argument("--model", default="yolov8n",
                   help="zoo name (yolov8n, yolov5s, yolo11n, yolov3 ...), a Darknet .cfg, or Ultralytics' "
                        "spellings yolov8n.yaml / yolov8n.pt (a .pt that exists is fine-tuned from)")
    p.add_argument("--data", default=None, help="the dataset's data.yaml (or its folder) (default: none; required unless --resume)")
    p.add_argument("--weights", type=input_file, default=None,
                   help="fine-tune from this checkpoint (yololab, Ultralytics, yolov5 or Darknet); another class "
                        "count keeps every other tensor (default: none, from scratch)")
    p.add_argument("--imgsz", type=positive_int, default=640, help="training and validation image size")
    p.add_argument("--cache", type=cache_mode, default=None, help="ram: decode every image once, up front (default: none, read from disk)")
    p.add_argument("--autoanchor", action=argparse.BooleanOptionalAction, default=True,
                   help="check (and refit) the anchors of anchor-based models before training")
    for name, kind, text in LOSS_FLAGS + AUG_FLAGS:
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    add_train_args(p, TRAIN_DEFAULTS)
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from yololab.detect.task import DetectionTask
    from yololab.engine import Trainer
    from yololab.engine.args import config_from_args

    cfg = config_from_args(args)  # also fills args.data, args.imgsz ... from --cfg and key=value
    hyp = {name: getattr(args, name) for name, _, _ in LOSS_FLAGS + AUG_FLAGS if getattr(args, name) is not None}
    trainer = Trainer(DetectionTask(cfg, data=args.data, model=args.model, weights=args.weights, imgsz=args.imgsz,
                                    hyp=hyp, cache=args.cache, autoanchor=args.autoanchor), cfg)
    summary = trainer.fit()
    metrics = summary["final_metrics"]
    shown = "  ".join(f"{k.split('/')[-1]} {metrics[k]:.4f}" for k in ("metrics/mAP50-95", "metrics/mAP50")
                      if k in metrics)
    print(f"{summary['stop_reason']} in {summary['wall_time_s']:.0f} s; best epoch {summary['best_epoch']} "
          f"(fitness {summary['best_fitness']:.4f}); last epoch: {shown}\n"
          f"run folder {summary['run_dir']}: weights/best.pt, weights/last.pt, report.md")
    return 0
