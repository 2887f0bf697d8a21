"""The YOLO model zoo: YOLOv3, YOLOv5, YOLOv8 and YOLO11, each built from yololab.nn primitives.

``build_model(name, num_classes=80, weights=None, **kwargs)`` builds a zoo detector and, with ``weights``, loads
any supported file into it (:func:`yololab.checkpoint.load.build_model`). ``list_models()`` and ``model_info()``
come from the registry. ``build_model``, ``Detector`` and ``ModelMeta`` are resolved on first use, so that
``import yololab.models`` (which every ``yololab.models.*`` import runs) imports no torch and no checkpoint code.
"""

from yololab.models.registry import list_models, model_info

__all__ = ["Detector", "ModelMeta", "build_model", "list_models", "model_info"]


def __getattr__(name: str):
    if name == "build_model":
        from yololab.checkpoint.load import build_model

        return build_model
    if name in ("Detector", "ModelMeta"):
        from yololab.models import base

        return getattr(base, name)
    raise AttributeError(f"module 'yololab.models' has no attribute {name!r}")
