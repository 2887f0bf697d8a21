"""A trained translation model with its tokenizer, rebuilt from a checkpoint alone.

A translation checkpoint is an ordinary yololab checkpoint whose ``meta`` (the task's
``checkpoint_meta``) holds ``model_kwargs`` (the :class:`TransformerConfig`), ``tokenizer`` (the
sentencepiece model's bytes) and the language pair.
"""

from __future__ import annotations

from pathlib import Path

import torch

from yololab.errors import WeightsError
from yololab.translate.decode import translate_ids
from yololab.translate.model import Transformer, TransformerConfig
from yololab.translate.tokenizer import Tokenizer

MODEL_NAME = "transformer-mt"


class Translator:
    def __init__(self, model: Transformer, tokenizer: Tokenizer, meta: dict | None = None):
        self.model, self.tokenizer, self.meta = model.eval(), tokenizer, meta or {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Translator:
        from yololab.checkpoint.native import load_checkpoint

        ckpt = load_checkpoint(path)
        meta = ckpt.get("meta") or {}
        if ckpt.get("model_name") != MODEL_NAME or "model_kwargs" not in meta:
            raise WeightsError(f"{path}: not a translation checkpoint (model {ckpt.get('model_name')!r}; "
                               f"expected {MODEL_NAME!r} from `yololab translate train`)")
        if not meta.get("tokenizer"):
            raise WeightsError(f"{path}: the checkpoint holds no tokenizer (meta['tokenizer'] is missing or empty), "
                               f"so its token ids cannot be turned into text; use a checkpoint written by "
                               f"`yololab translate train`")
        tokenizer = Tokenizer(meta["tokenizer"])
        cfg = TransformerConfig(**meta["model_kwargs"])
        if cfg.vocab_size != len(tokenizer):
            raise WeightsError(f"{path}: the model has {cfg.vocab_size} token embeddings but its tokenizer "
                               f"{len(tokenizer)} pieces")
        model = Transformer(cfg)
        try:
            model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as e:
            raise WeightsError(f"{path}: weights do not fit the model they describe ({str(e).splitlines()[0]})") \
                from None
        return cls(model.to(device), tokenizer, meta)

    def translate(self, sentences: list[str], beam: int = 5, alpha: float = 0.6, max_tokens: int = 4096) -> list[str]:
        """Source sentences -> detokenized translations (empty input lines give empty output)."""
        from yololab.translate.tokenizer import EOS

        max_src = self.model.cfg.max_len - 1
        ids = [s[:max_src] + [EOS] for s in self.tokenizer.encode(sentences)]
        out = translate_ids(self.model, ids, beam=beam, alpha=alpha, max_tokens=max_tokens)
        return [t if s.strip() else "" for s, t in zip(sentences, self.tokenizer.decode(out))]
