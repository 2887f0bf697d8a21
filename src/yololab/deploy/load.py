"""One loader for every detector file: ``load_detector(path) -> (callable, meta)``.

What ``yololab predict`` and ``yololab val`` run, whatever the user hands them:

* a weights file that :func:`yololab.models.build_model` reads (yololab, Ultralytics, yolov5, Darknet; the
  model is recognised from the file by :func:`yololab.checkpoint.convert.model_for_weights`), prepared by
  :func:`yololab.deploy.runtime.prepare_for_inference` in the requested execution mode (``auto``: the fastest
  within the tolerance of docs/design.md);
* a zoo model name without weights (random initialisation: for trying the pipeline, not for results);
* an exported model (:mod:`yololab.deploy.export`): an ``.onnx`` file (run by ONNX Runtime), an OpenVINO
  ``.xml`` or the folder holding it (run by OpenVINO in float32 precision: INT8 layers stay INT8, the
  layers left in float, the box decoding among them, are not rounded to bf16).

The callable takes a float32 ``(B, 3, H, W)`` RGB tensor in [0, 1] and returns the model's eval output
(``meta.anchor_based`` says which layout: :mod:`yololab.nn.heads`), as a float32 tensor.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from yololab.deploy.export import META_FORMAT, META_KEY, OPSET, export_detector, openvino_dir_xml
from yololab.deploy.runtime import openvino_core, openvino_request, ort_session, prepare_for_inference
from yololab.errors import WeightsError, YololabError


@dataclass
class DetectorMeta:
    """What a caller needs to feed a loaded detector and to read its output."""

    name: str                         # zoo name, e.g. "yolov8n"
    num_classes: int
    names: list[str]                  # class names, index = class id
    anchor_based: bool                # output layout: (B, A, 5 + nc) if True, else (B, 4 + nc, A)
    strides: list[int]
    imgsz: tuple[int, int] | None     # fixed (h, w) input of a static export; None: any multiple of the stride
    batch: int | None                 # fixed batch of a static export; None: any
    runtime: str                      # "torch", "onnxruntime" or "openvino"
    mode: str                         # the execution mode (prepare_for_inference's) or the runtime's name
    precision: str                    # "fp32", "bf16", "fp16" (weights), "int8"
    source: str                       # the file it came from, or "random init"

    @property
    def stride(self) -> int:
        return max(self.strides)

    def to_dict(self) -> dict:
        return asdict(self)


class LoadedDetector(NamedTuple):
    """``model(x) -> eval output`` and its :class:`DetectorMeta`; callable itself, and unpacks as a pair."""

    model: Callable[[torch.Tensor], torch.Tensor]
    meta: DetectorMeta

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def runtime_of(mode: str) -> str:
    """The library that runs an execution mode of :func:`yololab.deploy.runtime.prepare_for_inference`."""
    return "openvino" if mode.startswith("openvino") else "onnxruntime" if mode == "onnx" else "torch"


def default_names(num_classes: int) -> list[str]:
    """COCO's 80 names for an 80-class model, else ``class0``, ``class1``..."""
    if num_classes == 80:
        from yololab.data.download import COCO_NAMES

        return list(COCO_NAMES)
    return [f"class{i}" for i in range(num_classes)]


def _as_list(names: Any, num_classes: int) -> list[str] | None:
    """Class names as a checkpoint keeps them (a list, or a dict id -> name as Ultralytics does) -> a list."""
    if isinstance(names, dict):
        names = [names.get(i, names.get(str(i), f"class{i}")) for i in range(num_classes)]
    if isinstance(names, (list, tuple)) and len(names) == num_classes:
        return [str(n) for n in names]
    return None


def checkpoint_names(path: Path, fmt: str, num_classes: int) -> list[str]:
    """The class names a weights file carries, or :func:`default_names`."""
    from yololab.checkpoint.native import load_checkpoint
    from yololab.checkpoint.reference import read_reference_checkpoint

    names = None
    if fmt == "yololab":
        ckpt = load_checkpoint(path)
        names = ckpt.get("names") or (ckpt.get("meta") or {}).get("names")
    elif fmt in ("ultralytics", "yolov5"):
        names = read_reference_checkpoint(path).names
    return _as_list(names, num_classes) or default_names(num_classes)


