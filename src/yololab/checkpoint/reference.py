"""Ultralytics (YOLOv8 / YOLO11) and yolov5 v7.0 ``.pt`` checkpoints, read without their packages.

Those files are torch zip archives whose pickle holds the whole reference model object
(``ultralytics.nn.tasks.DetectionModel`` / ``yolov5.models.yolo.Model``, often in fp16) under ``"ema"``
and/or ``"model"``. Unpickling them normally imports the reference package and runs whatever the pickle
asks for. :func:`restricted_load` reads them with ``torch.load(weights_only=True)`` instead, PyTorch's own
restricted unpickler (tensors rebuilt by torch, only allow-listed globals), told through
``torch.serialization.safe_globals`` to resolve every class of the reference packages (and of
``torch.nn.modules``) to an inert :class:`StandIn` that only records its class name and state. Every other
global (``os.system``, ``builtins.eval`` ...) is refused before anything is unpickled, naming the global.
Walking the stand-ins gives the state dict and the metadata (yaml, class count, names, anchors,
activations); :func:`reference_state_dict_to_yololab` maps the state dict onto a yololab detector.
"""

from __future__ import annotations

import _compat_pickle
import collections
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yololab.errors import WeightsError

# Reference packages whose classes may appear in a checkpoint's pickle. They become inert stand-ins.
# ``models.`` / ``utils.`` are the module paths of checkpoints saved from a git clone of yolov5.
STANDIN_MODULE_PREFIXES = ("ultralytics", "yolov5", "models", "utils", "torch.nn.modules")
# A few harmless standard-library classes that reference checkpoints carry in their metadata.
STANDIN_GLOBALS = {"types.SimpleNamespace", "argparse.Namespace", "pathlib.Path", "pathlib.PosixPath",
                   "pathlib.WindowsPath"}
ZIP_MAGIC = b"PK\x03\x04"


# --------------------------------------------------------------------------------------------------------------
# What is in the archive (nothing is executed)
# --------------------------------------------------------------------------------------------------------------

def describe_start(head: bytes) -> str:
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


