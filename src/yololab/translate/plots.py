"""The translation pictures and tables: training curves, attention maps, masks, the BLEU report, decodes.

File names are the seed plan's: ``curves_mt.png``, ``attention_layer{L}_head{H}.png`` (one per decoder
layer and head, each with the encoder self-, decoder self- and cross-attention of that layer and head,
subword tokens on the axes), ``masks_demo.png``, ``bleu_report.png`` and ``decodes.md``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from yololab.fileio import atomic_path, write_text_atomic
from yololab.translate.attention import causal_mask, padding_mask
from yololab.translate.model import Transformer
from yololab.translate.tokenizer import BOS, EOS, PAD, Tokenizer


def _figure(cols: int, figsize: tuple[float, float]):
    """A matplotlib Figure outside pyplot (no global state, any backend) and its row of axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(1, cols)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return Path(path)


# ---------------------------------------------------------------------------------------------- curves


def plot_curves(history: list[dict], path: Path, title: str = "") -> Path:
    """Training loss by epoch, and validation BLEU / chrF against cumulative training minutes.

    ``history`` rows (the engine's results.csv rows): ``epoch``, ``train/loss``, ``epoch_time``
    (seconds of training, validation excluded) and, where validated, ``metrics/bleu``,
    ``metrics/chrf``, ``metrics/val_loss`` and ``metrics/test_bleu``.
    """
    epochs = [r["epoch"] for r in history]
    minutes = np.cumsum([r.get("epoch_time", 0.0) for r in history]) / 60
    fig, (ax1, ax2) = _figure(2, (11, 4))
    ax1.plot(epochs, [r.get("train/loss", np.nan) for r in history], "o-", label="train (label-smoothed)")
    val = [(e, r["metrics/val_loss"]) for e, r in zip(epochs, history) if "metrics/val_loss" in r]
    if val:
        ax1.plot(*zip(*val), "s-", label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax1.xaxis.get_major_locator().set_params(integer=True)
    ax1.legend()
    for key, label, style in (("metrics/bleu", "val BLEU", "o-"), ("metrics/chrf", "val chrF", "^--"),
                              ("metrics/test_bleu", "test BLEU", "s-")):
        pts = [(m, r[key]) for m, r in zip(minutes, history) if key in r]
        if pts:
            ax2.plot(*zip(*pts), style, label=label)
            below = key == "metrics/test_bleu"  # test and val BLEU end close together: one label above, one below
            ax2.annotate(f"{pts[-1][1]:.1f}", pts[-1], textcoords="offset points", xytext=(4, -12 if below else 4))
    ax2.set(xlabel="training minutes (validation excluded)", ylabel="score", title="BLEU / chrF (sacrebleu)")
    ax2.grid(alpha=0.3)
    ax2.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- attention


@torch.no_grad()
def attention_for(model: Transformer, tokenizer: Tokenizer, source: str, target_ids: list[int]
                  ) -> tuple[list[str], list[str], dict[str, list[torch.Tensor]]]:
    """Teacher-force ``target_ids`` after ``source`` and return the source pieces, the target pieces and
    the attention weights of every layer: ``{"encoder": [(heads, S, S)], "decoder": [(heads, T, T)],
    "cross": [(heads, T, S)]}``."""
    src = tokenizer.encode([source])[0][: model.cfg.max_len - 1] + [EOS]
    tgt = [BOS] + target_ids[: model.cfg.max_len - 2]
    model.eval()
    with model.recording_attention():
        model(torch.tensor([src]), torch.tensor([tgt]))
        weights = {k: [w[0].float().cpu() for w in v] for k, v in model.attention_weights().items()}
    src_pieces = tokenizer.id_to_piece(src[:-1]) + ["</s>"]
    tgt_pieces = ["<s>"] + tokenizer.id_to_piece(tgt[1:])
    return src_pieces, tgt_pieces, weights


def _heatmap(ax, w: np.ndarray, rows: list[str], cols: list[str], title: str, cmap: str = "viridis") -> None:
    ax.imshow(w, cmap=cmap, vmin=0, vmax=max(float(w.max()), 1e-6), aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title(title, fontsize=9)


def attention_figure(src_pieces: list[str], tgt_pieces: list[str], weights: dict[str, list[torch.Tensor]],
                     layer: int, head: int):
    """Encoder self-attention (source x source), decoder self-attention (target x target) and
    cross-attention (target x source) of one layer and head (1-based), side by side."""
    fig, axes = _figure(3, (15, 5))
    panels = [("encoder", src_pieces, src_pieces, "encoder self-attention"),
              ("decoder", tgt_pieces, tgt_pieces, "decoder self-attention (causal)"),
              ("cross", tgt_pieces, src_pieces, "cross-attention (target -> source)")]
    for ax, (kind, rows, cols, title) in zip(axes, panels):
        if layer - 1 < len(weights[kind]):
            _heatmap(ax, weights[kind][layer - 1][head - 1].numpy(), rows, cols, title)
        else:  # fewer layers on this side
            ax.axis("off")
    fig.suptitle(f"layer {layer}, head {head}: rows attend to columns")
    return fig


def plot_attention(src_pieces: list[str], tgt_pieces: list[str], weights: dict[str, list[torch.Tensor]],
                   out_dir: Path) -> list[Path]:
    """One ``attention_layer{L}_head{H}.png`` per layer and head (see :func:`attention_figure`)."""
    n_layers = max(len(weights["encoder"]), len(weights["decoder"]))
    n_heads = weights["cross"][0].shape[0]
    return [_save(attention_figure(src_pieces, tgt_pieces, weights, layer, head),
                  Path(out_dir) / f"attention_layer{layer}_head{head}.png")
            for layer in range(1, n_layers + 1) for head in range(1, n_heads + 1)]


# ---------------------------------------------------------------------------------------------- masks


def plot_masks(tokenizer: Tokenizer, sources: list[str], targets: list[str], path: Path) -> Path:
    """What the model may look at, for a padded batch: the source padding mask, the causal mask, the
    decoder self-attention mask of one sentence (causal and padding) and its cross-attention mask."""
    from yololab.translate.batching import pad

    src = pad([ids + [EOS] for ids in tokenizer.encode(sources)])
    tgt = pad([[BOS] + ids for ids in tokenizer.encode(targets)])
    b = int((tgt != PAD).sum(1).argmin())  # the sentence with most target padding
    pm = padding_mask(src, PAD)[:, 0, 0].numpy()
    cm = causal_mask(tgt.size(1))[0, 0].numpy()
    dec = (causal_mask(tgt.size(1)) & padding_mask(tgt, PAD))[b, 0].numpy()
    cross = np.broadcast_to(padding_mask(src, PAD)[b, 0], (tgt.size(1), src.size(1)))
    src_pieces = [p if i != PAD else "<pad>" for p, i in zip(tokenizer.id_to_piece(src[b].tolist()), src[b].tolist())]
    tgt_pieces = [p if i != PAD else "<pad>" for p, i in zip(tokenizer.id_to_piece(tgt[b].tolist()), tgt[b].tolist())]
    fig, axes = _figure(4, (20, 5))
    axes[0].imshow(pm, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    axes[0].set(title="source padding mask (batch x position)", xlabel="source position", ylabel="sentence",
                yticks=range(len(sources)))
    axes[1].imshow(cm, cmap="Greens", vmin=0, vmax=1)
    axes[1].set(title="causal mask", xlabel="key position", ylabel="query position")
    _heatmap(axes[2], dec.astype(float), tgt_pieces, tgt_pieces, f"decoder self-attention mask, sentence {b}",
             "Greens")
    _heatmap(axes[3], cross.astype(float), tgt_pieces, src_pieces, f"cross-attention mask, sentence {b}", "Greens")
    fig.suptitle("masks: green = may attend, white = blocked")
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- BLEU


def plot_bleu_report(results: dict[str, dict], path: Path) -> Path:
    """Corpus BLEU and chrF per split, sentence-BLEU histograms and BLEU by source length, with signatures.

    ``results[split]`` holds ``scores`` (:class:`metrics.Scores`), ``sentence_bleu`` (list) and
    ``src_len`` (source words per sentence).
    """
    from yololab.translate.metrics import corpus_scores

    splits = list(results)
    fig, axes = _figure(3, (16, 4.8))
    x = np.arange(len(splits))
    bleu = [results[s]["scores"].bleu for s in splits]
    chrf = [results[s]["scores"].chrf for s in splits]
    axes[0].bar(x - 0.2, bleu, 0.4, label="BLEU")
    axes[0].bar(x + 0.2, chrf, 0.4, label="chrF")
    for i, (b, c) in enumerate(zip(bleu, chrf)):
        axes[0].text(i - 0.2, b, f"{b:.1f}", ha="center", va="bottom")
        axes[0].text(i + 0.2, c, f"{c:.1f}", ha="center", va="bottom")
    axes[0].set_xticks(x, splits)
    axes[0].set(title="corpus scores", ylim=(0, 105))
    axes[0].legend(loc="lower right")
    for s in splits:
        axes[1].hist(results[s]["sentence_bleu"], bins=20, range=(0, 100), alpha=0.5, label=s)
    axes[1].set(title="sentence BLEU", xlabel="BLEU", ylabel="sentences")
    axes[1].legend()
    for s in splits:
        lens = np.asarray(results[s]["src_len"])
        edges = np.unique(np.percentile(lens, [0, 25, 50, 75, 100]).round())
        centres, scores = [], []
        for lo, hi in itertools.pairwise(edges):
            idx = np.flatnonzero((lens >= lo) & ((lens < hi) | (hi == edges[-1])))
            if len(idx):
                hyp = [results[s]["hypotheses"][i] for i in idx]
                ref = [results[s]["references"][i] for i in idx]
                centres.append((lo + hi) / 2)
                scores.append(corpus_scores(hyp, ref).bleu)
        axes[2].plot(centres, scores, "o-", label=s)
    axes[2].set(title="BLEU by source length (quartiles)", xlabel="source words", ylabel="BLEU")
    axes[2].legend()
    sig = results[splits[0]]["scores"]
    fig.text(0.01, -0.04, f"BLEU signature: {sig.bleu_signature}    chrF signature: {sig.chrf_signature}",
             fontsize=8)
    return _save(fig, path)


def decodes_table(sources: list[str], references: list[str], hypotheses: list[str], sentence_bleu: list[float],
                  path: Path, n: int = 10) -> Path:
    """Markdown: the first ``n`` sentences, then the ``n`` best and ``n`` worst by sentence BLEU."""
    def rows(idx):
        esc = lambda s: s.replace("|", "\\|")
        return [f"| {i} | {esc(sources[i])} | {esc(references[i])} | {esc(hypotheses[i])} | {sentence_bleu[i]:.1f} |"
                for i in idx]

    order = np.argsort(sentence_bleu, kind="stable")
    head = "| # | source | reference | model | sentence BLEU |\n|---:|---|---|---|---:|"
    text = "\n".join([f"### First {n}", head, *rows(range(min(n, len(sources)))), "",
                      f"### Best {n}", head, *rows(order[::-1][:n]), "",
                      f"### Worst {n}", head, *rows(order[:n]), ""])
    return write_text_atomic(path, text + "\n")
