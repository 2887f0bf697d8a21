"""Image classification: ResNet from primitives, CIFAR / folder data, MixUp-CutMix, CAM methods, the task."""

from yololab.classify.registry import build_classifier, list_classifiers
from yololab.classify.resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "build_classifier", "list_classifiers"]
