"""``yololab video``: synth, extract-frames, train, eval, predict (video classification).

Only the standard library is imported here; each command imports what it needs when it runs.
"""

from __future__ import annotations

from pathlib import Path

from yololab._cli_group import (FORMATTER, add_group, add_overwrite, input_file, input_path, non_negative_int,
                                output_dir, output_file, positive_float, positive_int, probability,
                                refuse_to_replace)

MODELS = ["cnn_lstm", "cnn_gru", "frame_avg", "r3d_18", "r2plus1d_18", "c3d", "timesformer"]


def _add_backend(p) -> None:
    p.add_argument("--backend", choices=["auto", "pyav", "opencv"], default="auto",
                   help="video decoder: auto = OpenCV decoding forward, PyAV seeking when a clip starts late")


def _add_clip_args(p, train: bool = True) -> None:
    g = p.add_argument_group("clips")
    g.add_argument("--clip-len", type=positive_int, default=8, help="frames per clip")
    g.add_argument("--sampling", choices=["uniform", "segment", "dense"], default="segment",
                   help="uniform over the video, TSN segments, or dense consecutive frames")
    g.add_argument("--stride", type=positive_int, default=2, help="frame step of dense sampling")
    g.add_argument("--short", choices=["loop", "pad"], default="loop", help="videos shorter than a clip")
    g.add_argument("--short-side", type=positive_int, default=72, help="frames resized to this shorter side")
    g.add_argument("--size", type=positive_int, default=64, help="square crop side")
    _add_backend(g)
    if train:
        g.add_argument("--hflip", type=probability, default=0.0,
                       help="horizontal flip probability (0: a flip turns 'move left' into 'move right')")


def _add_data_args(p) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, type=input_path,
                   help="UCF-101 folder (with classInd.txt), class folders, frame folders or a Kinetics-style CSV")
    g.add_argument("--fold", type=int, choices=[1, 2, 3], default=1, help="UCF-101 split")
    g.add_argument("--val-fraction", type=probability, default=0.2, help="validation share of class folders")
    g.add_argument("--val-data", type=input_file, default=None, help="validation CSV (with a CSV --data)")
    g.add_argument("--val-clips", type=positive_int, default=1, help="clips per validation video (averaged)")
    g.add_argument("--val-crops", type=int, choices=[1, 3], default=1, help="crops per clip (averaged)")


def _clip_config(args, layout: str = "TCHW"):
    from yololab.video.datasets import ClipConfig

    return ClipConfig(clip_len=args.clip_len, sampling=args.sampling, stride=args.stride, short=args.short,
                      short_side=args.short_side, size=args.size, layout=layout,
                      hflip=getattr(args, "hflip", 0.0), backend=args.backend)


def cmd_synth(args) -> int:
    from yololab.video.synth import synth_actions

    synth_actions(args.out, args.classes, args.videos_per_class, args.frames, args.size, args.seed, args.format,
                  args.fps, args.workers, args.overwrite, progress=True)
    return 0


def cmd_extract(args) -> int:
    from yololab.video.extract import extract_frames

    r = extract_frames(args.src, args.dst, args.frames, args.fps, args.size, args.workers, args.quality,
                       args.backend)
    print(f"extracted {r['done']} videos ({r['frames']} frames), {r['skipped']} already done, {r['failed']} failed "
          f"-> {args.dst}")
    for video, msg in r["failures"]:
        print(f"failed: {msg}")
    return 1 if r["failed"] else 0


def _model_options(args) -> dict:
    from yololab.errors import ConfigError
    from yololab.video.models import OPTIONS

    if args.model == "frame_avg" and args.frame_input == "motion":
        raise ConfigError("--frame-input motion is for cnn_lstm / cnn_gru: frame differences tell the direction "
                          "of time, and frame_avg (the control) must stay blind to it; use rgb or residual")
    given = {"hidden": args.hidden, "layers": args.layers, "pool": args.pool, "dropout": args.dropout,
             "freeze_encoder": args.freeze_encoder, "frame_input": args.frame_input, "fc_dim": args.fc_dim, "img_size": args.size,
             "frames": args.clip_len, "patch": args.patch, "dim": args.dim, "depth": args.depth, "heads": args.heads}
    return {k: v for k, v in given.items() if k in OPTIONS[args.model]}


