"""Fast CPU inference: one call turns a trained detector into the fastest safe callable for this CPU.

``prepare_for_inference(model, mode)`` returns an :class:`InferenceModel`. Whatever the mode, calling it
with a float32 ``(B, 3, H, W)`` tensor returns float32 outputs in the model's eval layout (the same
structure the plain ``model.eval()(x)`` returns), so callers never care how it was computed.

Modes (the first three each a step on top of the previous one):

``fp32``     a fused copy of the model (BatchNorm folded into the conv before it), ``eval()``, run under
             ``torch.inference_mode()`` (no autograd bookkeeping at all).
``fp32-cl``  + channels-last (NHWC) weights. oneDNN's convolutions are written for NHWC; in the default
             NCHW layout PyTorch reorders every activation before and after every conv.
``bf16-cl``  + ``torch.autocast("cpu", torch.bfloat16)``: convolutions and matmuls run in bfloat16, which
             CPUs with AVX512-BF16 / AMX execute natively at 2x (AVX512-BF16) or far more (AMX) the fp32
             rate; conv weights are stored in bf16 once instead of cast on every call. bfloat16 keeps
             only 8 significant bits, so the *last step* of the zoo's heads (the 1x1 output convs and the
             box decoding) stays float32: decoded in bf16, a coordinate near 600 px would be rounded to a
             multiple of 4 px. On random-weight networks (which amplify any rounding) the outputs move
             by 2-10 % (relative L2) from fp32: 2-6x what merely rounding the input image to bf16 does.
             What that means for detections: benchmarks/README.md.
``onnx``     exported with ``torch.onnx.export`` (one file per input shape, in a temporary folder or
             ``cache_dir``) and run by ONNX Runtime's CPU provider, with all graph optimizations on.
``openvino`` the same ONNX file, read and compiled by OpenVINO's CPU plugin with
             ``INFERENCE_PRECISION_HINT=f32`` (every op in float32: outputs within ~2e-5 relative of the
             fp32 eval model), ``PERFORMANCE_HINT=LATENCY`` (one stream, all threads on one request) and
             ``INFERENCE_NUM_THREADS=threads``. Compiled once per input shape (~2-4 s for yolov8n at 640,
             most of it the ONNX export) and kept with one infer request in the :class:`InferenceModel`.
``openvino-bf16`` the same with ``INFERENCE_PRECISION_HINT=bf16``: OpenVINO runs convolutions and most
             element-wise ops in bfloat16 on AMX / AVX512-BF16. For zoo models with a ``DetectHead``
             (v8, v11) the box decoding runs as a second, float32 OpenVINO model (see :class:`_HeadTail`):
             in bf16 it moved the median box 4x as far and cost 0.001 mAP50-95. (Marking the decoding
             ops ``precise`` / ``disable_fp16_compression`` in one graph changed nothing.) Other models
             run whole in bf16.
``auto``     the fastest mode that keeps mAP unchanged on this machine (:func:`best_mode`):
             ``openvino-bf16`` where OpenVINO is installed and the CPU has native bf16 (``avx512_bf16`` or
             ``amx_bf16``), ``openvino`` where it has not; without OpenVINO, ``bf16-cl`` / ``fp32-cl`` by
             the same rule. On a CPU without native bf16 every bf16 mode is emulated or falls back to
             float32 and is no faster.

Why these, measured (2-core Xeon with AMX in a KVM guest, quiet, torch 2.14, OpenVINO 2026.4, yolov8n /
yolo11n at 640, batch 1; benchmarks/README.md has the tables): against Ultralytics' default path
(AutoBackend, fused, channels-last, ~46 ms), ``fp32-cl`` and ``onnx`` take 0.93-1.03x, ``openvino``
0.65-0.73x, ``bf16-cl`` 0.53-0.62x and ``openvino-bf16`` 0.35-0.40x. No float32 mode can reach 0.4x here:
yolov8n needs 8.7 GFLOPs per 640 image, and two cores at a ~320 GFLOP/s AVX-512 FMA peak need ~27 ms for
that even at 100 % efficiency, against a ~19 ms target. The bf16 modes were checked on a *trained*
yolov8n (benchmarks/inference_accuracy.py, COCO mAP on 200 synthetic val images at 320): mAP50-95 moved
by -0.0004 (``bf16-cl``) and -0.0008 (``openvino-bf16``), mAP50 by -0.0005 / -0.0001, from fp32's 0.2368
/ 0.3356; within 0.001 is what "mAP unchanged" means here, and what makes ``openvino-bf16`` an acceptable
default. Choose ``mode="openvino"`` where closeness to the PyTorch model matters more than speed.

Also measured and left out (same machine, noisy): ``torch.compile`` (inductor, freezing) takes 8-37 s to
compile per input shape and gained ~10 % in fp32 and 5-25 % in bf16, but its bf16 boxes were 13x further
from fp32 than this module's (the float32 head sections seemed not to survive freezing); ``torch.jit.trace``
+ ``freeze`` is deprecated in torch 2.14 and gained about as much; prepacking the conv weights and fusing
SiLU into the conv by hand (oneDNN post-ops, what inductor does) gained ~3 %. ``ov.convert_model`` on the
torch module gives the same OpenVINO graph as the ONNX file but takes ~7 s instead of ~2.5 s (it traces
with the deprecated ``torch.jit.trace``). OpenVINO's CPU pinning and thread settings (pinning on / off,
``INFERENCE_NUM_THREADS`` 0 or 2) moved its latency by < 5 %, within the noise.

The user's model is never modified: each mode works on a deep copy.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from yololab.deploy.export import FlatOutputs, export_onnx
from yololab.engine.hardware import cpu_has_native_bf16
from yololab.errors import YololabError
from yololab.nn.heads import AnchorHead, DetectHead

MODES = ("fp32", "fp32-cl", "bf16-cl", "onnx", "openvino", "openvino-bf16")


# ------------------------------------------------------------------------------------------------ CPU facts

def best_mode() -> str:
    """The mode ``"auto"`` resolves to on this machine (the rule and its measurements: module docstring)."""
    if openvino_available():
        return "openvino-bf16" if cpu_has_native_bf16() else "openvino"
    return "bf16-cl" if cpu_has_native_bf16() else "fp32-cl"


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def mode_available(mode: str) -> bool:
    """Whether ``mode`` can run here (its runtime is installed); the torch modes always can."""
    if mode == "onnx":
        return onnxruntime_available()
    if mode.startswith("openvino"):
        return openvino_available()
    return mode in MODES


@functools.lru_cache(maxsize=1)
def openvino_core():
    """One OpenVINO ``Core`` per process (it holds the plugins; creating one costs ~0.1 s)."""
    import openvino as ov

    return ov.Core()


def openvino_request(model, precision: str, threads: int):
    """Compile an OpenVINO model (an ``ov.Model`` or a file OpenVINO reads) for the CPU: one infer request.

    ``precision`` is the ``INFERENCE_PRECISION_HINT`` (``"f32"``: every op in float32, else OpenVINO picks bf16
    by itself on CPUs that have it); ``PERFORMANCE_HINT=LATENCY``: one stream, all threads on one request.
    """
    core = openvino_core()
    if isinstance(model, (str, os.PathLike)):
        model = core.read_model(str(model))
    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    return core.compile_model(model, "CPU", config).create_infer_request()


def ort_session(path: str | os.PathLike, threads: int | None):
    """An ONNX Runtime CPU session on ``path``: all graph optimizations, ``threads`` intra-op threads (default:
    PyTorch's), no busy-waiting between calls (spinning threads would steal the cores from whatever runs next)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------------------------------------ model prep

def fused_eval_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode, with BatchNorm folded into the convolutions, no grads.

    Calls the model's own ``fuse()`` (yololab's :class:`~yololab.models.base.Detector`, Ultralytics'
    ``DetectionModel`` - quietly - and anything else that has one); a model without ``fuse()`` is used as is.
    """
    model = copy.deepcopy(model).eval()
    fuse = getattr(model, "fuse", None)
    if callable(fuse):
        quiet = "verbose" in inspect.signature(fuse).parameters  # Ultralytics prints a summary unless told not to
        fused = fuse(verbose=False) if quiet else fuse()
        model = fused if isinstance(fused, nn.Module) else model
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def float32_modules(model: nn.Module) -> list[nn.Module]:
    """The layers of ``model``'s zoo heads that compute in float32 even under autocast (their output convs
    and box decoding; see :mod:`yololab.nn.heads`)."""
    return [m for head in model.modules() if isinstance(head, (AnchorHead, DetectHead))
            for m in head.float32_modules()]


def cast_convs_to_bf16(model: nn.Module) -> int:
    """Store the weights of every ``nn.Conv2d`` / ``nn.Linear`` in bfloat16, except the heads' float32 layers.

    Autocast would cast them to bf16 on every call anyway (it caches casts only for weights that require
    grad); doing it once saves that copy, ~10-15 % of a yolov8n forward. Only valid under bf16 autocast.
    Returns the number of layers cast.
    """
    kept = {id(m) for m in float32_modules(model)}
    n = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in kept:
            m.to(torch.bfloat16)
            n += 1
    return n


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3 or x.dtype != torch.float32:
        got = f"{type(x).__name__} {tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected a float32 (B, 3, H, W) tensor, got {got}")


def _to_float32(out: Any) -> Any:
    return tree_map(lambda t: t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t, out)


class _HeadFeatures(nn.Module):
    """A zoo detector with a :class:`~yololab.nn.heads.DetectHead`, up to the head's raw per-level outputs
    (box distribution logits and class logits, before decoding). ``openvino-bf16`` runs this in bfloat16."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.head.raw(self.model.neck(self.model.backbone(x))))


