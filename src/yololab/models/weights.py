"""Import pretrained weights: yololab checkpoints, Ultralytics / yolov5 ``.pt`` files, Darknet ``.weights``.

Four formats, told apart by the file's bytes, never by its name:

* **yololab checkpoint** (ours): a torch zip archive holding the plain dict
  ``{"format": "yololab", "version": 1, "model_name", "num_classes", "state_dict", ...}`` plus optional
  training state. Written by :func:`save_checkpoint` (atomically), read with ``torch.load(weights_only=True)``.
* **Ultralytics** (YOLOv8 / YOLO11) and **yolov5 v7.0** checkpoints: torch zip archives whose pickle holds the
  whole reference model object (``ultralytics.nn.tasks.DetectionModel`` / ``yolov5.models.yolo.Model``,
  often in fp16) under ``"ema"`` and/or ``"model"``. Unpickling those normally imports the reference package
  and runs whatever the pickle asks for. We read them with :class:`RestrictedUnpickler` instead: tensors are
  rebuilt by our own code, every reference class becomes an inert :class:`StandIn` that only records its
  class name and state, and every other global (``os.system``, ``builtins.eval`` ...) is refused. Walking the
  stand-ins gives the state dict and the metadata (yaml, class count, names, anchors, activations).
* **Darknet** ``.weights``: a small header then raw float32s, read by :mod:`yololab.models.darknet_weights`.

:func:`load_weights` (called by ``build_model(name, weights=...)``) puts any of them into a model and refuses
silent partial loads: every tensor is loaded, or the error names the first one that does not fit.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import collections
import io
import logging
import os
import pickle
import pickletools
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yololab.errors import WeightsError
from yololab.fileio import atomic_write

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "yololab"
CHECKPOINT_VERSION = 1

# Reference packages whose classes may appear in a checkpoint's pickle. They become inert stand-ins.
# ``models.`` / ``utils.`` are the module paths of checkpoints saved from a git clone of yolov5.
STANDIN_MODULE_PREFIXES = ("ultralytics", "yolov5", "models", "utils", "torch.nn.modules")
# A few harmless standard-library classes that reference checkpoints carry in their metadata.
STANDIN_GLOBALS = {
    ("types", "SimpleNamespace"), ("argparse", "Namespace"),
    ("pathlib", "Path"), ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"),
}


# --------------------------------------------------------------------------------------------------------------
# What is this file?
# --------------------------------------------------------------------------------------------------------------

ZIP_MAGIC = b"PK\x03\x04"


def _describe_start(head: bytes) -> str:
    """A short human description of a file from its first bytes (for error messages)."""
    if not head:
        return "an empty file"
    if head.startswith(b"\x80") and len(head) > 1 and head[1] <= 5:
        return "a plain pickle (legacy torch.save format before PyTorch 1.6, or not a torch file at all)"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (Keras?)"
    if head.startswith(b"\x08") or head.startswith(b"ONNX"):
        return "possibly an ONNX / protobuf file"
    sample = head[:200]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        return f"a text file beginning with {first!r}"
    return f"a binary file beginning with bytes {head[:8].hex(' ')}"


def _darknet_header_size(head: bytes) -> int | None:
    """Size of the Darknet header if ``head`` starts like a .weights file (major, minor, revision, seen), else None.

    Darknet writes three int32 (major, minor, revision) then ``seen`` (images trained on) as int64 when
    ``major * 10 + minor >= 2`` and as int32 before that.
    """
    if len(head) < 12:
        return None
    major, minor, revision = struct.unpack("<3i", head[:12])
    if not (0 <= major < 1000 and 0 <= minor < 1000 and 0 <= revision < 1_000_000):
        return None
    return 20 if major * 10 + minor >= 2 else 16


def detect_format(path: str | os.PathLike) -> str:
    """``"yololab"``, ``"ultralytics"``, ``"yolov5"`` or ``"darknet"``, from the file's bytes.

    A torch archive whose pickle names other objects than plain data and the reference packages' classes is
    ``"torch-pickle"``: loading it goes through the restricted unpickler, which refuses what it does not know.
    Raises :class:`WeightsError` describing the file when it is none of these.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
    if head.startswith(ZIP_MAGIC):
        with _open_zip(path) as zf:
            pkl = _find_data_pkl(zf, path)
            refs = _pickle_globals(zf.read(pkl))
        roots = {m.split(".")[0] for m, _ in refs}
        if "ultralytics" in roots:
            return "ultralytics"
        if roots & {"yolov5", "models"}:
            return "yolov5"
        if all(_is_plain_global(m, n) for m, n in refs):
            return "yololab"  # plain data only; the format fields are checked when it is loaded
        return "torch-pickle"  # other objects: only the restricted unpickler may look at it
    header = _darknet_header_size(head)
    if header is not None and size > header:
        if (size - header) % 4:
            raise WeightsError(f"{path}: {size} bytes, not a multiple of 4 after a Darknet header of {header} bytes "
                               "(a truncated or corrupt .weights file?)")
        return "darknet"
    raise WeightsError(f"{path}: not a weights file this tool knows: it is {_describe_start(head)} ({size} bytes). "
                       "Expected a yololab / Ultralytics / yolov5 .pt checkpoint or a Darknet .weights file")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightsError(f"{path}: a damaged zip archive ({e}); the checkpoint is truncated or corrupt") from None


