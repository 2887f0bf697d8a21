"""The classifier zoo: ``resnet18|34|50`` (ImageNet stem) and ``resnet18|34|50-cifar`` (CIFAR stem)."""

from __future__ import annotations

import difflib
from pathlib import Path

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


def load_classifier(path: str | Path) -> tuple[ResNet, dict]:
    """A classifier and its meta (class names, input size, normalization ...) from a yololab checkpoint."""
    from yololab.checkpoint.native import load_checkpoint
    from yololab.errors import WeightsError

    ckpt = load_checkpoint(path)
    name = ckpt["model_name"]
    if name not in CLASSIFIERS:
        raise WeightsError(f"{path}: a checkpoint of {name!r}, not a classifier ({', '.join(CLASSIFIERS)})")
    meta = dict(ckpt.get("meta") or {})
    kwargs = dict(ckpt.get("model_kwargs") or {})
    model = build_classifier(name, num_classes=int(ckpt["num_classes"]), **kwargs)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise WeightsError(f"{path}: weights do not fit {name} ({str(e).splitlines()[1].strip()[:200]})") from None
    meta.setdefault("names", [str(i) for i in range(model.num_classes)])
    meta.setdefault("model_name", name)
    meta.setdefault("model_kwargs", kwargs)
    return model.eval(), meta
