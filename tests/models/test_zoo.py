"""The model zoo: names, parameter counts, output layouts, metadata, weight conversion and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yololab.errors import WeightsError, YololabError
from yololab.models import build_model, list_models, model_info
from yololab.checkpoint.reference import reference_state_dict_to_yololab

from test_parity_zoo import randomize_batchnorm

# Parameter counts of the references for nc=80 (ultralytics 8.4.190 / yolov5 7.0.14, see docs/design.md).
REFERENCE_PARAMS = {
    "yolov3": 61_949_149, "yolov3-tiny": 8_852_366,
    "yolov5n": 1_872_157, "yolov5s": 7_235_389, "yolov5m": 21_190_557, "yolov5l": 46_563_709,
    "yolov5x": 86_749_405,
    "yolov8n": 3_157_200, "yolov8s": 11_166_560, "yolov8m": 25_902_640, "yolov8l": 43_691_520,
    "yolov8x": 68_229_648,
    "yolo11n": 2_624_080, "yolo11s": 9_458_752, "yolo11m": 20_114_688, "yolo11l": 25_372_160,
    "yolo11x": 56_966_176,
}
SMALL = ["yolov3-tiny", "yolov5n", "yolov8n", "yolo11n"]  # one per family (v3 via its tiny model)


# (test_parity_zoo.py also checks, for n and s of each family and both yolov3s, that the parameter count equals
# that of the reference model built from its YAML.)


def test_list_models():
    names = list_models()
    assert names == list(REFERENCE_PARAMS)
    assert names is not list_models()  # a copy, callers may modify it


@pytest.mark.parametrize("name", list(REFERENCE_PARAMS))
def test_parameter_count_equals_reference(name):
    """Every model, built without allocating weights (meta device), has exactly the reference's count."""
    info = model_info(name)
    assert info["parameters"] == REFERENCE_PARAMS[name]
    assert info["name"] == name and info["num_classes"] == 80


@pytest.mark.parametrize("style", ["darknet", "yolov5"])
@pytest.mark.parametrize("name", ["yolov3", "yolov3-tiny"])
def test_yolov3_styles_same_parameters(name, style):
    with torch.device("meta"):
        model = build_model(name, style=style)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE_PARAMS[name]
    assert model.meta.extra["style"] == style
    acts = {type(m) for m in model.modules() if isinstance(m, (nn.SiLU, nn.LeakyReLU))}
    assert acts == ({nn.LeakyReLU} if style == "darknet" else {nn.SiLU})
    assert model.head.decode == style


@pytest.mark.parametrize("name", list(REFERENCE_PARAMS))
def test_reference_layers_cover_every_weight(name):
    """reference_layers names real, distinct modules, and every weight lives under exactly one of them."""
    with torch.device("meta"):
        model = build_model(name)
    layers = model.reference_layers
    assert len(set(layers)) == len(layers)
    for path in layers:
        model.get_submodule(path)  # raises if the path is wrong
    assert layers[-1] == "head"
    for key in model.state_dict():
        owners = [p for p in layers if key.startswith(p + ".")]
        assert len(owners) == 1, f"{key} is under {owners}"
    kinds = [type(model.get_submodule(p)).__name__ for p in layers]
    assert "Upsample" in kinds and "Concat" in kinds


def to_reference_keys(model) -> dict[str, torch.Tensor]:
    """Our state dict written the way the references name it (the inverse of convert.py), for tests."""
    out = {}
    for i, path in enumerate(model.reference_layers):
        for key, value in model.get_submodule(path).state_dict().items():
            if key == "anchors":  # yolov5 keeps anchors in grid units
                value = value / torch.tensor(model.head.strides, dtype=value.dtype).view(-1, 1, 1)
            out[f"model.{i}.{key}"] = value.clone()
    return out


