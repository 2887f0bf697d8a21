"""Translate a split and score it: hypotheses, corpus BLEU / chrF, sentence BLEU; and the files of an evaluation."""

from __future__ import annotations

from pathlib import Path

import torch

from yololab.fileio import write_text_atomic
from yololab.translate.batching import EncodedPairs
from yololab.translate.decode import translate_ids
from yololab.translate.metrics import corpus_scores, sentence_bleu
from yololab.translate.model import Transformer
from yololab.translate.tokenizer import Tokenizer


def evaluate_pairs(model: Transformer, tokenizer: Tokenizer, pairs: list[tuple[str, str]], encoded: EncodedPairs,
                   beam: int = 1, alpha: float = 0.6, max_tokens: int = 4096, details: bool = False) -> dict:
    """Decode ``encoded.src`` and score against the raw reference sentences of ``pairs``.

    Returns ``scores`` (:class:`metrics.Scores`) and ``hypotheses``; with ``details`` also
    ``sources``, ``references``, ``sentence_bleu`` and ``src_len`` (words), for reports.
    """
    hyp_ids = translate_ids(model, encoded.src, beam=beam, alpha=alpha, max_tokens=max_tokens)
    hypotheses = tokenizer.decode(hyp_ids)
    references = [t for _, t in pairs]
    out = {"scores": corpus_scores(hypotheses, references), "hypotheses": hypotheses, "beam": beam, "alpha": alpha}
    if details:
        out.update(sources=[s for s, _ in pairs], references=references,
                   sentence_bleu=sentence_bleu(hypotheses, references), src_len=[len(s.split()) for s, _ in pairs])
    return out


@torch.no_grad()
def teacher_forced_loss(model: Transformer, batches) -> float:
    """Mean token cross-entropy (no smoothing) over collated ``(src, tgt_in, tgt_out)`` batches."""
    from yololab.translate.tokenizer import PAD

    device = next(model.parameters()).device
    total, count = 0.0, 0
    for src, tgt_in, tgt_out in batches:
        src, tgt_in, tgt_out = src.to(device), tgt_in.to(device), tgt_out.to(device)
        logits = model(src, tgt_in).float()
        total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD,
                                                   reduction="sum").item()
        count += int((tgt_out != PAD).sum())
    return total / max(count, 1)


def write_evaluation(results: dict[str, dict], out_dir: Path, model: Transformer, tokenizer: Tokenizer,
                     attention_sentence: int = 0) -> list[Path]:
    """bleu_report.png, decodes.md (first split), ``<split>.hyp`` files, masks_demo.png and the attention maps
    of one sentence of the first split (its model translation teacher-forced)."""
    from yololab.translate import plots

    out_dir = Path(out_dir)
    paths = [plots.plot_bleu_report(results, out_dir / "bleu_report.png")]
    first = next(iter(results.values()))
    paths.append(plots.decodes_table(first["sources"], first["references"], first["hypotheses"],
                                     first["sentence_bleu"], out_dir / "decodes.md"))
    for split, r in results.items():
        paths.append(write_text_atomic(out_dir / f"{split}.hyp", "".join(h + "\n" for h in r["hypotheses"])))
    i = min(attention_sentence, len(first["sources"]) - 1)
    paths.append(plots.plot_masks(tokenizer, first["sources"][i:i + 3], first["references"][i:i + 3],
                                  out_dir / "masks_demo.png"))
    hyp_ids = tokenizer.encode([first["hypotheses"][i]])[0]
    src_pieces, tgt_pieces, weights = plots.attention_for(model, tokenizer, first["sources"][i], hyp_ids)
    paths += plots.plot_attention(src_pieces, tgt_pieces, weights, out_dir)
    return paths


def scores_table(results: dict[str, dict]) -> str:
    """Markdown table of corpus scores per split, with the sacrebleu signatures."""
    lines = ["| split | sentences | decoding | BLEU | chrF |", "|---|---:|---|---:|---:|"]
    for split, r in results.items():
        s = r["scores"]
        dec = "greedy" if r["beam"] == 1 else f"beam {r['beam']}, length penalty {r['alpha']}"
        lines.append(f"| {split} | {s.sentences} | {dec} | {s.bleu:.2f} | {s.chrf:.2f} |")
    s = next(iter(results.values()))["scores"]
    lines += ["", f"sacrebleu BLEU signature `{s.bleu_signature}`, chrF signature `{s.chrf_signature}`"]
    return "\n".join(lines)
