"""Evaluate a classifier on a split and write what a person looks at: metrics, pointing game, figures, report.

Used by the task at the end of training (on ``best.pt``) and by ``yololab classify val``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from yololab.classify import plots
from yololab.classify.cam import CAM, METHODS, default_layer, pointing_game
from yololab.classify.data import ClassifyData, as_tensor, fit_size, make_loader
from yololab.classify.metrics import ClassMetrics, classification_metrics
from yololab.errors import DataError

CAM_FIGURES = {"gradcam": "gradcam_gradcam.png", "gradcam++": "gradcam_gradcampp.png",
               "eigencam": "gradcam_eigencam.png"}


@dataclass
class EvalResult:
    metrics: ClassMetrics
    logits: torch.Tensor      # (N, nc) float32, in the order of ``index``
    labels: torch.Tensor      # (N,)
    index: torch.Tensor       # (N,) dataset indices (files that failed to load are absent)
    loss: float
    pointing: float | None = None   # share of hits (Grad-CAM), where the data has boxes
    pointing_hits: np.ndarray | None = None
    pointing_by_method: dict[str, float] | None = None  # every CAM method on the same layer
    cam_layer: str | None = None

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.softmax(1)

    def summary(self) -> dict[str, float]:
        out = {**self.metrics.summary(), "loss": self.loss}
        if self.pointing is not None:
            out["pointing_game"] = self.pointing
        return out

    def to_json(self) -> dict:
        """``summary()`` plus, where boxes are known, the pointing game of every CAM method and its layer."""
        out = self.summary()
        if self.pointing_by_method is not None:
            out["pointing_game_by_method"] = dict(self.pointing_by_method)
            out["cam_layer"] = self.cam_layer
        return out


def _inputs(x: torch.Tensor, model: nn.Module, device: torch.device) -> torch.Tensor:
    """Move a batch to ``device``, channels-last when the model's weights are."""
    x = x.to(device, non_blocking=True)
    first = next((p for p in model.parameters() if p.dim() == 4), None)
    if first is not None and first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous():
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@torch.no_grad()
def predict_dataset(model: nn.Module, dataset, batch: int = 256, workers: int = 0,
                    device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits float32, labels, dataset indices) over the whole dataset, in order."""
    device = torch.device(device)
    model.eval()
    logits, labels, index = [], [], []
    for b in make_loader(dataset, batch, shuffle=False, workers=workers):
        if b is None:
            continue
        x, y, i = b
        logits.append(model(_inputs(x, model, device)).float().cpu())
        labels.append(y)
        index.append(i)
    if not logits:
        raise DataError("no image of the split could be read")
    return torch.cat(logits), torch.cat(labels), torch.cat(index)


def evaluate(model: nn.Module, dataset, batch: int = 256, workers: int = 0, device="cpu") -> EvalResult:
    logits, labels, index = predict_dataset(model, dataset, batch, workers, device)
    loss = float(F.cross_entropy(logits, labels))
    return EvalResult(classification_metrics(logits, labels), logits, labels, index, loss)


def cams_for(model: nn.Module, dataset, index: np.ndarray, layer: str | None, method: str, batch: int = 128,
             device="cpu", target: np.ndarray | None = None) -> np.ndarray:
    """CAMs (N, S, S) of the dataset items ``index``, for their predicted class (or ``target``)."""
    device = torch.device(device)
    cam = CAM(model, layer, method)
    out = []
    for s in range(0, len(index), batch):
        items = [dataset[int(i)] for i in index[s:s + batch]]
        x = torch.stack([it[0] for it in items])
        t = None if target is None else [int(v) for v in target[s:s + batch]]
        out.append(cam(_inputs(x, model, device), t))
    return np.concatenate(out) if out else np.zeros((0, 1, 1), np.float32)


def pointing_games(model: nn.Module, dataset, index: np.ndarray, boxes: np.ndarray, layer: str | None,
                   methods=METHODS, batch: int = 128, device="cpu") -> dict[str, np.ndarray]:
    """Per CAM method, the pointing-game hits (N,) of the dataset items ``index`` (CAM of the predicted class)
    against their ``boxes`` (N, 4)."""
    return {m: pointing_game(cams_for(model, dataset, index, layer, m, batch, device), boxes) for m in methods}


def display_images(data: ClassifyData, index: np.ndarray) -> np.ndarray:
    """The validation images as (N, S, S, C) uint8, at the model's input size, without augmentation."""
    ds = data.dataset("val")
    fit = fit_size(data.imgsz)
    out = []
    for i in index:
        img = ds.raw(int(i))
        if img is None:  # a file that fails to load: a black square in the gallery
            img = np.zeros((data.imgsz, data.imgsz, data.channels), np.uint8)
        out.append(fit(as_tensor(img)).permute(1, 2, 0).numpy())
    return np.stack(out)


