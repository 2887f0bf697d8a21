"""Export a detector to the files other runtimes read: ONNX (ONNX Runtime, OpenVINO) and OpenVINO IR, in float32,
with fp16 weights, or quantized to INT8 (:mod:`yololab.deploy.quantize`).

An exported file holds the network in the layout of the model's eval output (anchor-free ``(B, 4 + nc, A)``,
anchor-based ``(B, A, 5 + nc)``: :mod:`yololab.nn.heads`) and, as JSON, what a reader needs to use it
(:func:`detector_metadata`: model name, class names, input size, precision): ONNX keeps it in the model's
``metadata_props`` under ``"yololab"``, OpenVINO IR in the model's ``rt_info`` under the same key.
:func:`yololab.deploy.load.load_detector` reads both back and refuses a file of another model or class count.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from yololab import __version__
from yololab.errors import YololabError
from yololab.fileio import atomic_path, write_bytes_atomic

OPSET = 17
FORMATS = ("onnx", "openvino")
META_KEY = "yololab"  # ONNX metadata_props key / OpenVINO rt_info key of the JSON metadata
META_FORMAT = "yololab-export"


class FlatOutputs(nn.Module):
    """Returns a model's outputs as a flat tuple of tensors (what ONNX export and ONNX Runtime speak)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        leaves, _ = tree_flatten(self.model(x))
        return tuple(leaves)


def _flat(out) -> list[torch.Tensor]:
    leaves, _ = tree_flatten(out)
    return [t for t in leaves if isinstance(t, torch.Tensor)]


def dynamic_axes(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, dict[int, str]]:
    """ONNX dynamic axes: batch, height and width of every 4-D input, and the output dimensions that follow them.

    Which output dimensions follow the input is found by running ``module`` once more on inputs one larger in
    batch and 64 pixels larger in height and width (a multiple of every stride) and seeing which sizes moved.
    """
    grown = tuple(torch.zeros(x.shape[0] + 1, x.shape[1], x.shape[2] + 64, x.shape[3] + 64) if x.dim() == 4 else x
                  for x in inputs)
    with torch.no_grad():
        before, after = _flat(module(*inputs)), _flat(module(*grown))
    axes = {}
    for i, x in enumerate(inputs):
        if x.dim() == 4:
            axes[f"input{i}"] = {0: "batch", 2: f"height{i}", 3: f"width{i}"}
    for i, (a, b) in enumerate(zip(before, after)):
        moved = {d: ("batch" if d == 0 else f"out{i}_dim{d}") for d in range(a.dim()) if a.shape[d] != b.shape[d]}
        if moved:
            axes[f"output{i}"] = moved
    return axes


def export_onnx(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: str | os.PathLike, opset: int = OPSET,
                dynamic: bool = False, metadata: dict | None = None) -> Path:
    """Export ``module`` (returning a tensor or a flat tuple of tensors) for these input shapes to ``path``.

    Inputs are named ``input0``, ``input1``...; outputs ``output0``... With ``dynamic`` the batch, height and
    width of every 4-D input may change (the anchor grids are then computed in the graph from the input's
    shape); otherwise the shapes are fixed, and the anchor grids are constants. ``metadata`` (JSON-able) is
    stored in the model's ``metadata_props`` under :data:`META_KEY`. Written atomically. The TorchScript
    exporter (``dynamo=False``) takes ~2.5 s for yolov8n at 640; read by OpenVINO it gives the same graph as
    ``ov.convert_model`` on the torch module (~7 s, which traces with the deprecated ``torch.jit.trace``).
    """
    path = Path(path)
    module = module.eval()  # the exporter restores the train/eval flag afterwards, recursively
    n_out = len(_flat(module(*inputs)))
    axes = dynamic_axes(module, inputs) if dynamic else None
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(module, inputs, tmp, dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=[f"input{i}" for i in range(len(inputs))],
                          output_names=[f"output{i}" for i in range(n_out)], dynamic_axes=axes)
        if metadata is not None:
            import onnx

            proto = onnx.load(tmp)
            proto.metadata_props.add(key=META_KEY, value=json.dumps(metadata))
            onnx.save(proto, tmp)
    return path


# ------------------------------------------------------------------------------------------------ detectors

def detector_metadata(model: nn.Module, imgsz: tuple[int, int], batch: int, dynamic: bool, precision: str,
                      names: Sequence[str], source: str = "") -> dict:
    """What an exported detector carries: enough to run it and to refuse it where it does not fit."""
    meta = model.meta
    return {"format": META_FORMAT, "version": 1, "yololab": __version__, "model": meta.name,
            "num_classes": meta.num_classes, "names": list(names), "anchor_based": meta.anchor_based,
            "strides": list(meta.strides), "imgsz": list(imgsz), "batch": batch, "dynamic": dynamic,
            "precision": precision, "source": source}


