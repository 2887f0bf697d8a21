"""Inspect a detector by running it: per-block shapes, parameters, FLOPs and data flow.

Everything here comes from one traced forward pass, so the tables (and the diagrams drawn from them in
``diagrams.py``) cannot drift from the model code:

* one forward pass at batch 1, ``eval()``, no grad, with a forward hook on every module listed in
  ``model.reference_layers`` (entry ``i`` is the reference's block ``model.{i}``);
* each hook records the block's input and output shapes, its parameters and the FLOPs counted by
  ``torch.utils.flop_counter.FlopCounterMode`` while it ran (the counter's running total before and after);
* each hook also matches the tensors it received against the outputs of earlier blocks (by object
  identity, then by storage for views), which yields the data-flow edges, skip and concat edges included.
  The image itself is the source ``-1`` ("input").

By default the model is built on PyTorch's ``meta`` device: tensors there have shapes but no data, so
tracing even ``yolov5x`` at 640 costs milliseconds and no memory, and the FLOP counts are exact (they
depend on shapes only). ``yololab models list`` relies on this to cover the whole zoo quickly.

``yololab models list``, ``yololab models summary NAME`` and ``yololab models compare`` print these tables.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from yololab.errors import ConfigError, YololabError
from yololab.fileio import write_text_atomic
from yololab.models import registry

GROUPS = ("backbone", "neck", "head")
INPUT = -1  # the source index of the network input in BlockInfo.inputs


# ------------------------------------------------------------------------------------------------
# Tracing
# ------------------------------------------------------------------------------------------------


@dataclass
class BlockInfo:
    """One reference block as it ran in the traced forward pass."""

    index: int  # position in model.reference_layers (= the reference's ``model.{index}``)
    path: str  # dotted module path, e.g. "neck.up_p4"
    group: str  # "backbone", "neck" or "head" (first component of the path)
    type: str  # class name of the module, e.g. "C2f"
    inputs: list[int | None]  # producing block of every input tensor; -1 = network input, None = unknown
    in_shapes: list[tuple[int, ...]]  # shapes of the input tensors, batch dimension included
    out_shapes: list[tuple[int, ...]]  # shapes of the output tensor(s)
    params: int
    flops: int  # FLOPs (multiply and add counted separately, like Ultralytics' "GFLOPs")
    repeats: int = 1  # a Sequential of ``repeats`` blocks of one type is shown as that type, "x repeats"

    @property
    def label(self) -> str:
        """The type as tables and diagrams show it, e.g. "C2f" or "DarknetResidual x4"."""
        return f"{self.type} x{self.repeats}" if self.repeats > 1 else self.type

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def sources(self) -> list[int]:
        """Distinct producing blocks, in the order the tensors were received (unknown ones dropped)."""
        out: list[int] = []
        for i in self.inputs:
            if i is not None and i not in out:
                out.append(i)
        return out


@dataclass
class Trace:
    """Result of :func:`trace_model`: the blocks in reference order plus whole-model totals."""

    name: str
    imgsz: int
    blocks: list[BlockInfo]
    params: int  # every parameter of the model (blocks and anything outside them)
    flops: int  # every FLOP of the forward pass
    meta: object = None  # the model's ModelMeta (None for models without one)
    input_shape: tuple[int, ...] = ()

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def edges(self) -> list[tuple[int, int]]:
        """Data-flow edges ``(source, target)`` between blocks; source -1 is the network input."""
        return [(src, b.index) for b in self.blocks for src in b.sources]

    def group(self, name: str) -> list[BlockInfo]:
        return [b for b in self.blocks if b.group == name]


def _tensors(obj) -> list[torch.Tensor]:
    """All tensors inside nested lists / tuples / dicts, in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _storage_key(t: torch.Tensor) -> tuple | None:
    """Identifies the memory behind a tensor, so that a view of a block's output still maps to it."""
    if t.device.type == "meta":
        return None  # meta tensors have no memory to compare
    try:
        return (t.device.type, t.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):
        return None


