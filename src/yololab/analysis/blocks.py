"""Inside one block: its submodules and the tensor operations between them, from one traced forward pass.

``trace_model`` (summary.py) records the blocks of a whole detector; :func:`trace_block` records the inside
of one of them, so that ``yololab models diagram --block C2f`` draws C2f's graph from C2f's code:

* the block runs once, ``eval()``, no grad, on the inputs it receives inside a zoo model at 640 (taken by a
  pre-hook during one forward pass of that model on the ``meta`` device: shapes, no memory);
* every submodule is a node (``nn.Sequential`` / ``nn.ModuleList`` are looked through; the types listed in
  ``expand`` are looked into, so that C2PSA shows its attention), every call a node of its own (SPPF's one
  max-pool called three times gives three nodes in series);
* between the submodules a ``TorchFunctionMode`` sees the tensor operations: those that split, merge or
  mix tensors (chunk, split, cat, an add or product of two traced tensors, matmul, softmax, sigmoid) are
  nodes; reshapes, and arithmetic with a constant (a scale, an anchor grid), pass their input's producer
  through, so the edges stay those of the data flow;
* a few named functions (a head's box decoding) can be made single nodes, so a head reads as its steps;
* edges come from tensor identity, as in ``trace_model``: each node records which node made every tensor
  it received.

The result is a :class:`BlockTrace`, which ``diagrams.py`` draws with the same layout and renderers as the
model diagrams.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from yololab.errors import ConfigError, YololabError
from yololab.nn.conv import Conv
from yololab.analysis.summary import BlockInfo, Trace, _tensors, build_for_inspection, fmt_int, fmt_shape

# Tensor operations drawn as nodes, by the name the torch function carries; the value is the node's type.
SHAPING_OPS = {"cat": "cat", "concat": "cat", "stack": "stack", "chunk": "chunk", "split": "split",
               "split_with_sizes": "split", "unbind": "split"}
MIXING_OPS = {"matmul": "matmul", "__matmul__": "matmul", "bmm": "matmul", "softmax": "softmax",
              "sigmoid": "sigmoid", "exp": "exp"}
# element-wise binary operations: a node when both operands are traced tensors (a residual add), otherwise
# (a constant scale or grid) they pass their input through
BINARY_OPS = {"add": "add", "__add__": "add", "__radd__": "add", "__iadd__": "add", "sub": "sub",
              "__sub__": "sub", "__rsub__": "sub", "mul": "mul", "__mul__": "mul", "__rmul__": "mul",
              "div": "div", "__truediv__": "div"}
CONTAINERS = (nn.Sequential, nn.ModuleList)


@dataclass
class Node(BlockInfo):
    """One node of a block's inner graph: a submodule call, a tensor operation, a named function or an input.

    ``index`` numbers the nodes in the order they ran (inputs first); ``path`` is the submodule's path inside
    the block (``m.0.cv1``), the operation or function name; ``group`` is unused (""). ``title`` and
    ``subtitle`` are the two lines a diagram writes in the node's box.
    """

    title: str = ""
    subtitle: str = ""


@dataclass
class BlockTrace(Trace):
    """Result of :func:`trace_block`: the nodes of one block in execution order, its totals and provenance."""

    source: str = ""  # where the instance comes from, e.g. "yolov8s model.4"
    signature: str = ""  # the block as constructed, e.g. "C2f(128, 128, n=2, shortcut=True)"
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def title(self) -> str:
        """One-line description for a diagram title."""
        ins = " + ".join(fmt_shape(n.out_shapes[0]) for n in self.blocks if n.type == "input")
        outs = ", ".join(fmt_shape(s) for s in self.output_shapes)
        return (f"{self.signature}, {self.source} at {self.imgsz}: {ins} -> {outs}; "
                f"{fmt_int(self.params)} parameters, {self.gflops:.2f} GFLOPs")

    @property
    def short_title(self) -> str:
        return f"{self.signature}: {self.params / 1e6:.2f}M params, {self.gflops:.2f} GFLOPs"


def _shape_text(shapes: list[tuple[int, ...]], spatial: set[tuple[int, int]]) -> str:
    """What a box's second line says: ``[(1, 64, 80, 80)] * 2`` -> ``"2 x 80x80, 64 ch"``.

    A 4-D tensor reads as a feature map (``HxW, C ch``) when its last two sizes are those of a feature map
    of the block (``spatial``); otherwise (attention's ``(B, heads, N, N)``) as its plain sizes.
    """
    def one(s: tuple[int, ...]) -> str:
        return f"{s[2]}x{s[3]}, {s[1]} ch" if len(s) == 4 and tuple(s[2:]) in spatial else fmt_shape(s)

    if not shapes:
        return "-"
    if len(set(shapes)) == 1 and len(shapes) > 1:
        return f"{len(shapes)} x {one(shapes[0])}"
    text = " | ".join(one(s) for s in shapes[:3])
    return text + (f" (+{len(shapes) - 3})" if len(shapes) > 3 else "")


def _module_detail(mod: nn.Module) -> str:
    """Kernel and stride of a convolution or pooling, e.g. ``"3x3/2"`` or ``"3x3 dw"``; "" for other modules."""
    conv = mod.conv if isinstance(mod, Conv) else mod
    if not isinstance(conv, (nn.Conv2d, nn.MaxPool2d)):
        return ""
    k = conv.kernel_size if isinstance(conv.kernel_size, tuple) else (conv.kernel_size,) * 2
    s = conv.stride[0] if isinstance(conv.stride, tuple) else conv.stride
    depthwise = isinstance(conv, nn.Conv2d) and conv.groups > 1 and conv.groups == conv.in_channels
    return f"{k[0]}x{k[1]}" + (f"/{s}" if s > 1 else "") + (" dw" if depthwise else "")


def _node_modules(block: nn.Module, expand: tuple[str, ...]) -> dict[str, nn.Module]:
    """The submodules drawn as nodes: children of the block, looking through containers and ``expand`` types."""
    found: dict[str, nn.Module] = {}

    def visit(mod: nn.Module, prefix: str) -> None:
        for name, child in mod.named_children():
            path = prefix + name
            if type(child) in CONTAINERS or type(child).__name__ in expand:
                visit(child, path + ".")
            else:
                found[path] = child

    visit(block, "")
    return found


def _resolve_function(owner: nn.Module, target: str):
    """``"_decode_level"`` -> (the block, attribute); ``"yololab.nn.heads:dist2bbox"`` -> (that module, name)."""
    if ":" in target:
        module_name, attr = target.split(":", 1)
        return importlib.import_module(module_name), attr
    return owner, target


def trace_block(block: nn.Module, args: tuple, name: str, *, expand: tuple[str, ...] = (),
                functions: tuple[tuple[str, str], ...] = (), roles: tuple[tuple[str, str], ...] = (),
                imgsz: int = 0, source: str = "", signature: str = "") -> BlockTrace:
    """Run ``block(*args)`` once and record its inner graph; every tensor in ``args`` is an input node (a head
    receives one list of feature maps: ``args = ([p3, p4, p5],)``).

    ``expand``: class names whose inside is drawn instead of one node (e.g. ``("PSABlock", "Attention")``).
    ``functions``: ``(target, title)`` pairs drawn as one node each: ``target`` is a method of the block
    (``"_decode_level"``) or ``"module:function"`` (``"yololab.nn.heads:dist2bbox"``).
    ``roles``: ``(path prefix, word)`` pairs appended to the titles of the submodules under that path
    (``("cv2", "box")``: DetectHead's ``cv2`` is its box branch).
    """
    node_modules = _node_modules(block, expand)
    type_names = {type(m).__name__ for m in node_modules.values()}
    producer: dict[int, int] = {}  # id(tensor) -> node index
    keep_alive: list[torch.Tensor] = []  # ids stay unique only while the tensors live
    nodes: list[Node] = []
    calls: dict[str, int] = {}
    spatial: set[tuple[int, int]] = set()  # (H, W) of the block's feature maps: inputs and module outputs
    stack: list[int] = []  # FLOP totals at the start of the node calls now running (nesting depth = len)
    counter = FlopCounterMode(display=False)

    def register(outs: list[torch.Tensor], index: int) -> None:
        for t in outs:
            producer[id(t)] = index
            keep_alive.append(t)

    def add_node(kind: str, path: str, title: str, ins: list[torch.Tensor], outs: list[torch.Tensor],
                 params: int = 0, flops: int = 0) -> None:
        index = len(nodes)
        shapes = [tuple(t.shape) for t in outs]
        if kind == "input" or params or kind in type_names:
            spatial.update(tuple(sh[2:]) for sh in shapes if len(sh) == 4)
        nodes.append(Node(index=index, path=path, group="", type=kind,
                          inputs=[producer.get(id(t)) for t in ins], in_shapes=[tuple(t.shape) for t in ins],
                          out_shapes=shapes, params=params, flops=flops, title=title,
                          subtitle=_shape_text(shapes, spatial)))
        register(outs, index)

    def enter() -> None:
        stack.append(counter.get_total_flops())

    def leave(kind: str, path: str, title: str, args, kwargs, output, params: int = 0) -> None:
        flops = counter.get_total_flops() - stack.pop()
        if stack:  # a node inside another node (cannot happen for modules; kept for functions)
            return
        calls[path] = calls.get(path, 0) + 1
        if calls[path] > 1:
            title += f" (call {calls[path]})"
        add_node(kind, path, title, _tensors(args) + _tensors(kwargs), _tensors(output), params, flops)

    def module_hooks(path: str, mod: nn.Module):
        params = sum(p.numel() for p in mod.parameters())
        detail = _module_detail(mod)
        role = next((word for prefix, word in roles if path == prefix or path.startswith(prefix + ".")), "")
        title = " ".join(x for x in (path, type(mod).__name__, detail, role) if x)

        def pre(m, args, kwargs):
            enter()

        def post(m, args, kwargs, output):
            leave(type(m).__name__, path, title, args, kwargs, output,
                  params if calls.get(path, 0) == 0 else 0)  # a module called twice counts its parameters once

        return pre, post

    def function_node(fn, path: str, title: str):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            enter()
            out = fn(*args, **kwargs)
            leave(title, path, title, args, kwargs, out)
            return out

        return wrapper

    class Ops(TorchFunctionMode):
        """Sees every torch function called between the nodes (inside a node: nothing)."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            flops_before = counter.get_total_flops()
            out = func(*args, **kwargs)
            if stack:
                return out
            ins = [t for t in _tensors(args) + _tensors(kwargs) if id(t) in producer]
            outs = _tensors(out)
            if not ins or not outs:
                return out
            fname = getattr(func, "__name__", "")
            if fname in SHAPING_OPS or fname in MIXING_OPS or (fname in BINARY_OPS and len(ins) >= 2):
                kind = SHAPING_OPS.get(fname) or MIXING_OPS.get(fname) or BINARY_OPS[fname]
                if kind == "cat":
                    title = f"cat ({len(ins)} tensors)"
                elif kind in ("chunk", "split"):
                    title = f"{kind} into {len(outs)}"
                else:
                    title = kind
                add_node(kind, kind, title, ins, outs, flops=counter.get_total_flops() - flops_before)
            else:  # reshape, dtype cast, arithmetic with a constant: the data flow passes through
                for t in outs:
                    producer[id(t)] = producer[id(ins[0])]
                    keep_alive.append(t)
            return out

    inputs = _tensors(args)
    for i, t in enumerate(inputs):
        add_node("input", f"input {i}" if len(inputs) > 1 else "input", f"input {i}" if len(inputs) > 1 else "input",
                 [], [t])
    handles, patched = [], []
    was_training = block.training
    try:
        for path, mod in node_modules.items():
            pre, post = module_hooks(path, mod)
            handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(mod.register_forward_hook(post, with_kwargs=True))
        for target, title in functions:
            owner, attr = _resolve_function(block, target)
            patched.append((owner, attr, attr in vars(owner), vars(owner).get(attr)))
            setattr(owner, attr, function_node(getattr(owner, attr), attr, title))
        block.eval()
        with torch.no_grad(), counter, Ops():
            output = block(*args)
    finally:
        for h in handles:
            h.remove()
        for owner, attr, had, original in reversed(patched):
            if had:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)  # a method: the class's own again
        block.train(was_training)

    outs = _tensors(output)
    return BlockTrace(name=name, imgsz=imgsz, blocks=nodes, params=sum(p.numel() for p in block.parameters()),
                      flops=counter.get_total_flops(), input_shape=tuple(inputs[0].shape), source=source,
                      signature=signature or type(block).__name__, output_shapes=[tuple(t.shape) for t in outs])


# ------------------------------------------------------------------------------------------------
# The blocks of the zoo, each traced where a zoo model uses it
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockSpec:
    """Where to find a representative instance of a block: ``model``'s reference layer ``layer``
    (the reference's ``model.{layer}``), optionally a submodule ``part`` of it; ``replace`` builds another
    block from that instance (SPP in place of SPPF: same channels, same input)."""

    model: str
    layer: int
    part: str = ""
    expand: tuple[str, ...] = ()
    functions: tuple[tuple[str, str], ...] = ()
    roles: tuple[tuple[str, str], ...] = ()
    replace: str = ""  # a BLOCK_BUILDERS key


def _spp_like(sppf: nn.Module) -> nn.Module:
    """SPP(c1, c2, k=(5, 9, 13)) with the channels of the SPPF it stands in for."""
    from yololab.nn.blocks import SPP

    return SPP(sppf.cv1.conv.in_channels, sppf.cv2.conv.out_channels)


BLOCK_BUILDERS = {"spp": _spp_like}

BLOCKS: dict[str, BlockSpec] = {
    "DarknetResidual": BlockSpec("yolov3", 2),
    "C3": BlockSpec("yolov5s", 4),
    "C2f": BlockSpec("yolov8s", 4),
    "C3k2": BlockSpec("yolo11s", 6, expand=("C3k",)),
    "SPP": BlockSpec("yolov5s", 9, replace="spp"),
    "SPPF": BlockSpec("yolov5s", 9),
    "C2PSA": BlockSpec("yolo11s", 10, expand=("PSABlock", "Attention")),
    "AnchorHead": BlockSpec("yolov5s", 24, functions=(("_decode_level", "decode"),), roles=(("m", "box+obj+cls"),)),
    "DetectHead": BlockSpec("yolov8s", 22, functions=(("yololab.nn.heads:dist2bbox", "dist2bbox"),),
                            roles=(("cv2", "box"), ("cv3", "cls"))),
}


def _signature(mod: nn.Module, c1: int, c2: int) -> str:
    """The block as its constructor call would read: input / output channels ``c1`` / ``c2``, repeats, options."""
    kind = type(mod).__name__
    if kind in ("C3", "C3k", "C2f", "C3k2"):
        n = len(mod.m)
        inner = type(mod.m[0]).__name__
        extra = f", {inner}" if kind == "C3k2" else ""
        shortcut = any(getattr(b, "add", False) for b in mod.m.modules())
        return f"{kind}({c1}, {c2}, n={n}{extra}, shortcut={shortcut})"
    if kind == "C2PSA":
        return f"C2PSA({c1}, {c1}, n={len(mod.m)})"
    if kind == "SPP":
        return f"SPP({c1}, {c2}, k={tuple(p.kernel_size for p in mod.m)})"
    if kind == "SPPF":
        return f"SPPF({c1}, {c2}, k={mod.m.kernel_size})"
    if kind in ("DarknetResidual", "Bottleneck"):
        return f"{kind}({c1}, {c2}, shortcut={mod.add})"
    if kind == "AnchorHead":
        return f"AnchorHead(nc={mod.nc}, {mod.na} anchors x {mod.nl} levels, decode={mod.decode})"
    if kind == "DetectHead":
        return f"DetectHead(nc={mod.nc}, {mod.nl} levels, reg_max={mod.reg_max})"
    return kind


def parse_block(text: str) -> tuple[str, BlockSpec]:
    """A block name of :data:`BLOCKS` (``C2f``) or ``MODEL:LAYER`` (``yolo11s:2``, any reference block of a zoo
    model) -> (name for the files, spec). A bad name is a :class:`YololabError` naming what is valid."""
    if text in BLOCKS:
        return text, BLOCKS[text]
    model, sep, layer = text.partition(":")
    if sep and layer.isdigit():
        return f"{model}-{layer}", BlockSpec(model, int(layer))
    raise YololabError(f"--block {text!r}: expected one of {', '.join(BLOCKS)} or MODEL:LAYER "
                       f"(a zoo model and the index of one of its blocks, as `yololab models summary MODEL` "
                       f"lists them)")


def _layer_inputs(model: nn.Module, target: nn.Module, imgsz: int) -> tuple:
    """The arguments ``target`` receives in one forward pass of ``model`` at ``imgsz`` (first call)."""
    seen: list[tuple] = []

    def grab(mod, args):
        if not seen:
            seen.append(args)

    handle = target.register_forward_pre_hook(grab)
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, imgsz, imgsz, device="meta"))
    finally:
        handle.remove()
    if not seen:
        raise ConfigError(f"{type(target).__name__} never ran in the forward pass of the model")
    return seen[0]