def head_decode_nodes(onnx_path: str | os.PathLike, keep_output_convs: bool = False) -> list[str]:
    """Names of the ONNX nodes of the head's box decoding (and, with ``keep_output_convs``, of its 1x1 output
    convolutions): what INT8 quantization leaves in float.

    The decoding (grid offsets, strides, DFL softmax and expectation, sigmoids) turns logits into pixel
    coordinates; 8 bits over a 0-640 px range would be a 2.5 px step. The TorchScript exporter names every node
    by the module path it came from (``/model/`` first, the :class:`FlatOutputs` wrapper), so the decoding is every
    node directly inside ``/head/`` (the head's own
    ``forward``) and inside ``/head/dfl/``; the output convs are ``/head/<branch>.<level>.<last>/Conv`` (and
    ``/head/m.<level>/Conv`` for anchor-based heads).
    """
    import onnx

    names = []
    for node in onnx.load(str(onnx_path), load_external_data=False).graph.node:
        parts = node.name.strip("/").split("/")
        parts = parts[1:] if parts[0] == "model" else parts  # the FlatOutputs wrapper's attribute
        if parts[0] != "head" or node.op_type == "Constant":
            continue
        if len(parts) == 2 or parts[1] == "dfl":
            names.append(node.name)
        elif keep_output_convs and len(parts) == 3 and node.op_type == "Conv" and \
                (parts[1].startswith("m.") or parts[1].count(".") == 2 and parts[1].endswith(".2")):
            names.append(node.name)
    return names


def export_detector(model: nn.Module, out: str | os.PathLike, fmt: str = "onnx", imgsz: tuple[int, int] = (640, 640),
                    batch: int = 1, dynamic: bool = False, opset: int = OPSET, half: bool = False,
                    int8: bool = False, calibration: Sequence[torch.Tensor] | None = None,
                    names: Sequence[str] | None = None, source: str = "") -> Path:
    """Export a zoo detector (fused copy, eval mode) and return the file written (for OpenVINO: the ``.xml``).

    Args:
        model: a yololab zoo detector (``model.meta``); copied, never modified.
        out: ``.onnx`` file, or for OpenVINO the ``.xml`` file (its ``.bin`` is written beside it).
        fmt: ``"onnx"`` or ``"openvino"``.
        imgsz: (height, width) of the example input; with ``dynamic`` any multiple of the largest stride works.
        batch: batch size of the example input (fixed unless ``dynamic``).
        half: OpenVINO only: store the weights in fp16 (OpenVINO still computes in float32, or bf16 by hint).
        int8: post-training quantization on ``calibration`` (float32 ``(1, 3, H, W)`` inputs in [0, 1]):
            NNCF for OpenVINO, ONNX Runtime's ``quantize_static`` for ONNX (:mod:`yololab.deploy.quantize`).
        names: class names stored in the metadata (default ``class0``, ``class1``...).
        source: the weights file it came from, stored in the metadata.
    """
    if fmt not in FORMATS:
        raise YololabError(f"unknown export format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if half and fmt == "onnx":
        raise YololabError("--half: ONNX Runtime's CPU provider runs float32 (and int8), not fp16; use --format "
                           "openvino --half (fp16 weights), or --int8")
    if half and int8:
        raise YololabError("--half and --int8 exclude each other: choose one precision")
    if int8 and not calibration:
        raise YololabError("--int8 needs calibration images: pass --data DATA.yaml")
    out = Path(out)
    model = copy.deepcopy(model).float().eval()
    model.fuse()
    nc = model.meta.num_classes
    names = list(names) if names is not None else [f"class{i}" for i in range(nc)]
    if len(names) != nc:
        raise YololabError(f"{len(names)} class names for a model with {nc} classes")
    precision = "int8" if int8 else "fp16" if half else "fp32"
    meta = detector_metadata(model, imgsz, batch, dynamic, precision, names, source)
    x = torch.zeros(batch, 3, *imgsz)
    with tempfile.TemporaryDirectory(prefix="yololab-export-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(FlatOutputs(model), (x,), onnx_path, opset=opset, dynamic=dynamic,
                    metadata=meta if fmt == "onnx" else None)
        if fmt == "onnx":
            if int8:
                from yololab.deploy.quantize import quantize_onnx

                quantize_onnx(onnx_path, Path(tmp) / "int8.onnx", calibration, head_decode_nodes(onnx_path))
                onnx_path = Path(tmp) / "int8.onnx"
            write_bytes_atomic(out, onnx_path.read_bytes())
            return out
        return _save_openvino(onnx_path, out, meta, half, calibration if int8 else None)


def _save_openvino(onnx_path: Path, xml: Path, meta: dict, half: bool,
                   calibration: Sequence[torch.Tensor] | None) -> Path:
    """ONNX -> OpenVINO IR (``xml`` + ``.bin``), quantized if ``calibration`` is given, metadata in rt_info."""
    import openvino as ov

    ov_model = ov.convert_model(str(onnx_path))
    if calibration is not None:
        from yololab.deploy.quantize import quantize_openvino

        ov_model = quantize_openvino(ov_model, calibration, head_decode_nodes(onnx_path))
    ov_model.set_rt_info(json.dumps(meta), [META_KEY])
    with tempfile.TemporaryDirectory(prefix="yololab-ir-") as tmp:
        ov.save_model(ov_model, str(Path(tmp) / "model.xml"), compress_to_fp16=half)
        # the .bin first: a reader that finds the new .xml always finds its weights
        write_bytes_atomic(xml.with_suffix(".bin"), (Path(tmp) / "model.bin").read_bytes())
        write_bytes_atomic(xml, (Path(tmp) / "model.xml").read_bytes())
    return xml


def openvino_dir_xml(folder: Path) -> Path:
    """The one ``.xml`` inside an OpenVINO model folder (Ultralytics' ``*_openvino_model/`` layout)."""
    found = sorted(folder.glob("*.xml"))
    if len(found) != 1:
        raise YololabError(f"{folder}: expected one OpenVINO .xml model in the folder, found "
                           f"{len(found) or 'none'}{': ' + ', '.join(p.name for p in found) if found else ''}")
    return found[0]