def _block_type(mod: nn.Module) -> tuple[str, int]:
    """Class name of a block; a Sequential of n blocks of one class (the YAML's ``number``) -> (class, n)."""
    if isinstance(mod, nn.Sequential) and len(mod) > 1 and len({type(m) for m in mod}) == 1:
        return type(mod[0]).__name__, len(mod)
    return type(mod).__name__, 1


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def trace_model(model: nn.Module, imgsz: int = 640, name: str | None = None) -> Trace:
    """Run one forward pass of ``model`` on a ``1x3ximgszximgsz`` input and record every reference block.

    ``model`` must have ``reference_layers`` (dotted module paths); see :mod:`yololab.models.base`. It may
    live on the ``meta`` device (shapes only, fast) or on a real one.
    """
    if imgsz <= 0:
        raise YololabError(f"--imgsz must be a positive number of pixels, got {imgsz}")
    paths = list(getattr(model, "reference_layers", []) or [])
    if not paths:
        raise ConfigError(f"{type(model).__name__} has no reference_layers: nothing to inspect")
    modules = dict(model.named_modules())
    groups = getattr(model, "reference_groups", {})  # a model whose module names are not its groups (ResNet)
    missing = [p for p in paths if p not in modules]
    if missing:
        raise ConfigError(f"{type(model).__name__}.reference_layers names modules that do not exist: {missing}")

    meta = getattr(model, "meta", None)
    max_stride = max(getattr(meta, "strides", None) or [1])
    if imgsz % max_stride:
        raise YololabError(f"--imgsz {imgsz}: must be a multiple of the model's largest stride ({max_stride}), "
                           f"e.g. {max(max_stride, round(imgsz / max_stride) * max_stride)}")
    device = _model_device(model)
    x = torch.zeros(1, 3, imgsz, imgsz, device=device)

    producer_by_id: dict[int, int] = {id(x): INPUT}  # id(tensor) -> producing block
    producer_by_storage: dict[tuple, int] = {}
    key = _storage_key(x)
    if key is not None:
        producer_by_storage[key] = INPUT
    keep_alive: list[torch.Tensor] = [x]  # ids stay unique only while the tensors live
    records: dict[int, BlockInfo] = {}
    flops_before: dict[int, int] = {}
    counter = FlopCounterMode(display=False)

    def find_producer(t: torch.Tensor) -> int | None:
        if id(t) in producer_by_id:
            return producer_by_id[id(t)]
        k = _storage_key(t)
        return producer_by_storage.get(k) if k is not None else None

    def make_hooks(index: int, path: str, module: nn.Module):
        def pre_hook(mod, args, kwargs):
            flops_before[index] = counter.get_total_flops()

        def post_hook(mod, args, kwargs, output):
            ins = _tensors(args) + _tensors(kwargs)
            outs = _tensors(output)
            if index not in records:  # a block called twice keeps its first call in the table
                kind, repeats = _block_type(mod)
                records[index] = BlockInfo(
                    index=index,
                    path=path,
                    group=groups.get(path) or (path.split(".")[0] if path.split(".")[0] in GROUPS else "other"),
                    type=kind,
                    repeats=repeats,
                    inputs=[find_producer(t) for t in ins],
                    in_shapes=[tuple(t.shape) for t in ins],
                    out_shapes=[tuple(t.shape) for t in outs],
                    params=sum(p.numel() for p in mod.parameters()),
                    flops=counter.get_total_flops() - flops_before[index],
                )
            for t in outs:  # register outputs only after the inputs were looked up
                producer_by_id[id(t)] = index
                k = _storage_key(t)
                if k is not None:
                    producer_by_storage[k] = index
                keep_alive.append(t)

        return pre_hook, post_hook

    handles = []
    was_training = model.training
    try:
        for i, path in enumerate(paths):
            pre, post = make_hooks(i, path, modules[path])
            handles.append(modules[path].register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(modules[path].register_forward_hook(post, with_kwargs=True))
        model.eval()
        with torch.no_grad(), counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    not_run = [f"{i} ({p})" for i, p in enumerate(paths) if i not in records]
    if not_run:
        raise ConfigError(f"reference_layers entries never ran in the forward pass: {', '.join(not_run)}")
    return Trace(
        name=name or getattr(meta, "name", None) or type(model).__name__,
        imgsz=imgsz,
        blocks=[records[i] for i in range(len(paths))],
        params=sum(p.numel() for p in model.parameters()),
        flops=counter.get_total_flops(),
        meta=meta,
        input_shape=tuple(x.shape),
    )


def _build(name: str, num_classes: int) -> nn.Module:
    """A zoo detector, or a classifier (with its reference's class count: 1000, or 10 for the CIFAR stem)."""
    from yololab.classify.registry import CLASSIFIERS, build_classifier

    if name in CLASSIFIERS:
        return build_classifier(name, num_classes=10 if name.endswith("-cifar") else 1000)
    return registry.build(name, num_classes=num_classes)  # a bad name: a YololabError naming the valid ones


def build_for_inspection(name: str, num_classes: int = 80) -> nn.Module:
    """Build a zoo model on the ``meta`` device: real shapes and parameter counts, no memory, no init time."""
    with torch.device("meta"):
        return _build(name, num_classes)


def trace_zoo_model(name: str, imgsz: int = 640, num_classes: int = 80) -> Trace:
    """Build ``name`` (any case: ``YOLOv8n`` is ``yolov8n``) on the meta device and trace it.

    If the model cannot run on the meta device (some op needs real data), it is built and traced on the
    CPU instead; both give identical shapes, parameters and FLOPs, the CPU only takes longer.
    """
    from yololab.classify.registry import CLASSIFIERS

    return _trace_zoo_model(name if name in CLASSIFIERS else registry.resolve_name(name), imgsz, num_classes)


@functools.lru_cache(maxsize=64)  # the demo and tests ask for a model twice
def _trace_zoo_model(name: str, imgsz: int, num_classes: int) -> Trace:
    try:
        model = build_for_inspection(name, num_classes)
        return trace_model(model, imgsz, name=name)
    except (NotImplementedError, RuntimeError):
        return trace_model(_build(name, num_classes), imgsz, name=name)


# ------------------------------------------------------------------------------------------------
# Formatting helpers
# ------------------------------------------------------------------------------------------------


def fmt_shape(shape: tuple[int, ...]) -> str:
    """``(1, 64, 80, 80)`` -> ``"64x80x80"`` (the batch dimension is left out)."""
    return "x".join(str(s) for s in shape[1:]) if len(shape) > 1 else "x".join(str(s) for s in shape)


def block_strides(block: BlockInfo, imgsz: int) -> list[int]:
    """Stride of every 4-D output (input size / output height); for a head, the strides of its inputs."""
    shapes = [s for s in block.out_shapes if len(s) == 4] or [s for s in block.in_shapes if len(s) == 4]
    return [round(imgsz / s[2]) for s in shapes if s[2] > 0]


def fmt_sources(block: BlockInfo) -> str:
    return ",".join("input" if i == INPUT else ("?" if i is None else str(i)) for i in block.inputs) or "-"


def fmt_int(n: int) -> str:
    return f"{n:,}"


def _family_title(family: str) -> str:
    return {"yolov3": "YOLOv3", "yolov5": "YOLOv5", "yolov8": "YOLOv8", "yolo11": "YOLO11",
            "resnet": "ResNet"}.get(family, family)


def _text_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    """A plain aligned text table; rows that are a single string are printed as section titles."""
    widths = [len(h) for h in header]
    for r in rows:
        if isinstance(r, list):
            widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(header), "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append(r if isinstance(r, str) else line(r))
    return "\n".join(s.rstrip() for s in out)


# ------------------------------------------------------------------------------------------------
# The three views: zoo list, per-block summary, comparison table
# ------------------------------------------------------------------------------------------------


@dataclass
class ZooRow:
    name: str
    family: str
    scale: str
    params: int
    gflops: float
    strides: list[int]
    anchor_based: bool
    backbone: str = ""
    neck: str = ""
    head: str = ""
    imgsz: int = 640
    num_classes: int = 80


def zoo_rows(imgsz: int = 640, names: list[str] | None = None, progress: bool = True) -> list[ZooRow]:
    """Trace every zoo model (meta device) and collect the facts the list / compare tables show."""
    from yololab.progress import progress as bar

    names = list(names) if names is not None else registry.list_models()
    rows = []
    for name in bar(names, desc=f"tracing models at {imgsz}", enabled=progress, leave=False):
        t = trace_zoo_model(name, imgsz)
        m = t.meta
        rows.append(ZooRow(
            name=name,
            family=getattr(m, "family", ""),
            scale=getattr(m, "scale", ""),
            params=t.params,
            gflops=t.gflops,
            strides=list(getattr(m, "strides", [])),
            anchor_based=bool(getattr(m, "anchor_based", False)),
            backbone=getattr(m, "backbone", ""),
            neck=getattr(m, "neck", ""),
            head=getattr(m, "head", ""),
            imgsz=imgsz,
            num_classes=getattr(m, "num_classes", 80),
        ))
    return rows


def format_list(rows: list[ZooRow]) -> str:
    header = ["model", "family", "scale", "params", f"GFLOPs@{rows[0].imgsz if rows else 640}", "strides", "anchors"]
    body = [[r.name, _family_title(r.family), r.scale or "-", fmt_int(r.params), f"{r.gflops:.1f}",
             ",".join(map(str, r.strides)), "anchor-based" if r.anchor_based else "anchor-free"] for r in rows]
    return _text_table(header, body, right={3, 4})


def format_summary(t: Trace) -> str:
    """One row per block, grouped backbone / neck / head, with subtotals and totals."""
    m = t.meta
    title = t.name
    if m is not None:
        kind = "" if not hasattr(m, "anchor_based") else ", anchor-based" if m.anchor_based else ", anchor-free"
        title += (f"  ({_family_title(getattr(m, 'family', ''))}, scale {getattr(m, 'scale', '') or '-'}, "
                  f"{getattr(m, 'num_classes', '?')} classes{kind})")
    header = ["idx", "from", "type", "input -> output", "stride", "params", "GFLOPs"]
    rows: list = []
    groups = [g for g in GROUPS + ("other",) if t.group(g)]
    for g in groups:
        blocks = t.group(g)
        rows.append(f"{g}")
        for b in blocks:
            ins = " + ".join(fmt_shape(s) for s in b.in_shapes)
            outs = ", ".join(fmt_shape(s) for s in b.out_shapes)
            rows.append([str(b.index), fmt_sources(b), b.label, f"{ins} -> {outs}",
                         ",".join(map(str, block_strides(b, t.imgsz))), fmt_int(b.params), f"{b.gflops:.2f}"])
        rows.append(["", "", "", f"{g} total", "", fmt_int(sum(b.params for b in blocks)),
                     f"{sum(b.flops for b in blocks) / 1e9:.2f}"])
    rows.append("")
    rows.append(["", "", "", f"model total ({len(t.blocks)} blocks)", "", fmt_int(t.params), f"{t.gflops:.2f}"])
    text = _text_table(header, rows, right={0, 4, 5, 6})
    return f"{title}\ninput {fmt_shape(t.input_shape)} (batch 1, imgsz {t.imgsz})\n\n{text}"


COMPARE_FIELDS = ["model", "version", "backbone", "neck", "head", "anchors", "strides", "input size",
                  "parameters", "GFLOPs", "COCO mAP50-95", "mAP source"]
MARKDOWN_FIELDS = COMPARE_FIELDS[:-1]  # the wide table leaves the source address to the accuracy section
ACCURACY_FIELDS = ["model", "generation", "COCO mAP50-95", "source (SOTA table row)", "parameters", "GFLOPs"]
ACCURACY_IMGSZ = 640  # the input size of the published COCO figures


def compare_records(rows: list[ZooRow], accuracy: dict | None = None) -> list[dict]:
    """One record per model for the comparison table. ``accuracy`` maps a model name to its row of the SOTA
    table (``yololab.study.sota.zoo_accuracy``: ``value``, ``source_url``, ...); without it the two accuracy
    fields stay empty."""
    accuracy = accuracy or {}
    return [{
        "model": r.name,
        "version": _family_title(r.family),
        "backbone": r.backbone,
        "neck": r.neck,
        "head": r.head,
        "anchors": "anchor-based" if r.anchor_based else "anchor-free",
        "strides": " ".join(map(str, r.strides)),
        "input size": r.imgsz,
        "parameters": r.params,
        "GFLOPs": f"{r.gflops:.2f}",
        "COCO mAP50-95": f"{accuracy[r.name].value:.1f}" if r.name in accuracy else "",
        "mAP source": accuracy[r.name].source_url if r.name in accuracy else "",
    } for r in rows]


def _markdown_table(fields: list[str], rows: list[list[str]], right: set[str]) -> str:
    lines = ["| " + " | ".join(fields) + " |",
             "|" + "|".join("---:" if f in right else "---" for f in fields) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def compare_markdown(records: list[dict]) -> str:
    cells = [[fmt_int(rec[f]) if f == "parameters" else str(rec[f]) for f in MARKDOWN_FIELDS] for rec in records]
    return _markdown_table(MARKDOWN_FIELDS, cells, {"input size", "parameters", "GFLOPs", "COCO mAP50-95"})


def accuracy_plot_path(out: Path) -> Path:
    """Where ``yololab models compare --out X.csv`` draws mAP against cost: ``X-accuracy.png`` (and ``.svg``)."""
    return Path(out).with_name(f"{Path(out).stem}-accuracy.png")


def accuracy_markdown(records: list[dict], accuracy: dict, table: Path, md_dir: Path, plot: Path | None) -> str:
    """The "Accuracy beside cost" section: every model's published mAP (linked to its SOTA table row and to the
    row's source) beside the parameters and GFLOPs traced from our code, and the plot of one against the other."""
    link = Path(os.path.relpath(table, md_dir)).as_posix()
    cells = []
    for rec in records:
        row = accuracy[rec["model"]]
        cells.append([rec["model"], rec["version"], rec["COCO mAP50-95"],
                      f"[{row.model}]({link}#L{row.line}) ([source]({row.source_url}))",
                      fmt_int(rec["parameters"]), rec["GFLOPs"]])
    text = (f"COCO val2017 box mAP50-95 at {ACCURACY_IMGSZ}×{ACCURACY_IMGSZ} of each model's released COCO "
            f"checkpoint, beside the cost of the architecture. The accuracy comes from [{table.name}]({link}), one "
            f"row per model with its source (the first link jumps to the row, the second to the source it cites); "
            f"parameters and GFLOPs are the generated figures of the table above.\n\n"
            + _markdown_table(ACCURACY_FIELDS, cells, {"COCO mAP50-95", "parameters", "GFLOPs"}))
    if plot is not None:
        text += (f"\n![COCO mAP50-95 against GFLOPs and against parameters, one line per generation]"
                 f"({Path(os.path.relpath(plot, md_dir)).as_posix()})\n")
    return text


def replace_generated(text: str, regions: dict[str, str], path: Path) -> str:
    """Replace the body of every ``<!-- generated:KEY -->`` ... ``<!-- /generated:KEY -->`` region of ``text``;
    the text around the regions (hand-written explanations) is kept. A missing region is a YololabError."""
    for key, body in regions.items():
        begin, end = f"<!-- generated:{key} -->", f"<!-- /generated:{key} -->"
        pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), flags=re.S)
        if not pattern.search(text):
            raise YololabError(f"{path} has no '{begin}' ... '{end}' region: it was not written by "
                               f"`yololab models compare`; move it away or choose another --out")
        text = pattern.sub(lambda m: f"{begin}\n{body.rstrip()}\n{end}", text, count=1)
    return text


