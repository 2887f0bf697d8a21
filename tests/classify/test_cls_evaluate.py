"""The end-of-run evaluation: metrics, pointing game, the seed plan's figures, the report section."""

from __future__ import annotations

import numpy as np
import torch

from yololab.classify import build_classifier
from yololab.classify.data import load_data
from yololab.classify.cam import pointing_game
from yololab.classify.evaluate import cams_for, full_evaluation, report_markdown


def test_full_evaluation_writes_every_figure(synth_set, tmp_path):
    torch.manual_seed(0)
    data = load_data(synth_set)
    model = build_classifier("resnet18-cifar", num_classes=4, width=8).eval()
    (tmp_path / "results.csv").write_text("epoch,train/loss,val/loss,val/top1,val/top5\n1,1.3,1.2,0.4,1.0\n"
                                          "2,1.1,1.0,0.5,1.0\n")
    result, figures = full_evaluation(model, data, tmp_path, batch=16, results_csv=tmp_path / "results.csv")
    names = sorted(p.name for p in figures)
    assert names == ["confusion_matrix.png", "curves_cls.png", "gradcam_eigencam.png", "gradcam_gradcam.png",
                     "gradcam_gradcampp.png", "miscls_grid.png", "preds_grid.png"]
    assert all((tmp_path / n).stat().st_size > 5000 for n in names)
    assert result.metrics.confusion.sum() == 30 and len(result.pointing_hits) == 30
    assert 0 <= result.pointing <= 1 and np.isclose(result.pointing, result.pointing_hits.mean())
    # every CAM method's pointing game on the same layer, each equal to scoring that method's maps directly
    assert result.cam_layer == "layer4" and list(result.pointing_by_method) == ["gradcam", "gradcam++", "eigencam"]
    idx = result.index.numpy()
    for method, share in result.pointing_by_method.items():
        maps = cams_for(model, data.dataset("val"), idx, "layer4", method)
        assert share == pointing_game(maps, data.val.boxes[idx]).mean()
    assert result.pointing_by_method["gradcam"] == result.pointing
    assert result.to_json()["pointing_game_by_method"] == result.pointing_by_method
    md = report_markdown(result, data.names, figures, tmp_path)
    assert "| top1 | top5 | precision | recall | f1 | loss | pointing_game |" in md
    assert "Every CAM method on `layer4`: gradcam " in md
    assert "![confusion_matrix](confusion_matrix.png)" in md and "| circle |" in md
