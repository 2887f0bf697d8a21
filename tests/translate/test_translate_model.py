"""The Transformer from primitives against torch.nn's own layers, and cached against uncached decoding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yololab.translate.attention import (
    KVCache,
    MultiHeadAttention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)
from yololab.translate.layers import DecoderLayer, EncoderLayer, LearnedPositionalEncoding, SinusoidalPositionalEncoding
from yololab.translate.model import Transformer, TransformerConfig, num_parameters

D, H, FF = 32, 4, 64


def copy_mha(ours: MultiHeadAttention, ref: nn.MultiheadAttention) -> None:
    ours.in_proj.weight.data.copy_(ref.in_proj_weight)
    ours.in_proj.bias.data.copy_(ref.in_proj_bias)
    ours.out_proj.load_state_dict(ref.out_proj.state_dict())


def copy_layer(ours: nn.Module, ref: nn.Module) -> None:
    """nn.Transformer{Encoder,Decoder}Layer -> ours: same names except attention and the feed-forward."""
    copy_mha(ours.self_attn, ref.self_attn)
    if hasattr(ref, "multihead_attn"):
        copy_mha(ours.cross_attn, ref.multihead_attn)
    ours.ff.linear1.load_state_dict(ref.linear1.state_dict())
    ours.ff.linear2.load_state_dict(ref.linear2.state_dict())
    for i in (1, 2, 3):
        if hasattr(ref, f"norm{i}"):
            getattr(ours, f"norm{i}").load_state_dict(getattr(ref, f"norm{i}").state_dict())


def randomize_norms(module: nn.Module) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()


def lengths_mask(lengths: list[int], size: int) -> torch.Tensor:
    """(B, size) True at padding, as nn.* key_padding_mask wants."""
    return torch.arange(size)[None] >= torch.tensor(lengths)[:, None]


def test_sdpa_matches_torch_and_masks_rows():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    mask = ~lengths_mask([7, 4], 7)[:, None, None, :]
    out, w = scaled_dot_product_attention(q, k, v, mask)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 5))
    assert (w[1, :, :, 4:] == 0).all()  # padded keys get no weight
    out, w = scaled_dot_product_attention(q, k, v, torch.zeros(1, 1, 1, 7, dtype=torch.bool))
    assert (w == 0).all() and (out == 0).all()  # every key masked: zeros, not NaN


def test_masks():
    assert causal_mask(3).squeeze().tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    m = padding_mask(torch.tensor([[5, 6, 0], [7, 0, 0]]), pad_id=0)
    assert m.shape == (2, 1, 1, 3) and m.squeeze().tolist() == [[True, True, False], [True, False, False]]


@pytest.mark.parametrize("cross", [False, True])
def test_mha_equals_nn_multiheadattention(cross):
    torch.manual_seed(1)
    ref = nn.MultiheadAttention(D, H, batch_first=True)
    nn.init.normal_(ref.in_proj_bias)
    ours = MultiHeadAttention(D, H)
    copy_mha(ours, ref)
    x = torch.randn(3, 6, D)
    mem = torch.randn(3, 9, D) if cross else x
    kpm = lengths_mask([9, 5, 2] if cross else [6, 4, 3], mem.size(1))
    attn_mask = None if cross else ~causal_mask(6).squeeze()
    ref_out, ref_w = ref(x, mem, mem, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True,
                         average_attn_weights=False)
    mask = ~kpm[:, None, None, :]
    if attn_mask is not None:
        mask = mask & ~attn_mask
    ours.record_weights = True
    out = ours(x, mem if cross else None, mask=mask)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.last_weights, ref_w, atol=1e-6, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_encoder_layer_equals_nn(norm_first, mode):
    torch.manual_seed(2)
    ref = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    randomize_norms(ref)
    ours = EncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first)
    copy_layer(ours, ref)
    getattr(ref, mode)(), getattr(ours, mode)()
    x = torch.randn(3, 7, D)
    kpm = lengths_mask([7, 5, 2], 7)
    with torch.no_grad():
        ref_out = ref(x, src_key_padding_mask=kpm)
        out = ours(x, ~kpm[:, None, None, :])
    keep = ~kpm  # torch's eval fast path may leave padded rows as they are: compare real tokens
    torch.testing.assert_close(out[keep], ref_out[keep], atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_nn(norm_first):
    torch.manual_seed(3)
    ref = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    randomize_norms(ref)
    ours = DecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first)
    copy_layer(ours, ref)
    x, mem = torch.randn(3, 6, D), torch.randn(3, 8, D)
    mem_kpm, tgt_kpm = lengths_mask([8, 3, 5], 8), lengths_mask([6, 6, 2], 6)
    causal = ~causal_mask(6).squeeze()
    ref_out = ref(x, mem, tgt_mask=causal, tgt_key_padding_mask=tgt_kpm, memory_key_padding_mask=mem_kpm)
    out = ours(x, mem, tgt_mask=causal_mask(6) & ~tgt_kpm[:, None, None, :], memory_mask=~mem_kpm[:, None, None, :])
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)


def test_positional_encodings():
    pe = SinusoidalPositionalEncoding(16, 50)
    x = torch.zeros(1, 10, 16)
    y = pe(x)
    assert torch.allclose(y[0, 3, 0], torch.tensor(3.0).sin()) and torch.allclose(y[0, 3, 1], torch.tensor(3.0).cos())
    torch.testing.assert_close(pe(x[:, :1], offset=3), y[:, 3:4])
    lpe = LearnedPositionalEncoding(16, 50)
    torch.testing.assert_close(lpe(x[:, :2], offset=4), lpe.pe.weight[4:6][None])


def tiny(**kw) -> Transformer:
    torch.manual_seed(0)
    cfg = {"vocab_size": 50, "d_model": D, "heads": H, "enc_layers": 2, "dec_layers": 2, "d_ff": FF, "dropout": 0.0}
    return Transformer(TransformerConfig(**{**cfg, **kw})).eval()


@pytest.mark.parametrize("norm_first,positional", [(True, "sinusoidal"), (False, "learned")])
def test_cached_decoding_equals_uncached(norm_first, positional):
    model = tiny(norm_first=norm_first, positional=positional)
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0]])
    tgt = torch.tensor([[2, 11, 12, 13, 14, 15], [2, 16, 17, 18, 19, 20]])
    with torch.no_grad():
        memory, src_mask = model.encode(src)
        full = model.decode(tgt, memory, src_mask)
        cache = KVCache()
        steps = [model.decode(tgt[:, t:t + 1], memory, src_mask, cache, offset=t) for t in range(tgt.size(1))]
    assert len(cache) == 2 * 2  # one self- and one cross-attention entry per decoder layer
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=0)
    assert torch.equal(torch.cat(steps, 1).argmax(-1), full.argmax(-1))


def test_tied_embeddings_and_parameter_count():
    tied, untied = tiny(), tiny(tie_embeddings=False)
    assert tied.generator.weight is tied.src_embed.weight is tied.tgt_embed.weight
    assert num_parameters(untied) - num_parameters(tied) == 2 * 50 * D
    logits = tied(torch.tensor([[5, 6, 3]]), torch.tensor([[2, 7]]))
    assert logits.shape == (1, 2, 50)
