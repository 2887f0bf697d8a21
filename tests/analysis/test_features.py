"""yololab features: receptive fields checked by hand, and the pictures written from the CLI on a real photo."""

from __future__ import annotations

import torch
from torch import nn

from helpers import shared_data
from yololab import cli
from yololab.analysis.features import receptive_fields


def test_receptive_field_of_a_small_stack_by_hand():
    """r_out = r_in + (k - 1) * j_in, j_out = j_in * s, layer by layer:
    conv 3x3 s1: r 3, j 1; conv 3x3 s2 (+BN, SiLU): r 5, j 2; maxpool 2 s2: r 7, j 4; conv 5x5 s1: r 23, j 4;
    and a side branch added back (a residual of 1x1 convs) changes nothing."""

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return x + self.conv(x)

    net = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.Conv2d(4, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.SiLU(),
                        nn.MaxPool2d(2, 2), nn.Conv2d(4, 4, 5, 1, 2), Residual())
    fields = receptive_fields(net, {"a": "0", "b": "3", "c": "4", "d": "5", "e": "6"}, 64)
    assert [(f.tap, f.stride, f.size, f.clipped) for f in fields] == [
        ("a", 1, (3, 3), False), ("b", 2, (5, 5), False), ("c", 4, (7, 7), False), ("d", 4, (23, 23), False),
        ("e", 4, (23, 23), False)]
    small = receptive_fields(net, {"d": "5"}, 16)[0]  # 23 px do not fit in 16: reported as clipped
    assert small.clipped and small.size == (16, 16)


def test_features_command_on_a_coco8_photo(tmp_path, capsys):
    photo = sorted(shared_data("coco8", "images", "val").glob("*.jpg"))[0]
    out = tmp_path / "f"
    assert cli.main(["features", "--model", "yolov8n", "--image", str(photo), "--out", str(out),
                     "--imgsz", "128"]) == 0
    stages = sorted(p.stem for p in (out / "stages").glob("*.png"))
    assert "backbone.stage3" in stages and "neck[2]" in stages and len(stages) == 13
    assert (out / "head_levels.png").stat().st_size > 1000 and (out / "receptive_fields.png").is_file()
    rows = (out / "receptive_fields.csv").read_text().splitlines()
    strides = {r.split(",")[0]: int(r.split(",")[1]) for r in rows[1:]}
    assert strides["backbone.stem"] == 2 and strides["neck[0]"] == 8 and strides["neck[2]"] == 32
    sizes = [int(r.split(",")[2]) for r in rows[1:]]
    assert sizes[0] == 3 and sizes == sorted(sizes[:10]) + sizes[10:]  # the backbone's field only grows
    assert cli.main(["features", "--model", "yolov8n", "--image", str(photo), "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
