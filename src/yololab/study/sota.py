"""The sourced state-of-the-art table: a validating loader, a summary and trade-off plots.

``sota_table.csv`` (shipped in this package, so ``yololab sota`` works from any folder: :func:`packaged_table`)
holds one published figure per row: which task, dataset, split and metric,
the value, the model, its size and speed, and *where the number comes from* (``source_url``,
``source_title``, publication ``date`` and the day it was ``accessed``). Leaderboard numbers are easy
to misread (test-dev against val, extra pretraining data, test-time augmentation, different GPUs),
so the protocol travels with every value and the loader refuses rows that do not say it.

Columns, in this order (an optional trailing ``notes`` column holds protocol remarks)::

    task, dataset, split, metric, value, model, params_M, gflops, speed, speed_unit, hardware,
    batch, precision, extra_data, tta, date, source_url, source_title, accessed[, notes]

Conventions the loader enforces:

- ``task`` is one of ``classification``, ``detection``, ``segmentation``, ``video`` and ``metric``
  one of the metrics allowed for it (``top1``; ``box_AP``; ``mask_AP`` or ``PQ``; ``top1``).
- ``value`` is a number in [0, 100]; ``params_M`` (millions) and ``gflops`` are empty or positive.
- ``speed`` is empty, or positive with a ``speed_unit`` (``ms`` or ``FPS``) and the ``hardware``
  it ran on; ``precision`` and ``batch`` are filled only when the source states them. Without a speed,
  the speed fields stay empty.
- ``extra_data`` is ``no``, ``unstated ...`` (the source does not say), or names the data beyond the
  benchmark's own training set (and the usual ImageNet-1K backbone initialisation) the result relies
  on; ``tta`` is ``yes``, ``no`` or ``unstated``.
- ``date`` (``YYYY-MM`` or ``YYYY-MM-DD``) is when the source published the figure; it may not lie
  in the future nor after ``accessed`` (``YYYY-MM-DD``).
- ``source_url`` is an https address: a GitHub file (``/OWNER/REPO/blob/REF/PATH``), an arXiv
  abstract (``https://arxiv.org/abs/ID``) or an official documentation page. Leaderboard
  aggregators are refused: cite the paper.

Speed figures are comparable only when hardware, precision and batch all match, so each plot puts
on its speed axis only the largest such group and lists the others under the figure as left off.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.resources
import math
import os
import re
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from yololab.errors import DataError
from yololab.fileio import atomic_path

COLUMNS = (
    "task", "dataset", "split", "metric", "value", "model", "params_M", "gflops", "speed", "speed_unit",
    "hardware", "batch", "precision", "extra_data", "tta", "date", "source_url", "source_title", "accessed",
)
OPTIONAL_TRAILING = "notes"
METRICS = {
    "classification": ("top1",),
    "detection": ("box_AP",),
    "segmentation": ("mask_AP", "PQ"),
    "video": ("top1",),
}
METRIC_LABELS = {"top1": "top-1 accuracy (%)", "box_AP": "box AP@[.5:.95]", "mask_AP": "mask AP@[.5:.95]", "PQ": "PQ"}
SPEED_UNITS = ("ms", "FPS")
TTA_VALUES = ("yes", "no", "unstated")
REFUSED_HOSTS = ("paperswithcode.com",)  # aggregators, not sources
PACKAGED_TABLE = "sota_table.csv"  # shipped inside this package: see packaged_table()
PACKAGED_NAME = "yololab/study/sota_table.csv"  # how figures name it (the same in a checkout and an install)
LABEL_FONT, NOTE_FONT = 7.5, 9.0  # point sizes of the model names on the plots and of the notes under them


def packaged_table() -> Path:
    """The table that ships with yololab (``yololab/study/sota_table.csv``, package data)."""
    return Path(str(importlib.resources.files("yololab.study").joinpath(PACKAGED_TABLE)))


def _speed_group(speed, hardware: str, precision: str, batch: int | None) -> tuple[str, str, str] | None:
    if speed is None:
        return None
    return (hardware, precision or "precision not stated", f"batch {batch}" if batch is not None else "batch not stated")


def _latency_ms(speed, unit: str, batch: int | None) -> float | None:
    if speed is None:
        return None
    if unit == "ms":
        return speed
    if unit == "FPS" and batch == 1:
        return 1000.0 / speed
    return None  # FPS at a larger or unknown batch is throughput, not latency


@dataclass(frozen=True)
class SotaRow:
    """One validated row of the SOTA table. ``line`` is its line number in the CSV file."""

    line: int
    task: str
    dataset: str
    split: str
    metric: str
    value: float
    model: str
    params_M: float | None
    gflops: float | None
    speed: float | None
    speed_unit: str
    hardware: str
    batch: int | None
    precision: str
    extra_data: str
    tta: str
    date: str
    source_url: str
    source_title: str
    accessed: str
    notes: str = ""

    @property
    def is_yolo(self) -> bool:
        return self.model.upper().startswith("YOLO")

    @property
    def uses_extra_data(self) -> bool:
        """True when the row names extra data; ``no`` and ``unstated ...`` are not counted."""
        text = self.extra_data.strip().lower()
        return not (text == "no" or text.startswith("unstated"))

    @property
    def protocol(self) -> tuple[str, str, str]:
        """What the accuracy means: (dataset, split, metric). Only equal protocols share an axis."""
        return (self.dataset, self.split, self.metric)

    @property
    def speed_group(self) -> tuple[str, str, str] | None:
        """(hardware, precision, batch) of the speed figure; equal groups are comparable."""
        return _speed_group(self.speed, self.hardware, self.precision, self.batch)

    @property
    def latency_ms(self) -> float | None:
        """Per-image latency in ms: as given, or 1000/FPS when the FPS was measured at batch 1."""
        return _latency_ms(self.speed, self.speed_unit, self.batch)

    @property
    def family(self) -> str:
        return model_family(self.model)

    @property
    def year(self) -> float:
        """Publication date as a fractional year, for the timeline panel."""
        parts = [int(x) for x in self.date.split("-")]
        month, day = parts[1], parts[2] if len(parts) > 2 else 15
        return parts[0] + (month - 1) / 12 + (day - 1) / 365


@dataclass(frozen=True)
class OursRow:
    """One of our own measurements, overlaid on the published points."""

    line: int
    task: str
    model: str
    value: float
    params_M: float | None
    speed: float | None
    speed_unit: str
    hardware: str
    precision: str
    batch: int | None
    note: str

    @property
    def speed_group(self) -> tuple[str, str, str] | None:
        return _speed_group(self.speed, self.hardware, self.precision, self.batch)

    @property
    def latency_ms(self) -> float | None:
        return _latency_ms(self.speed, self.speed_unit, self.batch)


def model_family(model: str) -> str:
    """Name of a model without its size, so the sizes of one family can be drawn as one line.

    ``YOLO11x-seg`` -> ``YOLO11-seg``, ``D-FINE-L (Objects365)`` -> ``D-FINE (Objects365)``,
    ``RT-DETR-R50`` -> ``RT-DETR``; a parenthesised remark (backbone, extra data) is kept.
    """
    m = re.match(r"^(?P<base>.*?)(?P<paren>\s*\(.*\))?$", model.strip())
    base, paren = m.group("base"), m.group("paren") or ""
    base = re.sub(r"^(YOLOv?\d+)[nsmblx]\d?(?=$|[- ])", r"\1", base)
    base = re.sub(r"-(?:[NSMLXBHTA]|XL|XS|Ti|R\d+|[NSMLX]\*)$", "", base)
    return base + paren


# ----------------------------------------------------------------------------------------------
# loading and validation


class _RowError(Exception):
    """A problem in one cell; turned into a DataError naming file, line and column."""

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


def _number(row: dict, col: str, *, required: bool, positive: bool = False) -> float | None:
    text = row[col].strip()
    if not text:
        if required:
            raise _RowError(col, "is empty, expected a number")
        return None
    try:
        x = float(text)
    except ValueError:
        raise _RowError(col, f"{text!r} is not a number") from None
    if not math.isfinite(x):
        raise _RowError(col, f"{text!r} is not a finite number")
    if positive and x <= 0:
        raise _RowError(col, f"{text!r} must be positive")
    return x


def _integer(row: dict, col: str) -> int | None:
    text = row[col].strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise _RowError(col, f"{text!r} is not a positive whole number")
    return int(text)


def _required(row: dict, col: str, what: str) -> str:
    text = row[col].strip()
    if not text:
        raise _RowError(col, f"is empty, expected {what}")
    return text


def _date(row: dict, col: str, today: dt.date, *, day_required: bool) -> dt.date:
    text = row[col].strip()
    fmt = "YYYY-MM-DD" if day_required else "YYYY-MM or YYYY-MM-DD"
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = dt.date.fromisoformat(text)
        elif not day_required and re.fullmatch(r"\d{4}-\d{2}", text):
            d = dt.date.fromisoformat(text + "-01")
        else:
            raise ValueError
    except ValueError:
        raise _RowError(col, f"{text!r} is not a date of the form {fmt}") from None
    if d > today:
        raise _RowError(col, f"{text} lies in the future (today is {today.isoformat()})")
    return d


def check_source_url(url: str) -> str | None:
    """Return why ``url`` is not an acceptable source address, or None when it is."""
    if not url:
        return "missing source: the URL is empty"
    if any(ch.isspace() for ch in url):
        return f"{url!r} contains white space"
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.netloc or "." not in parsed.netloc:
        return f"{url!r} is not an https URL with a host name"
    host = parsed.netloc.lower().removeprefix("www.")
    if host in REFUSED_HOSTS:
        return f"{host} is a leaderboard aggregator, not a source: cite the paper or the official repository"
    parts = [p for p in parsed.path.split("/") if p]
    if host == "github.com" and (len(parts) < 5 or parts[2] not in ("blob", "tree")):
        return f"{url!r} does not point at a file: expected https://github.com/OWNER/REPO/blob/REF/PATH"
    if host == "arxiv.org" and not re.fullmatch(r"/abs/(\d{4}\.\d{4,5}|[a-z.\-]+/\d{7})(v\d+)?", parsed.path):
        return f"{url!r} is not an arXiv abstract address: expected https://arxiv.org/abs/ID"
    return None


def _parse_row(row: dict, line: int, today: dt.date) -> SotaRow:
    task = _required(row, "task", "one of " + ", ".join(METRICS))
    if task not in METRICS:
        raise _RowError("task", f"unknown task {task!r}: expected one of {', '.join(METRICS)}")
    metric = _required(row, "metric", "a metric")
    if metric not in METRICS[task]:
        raise _RowError("metric", f"unknown metric {metric!r} for task {task}: expected one of {', '.join(METRICS[task])}")
    value = _number(row, "value", required=True)
    if not 0.0 <= value <= 100.0:
        raise _RowError("value", f"{value:g} is outside [0, 100]")

    url = row["source_url"].strip()
    problem = check_source_url(url)
    if problem:
        raise _RowError("source_url", problem)
    _required(row, "source_title", "the title of the source (missing source)")

    speed = _number(row, "speed", required=False, positive=True)
    unit, hardware = row["speed_unit"].strip(), row["hardware"].strip()
    precision, batch = row["precision"].strip(), _integer(row, "batch")
    if speed is not None:
        if unit not in SPEED_UNITS:
            raise _RowError("speed_unit", f"{unit!r} is not a speed unit: a speed needs one of {', '.join(SPEED_UNITS)}")
        if not hardware:
            raise _RowError("hardware", "is empty: a speed needs the hardware it was measured on")
    else:
        for col, text in (("speed_unit", unit), ("hardware", hardware), ("precision", precision),
                          ("batch", row["batch"].strip())):
            if text:
                raise _RowError(col, f"{text!r} is given without a speed: leave it empty or fill speed")

    tta = row["tta"].strip()
    if tta not in TTA_VALUES:
        raise _RowError("tta", f"{tta!r} is not one of {', '.join(TTA_VALUES)}")
    published = _date(row, "date", today, day_required=False)
    accessed = _date(row, "accessed", today, day_required=True)
    if published > accessed:
        raise _RowError("date", f"{row['date'].strip()} is after the access date {accessed.isoformat()}")

    return SotaRow(
        line=line,
        task=task,
        dataset=_required(row, "dataset", "the dataset name"),
        split=_required(row, "split", "the split (e.g. val2017, test-dev)"),
        metric=metric,
        value=value,
        model=_required(row, "model", "the model name"),
        params_M=_number(row, "params_M", required=False, positive=True),
        gflops=_number(row, "gflops", required=False, positive=True),
        speed=speed,
        speed_unit=unit,
        hardware=hardware,
        batch=batch,
        precision=precision,
        extra_data=_required(row, "extra_data", "'no' or the extra data used"),
        tta=tta,
        date=row["date"].strip(),
        source_url=url,
        source_title=row["source_title"].strip(),
        accessed=row["accessed"].strip(),
        notes=row.get(OPTIONAL_TRAILING, "").strip(),
    )


def _read_records(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) of every non-blank record of a CSV file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            records = []
            header = None
            for fields in reader:
                if not any(f.strip() for f in fields):
                    continue
                if header is None:
                    header = [f.strip() for f in fields]
                else:
                    records.append((reader.line_num, fields))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read it as a UTF-8 CSV file ({e})") from None
    if header is None:
        raise DataError(f"{path}: the file is empty, expected a header line")
    return header, records


def load_sota_table(path: str | os.PathLike, today: dt.date | None = None) -> list[SotaRow]:
    """Read and validate the SOTA table; raise DataError naming file, line and column on bad input.

    ``today`` (default: the current date) is the reference for refusing dates in the future.
    """
    path = Path(path)
    today = today or dt.date.today()
    header, records = _read_records(path)
    expected = list(COLUMNS)
    if header not in (expected, expected + [OPTIONAL_TRAILING]):
        for i, name in enumerate(header):
            if i >= len(expected) + 1 or (i < len(expected) and name != expected[i]) or (i == len(expected) and name != OPTIONAL_TRAILING):
                want = expected[i] if i < len(expected) else f"{OPTIONAL_TRAILING} (optional) or nothing"
                raise DataError(f"{path}: line 1, column {i + 1}: header {name!r} where {want!r} was expected "
                                f"(columns: {', '.join(COLUMNS)}[, {OPTIONAL_TRAILING}])")
        raise DataError(f"{path}: line 1: header lacks column {expected[len(header)]!r} "
                        f"(columns: {', '.join(COLUMNS)}[, {OPTIONAL_TRAILING}])")
    rows = []
    for line, fields in records:
        if len(fields) != len(header):
            raise DataError(f"{path}: line {line}: {len(fields)} fields where the header has {len(header)}")
        record = dict(zip(header, fields))
        try:
            rows.append(_parse_row(record, line, today))
        except _RowError as e:
            raise DataError(f"{path}: line {line}, column '{e.column}': {e.message}") from None
    if not rows:
        raise DataError(f"{path}: no rows after the header")
    return rows


def load_ours(path: str | os.PathLike) -> list[OursRow]:
    """Read our own measurements: columns model, value, params_M, speed, speed_unit, hardware,
    precision, batch, note, and optionally task (default ``detection``)."""
    path = Path(path)
    header, records = _read_records(path)
    needed = ["model", "value", "params_M", "speed", "speed_unit", "hardware", "precision", "batch", "note"]
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(f"{path}: line 1: missing column(s) {', '.join(missing)} (needed: {', '.join(needed)}[, task])")
    out = []
    for line, fields in records:
        if len(fields) != len(header):
            raise DataError(f"{path}: line {line}: {len(fields)} fields where the header has {len(header)}")
        row = dict(zip(header, fields))
        try:
            task = row.get("task", "").strip() or "detection"
            if task not in METRICS:
                raise _RowError("task", f"unknown task {task!r}: expected one of {', '.join(METRICS)}")
            speed = _number(row, "speed", required=False, positive=True)
            unit, hardware = row["speed_unit"].strip(), row["hardware"].strip()
            if speed is not None and unit not in SPEED_UNITS:
                raise _RowError("speed_unit", f"{unit!r} is not one of {', '.join(SPEED_UNITS)}")
            if speed is not None and not hardware:
                raise _RowError("hardware", "is empty: our measurement needs the machine it ran on")
            value = _number(row, "value", required=True)
            if not 0.0 <= value <= 100.0:
                raise _RowError("value", f"{value:g} is outside [0, 100]")
            out.append(OursRow(line=line, task=task, model=_required(row, "model", "the model name"), value=value,
                               params_M=_number(row, "params_M", required=False, positive=True), speed=speed,
                               speed_unit=unit, hardware=hardware, precision=row["precision"].strip(),
                               batch=_integer(row, "batch"), note=row["note"].strip()))
        except _RowError as e:
            raise DataError(f"{path}: line {line}, column '{e.column}': {e.message}") from None
    return out


# ----------------------------------------------------------------------------------------------
# summary


def summarize(rows: list[SotaRow]) -> str:
    """A few lines per task: counts, the leader of each protocol, extra data, TTA, speed groups."""
    lines = []
    by_task: dict[str, list[SotaRow]] = defaultdict(list)
    for r in rows:
        by_task[r.task].append(r)
    for task in METRICS:
        rs = by_task.get(task, [])
        if not rs:
            lines.append(f"{task}: no rows")
            continue
        n_speed = sum(r.speed is not None for r in rs)
        groups = Counter(r.speed_group for r in rs if r.speed_group)
        lines.append(f"{task}: {len(rs)} rows, {len({r.model for r in rs})} models, {n_speed} with speed "
                     f"in {len(groups)} comparable group(s), {sum(r.uses_extra_data for r in rs)} using extra data, "
                     f"{sum(r.tta == 'yes' for r in rs)} with TTA")
        protocols = Counter(r.protocol for r in rs)
        for proto, n in protocols.most_common():
            best = max((r for r in rs if r.protocol == proto), key=lambda r: r.value)
            extra = " (extra data)" if best.uses_extra_data else ""
            lines.append(f"  {' / '.join(proto)}: {n} rows, best {fmt_value(best.value)} {best.model}{extra} [line {best.line}]")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# plots


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by another with lower-or-equal cost and higher accuracy, by cost ascending.

    Each point is (cost, accuracy): cost is parameters or latency (lower is better).
    """
    front = []
    best = -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def choose_speed_group(rows: list[SotaRow]) -> tuple[tuple[str, str, str] | None, dict]:
    """The (hardware, precision, batch) group with the most rows that have a latency, and all groups."""
    groups: dict[tuple[str, str, str], list[SotaRow]] = defaultdict(list)
    for r in rows:
        if r.speed_group is not None:
            groups[r.speed_group].append(r)
    usable = {k: [r for r in v if r.latency_ms is not None] for k, v in groups.items()}
    if not any(usable.values()):
        return None, groups
    key = max(usable, key=lambda k: (len(usable[k]), k))
    return key, groups