def full_evaluation(model: nn.Module, data: ClassifyData, out_dir: Path, batch: int = 256, workers: int = 0,
                    device="cpu", cam_layer: str | None = None, title: str = "",
                    results_csv: Path | None = None) -> tuple[EvalResult, list[Path]]:
    """Metrics of the validation split, the pointing game where boxes are known, and every figure."""
    out_dir = Path(out_dir)
    ds = data.dataset("val")
    result = evaluate(model, ds, batch, workers, device)
    names = data.names
    idx = result.index.numpy()
    conf, pred = result.probs.max(1)
    conf, pred, labels = conf.numpy(), pred.numpy(), result.labels.numpy()
    boxes = data.val.boxes
    if boxes is not None:
        hits = pointing_games(model, ds, idx, boxes[idx], cam_layer, batch=min(batch, 128), device=device)
        result.pointing_hits = hits["gradcam"]
        result.pointing = float(result.pointing_hits.mean())
        result.pointing_by_method = {m: float(h.mean()) for m, h in hits.items()}
        result.cam_layer = cam_layer or default_layer(model)
    figures = []
    if results_csv is not None and Path(results_csv).is_file():
        figures.append(plots.plot_curves(plots.read_results(results_csv), out_dir / "curves_cls.png", title))
    figures.append(plots.plot_confusion(result.metrics.confusion, names, out_dir / "confusion_matrix.png",
                                        f"{title} top-1 {result.metrics.top1:.3f}".strip()))
    shown = np.arange(min(32, len(idx)))
    images = display_images(data, idx[shown])
    figures.append(plots.plot_predictions(images, labels[shown], pred[shown], conf[shown], names,
                                          out_dir / "preds_grid.png"))
    wrong = np.flatnonzero(pred != labels)
    worst = wrong[np.argsort(-conf[wrong])][:32]
    figures.append(plots.plot_misclassified(display_images(data, idx[worst]) if len(worst) else images[:0],
                                            labels[worst], pred[worst], conf[worst], names,
                                            out_dir / "miscls_grid.png", total=len(wrong)))
    # CAMs: one validation image per class (the first), for its predicted class
    firsts = np.array([np.flatnonzero(labels == c)[0] for c in range(len(names)) if (labels == c).any()][:16])
    images = display_images(data, idx[firsts])
    for method, fname in CAM_FIGURES.items():
        maps = cams_for(model, ds, idx[firsts], cam_layer, method, device=device)
        caps = [f"{names[labels[k]]}\npred {names[pred[k]]}" for k in firsts]
        hits = pointing_game(maps, boxes[idx[firsts]]) if boxes is not None else None
        figures.append(plots.plot_cams(images, maps, caps, out_dir / fname,
                                       f"{method} on {cam_layer or 'layer4'} for the predicted class",
                                       boxes=None if boxes is None else boxes[idx[firsts]], hits=hits))
    return result, figures


def report_markdown(result: EvalResult, names: list[str], figures: list[Path], out_dir: Path,
                    heading: str = "## Classification") -> str:
    """The results table, the per-class table and the figures, as Markdown."""
    s = result.summary()
    cols = ["top1", "top5", "precision", "recall", "f1", "loss"] + (["pointing_game"] if "pointing_game" in s else [])
    lines = [heading, "", f"Validation: {len(result.labels)} images, {len(names)} classes.", "",
             "| " + " | ".join(cols) + " |", "|" + "---:|" * len(cols),
             "| " + " | ".join(f"{s[c]:.4f}" for c in cols) + " |", ""]
    if "pointing_game" in s:
        lines += ["Pointing game: share of validation images whose Grad-CAM maximum (for the predicted class) "
                  "lies inside the object's box."]
        if result.pointing_by_method:
            lines += [f"Every CAM method on `{result.cam_layer}`: " + ", ".join(
                f"{m} {v:.4f}" for m, v in result.pointing_by_method.items()) + "."]
        lines += [""]
    lines += ["Per class (precision and recall as scikit-learn defines them; macro = plain mean):", "",
              result.metrics.table(names), ""]
    for f in figures:
        rel = Path(f).resolve().relative_to(Path(out_dir).resolve()) if Path(f).resolve().is_relative_to(
            Path(out_dir).resolve()) else Path(f)
        lines += [f"![{Path(f).stem}]({rel.as_posix()})", ""]
    return "\n".join(lines)