def _find_data_pkl(zf: zipfile.ZipFile, path: Path) -> str:
    names = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
    if not names:
        raise WeightsError(f"{path}: a zip archive without data.pkl (holds {len(zf.namelist())} entries, e.g. "
                           f"{zf.namelist()[:3]}): not a torch checkpoint")
    return names[0]


def _pickle_globals(data: bytes) -> set[tuple[str, str]]:
    """Every (module, name) global a pickle refers to, found by reading its opcodes (nothing is executed)."""
    found, strings = set(), []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL":
                module, name = arg.split(" ", 1)
                found.add((module, name))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.add((strings[-2], strings[-1]))
            if isinstance(arg, str):
                strings.append(arg)
    except Exception:  # a damaged pickle: the real unpickling reports it with context
        pass
    return found


# --------------------------------------------------------------------------------------------------------------
# The restricted unpickler
# --------------------------------------------------------------------------------------------------------------

class StandIn:
    """Inert record of a pickled object of a reference class: its class path, constructor args and state.

    It never imports or calls the real class; it only remembers what the pickle handed it.
    """

    ref_module = ""
    ref_name = ""

    def __new__(cls, *args, **kwargs):  # pickle's NEWOBJ: cls.__new__(cls, *args)
        obj = super().__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, {}
        return obj

    def __init__(self, *args, **kwargs):  # pickle's REDUCE: cls(*args)
        pass

    def __setstate__(self, state):  # pickle's BUILD
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__, __slots__ state)
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        self.state = state if isinstance(state, dict) else {"__state__": state}

    @property
    def class_path(self) -> str:
        return f"{self.ref_module}.{self.ref_name}"

    def __repr__(self) -> str:
        return f"<stand-in for {self.class_path}>"


_standin_classes: dict[tuple[str, str], type] = {}


def _standin_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _standin_classes:
        _standin_classes[key] = type(name, (StandIn,), {"ref_module": module, "ref_name": name})
    return _standin_classes[key]


@dataclass(frozen=True)
class _StorageType:
    """What ``torch.HalfStorage`` etc. turn into: only the dtype is needed to read the raw bytes."""

    dtype: torch.dtype


_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}
_TORCH_DTYPES = {name: getattr(torch, name) for name in (
    "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
    "double", "float", "half", "long", "int", "short")}


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Our own version of ``torch._utils._rebuild_tensor_v2``: a view of the flat storage, copied out."""
    if not isinstance(storage, torch.Tensor):
        raise WeightsError(f"tensor record points at {type(storage).__name__}, not a storage")
    return storage.as_strided(tuple(size), tuple(stride), storage_offset).clone()


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data  # the values are all we need; nn.Parameter is not rebuilt


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter):
        raise WeightsError(f"refused _rebuild_from_type_v2 with {func!r}")
    return func(*args)


class _TensorType:
    """Marker for ``torch.Tensor`` / ``torch.nn.Parameter`` as referenced by ``_rebuild_from_type_v2``."""


def _codecs_encode(text, encoding="latin1"):
    """Protocol-2 pickles store ``bytes`` as ``_codecs.encode(str, 'latin1')``: allow exactly that."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise WeightsError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _numpy_scalar(dtype, data=None):
    return np.frombuffer(data, dtype=dtype, count=1)[0] if data is not None else np.zeros((), dtype=dtype)[()]


