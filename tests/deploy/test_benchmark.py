"""yololab benchmark: one row per model and mode with its latency split, throughput, cost and mAP; the plot's
Pareto front; rows that `yololab sota plot --ours` reads."""

from __future__ import annotations

import csv

from helpers import REPO
from yololab import cli
from yololab.data.synthetic import synth_shapes
from yololab.deploy.benchmark import pareto
from yololab.study.sota import load_ours


def test_pareto_front_by_hand():
    # (latency, accuracy): 0 fast and weak, 1 slower and better, 2 beaten by 1 on both, 3 slowest and best
    assert pareto([(10, 0.2), (20, 0.5), (25, 0.4), (40, 0.6)]) == [0, 1, 3]


def test_benchmark_command_on_the_trained_fixture(tmp_path, capsys):
    data = synth_shapes(tmp_path / "shapes", train=1, val=4, imgsz=256, seed=7, progress=False)
    out = tmp_path / "bench"
    argv = ["benchmark", "--models", "yolov8n", "--weights", str(REPO / "tests/fixtures/yolov8n-shapes.pt"),
            "--data", str(data), "--imgsz", "256", "--modes", "fp32", "--runs", "1", "--warmup", "1",
            "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    rows = list(csv.DictReader((out / "benchmark.csv").open()))
    assert [(r["model"], r["mode"]) for r in rows] == [("yolov8n", "fp32")]
    r = rows[0]
    assert float(r["params_M"]) == 3.012 and float(r["gflops"]) > 0  # yolov8n with 7 classes, unfused
    assert abs(float(r["total_ms"]) - sum(float(r[k]) for k in ("pre_ms", "infer_ms", "post_ms"))) < 1e-6
    assert float(r["throughput_b8"]) > 0 and 0.1 < float(r["map50_95"]) <= float(r["map50"]) <= 1
    (ours,) = load_ours(out / "ours.csv")
    assert ours.model == "yolov8n" and ours.value == round(float(r["map50_95"]) * 100, 2) and ours.hardware
    assert (out / "latency_vs_map.png").stat().st_size > 1000
    assert cli.main(argv) == 2 and "pass --overwrite" in capsys.readouterr().err


def test_random_init_rows_carry_the_published_map_into_ours_csv(tmp_path):
    """Without weights the mAP column stays empty (and benchmark.md says why); ours.csv pairs the latency measured
    here with the architecture's published COCO mAP, from the packaged SOTA table as `yololab benchmark` reads it."""
    from yololab.deploy.benchmark import Row, machine, write_outputs
    from yololab.study.sota import load_sota_table, packaged_table, zoo_accuracy

    published = {m: (r.value, f"line {r.line}") for m, r in
                 zoo_accuracy(load_sota_table(packaged_table()), ["yolov8n", "yolo11n"]).items()}
    rows = [Row("yolov8n", "fp32", 640, 3.157, 8.9, 1.0, 40.0, 2.0, 43.0, 30.0, None, None),
            Row("yolo11n", "fp32", 640, 2.624, 6.6, 1.0, 35.0, 2.0, 38.0, 33.0, None, None),
            Row("yolov5n", "fp32", 640, 1.9, 4.5, 1.0, 30.0, 2.0, 33.0, 40.0, None, None)]  # not in `published`
    write_outputs(rows, tmp_path, "title", published)
    assert "mAP is empty for random-init weights" in (tmp_path / "benchmark.md").read_text()
    assert [r["map50_95"] for r in csv.DictReader((tmp_path / "benchmark.csv").open())] == ["", "", ""]
    ours = load_ours(tmp_path / "ours.csv")
    assert [(o.model, o.value, o.latency_ms) for o in ours] == [("yolov8n", 37.3, 43.0), ("yolo11n", 39.5, 38.0)]
    assert all(o.hardware == machine() and "published COCO mAP50-95" in o.note for o in ours)
