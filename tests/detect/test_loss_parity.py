"""Our losses give the reference packages' values and gradients on identical predictions and targets.

References (imported plainly: a missing package fails these tests):

* ``ultralytics.utils.loss.v8DetectionLoss`` (ultralytics 8.4.190) on a ``DetectionModel`` built offline from
  ``yolov8n.yaml`` / ``yolo11n.yaml`` with ``model.args = get_cfg()`` (box 7.5, cls 0.5, dfl 1.5). Its
  ``(loss * batch_size, {box_loss, cls_loss, dfl_loss})``: our total is ``loss.sum()`` (what its trainer
  backpropagates), our parts its dict; and its ``ultralytics.utils.tal.TaskAlignedAssigner`` directly.
* ``yolov5.utils.loss.ComputeLoss`` (yolov5 7.0.14) on a ``yolov5.models.yolo.Model`` built from
  ``models/yolov5n.yaml``, ``models/hub/yolov3.yaml`` and ``models/hub/yolov3-tiny.yaml``, ``model.hyp`` =
  ``data/hyps/hyp.scratch-low.yaml`` scaled as its train.py does. Its ``(loss * bs, [lbox, lobj, lcls])``;
  and its ``build_targets`` directly.

Every case runs at 64-160 px (one non-square) on an empty batch, a crowded batch (many overlapping boxes per
image, one image without any) and tiny boxes (1-6 px). Each term must agree within 1e-4 relative and the
gradient w.r.t. every prediction within 1e-4 of the largest gradient. Run with ``-s`` to see the observed
differences (lines starting ``PARITY``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import ultralytics
import yaml
import yolov5
from helpers import ultralytics_model, yolov5_model
from ultralytics.cfg import get_cfg
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.tal import TaskAlignedAssigner as RefAssigner
from yolov5.utils.loss import ComputeLoss

from yololab.detect.assign import TaskAlignedAssigner, batch_targets, pad_targets, yolov5_targets
from yololab.detect.loss import YOLOv5Loss, YOLOv8Loss, build_loss
from yololab.models import build_model
from yololab.ops.boxes import cxcywh_to_xyxy

NC = 3
TOL = 1e-4
assert ultralytics.__version__ == "8.4.190", ultralytics.__version__
V5_HYP = Path(yolov5.__file__).parent / "data" / "hyps" / "hyp.scratch-low.yaml"

# (height, width, batch size, boxes kind)
CASES = {
    "empty-64": (64, 64, 2, "empty"),
    "crowded-128": (128, 128, 4, "crowded"),
    "crowded-96x160": (96, 160, 3, "crowded"),
    "tiny-160": (160, 160, 2, "tiny"),
}


def make_batch(kind: str, h: int, w: int, bs: int, seed: int = 0) -> dict:
    """Loader-style targets: crowded = 25-40 boxes per image, overlapping, in the middle of the image (the last
    image has none); tiny = 6 boxes per image of 1-6 px."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for b in range(bs):
        if kind == "crowded" and b < bs - 1:
            n = int(torch.randint(25, 41, (1,), generator=g))
            xy = 0.3 + 0.4 * torch.rand(n, 2, generator=g)
            wh = 0.05 + 0.35 * torch.rand(n, 2, generator=g)
        elif kind == "tiny":
            n = 6
            xy = 0.05 + 0.9 * torch.rand(n, 2, generator=g)
            wh = (1 + 5 * torch.rand(n, 2, generator=g)) / torch.tensor([w, h])
        else:
            continue
        cls = torch.randint(0, NC, (n, 1), generator=g).float()
        rows.append(torch.cat((torch.full((n, 1), float(b)), cls, xy, wh), 1))
    t = torch.cat(rows) if rows else torch.zeros(0, 6)
    return {"batch_idx": t[:, 0], "cls": t[:, 1:2], "bboxes": t[:, 2:6]}


def close(ours: float, ref: float) -> float:
    """Relative difference (0 when both are 0)."""
    return abs(ours - ref) / abs(ref) if ref else abs(ours)


