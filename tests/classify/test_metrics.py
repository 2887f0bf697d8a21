"""Top-k accuracy, confusion matrix and per-class P/R/F1 against scikit-learn."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import (
    confusion_matrix,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from yololab.classify.metrics import classification_metrics, topk_correct


def test_against_scikit_learn():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 7, generator=g)
    labels = torch.randint(0, 7, (300,), generator=g)
    labels[labels == 6] = 5  # class 6 never true: recall 0/0 -> 0, as scikit-learn's zero_division=0
    logits[:, 2] -= 10       # class 2 never predicted: precision 0/0 -> 0
    m = classification_metrics(logits, labels)
    y, p = labels.numpy(), logits.argmax(1).numpy()
    np.testing.assert_array_equal(m.confusion, confusion_matrix(y, p, labels=range(7)))
    prec, rec, f1, support = precision_recall_fscore_support(y, p, labels=range(7), zero_division=0)
    np.testing.assert_allclose(m.precision, prec)
    np.testing.assert_allclose(m.recall, rec)
    np.testing.assert_allclose(m.f1, f1)
    np.testing.assert_array_equal(m.support, support)
    assert np.isclose(m.top1, (y == p).mean())
    assert np.isclose(m.top5, top_k_accuracy_score(y, logits.softmax(1).numpy(), k=5, labels=range(7)))
    s = m.summary()
    assert np.isclose(s["f1"], f1.mean()) and set(s) == {"top1", "top5", "precision", "recall", "f1"}
    assert "| **macro** |" in m.table([f"c{i}" for i in range(7)])


def test_topk_caps_k_at_the_class_count():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert topk_correct(logits, torch.tensor([2, 0]), (1, 5)) == {1: 1, 5: 2}
