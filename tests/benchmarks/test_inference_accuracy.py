"""The evaluation half of benchmarks/inference_accuracy.py: decode + NMS + COCO mAP on a tiny synth set.

No training here: the ground truth itself, written as a model's raw eval output, must score mAP 1.0, and
boxes moved by a few pixels must score less (so the chain can fail).
"""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
IMGSZ = 96


def _load_script():
    spec = importlib.util.spec_from_file_location("bench_inference_accuracy",
                                                  ROOT / "benchmarks" / "inference_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_inference_accuracy"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from yololab.data.synthetic import synth_shapes

    bench = _load_script()
    # 80 px images letterboxed to 96: gain 1.2 and a pad, so the mapping back to image pixels is exercised
    data_yaml = synth_shapes(tmp_path_factory.mktemp("shapes"), train=1, val=12, imgsz=80, seed=3, workers=0,
                             progress=False)
    gt, images = bench.load_split(data_yaml, "val", IMGSZ)
    return bench, gt, images


def _ground_truth_as_output(gt: dict, image_id: int, gain, pad, nc: int, shift: float = 0.0) -> torch.Tensor:
    """A (1, 4 + nc, A) eval output holding this image's labelled boxes (letterboxed, cx cy w h), score 0.9,
    plus low-scoring clutter anchors that conf 0.001 keeps and NMS must handle."""
    anns = [a for a in gt["annotations"] if a["image_id"] == image_id]
    columns = []
    for a in anns:
        x, y, w, h = a["bbox"]
        cx, cy = (x + w / 2) * gain[0] + pad[0] + shift, (y + h / 2) * gain[1] + pad[1]
        col = torch.zeros(4 + nc)
        col[:4] = torch.tensor([cx, cy, w * gain[0], h * gain[1]])
        col[4 + a["category_id"] - 1] = 0.9
        columns.append(col)
    clutter = torch.zeros(4 + nc, 20)
    clutter[:2] = torch.rand(2, 20) * IMGSZ
    clutter[2:4] = 4.0
    clutter[4:] = torch.rand(nc, 20) * 0.01
    out = torch.cat([torch.stack(columns, 1) if columns else torch.zeros(4 + nc, 0), clutter], 1)
    return out.unsqueeze(0)


def test_ground_truth_scores_map_one(split):
    bench, gt, images = split
    nc = len(gt["categories"])
    assert len(images) == 12 and len(gt["annotations"]) > 10
    assert all(x.shape == (1, 3, IMGSZ, IMGSZ) for _, x, _, _ in images)
    torch.manual_seed(0)
    exact, shifted = [], []
    for image_id, _, gain, pad in images:
        exact += bench.detections(_ground_truth_as_output(gt, image_id, gain, pad, nc), image_id, gain, pad)
        shifted += bench.detections(_ground_truth_as_output(gt, image_id, gain, pad, nc, shift=3.0),
                                    image_id, gain, pad)
    m, m50 = bench.coco_map(gt, exact)
    assert m == pytest.approx(1.0, abs=1e-6) and m50 == pytest.approx(1.0, abs=1e-6)
    m_shift, m50_shift = bench.coco_map(gt, shifted)
    assert m_shift < 0.9  # 3 px (2.5 image px) off: the high IoU thresholds fail for small boxes
    assert bench.coco_map(gt, []) == (0.0, 0.0)


def test_detections_follow_ultralytics_val_rules(split):
    bench, *_ = split
    nc = 3
    out = torch.zeros(1, 4 + nc, 4)
    out[0, :4] = torch.tensor([[50.0, 50.0, 80.0, 50.0],  # per anchor: cx, cy, w, h
                               [50.5, 50.0, 80.0, 50.0],
                               [20.0, 20.0, 20.0, 20.0],
                               [20.0, 20.0, 20.0, 20.0]]).T
    out[0, 4:, 0] = torch.tensor([0.8, 0.0005, 0.6])  # one anchor, two classes above conf: two detections
    out[0, 4:, 1] = torch.tensor([0.7, 0.0, 0.0])     # overlaps anchor 0 (same class, same box): suppressed
    out[0, 4:, 2] = torch.tensor([0.0, 0.3, 0.0])
    out[0, 4:, 3] = torch.tensor([0.0, 0.0009, 0.0])  # below conf 0.001: dropped
    dets = bench.detections(out, 7, (2.0, 2.0), (10, 0))
    assert [(d["category_id"], round(d["score"], 2)) for d in dets] == [(1, 0.8), (3, 0.6), (2, 0.3)]
    assert all(d["image_id"] == 7 for d in dets)
    # box 2: cx 20 cy 20 w 20 h 20 letterboxed -> x1 (10 - 10) / 2 = 0, y1 10 / 2 = 5, w 10, h 10
    assert dets[2]["bbox"] == pytest.approx([0.0, 5.0, 10.0, 10.0])
