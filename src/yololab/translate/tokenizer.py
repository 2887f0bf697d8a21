"""Subword tokenization with sentencepiece: one joint source+target vocabulary, trained on the training split.

The trained model is a few hundred kB of bytes (``Tokenizer.proto``) kept inside every checkpoint, so a
checkpoint alone is enough to translate. Ids 0-3 are fixed: padding, unknown, begin and end of sentence.
Characters never seen in training become the unknown piece (never an error).
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from yololab.errors import WeightsError

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class Tokenizer:
    def __init__(self, proto: bytes):
        import sentencepiece as spm

        if not proto:
            raise WeightsError("the tokenizer model is empty")
        self.proto = bytes(proto)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(self.proto)
        except (RuntimeError, OSError) as e:
            raise WeightsError(f"not a sentencepiece model ({e})") from None
        if (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()) != (PAD, UNK, BOS, EOS):
            raise WeightsError("sentencepiece model with unexpected special ids (expected pad 0, unk 1, bos 2, eos 3)")

    @classmethod
    def train(cls, sentences: Iterable[str], vocab_size: int = 8000, model_type: str = "bpe",
              character_coverage: float = 1.0) -> Tokenizer:
        """Learn a ``model_type`` ("bpe" or "unigram") vocabulary of at most ``vocab_size`` pieces.

        The size is a soft limit: a small corpus (the toy grammar) simply gets fewer pieces.
        """
        import sentencepiece as spm

        out = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=out, vocab_size=vocab_size, model_type=model_type,
            character_coverage=character_coverage, pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
            hard_vocab_limit=False, num_threads=1, minloglevel=2)
        return cls(out.getvalue())

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)

    def pieces(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Ids -> detokenized text (padding, begin and end marks dropped; unknown pieces shown as " ⁇ ")."""
        return self.sp.decode([[i for i in seq if i not in (PAD, BOS, EOS)] for seq in ids])

    def id_to_piece(self, ids: list[int]) -> list[str]:
        return [self.sp.id_to_piece(i) for i in ids]
