"""Tests of yololab.analysis.explain: the DFL picture is computed with the reference's loss and our DFL layer; the TAL
picture with our assigner (equal to the reference's: tests/detect/test_loss_parity.py) on a real coco8 photograph."""

from __future__ import annotations

import torch
from ultralytics.utils.loss import DFLoss

from helpers import shared_data
from yololab.analysis.explain import dfl_loss, fit_edge, read_labels, tal_assignment
from yololab.data.io import read_image
from yololab.cli import main
from yololab.models import build_model
from yololab.nn.blocks import DFL


def test_dfl_loss_equals_the_reference():
    torch.manual_seed(0)
    logits, target = torch.randn(50 * 4, 16), torch.rand(50, 4) * 17 - 1  # in and outside [0, 15): clamped alike
    ours = dfl_loss(logits, target.clone().view(-1)).view(50, 4).mean(-1, keepdim=True)
    ref = DFLoss(16)(logits, target.clone())  # (boxes, 4 edges) targets, the mean over the edges per box
    torch.testing.assert_close(ours, ref)


def test_fitted_edge_expectation_lands_on_the_label_and_splits_when_ambiguous():
    probs, path = fit_edge([5.3], steps=120)
    assert path[0] == 7.5  # equal logits: the middle of 0..15
    assert abs(path[-1] - 5.3) < 0.05 and set(probs.topk(2).indices.tolist()) == {5, 6}
    assert abs(probs[5].item() - 0.7) < 0.02 and abs(probs[6].item() - 0.3) < 0.02
    expectation = DFL(16)(probs.log().repeat(4)[None, :, None])[0, 0, 0].item()  # the layer the heads decode with
    assert abs(expectation - path[-1]) < 0.02

    probs, path = fit_edge([4.2, 9.6], steps=120)
    assert set(probs.topk(4).indices.tolist()) == {4, 5, 9, 10}  # two peaks, none between them
    assert probs[6:9].sum() < 0.01 and 4.2 < path[-1] < 9.6 and abs(path[-1] - (4.2 + 9.6) / 2) < 0.1


def test_cli_explain_dfl(tmp_path, capsys):
    assert main(["models", "explain", "dfl", "--out", str(tmp_path), "--dpi", "60"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dfl.png", "dfl.svg"]
    assert main(["models", "explain", "dfl", "--out", str(tmp_path / "dfl.png")]) == 2
    assert "dfl.png exists and is a file, expected a folder" in capsys.readouterr().err
    assert main(["models", "explain", "dfl", "--out", str(tmp_path)]) == 2  # replaced only when asked
    assert "dfl.png exists (and 1 more of the outputs); pass --overwrite" in capsys.readouterr().err


def test_tal_assignment_on_a_coco8_photograph():
    image = shared_data("coco8") / "images" / "val" / "000000000061.jpg"
    labels = read_labels(shared_data("coco8") / "labels" / "val" / "000000000061.txt")
    torch.manual_seed(0)
    a = tal_assignment(build_model("yolov8n"), read_image(image), labels, imgsz=320)
    n = len(labels)
    assert a["gt"].shape == (n, 4) and list(a["gt_cls"]) == labels[:, 0].astype(int).tolist()
    assert a["cand"].shape == a["metric"].shape == (n, 2100)  # 40x40 + 20x20 + 10x10 anchor points at 320
    # positives are candidates of the object they learn, at most topk per object, the soft targets in (0, 1]
    fg, owner = a["fg"], a["owner"]
    assert fg.any() and (owner[fg] >= 0).all() and (owner[~fg] == -1).all()
    assert a["cand"][owner[fg], fg.nonzero()[0]].all()
    assert all((owner == j).sum() <= a["topk"] for j in range(n))
    assert ((a["target"][fg] > 0) & (a["target"][fg] <= 1)).all() and (a["target"][~fg] == 0).all()
    # an object whose candidates no other object claims keeps exactly its topk best-aligned ones
    shared = a["cand"].sum(0) > 1
    for j in range(n):
        if not (a["cand"][j] & shared).any():
            chosen = owner == j
            assert chosen.sum() == min(a["topk"], a["cand"][j].sum())
            assert a["metric"][j, chosen].min() >= a["metric"][j, a["cand"][j] & ~chosen].max(initial=0)


def test_cli_explain_tal(tmp_path, capsys):
    assert main(["models", "explain", "tal", "--imgsz", "256", "--out", str(tmp_path), "--dpi", "50"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tal.png"]
    assert "wrote" in capsys.readouterr().out