def cmd_train(args) -> int:
    from yololab.engine import Trainer
    from yololab.engine.args import config_from_args
    from yololab.video.task import VideoTask

    cfg = config_from_args(args)
    task = VideoTask(cfg, args.data, args.model, _model_options(args), args.weights, _clip_config(args), args.fold,
                     args.val_fraction, args.val_data, args.val_clips, args.val_crops)
    summary = Trainer(task, cfg).fit()
    print(f"best fitness (val top-1) {summary['best_fitness']} at epoch {summary['best_epoch']}; "
          f"results in {summary['run_dir']}")
    return 0


def cmd_eval(args) -> int:
    import json

    import numpy as np

    from yololab.errors import DataError
    from yololab.fileio import write_text_atomic
    from yololab.video.datasets import ClipConfig, VideoClipDataset, read_video_list
    from yololab.video.task import eval_loader, load_video_checkpoint, metrics_markdown, metrics_of, \
        predict_views, write_eval_pictures

    refuse_to_replace([args.out], args.exist_ok, flag="--exist-ok")
    out = Path(args.out)
    model, meta = load_video_checkpoint(args.weights)
    clip = ClipConfig(**{**meta["clip"], "backend": args.backend})
    videos = read_video_list(args.data, False, args.fold, args.val_fraction, args.seed, args.val_data,
                             classes=meta["classes"])
    if videos.classes != meta["classes"]:
        raise DataError(f"{args.data}: its classes differ from those the model was trained on")
    ds = VideoClipDataset(videos, clip, False, args.val_clips, args.val_crops)
    probs, labels, index = predict_views(model, eval_loader(ds, args.batch, args.workers), "cpu", clip.layout,
                                         meta["normalization"])
    if not len(labels):
        raise DataError(f"{args.data}: no readable validation video")
    m = metrics_of(probs, labels, videos.classes)
    out.mkdir(parents=True, exist_ok=True)
    write_eval_pictures(out, m, ds, probs, labels, index, title=f"{meta['model_name']}: {videos.source}")
    text = (f"# yololab video eval\n\nweights `{args.weights}`, data `{videos.source}` ({len(labels)} videos, "
            f"{args.val_clips} clip(s) x {args.val_crops} crop(s))\n\n" + metrics_markdown(m, videos.classes)
            + "\n![confusion matrix](confusion.png)\n\n![samples](samples.png)\n")
    write_text_atomic(out / "report.md", text)
    keep = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in m.items()}
    write_text_atomic(out / "metrics.json", json.dumps({"classes": videos.classes, **keep}, indent=1))
    print(f"top-1 {m['top1']:.4f}  top-5 {m['top5']:.4f}  mean class acc {m['mean_class_acc']:.4f}  "
          f"({len(labels)} videos) -> {out}")
    return 0


def cmd_predict(args) -> int:
    if args.out:
        refuse_to_replace([args.out], args.overwrite)
    from yololab.video.predict import predict_video, write_labelled

    ranked = predict_video(args.weights, args.video, args.clips, args.crops, args.backend)
    for name, p in ranked[:5]:
        print(f"{p:7.4f}  {name}")
    if args.out:
        name, p = ranked[0]
        print(f"wrote {write_labelled(args.video, args.out, f'{name} {p:.2f}')}")
    return 0


