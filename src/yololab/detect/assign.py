"""Which prediction learns which ground-truth box: the three assigners of the YOLO family, and the box maths they share.

* :func:`yolov5_targets`: YOLOv5's anchor-ratio rule with neighbouring cells (also YOLOv3 in the yolov5 style).
* :func:`darknet_best_anchor`: YOLOv3's original rule, one anchor per truth, the best of all levels by shape.
* :class:`TaskAlignedAssigner`: YOLOv8 / YOLO11's task-aligned assignment (TOOD, Feng et al. 2021).

Ground truth arrives as the detection loader batches it (``yololab.data.dataset.collate_fn``): ``cls`` (N, 1),
``bboxes`` (N, 4) normalised centre-x, centre-y, width, height and ``batch_idx`` (N,). :func:`batch_targets`
packs them into one (N, 6) tensor ``image, class, x, y, w, h`` (yolov5's layout), :func:`pad_targets` into
per-image padded tensors (Ultralytics' layout).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from yololab.errors import DataError
from yololab.ops.boxes import batched_box_iou, box_iou, ciou


# --- the best IoU of each box, in bounded memory ------------------------------------------------------------


def image_chunks(counts: list[int], per_box: int, max_elements: int) -> Iterator[tuple[slice, int]]:
    """Split a batch into runs of consecutive images whose pairwise tensors, (images, boxes, ``per_box``) padded
    to the run's largest box count, hold at most ``max_elements`` (a single image may exceed it). Yields the run
    and its largest box count; runs without boxes are left out."""
    start = 0
    while start < len(counts):
        stop, n = start + 1, counts[start]
        while stop < len(counts) and (stop + 1 - start) * max(n, counts[stop], 1) * per_box <= max_elements:
            n = max(n, counts[stop])
            stop += 1
        if n:
            yield slice(start, stop), n
        start = stop


def max_iou_per_box(boxes: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
                    max_elements: int = 1 << 23) -> torch.Tensor:
    """For every box (B, N, 4) the highest IoU with a valid truth of its own image (``gt`` (B, n, 4), ``valid``
    (B, n)), 0 without one: (B, N). Images are processed in chunks (:func:`image_chunks`): bounded memory."""
    best = torch.zeros(boxes.shape[:2], dtype=boxes.dtype, device=boxes.device)
    for s, n in image_chunks(valid.sum(1).tolist(), boxes.shape[1], max_elements):
        iou = batched_box_iou(boxes[s], gt[s, :n]).masked_fill_(~valid[s, None, :n], 0)
        best[s] = iou.amax(2)
    return best


# --- ground truth -------------------------------------------------------------------------------------------


def batch_targets(batch: dict, num_classes: int, device: torch.device) -> torch.Tensor:
    """The loader's ``cls``, ``bboxes``, ``batch_idx`` -> (N, 6) float32 ``image, class, x, y, w, h`` on ``device``.

    Raises :class:`DataError` for a class id outside ``[0, num_classes)`` (a data.yaml with too few names, or
    weights for another dataset), which would otherwise index out of range deep inside the loss."""
    try:
        cls, boxes, idx = batch["cls"], batch["bboxes"], batch["batch_idx"]
    except KeyError as e:
        raise DataError(f"detection batch: missing key {e.args[0]!r} (expected 'cls', 'bboxes', 'batch_idx')") from None
    targets = torch.cat((idx.view(-1, 1), cls.view(-1, 1), boxes.view(-1, 4)), 1).to(device, torch.float32)
    if len(targets):
        c = targets[:, 1]
        if (c < 0).any() or (c >= num_classes).any() or (c != c.round()).any():
            bad = c[(c < 0) | (c >= num_classes) | (c != c.round())][0].item()
            raise DataError(f"detection batch: class id {bad:g} is not an integer in [0, {num_classes}) "
                            f"(the model has {num_classes} classes)")
    return targets


def pad_targets(targets: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, 6) targets -> per image, in their original order, padded to the most boxes any image has:
    ``labels`` (B, n) long, ``boxes`` (B, n, 4) normalised xywh, ``valid`` (B, n) bool."""
    device = targets.device
    image = targets[:, 0].long()
    counts = torch.bincount(image, minlength=batch_size)
    n = int(counts.max()) if len(targets) else 0
    order = torch.argsort(image, stable=True)
    image = image[order]
    first = torch.cumsum(counts, 0) - counts  # index of each image's first box in sorted order
    slot = torch.arange(len(image), device=device) - first[image]
    labels = torch.zeros(batch_size, n, dtype=torch.long, device=device)
    boxes = torch.zeros(batch_size, n, 4, device=device)
    valid = torch.zeros(batch_size, n, dtype=torch.bool, device=device)
    labels[image, slot] = targets[order, 1].long()
    boxes[image, slot] = targets[order, 2:6]
    valid[image, slot] = True
    return labels, boxes, valid


