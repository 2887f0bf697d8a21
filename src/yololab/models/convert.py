"""Map a reference state dict (yolov5 v7.0 / Ultralytics ``model.{i}.<rest>`` keys) onto a yololab detector.

The references keep their network as one ``nn.Sequential`` called ``model`` indexed by YAML row, so
every key is ``model.{i}.<rest>``. Our detectors list, in ``model.reference_layers[i]``, the module
that plays the part of row ``i``, and use the same names below it (conv/bn/act, cv1/cv2/cv3/m, dfl),
so the conversion is a prefix rename plus one convention:

* anchors (anchor-based heads): yolov5 stores ``Detect.anchors`` divided by the level's stride (grid
  units); yololab's ``AnchorHead.anchors`` buffer holds them in input pixels. We multiply by the stride.

The mapping is strict: any key we cannot place, any key we need and do not get, and any shape that
differs is reported (the first one, with its names) as a :class:`~yololab.errors.WeightsError`.
"""

from __future__ import annotations

import torch

from yololab.errors import WeightsError
from yololab.models.base import Detector


def _rename(model: Detector, key: str) -> str:
    parts = key.split(".", 2)
    if len(parts) < 3 or parts[0] != "model" or not parts[1].isdigit():
        raise WeightsError(f"reference key {key!r} is not of the form 'model.<index>.<name>'")
    i = int(parts[1])
    if i >= len(model.reference_layers):
        raise WeightsError(f"reference key {key!r} names layer {i}, but {model.meta.name} has only "
                           f"{len(model.reference_layers)} reference layers (0..{len(model.reference_layers) - 1})")
    return f"{model.reference_layers[i]}.{parts[2]}"


def reference_state_dict_to_yololab(model: Detector, ref_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return ``model``'s state dict filled from ``ref_state`` (keys ``model.{i}.<rest>``).

    Raises :class:`WeightsError` naming the first unexpected key, missing key or shape mismatch.
    """
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in ref_state.items():
        new_key = _rename(model, key)
        if new_key not in own:
            raise WeightsError(f"reference key {key!r} (-> {new_key!r}) has no counterpart in {model.meta.name}")
        if new_key == "head.anchors":  # yolov5: grid units -> yololab: pixels
            strides = torch.tensor(model.head.strides, dtype=value.dtype, device=value.device)
            value = value * strides.view(-1, 1, 1)
        if value.shape != own[new_key].shape:
            raise WeightsError(f"shape mismatch for {key!r} -> {new_key!r}: the file has {tuple(value.shape)}, "
                               f"{model.meta.name} (nc={model.meta.num_classes}) expects {tuple(own[new_key].shape)}")
        out[new_key] = value.detach().to(own[new_key].dtype)
    missing = [k for k in own if k not in out]
    if missing:
        raise WeightsError(f"{len(missing)} weights of {model.meta.name} are missing from the reference state, "
                           f"first: {missing[0]!r}")
    return out