_YOLO_COLORS = ["#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#f4a582", "#b2182b", "#c49c94",
                "#e08214", "#a50026", "#fdae61", "#dd3497"]
_OTHER_COLORS = ["#1f77b4", "#2ca02c", "#17becf", "#9467bd", "#393b79", "#637939", "#7f7f7f",
                 "#5254a3", "#3182bd", "#31a354", "#756bb1", "#636363", "#6baed6", "#74c476"]


def fmt_value(x: float) -> str:
    """A value as the sources print it: 66.0, 61.68, 88.4."""
    return f"{x:.1f}" if round(x, 1) == x else f"{x:g}"


def _names(rows, limit: int = 4) -> str:
    names = [r.model for r in rows]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def family_colors(rows: list[SotaRow]) -> dict[str, str]:
    """One colour per model family, warm for YOLO and cool for the rest, stable across panels."""
    colors = {}
    yolo = sorted({r.family for r in rows if r.is_yolo}, key=str.lower)
    other = sorted({r.family for r in rows if not r.is_yolo}, key=str.lower)
    for i, fam in enumerate(yolo):
        colors[fam] = _YOLO_COLORS[i % len(_YOLO_COLORS)]
    for i, fam in enumerate(other):
        colors[fam] = _OTHER_COLORS[i % len(_OTHER_COLORS)]
    return colors