class _HeadTail(nn.Module):
    """The rest of that DetectHead: the box decoding (DFL, grid offsets, strides) and the class sigmoid.

    ``openvino-bf16`` runs it as a second, float32 OpenVINO model. With the bf16 hint on the whole graph,
    OpenVINO decodes in bf16 too (a coordinate above 256 px rounded to a 2 px step). Measured on a trained
    yolov8n at 320 (benchmarks/README.md), Δ mAP50-95 vs fp32: whole graph in bf16 -0.0011, this split
    -0.0008, the 1x1 output convs in float32 as well (as ``bf16-cl`` does) -0.0002; latency at 640 vs
    Ultralytics' default: 0.33x, 0.39x, 0.43x. This split is the fastest variant within 0.001.
    """

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, *levels: torch.Tensor) -> torch.Tensor:
        return self.head.decode(list(levels))


def _splits_head(model: nn.Module) -> bool:
    """True for zoo detectors whose DetectHead end ``openvino-bf16`` keeps in float32."""
    return all(hasattr(model, a) for a in ("backbone", "neck")) and isinstance(getattr(model, "head", None),
                                                                              DetectHead)


# ------------------------------------------------------------------------------------------------ the callable

class InferenceModel:
    """A model prepared for CPU inference in one :data:`MODES` mode; call it like the model.

    Attributes: ``mode`` (resolved, never ``"auto"``), ``model`` (the fused torch copy every mode starts
    from; for ``onnx`` it is what gets exported).
    """

    def __init__(self, model: nn.Module, mode: str, cache_dir: str | os.PathLike | None = None,
                 threads: int | None = None):
        self.mode = mode
        self.threads = threads or torch.get_num_threads()
        self.model = fused_eval_copy(model)
        if mode in ("fp32-cl", "bf16-cl"):
            self.model = self.model.to(memory_format=torch.channels_last)
        if mode == "bf16-cl":
            cast_convs_to_bf16(self.model)
        # onnx / openvino: input shape -> (ORT session or OpenVINO infer request, output treespec)
        self._compiled: dict[tuple[int, ...], tuple[Any, Any]] = {}
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        # openvino-bf16 on a zoo DetectHead model: OpenVINO runs all but the head's end (see _HeadFeatures)
        self._split_head = mode == "openvino-bf16" and _splits_head(self.model)

    def __repr__(self) -> str:
        return f"InferenceModel(mode={self.mode!r}, model={type(self.model).__name__})"

    @property
    def compiled_shapes(self) -> list[tuple[int, ...]]:
        """The input shapes an ONNX Runtime session / OpenVINO model has been built for (empty for torch modes)."""
        return list(self._compiled)

    def __call__(self, x: torch.Tensor) -> Any:
        _check_input(x)
        if self.mode == "onnx":
            return self._run_onnx(x)
        if self.mode.startswith("openvino"):
            return self._run_openvino(x)
        with torch.inference_mode():
            if self.mode == "bf16-cl":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out = self.model(x)
                return _to_float32(out)
            return self.model(x)

    # ---------------------------------------------------------------------------------------------- export
    def onnx_path(self, shape: tuple[int, ...]) -> Path:
        """Where the ONNX graph for one input shape is written. Always exported afresh: a file left in
        ``cache_dir`` by another model of the same name is never trusted."""
        if self._cache_dir is None:
            if self._tmpdir is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="yololab-onnx-")
            folder = Path(self._tmpdir.name)
        else:
            folder = self._cache_dir
            folder.mkdir(parents=True, exist_ok=True)
        name = getattr(getattr(self.model, "meta", None), "name", type(self.model).__name__)
        return folder / f"{name}-{'x'.join(map(str, shape))}.onnx"

    def _export_model(self, x: torch.Tensor) -> tuple[Path, Any]:
        """The whole fused model for ``x``'s shape: (ONNX file, treespec of the model's outputs)."""
        with torch.inference_mode():
            _, spec = tree_flatten(self.model(x))  # the output structure to rebuild from the flat list
        return export_onnx(FlatOutputs(self.model), (x,), self.onnx_path(tuple(x.shape))), spec

    # ---------------------------------------------------------------------------------------------- onnx
    def _session(self, x: torch.Tensor) -> tuple[Any, Any]:
        """Export for this input shape (once) and open an ONNX Runtime session on it."""
        key = tuple(x.shape)
        if key in self._compiled:
            return self._compiled[key]
        path, spec = self._export_model(x)
        self._compiled[key] = (ort_session(path, self.threads), spec)
        return self._compiled[key]

    def _run_onnx(self, x: torch.Tensor) -> Any:
        session, spec = self._session(x)
        outs = session.run(None, {session.get_inputs()[0].name: x.contiguous().numpy()})
        return tree_unflatten([torch.from_numpy(o) for o in outs], spec)

    # ---------------------------------------------------------------------------------------------- openvino
    def openvino_config(self) -> dict[str, Any]:
        """The OpenVINO CPU plugin properties this mode compiles with (see the module docstring)."""
        return {
            # f32: every op in float32 (else OpenVINO picks bf16 by itself on CPUs that have it)
            "INFERENCE_PRECISION_HINT": "bf16" if self.mode == "openvino-bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",  # one stream, all threads on one request: batch-1 latency
            "INFERENCE_NUM_THREADS": self.threads,
        }

    def _compile(self, path: Path, precision: str) -> Any:
        return openvino_request(path, precision, self.threads)

    def _infer_request(self, x: torch.Tensor) -> tuple[Any, Any]:
        """Export for this input shape (once), compile it with OpenVINO, keep the infer request(s).

        Returns (request, output treespec), or for a split head ((body request, tail request), None).
        """
        key = tuple(x.shape)
        if key in self._compiled:
            return self._compiled[key]
        precision = self.openvino_config()["INFERENCE_PRECISION_HINT"]
        if not self._split_head:
            path, spec = self._export_model(x)
            self._compiled[key] = (self._compile(path, precision), spec)
            return self._compiled[key]
        # bf16 body -> float32 tail (see _HeadTail); the tail is exported for the body's output shapes
        body, tail = _HeadFeatures(self.model), _HeadTail(self.model.head)
        with torch.no_grad():
            feats = body(x)  # example inputs of the tail export: the body's output shapes
        stem = self.onnx_path(key).stem
        body_path = export_onnx(body, (x,), self.onnx_path(key).with_name(stem + "-body.onnx"))
        tail_path = export_onnx(tail, feats, self.onnx_path(key).with_name(stem + "-tail.onnx"))
        self._compiled[key] = ((self._compile(body_path, precision), self._compile(tail_path, "f32")), None)
        return self._compiled[key]

    def _run_openvino(self, x: torch.Tensor) -> Any:
        request, spec = self._infer_request(x)
        if self._split_head:
            body, tail = request
            # share_inputs: OpenVINO reads the arrays' memory directly (no copy of the image / feature maps)
            feats = body.infer({0: x.contiguous().numpy()}, share_inputs=True, share_outputs=True)
            out = tail.infer([feats[o] for o in body.model_outputs], share_inputs=True, share_outputs=False)
            return torch.from_numpy(out[tail.model_outputs[0]])
        # outputs are copied: the request reuses its own buffers on the next call
        res = request.infer({0: x.contiguous().numpy()}, share_inputs=True, share_outputs=False)
        return tree_unflatten([torch.from_numpy(res[o]) for o in request.model_outputs], spec)


