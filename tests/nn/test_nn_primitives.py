"""yololab.nn primitives against plain torch.nn equivalents and their definitions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yololab.nn import (C2PSA, C3, DFL, SPP, SPPF, AnchorHead, Attention, Bottleneck, C2f, C3k2, Concat, Conv,
                        DarknetResidual, DetectHead, DWConv, Upsample, autopad, dist2bbox, fuse_conv_bn_modules,
                        make_anchors, repeat)


def randomize_bn(module: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g))
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g))


def test_conv_equals_conv2d_bn_silu():
    torch.manual_seed(0)
    ours = Conv(8, 16, 3, 2)
    randomize_bn(ours)
    ref = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16, eps=1e-3, momentum=0.03), nn.SiLU())
    ref.load_state_dict({k.replace("conv.", "0.").replace("bn.", "1."): v for k, v in ours.state_dict().items()})
    x = torch.randn(2, 8, 17, 13)
    for mode in (True, False):  # batch statistics in training mode, running statistics in eval
        ours.train(mode), ref.train(mode)
        torch.testing.assert_close(ours(x), ref(x))
    assert ours(x).shape == (2, 16, 9, 7)
    assert ours.bn.eps == 1e-3 and ours.bn.momentum == 0.03
    assert isinstance(Conv(3, 4, act="leaky").act, nn.LeakyReLU) and Conv(3, 4, act="leaky").act.negative_slope == 0.1
    assert isinstance(Conv(3, 4, act=False).act, nn.Identity)
    with pytest.raises(ValueError, match="activation"):
        Conv(3, 4, act="gelu6")


def test_autopad_and_dwconv():
    assert autopad(3) == 1 and autopad(6, 2) == 2 and autopad((1, 3)) == [0, 1] and autopad(3, d=2) == 2
    dw = DWConv(32, 32, 3)
    assert dw.conv.groups == 32 and dw.conv.weight.shape == (32, 1, 3, 3)
    assert DWConv(16, 24, 3).conv.groups == 8


@pytest.mark.parametrize("block", [
    lambda: Conv(6, 10, 3),
    lambda: C2f(8, 16, 2, shortcut=True),
    lambda: C3k2(8, 16, 2, c3k=True),
    lambda: C2PSA(64, 64, 1),
])
def test_fuse_keeps_outputs(block):
    torch.manual_seed(0)
    m = block()
    randomize_bn(m)
    m.eval()
    x = torch.randn(1, m.cv1.conv.in_channels if hasattr(m, "cv1") else 6, 8, 8)
    with torch.no_grad():
        before = m(x)
        fuse_conv_bn_modules(m)
        after = m(x)
    assert not any(isinstance(b, nn.BatchNorm2d) for b in m.modules())
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_dfl_is_softmax_expectation():
    torch.manual_seed(0)
    x = torch.randn(2, 4 * 16, 7)
    expected = (x.view(2, 4, 16, 7).softmax(2) * torch.arange(16.0).view(1, 1, 16, 1)).sum(2)
    dfl = DFL(16)
    torch.testing.assert_close(dfl(x), expected)
    assert not dfl.conv.weight.requires_grad


def test_sppf_equals_spp_5_9_13():
    torch.manual_seed(0)
    spp, sppf = SPP(16, 24, (5, 9, 13)), SPPF(16, 24, 5)
    sppf.load_state_dict(spp.state_dict())  # same names: cv1, cv2 (pools have no weights)
    spp.eval(), sppf.eval()
    x = torch.randn(2, 16, 20, 15)
    torch.testing.assert_close(sppf(x), spp(x))


def test_bottlenecks():
    b = DarknetResidual(64, 64)
    assert b.cv1.conv.kernel_size == (1, 1) and b.cv1.conv.out_channels == 32 and b.cv2.conv.kernel_size == (3, 3)
    assert b.add and not DarknetResidual(64, 128).add and not DarknetResidual(64, 64, shortcut=False).add
    x = torch.randn(1, 64, 5, 5)
    b.eval()
    torch.testing.assert_close(b(x), x + b.cv2(b.cv1(x)))
    assert Bottleneck(8, 8).cv1.conv.kernel_size == (3, 3)  # the Ultralytics default
    c3 = C3(16, 32, n=2)
    assert c3.m[0].cv1.conv.kernel_size == (1, 1) and c3(torch.randn(1, 16, 8, 8)).shape == (1, 32, 8, 8)
    c2f = C2f(16, 32, n=3)
    assert c2f.cv2.conv.in_channels == (2 + 3) * 16
    assert C3k2(16, 32, 1, c3k=False).m[0].cv1.conv.out_channels == 8  # plain bottleneck, e=0.5


def test_attention_matches_explicit_heads():
    """Attention against a per-head loop written from the definition (softmax(q^T k / sqrt(d)) applied to v)."""
    torch.manual_seed(0)
    att = Attention(128, num_heads=2, attn_ratio=0.5).eval()
    randomize_bn(att)
    x = torch.randn(1, 128, 4, 5)
    qkv = att.qkv(x).view(1, 2, 2 * att.key_dim + att.head_dim, 20)
    heads = []
    for h in range(2):
        q, k, v = qkv[0, h, :att.key_dim], qkv[0, h, att.key_dim:2 * att.key_dim], qkv[0, h, 2 * att.key_dim:]
        w = (q.T @ k / att.key_dim ** 0.5).softmax(-1)  # (N, N): query position -> key weights
        heads.append(v @ w.T)  # (head_dim, N)
    v_all = qkv[0, :, 2 * att.key_dim:].reshape(1, 128, 4, 5)
    expected = att.proj(torch.cat(heads).view(1, 128, 4, 5) + att.pe(v_all))
    torch.testing.assert_close(att(x), expected, rtol=1e-4, atol=1e-5)
    assert C2PSA(128, 128, 2)(x).shape == x.shape


def test_concat_upsample_repeat():
    a, b = torch.randn(1, 2, 3, 3), torch.randn(1, 5, 3, 3)
    assert Concat()([a, b]).shape == (1, 7, 3, 3)
    up = Upsample()(a)
    assert up.shape == (1, 2, 6, 6) and torch.equal(up[..., ::2, ::2], a) and torch.equal(up[..., 1::2, 1::2], a)
    assert isinstance(repeat(lambda: nn.ReLU(), 1), nn.ReLU)
    assert isinstance(repeat(lambda: nn.ReLU(), 3), nn.Sequential)


def test_make_anchors_and_dist2bbox():
    points, stride = make_anchors([(2, 3), (1, 1)], [8, 16])
    assert points.tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5], [0.5, 1.5], [1.5, 1.5], [2.5, 1.5], [0.5, 0.5]]
    assert stride.squeeze(1).tolist() == [8] * 6 + [16]
    box = dist2bbox(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[10.0, 10.0]]), dim=1)
    assert box.tolist() == [[11.0, 11.0, 4.0, 6.0]]  # x1=9, y1=8, x2=13, y2=14


def test_detect_head_decode_by_hand():
    """Logits that put all DFL mass on one bin decode to a known box."""
    head = DetectHead(2, [16, 32], [8, 16], reg_max=4).eval()
    maps = [torch.zeros(1, 4 * 4 + 2, 2, 2), torch.zeros(1, 4 * 4 + 2, 1, 1)]
    for m in maps:
        m[:, :16] = -50.0
        m[:, [1, 4 + 2, 8 + 3, 12 + 0]] = 50.0  # l=1, t=2, r=3, b=0 (in strides)
    y = head.decode(maps)
    assert y.shape == (1, 6, 5)
    # first cell of level 0: centre (0.5, 0.5) * 8 -> x1 = -0.5, y1 = -1.5, x2 = 3.5, y2 = 0.5 (grid units)
    torch.testing.assert_close(y[0, :4, 0], torch.tensor([1.5, -0.5, 4.0, 2.0]) * 8)
    torch.testing.assert_close(y[0, 4:, 0], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(y[0, :4, 4], torch.tensor([1.5, -0.5, 4.0, 2.0]) * 16)
    head.train()
    assert [o.shape for o in head([torch.zeros(2, 16, 2, 2), torch.zeros(2, 32, 1, 1)])] == [(2, 18, 2, 2),
                                                                                            (2, 18, 1, 1)]


@pytest.mark.parametrize("decode", ["yolov5", "darknet"])
def test_anchor_head_decode_by_hand(decode):
    head = AnchorHead(1, [[10, 20, 30, 40]], [4], [8], decode=decode).eval()  # 2 anchors, 1 class
    with torch.no_grad():
        head.m[0].weight.zero_()
        head.m[0].bias.zero_()
    y = head([torch.zeros(1, 4, 2, 3)])  # all logits 0: sigmoid 0.5, exp 1
    assert y.shape == (1, 2 * 2 * 3, 6)  # ordered anchor, y, x
    row = y[0, 1 * 6 + 1 * 3 + 2]  # anchor 1, cell y=1, x=2
    if decode == "yolov5":  # xy = (2*0.5 - 0.5 + cell) * 8, wh = (2*0.5)^2 * anchor
        expected = [(0.5 + 2) * 8, (0.5 + 1) * 8, 30, 40, 0.5, 0.5]
    else:  # xy = (0.5 + cell) * 8, wh = exp(0) * anchor
        expected = [2.5 * 8, 1.5 * 8, 30, 40, 0.5, 0.5]
    torch.testing.assert_close(row, torch.tensor(expected))
    with pytest.raises(ValueError, match="decode"):
        AnchorHead(1, [[10, 20]], [4], [8], decode="yolo9")
