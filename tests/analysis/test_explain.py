"""Tests of yololab.analysis.explain: the DFL picture is computed with the reference's loss and our DFL layer."""

from __future__ import annotations

import torch
from ultralytics.utils.loss import DFLoss

from yololab.analysis.explain import dfl_loss, fit_edge
from yololab.cli import main
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