@functools.lru_cache(maxsize=32)
def trace_zoo_block(text: str, imgsz: int = 640) -> BlockTrace:
    """Trace the block ``text`` (see :func:`parse_block`) where its zoo model uses it, at ``imgsz``, on meta."""
    if imgsz <= 0 or imgsz % 32:
        raise YololabError(f"--imgsz {imgsz}: must be a positive multiple of 32")
    name, spec = parse_block(text)
    model = build_for_inspection(spec.model)  # a bad model name: a YololabError naming the valid ones
    paths = model.reference_layers
    if not 0 <= spec.layer < len(paths):
        raise YololabError(f"--block {text}: {spec.model} has blocks 0..{len(paths) - 1}, not {spec.layer}")
    modules = dict(model.named_modules())
    layer = modules[paths[spec.layer]]
    if isinstance(layer, nn.Sequential) and not spec.part:
        layer = layer[0]  # a row repeated n times: draw one of its blocks
    target = modules[f"{paths[spec.layer]}.{spec.part}"] if spec.part else layer
    args = _layer_inputs(model, target, imgsz)
    source = f"{spec.model} model.{spec.layer}" + (f".{spec.part}" if spec.part else "")
    if spec.replace:
        with torch.device("meta"):
            target = BLOCK_BUILDERS[spec.replace](target)
        source = f"in place of {type(layer).__name__}, {source}"
    trace = trace_block(target, args, name, expand=spec.expand, functions=spec.functions, roles=spec.roles,
                        imgsz=imgsz, source=source)
    trace.signature = _signature(target, trace.input_shape[1], trace.output_shapes[0][1])
    return trace
