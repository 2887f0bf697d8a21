"""`yololab ablate`: the config checks, the spread rule, and a whole tiny ablation from the CLI."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import yaml

from yololab import cli
from yololab.errors import ConfigError
from yololab.study.ablate import exceeds_spread, load_config, spread

TINY = {"description": "tiny", "shapes": {"train": 16, "val": 8}, "imgsz": 64, "epochs": 1, "seeds": [0, 1],
        "train": {"batch": 8, "nbs": 8, "close_mosaic": 0, "val_interval": 0},
        "variants": [{"name": "anchor-free"}, {"name": "anchor-based", "model": {"head": "ab"}}]}


def write_config(folder: Path, config: dict, name: str = "tiny.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_exceeds_spread_is_the_mean_difference_against_the_larger_range():
    assert spread([0.30, 0.34, 0.31]) == pytest.approx(0.04)
    # means 0.32 and 0.40: difference 0.08; ranges 0.04 and 0.02
    assert exceeds_spread([0.39, 0.41], [0.30, 0.34])
    assert exceeds_spread([0.30, 0.34], [0.39, 0.41])  # symmetric
    # difference 0.08 against a range of 0.10 in the variant: not beyond the seed noise
    assert not exceeds_spread([0.35, 0.45], [0.30, 0.34])
    # equal to the spread is not beyond it
    assert not exceeds_spread([0.5, 0.5], [0.4, 0.5]) and exceeds_spread([0.5, 0.5], [0.4, 0.4])


def test_configs_in_the_repository_load():
    for path in sorted((Path(__file__).resolve().parents[2] / "configs" / "ablations").glob("*.yaml")):
        cfg = load_config(path)
        assert len(cfg.seeds) >= 2 and len(cfg.variants) >= 2, path
        assert cfg.variants[0].model_name == "ablate-c2f-sppf-af"  # every baseline is yolov8n


@pytest.mark.parametrize("change, message", [
    ({"epoch": 3}, "unknown key 'epoch'; did you mean 'epochs'?"),
    ({"variants": [{"name": "a"}, {"name": "b", "modle": {}}]}, "unknown key 'variants[1].modle'; did you mean 'model'?"),
    ({"variants": [{"name": "a"}, {"name": "b", "model": {"neck": "fpn"}}]}, "unknown key 'variants[1].model.neck'; expected one of block, pool, head"),
    ({"variants": [{"name": "a"}, {"name": "b", "model": {"block": "c4"}}]},
     "variants[1].model.block='c4': expected one of c3, c2f, c3k2"),
    ({"train": {"lr": 0.1}}, "unknown key 'train.lr'; did you mean"),
    ({"train": {"epochs": 3}}, "key 'train.epochs' is not a training setting here: epochs and seeds are top-level"),
    ({"train": {"mosaic": "lots"}}, "train.mosaic='lots': expected a number"),
    ({"train": {"batch": 0}}, "train: batch=0: expected a positive integer"),
    ({"seeds": [0]}, "seeds=[0]: expected a list of at least 2 different integers"),
    ({"imgsz": 100}, "imgsz=100: expected a multiple of 32"),
    ({"variants": [{"name": "only"}]}, "variants: expected a list of at least 2 variants"),
    ({"variants": [{"name": "a"}, {"name": "a"}]}, "variants[1].name='a': two variants have this name"),
])
def test_bad_configs_name_the_file_and_key(tmp_path, change, message):
    path = write_config(tmp_path, {**TINY, **change})
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)


def test_a_tiny_ablation_from_the_cli(tmp_path, capsys):
    """Two variants x two seeds, trained, validated and timed; the table's means and spreads are the CSV's; a
    second call reuses every run; best.pt loads back through build_model."""
    config = write_config(tmp_path, TINY)
    argv = ["ablate", "--config", str(config), "--project", str(tmp_path / "abl"), "--quiet", "--latency-runs", "2"]
    assert cli.main(argv) == 0
    out = tmp_path / "abl" / "tiny"
    assert {p.name for p in out.iterdir()} == {"results.csv", "table.md", "map_vs_latency.png", "report.md"}
    assert (out / "map_vs_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["variant"], r["seed"], r["model"]) for r in rows] == [
        ("anchor-free", "0", "ablate-c2f-sppf-af"), ("anchor-free", "1", "ablate-c2f-sppf-af"),
        ("anchor-based", "0", "ablate-c2f-sppf-ab"), ("anchor-based", "1", "ablate-c2f-sppf-ab")]
    table = (out / "table.md").read_text().splitlines()
    assert len(table) == 4
    for line, variant in zip(table[2:], ("anchor-free", "anchor-based")):
        vals = [float(r["mAP50-95"]) for r in rows if r["variant"] == variant]
        lat = [float(r["latency_ms"]) for r in rows if r["variant"] == variant]
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == variant and cells[2] == "2"
        assert cells[3] == f"{statistics.fmean(vals):.4f} ({max(vals) - min(vals):.4f})"
        assert cells[8] == f"{statistics.fmean(lat):.2f} ({max(lat) - min(lat):.2f})"
    base = [float(r["mAP50-95"]) for r in rows[:2]]
    ab = [float(r["mAP50-95"]) for r in rows[2:]]
    cells = [c.strip() for c in table[3].strip("|").split("|")]
    assert cells[1] == "head ab" and cells[5] == f"{statistics.fmean(ab) - statistics.fmean(base):+.4f}"
    assert cells[6] == ("**yes**" if exceeds_spread(ab, base) else "no")
    assert "tiny.yaml" in (out / "report.md").read_text()

    # the anchor-based runs used auto-anchor and yolov5's loss; their checkpoints rebuild by name
    from yololab.models import build_model

    run = Path(rows[2]["run"])
    assert "obj_loss" in (run / "results.csv").read_text().splitlines()[0]
    nc = len(yaml.safe_load((tmp_path / "abl" / "shapes-16-8-64" / "data.yaml").read_text())["names"])
    assert build_model("ablate-c2f-sppf-ab", num_classes=nc, weights=run / "weights" / "best.pt").meta.anchor_based
    assert json.loads((run / "ablation.json").read_text())["row"]["model"] == "ablate-c2f-sppf-ab"

    capsys.readouterr()
    assert cli.main(argv) == 2  # the ablation folder exists
    assert "pass --exist-ok" in capsys.readouterr().err
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "abl" / "trained").rglob("best.pt")}
    assert len(mtimes) == 4 and cli.main([*argv, "--exist-ok"]) == 0
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes  # nothing trained again
    assert "4 of 4 runs reused" in (out / "report.md").read_text()
    again = list(csv.DictReader((out / "results.csv").open()))  # the same results; the latency timed anew
    assert [{k: v for k, v in r.items() if k != "latency_ms"} for r in again] == \
        [{k: v for k, v in r.items() if k != "latency_ms"} for r in rows]