def exported_kind(path: Path) -> str | None:
    """``"onnx"``, ``"openvino"`` or None (a weights file), from the name: exported graphs have no magic bytes."""
    if path.is_dir() or path.suffix.lower() == ".xml":
        return "openvino"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    return None


def load_detector(weights: str | os.PathLike | None = None, *, model: str | nn.Module | None = None,
                  num_classes: int | None = None, mode: str = "auto", threads: int | None = None) -> LoadedDetector:
    """Load a detector from ``weights`` (any file of the module docstring) or build ``model``; see above.

    Args:
        weights: a weights file, an exported ``.onnx`` / OpenVINO ``.xml`` (or its folder), or None.
        model: a zoo name: with ``weights``, the model the file must hold (an exported file of another model is
            refused; a weights file is loaded into this model); without, a random-init model. Or a zoo
            ``nn.Module`` (its weights are used as they are).
        num_classes: the class count the caller expects (a dataset's): a file with another count is refused
            (an exported one) or loads with its class outputs at init and a warning (a weights file).
        mode: execution mode for PyTorch weights (:data:`yololab.deploy.runtime.MODES` or ``"auto"``).
            Exported files run in their own runtime: only ``"auto"`` is accepted for them.
        threads: inference threads (default: PyTorch's).
    """
    if weights is not None:
        path = Path(weights)
        if not path.exists():
            raise WeightsError(f"{path}: no such weights file")
        kind = exported_kind(path)
        if kind is not None:
            if mode != "auto":
                raise YololabError(f"{path}: an exported {kind} model runs in its own runtime; --mode {mode} "
                                   "applies to PyTorch weights (leave it at auto)")
            expect = model if isinstance(model, str) or model is None else model.meta.name
            return _load_exported(path, kind, expect, num_classes, threads)
    net, names, source = build_detector(weights, model, num_classes)
    runner = prepare_for_inference(net, mode, threads=threads)
    meta = net.meta
    return LoadedDetector(runner, DetectorMeta(
        name=meta.name, num_classes=meta.num_classes, names=names, anchor_based=meta.anchor_based,
        strides=[int(s) for s in meta.strides], imgsz=None, batch=None, runtime=runtime_of(runner.mode), mode=runner.mode,
        precision="bf16" if "bf16" in runner.mode else "fp32", source=source))


def build_detector(weights: str | os.PathLike | None, model: str | nn.Module | None,
                   num_classes: int | None) -> tuple[nn.Module, list[str], str]:
    """(zoo model with its weights, class names, source) for a weights file and/or a model name or module."""
    from yololab.checkpoint.convert import model_for_weights
    from yololab.checkpoint.load import build_model, detect_format
    from yololab.models.registry import build, resolve_name

    if isinstance(model, nn.Module):
        if weights is not None:
            raise YololabError("pass either a model object or a weights file, not both")
        if not hasattr(model, "meta"):
            raise YololabError(f"{type(model).__name__}: not a yololab zoo detector (no .meta)")
        return model, default_names(model.meta.num_classes), "model object"
    if weights is None:
        if model is None:
            raise YololabError("nothing to load: give a weights file or a model name")
        net = build(resolve_name(model), num_classes=num_classes or 80)
        return net, default_names(net.meta.num_classes), "random init"
    path = Path(weights)
    fmt = detect_format(path)
    name, file_nc, kwargs = model_for_weights(path, model)
    nc = num_classes or file_nc or 80
    net = build_model(name, num_classes=nc, weights=path, **kwargs)
    names = checkpoint_names(path, fmt, nc) if file_nc in (None, nc) else default_names(nc)
    return net, names, str(path)


# ------------------------------------------------------------------------------------------------ exported files

