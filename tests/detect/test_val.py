"""Validation: validate() scores a dataset split by the COCO protocol (equal to pycocotools, crowd regions
included), its matching / P-R-F1 / confusion matrix equal Ultralytics' functions on the same inputs, and
`yololab val` scores real checkpoint files into a run folder."""

from __future__ import annotations

import json
import types
from copy import deepcopy

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import nn

from helpers import hash_tree, randomize_batchnorm, shared_data, ultralytics_model, yolov5_model
from yololab import cli
from yololab.data.dataset import DetectionDataset
from yololab.data.synthetic import synth_shapes
from yololab.detect.evaluate import COCO_STATS
from yololab.detect.metrics import ConfusionMatrix, correct_detections, f1_curves, ultralytics_map
from yololab.detect.val import val_loader, validate
from yololab.models.base import ModelMeta

IMGSZ = 96


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The shapes set (80 px images, letterboxed to 96) with an ignore-region json: a crowd box per image."""
    root = tmp_path_factory.mktemp("shapes")
    data_yaml = synth_shapes(root, train=1, val=12, imgsz=80, seed=3, workers=0, progress=False)
    images = sorted((root / "images" / "val").iterdir())
    coco = {"images": [{"id": i, "file_name": p.name} for i, p in enumerate(images, 1)],
            "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 2, "bbox": [2, 2, 20, 16], "iscrowd": 1}
                            for i in range(1, len(images) + 1, 2)]}
    (root / "annotations").mkdir()
    (root / "annotations" / "val.json").write_text(json.dumps(coco))
    with open(data_yaml, "a") as f:
        f.write("annotations:\n  val: annotations/val.json\n")
    return data_yaml


class Oracle(nn.Module):
    """A 'detector' whose eval output holds given boxes: each batch of the loader, in order, gets the labels of
    its images (jittered, with false positives, and a hit on every crowd region) as a (B, 4 + nc, A) tensor."""

    def __init__(self, dataset: DetectionDataset, batch: int, seed: int = 0, jitter: float = 0.0):
        super().__init__()
        nc = dataset.cfg.num_classes
        self.meta = ModelMeta(name="oracle", family="test", scale="", num_classes=nc, strides=[32],
                              anchor_based=False)
        g = np.random.default_rng(seed)
        self.outputs = []
        order = {f: i for i, f in enumerate(sorted(dataset.files), 1)}  # the image ids of the crowd json
        for b in val_loader(dataset, batch, 0):
            h, w = b["img"].shape[2:]
            per_image = []
            for i, (f, (gain, pad)) in enumerate(zip(b["im_file"], b["ratio_pad"])):
                mine = b["batch_idx"] == i
                cols = []
                for c, (cx, cy, bw, bh) in zip(b["cls"][mine, 0].tolist(), b["bboxes"][mine].tolist()):
                    size = np.array([bw * w, bh * h, bw * w, bh * h])
                    box = np.array([cx * w, cy * h, bw * w, bh * h]) + g.normal(0, jitter, 4) * size
                    cols.append((box, int(c), g.uniform(0.6, 1.0)))
                for _ in range(g.integers(0, 3)):  # false positives
                    cols.append((g.uniform(10, 60, 4), int(g.integers(nc)), g.uniform(0.01, 0.5)))
                if order[f] % 2:  # a 'square' on the image's crowd square (2, 2, 22, 18): ignored by the protocol
                    box = [12 * gain[0] + pad[0], 10 * gain[1] + pad[1], 20 * gain[0], 16 * gain[1]]
                    cols.append((np.array(box), 1, 0.95))
                out = torch.zeros(4 + nc, len(cols))
                for j, (box, c, s) in enumerate(cols):
                    out[:4, j] = torch.tensor(box, dtype=torch.float32)
                    out[4 + c, j] = s
                per_image.append(out)
            a = max(o.shape[1] for o in per_image)
            self.outputs.append(torch.stack([torch.nn.functional.pad(o, (0, a - o.shape[1])) for o in per_image]))
        self.calls = 0

    def forward(self, x):
        out = self.outputs[self.calls]
        assert out.shape[0] == x.shape[0]
        self.calls += 1
        return out


def _pycocotools(gt: dict, results: list[dict]):
    coco_gt = COCO()
    coco_gt.dataset = deepcopy(gt)
    coco_gt.createIndex()
    ev = COCOeval(coco_gt, coco_gt.loadRes(deepcopy(results)), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev


def test_exact_boxes_score_one_and_crowd_hits_are_ignored(shapes):
    ds = DetectionDataset(shapes, "val", imgsz=IMGSZ, augment=False, rect=True, batch_size=4, cache_dir=None,
                          verbose=False)
    model = Oracle(ds, 4).train()
    r = validate(model, ds, batch=4)
    assert model.training and model.calls == len(model.outputs)  # train mode restored
    gt = r.ground_truth
    assert sum(a["iscrowd"] for a in gt["annotations"]) == 6
    assert r.detections["ignored"].sum() == 6  # every hit on a crowd region, and nothing else
    assert r.metrics["mAP50-95"] > 0.999 and r.metrics["mAP50"] > 0.999
    # between the hits' and the false positives' scores: all right, nearly (the curves interpolate between them)
    assert 0.5 <= r.metrics["best_conf"] <= 0.6
    assert r.metrics["precision"] > 0.97 and r.metrics["recall"] > 0.97
    assert r.metrics["fitness"] == pytest.approx(0.1 * r.metrics["mAP50"] + 0.9 * r.metrics["mAP50-95"])
    assert sum(row["instances"] for row in r.per_class) == sum(not a["iscrowd"] for a in gt["annotations"])


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_pycocotools_with_crowd_regions(shapes, seed, tmp_path):
    ds = DetectionDataset(shapes, "val", imgsz=IMGSZ, augment=False, rect=True, batch_size=5, cache_dir=None,
                          verbose=False)
    r = validate(Oracle(ds, 5, seed=seed, jitter=0.05), ds, batch=5, save_dir=tmp_path, plots=seed == 0)
    ev = _pycocotools(r.ground_truth, r.predictions)
    np.testing.assert_allclose([r.metrics[k] for k in COCO_STATS], ev.stats, atol=1e-4)
    assert 0.2 < r.metrics["mAP50-95"] < 0.95  # a case where the numbers mean something
    precision = ev.eval["precision"][:, :, :, 0, -1]
    for row in r.per_class:
        p = precision[:, :, row["class"]]
        assert row["AP50-95"] == pytest.approx(p[p > -1].mean(), abs=1e-4)
        assert row["AP50"] == pytest.approx(p[0][p[0] > -1].mean(), abs=1e-4)
    if seed == 0:
        names = {p.name for p in r.plots}
        assert {"PR_curve.png", "F1_curve.png", "confusion_matrix.png", "confusion_matrix_normalized.png",
                "val_batch0_labels.jpg", "val_batch0_pred.jpg", "val_batch2_pred.jpg"} <= names
        assert all(p.stat().st_size > 1000 for p in r.plots)


def _random_detections(seed: int, n_images: int = 6, nc: int = 4):
    """Per image: (boxes best score first, scores, classes, gt boxes, gt classes), overlapping on purpose."""
    g = np.random.default_rng(seed)
    images = []
    for _ in range(n_images):
        m = int(g.integers(0, 6))
        gt = g.uniform(0, 50, (m, 2))
        gt = np.concatenate([gt, gt + g.uniform(5, 40, (m, 2))], 1)
        gt_cls = g.integers(0, nc, m)
        near = gt[g.integers(0, m, 8)] + g.normal(0, 3, (8, 4)) if m else np.zeros((0, 4))
        rand = g.uniform(0, 40, (3, 2))
        boxes = np.concatenate([near, np.concatenate([rand, rand + 10], 1)])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = np.sort(g.random(len(boxes)))[::-1].copy()
        near_cls = gt_cls[g.integers(0, m, len(near))] if m else np.zeros(0, np.int64)
        classes = np.concatenate([near_cls, g.integers(0, nc, 3)])
        classes = np.where(g.random(len(boxes)) < 0.8, classes, g.integers(0, nc, len(boxes)))
        images.append((boxes, scores, classes, gt, gt_cls))
    return images


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matching_and_best_f1_equal_ultralytics(seed):
    from ultralytics.models.yolo.detect.val import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class, box_iou

    ref_self = types.SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    stats = []
    for boxes, scores, classes, gt, gt_cls in _random_detections(seed):
        ours, ignored = correct_detections(boxes, classes, gt, gt_cls)
        theirs = DetectionValidator.match_predictions(ref_self, torch.from_numpy(classes), torch.from_numpy(gt_cls),
                                                      box_iou(torch.from_numpy(gt), torch.from_numpy(boxes)))
        np.testing.assert_array_equal(ours, theirs.numpy())
        assert not ignored.any()
        stats.append((ours, scores, classes, gt_cls))
    correct, conf, pred_cls, target_cls = (np.concatenate(x) for x in zip(*stats))
    _, _, p, r, f1, ap, classes, _, _, f1_curve, _, _ = ap_per_class(correct, conf, pred_cls, target_cls)
    curves = f1_curves(correct[:, 0], conf, pred_cls, target_cls)
    np.testing.assert_array_equal(curves.classes, classes)
    np.testing.assert_allclose(curves.f1, f1_curve, atol=1e-9)
    for ours, ref in zip(curves.at_best(), (p, r, f1)):
        np.testing.assert_allclose(ours, ref, atol=1e-9)
    u = ultralytics_map(correct, conf, pred_cls, target_cls)
    assert u == pytest.approx({"mAP50-95": ap.mean(), "mAP50": ap[:, 0].mean(), "mAP75": ap[:, 5].mean()})


def test_confusion_matrix_equals_ultralytics():
    from ultralytics.utils.metrics import ConfusionMatrix as Reference

    ours, ref = ConfusionMatrix(4), Reference(names={i: str(i) for i in range(4)})
    for boxes, scores, classes, gt, gt_cls in _random_detections(3, n_images=10):
        ours.update(boxes, scores, classes, gt, gt_cls)
        ref.process_batch({"bboxes": torch.from_numpy(boxes), "conf": torch.from_numpy(scores),
                           "cls": torch.from_numpy(classes)},
                          {"bboxes": torch.from_numpy(gt), "cls": torch.from_numpy(gt_cls)}, conf=0.25, iou_thres=0.45)
    np.testing.assert_array_equal(ours.matrix, ref.matrix)
    assert ours.matrix.sum() > 20


def test_crowd_region_ignores_only_unmatched_detections_inside_it():
    gt, gt_cls = np.array([[0, 0, 10, 10.0]]), np.array([0])
    crowd = np.array([[20, 20, 60, 60.0]])
    boxes = np.array([[0, 0, 10, 10], [25, 25, 35, 35], [50, 50, 80, 80.0]])  # a hit, inside, mostly outside
    correct, ignored = correct_detections(boxes, np.array([0, 0, 0]), gt, gt_cls, crowd, np.array([0]))
    assert correct[:, 0].tolist() == [True, False, False] and ignored.tolist() == [False, True, False]
    _, ignored = correct_detections(boxes, np.array([0, 0, 0]), gt, gt_cls, crowd, np.array([1]))
    assert not ignored.any()  # a crowd region of another class ignores nothing


def _save_ultralytics(path):
    model = randomize_batchnorm(ultralytics_model("yolov8n.yaml", nc=7))
    torch.save({"epoch": -1, "best_fitness": None, "model": None, "ema": deepcopy(model).half(), "updates": 0,
                "optimizer": None, "train_args": {"model": "yolov8n.yaml"}, "date": "2026-01-01",
                "version": "8.4.190"}, path)


def _save_yolov5(path):
    model = randomize_batchnorm(yolov5_model("yolov5n.yaml", nc=7))
    torch.save({"epoch": -1, "best_fitness": np.array([0.0]), "model": deepcopy(model).half(), "ema": None,
                "updates": None, "optimizer": None, "opt": {"cfg": "yolov5n.yaml"}, "date": "2026-01-01"}, path)


def _save_native(path):
    from yololab.checkpoint.native import save_checkpoint
    from yololab.models import build_model

    save_checkpoint(randomize_batchnorm(build_model("yolo11n", num_classes=7)), path)


@pytest.mark.slow
@pytest.mark.parametrize("save", [_save_ultralytics, _save_yolov5, _save_native])
def test_cli_scores_checkpoint_files(save, tmp_path, capsys, monkeypatch):
    root = tmp_path / "shapes"
    data = synth_shapes(root, train=1, val=4, imgsz=64, seed=1, workers=0, progress=False)
    before = hash_tree(root)
    save(tmp_path / "w.pt")
    monkeypatch.chdir(tmp_path)
    argv = ["val", "--weights", "w.pt", "--data", str(data), "--imgsz", "64", "--workers", "0", "--quiet",
            "--no-plots", "--compare-ultralytics"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "all" in out and "Ultralytics" in out and "101 fixed recall points" in out
    run = tmp_path / "runs" / "val" / "val"
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"mAP50-95", "precision", "recall", "f1", "fitness", "AR100"} <= set(metrics["metrics"])
    assert set(metrics["ultralytics_style"]) == {"mAP50-95", "mAP50", "mAP75"}
    assert (run / "metrics.csv").read_text().startswith("Class,Images,Instances,P,R,mAP50,mAP50-95\nall,4,")
    assert isinstance(json.loads((run / "predictions.json").read_text()), list)
    assert "## Per class" in (run / "report.md").read_text()
    assert hash_tree(root) == before  # the dataset is only read
    assert cli.main(argv) == 2 and "pass --exist-ok" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_on_coco8(tmp_path, capsys):
    """Real photographs through the whole command: plots and report.md embedding them."""
    _save_ultralytics_80 = randomize_batchnorm(ultralytics_model("yolov8n.yaml"))
    torch.save({"epoch": -1, "best_fitness": None, "model": None, "ema": deepcopy(_save_ultralytics_80).half(),
                "updates": 0, "optimizer": None, "train_args": {"model": "yolov8n.yaml"}}, tmp_path / "w.pt")
    data = shared_data("coco8", "coco8.yaml")
    before = hash_tree(data.parent)
    assert cli.main(["val", "--weights", str(tmp_path / "w.pt"), "--data", str(data), "--imgsz", "128",
                     "--workers", "0", "--quiet", "--project", str(tmp_path / "runs"), "--name", "coco8"]) == 0
    run = tmp_path / "runs" / "coco8"
    report = (run / "report.md").read_text()
    for name in ("PR_curve.png", "F1_curve.png", "confusion_matrix.png", "val_batch0_labels.jpg",
                 "val_batch0_pred.jpg"):
        assert (run / name).is_file() and f"({name})" in report
    assert "person" in capsys.readouterr().out
    assert hash_tree(data.parent) == before


@pytest.mark.parametrize("imgsz, data, expected", [
    ("100", "shapes", "imgsz 100 is not a multiple of yolo11n's largest stride 32"),  # 7 classes: only the size
    ("64", "coco8", "the weights predict 7 classes"),  # coco8 has 80
    ("64", "val: images/nope", "field 'val': folder"),
    ("64", "", "field 'val' is missing"),
])
def test_cli_refuses_weights_or_data_that_do_not_fit(imgsz, data, expected, tmp_path, capfd):
    """One error line, exit 2, nothing written: weights for another class count, an image size off the stride,
    a data.yaml without its val split or with a missing folder."""
    _save_native(tmp_path / "w.pt")
    if data == "coco8":
        data = shared_data("coco8", "coco8.yaml")
    elif data == "shapes":
        data = synth_shapes(tmp_path / "shapes", train=1, val=1, imgsz=64, seed=1, workers=0, progress=False)
    else:  # coco8's images under a data.yaml of the user's
        images = shared_data("coco8", "images", "train")
        (tmp_path / "data.yaml").write_text(f"train: {images}\n{data}\nnames: {{0: person}}\n")
        data = tmp_path / "data.yaml"
    before = hash_tree(tmp_path)
    rc = cli.main(["val", "--weights", str(tmp_path / "w.pt"), "--data", str(data), "--imgsz", imgsz,
                   "--project", str(tmp_path / "runs")])
    err = capfd.readouterr().err.splitlines()
    assert rc == 2 and len(err) == 1 and expected in err[0], err
    assert hash_tree(tmp_path) == before
