"""Image classification: ResNet from primitives, CIFAR / folder data, MixUp-CutMix, CAM methods, the task.

Names load lazily, so that the CLI modules of this package (standard library only) import no torch.
"""

import importlib

_EXPORTS = {"BasicBlock": "yololab.classify.resnet", "Bottleneck": "yololab.classify.resnet",
            "ResNet": "yololab.classify.resnet", "build_classifier": "yololab.classify.registry",
            "list_classifiers": "yololab.classify.registry", "load_classifier": "yololab.classify.registry"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'yololab.classify' has no attribute {name!r}")
