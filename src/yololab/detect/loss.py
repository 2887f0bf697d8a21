"""The training losses of the YOLO family, equal to their reference implementations.

:func:`build_loss` picks the loss a model trains with:

* anchor-free (YOLOv8, YOLO11) -> :class:`YOLOv8Loss` (Ultralytics 8.4.190 ``v8DetectionLoss``);
* anchor-based with the yolov5 decode (YOLOv5, YOLOv3 in the yolov5 style) -> :class:`YOLOv5Loss`
  (yolov5 7.0.14 ``ComputeLoss``);
* anchor-based with the Darknet decode (YOLOv3 / YOLOv3-tiny in the Darknet style, a Darknet .cfg network)
  -> :class:`DarknetLoss` (Darknet's ``src/yolo_layer.c``).

Every loss is called as ``loss(preds, batch) -> (total, parts)``: ``preds`` is what the model returns in
training mode (one raw map per level), ``batch`` the dict the detection loader yields (``cls`` (N, 1),
``bboxes`` (N, 4) normalised centre-x, centre-y, width, height, ``batch_idx`` (N,)). ``total`` is the scalar
to backpropagate: the per-image loss times the batch size, as both references do (their trainers average
gradients over a nominal batch through the learning rate, not the loss). ``parts`` holds the detached
per-image terms under the names the references log (``box_loss``, ``obj_loss``, ``cls_loss``, ``dfl_loss``).
yolov5 returns them as one tensor ``[lbox, lobj, lcls]``, Ultralytics 8.4.190 as a dict with the (3,) vector
``loss * batch_size`` that its trainer sums before ``backward``: ``total`` is that sum.

The losses run in float32 with autocast off whatever the caller's autocast: the assignment compares IoUs
and the box terms subtract nearby coordinates, which bf16 (8 significant bits) would round away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from yololab.detect.assign import (TaskAlignedAssigner, batch_targets, darknet_best_anchor,
                                   last_of_duplicates, max_iou_per_box, pad_targets, yolov5_targets)
from yololab.errors import ConfigError
from yololab.nn.heads import AnchorHead, DetectHead, make_anchors
from yololab.ops.boxes import ciou, cxcywh_to_xyxy

Parts = dict[str, torch.Tensor]


@dataclass
class LossHyp:
    """Loss hyperparameters. The defaults are Ultralytics' (ultralytics/cfg/default.yaml, 8.4.190) for the
    anchor-free models; :func:`default_hyp` gives yolov5's (data/hyps/hyp.scratch-low.yaml) for anchor-based
    ones. A field only some losses read says which."""

    box: float = 7.5  # box loss gain (CIoU)
    cls: float = 0.5  # classification loss gain (BCE)
    dfl: float = 1.5  # YOLOv8/11: distribution focal loss gain
    obj: float = 1.0  # YOLOv5: objectness loss gain
    anchor_t: float = 4.0  # YOLOv5: largest truth/anchor width or height ratio that matches
    label_smoothing: float = 0.0  # YOLOv5: class targets 1 - eps/2 and eps/2
    tal_topk: int = 10  # YOLOv8/11: positives per truth (v8DetectionLoss's tal_topk)
    ignore_thresh: float = 0.7  # Darknet: a prediction overlapping a truth more than this is no negative

    def __post_init__(self):
        for f in ("box", "cls", "dfl", "obj"):
            if not (isinstance(getattr(self, f), (int, float)) and getattr(self, f) >= 0):
                raise ConfigError(f"loss hyperparameter {f}: expected a gain >= 0, got {getattr(self, f)!r}")
        if not self.anchor_t > 1:
            raise ConfigError(f"loss hyperparameter anchor_t: expected a ratio > 1, got {self.anchor_t!r}")
        for f in ("label_smoothing", "ignore_thresh"):
            if not 0 <= getattr(self, f) <= 1:
                raise ConfigError(f"loss hyperparameter {f}: expected a value in [0, 1], got {getattr(self, f)!r}")
        if not (isinstance(self.tal_topk, int) and self.tal_topk >= 1):
            raise ConfigError(f"loss hyperparameter tal_topk: expected an integer >= 1, got {self.tal_topk!r}")


YOLOV5_GAINS = {"box": 0.05, "cls": 0.5, "obj": 1.0}  # yolov5 data/hyps/hyp.scratch-low.yaml


def default_hyp(model: nn.Module) -> LossHyp:
    """The reference's defaults for this model: yolov5's gains for anchor-based models, Ultralytics' otherwise."""
    return LossHyp(**YOLOV5_GAINS) if _head(model)[1] != "anchor-free" else LossHyp()


