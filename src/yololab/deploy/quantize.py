"""INT8 post-training quantization, each runtime with its own quantizer, calibrated on training images.

* OpenVINO: NNCF's ``nncf.quantize`` (min-max statistics over the calibration images, ``MIXED`` preset:
  symmetric weights, asymmetric activations, then fast bias correction), as Ultralytics' INT8 export does.
* ONNX: ONNX Runtime's ``quantize_static`` (QDQ format, per-channel int8 weights, uint8 activations,
  min-max calibration), after its shape-inference pre-processing.

Both leave the head's box decoding in float (:func:`yololab.deploy.export.head_decode_nodes`): 8 bits over a
0-640 px coordinate range would be a 2.5 px step. Which one is faster and keeps mAP is measured in
benchmarks/README.md ("INT8").
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from yololab.data.augment import letterbox
from yololab.data.io import read_image
from yololab.data.yolo import load_data_yaml
from yololab.errors import DataError, YololabError


def calibration_inputs(data_yaml: str | os.PathLike, imgsz: tuple[int, int], n: int = 300,
                       split: str = "train") -> list[torch.Tensor]:
    """Up to ``n`` images of ``split`` (spread evenly over it), letterboxed to ``imgsz`` (h, w): float32
    ``(1, 3, h, w)`` RGB in [0, 1], as the detector sees them. Unreadable images are skipped with a warning."""
    cfg = load_data_yaml(data_yaml)
    paths = cfg.splits.get(split) or []
    if not paths:
        raise DataError(f"{data_yaml}: no '{split}' images for INT8 calibration")
    picked = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(n, len(paths))).round()]
    inputs = []
    for path in dict.fromkeys(picked):
        try:
            img = read_image(path)
        except DataError as e:
            warnings.warn(f"skipping a calibration image: {e}", stacklevel=2)
            continue
        img, _, _ = letterbox(img, imgsz)
        rgb = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))
        inputs.append(torch.from_numpy(rgb).float().div_(255).unsqueeze(0))
    if not inputs:
        raise DataError(f"{data_yaml}: none of the {len(picked)} '{split}' images could be read for calibration")
    return inputs


def quantize_openvino(ov_model, calibration: Sequence[torch.Tensor], keep_float: Sequence[str]):
    """An OpenVINO model quantized to INT8 by NNCF on ``calibration`` inputs; ``keep_float`` node names stay float."""
    try:
        import nncf
    except ImportError:
        raise YololabError("--int8 with --format openvino needs NNCF: pip install nncf") from None
    dataset = nncf.Dataset([x.numpy() for x in calibration])
    scope = nncf.IgnoredScope(names=list(keep_float), validate=False)
    log = logging.getLogger("nncf")  # NNCF logs a line per node it leaves unquantized at INFO
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        return nncf.quantize(ov_model, dataset, preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration),
                             ignored_scope=scope)
    finally:
        log.setLevel(level)


def quantize_onnx(src: Path, dst: Path, calibration: Sequence[torch.Tensor], keep_float: Sequence[str]) -> Path:
    """``src`` quantized to INT8 (QDQ) by ONNX Runtime on ``calibration`` inputs, written to ``dst``."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"input0": x.numpy()} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    prepared = dst.with_name("prepared.onnx")
    quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=list(keep_float), calibrate_method=CalibrationMethod.MinMax)
    return dst
