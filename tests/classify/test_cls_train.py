"""`yololab classify train / val / predict` through the engine, on tiny data: outputs, resume, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import yololab.classify.task as task_module
from yololab.cli import main

TINY = ["--width", "4", "--batch", "20", "--workers", "0", "--val-batch", "32", "--device", "cpu"]


def train(data, project, name, *extra):
    return main(["classify", "train", "--data", str(data), "--project", str(project), "--name", name, *TINY, *extra])


@pytest.mark.slow
def test_train_writes_the_run_folder(synth_set, tmp_path, capsys):
    assert train(synth_set, tmp_path, "run", "--epochs", "2", "--mixup", "0.2", "--cutmix", "1.0",
                 "--label-smoothing", "0.1", "--auto-augment", "trivialaugment", "--amp", "bf16") == 0
    run = tmp_path / "run"
    for f in ("args.yaml", "results.csv", "results.png", "weights/best.pt", "weights/last.pt", "report.md",
              "curves_cls.png", "confusion_matrix.png", "preds_grid.png", "miscls_grid.png", "gradcam_gradcam.png",
              "gradcam_gradcampp.png", "gradcam_eigencam.png", "eval.json"):
        assert (run / f).is_file(), f
    assert list(run.glob("events.out.tfevents.*"))
    header = (run / "results.csv").read_text().splitlines()[0]
    assert "top1" in header and "top5" in header and "loss" in header
    report = (run / "report.md").read_text()
    assert "| top1 | top5 | precision | recall | f1 | loss | pointing_game |" in report
    assert "![confusion_matrix](confusion_matrix.png)" in report and "| circle |" in report
    ev = json.loads((run / "eval.json").read_text())
    assert 0 <= ev["top1"] <= 1 and 0 <= ev["pointing_game"] <= 1
    assert ev["cam_layer"] == "layer4" and set(ev["pointing_game_by_method"]) == {"gradcam", "gradcam++", "eigencam"}
    assert ev["pointing_game_by_method"]["gradcam"] == ev["pointing_game"]
    out = capsys.readouterr().out
    assert "pointing game" in out

    # val and predict from the checkpoint; the data path comes from the checkpoint
    assert main(["classify", "val", "--weights", str(run / "weights" / "best.pt"), "--out", str(tmp_path / "val")]) == 0
    val_report = (tmp_path / "val" / "report.md").read_text()
    assert f"{ev['top1']:.4f}" in val_report  # same model, same data: same top-1
    assert main(["classify", "val", "--weights", str(run / "weights" / "best.pt"), "--cam-layer", "layer3",
                 "--out", str(tmp_path / "val3")]) == 0
    assert "pointing game on layer3: gradcam " in capsys.readouterr().out
    img = tmp_path / "one.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    assert main(["classify", "predict", "--weights", str(run / "weights" / "best.pt"), "--source", str(img),
                 "--topk", "2", "--out", str(tmp_path / "pred")]) == 0
    rows = (tmp_path / "pred" / "predictions.csv").read_text().splitlines()
    assert rows[0] == "image,top1,p1,top2,p2" and rows[1].startswith(str(img))


@pytest.mark.slow
def test_resume_after_a_crash_continues_the_same_run(synth_set, tmp_path, monkeypatch, capsys):
    assert train(synth_set, tmp_path, "whole", "--epochs", "2", "--seed", "3", "--no-figures") == 0
    real_loss, calls = task_module.ClassifyTask.loss, []

    def crashing(self, model, batch):
        calls.append(1)
        if len(calls) == 5:  # in the second epoch (3 batches an epoch)
            raise RuntimeError("power cut")
        return real_loss(self, model, batch)

    monkeypatch.setattr(task_module.ClassifyTask, "loss", crashing)
    assert train(synth_set, tmp_path, "crashed", "--epochs", "2", "--seed", "3", "--no-figures") == 2
    assert "error: RuntimeError: power cut (unexpected" in capsys.readouterr().err
    monkeypatch.setattr(task_module.ClassifyTask, "loss", real_loss)
    # only --resume: the data, the model and every option come back from the checkpoint
    assert main(["classify", "train", "--resume", str(tmp_path / "crashed")]) == 0
    a = torch.load(tmp_path / "whole" / "weights" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "crashed" / "weights" / "last.pt", weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_bad_input_is_one_line(synth_set, tmp_path, capsys):
    assert train(synth_set, tmp_path, "r", "--mixup", "-1") == 2
    assert train(synth_set, tmp_path, "r", "--fliplr", "1.5") == 2
    assert train(tmp_path / "nothing", tmp_path, "r") == 2
    assert main(["classify", "train", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--mixup and --cutmix are Beta(alpha, alpha) parameters" in err and "argument --fliplr: expected a number in [0, 1]" in err
    assert "nothing does not exist" in err and "--data is required" in err
    # a checkpoint of another class count
    assert train(synth_set, tmp_path, "r4", "--epochs", "1", "--max-steps", "1") == 0
    other = shutil.copytree(synth_set, tmp_path / "three")
    from yololab.classify.cifar import read_cifar, write_cifar10

    s = read_cifar(other, "train")
    s.names = s.names[:3]
    s.labels = s.labels % 3
    write_cifar10(other, s, s)
    assert main(["classify", "val", "--weights", str(tmp_path / "r4" / "weights" / "best.pt"), "--data", str(other),
                 "--out", str(tmp_path / "v")]) == 2
    assert train(other, tmp_path, "r5", "--weights", str(tmp_path / "r4" / "weights" / "best.pt")) == 2
    err = capsys.readouterr().err
    assert "a checkpoint for 4 classes" in err and "for 4 classes; this run trains resnet18-cifar on 3 classes" in err


def test_loss_on_soft_targets_with_label_smoothing(synth_set):
    """A mixed batch trains on its soft targets, smoothed: -sum(((1 - e) y + e / K) log softmax) averaged,
    not on the dominant class."""
    from yololab.classify.task import ClassifyTask
    from yololab.engine import TrainConfig

    task = ClassifyTask(TrainConfig(batch=8, seed=0, workers=0), data=str(synth_set), width=8, cutmix=1.0,
                        label_smoothing=0.1)
    model = task.build_model()
    x, y, index = next(iter(task.train_loader(epoch=0)))
    assert y.ndim == 2
    loss, _ = task.loss(model, (x, y, index))
    target = 0.9 * y + 0.1 / 4
    expected = -(target * torch.log_softmax(model(x).float(), 1)).sum(1).mean()
    torch.testing.assert_close(loss, expected)
    hard = torch.nn.functional.cross_entropy(model(x).float(), y.argmax(1), label_smoothing=0.1)
    assert not torch.isclose(loss, hard)


@pytest.mark.parametrize("recipe", ["baseline", "mixup", "cutmix", "warmup"])
def test_recipes_are_valid_train_settings(recipe):
    """Every recipe of configs/classify/ reads as `classify train --cfg` settings; CutMix as the paper's CIFAR
    runs (Beta(1, 1), half of the batches), MixUp Beta(0.2, 0.2), warmup one epoch."""
    from pathlib import Path

    from yololab.cli import build_parser
    from yololab.engine.args import config_from_args, parse_args

    path = Path(__file__).parents[2] / "configs" / "classify" / f"{recipe}.yaml"
    args = parse_args(build_parser(), ["classify", "train", "--data", str(path.parent), "--cfg", str(path)])
    cfg = config_from_args(args)
    assert (cfg.optimizer, cfg.lr0, args.label_smoothing) == ("SGD", 0.1, 0.1)
    expected = {"baseline": (0.0, 0.0, 1.0, 0.0), "mixup": (0.2, 0.0, 1.0, 0.0), "cutmix": (0.0, 1.0, 0.5, 0.0),
                "warmup": (0.0, 0.0, 1.0, 1.0)}[recipe]
    assert (args.mixup, args.cutmix, args.mix_prob, cfg.warmup_epochs) == expected
