"""Classification metrics of a video model: top-k accuracy, confusion matrix, per-class P/R/F1.

Scores come from multi-view testing: the softmax probabilities of a video's clips and crops are
averaged (MMAction2's "prob" averaging) before any metric, so accuracies are video-level.
"""

from __future__ import annotations

import numpy as np


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose true label is among the ``k`` highest scores (k capped at the class count)."""
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(1).mean()) if len(labels) else 0.0


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``cm[true, predicted]``."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, pred), 1)
    return cm


def per_class_prf(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class (0 where undefined, as scikit-learn's zero_division=0)."""
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(0), cm.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def pair_accuracy(probs: np.ndarray, labels: np.ndarray, classes: list[str], pairs) -> dict[str, float]:
    """For each pair (a, b) of classes, accuracy of telling a from b on their videos (scores of a vs b only).

    50 % is chance: what a model blind to the order of frames gets on classes that only motion separates.
    """
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for a, b in pairs:
        if a not in index or b not in index:
            continue
        ia, ib = index[a], index[b]
        rows = np.isin(labels, [ia, ib])
        if rows.any():
            picked = np.where(probs[rows, ia] >= probs[rows, ib], ia, ib)
            out[f"{a}/{b}"] = float((picked == labels[rows]).mean())
    return out


def summarize(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """top1, top5, mean class accuracy, confusion matrix and per-class P/R/F1 of video-level scores."""
    cm = confusion_matrix(probs.argmax(1), labels, len(classes))
    prf = per_class_prf(cm)
    present = prf["support"] > 0
    return {"top1": topk_accuracy(probs, labels, 1), "top5": topk_accuracy(probs, labels, 5),
            "mean_class_acc": float(prf["recall"][present].mean()) if present.any() else 0.0,
            "macro_f1": float(prf["f1"][present].mean()) if present.any() else 0.0,
            "confusion": cm, **prf}