@pytest.mark.parametrize("name", SMALL)
def test_convert_round_trip(name):
    torch.manual_seed(0)
    a, b = build_model(name, num_classes=5), build_model(name, num_classes=5)
    randomize_batchnorm(a)
    b.load_state_dict(reference_state_dict_to_yololab(b, to_reference_keys(a)), strict=True)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_convert_is_strict():
    model = build_model("yolov5n", num_classes=3)
    ref = to_reference_keys(build_model("yolov5n"))  # nc=80 weights into an nc=3 model
    with pytest.raises(WeightsError, match=r"shape mismatch for 'model\.24\.m\.0\.weight'.*\(255, 64, 1, 1\)"):
        reference_state_dict_to_yololab(model, ref)
    ref = to_reference_keys(model)
    ref["model.3.conv.extra"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"'model\.3\.conv\.extra'.*no counterpart"):
        reference_state_dict_to_yololab(model, ref)
    ref = to_reference_keys(model)
    del ref["model.2.cv1.bn.running_var"]
    with pytest.raises(WeightsError, match=r"missing.*backbone\.stage2\.cv1\.bn\.running_var"):
        reference_state_dict_to_yololab(model, ref)
    with pytest.raises(WeightsError, match="model.99"):
        reference_state_dict_to_yololab(model, {"model.99.conv.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match="not of the form"):
        reference_state_dict_to_yololab(model, {"backbone.stem.conv.weight": torch.zeros(1)})


@pytest.mark.parametrize("name", SMALL)
def test_train_and_eval_outputs(name):
    """num_classes != 80; a non-square input; training returns raw per-level maps, eval the decoded tensor."""
    nc, h, w = 3, 64, 96
    model = build_model(name, num_classes=nc)
    strides = model.meta.strides
    x = torch.rand(2, 3, h, w)
    model.train()
    maps = model(x)
    assert isinstance(maps, list) and len(maps) == len(strides)
    if model.meta.anchor_based:
        for m, s in zip(maps, strides):
            assert m.shape == (2, 3, h // s, w // s, 5 + nc)
        cells = sum(3 * (h // s) * (w // s) for s in strides)
    else:
        for m, s in zip(maps, strides):
            assert m.shape == (2, 4 * 16 + nc, h // s, w // s)
        cells = sum((h // s) * (w // s) for s in strides)
    model.eval()
    with torch.no_grad():
        y = model(x)
    if model.meta.anchor_based:
        assert y.shape == (2, cells, 5 + nc)
        assert ((y[..., 4:] >= 0) & (y[..., 4:] <= 1)).all()
    else:
        assert y.shape == (2, 4 + nc, cells)
        assert ((y[:, 4:] >= 0) & (y[:, 4:] <= 1)).all()
    assert torch.isfinite(y).all()
    # a backward pass through the training output reaches the first layer
    model.train()
    sum(m.sum() for m in model(x)).backward()
    assert model.get_submodule(model.reference_layers[0]).conv.weight.grad is not None


@pytest.mark.parametrize("name", ["yolov3", *SMALL])
def test_fuse_keeps_outputs(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=4)
    randomize_batchnorm(model)
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        after = model.fuse()(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", list(REFERENCE_PARAMS))
def test_meta(name):
    with torch.device("meta"):
        model = build_model(name, num_classes=7)
    meta = model.meta
    assert meta.name == name and model.num_classes == 7
    assert meta.family == ("yolov3" if name.startswith("yolov3") else name[:-1])
    assert meta.strides == ([16, 32] if name == "yolov3-tiny" else [8, 16, 32])
    assert meta.anchor_based == name.startswith(("yolov3", "yolov5"))
    assert meta.backbone and meta.neck and meta.head and meta.reference
    assert meta.to_dict()["num_classes"] == 7


def test_anchor_convention():
    """Anchors are stored in pixels, yolov3-tiny's from Darknet's yolov3-tiny.cfg (masks 0,1,2 and 3,4,5)."""
    tiny = build_model("yolov3-tiny")
    assert tiny.head.anchors.tolist() == [[[10, 14], [23, 27], [37, 58]], [[81, 82], [135, 169], [344, 319]]]
    assert build_model("yolov5n").head.anchors[2, 2].tolist() == [373, 326]


def test_model_names_ignore_case():
    assert build_model("YOLOv8n", num_classes=2).meta.name == "yolov8n"
    assert model_info(" Yolo11S ")["name"] == "yolo11s"


@pytest.mark.parametrize("name, expected", [
    ("yolov8q", "? The family has yolov8n, yolov8s, yolov8m, yolov8l, yolov8x"),
    ("yolov8", "add a scale: yolov8n, yolov8s, yolov8m, yolov8l, yolov8x"),
    ("yolov11n", "did you mean 'yolo11n'?"),                   # the family by its version, not by spelling
    ("yolo8s", "did you mean 'yolov8s'?"),
    ("yolov9", "the zoo has no YOLO version 9; its families are YOLOv3: yolov3, yolov3-tiny; YOLOv5:"),
    ("resnet50", "the zoo's families are YOLOv3"),
])
def test_unknown_names_get_suggestions_from_their_family(name, expected):
    with pytest.raises(YololabError) as e:
        model_info(name)
    msg = str(e.value)
    assert f"unknown model {name!r}" in msg and expected in msg
    if "families are" in expected:
        assert all(n in msg for n in list_models())


def test_bad_options():
    with pytest.raises(YololabError, match="num_classes"):
        build_model("yolov8n", num_classes=0)
    with pytest.raises(YololabError, match="style"):
        build_model("yolov8n", style="darknet")  # not an option of yolov8
    with pytest.raises(YololabError, match="style 'caffe'"):
        build_model("yolov3", style="caffe")
    with pytest.raises(YololabError, match="unexpected keyword"):
        build_model("yolov5s", stlye="yolov5")
    with pytest.raises(YololabError, match="anchors"):
        build_model("yolov5n", anchors=[[10, 13, 16, 30], [30, 61]])
    custom = build_model("yolov5n", anchors=[[1, 2, 3, 4, 5, 6]] * 3)
    assert custom.head.anchors[1].tolist() == [[1, 2], [3, 4], [5, 6]]


def test_darknet_style_outputs(tmp_path):
    """Darknet style: LeakyReLU network, Darknet decode, and the stride-1 pool ignores cells outside the map."""
    model = build_model("yolov3-tiny", num_classes=2).eval()
    pad = model.backbone.pad11
    x = -torch.rand(1, 1, 3, 3) - 1  # all negative: a zero pad would win the max at the border
    pooled = model.backbone.pool12(pad(x))
    assert pooled.shape == x.shape
    assert pooled[0, 0, 2, 2] == x[0, 0, 2, 2]
    with torch.no_grad():
        y = model(torch.rand(1, 3, 64, 64))
    assert y.shape == (1, 3 * (4 * 4 + 2 * 2), 7)