def _numpy_dtype(spec, align=False, copy=False):
    if not isinstance(spec, str):
        raise WeightsError(f"refused numpy.dtype({spec!r})")
    return np.dtype(spec)


def _numpy_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise WeightsError(f"refused numpy array of type {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _copyreg_reconstructor(cls, base, state):
    if not (isinstance(cls, type) and issubclass(cls, StandIn)):
        raise WeightsError(f"refused copyreg._reconstructor for {cls!r}")
    return cls.__new__(cls)


_BUILTINS_ALLOWED = {"set", "frozenset", "slice", "bytearray", "complex", "tuple", "list", "dict", "int", "float",
                     "str", "bool", "range", "object"}

_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TensorType, ("torch.nn.parameter", "Parameter"): _TensorType,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("_codecs", "encode"): _codecs_encode,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar, ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numpy_dtype,
}


def _is_plain_global(module: str, name: str) -> bool:
    """A global that ``torch.load(weights_only=True)`` data uses: containers, tensor rebuilders, dtypes."""
    if module == "__builtin__":
        module = "builtins"
    return ((module, name) in _ALLOWED_GLOBALS and module.split(".")[0] in ("collections", "torch", "_codecs")) \
        or (module == "builtins" and name in _BUILTINS_ALLOWED) \
        or (module == "torch" and (name in _STORAGE_DTYPES or name in _TORCH_DTYPES))


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickle a torch checkpoint without importing or running anything it names.

    ``read_storage(key, dtype, numel)`` returns the flat tensor stored under ``data/<key>`` in the archive.
    Globals resolve through an allow-list; reference model classes become :class:`StandIn` subclasses;
    everything else raises :class:`WeightsError` naming the global.
    """

    def __init__(self, file, read_storage, source: str = "<checkpoint>"):
        super().__init__(file)
        self.read_storage = read_storage
        self.source = source

    def find_class(self, module: str, name: str):
        # protocol-2 pickles (torch.save's default) use Python 2 names: map them as pickle itself does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "builtins" and name in _BUILTINS_ALLOWED:
            return getattr(__import__("builtins"), name)
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        root = module.split(".")[0]
        if (any(module == p or module.startswith(p + ".") for p in STANDIN_MODULE_PREFIXES)
                or (module, name) in STANDIN_GLOBALS) and root != "builtins":
            return _standin_class(module, name)
        raise WeightsError(f"{self.source}: refused to load global '{module}.{name}': it is not on the allow-list "
                           "of a weights file (tensors, containers, reference model classes). The file may try "
                           "to run code; it was not executed")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise WeightsError(f"{self.source}: unknown persistent record {str(pid)[:80]}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise WeightsError(f"{self.source}: storage record of unknown type {storage_type!r}")
        return self.read_storage(str(key), storage_type.dtype, int(numel))


def restricted_load(path: str | os.PathLike):
    """Unpickle a torch zip checkpoint with :class:`RestrictedUnpickler`; tensors on CPU, models as stand-ins."""
    path = Path(path)
    with _open_zip(path) as zf:
        pkl = _find_data_pkl(zf, path)
        prefix = pkl[: -len("data.pkl")]
        byteorder = zf.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in zf.namelist() \
            else "little"
        if byteorder != "little":
            raise WeightsError(f"{path}: saved on a {byteorder}-endian machine; only little-endian is supported")
        cache: dict[str, torch.Tensor] = {}

        def read_storage(key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
            if key not in cache:
                try:
                    raw = zf.read(f"{prefix}data/{key}")
                except KeyError:
                    raise WeightsError(f"{path}: storage data/{key} is missing from the archive") from None
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    raise WeightsError(f"{path}: storage data/{key} is damaged ({e})") from None
                itemsize = torch.empty((), dtype=dtype).element_size()
                if len(raw) < numel * itemsize:
                    raise WeightsError(f"{path}: storage data/{key} holds {len(raw)} bytes, expected "
                                       f"{numel * itemsize} ({numel} x {dtype})")
                if numel == 0:
                    cache[key] = torch.empty(0, dtype=dtype)
                else:
                    cache[key] = torch.frombuffer(bytearray(raw[: numel * itemsize]), dtype=torch.uint8).view(dtype)
            return cache[key]

        try:
            return RestrictedUnpickler(io.BytesIO(zf.read(pkl)), read_storage, str(path)).load()
        except WeightsError:
            raise
        except Exception as e:  # damaged pickle stream
            raise WeightsError(f"{path}: the checkpoint's pickle is damaged ({type(e).__name__}: {e})") from None


# --------------------------------------------------------------------------------------------------------------
# Reference checkpoints -> state dict + metadata
# --------------------------------------------------------------------------------------------------------------

@dataclass
class ReferenceCheckpoint:
    """What a reference (Ultralytics / yolov5) checkpoint holds, read through stand-ins."""

    source: str  # "ultralytics" or "yolov5"
    class_path: str  # e.g. "ultralytics.nn.tasks.DetectionModel"
    state_dict: dict[str, torch.Tensor]  # reference keys ("model.0.conv.weight"), dtype as stored
    yaml: dict = field(default_factory=dict)
    num_classes: int | None = None
    names: list[str] | dict | None = None
    activations: set[str] = field(default_factory=set)  # class names, e.g. {"SiLU"} or {"LeakyReLU"}
    anchors: torch.Tensor | None = None  # yolov5 Detect.anchors (in stride units), if any
    strides: list[float] | None = None
    yaml_file: str | None = None  # the model YAML it was built from, e.g. "yolov8n.yaml"
    extra: dict = field(default_factory=dict)  # the checkpoint's other plain entries (epoch, date, ...)


def _module_dict(obj) -> dict:
    return obj.state if isinstance(obj, StandIn) and isinstance(obj.state, dict) else {}


def _walk_modules(obj, prefix: str = "", _ancestors: tuple = ()):
    """Yield (dotted name, stand-in) for a stand-in module and all its sub-modules, in registration order.

    A module may appear under several names (yolov5 shares one SiLU among all its Convs); only a module
    inside itself, which a crafted pickle could build, is an error.
    """
    if any(obj is a for a in _ancestors) or len(_ancestors) > 64:
        raise WeightsError(f"the module tree loops or nests too deep at {prefix!r}")
    yield prefix, obj
    for name, child in (_module_dict(obj).get("_modules") or {}).items():
        if isinstance(child, StandIn):
            yield from _walk_modules(child, f"{prefix}.{name}" if prefix else str(name), _ancestors + (obj,))


def standin_state_dict(root: StandIn) -> dict[str, torch.Tensor]:
    """The ``state_dict()`` the real module tree would give: parameters and persistent buffers, in order."""
    out: dict[str, torch.Tensor] = collections.OrderedDict()
    for name, mod in _walk_modules(root):
        d = _module_dict(mod)
        skip = d.get("_non_persistent_buffers_set") or set()
        for kind in ("_parameters", "_buffers"):
            for key, t in (d.get(kind) or {}).items():
                if t is None or (kind == "_buffers" and key in skip):
                    continue
                if not isinstance(t, torch.Tensor):
                    raise WeightsError(f"{name}.{key} is {type(t).__name__}, not a tensor")
                out[f"{name}.{key}" if name else key] = t
    return out


def read_reference_checkpoint(path: str | os.PathLike) -> ReferenceCheckpoint:
    """Read an Ultralytics or yolov5 checkpoint without their packages: state dict and metadata."""
    path = Path(path)
    ckpt = restricted_load(path)
    if isinstance(ckpt, StandIn):  # torch.save(model) rather than a dict
        ckpt = {"model": ckpt}
    if not isinstance(ckpt, dict):
        raise WeightsError(f"{path}: expected a checkpoint dict with 'model' / 'ema', found {type(ckpt).__name__}")
    model = ckpt.get("ema") or ckpt.get("model")  # the EMA weights are the ones the references evaluate
    if not isinstance(model, StandIn):
        raise WeightsError(f"{path}: no model object under 'ema' or 'model' (keys: {sorted(map(str, ckpt))})")
    root_package = model.ref_module.split(".")[0]
    if root_package not in ("ultralytics", "yolov5", "models"):
        raise WeightsError(f"{path}: holds a pickled {model.class_path} object, not an Ultralytics or yolov5 "
                           "model; save a state dict with yololab.models.weights.save_checkpoint instead")
    source = "ultralytics" if root_package == "ultralytics" else "yolov5"
    root = _module_dict(model)
    yaml = root.get("yaml") if isinstance(root.get("yaml"), dict) else {}
    acts, anchors, strides, nc = set(), None, None, None
    for _, mod in _walk_modules(model):
        d = _module_dict(mod)
        if mod.ref_module.startswith("torch.nn.modules.activation"):
            acts.add(mod.ref_name)
        if mod.ref_name in ("Detect", "Segment", "Pose", "OBB", "v10Detect") and "nc" in d:
            nc = int(d["nc"])
            buf = (d.get("_buffers") or {}).get("anchors")
            if isinstance(buf, torch.Tensor) and buf.dim() == 3:
                anchors = buf.float()
            if isinstance(d.get("stride"), torch.Tensor):
                strides = d["stride"].float().tolist()
    if nc is None and "nc" in yaml:
        nc = int(yaml["nc"])
    extra = {k: v for k, v in ckpt.items() if k not in ("model", "ema") and isinstance(v, (int, float, str))}
    return ReferenceCheckpoint(source=source, class_path=model.class_path, state_dict=standin_state_dict(model),
                               yaml=yaml, num_classes=nc, names=root.get("names"), activations=acts,
                               anchors=anchors, strides=strides, extra=extra,
                               yaml_file=root.get("yaml_file") or yaml.get("yaml_file"))


# --------------------------------------------------------------------------------------------------------------
# Our own checkpoint
# --------------------------------------------------------------------------------------------------------------


def model_build_kwargs(model: nn.Module) -> dict:
    """Builder keyword arguments that are not implied by the name (e.g. yolov3 ``style``), from the meta."""
    meta = getattr(model, "meta", None)
    extra = getattr(meta, "extra", None) or {}
    return {k: extra[k] for k in ("style",) if k in extra}


def save_checkpoint(model: nn.Module, path: str | os.PathLike, **extra) -> Path:
    """Write a yololab checkpoint atomically.

    Holds ``format``, ``version``, ``model_name``, ``num_classes``, ``model_kwargs`` (builder arguments such
    as yolov3's ``style``), ``state_dict`` (float tensors on CPU), plus ``extra`` (epoch, optimizer state,
    ...), which must be plain data (``torch.load(weights_only=True)`` reads it back).
    """
    path = Path(path)
    meta = getattr(model, "meta", None)
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": getattr(meta, "name", type(model).__name__),
        "num_classes": getattr(meta, "num_classes", None),
        "model_kwargs": model_build_kwargs(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    for key in extra:
        if key in ckpt:
            raise ValueError(f"save_checkpoint: extra key {key!r} would overwrite a checkpoint field")
    ckpt.update(extra)
    atomic_write(path, lambda f: torch.save(ckpt, f), fsync=True)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a yololab checkpoint (``weights_only=True``: plain data only) and check its format fields."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a readable yololab checkpoint ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        what = f"a dict with keys {sorted(map(str, ckpt))[:8]}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightsError(f"{path}: a torch file but not a yololab checkpoint: it holds {what}; expected "
                           f"'format': '{CHECKPOINT_FORMAT}'")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise WeightsError(f"{path}: yololab checkpoint version {ckpt.get('version')!r}; this yololab reads "
                           f"version {CHECKPOINT_VERSION}")
    for key in ("model_name", "num_classes", "state_dict"):
        if key not in ckpt:
            raise WeightsError(f"{path}: yololab checkpoint without the field '{key}'")
    return ckpt


# --------------------------------------------------------------------------------------------------------------
# Loading into a model
# --------------------------------------------------------------------------------------------------------------

def _model_name(model: nn.Module) -> str:
    return getattr(getattr(model, "meta", None), "name", type(model).__name__)


def _rebuild_like(model: nn.Module, **kwargs) -> nn.Module:
    """A fresh zoo model of the same name and class count with other builder options, on model's device/dtype."""
    from yololab.models.registry import build_model

    new = build_model(model.meta.name, num_classes=model.meta.num_classes, **kwargs)
    p = next(model.parameters(), None)
    if p is not None:
        new = new.to(device=p.device, dtype=p.dtype)
    return new.train(model.training)


