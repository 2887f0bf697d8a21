"""``yololab classify``: synth, download, train, val, predict, compare (image classification with ResNets).

Standard library only at import: each command imports torch and the package when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from yololab._cli_group import (
    FORMATTER,
    add_group,
    add_overwrite,
    input_file,
    input_path,
    non_negative_int,
    output_dir,
    output_file,
    positive_int,
    probability,
    refuse_to_replace,
    url,
)

CLASSIFIERS = ("resnet18", "resnet34", "resnet50", "resnet18-cifar", "resnet34-cifar", "resnet50-cifar")
AUTO_AUGMENT = ("none", "randaugment", "trivialaugment")
# the engine's settings where classification wants other defaults than the engine's (a CIFAR recipe)
TRAIN_DEFAULTS = {"epochs": 30, "batch": 128, "optimizer": "SGD", "lr0": 0.1, "lrf": 0.01, "momentum": 0.9,
                  "weight_decay": 5e-4, "scheduler": "cosine", "warmup_epochs": 0.0, "warmup_bias_lr": 0.0,
                  "clip_grad": 0.0, "ema": False}


def _check(condition: bool, message: str) -> None:
    if not condition:
        from yololab.errors import ConfigError

        raise ConfigError(message)


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _device(spec: str | None):
    import torch

    return torch.device(spec if spec else "cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------------------------------------- synth


def cmd_synth(args: argparse.Namespace) -> int:
    refuse_to_replace([args.out], args.overwrite)
    from yololab.classify.synth import synth_classify

    out = synth_classify(args.out, classes=args.classes, train=args.train, val=args.val, size=args.size,
                         seed=args.seed, rotate=args.rotate)
    print(f"train on it with: yololab classify train --data {out}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from yololab.classify.cifar import download_cifar

    folder = download_cifar(args.name, args.out, url_base=args.url_base, retries=args.retries)
    print(f"dataset ready: {folder}  (train with: yololab classify train --data {folder})")
    return 0


# ----------------------------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    from yololab.engine.args import config_from_args

    cfg = config_from_args(args)  # also fills the task's flags from --cfg / key=value; writes nothing
    if not cfg.resume:
        refuse_to_replace([Path(cfg.project or "runs/classify") / (cfg.name or "train")], cfg.exist_ok,
                          flag="--exist-ok")
    _check(bool(args.data) or bool(cfg.resume), "--data is required (a CIFAR folder or .tar.gz, or an ImageFolder "
                                                "root), unless --resume continues a run")
    _check(args.imgsz is None or args.imgsz >= 8, f"--imgsz must be at least 8, got {args.imgsz}")
    _check(args.label_smoothing < 1, f"--label-smoothing must be below 1, got {args.label_smoothing}")
    _check(args.mixup >= 0 and args.cutmix >= 0, "--mixup and --cutmix are Beta(alpha, alpha) parameters: >= 0")

    from yololab.classify.task import ClassifyTask
    from yololab.engine import Trainer

    task = ClassifyTask(cfg, data=str(Path(args.data).absolute()) if args.data else "", model=args.model, width=args.width, imgsz=args.imgsz,
                        channels=args.channels, pad=args.pad, fliplr=args.fliplr, auto_augment=args.auto_augment,
                        mixup=args.mixup, cutmix=args.cutmix, mix_prob=args.mix_prob,
                        label_smoothing=args.label_smoothing, weights=args.weights, cam_layer=args.cam_layer,
                        val_batch=args.val_batch, figures=args.figures)
    if not cfg.resume:
        _ = task.data  # read (and check) the data now, before the engine makes the run folder
    summary = Trainer(task, cfg).fit()
    final = summary.get("final_metrics", {})
    shown = ", ".join(f"{k} {_fmt(v)}" for k, v in final.items() if k.split("/")[-1] in ("top1", "top5", "loss"))
    print(f"done: {summary['run_dir']}  best fitness (top-1) {_fmt(summary['best_fitness'])}; {shown}")
    if task.final is not None and task.final[0].pointing is not None:
        print(f"best.pt on validation: top-1 {task.final[0].metrics.top1:.4f}, pointing game "
              f"{task.final[0].pointing:.4f}")
    return 0


# ----------------------------------------------------------------------------------------------- val, predict


def _load_for_eval(args):
    from yololab.classify.data import load_data
    from yololab.classify.registry import load_classifier
    from yololab.errors import WeightsError

    model, meta = load_classifier(args.weights)
    data_path = args.data or (meta.get("options") or {}).get("data")
    _check(bool(data_path), f"{args.weights} does not say which data it was trained on: give --data")
    data = load_data(data_path, meta.get("imgsz"), model.in_channels, names=meta["names"], val_only=True)
    if data.num_classes != model.num_classes:
        raise WeightsError(f"{args.weights}: a checkpoint for {model.num_classes} classes; {data_path} has "
                           f"{data.num_classes}")
    data.mean, data.std = meta.get("mean", data.mean), meta.get("std", data.std)
    return model, meta, data


def cmd_val(args: argparse.Namespace) -> int:
    refuse_to_replace([args.out], args.overwrite)
    out = args.out
    model, meta, data = _load_for_eval(args)
    from yololab.classify.evaluate import full_evaluation, report_markdown
    from yololab.fileio import write_text_atomic

    device = _device(args.device)
    result, figures = full_evaluation(model.to(device), data, out, args.batch, args.workers, device,
                                      args.cam_layer or (meta.get("options") or {}).get("cam_layer"),
                                      title=Path(args.weights).name)
    md = report_markdown(result, data.names, figures, out,
                         heading=f"# {Path(args.weights).name} on {data.val.source}")
    write_text_atomic(out / "report.md", md + "\n")
    s = result.summary()
    print("  ".join(f"{k} {v:.4f}" for k, v in s.items()))
    if result.pointing_by_method:
        print(f"pointing game on {result.cam_layer}: " + "  ".join(
            f"{m} {v:.4f}" for m, v in result.pointing_by_method.items()))
    print(f"wrote {out / 'report.md'} and {len(figures)} figures")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    refuse_to_replace([args.out / "predictions.csv"], args.overwrite)
    source = args.source
    from yololab.classify.data import IMAGE_SUFFIXES

    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if source.is_dir() else []
    _check(bool(files), f"{source}: no image file (or folder of images) there")
    out = args.out

    import csv
    import io

    import torch

    from yololab.classify.data import (
        AugmentConfig,
        as_tensor,
        build_transform,
        load_image,
        warn,
    )
    from yololab.classify.registry import load_classifier
    from yololab.errors import DataError
    from yololab.fileio import write_text_atomic

    model, meta = load_classifier(args.weights)
    device = _device(args.device)
    model.to(device)
    names = meta["names"]
    t = build_transform(False, meta.get("imgsz", 32), meta["mean"], meta["std"], AugmentConfig(), resize=True)
    k = min(args.topk, len(names))
    rows = []
    with torch.no_grad():
        for f in files:
            try:
                img = load_image(f, model.in_channels)
            except DataError as e:
                if len(files) == 1:
                    raise
                warn(f"{e}; skipped")
                continue
            probs = model(t(as_tensor(img))[None].to(device)).float().softmax(1)[0].cpu()
            top = probs.topk(k)
            pairs = [(names[i], float(p)) for p, i in zip(top.values, top.indices)]
            rows.append([str(f)] + [v for pair in pairs for v in (pair[0], f"{pair[1]:.5f}")])
            print(f"{f}: " + ", ".join(f"{n} {p:.3f}" for n, p in pairs))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image"] + [c for j in range(1, k + 1) for c in (f"top{j}", f"p{j}")])
    w.writerows(rows)
    write_text_atomic(out / "predictions.csv", buf.getvalue())
    print(f"wrote {out / 'predictions.csv'} ({len(rows)} images)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    refuse_to_replace([args.out] if args.out else [], args.overwrite)
    from yololab.classify.compare import compare_markdown, read_run
    from yololab.fileio import write_text_atomic

    table = compare_markdown([read_run(Path(r)) for r in args.runs])
    print(table, end="")
    if args.out:
        write_text_atomic(args.out, table)
        print(f"wrote {args.out}")
    return 0


# ----------------------------------------------------------------------------------------------- register


def register(subparsers) -> None:
    from yololab.engine.args import add_train_args

    commands = add_group(subparsers, "classify",
                         "Image classification: ResNets on CIFAR-format or folder data, with CAMs.")

    p = commands.add_parser(
        "synth", help="Write the built-in synthetic set (CIFAR-10 python format, object boxes).",
        description="Write a CIFAR-10 python-format dataset: one object of 10 shape classes per image in varied "
                    "colours, sizes (40-85%% of the side), positions and small rotations over textured "
                    "backgrounds, with each object's box (for the pointing game).", formatter_class=FORMATTER)
    p.add_argument("--out", type=output_dir, required=True, help="output folder (new or empty)")
    p.add_argument("--classes", type=positive_int, default=10, help="number of classes (2-10)")
    p.add_argument("--train", type=positive_int, default=10000, help="training images")
    p.add_argument("--val", type=positive_int, default=2000, help="validation images")
    p.add_argument("--size", type=positive_int, default=32, help="image side in pixels (at least 16)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="image i is drawn with seed + i")
    p.add_argument("--rotate", type=float, default=20.0, help="largest rotation of an object, degrees either way "
                                                              "(180: any angle, a much harder set)")
    add_overwrite(p, "an earlier `yololab classify synth` output in --out")
    p.set_defaults(func=cmd_synth)

    p = commands.add_parser(
        "download", help="Download CIFAR-10 or CIFAR-100 (checksum, resume).",
        description="Download the official python-format archive (resuming an interrupted download), check its "
                    "MD5 and unpack it into OUT/.", formatter_class=FORMATTER)
    p.add_argument("name", choices=("cifar10", "cifar100"), help="which dataset")
    p.add_argument("--out", type=output_dir, required=True, help="folder for downloads/ and the unpacked dataset")
    p.add_argument("--url-base", type=url, help="download from this base URL instead (a mirror); the checksum "
                                                "still applies")
    p.add_argument("--retries", type=non_negative_int, default=5, help="times to resume an interrupted download")
    p.set_defaults(func=cmd_download)

    p = commands.add_parser(
        "train", help="Train a ResNet through yololab.engine.",
        description="Train a classifier on CIFAR-format data or an ImageFolder tree. The run folder gets "
                    "results.csv, TensorBoard events, weights/{last,best}.pt, curves_cls.png, "
                    "confusion_matrix.png, preds_grid.png, miscls_grid.png, gradcam_*.png and report.md.",
        formatter_class=FORMATTER)
    p.add_argument("--data", type=input_path, default=None,
                   help="CIFAR python-format folder or .tar.gz, or an ImageFolder root (default: none; required "
                        "unless --resume)")
    p.add_argument("--model", choices=CLASSIFIERS, default="resnet18-cifar", help="architecture")
    p.add_argument("--width", type=positive_int, default=64, help="channels of the first stage (64: the paper's)")
    p.add_argument("--imgsz", type=positive_int, default=None, help="input side (default: the CIFAR side, or 32)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3, help="image channels: 3 (RGB) or 1 (gray)")
    p.add_argument("--pad", type=non_negative_int, default=4, help="random crop with this much reflect padding "
                                                                   "(0: off)")
    p.add_argument("--fliplr", type=probability, default=0.5, help="horizontal flip probability")
    p.add_argument("--auto-augment", choices=AUTO_AUGMENT, default="none", help="automatic augmentation policy")
    p.add_argument("--mixup", type=float, default=0.0, help="MixUp Beta(alpha, alpha) alpha (0: off)")
    p.add_argument("--cutmix", type=float, default=0.0, help="CutMix Beta(alpha, alpha) alpha (0: off)")
    p.add_argument("--mix-prob", type=probability, default=1.0, help="share of batches mixed when MixUp/CutMix "
                                                                     "is on")
    p.add_argument("--label-smoothing", type=probability, default=0.0, help="label smoothing of the cross-entropy")
    p.add_argument("--weights", type=input_file, default=None, help="start from this classifier checkpoint "
                                                                    "(same classes; default: random weights)")
    p.add_argument("--cam-layer", default=None, help="layer for the pointing game and CAM figures (default: layer4)")
    p.add_argument("--val-batch", type=positive_int, default=256, help="validation batch size")
    p.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                   help="at the end: the figures and the pointing game (--no-figures: best.pt's metrics only)")
    add_train_args(p, TRAIN_DEFAULTS)
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("val", help="Evaluate a checkpoint: metrics, pointing game, figures, report.md.",
                            formatter_class=FORMATTER)
    p.add_argument("--weights", type=input_file, required=True, help="classifier checkpoint (best.pt)")
    p.add_argument("--data", type=input_path, help="data to evaluate on (default: the data it was trained on)")
    p.add_argument("--batch", type=positive_int, default=256, help="batch size")
    p.add_argument("--workers", type=non_negative_int, default=0, help="data loader workers (0: in-process)")
    p.add_argument("--device", help="cpu | cuda | cuda:N (default: cuda if present)")
    p.add_argument("--cam-layer", help="layer for the pointing game and CAM figures (default: the run's, layer4)")
    p.add_argument("--out", type=output_dir, default=Path("runs/classify/val"),
                   help="folder for report.md and the figures")
    add_overwrite(p, "an earlier evaluation in --out")
    p.set_defaults(func=cmd_val)

    p = commands.add_parser("predict", help="Classify images: top-k classes, predictions.csv.",
                            formatter_class=FORMATTER)
    p.add_argument("--weights", type=input_file, required=True, help="classifier checkpoint (best.pt)")
    p.add_argument("--source", type=input_path, required=True, help="an image or a folder of images")
    p.add_argument("--topk", type=positive_int, default=5, help="classes to list per image")
    p.add_argument("--device", help="cpu | cuda | cuda:N (default: cuda if present)")
    p.add_argument("--out", type=output_dir, default=Path("runs/classify/predict"), help="folder for predictions.csv")
    add_overwrite(p, "an earlier predictions.csv in --out")
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser(
        "compare", help="Compare finished runs in one table: per run, and per recipe mean (spread).",
        description="Compare finished training runs. Runs named <recipe>-s<seed> are grouped by recipe: mean over "
                    "the seeds and spread (max - min).", formatter_class=FORMATTER)
    p.add_argument("runs", nargs="+", type=input_path, help="run folders")
    p.add_argument("--out", type=output_file(".md"), help="also write the Markdown table to this file")
    add_overwrite(p, "--out")
    p.set_defaults(func=cmd_compare)
