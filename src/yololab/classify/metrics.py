"""Classification metrics from the logits of a whole split: top-k accuracy, confusion matrix, per-class P/R/F1.

Definitions are scikit-learn's (tests/classify/test_metrics.py checks them against it): the confusion
matrix has true classes in rows and predicted classes in columns; precision of class c is
``M[c, c] / sum(M[:, c])``, recall ``M[c, c] / sum(M[c, :])``, F1 their harmonic mean, each 0 where its
denominator is 0; the macro averages are plain means over the classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """How many samples have their true class among the k highest logits, for each k (k capped at the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top == labels[:, None]
    return {k: int(hit[:, :min(k, kmax)].any(1).sum()) for k in ks}


@dataclass
class ClassMetrics:
    confusion: np.ndarray  # (nc, nc) int64: rows true, columns predicted
    top1: float
    top5: float

    @property
    def support(self) -> np.ndarray:
        return self.confusion.sum(1)

    @property
    def precision(self) -> np.ndarray:
        tp, pred = np.diag(self.confusion), self.confusion.sum(0)
        return np.divide(tp, pred, out=np.zeros(len(tp)), where=pred > 0)

    @property
    def recall(self) -> np.ndarray:
        tp = np.diag(self.confusion)
        return np.divide(tp, self.support, out=np.zeros(len(tp)), where=self.support > 0)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return np.divide(2 * p * r, p + r, out=np.zeros(len(p)), where=(p + r) > 0)

    def summary(self) -> dict[str, float]:
        return {"top1": self.top1, "top5": self.top5, "precision": float(self.precision.mean()),
                "recall": float(self.recall.mean()), "f1": float(self.f1.mean())}

    def table(self, names: list[str]) -> str:
        """Markdown: one row per class, then the macro average."""
        rows = ["| class | precision | recall | F1 | images |", "|---|---:|---:|---:|---:|"]
        for i, n in enumerate(names):
            rows.append(f"| {n} | {self.precision[i]:.3f} | {self.recall[i]:.3f} | {self.f1[i]:.3f} | "
                        f"{self.support[i]} |")
        rows.append(f"| **macro** | {self.precision.mean():.3f} | {self.recall.mean():.3f} | {self.f1.mean():.3f} | "
                    f"{self.support.sum()} |")
        return "\n".join(rows)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> ClassMetrics:
    nc = logits.shape[1]
    pred = logits.argmax(1)
    confusion = torch.bincount(labels * nc + pred, minlength=nc * nc).reshape(nc, nc).numpy().astype(np.int64)
    hits = topk_correct(logits, labels)
    n = max(len(labels), 1)
    return ClassMetrics(confusion, hits[1] / n, hits[5] / n)
