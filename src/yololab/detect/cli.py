"""``yololab train``: train a YOLO detector on a YOLO-format dataset (standard library only at import).

Every hyperparameter is a flag with Ultralytics' default, or a ``key=value`` setting as ``yolo train`` takes
them, or a line of a ``--cfg`` YAML; see :mod:`yololab.engine.args` for the precedence.
"""

from __future__ import annotations

import argparse

from yololab._cli_group import FORMATTER, input_file, non_negative_int, positive_float, positive_int, probability
from yololab.engine.args import add_train_args

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
TRAIN_DEFAULTS = {"epochs": 100, "batch": 16, "nbs": 64, "workers": 2, "optimizer": "auto"}


def cache_mode(text: str) -> str | None:
    """argparse type of --cache: ram | none (Ultralytics' True / False too)."""
    low = str(text).strip().lower()
    if low in ("ram", "true", "1"):
        return "ram"
    if low in ("none", "false", "0", ""):
        return None
    raise argparse.ArgumentTypeError(f"expected ram or none (true / false), got {text!r}")


def add_train(subparsers) -> None:
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
    p.add_argument("--data", default=None, help="the dataset's data.yaml (or its folder); required unless --resume")
    p.add_argument("--weights", type=input_file, default=None,
                   help="fine-tune from this checkpoint (yololab, Ultralytics, yolov5 or Darknet); another class "
                        "count keeps every other tensor")
    p.add_argument("--imgsz", type=positive_int, default=640, help="training and validation image size")
    p.add_argument("--cache", type=cache_mode, default=None, help="ram: decode every image once, up front")
    p.add_argument("--autoanchor", action=argparse.BooleanOptionalAction, default=True,
                   help="check (and refit) the anchors of anchor-based models before training")
    for name, kind, text in LOSS_FLAGS + AUG_FLAGS:
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    add_train_args(p, TRAIN_DEFAULTS)
    p.set_defaults(func=train)


def train(args: argparse.Namespace) -> int:
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


def register(subparsers) -> None:
    add_train(subparsers)
