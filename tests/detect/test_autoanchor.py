"""Auto-anchor: the BPR check equals yolov5's ``check_anchors`` (yolov5 7.0.14, utils/autoanchor.py) on the same
boxes, k-means + evolution finds a known structure, is seeded, and the anchors land in the checkpoint."""

from __future__ import annotations

import contextlib
import io
import logging
import random
import re

import numpy as np
import pytest
import torch
from helpers import yolov5_model
from yolov5.utils.autoanchor import check_anchors as v5_check_anchors
from yolov5.utils.autoanchor import kmean_anchors as v5_kmean_anchors
from yolov5.utils.general import LOGGER as V5_LOGGER

from yololab.detect.autoanchor import (anchor_fitness, anchor_metrics, apply_anchors, check_anchors, kmean_anchors,
                                       label_wh)
from yololab.detect.loss import anchor_levels, build_loss
from yololab.errors import DataError
from yololab.models import build_model

# nine box shapes (w, h) in pixels at 640, the structure k-means should find
CLUSTERS = np.array([(12, 16), (20, 36), (40, 28), (36, 72), (76, 56), (70, 140), (140, 110), (190, 240), (420, 380)])


def synthetic_labels(n_images: int = 60, size: float = 1.0, seed: int = 0):
    """Per image (n, 5) labels ``class, x, y, w, h`` normalised and (h, w) shapes; box sizes (at imgsz 640)
    are the CLUSTERS times ``size``, +-5 %."""
    rng = np.random.default_rng(seed)
    shapes = np.array([(480, 640), (640, 480), (640, 640), (360, 640)])[rng.integers(0, 4, n_images)]
    labels = []
    for h, w in shapes:
        rw, rh = 640 * w / max(h, w), 640 * h / max(h, w)  # the image at imgsz 640
        k = rng.integers(0, len(CLUSTERS), 8)
        wh = CLUSTERS[k] * size * (1 + 0.05 * rng.standard_normal((8, 2)))
        wh = np.minimum(wh, [rw, rh])
        xy = rng.uniform(0.3, 0.7, (8, 2))
        labels.append(np.column_stack((k % 3, xy, wh / [rw, rh])).astype(np.float32))
    return labels, shapes


class V5Dataset:
    """What yolov5's auto-anchor reads from its dataset: ``shapes`` as (w, h) and ``labels``."""

    def __init__(self, labels, shapes_hw):
        self.labels, self.shapes = labels, shapes_hw[:, ::-1].copy()


@contextlib.contextmanager
def yolov5_log():
    """Collect yolov5's LOGGER messages (and silence its progress bars)."""
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    level = V5_LOGGER.level
    V5_LOGGER.addHandler(handler)
    V5_LOGGER.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield records
    finally:
        V5_LOGGER.removeHandler(handler)
        V5_LOGGER.setLevel(level)


@pytest.fixture()
def v5_model():
    return yolov5_model("yolov5n.yaml", nc=3)


@pytest.mark.parametrize("size", [1.0, 0.15], ids=["good-fit", "poor-fit"])
def test_bpr_matches_yolov5_check_anchors(v5_model, size):
    labels, shapes = synthetic_labels(size=size)
    ours_anchors = torch.cat(anchor_levels(build_model("yolov5n", num_classes=3))[0])
    np.random.seed(0)
    jitter = np.random.uniform(0.9, 1.1, size=(len(labels), 1))  # what check_anchors draws first
    np.random.seed(0)
    random.seed(0)
    with yolov5_log() as log:
        v5_check_anchors(V5Dataset(labels, shapes), v5_model, thr=4.0, imgsz=640)
    text = "\n".join(log)
    found = re.search(r"([\d.]+) anchors/target, ([\d.]+) Best Possible Recall", text)
    assert found, text
    bpr, aat = anchor_metrics(label_wh(labels, shapes, 640, scale=jitter), ours_anchors, 4.0)
    assert (f"{aat:.2f}", f"{bpr:.3f}") == found.groups()
    if size == 1.0:
        assert bpr > 0.98 and "good fit" in text
        return
    # poor fit: yolov5 evolved new anchors and reports their BPR on the unjittered boxes (4 decimals)
    assert bpr < 0.98
    m = v5_model.model[-1]
    new = (m.anchors * m.stride.view(-1, 1, 1)).view(-1, 2)
    found = re.search(r"thr=0.25: ([\d.]+) best possible recall, ([\d.]+) anchors past thr", text)
    assert found, text
    new_bpr, new_aat = anchor_metrics(label_wh(labels, shapes, 640), new, 4.0)
    assert (f"{new_bpr:.4f}", f"{new_aat:.2f}") == found.groups()