def scale_yolov5_gains(hyp: LossHyp, nl: int, nc: int, imgsz: int) -> LossHyp:
    """yolov5's train.py scaling of the gains (tuned for 3 levels, 80 classes, 640 px) to a model and image size:
    box x 3/nl, cls x nc/80 x 3/nl, obj x (imgsz/640)^2 x 3/nl (more cells, more objectness terms in the mean)."""
    return replace(hyp, box=hyp.box * 3 / nl, cls=hyp.cls * nc / 80 * 3 / nl, obj=hyp.obj * (imgsz / 640) ** 2 * 3 / nl)


def _no_autocast(device: torch.device):
    return torch.autocast(device.type, enabled=False)


# --- YOLOv5 (and YOLOv3 in the yolov5 style) ----------------------------------------------------------------


class YOLOv5Loss:
    """YOLOv5's loss, as yolov5 7.0.14 ``ComputeLoss`` (yolov5/utils/loss.py) with ``autobalance=False`` and its
    default ``fl_gamma=0``, ``cls_pw = obj_pw = 1``.

    Per level, with the targets of :func:`~yololab.detect.assign.yolov5_targets` (anchor ratio < anchor_t,
    truth cell plus two neighbours):

    * box: mean of 1 - CIoU(predicted box, truth) over the level's targets, the box decoded as the head does
      (``xy = 2 sigmoid - 0.5`` in the cell, ``wh = (2 sigmoid)^2 * anchor``);
    * objectness: BCE over every cell and anchor, the target of a matched one being its CIoU (detached, clamped
      at 0; ``gr = 1``), so confidence learns to predict box quality; weighted per level by ``balance``
      [4.0, 1.0, 0.4] (the finest level's mean runs over the most cells, nearly all negatives, so it is
      weighed up), for 2 levels (YOLOv3-tiny) the first two of yolov5's fallback list, [4.0, 1.0];
    * class: BCE on the matched predictions against one-hot targets smoothed to (1 - eps/2, eps/2), only when
      there is more than one class.

    Each term is summed over levels and times its gain; ``hyp`` holds the gains already scaled by
    :func:`scale_yolov5_gains` (:func:`build_loss` does it).
    """

    def __init__(self, head: AnchorHead, num_classes: int, hyp: LossHyp):
        self.head, self.nc, self.hyp = head, num_classes, hyp
        self.balance = {3: [4.0, 1.0, 0.4]}.get(head.nl, [4.0, 1.0, 0.25, 0.06, 0.02])
        self.cp, self.cn = 1.0 - 0.5 * hyp.label_smoothing, 0.5 * hyp.label_smoothing

    def __call__(self, preds: list[torch.Tensor], batch: dict) -> tuple[torch.Tensor, Parts]:
        device = preds[0].device
        with _no_autocast(device):
            targets = batch_targets(batch, self.nc, device)
            anchors = self.head.anchors.to(device, torch.float32)
            lbox = lobj = lcls = torch.zeros((), device=device)
            for i, p in enumerate(preds):
                p = p.float()
                bs, na, ny, nx, _ = p.shape
                b, a, gj, gi, tbox, tcls = yolov5_targets(targets, anchors[i] / self.head.strides[i], nx, ny,
                                                          self.hyp.anchor_t)
                tobj = torch.zeros(p.shape[:4], device=device)
                if len(b):
                    pxy, pwh, _, pcls = p[b, a, gj, gi].split((2, 2, 1, self.nc), 1)
                    pxy = pxy.sigmoid() * 2 - 0.5
                    pwh = (pwh.sigmoid() * 2) ** 2 * (anchors[i, a] / self.head.strides[i])
                    iou = ciou(cxcywh_to_xyxy(torch.cat((pxy, pwh), 1)), cxcywh_to_xyxy(tbox))
                    lbox = lbox + (1.0 - iou).mean()
                    # a cell several truths match keeps the last one's IoU, as yolov5 (sort_obj_iou=False)
                    last = last_of_duplicates(((b * na + a) * ny + gj) * nx + gi)
                    tobj[b[last], a[last], gj[last], gi[last]] = iou.detach().clamp(0)[last]
                    if self.nc > 1:
                        t = torch.full_like(pcls, self.cn)
                        t[torch.arange(len(b), device=device), tcls] = self.cp
                        lcls = lcls + F.binary_cross_entropy_with_logits(pcls, t)
                lobj = lobj + F.binary_cross_entropy_with_logits(p[..., 4], tobj) * self.balance[i]
            lbox, lobj, lcls = lbox * self.hyp.box, lobj * self.hyp.obj, lcls * self.hyp.cls
            bs = preds[0].shape[0]
            return (lbox + lobj + lcls) * bs, _parts(box_loss=lbox, obj_loss=lobj, cls_loss=lcls)


