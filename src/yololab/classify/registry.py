"""The classifier zoo: ``resnet18|34|50`` (ImageNet stem) and ``resnet18|34|50-cifar`` (CIFAR stem)."""

from __future__ import annotations

import difflib

from yololab.classify.resnet import ResNet, resnet18, resnet34, resnet50
from yololab.errors import YololabError

_DEPTHS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}
CLASSIFIERS = [*_DEPTHS, *(f"{n}-cifar" for n in _DEPTHS)]


def list_classifiers() -> list[str]:
    return list(CLASSIFIERS)


def build_classifier(name: str, num_classes: int = 1000, width: int = 64, in_channels: int = 3) -> ResNet:
    """``build_classifier("resnet18-cifar", num_classes=10)``; ``width`` 64 is the paper's (smaller for tests)."""
    if name not in CLASSIFIERS:
        close = difflib.get_close_matches(name, CLASSIFIERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise YololabError(f"unknown classifier {name!r}.{hint} Valid names: {', '.join(CLASSIFIERS)}")
    for what, value in (("num_classes", num_classes), ("width", width), ("in_channels", in_channels)):
        if not isinstance(value, int) or value < 1:
            raise YololabError(f"{what} must be a positive integer, got {value!r}")
    base, _, stem = name.partition("-")
    return _DEPTHS[base](num_classes=num_classes, stem=stem or "imagenet", width=width, in_channels=in_channels)
