"""The sourced SOTA table: the shipped CSV is valid, every validation rule fires with file/line/column,
and the plots (with our own points overlaid) are written from the CLI."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from yololab.cli import main
from yololab.errors import YololabError
from yololab.study import sota

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "src" / "yololab" / "study" / "sota_table.csv"


def read_table() -> tuple[list[str], list[dict]]:
    with open(TABLE, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def write_table(path: Path, header: list[str], rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def first_row_with_speed(rows: list[dict]) -> int:
    """Index (0-based, after the header) of the first row that gives a speed."""
    return next(i for i, r in enumerate(rows) if r["speed"])


# ---------------------------------------------------------------------------------------------- shipped table


def test_shipped_table_is_valid_and_covers_every_task():
    rows = sota.load_sota_table(TABLE)
    counts = Counter(r.task for r in rows)
    for task in sota.METRICS:
        assert counts[task] >= 10, f"{task} has only {counts[task]} rows"
    models = {r.model for r in rows}
    # the YOLO line this project studies, and the DETR-style real-time detectors it is compared with
    for name in ("YOLOv3-320", "YOLOv5s", "YOLOv8s", "YOLO11s", "YOLO26s", "RT-DETR-R50", "D-FINE-L"):
        assert name in models
    # the access dates the summary states: 2026-11-25, and 2026-11-29 for the rows added for the model zoo
    # (YOLOv3, YOLOv3-tiny) and those rechecked in review (YOLOv10-B, YOLO11n, D-FINE Objects365, DEIM, -cls)
    assert {r.accessed for r in rows} == {"2026-11-25", "2026-11-29"}
    # both accuracy protocols for COCO detection appear, and they are kept apart
    assert {r.split for r in rows if r.task == "detection"} >= {"val2017", "test-dev"}


def test_shipped_table_speed_fields_are_consistent():
    rows = sota.load_sota_table(TABLE)
    with_speed = [r for r in rows if r.speed is not None]
    assert with_speed and all(r.hardware and r.speed_unit in sota.SPEED_UNITS for r in with_speed)
    assert all(not (r.hardware or r.speed_unit or r.batch) for r in rows if r.speed is None)


def test_validate_cli_prints_a_summary_per_task(capsys):
    assert main(["sota", "validate", "--table", str(TABLE)]) == 0
    out = capsys.readouterr().out
    for task in sota.METRICS:
        assert f"\n{task}: " in out
    assert "COCO / test-dev / box_AP" in out and "[line " in out


# ---------------------------------------------------------------------------------------------- broken copies

FUTURE = (dt.date.today() + dt.timedelta(days=400)).strftime("%Y-%m")

BROKEN = [
    # (column, new value, expected words in the message)
    ("source_url", "", "missing source"),
    ("source_title", "", "missing source"),
    ("task", "pose", "unknown task 'pose'"),
    ("metric", "mAP50", "unknown metric 'mAP50'"),
    ("value", "fifty", "'fifty' is not a number"),
    ("value", "150", "outside [0, 100]"),
    ("date", FUTURE, "lies in the future"),
    ("date", "May 2024", "is not a date of the form"),
    ("accessed", "2026-11", "is not a date of the form YYYY-MM-DD"),
    ("source_url", "http://docs.ultralytics.com/models/yolo11/", "not an https URL"),
    ("source_url", "https://github.com/ultralytics/ultralytics", "does not point at a file"),
    ("source_url", "https://arxiv.org/pdf/2304.08069", "not an arXiv abstract"),
    ("source_url", "https://paperswithcode.com/sota/object-detection-on-coco", "leaderboard aggregator"),
    ("source_url", "https://github.com/a/b/blob/main/README.md extra", "white space"),
    ("speed_unit", "", "a speed needs one of ms, FPS"),
    ("speed_unit", "img/s", "'img/s' is not a speed unit"),
    ("hardware", "", "a speed needs the hardware"),
    ("batch", "one", "not a positive whole number"),
    ("params_M", "-3", "must be positive"),
    ("tta", "maybe", "'maybe' is not one of yes, no, unstated"),
    ("extra_data", "", "is empty"),
]


@pytest.mark.parametrize("column,value,words", BROKEN, ids=[f"{c}={v!r}" for c, v, _ in BROKEN])
def test_each_rule_names_file_line_and_column(tmp_path, column, value, words):
    header, rows = read_table()
    i = first_row_with_speed(rows)  # a full row: speed, hardware, batch all filled
    rows[i][column] = value
    path = write_table(tmp_path / "broken.csv", header, rows)
    with pytest.raises(YololabError) as err:
        sota.load_sota_table(path)
    msg = str(err.value)
    assert str(path) in msg and f"line {i + 2}," in msg and f"column '{column}'" in msg
    assert words in msg


def test_speed_fields_without_a_speed_are_refused(tmp_path):
    header, rows = read_table()
    i = first_row_with_speed(rows)
    rows[i]["speed"] = ""
    path = write_table(tmp_path / "nospeed.csv", header, rows)
    with pytest.raises(YololabError, match=r"line \d+, column 'speed_unit': 'ms' is given without a speed"):
        sota.load_sota_table(path)


def test_future_is_relative_to_today(tmp_path):
    # the shipped table is valid today, but not on a day before its sources were published
    with pytest.raises(YololabError, match="lies in the future"):
        sota.load_sota_table(TABLE, today=dt.date(2020, 1, 1))


def test_date_after_access_date_is_refused(tmp_path):
    header, rows = read_table()
    rows[0]["date"], rows[0]["accessed"] = "2025-06-02", "2025-06-01"
    path = write_table(tmp_path / "order.csv", header, rows)
    with pytest.raises(YololabError, match=r"line 2, column 'date': 2025-06-02 is after the access date"):
        sota.load_sota_table(path)


def test_header_and_field_count_errors(tmp_path):
    header, rows = read_table()
    bad = ["tsk" if h == "task" else h for h in header]
    path = write_table(tmp_path / "header.csv", bad, [{("tsk" if k == "task" else k): v for k, v in r.items()} for r in rows])
    with pytest.raises(YololabError, match=r"line 1, column 1: header 'tsk' where 'task' was expected"):
        sota.load_sota_table(path)

    text = TABLE.read_text(encoding="utf-8").splitlines()
    text[3] = text[3] + ",surplus"
    path = tmp_path / "fields.csv"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(YololabError, match=r"line 4: 21 fields where the header has 20"):
        sota.load_sota_table(path)

    with pytest.raises(YololabError, match="no such file"):
        sota.load_sota_table(tmp_path / "missing.csv")


def test_notes_column_is_optional(tmp_path):
    header, rows = read_table()
    path = write_table(tmp_path / "nonotes.csv", [h for h in header if h != "notes"], rows)
    loaded = sota.load_sota_table(path)
    assert len(loaded) == len(rows) and all(r.notes == "" for r in loaded)


def test_cli_reads_the_packaged_table_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sota", "validate"]) == 0
    assert capsys.readouterr().out.startswith(f"{sota.packaged_table()}: ")
    assert sota.packaged_table().resolve() == TABLE.resolve()
    assert main(["sota", "plot", "--tasks", "video", "--format", "png"]) == 0  # default output under runs/
    assert [p.name for p in (tmp_path / "runs" / "sota").iterdir()] == ["sota_video.png"]


def test_validate_cli_reports_a_broken_file_without_traceback(tmp_path, capsys):
    header, rows = read_table()
    rows[5]["value"] = "n/a"
    path = write_table(tmp_path / "broken.csv", header, rows)
    assert main(["sota", "validate", "--table", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 7, column 'value'" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------- helpers


def test_pareto_front_keeps_only_undominated_points():
    pts = [(1, 40), (2, 39), (2, 45), (3, 44), (5, 50), (4, 50), (6, 49)]
    assert sota.pareto_front(pts) == [(1, 40), (2, 45), (4, 50)]


@pytest.mark.parametrize("model,family", [
    ("YOLO11x", "YOLO11"), ("YOLO11x-seg", "YOLO11-seg"), ("YOLOv8n-cls", "YOLOv8-cls"), ("YOLOv5x6", "YOLOv5"),
    ("YOLOv10-N", "YOLOv10"), ("D-FINE-L (Objects365)", "D-FINE (Objects365)"), ("RT-DETR-R101", "RT-DETR"),
    ("RT-DETRv2-M*", "RT-DETRv2"), ("ConvNeXt V2-H (ImageNet-22K)", "ConvNeXt V2 (ImageNet-22K)"), ("X3D-XS", "X3D"),
])
def test_model_family(model, family):
    assert sota.model_family(model) == family


def make_row(**kw) -> sota.SotaRow:
    base = dict(line=2, task="detection", dataset="COCO", split="val2017", metric="box_AP", value=50.0, model="M",
                params_M=None, gflops=None, speed=None, speed_unit="", hardware="", batch=None, precision="",
                extra_data="no", tta="no", date="2024-01", source_url="https://arxiv.org/abs/2304.08069",
                source_title="t", accessed="2026-11-25")
    base.update(kw)
    return sota.SotaRow(**base)


def test_latency_and_comparable_groups():
    fps_b1 = make_row(model="A", speed=200.0, speed_unit="FPS", hardware="T4", precision="FP16", batch=1)
    ms_b1 = make_row(model="B", speed=3.0, speed_unit="ms", hardware="T4", precision="FP16", batch=1)
    fps_b32 = make_row(model="C", speed=900.0, speed_unit="FPS", hardware="V100", batch=32)
    other = make_row(model="D", speed=2.0, speed_unit="ms", hardware="T4", precision="FP16")  # batch not stated
    assert fps_b1.latency_ms == pytest.approx(5.0) and ms_b1.latency_ms == 3.0 and fps_b32.latency_ms is None
    key, groups = sota.choose_speed_group([fps_b1, ms_b1, fps_b32, other])
    assert key == ("T4", "FP16", "batch 1") and len(groups) == 3
    assert other.speed_group == ("T4", "FP16", "batch not stated")


# ---------------------------------------------------------------------------------------------- plots


def small_table(tmp_path: Path) -> Path:
    """A dozen real rows: two comparable speed groups and one row of another protocol."""
    header, rows = read_table()
    keep = [r for r in rows if r["model"] in {"YOLO11n", "YOLO11s", "YOLO11m", "D-FINE-S", "D-FINE-M", "YOLOv8n",
                                              "YOLOv8s", "YOLOv10-N", "DEIM-D-FINE-S", "Co-DINO (ViT-L)"}]
    return write_table(tmp_path / "small.csv", header, keep)


def test_plot_writes_png_and_svg_with_ours_and_left_off_list(tmp_path):
    ours_csv = tmp_path / "ours.csv"
    ours_csv.write_text(
        "model,value,params_M,speed,speed_unit,hardware,precision,batch,note\n"
        "yololab yolo11n,39.1,2.6,1.6,ms,NVIDIA T4 TensorRT,FP16,1,same group as the docs\n"
        "yololab yolov8n,37.0,3.2,95.0,ms,2-core CPU,FP32,1,our laptop\n", encoding="utf-8")
    out = tmp_path / "figures"
    code = main(["sota", "plot", "--table", str(small_table(tmp_path)), "--out", str(out), "--ours", str(ours_csv),
                 "--tasks", "detection", "video"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["sota_detection.png", "sota_detection.svg"]  # no temp files
    assert (out / "sota_detection.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (out / "sota_detection.svg").read_text(encoding="utf-8")
    assert "ours: yololab yolo11n (NVIDIA T4 TensorRT)" in svg  # drawn on the params and the speed panel
    assert "Ours left off the speed axis, not comparable: yololab yolov8n 95 ms (2-core CPU, FP32" in svg
    assert "Left off the speed axis, not comparable (NVIDIA A100 TensorRT" in svg
    assert "other protocol (COCO / test-dev / box_AP; 1): Co-DINO (ViT-L)" in svg
    assert "Latency of rows given in FPS at batch 1 is drawn as 1000/FPS." in svg


def test_plot_overwrites_existing_figures_atomically(tmp_path):
    out = tmp_path / "figs"
    out.mkdir()
    (out / "sota_detection.png").write_bytes(b"old")
    rows = sota.load_sota_table(small_table(tmp_path))
    written = sota.plot_task(rows, "detection", out, formats=("png",))
    assert written == [out / "sota_detection.png"]
    assert (out / "sota_detection.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in out.iterdir()] == ["sota_detection.png"]


def test_ours_file_is_validated(tmp_path):
    bad = tmp_path / "ours.csv"
    bad.write_text("model,value,params_M,speed,speed_unit,hardware,precision,batch,note\nx,39,2,5,ms,,,1,\n",
                   encoding="utf-8")
    with pytest.raises(YololabError, match=r"ours.csv: line 2, column 'hardware'"):
        sota.load_ours(bad)
    bad.write_text("model,value\nx,39\n", encoding="utf-8")
    with pytest.raises(YololabError, match="missing column"):
        sota.load_ours(bad)


def test_summary_links_point_at_the_rows_they_name():
    """docs/sota_summary.md cites rows as [model](../src/yololab/study/sota_table.csv#LN): line N holds that model."""
    import re

    summary = (REPO / "docs" / "sota_summary.md").read_text(encoding="utf-8")
    by_line = {r.line: r for r in sota.load_sota_table(TABLE)}
    links = re.findall(r"\[([^\]]+)\]\(\.\./src/yololab/study/sota_table\.csv#L(\d+)\)", summary)
    assert len(links) >= 40
    for text, line in links:
        assert int(line) in by_line, f"link to line {line}, which is not a data row"
        assert by_line[int(line)].model == text, f"line {line} holds {by_line[int(line)].model!r}, not {text!r}"
    for name in ("sota_detection", "sota_segmentation", "sota_classification", "sota_video"):
        assert f"(figures/{name}.png)" in summary and (REPO / "docs" / "figures" / f"{name}.png").is_file()


def test_plot_title_names_the_table_and_overwrite_is_asked(tmp_path, capsys):
    table = small_table(tmp_path)
    out = tmp_path / "figs"
    args = ["sota", "plot", "--table", str(table), "--out", str(out), "--tasks", "detection", "--format", "svg"]
    assert main(args) == 0
    assert f"every point is a sourced row of {table}" in (out / "sota_detection.svg").read_text(encoding="utf-8")
    before = (out / "sota_detection.svg").read_bytes()
    assert main(args) == 2  # the figure exists: replaced only when asked
    assert "sota_detection.svg exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "sota_detection.svg").read_bytes() == before
    assert main(args + ["--overwrite"]) == 0
    rows = sota.load_sota_table(table)
    sota.plot_task(rows, "detection", out, formats=("svg",))  # the shipped table's name, as the package spells it
    assert "sourced row of yololab/study/sota_table.csv" in (out / "sota_detection.svg").read_text(encoding="utf-8")


def _drawn(task: str, out: Path):
    """The figure of ``task`` from the shipped table, drawn (not saved): its axes, with text placed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in sota.load_sota_table(sota.packaged_table()) if r.task == task]
    captured = {}

    def keep(fig, out_dir, stem, formats):
        captured["fig"] = fig
        return []

    import unittest.mock as mock

    with mock.patch.object(sota, "_save", keep):
        sota.plot_task(rows, task, out, formats=())
    fig: Figure = captured["fig"]
    FigureCanvasAgg(fig).draw()
    return fig, rows


@pytest.mark.parametrize("task", ["detection", "video", "classification", "segmentation"])
def test_figures_read_cleanly(task, tmp_path):
    """No model name covers another name or a marker, no two tick labels collide, the best-so-far line reaches
    the last date, and the notes under the figure are as large as the tick labels."""
    from matplotlib.text import Text

    fig, rows = _drawn(task, tmp_path)
    renderer = fig.canvas.get_renderer()
    ax_p, ax_s, ax_t = fig.axes[:3]
    for ax in (ax_p, ax_s, ax_t):
        names = [Text.get_window_extent(t, renderer) for t in ax.texts if t.get_text()]  # the text, not its leader
        for i, a in enumerate(names):
            assert not any(a.overlaps(b) for b in names[i + 1:]), (task, ax.get_title())
        markers = [p for c in ax.collections for p in ax.transData.transform(c.get_offsets())]
        for box in names:
            inside = [(x, y) for x, y in markers if box.x0 + 1 < x < box.x1 - 1 and box.y0 + 1 < y < box.y1 - 1]
            assert not inside, (task, ax.get_title())
        ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text() and t.get_visible()
                 and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
        for i, a in enumerate(ticks):
            assert not any(a.overlaps(b) for b in ticks[i + 1:]), (task, ax.get_title(), "tick labels")
    best = [line for line in ax_t.get_lines() if line.get_linestyle() == "--"][0]
    dates = [r.year for r in rows if r.protocol == Counter(q.protocol for q in rows).most_common(1)[0][0]]
    assert max(best.get_xdata()) == pytest.approx(max(dates))
    notes = [t for t in fig.texts if "source" in t.get_text() and t is not fig._suptitle]
    assert notes and notes[0].get_fontsize() >= ax_p.xaxis.get_ticklabels()[0].get_fontsize() - 1
