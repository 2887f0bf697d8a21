"""Train a yolov8n on the synthetic shapes set with Ultralytics' own trainer, offline, and keep its weights.

The weights are what the predict parity test (tests/deploy/test_predict_parity.py) and the INT8 / benchmark
measurements need: a *trained* detector, whose scores are spread out as a real model's are (a random-weight
network scores every box nearly alike, so NMS ties decide what it "detects" and parity says nothing).

1. writes the shapes dataset (:func:`yololab.data.synthetic.synth_shapes`, 7 classes, seeded) in ``--work-dir``;
2. trains ``YOLO("yolov8n.yaml")`` from scratch on it (no pretrained weights: nothing is downloaded);
   ``YOLO_OFFLINE=1`` and Ultralytics' settings folder inside ``--work-dir``; plots and validation off;
3. copies Ultralytics' final ``last.pt`` (optimizer stripped, EMA weights, fp16: what Ultralytics ships) to
   ``--out`` and writes ``<out>.json`` beside it: the arguments, versions, date, size and SHA-256.

    .venv/bin/python scripts/train_reference_yolov8n.py --epochs 30 --out tests/fixtures/yolov8n-shapes.pt

Steps 1 and 2 are cached in ``--work-dir`` (the dataset is reused; training always reruns).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/yololab-reference-yolov8n"),
                   help="dataset and Ultralytics run folder")
    p.add_argument("--out", type=Path, required=True, help="where the trained weights are copied (.pt)")
    p.add_argument("--train", type=int, default=800, help="synthetic training images")
    p.add_argument("--val", type=int, default=200, help="synthetic validation images")
    p.add_argument("--imgsz", type=int, default=320, help="image size of the dataset and of training")
    p.add_argument("--epochs", type=int, default=30, help="training epochs")
    p.add_argument("--batch", type=int, default=16, help="training batch size")
    p.add_argument("--seed", type=int, default=0, help="dataset and training seed")
    p.add_argument("--workers", type=int, default=2, help="Ultralytics data loader workers")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from yololab.data.synthetic import synth_shapes
    from yololab.fileio import write_bytes_atomic, write_text_atomic

    args.work_dir.mkdir(parents=True, exist_ok=True)
    data_yaml = args.work_dir / "shapes" / "data.yaml"
    if not data_yaml.is_file():
        synth_shapes(args.work_dir / "shapes", train=args.train, val=args.val, imgsz=args.imgsz, seed=args.seed)

    os.environ["YOLO_OFFLINE"] = "1"  # no settings sync, no hub events
    os.environ["YOLO_CONFIG_DIR"] = str(args.work_dir / "ultralytics-config")  # settings.json not in ~
    import ultralytics
    import ultralytics.data.utils
    from ultralytics import YOLO

    # check_det_dataset() asks for Arial.ttf (plot labels) and downloads it when missing, even offline
    ultralytics.data.utils.check_font = lambda *a, **k: None
    t0 = time.time()
    YOLO("yolov8n.yaml").train(data=str(data_yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                               workers=args.workers, device="cpu", amp=False, plots=False, val=False,
                               seed=args.seed, deterministic=True, project=str(args.work_dir), name="train",
                               exist_ok=True, verbose=False)
    minutes = (time.time() - t0) / 60
    data = (args.work_dir / "train" / "weights" / "last.pt").read_bytes()
    write_bytes_atomic(args.out, data)
    provenance = {
        "what": "yolov8n trained from scratch by Ultralytics on yololab's synthetic shapes set (7 classes)",
        "script": "scripts/train_reference_yolov8n.py",
        "args": {k: str(v) for k, v in vars(args).items()},
        "ultralytics": ultralytics.__version__, "python": platform.python_version(),
        "trained_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "train_minutes": round(minutes, 1),
        "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
    }
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
