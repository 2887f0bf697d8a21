"""Darknet: the .cfg interpreter (DarknetNet) and .weights read / write, against yololab's yolov3 models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import randomize_weights, shared_data
from yololab.checkpoint.darknet import (DarknetHeader, darknet_conv_order, load_darknet_weights, read_darknet_file,
                                        save_darknet_weights)
from yololab.checkpoint.load import detect_format
from yololab.errors import ConfigError, WeightsError
from yololab.models import build_model
from yololab.models.darknet_cfg import DarknetMaxPool, DarknetNet, parse_cfg


def _write_cfg(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "net.cfg"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------------------
# .cfg parsing and the network
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,params", [("yolov3", 61_949_149), ("yolov3-tiny", 8_852_366)])
def test_cfg_network_matches_zoo_parameter_count(name, params):
    net = DarknetNet(shared_data("darknet") / f"{name}.cfg")
    ours = build_model(name)
    assert sum(p.numel() for p in net.parameters()) == params
    assert sum(p.numel() for p in ours.parameters()) == params
    assert [net.layers[i].stride for i in net.yolo_layers] == ours.meta.strides


def test_darknet53_classifier_cfg():
    net = DarknetNet(shared_data("darknet") / "darknet53.cfg").eval()
    assert sum(p.numel() for p in net.parameters()) == 41_609_928
    with torch.no_grad():
        probs = net(torch.rand(1, 3, 64, 64))
    assert probs.shape == (1, 1000)
    assert torch.allclose(probs.sum(1), torch.ones(1))


def test_tiny_cfg_same_outputs_as_zoo_through_weights_file(tmp_path):
    """yololab yolov3-tiny -> .weights -> DarknetNet(yolov3-tiny.cfg): the same detections."""
    ours = randomize_weights(build_model("yolov3-tiny")).eval()
    path = save_darknet_weights(ours, tmp_path / "tiny.weights")
    assert detect_format(path) == "darknet"
    net = DarknetNet(shared_data("darknet") / "yolov3-tiny.cfg").eval()
    load_darknet_weights(net, path)
    x = torch.rand(2, 3, 96, 160) * 2 - 1  # negative inputs too: the stride-1 pool's -inf padding shows
    with torch.no_grad():
        a, b = ours(x), net(x)
    assert a.shape == b.shape == (2, 3 * (6 * 10 + 3 * 5), 85)
    assert torch.isfinite(a).all()
    assert (a - b).abs().max() <= 1e-4
    # and the raw training-mode maps, level by level
    ours.train(), net.train()
    for p, q in zip(ours(x), net(x)):
        assert (p - q).abs().max() <= 1e-4


@pytest.mark.slow
def test_yolov3_cfg_same_outputs_as_zoo():
    """Full YOLOv3: copy the weights conv by conv in Darknet order (the .weights mapping) and compare."""
    ours = randomize_weights(build_model("yolov3")).eval()
    net = DarknetNet(shared_data("darknet") / "yolov3.cfg").eval()
    pairs = list(zip(darknet_conv_order(ours), darknet_conv_order(net), strict=True))
    assert len(pairs) == 75
    with torch.no_grad():
        for a, b in pairs:
            for (na, ta), (nb, tb) in zip(a.tensors(), b.tensors(), strict=True):
                assert na == nb and ta.shape == tb.shape, (a.name, b.name)
                tb.copy_(ta)
        x = torch.rand(1, 3, 64, 96)
        out_ours, out_net = ours(x), net(x)
    assert out_ours.shape == out_net.shape == (1, 3 * (8 * 12 + 4 * 6 + 2 * 3), 85)
    assert (out_ours - out_net).abs().max() <= 1e-4


def test_darknet_maxpool_padding_rules():
    x = -torch.arange(1.0, 10.0).view(1, 1, 3, 3)  # all negative: zero padding would show up as 0
    same = DarknetMaxPool(2, 1, 1)(x)  # tiny's size=2 stride=1: pads bottom/right with -inf
    assert same.shape == x.shape
    assert same[0, 0].tolist() == [[-1, -2, -3], [-4, -5, -6], [-7, -8, -9]]
    half = DarknetMaxPool(2, 2, 1)(x)  # odd size: Darknet rounds up (3 -> 2)
    assert half[0, 0].tolist() == [[-1, -3], [-7, -9]]


def test_cfg_errors_name_file_section_and_line(tmp_path):
    net = "[net]\nwidth=32\nheight=32\nchannels=3\n"
    conv = "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
    cases = [
        (net + conv + "[crop]\nsize=2\n", r"net.cfg:12: unsupported section \[crop\]"),
        (net + conv.replace("pad=1", "dilation=2"), r"net.cfg:10: unsupported key 'dilation' in \[convolutional\] "
                                                    r"\(section at line 5\)"),
        (net + conv.replace("filters=8", "filters=eight"), r"net.cfg:7: \[convolutional\].*'filters' must be an "
                                                           r"integer, found 'eight'"),
        (net + conv + "[route]\nlayers=-3\n", r"net.cfg:13: \[route\].*refers to layer -2"),
        (net + conv + "[shortcut]\nfrom=-1\nactivation=leaky\n", r"net.cfg:14: .*only activation=linear"),
        (net + conv.replace("leaky", "mish"), r"net.cfg:11: .*unsupported activation 'mish'"),
        (net + conv + "[yolo]\nmask=0\nanchors=10,13\nclasses=80\nnum=1\n", r"net.cfg:12: \[yolo\].*8 filters; "
                                                                             r"1 anchors x \(5 \+ 80 classes\)"),
        (conv, r"net.cfg: a Darknet cfg starts with a \[net\] section"),
        (net + "filters 8\n", r"net.cfg:5: expected 'key=value'"),
    ]
    for text, message in cases:
        with pytest.raises(ConfigError, match=message):
            DarknetNet(_write_cfg(tmp_path, text))


def test_cfg_keeps_line_numbers_and_class_override(tmp_path):
    sections = parse_cfg(shared_data("darknet") / "yolov3-tiny.cfg")
    assert sections[0].type == "net" and sections[1].type == "convolutional"
    assert [s.type for s in sections].count("yolo") == 2
    net = DarknetNet(shared_data("darknet") / "yolov3-tiny.cfg", num_classes=3).eval()
    assert net.num_classes == 3
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in build_model("yolov3-tiny", 3).parameters())
    with torch.no_grad():
        assert net(torch.rand(1, 3, 64, 64)).shape == (1, 3 * (4 * 4 + 2 * 2), 8)


# ---------------------------------------------------------------------------------------------------------
# .weights read / write
# ---------------------------------------------------------------------------------------------------------

def test_weights_round_trip_into_zoo_model(tmp_path):
    src = randomize_weights(build_model("yolov3-tiny", num_classes=2))
    path = save_darknet_weights(src, tmp_path / "tiny.weights", DarknetHeader(0, 2, 5, 12_345_678_901))
    # header + every parameter and BN statistic as float32
    n = sum(t.numel() for k, t in src.state_dict().items() if not k.endswith(("num_batches_tracked", "anchors")))
    assert path.stat().st_size == 20 + 4 * n
    dst = build_model("yolov3-tiny", num_classes=2)
    header = load_darknet_weights(dst, path)
    assert header == DarknetHeader(0, 2, 5, 12_345_678_901)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    # read -> write gives back identical bytes
    again = save_darknet_weights(dst, tmp_path / "again.weights", header)
    assert again.read_bytes() == path.read_bytes()
    # build_model detects the format
    loaded = build_model("yolov3-tiny", num_classes=2, weights=path)
    assert torch.equal(loaded.head.m[1].weight, src.head.m[1].weight)


def test_old_header_with_int32_seen_round_trips(tmp_path):
    model = randomize_weights(build_model("yolov3-tiny", num_classes=1))
    old = DarknetHeader(0, 1, 0, 64_000)
    path = save_darknet_weights(model, tmp_path / "old.weights", old)
    header, values = read_darknet_file(path)
    assert header == old and header.size == 16 and values.dtype.itemsize == 4
    copy = tmp_path / "copy.weights"
    save_darknet_weights(model, copy, load_darknet_weights(build_model("yolov3-tiny", num_classes=1), path))
    assert copy.read_bytes() == path.read_bytes()


def test_truncated_and_oversized_weights_fail(tmp_path):
    model = build_model("yolov3-tiny", num_classes=1)
    path = save_darknet_weights(model, tmp_path / "full.weights")
    data = path.read_bytes()
    cut = tmp_path / "cut.weights"
    cut.write_bytes(data[: 20 + 4 * 1000])  # stops inside the second convolution's weights
    with pytest.raises(WeightsError, match=r"data ran out in convolution 1 of 13 \(backbone.conv2, conv.weight "
                                           r"\(32, 16, 3, 3\)\)"):
        build_model("yolov3-tiny", num_classes=1, weights=cut)
    long = tmp_path / "long.weights"
    long.write_bytes(data + b"\x00" * 8)
    with pytest.raises(WeightsError, match="8 extra bytes"):
        build_model("yolov3-tiny", num_classes=1, weights=long)
    odd = tmp_path / "odd.weights"
    odd.write_bytes(data + b"\x00")
    with pytest.raises(WeightsError, match="not a multiple of 4 after a Darknet header"):
        build_model("yolov3-tiny", num_classes=1, weights=odd)
    # a .weights file of yolov3-tiny does not fit another class count
    with pytest.raises(WeightsError, match="data ran out|extra bytes"):
        build_model("yolov3-tiny", num_classes=2, weights=path)
    with pytest.raises(WeightsError, match="no Darknet layout"):
        build_model("yolov5n", weights=path)


@pytest.mark.slow
def test_yolov3_weights_file(tmp_path):
    """build_model("yolov3", weights="x.weights") works; the file has Darknet's size for YOLOv3 (nc=80)."""
    src = randomize_weights(build_model("yolov3"))
    path = save_darknet_weights(src, tmp_path / "yolov3.weights")
    assert path.stat().st_size == 248_007_048  # the size of pjreddie's released yolov3.weights
    model = build_model("yolov3", weights=path)
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
