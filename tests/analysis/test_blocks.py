"""Tests of yololab.analysis.blocks: the inner graph of a block, traced from its code on the meta device.

Each graph is checked against what the block's forward computes (its splits, series, concatenations and
residual adds, with their shapes) and its totals against the whole-model trace of the model it comes from.
"""

from __future__ import annotations

import pytest
import torch

from yololab.analysis.blocks import BLOCKS, parse_block, trace_block, trace_zoo_block
from yololab.analysis.summary import trace_zoo_model
from yololab.errors import YololabError
from yololab.nn.blocks import C2f


def _nodes(t, kind):
    return [n for n in t.blocks if n.type == kind]


def _one(t, kind):
    found = _nodes(t, kind)
    assert len(found) == 1, f"{t.name}: {len(found)} {kind} nodes"
    return found[0]


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_totals_equal_the_model_trace(name):
    """Per node parameters and FLOPs add up to the block's, which equal that block's row in the model trace."""
    t = trace_zoo_block(name)
    spec = BLOCKS[name]
    assert sum(n.params for n in t.blocks) == t.params and sum(n.flops for n in t.blocks) == t.flops
    row = trace_zoo_model(spec.model, 640).blocks[spec.layer]
    assert t.params == row.params and t.flops == row.flops  # SPP stands in for SPPF: same convs, pools cost 0
    assert [tuple(s) for s in row.out_shapes] == t.output_shapes
    assert [n.out_shapes[0] for n in _nodes(t, "input")] == [tuple(s) for s in row.in_shapes]
    for n in t.blocks:  # edges only point backwards: execution order is a topological order
        assert all(i is None or 0 <= i < n.index for i in n.inputs), n.title


def test_c2f_split_n_bottlenecks_concat_of_2_plus_n():
    t = trace_zoo_block("C2f")  # yolov8s model.4: C2f(128, 128, n=2), 80x80
    chunk, cat = _one(t, "chunk"), _one(t, "cat")
    cv1, cv2 = _nodes(t, "Conv")
    bottlenecks = _nodes(t, "Bottleneck")
    assert len(bottlenecks) == 2
    assert chunk.inputs == [cv1.index] and chunk.out_shapes == [(1, 64, 80, 80)] * 2
    # the bottlenecks run in series on the second half, each on the previous one's output
    assert bottlenecks[0].inputs == [chunk.index] and bottlenecks[1].inputs == [bottlenecks[0].index]
    # every intermediate output is kept: both halves plus n outputs, (2 + n) * c channels
    assert cat.inputs == [chunk.index, chunk.index] + [b.index for b in bottlenecks]
    assert cat.out_shapes == [(1, (2 + 2) * 64, 80, 80)] and cv2.inputs == [cat.index]

    with torch.device("meta"):
        block = C2f(32, 48, n=3, shortcut=True)
    t3 = trace_block(block, (torch.zeros(1, 32, 16, 16, device="meta"),), "C2f-n3")
    cat = _one(t3, "cat")
    assert len(_nodes(t3, "Bottleneck")) == 3 and len(cat.inputs) == 2 + 3
    assert cat.out_shapes == [(1, (2 + 3) * 24, 16, 16)] and t3.output_shapes == [(1, 48, 16, 16)]
    bottleneck = trace_block(block.m[0], (torch.zeros(1, 24, 16, 16, device="meta"),), "Bottleneck")
    assert _one(bottleneck, "add").inputs == [0, 2]  # input + cv2(cv1(input))


def test_sppf_three_pools_in_series_spp_in_parallel():
    sppf, spp = trace_zoo_block("SPPF"), trace_zoo_block("SPP")
    cv1 = _nodes(sppf, "Conv")[0]
    pools = _nodes(sppf, "MaxPool2d")
    assert len(pools) == 3 and [p.path for p in pools] == ["m"] * 3  # one module, called three times
    assert [p.inputs for p in pools] == [[cv1.index], [pools[0].index], [pools[1].index]]
    assert _one(sppf, "cat").inputs == [cv1.index] + [p.index for p in pools]  # cv1's output, not the input
    assert all(p.out_shapes == [(1, 256, 20, 20)] for p in pools)
    assert _one(sppf, "cat").out_shapes == [(1, 1024, 20, 20)]

    pools = _nodes(spp, "MaxPool2d")
    cv1 = _nodes(spp, "Conv")[0]
    assert [p.inputs for p in pools] == [[cv1.index]] * 3 and [p.title for p in pools] == [
        "m.0 MaxPool2d 5x5", "m.1 MaxPool2d 9x9", "m.2 MaxPool2d 13x13"]
    assert spp.params == sppf.params and spp.flops == sppf.flops


def test_c3_two_branches_and_c3k2_holds_a_c3k():
    t = trace_zoo_block("C3")  # yolov5s model.4: C3(128, 128, n=2)
    inp = _one(t, "input")
    cv1, cv2, cv3 = [n for n in t.blocks if n.type == "Conv"]
    assert cv1.inputs == [inp.index] and cv2.inputs == [inp.index]  # both branches read the input
    m = _nodes(t, "Bottleneck")
    assert m[0].inputs == [cv1.index] and m[1].inputs == [m[0].index]
    assert _one(t, "cat").inputs == [m[-1].index, cv2.index]  # only the last bottleneck's output is kept

    t = trace_zoo_block("C3k2")  # yolo11s model.6: C3k2 with a C3k inside, drawn from the inside
    chunk = _one(t, "chunk")
    inner = [n for n in t.blocks if n.path.startswith("m.0.")]
    assert [n.title for n in inner if n.type == "Conv"] == ["m.0.cv1 Conv 1x1", "m.0.cv2 Conv 1x1", "m.0.cv3 Conv 1x1"]
    assert {n.inputs[0] for n in inner if n.path in ("m.0.cv1", "m.0.cv2")} == {chunk.index}
    last_cat = _nodes(t, "cat")[-1]
    assert len(last_cat.inputs) == 3 and last_cat.out_shapes == [(1, 384, 40, 40)]