def compare_regions(rows: list[ZooRow], out: Path, accuracy: dict | None = None,
                    table: Path | None = None) -> dict[str, str]:
    """The generated regions of the Markdown next to ``out``: ``zoo`` (the table) and ``accuracy`` (the "Accuracy
    beside cost" section, whose links point into ``table``, the SOTA table file, relative to the Markdown)."""
    out = Path(out)
    records = compare_records(rows, accuracy)
    imgsz, nc = (rows[0].imgsz, rows[0].num_classes) if rows else (640, 80)
    regions = {"zoo": (f"Generated by `yololab models compare` from the model code (one traced forward pass per "
                       f"model at {imgsz}x{imgsz}, {nc} classes); COCO mAP50-95 from the SOTA table (next "
                       f"section). The tables between `generated` markers are rewritten by every run; the text "
                       f"around them is kept.\n\n" + compare_markdown(records))}
    if accuracy and imgsz == ACCURACY_IMGSZ:
        regions["accuracy"] = accuracy_markdown(records, accuracy, Path(table), out.parent, accuracy_plot_path(out))
    else:
        regions["accuracy"] = (f"The published COCO figures are measured at {ACCURACY_IMGSZ}x{ACCURACY_IMGSZ}: "
                               f"run `yololab models compare --imgsz {ACCURACY_IMGSZ}` for this section.")
    return regions