def test_kmeans_evolution_finds_the_structure_and_is_seeded():
    labels, shapes = synthetic_labels(size=0.3)
    wh = label_wh(labels, shapes, 640)
    initial = torch.cat(anchor_levels(build_model("yolov5n", num_classes=3))[0])
    new = kmean_anchors(wh, 9, thr=4.0, gen=300, seed=0)
    assert anchor_fitness(wh, new) > anchor_fitness(wh, initial) + 0.05
    assert anchor_metrics(wh, new)[0] == 1.0
    assert torch.all(new.prod(1)[1:] >= new.prod(1)[:-1])  # sorted by area
    # every cluster has an anchor within 15 % in both sides
    truth = torch.tensor(CLUSTERS * 0.3, dtype=torch.float32)
    ratio = torch.max(new[None] / truth[:, None], truth[:, None] / new[None]).max(2)[0]
    assert (ratio.min(1)[0] < 1.15).all(), ratio.min(1)[0]
    assert torch.equal(new, kmean_anchors(wh, 9, thr=4.0, gen=300, seed=0))


def test_kmean_anchors_as_fit_as_yolov5():
    """Same boxes, same generations: our anchors fit at least as well as yolov5's kmean_anchors (up to 1 %)."""
    labels, shapes = synthetic_labels(size=0.5, seed=1)
    np.random.seed(0)
    random.seed(0)
    with yolov5_log():
        ref = torch.tensor(v5_kmean_anchors(V5Dataset(labels, shapes), n=9, img_size=640, thr=4.0, gen=300,
                                            verbose=False))
    wh = label_wh(labels, shapes, 640)
    assert anchor_fitness(wh, kmean_anchors(wh, 9, gen=300, seed=0)) >= 0.99 * anchor_fitness(wh, ref)


def test_check_anchors_replaces_into_buffer_checkpoint_and_loss():
    model = build_model("yolov5n", num_classes=3)
    loss = build_loss(model, imgsz=640)
    g = torch.Generator().manual_seed(0)
    preds = [torch.randn(1, 3, 64 // s, 64 // s, 8, generator=g) for s in (8, 16, 32)]
    batch = {"batch_idx": torch.zeros(4), "cls": torch.zeros(4, 1),
             "bboxes": torch.tensor([[0.5, 0.5, 0.05, 0.06], [0.3, 0.3, 0.03, 0.05], [0.6, 0.4, 0.1, 0.08],
                                     [0.2, 0.7, 0.2, 0.1]])}
    before = loss(preds, batch)[0]

    labels, shapes = synthetic_labels(size=0.15)
    result = check_anchors(model, labels, shapes, 640, gen=200, seed=0)
    assert result.replaced and result.new_bpr > result.bpr, result.message
    assert torch.equal(model.head.anchors.view(-1, 2), result.anchors)
    # the anchors travel in the state dict: a fresh model loading it has them
    fresh = build_model("yolov5n", num_classes=3)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.head.anchors, model.head.anchors)
    # a loss built before reads the new anchors
    assert not torch.equal(loss(preds, batch)[0], before)
    assert torch.equal(loss(preds, batch)[0], build_loss(model, imgsz=640)(preds, batch)[0])

    kept = check_anchors(build_model("yolov5n", num_classes=3), *synthetic_labels(size=1.0), 640)
    assert not kept.replaced and kept.new_bpr is None and "fit" in kept.message


def test_apply_anchors_sorts_by_area_per_level():
    model = build_model("yolov3-tiny", num_classes=2)
    new = torch.tensor([[300.0, 300], [5, 6], [50, 60], [10, 12], [100, 90], [20, 25]])
    apply_anchors(model, new)
    assert model.head.anchors.tolist() == [[[5, 6], [10, 12], [20, 25]], [[50, 60], [100, 90], [300, 300]]]
    with pytest.raises(DataError, match="6 anchors"):
        apply_anchors(model, new[:4])


def test_label_wh_bad_input():
    with pytest.raises(DataError, match="no boxes"):
        label_wh([np.zeros((0, 5))], np.array([[480, 640]]), 640)
    with pytest.raises(DataError, match="2 label arrays but 1 image shapes"):
        label_wh([np.zeros((1, 5))] * 2, np.array([[480, 640]]), 640)
    # a 640x480 (w x h) image at imgsz 320: a box of half its width and a quarter of its height is 160 x 60 px
    wh = label_wh([np.array([[0, 0.5, 0.5, 0.5, 0.25]])], np.array([[480, 640]]), 320)
    assert wh.tolist() == [[160.0, 60.0]]