def _text_size_pt(text: str, fontsize: float, bold: bool) -> tuple[float, float]:
    """Width and height in points of one line of text, measured from the font (no renderer needed)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    w, h, _ = TextToPath().get_text_width_height_descent(
        text, FontProperties(size=fontsize, weight="bold" if bold else "normal"), ismath=False)
    return w, fontsize * 1.2


# where a label may go, relative to its point (points): (dx, dy, ha, va), the nearest first
_SPOTS = [(5, 0, "left", "center"), (4, 4, "left", "bottom"), (4, -4, "left", "top"), (-5, 0, "right", "center"),
          (-4, 4, "right", "bottom"), (-4, -4, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top")]


def _place_labels(ax, labels: list[tuple[float, float, str, str, bool]], markers: list[tuple[float, float]],
                  fontsize: float = LABEL_FONT):
    """Annotate points with names, each where it covers no other label, no marker and stays inside the axes.

    ``labels`` holds (x, y, text, colour, bold) and ``markers`` every point drawn, in data coordinates. YOLO
    labels are placed first, then from the top down. Each label takes the first free spot around its point
    (:data:`_SPOTS`), else the nearest free spot further up or down, reached by a thin leader line; if none is
    free, the spot that covers least. The lines already drawn count too, at a third of the weight: a label may
    cross a line where nothing else is free.
    """
    import numpy as np

    ax.autoscale_view()
    to_pt = 72.0 / ax.figure.dpi
    x0a, y0a, x1a, y1a = (v * to_pt for v in ax.bbox.extents)
    r = 4.0  # half the side of a marker, points
    blocked = [(px * to_pt - r, py * to_pt - r, px * to_pt + r, py * to_pt + r, 1.0)
               for px, py in (ax.transData.transform(m) for m in markers)]
    for line in ax.get_lines():  # sampled every 3 points along each line, as small obstacles
        xy = line.get_xydata()
        if line.get_drawstyle() == "steps-post" and len(xy) > 1:
            xy = np.insert(xy, range(1, len(xy)), np.c_[xy[1:, 0], xy[:-1, 1]], axis=0)
        pts = ax.transData.transform(xy) * to_pt
        for a, b in zip(pts[:-1], pts[1:]):
            n = max(1, int(np.hypot(*(b - a)) / 3))
            blocked += [(x - 1, y - 1, x + 1, y + 1, 1 / 3) for x, y in np.linspace(a, b, n + 1)]

    def cost(box) -> float:
        bx0, by0, bx1, by1 = box
        outside = max(0, x0a - bx0) + max(0, bx1 - x1a) + max(0, y0a - by0) + max(0, by1 - y1a)
        overlap = sum(weight * max(0, min(bx1, c1) - max(bx0, c0)) * max(0, min(by1, d1) - max(by0, d0))
                      for c0, d0, c1, d1, weight in blocked)
        return overlap + 100 * outside

    order = sorted(labels, key=lambda lab: (not lab[4], -lab[1]))
    for x, y, text, color, bold in order:
        px, py = (v * to_pt for v in ax.transData.transform((x, y)))
        w, h = _text_size_pt(text, fontsize, bold)
        spots = list(_SPOTS) + [(dx, k * sign * h * 0.8, ha, "center") for k in range(2, 14) for sign in (1, -1)
                                for dx, ha in ((6, "left"), (-6, "right"))]
        best = None
        for dx, dy, ha, va in spots:
            left = px + dx - (w if ha == "right" else w / 2 if ha == "center" else 0)
            bottom = py + dy - (h if va == "top" else h / 2 if va == "center" else 0)
            box = (left, bottom, left + w, bottom + h)
            c = cost(box)
            if best is None or c < best[0]:
                best = (c, box, dx, dy, ha, va)
            if c == 0:
                break
        _, box, dx, dy, ha, va = best
        blocked.append((*box, 1.0))
        far = abs(dy) > h
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, color=color,
                    fontweight="bold" if bold else "normal", ha=ha, va=va, zorder=5,
                    arrowprops=dict(arrowstyle="-", color=color, lw=0.5, alpha=0.7, shrinkA=0, shrinkB=3)
                    if far else None)


def _log_axis(ax, lo: float, hi: float) -> None:
    """A log x axis labelled with plain numbers that never collide: 1-2-5 steps on a short axis, decades on a
    long one, the other ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    span = math.log10(hi / lo) if hi > lo else 1.0
    ax.set_xlim(lo / 10 ** (0.06 * span + 0.05), hi * 10 ** (0.30 * span + 0.1))
    decades = math.log10(ax.get_xlim()[1] / ax.get_xlim()[0])
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _draw_panel(ax, points: list[tuple[float, float, SotaRow]], xlabel: str, log_x: bool, colors: dict[str, str],
                connect: bool = True, best_so_far: bool = False, right_pad: float = 0.30):
    """Draw one accuracy-vs-cost panel: one line per model family, YOLO highlighted, and the front (the best
    accuracy at or below each cost: the Pareto front; with ``best_so_far``, on a date axis, drawn on to the last
    date, since the best stays the best until beaten).

    Returns the labels to place with :func:`_place_labels` once the figure layout is final.
    """
    families: dict[str, list[tuple[float, float, SotaRow]]] = defaultdict(list)
    for p in points:
        families[p[2].family].append(p)
    labels = []
    for fam, pts in sorted(families.items(), key=lambda kv: kv[0].lower()):
        pts.sort(key=lambda p: p[0])
        is_yolo = pts[0][2].is_yolo
        color = colors.get(fam, "#7f7f7f")
        marker, size, lw = ("o", 34, 1.8) if is_yolo else ("s", 20, 1.0)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        if connect and len(pts) > 1:
            ax.plot(xs, ys, "-", color=color, lw=lw, alpha=0.8, zorder=2)
        ax.scatter(xs, ys, s=size, marker=marker, color=color, edgecolors="black" if is_yolo else "none",
                   linewidths=0.5, zorder=3)
        # label the family once, at its most accurate point; a single point gets its full model name
        top = max(pts, key=lambda p: p[1])
        labels.append((top[0], top[1], fam if len(pts) > 1 else top[2].model, color, is_yolo))
    # x limits with room on the right for the labels
    lo, hi = min(p[0] for p in points), max(p[0] for p in points)
    if log_x:
        _log_axis(ax, lo, hi)
    else:
        span = (hi - lo) or max(hi, 1.0)
        ax.set_xlim(max(0.0, lo - 0.06 * span) if lo >= 0 else lo - 0.06 * span, hi + right_pad * span)
    front = pareto_front([(p[0], p[1]) for p in points])
    if best_so_far and front[-1][0] < hi:
        front.append((hi, front[-1][1]))
    if len(front) > 1:
        ax.plot([p[0] for p in front], [p[1] for p in front], drawstyle="steps-post", ls="--", color="black",
                lw=0.9, alpha=0.7, zorder=1)
    ax.margins(y=0.06)
    ax.set_xlabel(xlabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.12)
    return labels