def write_compare(rows: list[ZooRow], out: Path, accuracy: dict | None = None,
                  table: Path | None = None) -> tuple[Path, Path]:
    """Write the comparison table as CSV at ``out`` and as Markdown next to it (same name, ``.md``).

    ``accuracy`` (model name -> SOTA table row) adds the mAP columns and the "Accuracy beside cost" section
    (:func:`compare_regions`). An existing ``.md`` keeps everything outside its generated regions
    (:func:`replace_generated`): explanations written around the tables survive a rerun.
    """
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise YololabError(f"--out must name a .csv file (the .md goes next to it), got {out}")
    if out.exists() and out.is_dir():
        raise YololabError(f"--out {out} is a folder; give a file name such as {out / 'architectures.csv'}")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COMPARE_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(compare_records(rows, accuracy))
    md_path = out.with_suffix(".md")
    regions = compare_regions(rows, out, accuracy, table)
    if md_path.is_file():
        md = replace_generated(md_path.read_text(encoding="utf-8"), regions, md_path)
    else:
        md = "# Architectures of the model zoo\n\n" + "\n\n## Accuracy beside cost\n\n".join(
            f"<!-- generated:{key} -->\n{body.rstrip()}\n<!-- /generated:{key} -->" for key, body in regions.items()
        ) + "\n"
    write_text_atomic(out, buf.getvalue())
    write_text_atomic(md_path, md)
    return out, md_path
