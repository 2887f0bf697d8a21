"""The translation task for the engine: corpus -> sentencepiece -> Transformer, scored with sacrebleu.

The engine owns the loop (AdamW, warmup + inverse-sqrt schedule, bf16 autocast, EMA, checkpoints,
resume); this task supplies the batches (by token count), the label-smoothed loss and validation
by BLEU. An "epoch" is one pass over the training pairs, or ``epoch_batches`` batches of an endless
stream of passes, so that BLEU is measured at regular intervals of training time on a large corpus.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from torch import Tensor, nn

from yololab.engine import Task, TrainConfig, dist
from yololab.errors import ConfigError, WeightsError
from yololab.translate.batching import BatchLoader, EncodedPairs, encode_pairs, token_batches
from yololab.translate.corpus import Corpus, load_corpus
from yololab.translate.model import Transformer, TransformerConfig, num_parameters
from yololab.translate.tokenizer import PAD, Tokenizer
from yololab.translate.translator import MODEL_NAME


def smoothed_loss(logits: Tensor, target: Tensor, smoothing: float) -> tuple[Tensor, Tensor]:
    """Label-smoothed cross-entropy and plain NLL, both mean per target token (padding ignored).

    ``logits`` ``(..., vocab)`` and ``target`` ``(...)``. Smoothing spreads ``smoothing`` of the
    probability mass uniformly over the vocabulary (Szegedy et al. 2016), as
    ``F.cross_entropy(label_smoothing=...)``; one log-softmax, in float32, gives both.
    """
    logp = logits.float().log_softmax(-1).reshape(-1, logits.size(-1))
    target = target.reshape(-1)
    keep = target != PAD
    nll = -logp.gather(1, target[:, None]).squeeze(1)
    loss = (1 - smoothing) * nll - smoothing * logp.mean(-1)
    n = keep.sum().clamp(min=1)
    return (loss * keep).sum() / n, (nll * keep).sum().detach() / n


class TranslationTask(Task):
    name = "translate"

    def __init__(self, cfg: TrainConfig, corpus: dict, model: dict | None = None, vocab_size: int = 5000,
                 spm_type: str = "bpe", max_len: int = 128, label_smoothing: float = 0.1,
                 epoch_batches: int = 0, val_beam: int = 1, test_beam: int = 5, alpha: float = 0.6,
                 eval_test: bool = True):
        super().__init__(cfg)
        checks = {"vocab_size": (vocab_size, vocab_size >= 16, "at least 16"),
                  "max_len": (max_len, max_len >= 4, "at least 4"),
                  "batch": (cfg.batch, cfg.batch >= max_len, f"padded tokens per batch, at least max_len={max_len}"),
                  "label_smoothing": (label_smoothing, 0 <= label_smoothing < 1, "in [0, 1)"),
                  "epoch_batches": (epoch_batches, epoch_batches >= 0, ">= 0"),
                  "val_beam": (val_beam, val_beam >= 1, "at least 1"), "test_beam": (test_beam, test_beam >= 1, "at least 1"),
                  "alpha": (alpha, alpha >= 0, ">= 0")}
        for key, (value, ok, expected) in checks.items():
            if not ok:
                raise ConfigError(f"{key}={value!r}: expected {expected}")
        self.model_args = dict(model or {})
        self.vocab_size, self.spm_type, self.max_len = vocab_size, spm_type, max_len
        self.label_smoothing, self.epoch_batches = label_smoothing, epoch_batches
        self.val_beam, self.test_beam, self.alpha, self.eval_test = val_beam, test_beam, alpha, eval_test
        self.corpus: Corpus = load_corpus(**corpus, seed=cfg.seed)  # bad input fails here, before any run folder
        self.tokenizer: Tokenizer | None = None
        self.model_cfg: TransformerConfig | None = None
        self.encoded: dict[str, EncodedPairs] = {}
        self.final: dict[str, dict] = {}  # the final evaluation of best.pt, per split
        self.final_greedy: dict[str, dict] = {}

    @property
    def max_tokens(self) -> int:
        """Padded tokens per batch: this task reads the engine's ``batch`` as a token count."""
        return self.cfg.batch

    # ------------------------------------------------------------------------------------------ data
    def _prepare(self) -> None:
        """Train the tokenizer on the training split (unless resumed: then it is the checkpoint's), encode."""
        if self.encoded:
            return
        if self.tokenizer is None:
            train = self.corpus.splits["train"]
            self.tokenizer = Tokenizer.train([s for s, _ in train] + [t for _, t in train], self.vocab_size,
                                             self.spm_type)
        self.encoded = {split: encode_pairs(self.tokenizer, pairs, self.max_len)
                        for split, pairs in self.corpus.splits.items()}
        if dist.is_main():
            notes = [f"{s}: {e.truncated} truncated to {self.max_len} tokens" for s, e in self.encoded.items()
                     if e.truncated]
            print(f"{self.corpus.summary()}; {len(self.tokenizer)} subword pieces"
                  + (f"; {'; '.join(notes)}" if notes else ""))

    def build_model(self) -> nn.Module:
        self._prepare()
        if self.model_cfg is None:
            self.model_cfg = TransformerConfig(vocab_size=len(self.tokenizer), max_len=self.max_len, **self.model_args)
        model = Transformer(self.model_cfg)
        if dist.is_main():
            print(f"Transformer: {num_parameters(model):,} parameters, d_model {self.model_cfg.d_model}, "
                  f"{self.model_cfg.enc_layers}+{self.model_cfg.dec_layers} layers, {self.model_cfg.heads} heads")
        return model

    def train_loader(self, epoch: int) -> BatchLoader:
        self._prepare()
        data, seed = self.encoded["train"], self.cfg.seed

        def one_pass(p: int) -> list[list[int]]:
            return token_batches(data, self.max_tokens, seed, p, True, dist.rank(), dist.world_size())

        if not self.epoch_batches:
            return BatchLoader(data, one_pass(epoch))
        # epoch e = batches [e*N, (e+1)*N) of the stream pass 0, pass 1, ... (each pass reshuffled)
        per_pass = len(one_pass(0))
        start, batches = epoch * self.epoch_batches, []
        p, offset = divmod(start, per_pass)
        while len(batches) < self.epoch_batches:
            batches += one_pass(p)[offset:]
            p, offset = p + 1, 0
        return BatchLoader(data, batches[: self.epoch_batches])

    def val_loader(self) -> BatchLoader:
        self._prepare()
        data = self.encoded["val"]
        return BatchLoader(data, token_batches(data, self.max_tokens, shuffle=False))

    # ------------------------------------------------------------------------------------------ training
    def loss(self, model: nn.Module, batch) -> tuple[Tensor, dict[str, Tensor]]:
        src, tgt_in, tgt_out = (t.to(self.device) for t in batch)
        keep = tgt_out != PAD  # logits only where there is a target token
        loss, nll = smoothed_loss(model(src, tgt_in, keep), tgt_out[keep], self.label_smoothing)
        return loss, {"nll": nll}

    def batch_size(self, batch) -> int:
        return int(batch[0].shape[0])

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Validation BLEU / chrF (the fitness) and loss; test BLEU too (``eval_test``), for the curve.

        Decoding runs under the training autocast (bf16 on capable CPUs: about 1.7x faster, BLEU within
        a few hundredths of float32's); the final evaluation of best.pt (``plots``) is float32.
        """
        from yololab.translate.evaluate import evaluate_pairs, teacher_forced_loss

        t0 = time.perf_counter()
        trainer = getattr(self, "trainer", None)
        with trainer.autocast() if trainer is not None else contextlib.nullcontext():
            val = evaluate_pairs(model, self.tokenizer, self.corpus.splits["val"], self.encoded["val"],
                                 self.val_beam, self.alpha, self.max_tokens)
            metrics = {"bleu": val["scores"].bleu, "chrf": val["scores"].chrf,
                       "val_loss": teacher_forced_loss(model, self.val_loader())}
            test = self._test_split()
            if self.eval_test and test:
                r = evaluate_pairs(model, self.tokenizer, self.corpus.splits[test], self.encoded[test],
                                   self.val_beam, self.alpha, self.max_tokens)
                metrics.update(test_bleu=r["scores"].bleu, test_chrf=r["scores"].chrf)
        metrics["val_seconds"] = time.perf_counter() - t0
        metrics["fitness"] = metrics["bleu"]
        return metrics

    def _test_split(self) -> str | None:
        return self.corpus.test_splits[0] if self.corpus.test_splits else None

    # ------------------------------------------------------------------------------------------ outputs
    def plots(self, run_dir: Path, trainer) -> list[Path]:
        """curves_mt.png; then the best checkpoint decoded with beam search on val and test: bleu_report.png,
        decodes.md, attention maps, masks_demo.png."""
        from yololab.translate import plots
        from yololab.translate.evaluate import evaluate_pairs, write_evaluation
        from yololab.translate.translator import Translator

        run_dir = Path(run_dir)
        paths = [plots.plot_curves(trainer.history, run_dir / "curves_mt.png",
                                   f"{self.corpus.name} {self.corpus.src_lang}->{self.corpus.tgt_lang}")]
        best = run_dir / "weights" / "best.pt"
        model = Translator.from_checkpoint(best).model if best.is_file() else None
        if model is None:
            return paths
        splits = [s for s in (self._test_split(), "val") if s]
        self.final = {s: evaluate_pairs(model, self.tokenizer, self.corpus.splits[s], self.encoded[s],
                                        self.test_beam, self.alpha, self.max_tokens, details=True) for s in splits}
        if self.test_beam > 1:  # greedy too: what validation measured, and the anchor's decoding
            self.final_greedy = {s: evaluate_pairs(model, self.tokenizer, self.corpus.splits[s], self.encoded[s], 1,
                                                   self.alpha, self.max_tokens) for s in splits}
        return paths + write_evaluation(self.final, run_dir, model, self.tokenizer)

    def report(self, run_dir: Path, trainer) -> str:
        from yololab.translate.evaluate import scores_table

        if not self.final:
            return ""
        rows = {**{f"{s} (greedy)": r for s, r in self.final_greedy.items()}, **self.final}
        decodes = (Path(run_dir) / "decodes.md").read_text(encoding="utf-8").split("### Best")[0]
        return "\n".join([
            "## Translation", "",
            (f"{self.corpus.summary()}. Tokenizer: sentencepiece {self.spm_type}, {len(self.tokenizer)} pieces, "
            f"trained on the training split. Model: {num_parameters(Transformer(self.model_cfg)):,} parameters "
            f"({self.model_cfg.to_dict()})."), "",
            "Scores of weights/best.pt (chosen by validation BLEU):", "", scores_table(rows), "",
            "![curves](curves_mt.png)", "", "![BLEU report](bleu_report.png)", "",
            "Sample decodes (more in decodes.md):", "", decodes, "",
            "![attention, layer 1 head 1](attention_layer1_head1.png)", "", "![masks](masks_demo.png)", ""])

    # ------------------------------------------------------------------------------------------ checkpoints
    def checkpoint_meta(self) -> dict:
        return {"model_name": MODEL_NAME, "num_classes": None, "model_kwargs": self.model_cfg.to_dict(),
                "tokenizer": self.tokenizer.proto, "src_lang": self.corpus.src_lang,
                "tgt_lang": self.corpus.tgt_lang, "corpus": self.corpus.name}

    def load_checkpoint_meta(self, meta: dict) -> None:
        if not meta.get("tokenizer") or "model_kwargs" not in meta:
            raise WeightsError("cannot resume: the checkpoint holds no tokenizer or model settings")
        self.tokenizer = Tokenizer(meta["tokenizer"])
        self.model_cfg = TransformerConfig(**meta["model_kwargs"])
        self.max_len = self.model_cfg.max_len