def register(subparsers) -> None:
    sub = add_group(subparsers, "video", "Video classification: synth, extract-frames, train, eval, predict.")
    fmt = FORMATTER

    p = sub.add_parser("synth", help="Write the synthetic action dataset (UCF-101 layout).", formatter_class=fmt)
    p.add_argument("--out", required=True, type=output_dir, help="output folder (new, empty, or an earlier synth output)")
    p.add_argument("--classes", type=positive_int, default=10, help="number of motion classes (1-10)")
    p.add_argument("--videos-per-class", type=positive_int, default=40, help="videos per class")
    p.add_argument("--frames", type=positive_int, default=16, help="frames per video")
    p.add_argument("--size", type=positive_int, default=64, help="frame side in pixels (even)")
    p.add_argument("--fps", type=positive_int, default=25, help="frames per second")
    p.add_argument("--format", choices=["avi", "mp4"], default="avi", help="MPEG-4 AVI (as UCF-101) or H.264 MP4")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.add_argument("--workers", type=non_negative_int, default=None, help="processes (default: one per CPU)")
    add_overwrite(p, "an earlier synth output in --out")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("extract-frames", help="Extract videos into JPEG frame folders (parallel, resumable).",
                       formatter_class=fmt)
    p.add_argument("src", type=input_path, help="folder of videos (searched recursively)")
    p.add_argument("dst", type=output_dir, help="output folder, outside SRC (finished videos in it are skipped)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--frames", type=positive_int, default=None, help="frames per video, spread uniformly")
    g.add_argument("--fps", type=positive_float, default=None, help="frames per second of video")
    p.add_argument("--size", type=positive_int, default=None, help="resize the shorter side to this")
    p.add_argument("--quality", type=int, default=95, choices=range(1, 101), metavar="1-100", help="JPEG quality")
    p.add_argument("--workers", type=non_negative_int, default=None, help="processes (default: one per CPU)")
    _add_backend(p)
    p.set_defaults(func=cmd_extract)

    from yololab.engine.args import add_train_args  # standard library only, like this module

    p = sub.add_parser("train", help="Train a video classifier (yololab.engine).", formatter_class=fmt)
    _add_data_args(p)
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=MODELS, default="cnn_lstm", help="architecture")
    g.add_argument("--weights", type=input_file, default=None, help="local file: torchvision resnet18/r3d_18/r2plus1d_18 state dict")
    g.add_argument("--hidden", type=positive_int, default=256, help="LSTM/GRU width")
    g.add_argument("--layers", type=int, choices=[1, 2], default=1, help="LSTM/GRU layers")
    g.add_argument("--pool", choices=["last", "mean"], default="last", help="LSTM/GRU output: last step or mean")
    g.add_argument("--dropout", type=probability, default=0.0, help="dropout before the classifier")
    g.add_argument("--freeze-encoder", action="store_true", help="keep the ResNet-18 frame encoder fixed")
    g.add_argument("--frame-input", choices=["rgb", "residual", "motion"], default="rgb",
                   help="what the ResNet-18 frame encoder sees: the frames; each minus the clip's mean frame; or "
                        "(CNN+LSTM/GRU) that residual and the difference from the previous frame, 6 channels")
    g.add_argument("--fc-dim", type=positive_int, default=4096, help="C3D fc6/fc7 width")
    g.add_argument("--patch", type=positive_int, default=8, help="TimeSformer patch size")
    g.add_argument("--dim", type=positive_int, default=128, help="TimeSformer width")
    g.add_argument("--depth", type=positive_int, default=4, help="TimeSformer blocks")
    g.add_argument("--heads", type=positive_int, default=4, help="TimeSformer attention heads")
    _add_clip_args(p)
    # AdamW, warmup + cosine; biases warm up from 0 like the rest (a bias LR of 0.1 wrecks Adam), no EMA (short runs)
    add_train_args(p, {"epochs": 10, "batch": 16, "optimizer": "AdamW", "lr0": 0.001, "lrf": 0.01, "momentum": 0.9,
                       "weight_decay": 0.05, "scheduler": "cosine", "warmup_epochs": 1.0, "warmup_bias_lr": 0.0,
                       "ema": False})
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="Measure a checkpoint: video-level accuracy, per-class P/R/F1, confusion matrix.",
                       formatter_class=fmt)
    p.add_argument("weights", type=input_file, help="checkpoint of `yololab video train` (weights/best.pt)")
    _add_data_args(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the class-folder split (as in training)")
    p.add_argument("--batch", type=positive_int, default=8, help="videos per batch")
    p.add_argument("--workers", type=non_negative_int, default=2, help="loader processes")
    _add_backend(p)
    p.add_argument("--out", type=output_dir, default="runs/video/eval", help="output folder (report.md, confusion.png, metrics.json)")
    p.add_argument("--exist-ok", action="store_true", help="write into an existing, non-empty --out")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="Print the top-5 classes of a video; optionally write it with the label drawn.",
                       formatter_class=fmt)
    p.add_argument("weights", type=input_file, help="checkpoint of `yololab video train`")
    p.add_argument("video", type=input_path, help="video file (or frame folder)")
    p.add_argument("--clips", type=positive_int, default=3, help="clips averaged")
    p.add_argument("--crops", type=int, choices=[1, 3], default=1, help="crops per clip averaged")
    _add_backend(p)
    p.add_argument("--out", type=output_file(".mp4", ".avi"), default=None,
                   help="write the video with the top class drawn (.mp4 or .avi)")
    add_overwrite(p, "an existing --out")
    p.set_defaults(func=cmd_predict)
