"""Training on a small real set: scikit-learn's bundled 8x8 handwritten digits, upscaled, as an ImageFolder."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from sklearn.datasets import load_digits

from yololab.cli import main


def write_digits(root, n_train=600, n_val=200, size=16):
    digits = load_digits()  # 1797 real 8x8 scans (UCI), gray levels 0..16
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.images))
    for split, idx in (("train", order[:n_train]), ("val", order[n_train:n_train + n_val])):
        for i in idx:
            img = cv2.resize((digits.images[i] * 255 / 16).astype(np.uint8), (size, size),
                             interpolation=cv2.INTER_LINEAR)
            path = root / split / str(digits.target[i]) / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), img)  # 1-channel PNG
    return root


@pytest.mark.slow
def test_trains_on_real_digits(tmp_path):
    data = write_digits(tmp_path / "data")
    assert main(["classify", "train", "--data", str(data), "--channels", "1", "--imgsz", "16", "--fliplr", "0",
                 "--pad", "2", "--width", "8", "--epochs", "4", "--batch", "32", "--lr0", "0.05", "--workers", "0",
                 "--device", "cpu", "--project", str(tmp_path), "--name", "digits"]) == 0
    ev = json.loads((tmp_path / "digits" / "eval.json").read_text())
    assert ev["top1"] > 0.8, ev  # chance is 0.1
    assert "pointing_game" not in ev  # no boxes in an ImageFolder