def _parts(**terms: torch.Tensor) -> Parts:
    return {k: v.detach() for k, v in terms.items()}


# --- YOLOv3 in the Darknet style ----------------------------------------------------------------------------


class DarknetLoss:
    """YOLOv3's original loss: Darknet's ``forward_yolo_layer`` / ``delta_yolo_box`` / ``delta_yolo_class``
    (pjreddie/darknet, src/yolo_layer.c), written as a loss whose gradient is Darknet's delta.

    Darknet computes no loss value: each layer writes ``delta`` (minus the gradient w.r.t. its raw inputs) and
    SGD averages it over the batch through the learning rate. Here the loss is summed over the batch (the
    per-image parts are that sum / B) and its gradient w.r.t. the raw predictions equals ``-delta``:

    * assignment: each truth goes to the one anchor, of all levels, with the best IoU of shapes
      (:func:`~yololab.detect.assign.darknet_best_anchor`), in the cell holding its centre;
    * x, y: ``scale * BCE(t, tx)`` with ``tx`` the centre's offset in its cell: Darknet's delta
      ``scale * (tx - sigmoid(t))`` is the negative gradient of a BCE on the logit; w, h:
      ``scale / 2 * (t - log(w / anchor_w))^2``, a squared error in log space (delta ``scale * (tw - t)``);
      ``scale = 2 - w * h`` (normalised size) weighs small boxes up to twice as much;
    * objectness: BCE towards 1 at assigned anchors; towards 0 at every other prediction, except those whose
      decoded box overlaps some truth of its image by more than ``ignore_thresh`` (0.7 in yolov3.cfg): a good
      box at the wrong anchor is not punished;
    * class: BCE against one-hot targets at assigned anchors (delta ``onehot - sigmoid``); when several truths
      land on the same cell and anchor, the box is the last truth's and the class targets are the union
      (Darknet's ``delta_yolo_class`` keeps the classes already set).

    Not modelled: ``truth_thresh`` (1 in yolov3.cfg: never reached) and the later forks' options (GIoU/CIoU
    box losses, ``iou_normalizer``, focal loss, AlexeyAB's ``scale_x_y``).
    """

    def __init__(self, anchors: Callable[[], torch.Tensor], strides: list[int], num_classes: int, hyp: LossHyp):
        self.anchors, self.strides, self.nc, self.ignore_thresh = anchors, strides, num_classes, hyp.ignore_thresh

    def __call__(self, preds: list[torch.Tensor], batch: dict) -> tuple[torch.Tensor, Parts]:
        device = preds[0].device
        with _no_autocast(device):
            targets = batch_targets(batch, self.nc, device)
            targets = targets[(targets[:, 4] > 0) & (targets[:, 5] > 0)]  # log(0) has no target; Darknet warns
            anchors = self.anchors().to(device, torch.float32)  # (nl, na, 2) pixels
            na, bs = anchors.shape[1], preds[0].shape[0]
            img_h, img_w = preds[0].shape[2] * self.strides[0], preds[0].shape[3] * self.strides[0]
            size = torch.tensor([img_w, img_h, img_w, img_h], device=device, dtype=torch.float32)
            boxes_px = targets[:, 2:6] * size
            best = darknet_best_anchor(boxes_px[:, 2:], anchors.view(-1, 2))
            _, gt_xywh, valid = pad_targets(targets, bs)
            gt_xyxy = cxcywh_to_xyxy(gt_xywh * size)
            lbox = lobj = lcls = torch.zeros((), device=device)
            for i, p in enumerate(preds):
                p = p.float()
                _, _, ny, nx, _ = p.shape
                stride = torch.tensor([img_w / nx, img_h / ny], device=device)
                # negatives: objectness towards 0 unless the box already overlaps a truth > ignore_thresh
                with torch.no_grad():
                    yv, xv = torch.meshgrid(torch.arange(ny, device=device), torch.arange(nx, device=device),
                                            indexing="ij")
                    xy = (p[..., :2].sigmoid() + torch.stack((xv, yv), -1)) * stride
                    wh = p[..., 2:4].exp() * anchors[i].view(1, na, 1, 1, 2)
                    pred_xyxy = torch.cat((xy - wh / 2, xy + wh / 2), -1).view(bs, -1, 4)
                    negative = max_iou_per_box(pred_xyxy, gt_xyxy, valid).view(p.shape[:4]) <= self.ignore_thresh
                # positives of this level, the last of several truths on one cell and anchor keeping the box
                t = (best // na == i).nonzero(as_tuple=True)[0]
                a = best[t] % na
                b, c = targets[t, 0].long(), targets[t, 1].long()
                gxy = targets[t, 2:4] * torch.tensor([nx, ny], device=device)
                gi, gj = gxy[:, 0].long().clamp(0, nx - 1), gxy[:, 1].long().clamp(0, ny - 1)
                cell = ((b * na + a) * ny + gj) * nx + gi
                last = last_of_duplicates(cell)
                tobj = torch.zeros(p.shape[:4], device=device)
                tobj[b, a, gj, gi] = 1.0
                weight = (negative | (tobj > 0)).float()
                lobj = lobj + (F.binary_cross_entropy_with_logits(p[..., 4], tobj, reduction="none") * weight).sum()
                if len(t):
                    pl = p[b[last], a[last], gj[last], gi[last]]
                    txy = (gxy - torch.stack((gi, gj), 1))[last]
                    twh = torch.log(boxes_px[t[last], 2:] / anchors[i, a[last]])
                    scale = (2 - targets[t[last], 4] * targets[t[last], 5])[:, None]  # normalised w * h
                    lbox = lbox + (scale * F.binary_cross_entropy_with_logits(pl[:, :2], txy, reduction="none")).sum() \
                        + (scale / 2 * (pl[:, 2:4] - twh) ** 2).sum()
                    # class targets: the union of the classes of the truths on each cell and anchor
                    _, slot = torch.unique(cell, return_inverse=True)
                    onehot = torch.zeros(int(slot.max()) + 1, self.nc, device=device)
                    onehot[slot, c] = 1.0
                    lcls = lcls + F.binary_cross_entropy_with_logits(pl[:, 5:], onehot[slot[last]], reduction="sum")
            return lbox + lobj + lcls, _parts(box_loss=lbox / bs, obj_loss=lobj / bs, cls_loss=lcls / bs)


# --- YOLOv8 / YOLO11 ----------------------------------------------------------------------------------------


class _SparseBCE(torch.autograd.Function):
    """Summed BCE-with-logits of ``logits`` against targets that are 0 except ``target`` (n,) at the positions
    ``index`` (a tuple of n-long index tensors): ``sum softplus(x) - sum x[index] * target``, gradient
    ``sigmoid(x) - t``, without building the dense target tensor.

    softplus(x) = max(x, 0) + log1p(u), u = exp(-|x|), with log1p(u) = log(w) - ((w - 1) - u) / w, w = 1 + u
    (the rounding of w corrected to first order; within 2e-7 relative, as ``F.softplus``): PyTorch 2.14's
    ``log1p`` is not vectorised on x86 (8x slower than ``log``), so this is about three times as fast."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, target: torch.Tensor, *index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, target, *index)
        u = x.abs().neg_().exp_()
        w = u + 1
        log1p = torch.log(w).sub_((w - 1).sub_(u).div_(w))
        return x.clamp(min=0).sum() + log1p.sum() - (x[index] * target).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, target, *index = ctx.saved_tensors
        g = torch.sigmoid(x).index_put_(tuple(index), -target, accumulate=True)
        return (g * grad, None) + (None,) * len(index)


class YOLOv8Loss:
    """YOLOv8 / YOLO11's loss, as Ultralytics 8.4.190 ``v8DetectionLoss`` (ultralytics/utils/loss.py) with
    its defaults (``tal_topk=10``, ``tal_topk2=None``, no class weights).

    The head predicts, per anchor point (cell centre), a distribution over 0..reg_max-1 strides for each of the
    four distances to the box sides, and class logits. Positives come from the
    :class:`~yololab.detect.assign.TaskAlignedAssigner` (topk 10, alpha 0.5, beta 6.0), run on the detached
    predictions; its soft class targets (alignment normalised to the truth's best IoU) also weigh the box terms.
    With S the sum of all soft targets (at least 1):

    * box: sum over positives of (1 - CIoU(decoded box, truth)) x target / S;
    * DFL (distribution focal loss, GFL, Li et al. 2020): for each side, cross-entropy with the two bins around
      the true distance, weighted by closeness (a sharp distribution at the right place), averaged over the
      four sides, x target, summed / S;
    * class: BCE of every class logit of every anchor against the soft targets, summed / S. Written as
      ``sum softplus(x) - sum over positives x * target`` (the same value and gradient as BCE) so that the
      (B, A, nc) target tensor is never built, with a faster softplus (:class:`_SparseBCE`).

    Gains box 7.5, cls 0.5, dfl 1.5.
    """

    def __init__(self, num_classes: int, strides: list[int], reg_max: int, hyp: LossHyp):
        self.nc, self.strides, self.reg_max, self.hyp = num_classes, [int(s) for s in strides], reg_max, hyp
        self.no = num_classes + 4 * reg_max
        stride_val = self.strides[1] if len(self.strides) > 1 else self.strides[0]
        self.assigner = TaskAlignedAssigner(num_classes, topk=hyp.tal_topk, alpha=0.5, beta=6.0, stride_val=stride_val)

    def decode(self, preds: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The head's training outputs (one (B, no, H, W) map per level) in float32, flattened over the levels:
        ``pred_dist`` (B, A, 4 * reg_max), ``pred_scores`` (B, nc, A) logits, ``pred_boxes`` (B, A, 4) x1y1x2y2
        in grid units of each anchor's level (the expected distance of each side), ``points`` (A, 2) anchor
        points in grid units and ``stride`` (A, 1)."""
        bs = preds[0].shape[0]
        flat = torch.cat([p.float().view(bs, self.no, -1) for p in preds], 2)
        pred_dist, pred_scores = flat.split((4 * self.reg_max, self.nc), 1)  # (B, 4 * reg_max, A), (B, nc, A)
        pred_dist = pred_dist.permute(0, 2, 1).contiguous()
        points, stride = make_anchors([p.shape[2:] for p in preds], self.strides, device=preds[0].device)
        proj = torch.arange(self.reg_max, dtype=torch.float32, device=preds[0].device)
        dist = pred_dist.view(bs, -1, 4, self.reg_max).softmax(3).matmul(proj)
        pred_boxes = torch.cat((points - dist[..., :2], points + dist[..., 2:]), -1)
        return pred_dist, pred_scores, pred_boxes, points, stride

    def targets(self, batch: dict, bs: int, img_hw: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, ...]:
        """The batch's truths padded per image: ``gt_labels`` (B, n), ``gt_xyxy`` (B, n, 4) pixels, ``valid`` (B, n)."""
        gt_labels, gt_xywh, valid = pad_targets(batch_targets(batch, self.nc, device), bs)
        img_h, img_w = img_hw
        return gt_labels, cxcywh_to_xyxy(gt_xywh * torch.tensor([img_w, img_h, img_w, img_h], device=device)), valid

    def __call__(self, preds: list[torch.Tensor], batch: dict) -> tuple[torch.Tensor, Parts]:
        device = preds[0].device
        with _no_autocast(device):
            bs = preds[0].shape[0]
            pred_dist, pred_scores, pred_boxes, points, stride = self.decode(preds)
            img_hw = (preds[0].shape[2] * self.strides[0], preds[0].shape[3] * self.strides[0])
            gt_labels, gt_xyxy, valid = self.targets(batch, bs, img_hw, device)

            fg, labels, tboxes, tscores = self.assigner(
                pred_scores.detach(), pred_boxes.detach() * stride, points * stride, gt_labels, gt_xyxy, valid)
            score_sum = tscores.sum().clamp(min=1)
            fb, fa = fg.nonzero(as_tuple=True)
            weight = tscores[fb, fa]

            lcls = _SparseBCE.apply(pred_scores, weight, fb, labels[fb, fa], fa) / score_sum
            tbox = tboxes[fb, fa] / stride[fa]  # grid units of the anchor's level
            lbox = ((1.0 - ciou(pred_boxes[fb, fa], tbox)) * weight).sum() / score_sum
            ltrb = torch.cat((points[fa] - tbox[:, :2], tbox[:, 2:] - points[fa]), 1).clamp_(0, self.reg_max - 1 - 0.01)
            ldfl = (self.dfl(pred_dist[fb, fa].view(-1, 4, self.reg_max), ltrb) * weight).sum() / score_sum

            lbox, lcls, ldfl = lbox * self.hyp.box, lcls * self.hyp.cls, ldfl * self.hyp.dfl
            return (lbox + lcls + ldfl) * bs, _parts(box_loss=lbox, cls_loss=lcls, dfl_loss=ldfl)

    @staticmethod
    def dfl(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distribution focal loss: logits (n, 4, reg_max), target distances (n, 4) in [0, reg_max - 1) -> (n,)."""
        left = target.long()
        w_left = (left + 1) - target
        logp = logits.log_softmax(-1)
        nll = logp.gather(-1, left[..., None])[..., 0] * w_left + logp.gather(-1, left[..., None] + 1)[..., 0] * (1 - w_left)
        return -nll.mean(-1)


# --- choosing the loss --------------------------------------------------------------------------------------


def _head(model: nn.Module) -> tuple[nn.Module, str]:
    """The head that defines the loss and the loss style: "anchor-free", "yolov5" or "darknet"."""
    model = getattr(model, "module", model)  # DistributedDataParallel
    head = getattr(model, "head", None)
    if isinstance(head, DetectHead):
        return head, "anchor-free"
    if isinstance(head, AnchorHead):
        return head, head.decode
    if getattr(model, "yolo_layers", None):  # a Darknet .cfg network (yololab.models.darknet_cfg.DarknetNet)
        return model, "darknet"
    raise ConfigError(f"no detection loss for {type(model).__name__}: expected a zoo detector (anchor-free or "
                      "anchor-based head) or a Darknet .cfg detection network")


def anchor_levels(model: nn.Module) -> tuple[list[torch.Tensor], list[int]]:
    """The anchor buffers of an anchor-based model, one (na, 2) tensor in input pixels per level (views of the
    model's own buffers: writing them changes the model), and the levels' strides, finest first."""
    head, style = _head(model)
    if style == "anchor-free":
        raise ConfigError(f"{type(model).__name__} is anchor-free: it has no anchors")
    if isinstance(head, AnchorHead):
        return list(head.anchors.unbind(0)), list(head.strides)
    # Darknet matches a truth against every anchor listed in the cfg (``num``), then each [yolo] layer takes
    # those in its ``mask``; concatenating the layers' anchors is that list only if the masks use each once
    masks = []
    for i in head.yolo_layers:
        sec = head.sections[1 + i]
        mask = sec.options.get("mask")
        masks += [int(v) for v in mask.split(",") if v.strip()] if mask else list(range(len(head.layers[i].anchors)))
        listed = len([v for v in sec.options.get("anchors", "").split(",") if v.strip()]) // 2
    if sorted(masks) != list(range(listed)):
        raise ConfigError(f"{head.cfg_path}: the [yolo] masks {masks} must use each of the {listed} anchors exactly "
                          "once for yololab's Darknet loss and auto-anchor")
    return [head.layers[i].anchors for i in head.yolo_layers], [head.specs[i].stride for i in head.yolo_layers]


def build_loss(model: nn.Module, hyp: LossHyp | Mapping | None = None, imgsz: int = 640
               ) -> Callable[[list[torch.Tensor], dict], tuple[torch.Tensor, Parts]]:
    """The training loss of ``model``: ``loss(preds, batch) -> (total, parts)`` (see the module doc).

    ``hyp``: a :class:`LossHyp`, a mapping of some of its fields (the rest from :func:`default_hyp`), or None
    for the reference's defaults. ``imgsz``: the training image size, for yolov5's scaling of the objectness
    gain (:func:`scale_yolov5_gains`, applied here to the anchor-based yolov5-style loss, as yolov5's
    train.py does; give the gains unscaled).

    The anchors are read from the model at every call, so new anchors (auto-anchor) take effect at once.
    """
    head, style = _head(model)
    if not isinstance(hyp, LossHyp):
        known = {f.name for f in fields(LossHyp)}
        unknown = sorted(set(hyp or {}) - known)
        if unknown:
            raise ConfigError(f"unknown loss hyperparameter(s) {', '.join(unknown)}; expected some of {sorted(known)}")
        hyp = replace(default_hyp(model), **dict(hyp or {}))
    if style == "anchor-free":
        return YOLOv8Loss(head.nc, head.strides, head.reg_max, hyp)
    if style == "yolov5":
        if not (isinstance(imgsz, int) and imgsz > 0):
            raise ConfigError(f"imgsz: expected a positive integer, got {imgsz!r}")
        return YOLOv5Loss(head, head.nc, scale_yolov5_gains(hyp, head.nl, head.nc, imgsz))
    anchors, strides = anchor_levels(model)
    if len({len(a) for a in anchors}) != 1:
        raise ConfigError(f"Darknet loss: every [yolo] layer needs the same number of anchors (mask), got "
                          f"{[len(a) for a in anchors]}")
    nc = head.nc if isinstance(head, AnchorHead) else head.num_classes
    return DarknetLoss(lambda: torch.stack(anchor_levels(model)[0]), strides, nc, hyp)
