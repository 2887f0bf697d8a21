"""The Darknet-style YOLOv3 loss against Darknet's own rules (pjreddie/darknet src/yolo_layer.c).

There is no Python reference package for it, so:

* a hand-computed case (one truth, zero logits) checks each term's value and gradient;
* :func:`darknet_deltas` transcribes ``forward_yolo_layer`` / ``delta_yolo_box`` / ``delta_yolo_class`` loop
  for loop (slow, tiny inputs only); the gradient of our loss w.r.t. the raw predictions must equal minus
  that ``delta`` (Darknet's backward copies ``delta`` into the previous layer's gradient as is), on cases
  built to reach every branch: ignored negatives, a truth whose best anchor is on another level, two truths
  on one cell and anchor.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import shared_data

from yololab.detect.autoanchor import apply_anchors
from yololab.detect.loss import DarknetLoss, LossHyp, anchor_levels, build_loss
from yololab.errors import ConfigError
from yololab.models import build_model
from yololab.models.darknet_cfg import DarknetNet

ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def overlap(x1, w1, x2, w2):  # box.c
    left = max(x1 - w1 / 2, x2 - w2 / 2)
    right = min(x1 + w1 / 2, x2 + w2 / 2)
    return right - left


def box_iou(a, b):  # box.c: boxes are (x, y, w, h)
    w, h = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if w < 0 or h < 0 else w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def delta_yolo_box(delta, x, truth, b, k, j, i, anchor, scale, lw, lh, net_w, net_h):
    """delta_yolo_box: x, y towards the offset in the cell, w, h towards log(size / anchor), times scale."""
    tx, ty = truth[0] * lw - i, truth[1] * lh - j
    tw, th = math.log(truth[2] * net_w / anchor[0]), math.log(truth[3] * net_h / anchor[1])
    for c, t in enumerate((tx, ty, tw, th)):
        delta[b, k, j, i, c] = scale * (t - x[b, k, j, i, c])


def delta_yolo_class(delta, out, b, k, j, i, class_id):
    """delta_yolo_class: if this cell and anchor already has class deltas, only add this class."""
    if delta[b, k, j, i, 5 + class_id]:
        delta[b, k, j, i, 5 + class_id] = 1 - out[b, k, j, i, 5 + class_id]
        return
    for c in range(delta.shape[-1] - 5):
        delta[b, k, j, i, 5 + c] = (1.0 if c == class_id else 0.0) - out[b, k, j, i, 5 + c]


def darknet_deltas(raw, truths, anchors, masks, net_w, net_h, ignore_thresh=0.7):
    """``delta`` of every [yolo] layer, as forward_yolo_layer computes it.

    raw: per level (B, n, h, w, 5 + nc) float64 arrays; truths: per image a list of (x, y, w, h, class)
    normalised; anchors: flat list of all (w, h) in pixels; masks: per level the anchor indices it uses."""
    deltas = []
    for level, x in enumerate(raw):
        bs, n, lh, lw, _ = x.shape
        out = x.copy()
        out[..., :2] = sigmoid(x[..., :2])  # Darknet activates x, y and objectness + classes, not w, h
        out[..., 4:] = sigmoid(x[..., 4:])
        delta = np.zeros_like(x)
        mask = masks[level]
        for b in range(bs):
            for j in range(lh):
                for i in range(lw):
                    for k in range(n):
                        aw, ah = anchors[mask[k]]
                        pred = ((i + out[b, k, j, i, 0]) / lw, (j + out[b, k, j, i, 1]) / lh,
                                math.exp(out[b, k, j, i, 2]) * aw / net_w, math.exp(out[b, k, j, i, 3]) * ah / net_h)
                        best_iou = 0.0
                        for t in truths[b]:
                            best_iou = max(best_iou, box_iou(pred, t[:4]))
                        delta[b, k, j, i, 4] = 0 - out[b, k, j, i, 4]
                        if best_iou > ignore_thresh:
                            delta[b, k, j, i, 4] = 0
            for t in truths[b]:
                best_iou, best_n = 0.0, 0
                for m, (aw, ah) in enumerate(anchors):
                    iou = box_iou((0, 0, aw / net_w, ah / net_h), (0, 0, t[2], t[3]))
                    if iou > best_iou:
                        best_iou, best_n = iou, m
                if best_n in mask:
                    k = mask.index(best_n)
                    i, j = int(t[0] * lw), int(t[1] * lh)
                    delta_yolo_box(delta, out, t, b, k, j, i, anchors[best_n], 2 - t[2] * t[3], lw, lh, net_w, net_h)
                    delta[b, k, j, i, 4] = 1 - out[b, k, j, i, 4]
                    delta_yolo_class(delta, out, b, k, j, i, int(t[4]))
        deltas.append(delta)
    return deltas


def make_batch(truths):
    rows = [(b, t[4], *t[:4]) for b, ts in enumerate(truths) for t in ts]
    t = torch.tensor(rows, dtype=torch.float32).view(-1, 6)
    return {"batch_idx": t[:, 0], "cls": t[:, 1:2], "bboxes": t[:, 2:6]}


@pytest.fixture(scope="module")
def model():
    return build_model("yolov3", num_classes=3)  # darknet style by default


def run(loss_fn, raw, truths):
    """Our loss on ``raw`` (float32 leaves) -> total, parts, gradient per level (float64 arrays)."""
    preds = [torch.tensor(x, dtype=torch.float32, requires_grad=True) for x in raw]
    total, parts = loss_fn(preds, make_batch(truths))
    total.backward()
    return total, parts, [p.grad.double().numpy() for p in preds]


def test_build_loss_picks_darknet_style(model):
    assert isinstance(build_loss(model), DarknetLoss)


def test_one_truth_by_hand(model):
    """Zero logits: every prediction is its anchor at its cell centre. The truth is anchor 0 (10x13) at the
    centre of cell (3, 2) of the stride-8 level of a 64x64 input; only that prediction overlaps it > 0.7."""
    nc, size = 3, 64
    raw = [np.zeros((1, 3, size // s, size // s, 5 + nc)) for s in (8, 16, 32)]
    truth = ((3.5 * 8) / size, (2.5 * 8) / size, 10 / size, 13 / size, 1)
    total, parts, g = run(build_loss(model), raw, [[truth]])
    scale = 2 - truth[2] * truth[3]
    n_pred = sum(x[..., 0].size for x in raw)
    log2 = math.log(2)
    assert parts["box_loss"].item() == pytest.approx(2 * scale * log2, rel=1e-6)  # BCE(0, 0.5) = log 2; tw = th = 0
    assert parts["obj_loss"].item() == pytest.approx(n_pred * log2, rel=1e-6)  # every prediction: BCE(0, 0 or 1)
    assert parts["cls_loss"].item() == pytest.approx(nc * log2, rel=1e-6)
    assert total.item() == pytest.approx((2 * scale + n_pred + nc) * log2, rel=1e-6)
    pos = g[0][0, 0, 2, 3]
    np.testing.assert_allclose(pos[:4], 0, atol=1e-7)  # x, y, w, h already right
    assert pos[4] == pytest.approx(-0.5)  # objectness pushed up: sigmoid(0) - 1
    np.testing.assert_allclose(pos[5:], [0.5, -0.5, 0.5], atol=1e-7)
    obj = np.concatenate([x[..., 4].ravel() for x in g])
    assert (obj == 0.5).sum() == n_pred - 1  # every other prediction: a negative


def random_case(seed):
    """Random predictions (96x96 input, 2 images) plus three planted situations: (a) a prediction placed exactly
    on truth 0 at an anchor other than its best (ignored: no objectness gradient); (b) truths 1 and 2, of
    different classes and nearly one shape, in one cell (class union, the last box wins); (c) a big truth
    whose best anchor is on the coarsest level."""
    rng = np.random.default_rng(seed)
    nc, size = 3, 96
    raw = [rng.normal(0, 0.5, (2, 3, size // s, size // s, 5 + nc)) for s in (8, 16, 32)]
    truths = [[(0.30, 0.40, 0.20, 0.25, 0), (0.52, 0.52, 0.10, 0.12, 2), (0.53, 0.51, 0.11, 0.12, 1),
               (0.50, 0.50, 0.90, 0.80, 1)],
              [(0.71, 0.22, 0.05, 0.07, 2), (0.25, 0.75, 0.40, 0.35, 0)]]
    # (a): truth 0 (19x24 px, best anchor 16x30 on stride 8) decoded exactly by the stride-16 level's anchor
    # 2 (59x119) in the truth's cell (x=1, y=2)
    x, y, w, h, _ = truths[0][0]
    lw = size // 16
    i, j = int(x * lw), int(y * lw)
    raw[1][0, 2, j, i, 0] = math.log((x * lw - i) / (1 - (x * lw - i)))
    raw[1][0, 2, j, i, 1] = math.log((y * lw - j) / (1 - (y * lw - j)))
    raw[1][0, 2, j, i, 2] = math.log(w * size / 59)
    raw[1][0, 2, j, i, 3] = math.log(h * size / 119)
    return raw, truths


@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_is_darknet_delta(model, seed):
    raw, truths = random_case(seed)
    anchors = [(a[k], a[k + 1]) for a in ANCHORS for k in (0, 2, 4)]
    masks = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    deltas = darknet_deltas(raw, truths, anchors, masks, 96, 96, ignore_thresh=0.7)
    _, _, g = run(build_loss(model), raw, truths)
    for d, gr in zip(deltas, g):
        np.testing.assert_allclose(gr, -d, atol=2e-6, rtol=1e-5)
    # every planted situation was reached
    assert deltas[1][0, 2, 2, 1, 4] == 0  # (a) ignored
    cell = deltas[0][0, :, 6, 6]  # (b) truths 1 and 2 both in cell (6, 6) of the 12x12 level
    assigned = np.nonzero(cell[:, 4] > 0)[0]
    assert len(assigned) == 1
    probs = sigmoid(raw[0][0, assigned[0], 6, 6, 5:])
    np.testing.assert_allclose(cell[assigned[0], 5:], np.array([0, 1, 1]) - probs, atol=1e-12)
    assert np.any(deltas[2][0, :, 1, 1, 4] > 0)  # (c) the big truth on the 3x3 level


def test_zero_size_truth_is_left_out(model):
    raw, truths = random_case(0)
    _, parts, _ = run(build_loss(model), raw, truths)
    truths[1].append((0.5, 0.5, 0.0, 0.1, 1))  # a zero-width label: Darknet's log(0) would be -inf
    _, parts0, _ = run(build_loss(model), raw, truths)
    assert {k: v.item() for k, v in parts.items()} == {k: v.item() for k, v in parts0.items()}


def test_ignore_thresh_is_read(model):
    raw, truths = random_case(0)
    _, _, g = run(build_loss(model, LossHyp(ignore_thresh=1.0)), raw, truths)  # nothing ignored
    assert g[1][0, 2, 2, 1, 4] > 0


def test_cfg_network_trains_with_the_same_loss(tmp_path):
    """A network from Darknet's yolov3-tiny.cfg gets the Darknet loss, with the same anchors and value as the
    zoo's yolov3-tiny; auto-anchor writes its [yolo] layers' buffers; masks that do not use each anchor once
    (the original yolov3-tiny.cfg's 1,2,3) are refused."""
    tiny_cfg = shared_data("darknet", "yolov3-tiny.cfg")
    net = DarknetNet(tiny_cfg, num_classes=3)
    zoo = build_model("yolov3-tiny", num_classes=3)
    levels, strides = anchor_levels(net)
    assert torch.equal(torch.stack(levels), zoo.head.anchors) and strides == [16, 32]
    rng = np.random.default_rng(0)
    raw = [rng.normal(0, 0.5, (2, 3, 96 // s, 96 // s, 8)) for s in (16, 32)]
    truths = [[(0.3, 0.4, 0.2, 0.25, 0), (0.6, 0.5, 0.7, 0.6, 2)], [(0.7, 0.2, 0.05, 0.07, 1)]]
    t1, _, g1 = run(build_loss(net), raw, truths)
    t2, _, g2 = run(build_loss(zoo), raw, truths)
    assert t1.item() == t2.item() and all(np.array_equal(a, b) for a, b in zip(g1, g2))

    apply_anchors(net, torch.arange(1, 13, dtype=torch.float32).view(6, 2))
    assert net.state_dict()[f"layers.{net.yolo_layers[0]}.anchors"].tolist() == [[1, 2], [3, 4], [5, 6]]

    text = tiny_cfg.read_text()
    cfg = tmp_path / "tiny-123.cfg"
    cfg.write_text(text.replace("mask = 0,1,2", "mask = 1,2,3"))
    with pytest.raises(ConfigError, match="must use each of the 6 anchors exactly once"):
        build_loss(DarknetNet(cfg, num_classes=3))


def test_ignore_iou_is_torchvision_box_iou_in_bounded_chunks():
    """The ignore step's best IoU per prediction equals torchvision's box_iou image by image, however the batch
    is chunked (max_elements=1: one image at a time), images without truths giving 0."""
    from torchvision.ops import box_iou

    from yololab.detect.assign import max_iou_per_box

    g = torch.Generator().manual_seed(0)
    xy, wh = torch.rand(3, 50, 2, generator=g) * 80, torch.rand(3, 50, 2, generator=g) * 30 + 1
    boxes = torch.cat((xy, xy + wh), -1)
    gxy, gwh = torch.rand(3, 4, 2, generator=g) * 80, torch.rand(3, 4, 2, generator=g) * 30 + 1
    gt = torch.cat((gxy, gxy + gwh), -1)
    valid = torch.tensor([[True, True, True, False], [False] * 4, [True, True, False, False]])
    for budget in (1, 1 << 23):
        best = max_iou_per_box(boxes, gt, valid, max_elements=budget)
        for b in range(3):
            want = box_iou(boxes[b], gt[b][valid[b]]).amax(1) if valid[b].any() else torch.zeros(50)
            torch.testing.assert_close(best[b], want)
