"""Metrics against scikit-learn: top-k accuracy, confusion matrix, per-class precision / recall / F1."""

import numpy as np
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support, top_k_accuracy_score

from yololab.video.metrics import pair_accuracy, summarize, topk_accuracy


def test_against_scikit_learn():
    rng = np.random.default_rng(0)
    n, k = 200, 7
    labels = rng.integers(0, k - 1, n)  # the last class never occurs: zero support
    probs = rng.random((n, k)) + np.eye(k)[labels] * rng.random((n, 1)) * 1.5
    probs /= probs.sum(1, keepdims=True)
    m = summarize(probs, labels, [str(i) for i in range(k)])
    assert np.array_equal(m["confusion"], sk_confusion(labels, probs.argmax(1), labels=range(k)))
    p, r, f, s = precision_recall_fscore_support(labels, probs.argmax(1), labels=range(k), zero_division=0)
    np.testing.assert_allclose(m["precision"], p)
    np.testing.assert_allclose(m["recall"], r)
    np.testing.assert_allclose(m["f1"], f)
    assert np.array_equal(m["support"], s)
    for top in (1, 5):
        assert topk_accuracy(probs, labels, top) == top_k_accuracy_score(labels, probs, k=top, labels=range(k))
    assert 0 < m["top1"] < m["top5"] < 1


def test_pair_accuracy_is_chance_for_an_order_blind_model():
    classes = ["MoveLeft", "MoveRight", "Blink"]
    labels = np.array([0, 0, 1, 1, 2])
    blind = np.array([[0.5, 0.4, 0.1]] * 5)  # always prefers MoveLeft within the pair
    assert pair_accuracy(blind, labels, classes, [("MoveLeft", "MoveRight"), ("Grow", "Shrink")]) == \
        {"MoveLeft/MoveRight": 0.5}