def check_archive(path: Path) -> None:
    """Raise a :class:`WeightsError` saying what is wrong if ``path`` is not a readable torch zip archive."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightsError(f"{path}: a damaged zip archive ({e}); the checkpoint is truncated or corrupt") from None
    if not any(n.endswith("data.pkl") and n.count("/") == 1 for n in names):
        raise WeightsError(f"{path}: a zip archive without data.pkl (holds {len(names)} entries, e.g. "
                           f"{names[:3]}): not a torch checkpoint")


def pickle_globals(path: Path) -> list[str]:
    """Every global ("module.name") the archive's pickle names beyond what ``weights_only`` loads by default
    (plain containers, tensors, dtypes): ``torch.serialization.get_unsafe_globals_in_checkpoint``, which
    reads the opcodes without executing them."""
    check_archive(path)
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as e:
        raise WeightsError(f"{path}: the checkpoint's pickle cannot be read safely ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None


# --------------------------------------------------------------------------------------------------------------
# Stand-ins and the few other globals a reference checkpoint may hold
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


_standin_classes: dict[str, type] = {}


def _standin_class(full_name: str) -> type:
    if full_name not in _standin_classes:
        module, _, name = full_name.rpartition(".")
        _standin_classes[full_name] = type(name, (StandIn,), {"ref_module": module, "ref_name": name})
    return _standin_classes[full_name]


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


# Beyond torch's defaults: numpy scalars / arrays in the metadata (yolov5 keeps best_fitness as an array),
# protocol-0/1 object records, and plain builtin types. Each maps to a function that builds data, nothing else.
_EXTRA_GLOBALS = {
    **{f"{m}.scalar": _numpy_scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{f"{m}._reconstruct": _numpy_reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": _numpy_dtype,
    "copyreg._reconstructor": _copyreg_reconstructor,
    **{f"builtins.{t.__name__}": t for t in (frozenset, slice, range, tuple, list, dict, int, float, str, bool)},
}
# numpy dtypes are rebuilt as numpy.dtype(...) then given their state: their classes must be allowed too
_NUMPY_DTYPE_CLASSES = [(type(np.dtype(c)), f"numpy.dtypes.{type(np.dtype(c)).__name__}")
                        for c in ("b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "c8", "c16")]


def _python3_name(full_name: str) -> str:
    """torch.save writes protocol-2 pickles, which name some globals as Python 2 did (``__builtin__.eval``,
    ``commands.call`` for ``subprocess.call``): the Python 3 name, as pickle itself maps it."""
    module, _, name = full_name.rpartition(".")
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _resolve(full_name: str):
    """What a global of a reference checkpoint becomes, or None if it is refused."""
    if full_name in _EXTRA_GLOBALS:
        return _EXTRA_GLOBALS[full_name]
    module = full_name.rpartition(".")[0]
    if full_name in STANDIN_GLOBALS or any(module == p or module.startswith(p + ".") for p in STANDIN_MODULE_PREFIXES):
        return _standin_class(full_name)
    return None


def restricted_load(path: str | os.PathLike):
    """Unpickle a torch zip checkpoint without importing or running anything it names: tensors on CPU, reference
    model objects as stand-ins. Raises :class:`WeightsError` naming the first global it refuses."""
    path = Path(path)
    safe = list(_NUMPY_DTYPE_CLASSES)
    for raw in pickle_globals(path):
        name = _python3_name(raw)
        obj = _resolve(name)
        if obj is None:
            raise WeightsError(f"{path}: refused to load global '{name}': it is not on the allow-list of a weights "
                               "file (tensors, containers, reference model classes). The file may try to run "
                               "code; it was not executed")
        safe.append((obj, raw))
    with torch.serialization.safe_globals(safe):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except WeightsError:
            raise
        except Exception as e:  # damaged archive or pickle stream, or an opcode weights_only does not read
            first = str(e).splitlines()[0][:200] if str(e) else ""
            raise WeightsError(f"{path}: the checkpoint cannot be read ({type(e).__name__}: {first})") from None


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
                out[f"{name}.{key}" if name else key] = t.detach()
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
                           "model; save a state dict with yololab.checkpoint.native.save_checkpoint instead")
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
# Reference state dict -> yololab state dict
# --------------------------------------------------------------------------------------------------------------

def _rename(model: nn.Module, key: str) -> str:
    parts = key.split(".", 2)
    if len(parts) < 3 or parts[0] != "model" or not parts[1].isdigit():
        raise WeightsError(f"reference key {key!r} is not of the form 'model.<index>.<name>'")
    i = int(parts[1])
    if i >= len(model.reference_layers):
        raise WeightsError(f"reference key {key!r} names layer {i}, but {model.meta.name} has only "
                           f"{len(model.reference_layers)} reference layers (0..{len(model.reference_layers) - 1})")
    return f"{model.reference_layers[i]}.{parts[2]}"


def reference_state_dict_to_yololab(model: nn.Module, ref_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return ``model``'s state dict filled from ``ref_state`` (yolov5 v7.0 / Ultralytics keys ``model.{i}.<rest>``).

    The references keep their network as one ``nn.Sequential`` called ``model`` indexed by YAML row; our
    detectors list in ``model.reference_layers[i]`` the module that plays the part of row ``i`` and use the
    same names below it (conv/bn/act, cv1/cv2/cv3/m, dfl), so the mapping is a prefix rename plus one
    convention: yolov5 stores ``Detect.anchors`` in grid units (divided by the level's stride), yololab's
    ``AnchorHead.anchors`` holds input pixels, so they are multiplied by the stride.
    Strict: raises :class:`WeightsError` naming the first unexpected key, missing key or shape mismatch.
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
