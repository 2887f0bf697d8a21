"""``yololab cam``: where a model looks, for a classifier or a YOLO detector of the zoo.

A top-level group rather than ``yololab classify cam`` because it explains detectors as much as
classifiers: a person studying a YOLO should not have to look for it under classification. It lives in
``analysis`` because it stands on both tasks (``classify.cam`` for the methods, ``detect.postprocess``
for the detections), which the layer rules allow only above them. Standard library only at import (the
command imports torch when it runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from yololab._cli_group import (
    FORMATTER,
    add_overwrite,
    input_file,
    non_negative_int,
    output_dir,
    positive_int,
    probability,
    refuse_to_replace,
)

METHODS = ("gradcam", "gradcam++", "eigencam")


def _load(args):
    """(model, kind, meta): kind "classifier" or "detector"; meta holds names, imgsz, mean, std."""
    from yololab.classify.registry import CLASSIFIERS, build_classifier, load_classifier
    from yololab.errors import YololabError
    from yololab.models import build_model, list_models

    name = args.model
    if name is None:  # a yololab checkpoint says what it is
        from yololab.checkpoint.native import load_checkpoint

        name = load_checkpoint(args.weights)["model_name"]
        if name not in CLASSIFIERS and name not in list_models():
            raise YololabError(f"{args.weights}: a checkpoint of {name!r}, neither a classifier nor a zoo detector")
    if name in CLASSIFIERS:
        if args.weights:
            model, meta = load_classifier(args.weights)
            if args.model and meta["model_name"] != args.model:
                raise YololabError(f"{args.weights}: a {meta['model_name']} checkpoint, not {args.model}")
        else:
            nc = args.num_classes or (10 if name.endswith("-cifar") else 1000)
            model = build_classifier(name, num_classes=nc)
            meta = {"names": [str(i) for i in range(nc)], "imgsz": 32 if name.endswith("-cifar") else 224,
                    "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # ImageNet's
        return model.eval(), "classifier", meta
    if name in list_models():
        model = build_model(name, num_classes=args.num_classes or 80, weights=args.weights)
        from yololab.data.download import COCO_NAMES

        nc = model.meta.num_classes
        names = list(getattr(model.meta, "extra", {}).get("names") or (COCO_NAMES if nc == 80 else range(nc)))
        return model.eval(), "detector", {"names": [str(n) for n in names], "imgsz": 640}
    raise YololabError(f"unknown model {name!r}; classifiers: {', '.join(CLASSIFIERS)}; detectors: "
                       f"{', '.join(list_models())}")


def _side_by_side(a, b, min_side: int = 256):
    import cv2
    import numpy as np

    s = max(1, -(-min_side // min(a.shape[:2])))
    interp = cv2.INTER_NEAREST if s > 1 else cv2.INTER_LINEAR
    a, b = (cv2.resize(x, (x.shape[1] * s, x.shape[0] * s), interpolation=interp) for x in (a, b))
    if a.ndim == 2 or a.shape[2] == 1:
        a = np.repeat(a.reshape(*a.shape[:2], 1), 3, axis=2)
    return np.concatenate([a, np.full((a.shape[0], 4, 3), 255, np.uint8), b], 1)


def cmd_cam(args: argparse.Namespace) -> int:
    image = args.image
    tag = args.model or Path(args.weights or "").stem
    out = args.out / f"{image.stem}_{tag}_{args.method.replace('+', 'p')}.png"
    refuse_to_replace([out], args.overwrite)
    from yololab.errors import YololabError

    if not args.weights and not args.model:
        raise YololabError("give --weights FILE (a trained model) or --model NAME (random weights)")

    import cv2

    from yololab.analysis.detcam import draw_detections, explain_detector
    from yololab.classify.cam import CAM, overlay
    from yololab.classify.data import (
        AugmentConfig,
        as_tensor,
        build_transform,
        fit_size,
        load_image,
    )
    from yololab.fileio import write_bytes_atomic

    model, kind, meta = _load(args)
    names = meta["names"]
    if kind == "classifier":
        channels = model.in_channels
        img = load_image(image, channels)
        imgsz = args.imgsz or meta["imgsz"]
        t = build_transform(False, imgsz, meta["mean"], meta["std"], AugmentConfig(), resize=True)
        x = t(as_tensor(img))[None]
        shown = fit_size(imgsz)(as_tensor(img)).permute(1, 2, 0).numpy()
        cam = CAM(model, args.layer, args.method)
        if args.class_index is not None and not 0 <= args.class_index < len(names):
            raise YololabError(f"--class {args.class_index}: the model has {len(names)} classes (0 .. {len(names) - 1})")
        maps = cam(x, args.class_index)
        probs = cam.last_output.float().softmax(1)[0]
        top = probs.topk(min(5, len(names)))
        target = args.class_index if args.class_index is not None else int(top.indices[0])
        picture = _side_by_side(shown, overlay(shown, maps[0]))
        print(f"{image}: " + ", ".join(f"{names[i]} {p:.3f}" for p, i in zip(top.values.tolist(), top.indices.tolist())))
        print(f"{args.method} on {cam.layer_name} for class {names[target]!r}")
    else:
        img = load_image(image, 3)
        heat, dets, explained, note = explain_detector(model, img, args.method, args.layer, args.imgsz or meta["imgsz"],
                                                       args.conf, args.iou, args.det)
        picture = draw_detections(overlay(img, heat), dets, names, explained)
        if note:
            print(f"note: {note}")
        what = "all detections" if args.method == "eigencam" else f"detection {explained}"
        print(f"{image}: {len(dets)} detection(s); {args.method} of {what}")
        for i, d in enumerate(dets[:20]):
            print(f"  {i}: {names[d.cls] if d.cls < len(names) else d.cls} {d.score:.3f} "
                  f"box {', '.join(f'{v:.0f}' for v in d.box)}")
    ok, buf = cv2.imencode(".png", picture[..., ::-1])
    write_bytes_atomic(out, buf.tobytes())
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cam", help="Draw class activation maps (Grad-CAM, Grad-CAM++, EigenCAM) for classifiers and YOLO detectors.",
        description="Draw where a model looks. Classifiers: the map of the top class (or --class). Detectors: "
                    "Grad-CAM / Grad-CAM++ explain one detection (--det, best first), EigenCAM the whole image with "
                    "every detection drawn. Writes OUT/<image>_<model or weights>_<method>.png.",
        formatter_class=FORMATTER)
    p.add_argument("--weights", type=input_file, help="a yololab checkpoint (classifier or detector), or detector "
                                                      "weights (Ultralytics / yolov5 .pt, Darknet .weights) with --model")
    p.add_argument("--model", help="model name: a classifier (resnet18, resnet18-cifar ...) or a zoo detector "
                                   "(yolov8n ...); alone: random weights")
    p.add_argument("--image", type=input_file, required=True, help="the image to explain")
    p.add_argument("--layer", help="module whose output is explained, e.g. layer4 or neck.out3 (default: a "
                                   "ResNet's layer4, a detector's neck)")
    p.add_argument("--method", choices=METHODS, default="gradcam", help="CAM method")
    p.add_argument("--class", dest="class_index", type=non_negative_int,
                   help="classifier: class to explain (default: the top one)")
    p.add_argument("--det", type=non_negative_int, default=0,
                   help="detector, gradient methods: which detection (0 = best)")
    p.add_argument("--conf", type=probability, default=0.25, help="detector: score threshold")
    p.add_argument("--iou", type=probability, default=0.45, help="detector: NMS IoU threshold")
    p.add_argument("--imgsz", type=positive_int, help="input size (default: the checkpoint's, 224 / 32 for "
                                                      "classifiers, 640 for detectors)")
    p.add_argument("--num-classes", type=positive_int, help="classes of a randomly initialized --model")
    p.add_argument("--out", type=output_dir, default=Path("runs/cam"), help="output folder")
    add_overwrite(p, "the output image")
    p.set_defaults(func=cmd_cam)