def prepare_for_inference(model: nn.Module, mode: str = "auto", *, cache_dir: str | os.PathLike | None = None,
                          threads: int | None = None) -> InferenceModel:
    """Return ``model`` ready for fast CPU inference in ``mode`` (see the module docstring).

    Args:
        model: any detector (yololab zoo, Ultralytics ``DetectionModel``, or a plain ``nn.Module``); it is
            copied, never modified.
        mode: ``"auto"`` or one of :data:`MODES`: ``"fp32"``, ``"fp32-cl"``, ``"bf16-cl"``, ``"onnx"``,
            ``"openvino"``, ``"openvino-bf16"``.
        cache_dir: ``onnx`` / ``openvino*`` only: keep the exported ONNX graphs there, one per input shape
            (default: a temporary folder removed with the returned object).
        threads: ``onnx`` / ``openvino*`` only: the runtime's threads (default: ``torch.get_num_threads()``).
    """
    if mode == "auto":
        mode = best_mode()
    if mode not in MODES:
        raise YololabError(f"unknown inference mode {mode!r}; expected one of: auto, {', '.join(MODES)}")
    if mode == "onnx" and not onnxruntime_available():
        raise YololabError("mode 'onnx' needs onnxruntime: pip install onnxruntime")
    if mode.startswith("openvino") and not openvino_available():
        raise YololabError(f"mode {mode!r} needs OpenVINO: pip install openvino")
    if mode in ("bf16-cl", "openvino-bf16") and not cpu_has_native_bf16():
        warnings.warn(f"this CPU has no native bfloat16 (avx512_bf16 / amx_bf16): {mode} is emulated or falls "
                      "back to float32, and is no faster than the float32 modes", stacklevel=2)
    return InferenceModel(model, mode, cache_dir=cache_dir, threads=threads)
