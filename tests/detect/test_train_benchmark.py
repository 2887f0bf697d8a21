"""benchmarks/train_vs_ultralytics.py against the yolov5 package: the data.yaml it reads and the recipe yololab
trains with, which must be yolov5's hyp.scratch-low.yaml wherever the two have the same setting."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from yololab import cli
from yololab.data.synthetic import synth_shapes
from yololab.detect.task import DetectionTask
from yololab.engine.args import config_from_args, parse_args

ROOT = Path(__file__).resolve().parents[2]


def bench():
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "benchmarks" / "train_vs_ultralytics.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_train"] = module
    spec.loader.exec_module(module)
    return module


def test_yolov5_side_reads_the_same_data_with_the_same_recipe(tmp_path, monkeypatch):
    import yolov5.utils.general as general

    b = bench()
    data = Path(synth_shapes(tmp_path / "shapes", train=3, val=2, imgsz=64, workers=0, progress=False))
    monkeypatch.setattr(general, "check_font", lambda *a, **k: None)  # a download otherwise
    resolved = general.check_dataset(str(b.yolov5_data_yaml(data, tmp_path / "yolov5-data.yaml")))
    assert (resolved["train"], resolved["val"], resolved["nc"]) == \
        (str(data.parent / "images" / "train"), str(data.parent / "images" / "val"), 7)

    # yolov5 warms up for max(3 epochs, 100 batches): 100 batches for 400 images of batch 16, 150 for 800
    assert b.yolov5_recipe(400, 16)[-1] == "100" and b.yolov5_recipe(800, 16)[-1] == "150"
    args = parse_args(cli.build_parser(), ["train", "--model", "yolov5n", "--data", str(data), "--imgsz", "64",
                                           *b.yolov5_recipe(3, 16)])
    cfg = config_from_args(args)
    task = DetectionTask(cfg, data=args.data, model=args.model, imgsz=args.imgsz,
                         hyp={"close_mosaic": args.close_mosaic}, verbose=False)
    hyp = yaml.safe_load((Path(general.ROOT) / "data" / "hyps" / "hyp.scratch-low.yaml").read_text())
    # the loss gains as yolov5's train.py scales them for 3 levels, 7 classes, 64 px (cls_pw, obj_pw 1 and fl_gamma 0
    # are what our losses do; iou_t is unused there, copy_paste needs segments)
    hyp.update(cls=hyp["cls"] * 7 / 80, obj=hyp["obj"] * (64 / 640) ** 2)
    ours = {**vars(cfg), **vars(task.loss_hyp), **vars(task.augment)}
    same = [k for k in hyp if k in ours and k != "warmup_epochs"]
    assert len(same) >= 20 and {k: ours[k] for k in same} == pytest.approx({k: hyp[k] for k in same})
    assert (cfg.optimizer, cfg.warmup_steps, cfg.nbs, cfg.ema, task.augment.close_mosaic) == ("SGD", 100, 64, True, 0)