def _class_output_rows(model: nn.Module, key: str, own: torch.Tensor, found: torch.Tensor, file_nc: int):
    """For a head tensor whose shape depends on the class count: the rows (dim 0) that do not depend on the
    classes and can still be loaded, as a bool mask over ``own``'s rows; None if it is not such a tensor.

    Anchor-based heads (``head.m.i``): each anchor's box and objectness rows load, its class rows do not.
    Anchor-free heads: the whole class branch ``head.cv3`` stays at init, since its width is
    ``max(c, min(nc, 100))`` and changes with the class count (Ultralytics fine-tunes the same way).
    """
    nc = model.meta.num_classes
    if nc == file_nc or not key.startswith("head.") or own.dim() != found.dim():
        return None
    na = getattr(model.head, "na", None)
    if (na and key.startswith("head.m.") and own.shape[1:] == found.shape[1:]
            and own.shape[0] == na * (5 + nc) and found.shape[0] == na * (5 + file_nc)):
        rows = torch.zeros(na, 5 + nc, dtype=torch.bool)
        rows[:, :5] = True
        return rows.flatten()
    if key.startswith("head.cv3."):
        return torch.zeros(own.shape[0] if own.dim() else 1, dtype=torch.bool)
    return None


@torch.no_grad()
def _load_state(model: nn.Module, state: dict[str, torch.Tensor], file_nc: int | None, path: Path) -> None:
    """Load ``state`` (yololab keys) into ``model``: every tensor, or an error naming the first that does not fit.

    The one tolerated difference is the class count: then the class outputs of the head keep their
    initialization (box / objectness rows of anchor-based heads are still loaded) and a warning says so.
    """
    own = model.state_dict()
    name = _model_name(model)
    for key in own:
        if key not in state:
            raise WeightsError(f"{path}: the checkpoint has no tensor {key!r} that {name} needs "
                               f"(another architecture?)")
    for key in state:
        if key not in own:
            raise WeightsError(f"{path}: the checkpoint's tensor {key!r} has no counterpart in {name} "
                               f"(another architecture?)")
    nc = getattr(getattr(model, "meta", None), "num_classes", None)
    new, partial = {}, []
    for key, target in own.items():
        value = state[key].to(device=target.device)
        value = value.to(target.dtype) if value.is_floating_point() or not target.is_floating_point() else value
        if value.shape == target.shape:
            new[key] = value
            continue
        rows = _class_output_rows(model, key, target, value, file_nc) if file_nc is not None else None
        if rows is None:
            raise WeightsError(f"{path}: tensor {key!r} does not fit {name} (nc={nc}): expected shape "
                               f"{tuple(target.shape)}, found {tuple(value.shape)} in the file")
        merged = target.clone()
        if rows.any():  # copy the class-independent rows, anchor by anchor
            src_rows = torch.zeros(value.shape[0], dtype=torch.bool)
            na = model.head.na
            src_rows.view(na, -1)[:, :5] = True
            merged[rows] = value[src_rows].to(target.dtype)
        new[key] = merged
        partial.append((key, tuple(target.shape)))
    model.load_state_dict(new, strict=True)
    if partial:
        shapes = ", ".join(f"{k} {s}" for k, s in partial[:4]) + (f" and {len(partial) - 4} more class-dependent "
                                                                   f"tensors" if len(partial) > 4 else "")
        warnings.warn(f"{path}: loaded {len(own) - len(partial)}/{len(own)} tensors; class outputs of shape "
                      f"{shapes} left at init for num_classes={nc} (checkpoint has {file_nc})", stacklevel=4)


