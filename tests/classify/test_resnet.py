"""ResNet from primitives against torchvision: parameter counts and outputs with torchvision's weights."""

from __future__ import annotations

import pytest
import torch
import torchvision

from yololab.classify import build_classifier, list_classifiers
from yololab.classify.resnet import BasicBlock, Bottleneck
from yololab.errors import YololabError


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name,count", [("resnet18", 11_689_512), ("resnet34", 21_797_672),
                                        ("resnet50", 25_557_032)])
def test_imagenet_stem_equals_torchvision(name, count):
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)()
    ours = build_classifier(name)
    assert n_params(ours) == n_params(ref) == count
    assert list(ours.state_dict()) == list(ref.state_dict())  # same names, same order
    ours.load_state_dict(ref.state_dict(), strict=True)  # torchvision's dict, unchanged
    # BN statistics that are not the identity, so eval mode really uses them
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 64, 64)
    ours.eval(), ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)
    if name == "resnet18":  # training mode (batch statistics) and gradients too
        ours.train(), ref.train()
        y_ours, y_ref = ours(x), ref(x)
        torch.testing.assert_close(y_ours, y_ref, atol=1e-5, rtol=0)
        y_ours.square().sum().backward()
        y_ref.square().sum().backward()
        torch.testing.assert_close(ours.conv1.weight.grad, ref.conv1.weight.grad, atol=1e-4, rtol=1e-4)


def test_cifar_stem():
    m = build_classifier("resnet18-cifar", num_classes=10)
    assert n_params(m) == 11_173_962
    assert isinstance(m.maxpool, torch.nn.Identity) and m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    x = torch.randn(2, 3, 32, 32)
    assert m.features(x).shape == (2, 512, 4, 4)  # 32 -> 4 (three stride-2 stages), no stem downsampling
    assert m(x).shape == (2, 10)


def test_blocks_and_projection_shortcuts():
    m = build_classifier("resnet50-cifar", num_classes=7, width=8)
    assert isinstance(m.layer1[0], Bottleneck) and m.layer1[0].downsample is not None  # 8 -> 32 channels
    assert m.layer1[1].downsample is None  # identity shortcut
    assert m.layer2[0].conv2.stride == (2, 2) and m.layer2[0].conv1.stride == (1, 1)  # v1.5: stride on the 3x3
    r18 = build_classifier("resnet18-cifar", width=8)
    assert isinstance(r18.layer2[0], BasicBlock)
    assert r18.layer1[0].downsample is None and r18.layer2[0].downsample[0].stride == (2, 2)
    assert m(torch.randn(1, 3, 16, 16)).shape == (1, 7)


def test_registry_errors():
    assert list_classifiers() == ["resnet18", "resnet34", "resnet50", "resnet18-cifar", "resnet34-cifar",
                                  "resnet50-cifar"]
    with pytest.raises(YololabError, match="Did you mean 'resnet18'"):
        build_classifier("resnet81")
    with pytest.raises(YololabError, match="num_classes must be a positive integer"):
        build_classifier("resnet18", num_classes=0)


def test_models_summary_and_diagram_on_resnets(tmp_path, capsys):
    from yololab.analysis.summary import trace_zoo_model
    from yololab.cli import main

    t = trace_zoo_model("resnet18", 224)
    assert t.params == 11_689_512 and round(t.gflops, 2) == 3.63  # torchvision lists 1.81 G (multiply-adds)
    assert [b.group for b in t.blocks].count("head") == 3 and t.blocks[-1].sources == [9]  # pool -> flatten -> fc
    assert main(["models", "summary", "resnet18-cifar", "--imgsz", "32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("resnet18-cifar  (ResNet, scale -, 10 classes)") and "11,173,962" in out
    assert main(["models", "diagram", "resnet50", "--imgsz", "64", "--formats", "mmd", "--out", str(tmp_path)]) == 0
    assert "Bottleneck" in (tmp_path / "resnet50.mmd").read_text()