def check(tag: str, ours_total, ref_total, ours_parts: dict, ref_parts: dict, ours_grads, ref_grads) -> None:
    diffs = {"total": close(ours_total.item(), ref_total.item())}
    for k, v in ref_parts.items():
        diffs[k] = close(ours_parts[k].item(), float(v))
    diffs["grad"] = max(((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()
                        for a, b in zip(ours_grads, ref_grads))
    print(f"PARITY {tag}: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    bad = {k: v for k, v in diffs.items() if not v <= TOL}
    assert not bad, f"{tag}: relative differences above {TOL}: {bad}"


def compare(tag: str, ours, ref, preds: list[torch.Tensor]) -> None:
    """Run ``ours(preds)`` and ``ref(preds)`` (each -> total, parts dict) on copies of ``preds``, backpropagate
    both totals and :func:`check` values and gradients."""
    p1 = [p.detach().clone().requires_grad_() for p in preds]
    p2 = [p.detach().clone().requires_grad_() for p in preds]
    total, parts = ours(p1)
    ref_total, ref_parts = ref(p2)
    total.backward()
    ref_total.backward()
    check(tag, total, ref_total, parts, ref_parts, [p.grad for p in p1], [p.grad for p in p2])


# --- YOLOv8 / YOLO11 against ultralytics 8.4.190 -------------------------------------------------------------


@pytest.fixture(scope="module", params=["yolov8n", "yolo11n"])
def v8_pair(request):
    ref = ultralytics_model(f"{request.param}.yaml", nc=NC)
    ref.args = get_cfg()  # Ultralytics' defaults: box 7.5, cls 0.5, dfl 1.5
    ours = build_model(request.param, num_classes=NC)
    assert ref.model[-1].stride.tolist() == ours.meta.strides
    return request.param, ours, v8DetectionLoss(ref)


def v8_reference(criterion, preds, batch):
    """The reference's training-output dict from our per-level (B, 4*16 + nc, H, W) maps."""
    bs = preds[0].shape[0]
    flat = [p.view(bs, p.shape[1], -1) for p in preds]
    out = {"boxes": torch.cat([f[:, :64] for f in flat], 2), "scores": torch.cat([f[:, 64:] for f in flat], 2),
           "feats": preds}
    loss, parts = criterion(out, batch)
    return loss.sum(), parts


def run_v8(name, ours_model, criterion, preds, batch, tag):
    loss = build_loss(ours_model)
    assert isinstance(loss, YOLOv8Loss)
    compare(f"{name} {tag}", lambda p: loss(p, batch), lambda p: v8_reference(criterion, p, batch), preds)


@pytest.mark.parametrize("case", list(CASES))
def test_v8_loss_matches_ultralytics(v8_pair, case):
    name, ours, criterion = v8_pair
    h, w, bs, kind = CASES[case]
    g = torch.Generator().manual_seed(1)
    preds = [torch.randn(bs, 64 + NC, h // s, w // s, generator=g) for s in ours.meta.strides]
    run_v8(name, ours, criterion, preds, make_batch(kind, h, w, bs), case)


def test_v8_loss_matches_on_model_output(v8_pair):
    """The same, with the predictions of our network's forward pass (training mode) on an image batch."""
    name, ours, criterion = v8_pair
    torch.manual_seed(0)
    ours.train()
    preds = ours(torch.rand(2, 3, 96, 96))
    run_v8(name, ours, criterion, preds, make_batch("crowded", 96, 96, 2, seed=3), "model-output")


def assigner_inputs(kind, h, w, bs, seed=0):
    """Pixel-space predictions from random decoded distances, and padded truths, for both assigners."""
    strides = [8, 16, 32]
    g = torch.Generator().manual_seed(seed)
    from yololab.nn.heads import make_anchors

    points, stride = make_anchors([(h // s, w // s) for s in strides], strides)
    na = len(points)
    dist = torch.rand(bs, na, 4, generator=g) * 4
    pd_bboxes = torch.cat((points - dist[..., :2], points + dist[..., 2:]), -1) * stride
    pd_logits = torch.randn(bs, NC, na, generator=g)
    targets = batch_targets(make_batch(kind, h, w, bs, seed), NC, torch.device("cpu"))
    labels, xywh, valid = pad_targets(targets, bs)
    boxes = cxcywh_to_xyxy(xywh * torch.tensor([w, h, w, h]))
    return pd_logits, pd_bboxes, points * stride, labels, boxes, valid


@pytest.mark.parametrize("kind", ["crowded", "tiny"])
def test_task_aligned_assigner_matches_ultralytics(kind):
    h, w, bs = 128, 160, 3
    pd_logits, pd_bboxes, anc, labels, boxes, valid = assigner_inputs(kind, h, w, bs)
    pd_scores = pd_logits.permute(0, 2, 1).sigmoid()  # what v8DetectionLoss gives its assigner
    ref = RefAssigner(topk=10, num_classes=NC, alpha=0.5, beta=6.0, stride=[8, 16, 32])
    mask_gt = valid[..., None].float()
    boxes_ref = boxes * mask_gt  # the reference pads with zeros
    _, rb, rs, rfg, _ = ref(pd_scores, pd_bboxes, anc, labels[..., None].float(), boxes_ref, mask_gt)
    fg, lab, bb, sc = TaskAlignedAssigner(NC, topk=10, stride_val=16)(pd_logits, pd_bboxes, anc, labels, boxes, valid)
    assert torch.equal(fg, rfg)
    assert torch.equal(bb[fg], rb[rfg])
    dense = torch.zeros_like(rs)
    dense[fg, lab[fg]] = sc[fg]
    torch.testing.assert_close(dense, rs, rtol=0, atol=0)
    # the scores the choice is made on (what `models explain tal` draws) are the reference's too
    mask_pos, ref_metric, ref_overlaps = ref.get_pos_mask(pd_scores, pd_bboxes, labels[..., None].float(), boxes_ref,
                                                          anc, mask_gt)
    cand, overlaps, metric = TaskAlignedAssigner(NC, topk=10, stride_val=16).align(pd_logits, pd_bboxes, anc, labels,
                                                                                   boxes, valid)
    torch.testing.assert_close(metric, ref_metric, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(overlaps, ref_overlaps, rtol=1e-5, atol=1e-7)
    assert torch.equal(cand, ref.select_candidates_in_gts(anc, boxes_ref, mask_gt).bool() & valid[..., None])
    # the case really had what it is named for
    if kind == "crowded":
        assert (mask_pos.sum(-2) > 1).any(), "no anchor was claimed by several truths"
    else:
        assert fg.any()
    # chunking the images (bounded memory) changes nothing
    small = TaskAlignedAssigner(NC, topk=10, stride_val=16, max_elements=1)
    for a, b in zip(small(pd_logits, pd_bboxes, anc, labels, boxes, valid), (fg, lab, bb, sc)):
        assert torch.equal(a, b)


# --- YOLOv5 / YOLOv3 (yolov5 style) against yolov5 7.0.14 ---------------------------------------------------

V5_MODELS = {"yolov5n": ("yolov5n.yaml", {}), "yolov3": ("hub/yolov3.yaml", {"style": "yolov5"}),
             "yolov3-tiny": ("hub/yolov3-tiny.yaml", {"style": "yolov5"})}


@pytest.fixture(scope="module", params=list(V5_MODELS))
def v5_pair(request):
    rel, kwargs = V5_MODELS[request.param]
    ref = yolov5_model(rel, nc=NC)
    ours = build_model(request.param, num_classes=NC, **kwargs)
    m = ref.model[-1]
    assert m.stride.tolist() == ours.meta.strides
    torch.testing.assert_close(m.anchors * m.stride.view(-1, 1, 1), ours.head.anchors, rtol=0, atol=0)
    return request.param, ours, ref


def v5_reference_loss(ref, imgsz: int, label_smoothing: float) -> ComputeLoss:
    """``ComputeLoss`` with ``model.hyp`` set as yolov5's train.py sets it."""
    hyp = yaml.safe_load(V5_HYP.read_text())
    nl = ref.model[-1].nl
    hyp["box"] *= 3 / nl
    hyp["cls"] *= NC / 80 * 3 / nl
    hyp["obj"] *= (imgsz / 640) ** 2 * 3 / nl
    hyp["label_smoothing"] = label_smoothing
    ref.hyp = hyp
    return ComputeLoss(ref)


def run_v5(name, ours, ref, preds, batch, imgsz, label_smoothing, tag):
    loss = build_loss(ours, {"label_smoothing": label_smoothing}, imgsz=imgsz)
    assert isinstance(loss, YOLOv5Loss)
    criterion = v5_reference_loss(ref, imgsz, label_smoothing)
    targets = torch.cat((batch["batch_idx"][:, None], batch["cls"], batch["bboxes"]), 1)

    def reference(p):
        ref_total, ref_parts = criterion(p, targets)
        return ref_total, dict(zip(("box_loss", "obj_loss", "cls_loss"), ref_parts.tolist()))

    compare(f"{name} {tag}", lambda p: loss(p, batch), reference, preds)


@pytest.mark.parametrize("case", list(CASES))
def test_v5_loss_matches_yolov5(v5_pair, case):
    name, ours, ref = v5_pair
    h, w, bs, kind = CASES[case]
    g = torch.Generator().manual_seed(2)
    preds = [torch.randn(bs, 3, h // s, w // s, 5 + NC, generator=g) for s in ours.meta.strides]
    run_v5(name, ours, ref, preds, make_batch(kind, h, w, bs), max(h, w), 0.1 if kind == "crowded" else 0.0, case)


@pytest.mark.parametrize("v5_pair", ["yolov5n", "yolov3-tiny"], indirect=True)  # yolov3's forward is slow
def test_v5_loss_matches_on_model_output(v5_pair):
    name, ours, ref = v5_pair
    torch.manual_seed(0)
    ours.train()
    preds = ours(torch.rand(2, 3, 96, 96))
    run_v5(name, ours, ref, preds, make_batch("crowded", 96, 96, 2, seed=3), 96, 0.0, "model-output")


@pytest.mark.parametrize("kind", ["crowded", "tiny"])
def test_yolov5_targets_match_build_targets(v5_pair, kind):
    """Same matches, cells, box targets and classes, in the same order, as ``ComputeLoss.build_targets``."""
    _, ours, ref = v5_pair
    h, w, bs = 128, 160, 4
    criterion = v5_reference_loss(ref, 160, 0.0)
    batch = make_batch(kind, h, w, bs)
    targets = torch.cat((batch["batch_idx"][:, None], batch["cls"], batch["bboxes"]), 1)
    preds = [torch.zeros(bs, 3, h // s, w // s, 5 + NC) for s in ours.meta.strides]
    tcls, tbox, indices, anch = criterion.build_targets(preds, targets)
    n_matches = 0
    for i, p in enumerate(preds):
        anchors = ours.head.anchors[i] / ours.head.strides[i]
        b, a, gj, gi, tb, c = yolov5_targets(targets, anchors, p.shape[3], p.shape[2], anchor_t=4.0)
        for x, y in zip((b, a, gj, gi), indices[i]):
            assert torch.equal(x, y)
        assert torch.equal(tb, tbox[i]) and torch.equal(c, tcls[i]) and torch.equal(anchors[a], anch[i])
        n_matches += len(b)
    assert n_matches > 0


def test_build_loss_rejects_bad_hyp_and_classes():
    from yololab.errors import ConfigError, DataError

    model = build_model("yolov8n", num_classes=NC)
    with pytest.raises(ConfigError, match="unknown loss hyperparameter"):
        build_loss(model, {"boxx": 1.0})
    with pytest.raises(ConfigError, match="label_smoothing"):
        build_loss(model, {"label_smoothing": 2.0})
    batch = make_batch("tiny", 64, 64, 1)
    batch["cls"][0] = NC  # one past the last class
    preds = [torch.zeros(1, 64 + NC, 64 // s, 64 // s) for s in (8, 16, 32)]
    with pytest.raises(DataError, match=f"class id {NC} "):
        build_loss(model)(preds, batch)


def test_losses_run_in_float32_under_autocast():
    """Under bf16 autocast (the engine's CPU default) the loss equals the float32 loss on the same inputs."""
    model = build_model("yolov8n", num_classes=NC)
    loss = build_loss(model)
    g = torch.Generator().manual_seed(0)
    preds = [torch.randn(2, 64 + NC, 96 // s, 96 // s, generator=g) for s in (8, 16, 32)]
    batch = make_batch("crowded", 96, 96, 2)
    ref, _ = loss(preds, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, parts = loss(preds, batch)
    assert out.dtype == torch.float32 and out.item() == ref.item()
    assert np.isfinite([v.item() for v in parts.values()]).all()
