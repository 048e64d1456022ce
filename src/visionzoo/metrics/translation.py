"""Sign language translation (SLT) metrics: corpus BLEU-1..4 and ROUGE-L, as the SLRT papers score them.

Spec (sign_language.md §1c):
- **BLEU-n** is sacrebleu's *raw corpus BLEU* with maximum n-gram order n: no tokenisation (the text
  is already lower-cased and tokenised), "floor" smoothing with value 0 (i.e. none), effective order.
  That is sacrebleu 1.4.4's ``raw_corpus_bleu``; we call sacrebleu 2.x with the same settings.
- **ROUGE-L** is the *mean over sentences* of the sentence-level LCS F-score with **beta = P / R**
  (the TF-nmt / Camgoz SLT definition, not rouge-score's beta = 1.2), times 100.
- ``level="char"`` (CSL-Daily) scores characters: every non-space character becomes a token,
  punctuation included.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from visionzoo.core.errors import VisionZooError


def tokens(sentence: str, level: str = "word") -> list[str]:
    """Word tokens (whitespace split) or, for ``level="char"``, every non-space character."""
    if level == "word":
        return sentence.split()
    if level == "char":
        return [ch for ch in sentence if not ch.isspace()]
    raise VisionZooError(f"unknown text level {level!r}: expected 'word' or 'char'")


def _check_pairs(references: Sequence[str], hypotheses: Sequence[str]) -> None:
    if len(references) != len(hypotheses):
        raise VisionZooError(f"need one hypothesis per reference, got {len(hypotheses)} for {len(references)}")
    if len(references) == 0:
        raise VisionZooError("no sentences to score")


def bleu(references: Sequence[str], hypotheses: Sequence[str], *, level: str = "word",
         max_order: int = 4) -> dict[str, float]:
    """{"bleu1": .., ..., "bleu<max_order>": ..} in percent: raw corpus BLEU with max n-gram order n."""
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as e:  # an optional dependency: pip install visionzoo[sign]
        raise VisionZooError("BLEU needs sacrebleu: pip install 'visionzoo[sign]'") from e
    _check_pairs(references, hypotheses)
    refs = [" ".join(tokens(r, level)) for r in references]
    hyps = [" ".join(tokens(h, level)) for h in hypotheses]
    out = {}
    for n in range(1, max_order + 1):
        metric = BLEU(tokenize="none", smooth_method="floor", smooth_value=0.0, effective_order=True,
                      max_ngram_order=n, force=True)
        out[f"bleu{n}"] = float(metric.corpus_score(hyps, [refs]).score)
    return out


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence; one numpy row per token of ``a`` (O(len a * len b))."""
    if not a or not b:
        return 0
    vocab: dict[str, int] = {}
    ai = np.array([vocab.setdefault(t, len(vocab)) for t in a])
    bi = np.array([vocab.setdefault(t, len(vocab)) for t in b])
    row = np.zeros(len(bi) + 1, dtype=np.int64)
    for t in ai:
        # new[j] = prev[j-1] + 1 on a match, else max(prev[j], new[j-1]); the second term is a running max
        cand = np.maximum(row[1:], np.where(bi == t, row[:-1] + 1, 0))
        row[1:] = np.maximum.accumulate(cand)
    return int(row[-1])


def rouge_l_sentence(reference: Sequence[str], hypothesis: Sequence[str]) -> float:
    """Sentence LCS F-score with beta = P / R: F = (1 + b^2) P R / (R + b^2 P); 0 when nothing matches."""
    lcs = lcs_length(reference, hypothesis)
    if lcs == 0:
        return 0.0
    r, p = lcs / len(reference), lcs / len(hypothesis)
    beta2 = (p / r) ** 2
    return (1 + beta2) * p * r / (r + beta2 * p)


def rouge_l(references: Sequence[str], hypotheses: Sequence[str], *, level: str = "word") -> float:
    """Mean sentence ROUGE-L F (beta = P / R) over the corpus, in percent."""
    _check_pairs(references, hypotheses)
    scores = [rouge_l_sentence(tokens(r, level), tokens(h, level)) for r, h in zip(references, hypotheses)]
    return 100.0 * float(np.mean(scores))


def translation_metrics(references: Sequence[str], hypotheses: Sequence[str], *, level: str = "word") -> dict[str, float]:
    """BLEU-1..4 and ROUGE-L (percent), the SLT table of the TwoStream-SLT paper."""
    return bleu(references, hypotheses, level=level) | {"rouge_l": rouge_l(references, hypotheses, level=level)}
