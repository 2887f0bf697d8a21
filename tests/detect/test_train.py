"""`yololab train`: the detection task on the engine, end to end on real files (tiny sizes, a few steps)."""

from __future__ import annotations

import csv

import pytest
import torch

from helpers import shared_data
from yololab import cli
from yololab.checkpoint.native import save_checkpoint
from yololab.data.synthetic import synth_shapes
from yololab.detect.task import DetectionTask, resolve_model
from yololab.engine import TrainConfig, Trainer
from yololab.engine.args import config_from_args, parse_args
from yololab.models import build_model
from yololab.models.registry import build


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The synthetic shapes set, tiny: 8 training and 4 validation images of 128 px."""
    return synth_shapes(tmp_path_factory.mktemp("shapes"), train=8, val=4, imgsz=128, workers=0, progress=False)


def results(run) -> list[dict]:
    with open(run / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_cli_trains_on_coco8_validates_and_resumes(tmp_path, monkeypatch):
    """Real photographs through the CLI: epoch 1 of 2 is trained and validated, the process dies, --resume
    finishes the run in the same folder with the weights of an uninterrupted run; best.pt loads with build_model."""
    coco8 = shared_data("coco8", "coco8.yaml")
    start = DetectionTask.on_epoch_start

    def die_at_epoch_2(self, epoch, trainer):
        if epoch == 1:
            raise KeyboardInterrupt
        start(self, epoch, trainer)

    monkeypatch.setattr(DetectionTask, "on_epoch_start", die_at_epoch_2)
    argv = ["train", "--data", str(coco8), "--imgsz", "64", "epochs=2", "batch=4", "workers=0",
            "--project", str(tmp_path), "--name", "run"]
    assert cli.main(argv) == 130
    run = tmp_path / "run"
    assert torch.load(run / "weights" / "last.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(DetectionTask, "on_epoch_start", start)
    assert cli.main(["train", "--resume", str(run), "--device", "cpu"]) == 0
    rows = results(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        assert 0 <= float(r["metrics/mAP50-95"]) <= float(r["metrics/mAP50"]) <= 1
        assert float(r["fitness"]) == pytest.approx(0.1 * float(r["metrics/mAP50"]) + 0.9 * float(r["metrics/mAP50-95"]))
    ckpt = torch.load(run / "weights" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["meta"]["names"][0] == "person"
    assert cli.main([*argv[:-1], "ref"]) == 0  # uninterrupted: the resumed run ends with the same weights
    ref = torch.load(tmp_path / "ref" / "weights" / "last.pt", weights_only=True)
    assert all(torch.equal(ref["model_state"][k], v) for k, v in ckpt["model_state"].items())
    model = build_model("yolov8n", num_classes=80, weights=run / "weights" / "best.pt")
    assert model.meta.num_classes == 80
    report = (run / "report.md").read_text()
    assert "## Detection" in report and "mAP50-95" in report


def test_training_on_shapes_lowers_the_loss(shapes, tmp_path):
    cfg = TrainConfig(epochs=4, batch=8, nbs=8, workers=0, optimizer="AdamW", lr0=0.003, warmup_epochs=0,
                      val_interval=0, project=str(tmp_path), name="shapes")
    task = DetectionTask(cfg, data=shapes, model="yolov8n", imgsz=64, hyp={"mosaic": 0.0}, verbose=False)
    Trainer(task, cfg).fit()
    loss = [float(r["train/loss"]) for r in results(tmp_path / "shapes")]
    assert len(loss) == 4 and all(b < a for a, b in zip(loss, loss[1:])) and loss[-1] < 0.95 * loss[0], loss


@pytest.mark.parametrize("name", ["yolov8n", "yolov5n"])
def test_fine_tune_with_another_class_count_keeps_every_other_tensor(name, shapes, tmp_path, capfd):
    source = build(name, num_classes=80)
    save_checkpoint(source, tmp_path / "coco.pt")
    cfg = TrainConfig(epochs=1, batch=4, workers=0)
    task = DetectionTask(cfg, data=shapes, model=name, weights=tmp_path / "coco.pt", imgsz=64, verbose=False)
    assert "left at init for num_classes=7 (checkpoint has 80)" in capfd.readouterr().err
    new, old = task.net.state_dict(), source.state_dict()
    kept = [k for k in new if new[k].shape == old[k].shape]
    assert all(torch.equal(new[k], old[k]) for k in kept if not k.startswith("head.cv3"))
    assert all(k.startswith("head.") for k in set(new) - set(kept))  # only class outputs differ
    if name == "yolov5n":  # anchor-based: each anchor's box and objectness rows are loaded
        w, w0 = new["head.m.0.weight"].view(3, 12, -1), old["head.m.0.weight"].view(3, 85, -1)
        assert torch.equal(w[:, :5], w0[:, :5])
    loss, parts = task.loss(task.build_model().train(), next(iter(task.train_loader(0))))  # and it trains
    loss.backward()
    assert torch.isfinite(loss) and set(parts) >= {"box_loss", "cls_loss"}


def test_a_yolo_command_line_runs_unchanged(tmp_path):
    """`yolo train` settings as key=value, Ultralytics' spellings included, parse to the same run."""
    coco8 = shared_data("coco8", "coco8.yaml")
    args = parse_args(cli.build_parser(), [
        "train", "model=yolov8n.yaml", f"data={coco8}", "epochs=3", "imgsz=320", "batch=8", "device=cpu",
        "workers=0", "optimizer=sgd", "lr0=0.02", "cos_lr=True", "amp=False", "mosaic=0.5", "close_mosaic=2",
        "box=5.0", "cache=True", f"project={tmp_path}", "name=n", "exist_ok=True", "val=False"])
    cfg = config_from_args(args)
    assert (cfg.epochs, cfg.batch, cfg.optimizer, cfg.lr0, cfg.scheduler, cfg.amp, cfg.val_interval, cfg.exist_ok) \
        == (3, 8, "SGD", 0.02, "cosine", "off", 0, True)
    assert (cfg.nbs, cfg.momentum, cfg.weight_decay, cfg.warmup_epochs) == (64, 0.937, 0.0005, 3.0)  # Ultralytics'
    assert (args.imgsz, args.mosaic, args.close_mosaic, args.box, args.cache) == (320, 0.5, 2, 5.0, "ram")
    assert resolve_model(args.model) == ("yolov8n", None)


def test_model_spellings(tmp_path, capfd):
    assert resolve_model("YOLOv5s") == ("yolov5s", None)
    assert resolve_model("yolo11n.yaml") == ("yolo11n", None)
    assert resolve_model(str(tmp_path / "yolov8s.pt")) == ("yolov8s", None)  # no file: from scratch, said so
    assert "yololab downloads nothing: training yolov8s from scratch" in capfd.readouterr().err
    save_checkpoint(build("yolov5n", num_classes=3), tmp_path / "best.pt")
    assert resolve_model(str(tmp_path / "best.pt")) == ("yolov5n", tmp_path / "best.pt")  # the file's network


def test_an_empty_training_split_stops_before_any_work(tmp_path, capfd):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "train" / "a.jpg").write_text("not a picture")
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [thing]\n")
    assert cli.main(["train", "--data", str(tmp_path / "data.yaml"), "--project", str(tmp_path / "runs")]) == 2
    assert "split 'train' has no usable image" in capfd.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "runs").exists()