def test_c2psa_attention_and_residuals():
    t = trace_zoo_block("C2PSA")  # yolo11s model.10: 512 channels at 20x20, 4 heads on 256
    attn, softmax = _nodes(t, "matmul"), _one(t, "softmax")
    n_tokens = 20 * 20
    assert attn[0].out_shapes == [(1, 4, n_tokens, n_tokens)] == softmax.out_shapes
    assert attn[1].inputs[1] == softmax.index and attn[1].out_shapes == [(1, 4, 64, n_tokens)]
    assert softmax.subtitle == "4x400x400"  # attention maps are not read as feature maps
    qkv_split = [n for n in _nodes(t, "split") if len(n.out_shapes) == 3]
    assert len(qkv_split) == 1 and qkv_split[0].out_shapes == [(1, 4, 32, n_tokens)] * 2 + [(1, 4, 64, n_tokens)]
    adds = _nodes(t, "add")
    assert len(adds) == 3  # attention + positional conv, and the two residuals of the PSA block
    half = _nodes(t, "split")[0]
    assert half.out_shapes == [(1, 256, 20, 20)] * 2 and adds[1].inputs[0] == half.index
    assert _nodes(t, "cat")[-1].inputs[0] == half.index  # the untouched half joins at the end


def test_heads_coupled_against_decoupled():
    a = trace_zoo_block("AnchorHead")  # yolov5s: one 1x1 conv per level predicts box, objectness and classes
    convs = _nodes(a, "Conv2d")
    assert [c.out_shapes[0][1] for c in convs] == [3 * 85] * 3 and all("box+obj+cls" in c.title for c in convs)
    decodes = _nodes(a, "decode")
    assert [d.inputs for d in decodes] == [[c.index] for c in convs]
    assert [d.out_shapes[0][1] for d in decodes] == [19200, 4800, 1200]
    assert _one(a, "cat").out_shapes == [(1, 25200, 85)] == a.output_shapes

    d = trace_zoo_block("DetectHead")  # yolov8s: a box branch and a class branch per level, DFL
    inputs = _nodes(d, "input")
    for level, inp in enumerate(inputs):
        first = [n for n in d.blocks if inp.index in n.inputs]
        assert sorted(n.path for n in first) == [f"cv2.{level}.0", f"cv3.{level}.0"]
    boxes = [n for n in d.blocks if n.path.endswith(".2") and n.path.startswith("cv2")]
    classes = [n for n in d.blocks if n.path.endswith(".2") and n.path.startswith("cv3")]
    assert [n.out_shapes[0][1] for n in boxes] == [4 * 16] * 3 and [n.out_shapes[0][1] for n in classes] == [80] * 3
    dfl, split = _one(d, "DFL"), _nodes(d, "split")[-1]
    assert split.out_shapes == [(1, 64, 8400), (1, 80, 8400)] and dfl.inputs == [split.index]
    assert dfl.out_shapes == [(1, 4, 8400)] and _one(d, "dist2bbox").inputs[0] == dfl.index
    assert _one(d, "sigmoid").inputs == [split.index] and d.output_shapes == [(1, 84, 8400)]


def test_darknet_residual_adds_its_input():
    t = trace_zoo_block("DarknetResidual")  # yolov3 model.2: 64 channels at 320x320
    inp, add = _one(t, "input"), _one(t, "add")
    cv1, cv2 = _nodes(t, "Conv")
    assert cv1.title == "cv1 Conv 1x1" and cv2.title == "cv2 Conv 3x3" and cv1.out_shapes == [(1, 32, 320, 320)]
    assert add.inputs == [inp.index, cv2.index] and add.out_shapes == [(1, 64, 320, 320)]


def test_any_model_layer_and_bad_names():
    t = trace_zoo_block("yolo11s:2")  # C3k2 with plain bottlenecks (c3k=False)
    assert t.name == "yolo11s-2" and t.signature.startswith("C3k2(64, 128, n=1, Bottleneck")
    assert t.source == "yolo11s model.2"
    for bad in ("C4", "yolo11s:x", "yolo11s"):
        with pytest.raises(YololabError, match="expected one of"):
            parse_block(bad)
    with pytest.raises(YololabError, match="blocks 0..23"):
        trace_zoo_block("yolo11s:99")
    with pytest.raises(YololabError, match="unknown model"):
        trace_zoo_block("yolo12s:2")


def test_tracing_leaves_the_block_as_it_was():
    """The function nodes are patched only while tracing; the head still computes the same afterwards."""
    import yololab.nn.heads as heads

    original = heads.dist2bbox
    trace_zoo_block.cache_clear()
    trace_zoo_block("DetectHead")
    trace_zoo_block("AnchorHead")
    assert heads.dist2bbox is original
    from yololab.nn.heads import AnchorHead

    head = AnchorHead(2, [[10, 13, 16, 30]], [8], [8])
    assert "_decode_level" not in vars(head)
    t = trace_block(head, ([torch.zeros(1, 8, 4, 4)],), "h", functions=(("_decode_level", "decode"),))
    assert "_decode_level" not in vars(head) and head.training
    assert t.output_shapes == [(1, 2 * 16, 7)]
