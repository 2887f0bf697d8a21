"""What CutMix does to the objects of the synthetic set: how often the pasted patch cuts out the image's own
object or carries in the partner's, against what the soft label says.

``yololab classify synth`` records each object's box, so the objects' share in a CutMix image can be measured
instead of assumed. This script takes the training batches exactly as ``yololab classify train`` builds them
(:class:`yololab.classify.task.ClassifyTask`'s loader with ``--cutmix``), finds each batch's patch (the pixels
that differ from the same samples collated without mixing) and each object's box after the sample's own crop
and flip (the sample's transform replayed from its (seed, epoch, index) seed with the box attached), and prints:

* the pasted area (the partner's label weight) and the share of the own object it covers;
* how often the patch cuts out most of the own object, and how often it also carries in most of the partner's;
* how often the label's dominant class is not the class whose object is more visible (pairs of different
  classes), and the mean gap between a class's label weight and its object's visible share.

    .venv/bin/python benchmarks/classify_cutmix_objects.py --data datasets/cls-synth --epochs 2
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torchvision import tv_tensors

from yololab.classify.data import as_tensor, seeded, skip_none_collate
from yololab.classify.task import ClassifyTask
from yololab.engine import TrainConfig


def box_mask(box: np.ndarray, h: int, w: int) -> torch.Tensor:
    """(h, w) uint8 mask of the pixels whose centres lie in ``box`` (x1, y1, x2, y2)."""
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return ((xs >= box[0]) & (xs <= box[2]) & (ys >= box[1]) & (ys <= box[3])).to(torch.uint8)


def augmented_mask(dataset, i: int, image: torch.Tensor) -> torch.Tensor:
    """Sample ``i``'s object box as a mask after its crop and flip: its transform replayed from the same seed
    with the mask attached (a mask, not a box: the crop pads by reflection, which boxes do not support)."""
    raw = dataset.raw(i)
    mask = tv_tensors.Mask(box_mask(dataset.split.boxes[i], *raw.shape[:2]))
    with seeded((*dataset.seed, i)):
        again, mask = dataset.transform(as_tensor(raw), mask)
    assert torch.equal(again, image), "the replayed transform drew other pixels"
    return mask.as_subclass(torch.Tensor).bool()


def inside(masks: torch.Tensor, patch: tuple[int, int, int, int]) -> np.ndarray:
    """Share of each mask's pixels inside ``patch`` (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = patch
    total = masks.flatten(1).sum(1).clamp(min=1)
    return (masks[:, y1:y2, x1:x2].flatten(1).sum(1) / total).numpy()


def patch_of(mixed: torch.Tensor, plain: torch.Tensor) -> tuple[int, int, int, int] | None:
    """The rectangle of pixels CutMix replaced (the same for the whole batch), or None."""
    ys, xs = torch.nonzero((mixed != plain).any(1).any(0), as_tuple=True)
    if len(ys) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def measure(data: str, epochs: int, batch: int, alpha: float, seed: int) -> dict[str, float]:
    task = ClassifyTask(TrainConfig(batch=batch, seed=seed, workers=0), data=data, cutmix=alpha)
    boxes_known = task.data.train.boxes is not None
    assert boxes_known, f"{data}: no object boxes (make it with `yololab classify synth`)"
    rows = []  # per mixed sample: pasted area, own covered, partner carried, own label weight, same class
    for epoch in range(epochs):
        loader = task.train_loader(epoch)
        dataset = loader.dataset
        for x, y, index in loader:
            index = index.tolist()
            plain = skip_none_collate([dataset[i] for i in index])[0]
            patch = patch_of(x, plain)
            if patch is None:
                continue
            masks = torch.stack([augmented_mask(dataset, i, plain[k]) for k, i in enumerate(index)])
            labels = dataset.split.labels[index]
            partner = np.roll(np.arange(len(index)), 1)  # v2.CutMix pastes from the previous sample
            own_w = y[torch.arange(len(index)), torch.as_tensor(labels)].numpy()
            covered = inside(masks, patch)
            (x1, y1, x2, y2), (h, w) = patch, x.shape[-2:]
            for k in range(len(index)):
                rows.append(((x2 - x1) * (y2 - y1) / (h * w), covered[k], covered[partner[k]], own_w[k],
                             labels[k] == labels[partner[k]]))
    a = np.array(rows, dtype=np.float64)
    area, own_cov, partner_in, own_w, same = a.T
    diff = same == 0
    own_visible = 1 - own_cov
    label_says_own = (1 - area) >= 0.5
    objects_say_own = own_visible >= partner_in
    return {
        "mixed samples": len(a),
        "pasted area (mean)": area.mean(),
        "own object covered (mean)": own_cov.mean(),
        "own object >= 50 % cut out": (own_cov >= 0.5).mean(),
        "own object >= 90 % cut out": (own_cov >= 0.9).mean(),
        "own object >= 50 % cut out and the partner's >= 50 % carried in": ((own_cov >= 0.5) & (partner_in >= 0.5))
        .mean(),
        "label's dominant class is the less visible object (different classes)":
            (label_says_own != objects_say_own)[diff].mean(),
        "gap between the own label weight and the own object's share of the visible objects (mean, "
        "different classes)": np.abs((1 - area) - own_visible / np.clip(own_visible + partner_in, 1e-6, None))[diff]
        .mean(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="a `yololab classify synth` folder (it has the object boxes)")
    p.add_argument("--epochs", type=int, default=1, help="epochs of batches to measure")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--cutmix", type=float, default=1.0, help="CutMix Beta(alpha, alpha)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    stats = measure(args.data, args.epochs, args.batch, args.cutmix, args.seed)
    print(f"CutMix alpha {args.cutmix:g} on {args.data}, batch {args.batch}, {args.epochs} epoch(s), "
          f"seed {args.seed}\n")
    print("| measure | value |\n|---|---:|")
    for k, v in stats.items():
        print(f"| {k} | {v:.0f} |" if k == "mixed samples" else f"| {k} | {v:.3f} |")


if __name__ == "__main__":
    main()