def read_export_metadata(path: Path, kind: str) -> tuple[dict, Any]:
    """(metadata dict, the runtime's model object) of an exported file; refuses files yololab did not export."""
    if kind == "onnx":
        try:
            session = ort_session(path, threads=None)
        except Exception as e:  # ONNX Runtime raises its own exception types for unreadable files
            raise WeightsError(f"{path}: ONNX Runtime cannot read it ({str(e).splitlines()[0][:200]})") from None
        text = session.get_modelmeta().custom_metadata_map.get(META_KEY)
        handle = session
    else:
        xml = openvino_dir_xml(path) if path.is_dir() else path
        try:
            ov_model = openvino_core().read_model(str(xml))
        except Exception as e:  # OpenVINO raises RuntimeError with a long C++ trace
            raise WeightsError(f"{xml}: OpenVINO cannot read it ({str(e).splitlines()[0][:200]})") from None
        text = ov_model.get_rt_info([META_KEY]).astype(str) if ov_model.has_rt_info([META_KEY]) else None
        handle = ov_model
    try:
        meta = json.loads(text) if text else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise WeightsError(f"{path}: an {kind} model without yololab metadata (exported by another tool?); "
                           "export it with `yololab export`")
    return meta, handle


def _load_exported(path: Path, kind: str, expect_model: str | None, expect_nc: int | None,
                   threads: int | None) -> LoadedDetector:
    meta, handle = read_export_metadata(path, kind)
    if expect_model is not None:
        from yololab.models.registry import resolve_name

        if resolve_name(expect_model) != meta["model"]:
            raise WeightsError(f"{path}: an export of {meta['model']}, not of {resolve_name(expect_model)}")
    if expect_nc is not None and expect_nc != meta["num_classes"]:
        raise WeightsError(f"{path}: an export of {meta['model']} with {meta['num_classes']} classes, where "
                           f"{expect_nc} are expected (another dataset's model?)")
    runner = ExportedModel(handle, kind, meta, threads)
    return LoadedDetector(runner, DetectorMeta(
        name=meta["model"], num_classes=meta["num_classes"], names=list(meta["names"]),
        anchor_based=bool(meta["anchor_based"]), strides=[int(s) for s in meta["strides"]],
        imgsz=None if meta["dynamic"] else tuple(meta["imgsz"]), batch=None if meta["dynamic"] else meta["batch"],
        runtime="onnxruntime" if kind == "onnx" else "openvino", mode="onnxruntime" if kind == "onnx" else "openvino",
        precision=meta["precision"], source=str(path)))


def load_exported_for_val(weights: str | os.PathLike, data: str | os.PathLike, split: str = "val",
                          imgsz: int = 640, batch: int = 32, model: str | None = None, verbose: bool = True):
    """(exported detector, validation dataset) for ``yololab val --weights model.onnx`` (or an OpenVINO ``.xml`` /
    folder): what :func:`yololab.detect.val.load_for_val` gives for weights files. The export must be of
    ``model`` (when given) with the data's class count (else a :class:`WeightsError` naming the file). A dynamic
    export is scored in rect batches at ``imgsz``, as PyTorch weights are; a static one at its own square size
    (every image letterboxed to it; a non-square static export is refused), whatever ``imgsz`` says."""
    from yololab.detect.val import val_config, val_dataset

    cfg = val_config(data, split)
    det = load_detector(weights, model=model, num_classes=cfg.num_classes)
    meta = det.meta
    if meta.imgsz is None:
        return det, val_dataset(cfg, split, imgsz, batch, meta.stride, verbose=verbose, model_name=meta.name)
    h, w = meta.imgsz
    if h != w:
        raise YololabError(f"{weights}: exported for {h}x{w} inputs only; validation letterboxes to a square: "
                           "export with a square --imgsz, or with --dynamic")
    return det, val_dataset(cfg, split, h, batch, meta.stride, verbose=verbose, rect=False, model_name=meta.name)