def _draw_ours(ax, ours: list[tuple[float, float, OursRow]]) -> list:
    """Mark our own measurements; returns their labels for :func:`_place_labels`."""
    labels = []
    for x, y, o in ours:
        ax.scatter([x], [y], s=70, marker="X", color="black", zorder=6)
        label = (x, y, f"ours: {o.model} ({o.hardware or 'machine not given'})", "black", False)
        if label not in labels:  # one label for a model's rows of several precisions at one point
            labels.append(label)
    return labels


def _legend(ax, with_ours: bool):
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", ls="-", color=_YOLO_COLORS[0], markeredgecolor="black", label="YOLO family"),
        Line2D([], [], marker="s", ls="-", color=_OTHER_COLORS[0], label="other models"),
        Line2D([], [], ls="--", color="black", label="Pareto front"),
    ]
    if with_ours:
        handles.append(Line2D([], [], marker="X", ls="", color="black", label="ours (measured here)"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.85)


def _save(fig, out_dir: Path, stem: str, formats: list[str]) -> list[Path]:
    """Write the figure atomically (temporary file in the same folder, then rename)."""
    written = []
    for fmt in formats:
        final = out_dir / f"{stem}.{fmt}"
        with atomic_path(final) as tmp:
            # no creation date in the metadata, so regenerating unchanged figures changes no bytes
            metadata = {"Date": None} if fmt in ("svg", "pdf") else {"Software": None}
            fig.savefig(tmp, format=fmt, dpi=160, metadata=metadata)
        written.append(final)
    return written


def plot_task(rows: list[SotaRow], task: str, out_dir: str | os.PathLike, ours: list[OursRow] | None = None,
              formats: tuple[str, ...] = ("png", "svg"), source: str = PACKAGED_NAME) -> list[Path]:
    """Accuracy vs parameters and accuracy vs latency for one task; returns the written files.

    Three panels share the accuracy axis, which holds one protocol (the task's most common
    dataset/split/metric): accuracy vs parameters, vs latency, and vs publication date. The latency
    panel holds one comparable (hardware, precision, batch) group, the largest. Everything left off
    a panel is listed in the figure text, so nothing disappears silently. ``source`` names the table in the
    title.
    """
    import matplotlib

    # stable SVG ids between runs, text kept as text (searchable, smaller files), and matplotlib's own font size
    # whatever another library set globally (yolov5 sets 11), so the layout and the committed figures are stable
    with matplotlib.rc_context({"svg.hashsalt": "yololab-sota", "svg.fonttype": "none", "font.size": 10}):
        return _plot_task(rows, task, Path(out_dir), ours, formats, source)


def _plot_task(rows, task, out_dir: Path, ours, formats, source: str) -> list[Path]:
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    task_rows = [r for r in rows if r.task == task]
    if not task_rows:
        raise DataError(f"no rows for task {task!r} in the table")
    ours = [o for o in (ours or []) if o.task == task]

    protocol, _ = Counter(r.protocol for r in task_rows).most_common(1)[0]
    on_axis = [r for r in task_rows if r.protocol == protocol]
    off_protocol = [r for r in task_rows if r.protocol != protocol]
    dataset, split, metric = protocol
    ylabel = f"{dataset} {split} {METRIC_LABELS[metric]}"
    colors = family_colors(on_axis)

    fig = Figure(figsize=(20, 7.6))
    ax_p, ax_s, ax_t = fig.subplots(1, 3)
    fig.suptitle(f"State of the art, {task}: {ylabel} (every point is a sourced row of {source})", fontsize=12)
    notes: list[str] = []
    pending = []  # (axes, labels, markers) placed after the layout is fixed

    # --- accuracy vs parameters
    pts = [(r.params_M, r.value, r) for r in on_axis if r.params_M is not None]
    ours_p = [(o.params_M, o.value, o) for o in ours if o.params_M is not None]
    if pts:
        labels = _draw_panel(ax_p, pts, "parameters (millions, log scale)", log_x=True, colors=colors)
        pending.append((ax_p, labels + _draw_ours(ax_p, ours_p), pts + ours_p))
        _legend(ax_p, bool(ours_p))
    else:
        ax_p.text(0.5, 0.5, "no row gives a parameter count", ha="center", transform=ax_p.transAxes)
    ax_p.set_ylabel(ylabel)
    ax_p.set_title(f"accuracy vs parameters ({len(pts)} rows)", fontsize=10)
    no_params = [r for r in on_axis if r.params_M is None]
    if no_params:
        notes.append(f"No parameter count in the source ({len(no_params)}): {_names(no_params, 8)}.")

    # --- accuracy vs latency, one comparable group only
    key, groups = choose_speed_group(on_axis)
    if key is not None:
        chosen = [r for r in groups[key] if r.latency_ms is not None]
        spts = [(r.latency_ms, r.value, r) for r in chosen]
        lat = [p[0] for p in spts]
        labels = _draw_panel(ax_s, spts, f"latency per image (ms)\n{key[0]}, {key[1]}, {key[2]}",
                             log_x=max(lat) / min(lat) > 20, colors=colors)
        ours_s = [(o.latency_ms, o.value, o) for o in ours if o.speed_group == key and o.latency_ms is not None]
        pending.append((ax_s, labels + _draw_ours(ax_s, ours_s), spts + ours_s))
        _legend(ax_s, bool(ours_s))
        ax_s.set_title(f"accuracy vs latency ({len(spts)} comparable rows)", fontsize=10)
        if any(r.speed_unit == "FPS" for r in chosen):
            notes.append("Latency of rows given in FPS at batch 1 is drawn as 1000/FPS.")
        for other, rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            if other != key:
                notes.append(f"Left off the speed axis, not comparable ({', '.join(other)}; {len(rs)}): {_names(rs)}.")
        unconverted = [r for r in groups[key] if r.latency_ms is None]
        if unconverted:
            notes.append(f"Left off the speed axis, throughput not latency ({len(unconverted)}): {_names(unconverted)}.")
        for o in ours:
            if o.speed is not None and (o.speed_group != key or o.latency_ms is None):
                notes.append(f"Ours left off the speed axis, not comparable: {o.model} {o.speed:g} {o.speed_unit} "
                             f"({', '.join(o.speed_group or ())}).")
    else:
        ax_s.text(0.5, 0.5, "no row gives a speed", ha="center", transform=ax_s.transAxes)
        ax_s.set_title("accuracy vs latency", fontsize=10)
    ax_s.set_ylabel(ylabel)

    # --- accuracy vs publication date: every row has one, so the leaders without size or speed show here
    tpts = [(r.year, r.value, r) for r in on_axis]
    pending.append((ax_t, _draw_panel(ax_t, tpts, "publication date of the source", log_x=False, colors=colors,
                                      connect=False, best_so_far=True, right_pad=0.42), tpts))
    ax_t.set_ylabel(ylabel)
    ax_t.set_title(f"accuracy over time ({len(tpts)} rows; dashed: best so far)", fontsize=10)
    no_speed = [r for r in on_axis if r.speed is None]
    if no_speed:
        notes.append(f"No speed in the source ({len(no_speed)}): {_names(no_speed, 6)}.")
    for proto in sorted({r.protocol for r in off_protocol}):
        rs = [r for r in off_protocol if r.protocol == proto]
        notes.append(f"Left off both axes, other protocol ({' / '.join(proto)}; {len(rs)}): {_names(rs, 6)}.")

    # the left-off list under the axes, as readable as the axis labels; the figure grows to hold it
    wrapped = []
    for n in notes:
        wrapped.extend(textwrap.wrap(n, 230, subsequent_indent="    "))
    top_in, axes_in, below_in = 0.8, 5.4, 0.9  # titles, axes, tick labels and the two-line x label
    notes_in = 0.25 + len(wrapped) * NOTE_FONT * 1.35 / 72
    height = top_in + axes_in + below_in + notes_in
    fig.set_size_inches(20, height)
    fig.subplots_adjust(left=0.04, right=0.995, top=1 - top_in / height, bottom=(below_in + notes_in) / height,
                        wspace=0.14)
    fig.text(0.01, (notes_in - 0.1) / height, "\n".join(wrapped), fontsize=NOTE_FONT, va="top", ha="left",
             linespacing=1.35)
    for ax, labels, points in pending:
        _place_labels(ax, labels, [(p[0], p[1]) for p in points])
    return _save(fig, out_dir, f"sota_{task}", list(formats))


def plot_sota(rows: list[SotaRow], out_dir: str | os.PathLike, ours: list[OursRow] | None = None,
              tasks: tuple[str, ...] | None = None, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Plot every task that has rows (or ``tasks``); returns the written files."""
    present = [t for t in METRICS if any(r.task == t for r in rows)]
    written = []
    for task in tasks or present:
        written += plot_task(rows, task, out_dir, ours=ours, formats=formats)
    return written


# ----------------------------------------------------------------------------------------------
# the zoo's accuracy


ZOO_PROTOCOL = ("COCO", "val2017", "box_AP")  # the protocol of `yololab models compare`'s mAP column


def zoo_accuracy(rows: list[SotaRow], names: list[str], path: str | os.PathLike = PACKAGED_TABLE) -> dict[str, SotaRow]:
    """The published COCO val2017 box mAP50-95 at 640 of every model in ``names`` (zoo names such as ``yolov8n``):
    the one row whose model is that name (case aside), on that protocol, with "640" in its notes.

    ``yololab models compare`` reads the mAP column from here, so a figure has one home: this table. A model
    without exactly one such row is a DataError naming it and ``path``.
    """
    found = {}
    for name in names:
        matches = [r for r in rows if r.model.lower() == name.lower() and r.protocol == ZOO_PROTOCOL
                   and re.search(r"\b640\b", r.notes)]
        if len(matches) != 1:
            where = ", ".join(f"line {r.line}" for r in matches)
            raise DataError(f"{path}: {len(matches)} rows ({where or 'none'}) give {name}'s COCO val2017 box_AP "
                            f"at 640 (model '{name}', 640 in the notes); expected exactly one")
        found[name] = matches[0]
    return found
