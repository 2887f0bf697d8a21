"""COCO evaluation: our coco_map equals pycocotools' numbers; ground truth written as a model's output scores
mAP 1.0 through the whole chain (decode, NMS, letterbox inverse, COCO results), shifted boxes score less."""

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from yololab.data.synthetic import synth_shapes
from yololab.detect.evaluate import COCO_STATS, coco_map, coco_results, ground_truth, match_detections
from yololab.detect.postprocess import Detections, postprocess, to_image
from yololab.detect.preprocess import load_input

IMGSZ = 96


def _random_case(seed: int = 0) -> tuple[dict, list[dict]]:
    """Ground truth with crowd regions and small / medium / large boxes, and noisy detections of it."""
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    for image_id in range(1, 7):
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 640, "height": 480})
        for _ in range(rng.integers(1, 8)):
            w, h = rng.uniform(8, 200, 2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            cat, crowd = int(rng.integers(1, 4)), int(rng.random() < 0.1)
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": crowd, "segmentation": []})
            for _ in range(rng.integers(0, 3)):  # hits, near misses and duplicates
                jitter = rng.normal(0, 0.1, 4) * [w, h, w, h]
                results.append({"image_id": image_id, "category_id": cat, "score": float(rng.random()),
                                "bbox": [float(v) for v in np.abs(np.array([x, y, w, h]) + jitter)]})
        for _ in range(rng.integers(0, 4)):  # false positives
            results.append({"image_id": image_id, "category_id": int(rng.integers(1, 4)), "score": float(rng.random()),
                            "bbox": [float(v) for v in rng.uniform(0, 300, 4)]})
    cats = [{"id": i, "name": f"c{i}", "supercategory": ""} for i in (1, 2, 3)]
    return {"images": images, "annotations": anns, "categories": cats}, results


@pytest.mark.parametrize("seed", [0, 1])
def test_coco_map_equals_pycocotools(seed):
    gt, results = _random_case(seed)
    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    ev = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    ours = coco_map(gt, results)
    assert list(ours) == list(COCO_STATS)
    np.testing.assert_allclose([ours[k] for k in COCO_STATS], ev.stats, atol=1e-12)
    assert 0.1 < ours["mAP50-95"] < 0.9  # a case where the numbers mean something


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    # 80 px images letterboxed to 96: gain 1.2 and a pad, so the mapping back to image pixels is exercised
    data_yaml = synth_shapes(tmp_path_factory.mktemp("shapes"), train=1, val=12, imgsz=80, seed=3, workers=0,
                             progress=False)
    gt, paths = ground_truth(data_yaml, "val")
    return gt, [(image_id, *load_input(p, IMGSZ)) for image_id, p in enumerate(paths, start=1)]


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
    gt, images = split
    nc = len(gt["categories"])
    assert len(images) == 12 and len(gt["annotations"]) > 10
    assert all(x.shape == (1, 3, IMGSZ, IMGSZ) and shape == (80, 80) for _, x, _, _, shape in images)
    torch.manual_seed(0)
    exact, shifted = [], []
    for image_id, _, gain, pad, shape in images:
        for out, results in ((_ground_truth_as_output(gt, image_id, gain, pad, nc), exact),
                             (_ground_truth_as_output(gt, image_id, gain, pad, nc, shift=3.0), shifted)):
            results += coco_results(to_image(postprocess(out)[0], gain, pad, shape), image_id)
    m = coco_map(gt, exact)
    assert m["mAP50-95"] == pytest.approx(1.0, abs=1e-6) and m["mAP50"] == pytest.approx(1.0, abs=1e-6)
    assert coco_map(gt, shifted)["mAP50-95"] < 0.9  # 3 px (2.5 image px) off: high IoU thresholds fail
    assert coco_map(gt, []) == dict.fromkeys(COCO_STATS, 0.0)


def test_match_detections_pairs_same_class_by_iou():
    a = Detections(torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60.0]]), torch.tensor([0.9, 0.8, 0.7]),
                   torch.tensor([0, 1, 0]))
    b = Detections(torch.tensor([[20, 20, 30, 30.5], [0, 0, 10, 10], [50, 50, 60, 60.0]]), torch.tensor([0.8, 0.9, 0.1]),
                   torch.tensor([1, 0, 1]))  # the third is another class
    pairs = list(match_detections(a, b, iou=0.9))
    assert [(i, j) for i, j, _ in pairs] == [(0, 1), (1, 0)]
    assert pairs[0][2] == 1.0 and pairs[1][2] == pytest.approx(100 / 105)
    assert list(match_detections(a, Detections(*(t[:0] for t in b)))) == []
