"""Corpus BLEU and chrF with sacrebleu, the reference implementation, on detokenized text.

sacrebleu tokenizes hypotheses and references itself (``13a``, as WMT's mteval), so scores are
comparable across tokenizers; its signature records every setting that changes a score.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    bleu_detail: str  # "BLEU = 36.1 67.9/43.0/29.1/20.2 (BP = ...)"
    sentences: int

    def as_dict(self) -> dict[str, float]:
        return {"bleu": self.bleu, "chrf": self.chrf}


def corpus_scores(hypotheses: list[str], references: list[str], lowercase: bool = False) -> Scores:
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    bleu, chrf = BLEU(lowercase=lowercase), CHRF(lowercase=lowercase)
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    return Scores(b.score, c.score, str(bleu.get_signature()), str(chrf.get_signature()), str(b), len(references))


def sentence_bleu(hypotheses: list[str], references: list[str]) -> list[float]:
    """Per-sentence BLEU with exponential smoothing (sacrebleu's ``effective_order``), for tables and histograms."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)
    return [bleu.sentence_score(h, [r]).score for h, r in zip(hypotheses, references)]