class ExportedModel:
    """An exported detector as a callable: float32 ``(B, 3, H, W)`` -> float32 eval output.

    A static export takes its own (h, w) only; its fixed batch is met by running larger batches in chunks and
    padding a smaller one. OpenVINO compiles one request per input shape (a dynamic IR is reshaped to it first:
    both runtimes optimise a fixed shape best), in float32 precision.
    """

    def __init__(self, handle: Any, kind: str, meta: dict, threads: int | None):
        self.kind, self.meta = kind, meta
        self.threads = threads or torch.get_num_threads()
        self.batch = None if meta["dynamic"] else int(meta["batch"])
        self.imgsz = None if meta["dynamic"] else tuple(meta["imgsz"])
        self._session = handle if kind == "onnx" else None
        self._ov_model = handle if kind == "openvino" else None
        self._requests: dict[tuple[int, ...], Any] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.dtype != torch.float32:
            raise ValueError(f"expected a float32 (B, 3, H, W) tensor, got {tuple(x.shape)} {x.dtype}")
        if self.imgsz is not None and tuple(x.shape[2:]) != self.imgsz:
            raise YololabError(f"this model was exported for {self.imgsz[0]}x{self.imgsz[1]} inputs (static "
                               f"shape), got {x.shape[2]}x{x.shape[3]}; export with --dynamic for other sizes")
        if self.batch is None or x.shape[0] == self.batch:
            return self._run(x.contiguous().numpy())
        outs = []
        for chunk in x.split(self.batch):
            n = chunk.shape[0]
            if n < self.batch:
                chunk = torch.cat([chunk, chunk.new_zeros(self.batch - n, *chunk.shape[1:])])
            outs.append(self._run(chunk.contiguous().numpy())[:n])
        return torch.cat(outs)

    def _run(self, x: np.ndarray) -> torch.Tensor:
        if self.kind == "onnx":
            return torch.from_numpy(self._session.run(None, {self._session.get_inputs()[0].name: x})[0])
        request = self._requests.get(x.shape)
        if request is None:
            model = self._ov_model
            if model.inputs[0].get_partial_shape().is_dynamic:
                model = model.clone()
                model.reshape({model.inputs[0]: list(x.shape)})
            request = openvino_request(model, "f32", self.threads)
            self._requests[x.shape] = request
        res = request.infer({0: x}, share_inputs=True, share_outputs=False)
        return torch.from_numpy(res[request.model_outputs[0]])


def check_imgsz(net: nn.Module, imgsz: Sequence[int]) -> None:
    """Refuse an input size that is not a multiple of the detector's largest stride (the feature maps would not
    tile the input)."""
    stride = int(max(net.meta.strides))
    if any(s % stride for s in imgsz):
        raise YololabError(f"--imgsz {' '.join(map(str, imgsz))}: must be multiples of {net.meta.name}'s stride "
                           f"{stride}")


def run_export(weights: str | os.PathLike | None, out: str | os.PathLike, *, model: str | None = None,
               num_classes: int | None = None, fmt: str = "onnx", imgsz: tuple[int, int] = (640, 640),
               batch: int = 1, dynamic: bool = False, opset: int = OPSET, half: bool = False, int8: bool = False,
               data: str | os.PathLike | None = None, calib_images: int = 300) -> Path:
    """``yololab export``: the detector of ``weights`` (or random-init ``model``) -> ``out``
    (:func:`yololab.deploy.export.export_detector`); ``--int8`` calibrates on the train images of ``data``."""
    net, names, source = build_detector(weights, model, num_classes)
    check_imgsz(net, imgsz)
    calibration = None
    if int8:
        if data is None:
            raise YololabError("--int8 needs calibration images: pass --data DATA.yaml")
        from yololab.deploy.quantize import calibration_inputs

        calibration = calibration_inputs(data, imgsz, n=calib_images)
    return export_detector(net, out, fmt=fmt, imgsz=imgsz, batch=batch, dynamic=dynamic, opset=opset, half=half,
                           int8=int8, calibration=calibration, names=names, source=source)
