"""Training and decoding throughput of yololab's Transformer against torch.nn.Transformer, same sizes, same data.

Both models have the same shape (default: the Multi30K anchor, d_model 256, 4 heads, 3+3 pre-norm layers,
feed-forward 1024, one joint 8k sentencepiece vocabulary with the source embedding, target embedding and
output projection tied; the same parameter count) and the same sinusoidal positions, and see the same
Multi30K en->de batches (about --tokens padded tokens each). Per round, each side runs --steps training
steps (forward, label-smoothed loss, backward, AdamW step) under the same autocast; sides alternate
within a round and the order flips every round, so that load from other processes hits both alike.
Throughput counts real (non-padding) source + target tokens.

Decoding: greedy translation of --decode-sentences validation sentences, ours with the key/value cache,
ours without it (the whole prefix re-run each step), and torch.nn.Transformer, which has no cache
(prefix re-run); all three give the same tokens for the same weights, which the script checks after
copying our weights into the reference.

The output is markdown, ready to paste into benchmarks/README.md:

    flock /work/cpu.lock .venv/bin/python benchmarks/translate_throughput.py --rounds 5
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch
from torch import nn

from yololab.translate.attention import causal_mask
from yololab.translate.batching import collate, encode_pairs, pad, token_batches
from yololab.translate.corpus import load_folder
from yololab.translate.decode import greedy
from yololab.translate.model import Transformer, TransformerConfig, num_parameters
from yololab.translate.task import smoothed_loss
from yololab.translate.tokenizer import BOS, EOS, PAD, Tokenizer

ROOT = Path(__file__).resolve().parents[1]
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"


class TorchTransformer(nn.Module):
    """torch.nn.Transformer with the embeddings, positions and tied output layer our model has."""

    def __init__(self, cfg: TransformerConfig, positions: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=PAD)
        self.pos = positions
        self.drop = nn.Dropout(cfg.dropout)
        self.transformer = nn.Transformer(cfg.d_model, cfg.heads, cfg.enc_layers, cfg.dec_layers, cfg.d_ff,
                                          cfg.dropout, batch_first=True, norm_first=cfg.norm_first)
        self.generator = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.generator.weight = self.embed.weight

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        mask = ~causal_mask(tgt.size(1))[0, 0]
        h = self.transformer(self.embed_positions(src), self.embed_positions(tgt), tgt_mask=mask, src_key_padding_mask=src == PAD,
                             memory_key_padding_mask=src == PAD, tgt_is_causal=True)
        return self.generator(h)

    def embed_positions(self, ids: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pos(self.embed(ids) * math.sqrt(self.cfg.d_model)))

    def load_ours(self, ours: Transformer) -> None:
        """Copy our weights in (the same mapping as the parity tests)."""
        self.embed.weight.data.copy_(ours.src_embed.weight)
        for prefix, layers, stack in (("encoder", ours.encoder, self.transformer.encoder),
                                      ("decoder", ours.decoder, self.transformer.decoder)):
            for a, b in zip(layers, stack.layers):
                for mine, theirs in ((a.self_attn, b.self_attn), (getattr(a, "cross_attn", None),
                                                                   getattr(b, "multihead_attn", None))):
                    if mine is None:
                        continue
                    theirs.in_proj_weight.data.copy_(mine.in_proj.weight)
                    theirs.in_proj_bias.data.copy_(mine.in_proj.bias)
                    theirs.out_proj.load_state_dict(mine.out_proj.state_dict())
                b.linear1.load_state_dict(a.ff.linear1.state_dict())
                b.linear2.load_state_dict(a.ff.linear2.state_dict())
                for i in (1, 2, 3):
                    if hasattr(b, f"norm{i}"):
                        getattr(b, f"norm{i}").load_state_dict(getattr(a, f"norm{i}").state_dict())
            stack.norm.load_state_dict((ours.enc_norm if prefix == "encoder" else ours.dec_norm).state_dict())


@torch.no_grad()
def reference_greedy(model: TorchTransformer, src: torch.Tensor, max_len: int) -> list[list[int]]:
    """Greedy decoding with nn.Transformer: the whole prefix through the decoder at every step."""
    memory = model.transformer.encoder(model.embed_positions(src), src_key_padding_mask=src == PAD)
    tokens = torch.full((src.size(0), 1), BOS, dtype=torch.long)
    done = torch.zeros(src.size(0), dtype=torch.bool)
    limits = (1.5 * (src != PAD).sum(1)).long() + 10
    for step in range(min(int(limits.max()), max_len)):
        t = tokens.size(1)
        h = model.transformer.decoder(model.embed_positions(tokens), memory,
                                      tgt_mask=~causal_mask(t)[0, 0], memory_key_padding_mask=src == PAD,
                                      tgt_is_causal=True)
        logp = model.generator(h[:, -1]).float().log_softmax(-1)
        logp[:, [PAD, BOS]] = float("-inf")
        logp[step >= limits - 1] = torch.where(torch.arange(logp.size(1)) == EOS, 0.0, float("-inf"))
        nxt = logp.argmax(-1).masked_fill(done, PAD)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        done |= nxt == EOS
        if done.all():
            break
    return [row[: row.index(EOS)] if EOS in row else [i for i in row if i != PAD] for row in tokens[:, 1:].tolist()]


def train_steps(model: nn.Module, opt: torch.optim.Optimizer, batches: list, amp: bool,
                skip_padding: bool = False) -> tuple[float, int]:
    """Seconds and real tokens for one training step per batch (``skip_padding``: logits only at target
    tokens, as yololab's translation task trains)."""
    model.train()
    tokens, t0 = 0, time.perf_counter()
    for src, tgt_in, tgt_out in batches:
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            if skip_padding:
                keep = tgt_out != PAD
                loss, _ = smoothed_loss(model(src, tgt_in, keep), tgt_out[keep], 0.1)
            else:
                loss, _ = smoothed_loss(model(src, tgt_in), tgt_out, 0.1)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int((src != PAD).sum() + (tgt_out != PAD).sum())
    return time.perf_counter() - t0, tokens


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def machine() -> str:
    try:
        name = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines() if line.startswith("Model name"))
    except (StopIteration, OSError):
        name = platform.processor()
    return f"{name}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=str(MULTI30K), help="Multi30K folder")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=3, help="encoder and decoder layers each")
    p.add_argument("--d-ff", type=int, default=1024)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--tokens", type=int, default=6000, help="padded tokens per training batch")
    p.add_argument("--steps", type=int, default=10, help="training steps per side per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--decode-sentences", type=int, default=200, help="validation sentences to decode greedily")
    p.add_argument("--amp", choices=("bf16", "off"), default="bf16", help="autocast for training")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    before = uptime()

    corpus = load_folder(args.data, "en", "de")
    train = corpus.splits["train"]
    tok = Tokenizer.train([s for s, _ in train] + [t for _, t in train], args.vocab_size)
    data = encode_pairs(tok, train, 128)
    batches = [collate(data, b) for b in token_batches(data, args.tokens, seed=0, epoch=0)]
    cfg = TransformerConfig(len(tok), args.d_model, args.heads, args.layers, args.layers, args.d_ff, dropout=0.1)
    torch.manual_seed(0)
    ours = Transformer(cfg)
    ref = TorchTransformer(cfg, ours.src_pos)
    ref.load_ours(ours)
    # (model, logits only at target tokens); the two yololab rows train the same model object in turn
    sides = {"yololab Transformer, logits at target tokens (as trained)": (ours, True),
             "yololab Transformer, logits everywhere": (ours, False),
             "torch.nn.Transformer, logits everywhere": (ref, False)}
    opts = {id(m): torch.optim.AdamW(m.parameters(), lr=1e-4) for m in (ours, ref)}
    amp = args.amp == "bf16"
    times: dict[str, list[float]] = {name: [] for name in sides}
    for m, skip in sides.values():  # warm-up
        train_steps(m, opts[id(m)], batches[:2], amp, skip)
    for r in range(args.rounds):
        chunk = batches[2 + r * args.steps: 2 + (r + 1) * args.steps]
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            m, skip = sides[name]
            seconds, tokens = train_steps(m, opts[id(m)], chunk, amp, skip)
            times[name].append(tokens / seconds)

    # decoding, with the same (fresh) weights in both
    ours_train, ref_train = ours, ref
    torch.manual_seed(1)
    ours = Transformer(TransformerConfig(len(tok), args.d_model, args.heads, args.layers, args.layers, args.d_ff,
                                         dropout=0.1)).eval()
    ref = TorchTransformer(ours.cfg, ours.src_pos).eval()
    ref.load_ours(ours)
    val = corpus.splits["val"][: args.decode_sentences]
    src_ids = encode_pairs(tok, val, 128).src
    decode_batches = [pad([src_ids[i] for i in b]) for b in token_batches(encode_pairs(tok, val, 128), 2000,
                                                                          shuffle=False)]
    decode = {"yololab, KV cache": lambda s: greedy(ours, s),
              "yololab, no cache": lambda s: greedy(ours, s, use_cache=False),
              "torch.nn.Transformer (no cache)": lambda s: reference_greedy(ref, s, 127)}
    dec_times, outputs = {k: [] for k in decode}, {k: [] for k in decode}
    for r in range(2):
        for name, fn in (list(decode.items()) if r % 2 == 0 else list(decode.items())[::-1]):
            t0, out = time.perf_counter(), []
            for s in decode_batches:
                out += fn(s)
            dec_times[name].append(time.perf_counter() - t0)
            outputs[name] = out
    after = uptime()

    print(f"Machine: {machine()}.\nLoad: `{before}` before, `{after}` after.\n")
    print(f"Model: d_model {args.d_model}, {args.heads} heads, {args.layers}+{args.layers} pre-norm layers, "
          f"feed-forward {args.d_ff}, {len(tok)} joint pieces, tied embeddings; ours {num_parameters(ours_train):,} "
          f"parameters, torch.nn.Transformer {num_parameters(ref_train):,}. Training: Multi30K "
          f"en->de batches of about {args.tokens} padded tokens, autocast {args.amp}, AdamW, {args.rounds} rounds x "
          f"{args.steps} steps per side.\n")
    print("| training | median tokens/s | min | max | vs torch.nn.Transformer |\n|---|---:|---:|---:|---:|")
    base = statistics.median(times["torch.nn.Transformer, logits everywhere"])
    for name, tps in times.items():
        print(f"| {name} | {statistics.median(tps):,.0f} | {min(tps):,.0f} | {max(tps):,.0f} | "
              f"{statistics.median(tps) / base:.2f}x |")
    ref_out = outputs["torch.nn.Transformer (no cache)"]
    n_tok = sum(len(o) + 1 for o in ref_out)
    print(f"\n| greedy decoding, {len(val)} sentences, float32 | best s | tokens/s | same tokens as torch |\n"
          "|---|---:|---:|---|")
    for name in decode:
        best = min(dec_times[name])
        same = sum(a == b for a, b in zip(outputs[name], ref_out))
        print(f"| {name} | {best:.2f} | {n_tok / best:,.0f} | {same}/{len(ref_out)} |")


if __name__ == "__main__":
    main()