# --- YOLOv5: anchor-ratio rule with neighbouring cells ------------------------------------------------------

# the cell itself, then its left, top, right and bottom neighbours (yolov5 build_targets' "j, k, l, m")
_NEIGHBOURS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def yolov5_targets(targets: torch.Tensor, anchors: torch.Tensor, nx: int, ny: int, anchor_t: float = 4.0,
                   g: float = 0.5) -> tuple[torch.Tensor, ...]:
    """YOLOv5's assignment on one level (``ComputeLoss.build_targets``, yolov5/utils/loss.py).

    ``targets`` (N, 6) image, class, x, y, w, h normalised; ``anchors`` (na, 2) in grid units of this level.
    A truth is matched to every anchor whose width and height ratios to it are both within ``1/anchor_t ..
    anchor_t`` (the decode ``wh = (2 sigmoid)^2 * anchor`` reaches at most 4x the anchor). Each match goes to
    the truth's own cell and to the two neighbouring cells nearest to its centre (``g = 0.5``: left or right,
    top or bottom, unless at the image border), since the decode ``xy = 2 sigmoid - 0.5`` lets a cell predict
    centres up to half a cell outside itself: about 3 positives per truth and anchor.

    Returns ``image, anchor, gj, gi`` (the cell, each (n,)), ``tbox`` (n, 4): the centre relative to the
    cell's corner and the size, in grid units, and ``tcls`` (n,), ordered neighbour, anchor, truth as yolov5
    (the order decides which truth a cell shared by several keeps).
    """
    device = targets.device
    gain = torch.tensor([nx, ny, nx, ny], device=device, dtype=targets.dtype)
    gxywh = targets[:, 2:6] * gain  # (nt, 4) grid units
    r = gxywh[None, :, 2:4] / anchors[:, None]  # (na, nt, 2) width and height ratios
    match = torch.max(r, 1 / r).max(2)[0] < anchor_t  # (na, nt)
    gxy = gxywh[:, :2]
    gxi = gain[[0, 1]] - gxy  # distance from the right / bottom border
    left_top = ((gxy % 1 < g) & (gxy > 1)).T  # (2, nt): use the left (x), top (y) neighbour
    right_bottom = ((gxi % 1 < g) & (gxi > 1)).T
    use = torch.cat((torch.ones_like(left_top[:1]), left_top, right_bottom))  # (5, nt)
    k, a, t = (use[:, None, :] & match[None]).nonzero(as_tuple=True)  # neighbour, anchor, truth
    b, c = targets[t, 0].long(), targets[t, 1].long()
    gxy_t = gxy[t]
    gij = (gxy_t - _NEIGHBOURS.to(device)[k] * g).long()
    gi, gj = gij[:, 0].clamp_(0, nx - 1), gij[:, 1].clamp_(0, ny - 1)
    # the clamped cell, as yolov5 (its tbox is computed after the in-place clamp)
    tbox = torch.cat((gxy_t - torch.stack((gi, gj), 1), gxywh[t, 2:4]), 1)
    return b, a, gj, gi, tbox, c