def _load_yololab(model: nn.Module, path: Path) -> nn.Module:
    ckpt = load_checkpoint(path)
    name = _model_name(model)
    if ckpt["model_name"] != name:
        raise WeightsError(f"{path}: a yololab checkpoint of {ckpt['model_name']!r}, not of {name!r}; build "
                           f"{ckpt['model_name']!r} to load it")
    kwargs = ckpt.get("model_kwargs") or {}
    if kwargs and kwargs != model_build_kwargs(model):
        log.info("%s: rebuilding %s with %s as saved in the checkpoint", path, name, kwargs)
        model = _rebuild_like(model, **kwargs)
    _load_state(model, ckpt["state_dict"], ckpt.get("num_classes"), path)
    return model


def _load_reference(model: nn.Module, path: Path) -> nn.Module:
    from yololab.models.convert import reference_state_dict_to_yololab
    from yololab.models.registry import build_model

    ref = read_reference_checkpoint(path)
    name = _model_name(model)
    if not hasattr(model, "reference_layers"):
        raise WeightsError(f"{path}: a {ref.source} checkpoint loads into a yololab zoo model, not into "
                           f"{type(model).__name__}")
    style = (model.meta.extra or {}).get("style")
    if model.meta.family == "yolov3" and style == "darknet" and "SiLU" in ref.activations:
        # yolov5's hub/yolov3*.yaml networks use SiLU and the yolov5 decode: build that variant instead.
        log.info("%s: SiLU activations in the checkpoint: using %s with style='yolov5'", path, name)
        model = _rebuild_like(model, style="yolov5")
    elif model.meta.family == "yolov3" and style == "yolov5" and "LeakyReLU" in ref.activations \
            and "SiLU" not in ref.activations:
        log.info("%s: LeakyReLU activations in the checkpoint: using %s with style='darknet'", path, name)
        model = _rebuild_like(model, style="darknet")
    ours = {type(m).__name__ for m in model.modules() if type(m).__module__ == "torch.nn.modules.activation"}
    if ref.activations and ours and ref.activations != ours:
        raise WeightsError(f"{path}: the checkpoint's network uses {', '.join(sorted(ref.activations))} "
                           f"activations, {name} uses {', '.join(sorted(ours))}: its outputs would be wrong")
    kwargs = model_build_kwargs(model)
    file_nc = ref.num_classes if ref.num_classes is not None else model.meta.num_classes
    what = f"{ref.source} checkpoint ({ref.yaml_file or ref.class_path}, nc={file_nc})"
    # Map the reference keys onto a model with the file's class count, then fit that into ours.
    try:
        shaped = model if file_nc == model.meta.num_classes else build_model(name, num_classes=file_nc, **kwargs)
        state = reference_state_dict_to_yololab(shaped, ref.state_dict)
    except WeightsError as e:
        raise WeightsError(f"{path}: the {what} does not fit {name}: {e}") from None
    _load_state(model, state, file_nc, path)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load any supported weights file into ``model`` and return the model.

    The returned model may be a new one: yolov3 from a yolov5 checkpoint with SiLU activations is rebuilt
    with ``style="yolov5"``, and a yololab checkpoint rebuilds with the builder options it was saved with.
    Tensors are cast to the model's dtype (reference checkpoints are usually fp16). A different class count
    loads everything except the class outputs, with a warning; anything else that does not fit raises
    :class:`WeightsError` naming the first tensor (name, expected shape, found shape).
    """
    from yololab.models.darknet_weights import load_darknet_weights

    path = Path(path)
    fmt = detect_format(path)
    if fmt == "darknet":
        load_darknet_weights(model, path)
    elif fmt == "yololab":
        model = _load_yololab(model, path)
    else:  # ultralytics, yolov5, or an unknown torch pickle that the restricted unpickler must vet
        model = _load_reference(model, path)
    log.info("loaded %s weights from %s into %s", fmt, path, _model_name(model))
    return model


# --------------------------------------------------------------------------------------------------------------
# yololab models convert-weights
# --------------------------------------------------------------------------------------------------------------

def _darknet_model_for_size(path: Path) -> tuple[str, int] | None:
    """(name, num_classes) of the yolov3 variant whose Darknet layout needs exactly this file's float count.

    The count is linear in the class count (only the detection convs depend on it), so two meta-device
    models per variant give the line; nothing is allocated.
    """
    from yololab.models.darknet_weights import DarknetHeader, darknet_conv_order
    from yololab.models.registry import build_model

    with open(path, "rb") as f:
        header = DarknetHeader.from_bytes(f.read(20), path)
    floats = (path.stat().st_size - header.size) // 4

    def needed(name: str, nc: int) -> int:
        with torch.device("meta"):
            model = build_model(name, num_classes=nc)
        return sum(t.numel() for e in darknet_conv_order(model) for _, t in e.tensors())

    for name in ("yolov3", "yolov3-tiny"):
        base, per_class = needed(name, 1), needed(name, 2) - needed(name, 1)
        if floats >= base and (floats - base) % per_class == 0:
            return name, 1 + (floats - base) // per_class
    return None


def infer_model(path: str | os.PathLike) -> tuple[str, int | None, dict]:
    """Guess (zoo name, num_classes, builder kwargs) of the model a weights file holds; raise if it cannot."""
    from yololab.models.registry import list_models

    path = Path(path)
    fmt = detect_format(path)
    if fmt == "yololab":
        ckpt = load_checkpoint(path)
        return ckpt["model_name"], ckpt["num_classes"], ckpt.get("model_kwargs") or {}
    if fmt == "darknet":
        found = _darknet_model_for_size(path)
        if found is None:
            raise WeightsError(f"{path}: a Darknet .weights file whose size fits neither yolov3 nor yolov3-tiny "
                               "for any class count")
        return found[0], found[1], {}
    ref = read_reference_checkpoint(path)
    stem = Path(str(ref.yaml_file or "")).stem  # "yolov8n", "yolov3-tiny", or "yolov8" + yaml scale
    scale = ref.yaml.get("scale") or ""
    for name in (stem, stem + scale):
        if name in list_models():
            return name, ref.num_classes, {}
    raise WeightsError(f"{path}: cannot tell which zoo model this {ref.source} checkpoint is (yaml file "
                       f"{ref.yaml_file!r}); pass --model NAME")


def cmd_convert_weights(args: argparse.Namespace) -> int:
    from yololab.models.registry import build_model

    src, dst = Path(args.src), Path(args.dst)
    if dst.exists() and (dst.resolve() == src.resolve() or not args.force):
        raise WeightsError(f"{dst}: exists; choose another name or pass --force to replace it"
                           if dst.resolve() != src.resolve() else f"{dst}: would overwrite the source file")
    fmt = detect_format(src)
    name, nc, kwargs = infer_model(src) if args.model is None else (args.model, None, {})
    nc = args.num_classes or nc or 80
    model = build_model(name, num_classes=nc, weights=src, **kwargs)
    save_checkpoint(model, dst, source_file=src.name, source_format=fmt)
    n = sum(p.numel() for p in model.parameters())
    style = (model.meta.extra or {}).get("style")
    print(f"wrote {dst}: yololab checkpoint of {name} (num_classes={nc}{f', style={style}' if style else ''}, "
          f"{n:,} parameters) from the {fmt} file {src}")
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-weights", help="Convert Darknet / Ultralytics / yolov5 weights into a yololab checkpoint.",
        description="Read SRC (a Darknet .weights file, an Ultralytics or yolov5 .pt checkpoint, or a yololab "
                    "checkpoint; the format is detected from the bytes), load it into the matching zoo model and "
                    "write DST as a yololab checkpoint that build_model(name, weights=DST) and every yololab "
                    "command read. Reference .pt files are read without their packages and without running any "
                    "code in them. The model is guessed from the file (yaml name, or the size of a .weights "
                    "file) unless --model is given.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("src", help="weights file to convert")
    p.add_argument("dst", help="yololab checkpoint to write (written atomically; never replaces SRC)")
    p.add_argument("--model", default=None,
                   help="zoo model name (see `yololab models list`); None: guessed from the file")
    p.add_argument("--num-classes", type=int, default=None,
                   help="class count of the model to build; None: the file's (a different count keeps the "
                        "class outputs at init)")
    p.add_argument("--force", action="store_true", help="replace DST if it exists")
    p.set_defaults(func=cmd_convert_weights)
