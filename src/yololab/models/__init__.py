"""The YOLO model zoo: YOLOv3, YOLOv5, YOLOv8 and YOLO11, each built from yololab.nn primitives."""

from yololab.models.base import Detector, ModelMeta
from yololab.models.registry import build_model, list_models, model_info

__all__ = ["Detector", "ModelMeta", "build_model", "list_models", "model_info"]