def last_of_duplicates(keys: torch.Tensor) -> torch.Tensor:
    """Bool mask of the last occurrence of each value in ``keys`` (n,).

    Writing ``x[idx] = v`` with repeated indices keeps the last value on a serial CPU but is undefined in
    parallel (CUDA, large CPU tensors): selecting the last occurrence first makes it deterministic everywhere."""
    pos = torch.arange(len(keys), device=keys.device)
    last = torch.full((int(keys.max()) + 1 if len(keys) else 0,), -1, dtype=torch.long, device=keys.device)
    last.scatter_reduce_(0, keys, pos, reduce="amax")
    return last[keys] == pos


# --- YOLOv3 (Darknet): the single best anchor ----------------------------------------------------------------


def darknet_best_anchor(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Index of the anchor (of all levels, ``anchors`` (K, 2)) whose shape best overlaps each truth (N, 2).

    Darknet's ``forward_yolo_layer`` (src/yolo_layer.c) compares each truth with every anchor as two boxes
    sharing a centre and takes the highest IoU (the first on a tie): only that anchor, in the truth's cell of
    that anchor's level, learns the truth."""
    corners = torch.cat((-wh / 2, wh / 2), 1)
    anchor_corners = torch.cat((-anchors / 2, anchors / 2), 1)
    return box_iou(corners, anchor_corners).argmax(1)


# --- YOLOv8 / YOLO11: task-aligned assignment ----------------------------------------------------------------


class TaskAlignedAssigner:
    """Task-aligned assignment as Ultralytics 8.4.190 does it (``TaskAlignedAssigner``, ultralytics/utils/tal.py).

    For every truth: candidates are the anchor points (cell centres) inside it, a truth narrower or shorter
    than ``stride_val`` (the second level's stride, 16) being widened to it about its centre so that tiny
    objects still get candidates. Each candidate scores ``t = s^alpha * u^beta``: s the predicted probability
    of the truth's class, u the CIoU of the predicted box with the truth (clamped at 0). The ``topk`` best
    candidates are positives; an anchor claimed by several truths keeps the one it overlaps most. The soft
    class target of a positive is ``t / max t * max u`` over that truth's positives, so a truth's best-aligned
    anchor aims at its best IoU and the others at less.

    Memory: the pairwise tensors are (images, truths, anchors); images are processed in chunks of at most
    ``max_elements`` pairs, each padded only to its own largest truth count, so a crowded batch needs bounded
    memory (the assignment of an image does not depend on the others, so the result is the same).
    """

    def __init__(self, num_classes: int, topk: int = 10, alpha: float = 0.5, beta: float = 6.0,
                 stride_val: float = 16.0, eps: float = 1e-9, max_elements: int = 1 << 23):
        self.num_classes, self.topk, self.alpha, self.beta = num_classes, topk, alpha, beta
        self.stride_val, self.eps, self.max_elements = stride_val, eps, max_elements

    @torch.no_grad()
    def __call__(self, pd_logits: torch.Tensor, pd_bboxes: torch.Tensor, anc_points: torch.Tensor,
                 gt_labels: torch.Tensor, gt_bboxes: torch.Tensor, valid: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Assign.

        Args: ``pd_logits`` (B, nc, A) class logits in the head's layout (probabilities are taken only of
        the candidate pairs' classes); ``pd_bboxes`` (B, A, 4) predicted x1y1x2y2 and ``anc_points`` (A, 2)
        anchor points, in pixels; ``gt_labels`` (B, n) long, ``gt_bboxes`` (B, n, 4) x1y1x2y2 pixels and
        ``valid`` (B, n) bool as :func:`pad_targets` packs them (padding last).

        Returns ``fg`` (B, A) bool: positive anchors; ``labels`` (B, A) long, ``bboxes`` (B, A, 4) and
        ``scores`` (B, A): the assigned truth's class, box and the soft target of that class (0 off ``fg``).
        """
        bs, na = pd_bboxes.shape[:2]
        device = pd_bboxes.device
        fg = torch.zeros(bs, na, dtype=torch.bool, device=device)
        labels = torch.zeros(bs, na, dtype=torch.long, device=device)
        bboxes = torch.zeros(bs, na, 4, dtype=gt_bboxes.dtype, device=device)
        scores = torch.zeros(bs, na, dtype=pd_bboxes.dtype, device=device)
        for s, n in image_chunks(valid.sum(1).tolist(), na, self.max_elements):
            fg[s], labels[s], bboxes[s], scores[s] = self._assign(
                pd_logits[s], pd_bboxes[s], anc_points, gt_labels[s, :n], gt_bboxes[s, :n], valid[s, :n])
        return fg, labels, bboxes, scores

    def _candidates(self, anc_points: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """(b, n, A) bool: anchor points strictly inside each truth, tiny truths widened to ``stride_val``."""
        cxcy = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2
        wh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        wh = torch.where(wh < self.stride_val, torch.full_like(wh, self.stride_val), wh)
        lt, rb = (cxcy - wh / 2)[:, :, None], (cxcy + wh / 2)[:, :, None]  # (b, n, 1, 2)
        x, y = anc_points[:, 0], anc_points[:, 1]
        eps = self.eps
        return (x - lt[..., 0] > eps) & (y - lt[..., 1] > eps) & (rb[..., 0] - x > eps) & (rb[..., 1] - y > eps)

    def align(self, pd_logits, pd_bboxes, anc_points, gt_labels, gt_bboxes, valid
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The scores the choice is made on, arguments as :meth:`__call__` (one chunk): ``cand`` (b, n, A) bool,
        the candidate anchors of each truth; ``overlaps`` and ``metric`` (b, n, A), the clamped CIoU ``u`` and
        the alignment ``t = s^alpha * u^beta`` of each candidate (0 elsewhere). ``yololab models explain tal``
        draws them."""
        b, n = gt_labels.shape
        na = anc_points.shape[0]
        cand = self._candidates(anc_points, gt_bboxes) & valid[..., None]  # (b, n, A)
        bi, gi, ai = cand.nonzero(as_tuple=True)  # only candidate pairs are scored
        overlap = ciou(gt_bboxes[bi, gi], pd_bboxes[bi, ai]).clamp_(0)
        score = pd_logits[bi, gt_labels[bi, gi], ai].sigmoid()
        align = score.pow(self.alpha) * overlap.pow(self.beta)
        overlaps = torch.zeros(b, n, na, dtype=pd_bboxes.dtype, device=pd_bboxes.device)
        metric = torch.zeros(b, n, na, dtype=align.dtype, device=align.device)
        overlaps[bi, gi, ai] = overlap
        metric[bi, gi, ai] = align
        return cand, overlaps, metric

    def _assign(self, pd_logits, pd_bboxes, anc_points, gt_labels, gt_bboxes, valid):
        na = anc_points.shape[0]
        cand, overlaps, metric = self.align(pd_logits, pd_bboxes, anc_points, gt_labels, gt_bboxes, valid)

        # the topk candidates of each truth (a truth with fewer candidates gets only those)
        topk = metric.topk(min(self.topk, na), dim=-1).indices
        pos = torch.zeros_like(cand).scatter_(-1, topk, True) & cand
        # an anchor claimed by several truths goes to the one it overlaps most
        multi = pos.sum(1, keepdim=True) > 1  # (b, 1, A)
        if multi.any():
            best = torch.zeros_like(pos).scatter_(1, overlaps.max(1, keepdim=True).indices, True)
            pos = torch.where(multi, best, pos)
        fg, gt_idx = pos.to(torch.uint8).max(1)  # (b, A): positive?, which truth

        # soft targets: alignment normalised per truth to [0, its best IoU]
        metric.masked_fill_(~pos, 0)
        overlaps.masked_fill_(~pos, 0)
        norm = (metric * overlaps.amax(-1, keepdim=True) / (metric.amax(-1, keepdim=True) + self.eps)).amax(1)
        labels = gt_labels.gather(1, gt_idx)
        bboxes = gt_bboxes.gather(1, gt_idx[..., None].expand(-1, -1, 4))
        return fg.bool(), labels, bboxes, norm
