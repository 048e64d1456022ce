"""SLT metrics: raw corpus BLEU-1..4 and ROUGE-L with beta = P / R (spec sign_language.md §1c)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from visionzoo.core.errors import VisionZooError
from visionzoo.metrics.translation import bleu, lcs_length, rouge_l, rouge_l_sentence, tokens, translation_metrics

sacrebleu = pytest.importorskip("sacrebleu")


def test_bleu_matches_hand_computation():
    refs, hyps = ["a b c e", "x y z"], ["a b c d", "x y"]
    # unigrams 5/6, bigrams 3/4; hyp 6 words vs ref 7 words: BP = exp(1 - 7/6)
    bp = math.exp(1 - 7 / 6)
    scores = bleu(refs, hyps, max_order=2)
    assert scores["bleu1"] == pytest.approx(100 * bp * 5 / 6)
    assert scores["bleu2"] == pytest.approx(100 * bp * math.sqrt(5 / 6 * 3 / 4))


def test_bleu4_equals_sacrebleu_raw_corpus_bleu():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(8)]
    refs = [" ".join(rng.choice(words, 12)) for _ in range(30)]
    hyps = [" ".join(rng.choice(words, rng.integers(6, 14))) for _ in range(30)]
    want = sacrebleu.raw_corpus_bleu(hyps, [refs], smooth_value=0.0).score
    assert bleu(refs, hyps)["bleu4"] == pytest.approx(want)


def test_bleu_is_not_smoothed():
    scores = bleu(["a b c d e"], ["a b x c d"])  # no 4-gram and no 3-gram matches
    assert scores["bleu3"] == 0.0 and scores["bleu4"] == 0.0 and scores["bleu1"] == pytest.approx(80.0)


def test_bleu_does_not_tokenise_punctuation():
    # the texts are pre-tokenised: "regen." is one token, unlike sacrebleu's default 13a tokeniser
    assert bleu(["morgen regen ."], ["morgen regen."], max_order=1)["bleu1"] < 60.0


def test_char_level_scores_every_character_and_ignores_spaces():
    assert tokens("你好 世界。", "char") == ["你", "好", "世", "界", "。"]
    assert bleu(["你好世界。"], ["你好 世界 。"], level="char")["bleu4"] == pytest.approx(100.0)
    assert bleu(["你好世界。"], ["你好世界。"])["bleu1"] == pytest.approx(100.0)
    assert bleu(["你好世界。"], ["你好世界"])["bleu1"] == 0.0  # word level: one different token


def test_rouge_l_matches_hand_computation():
    # LCS("a b c d", "a c d e f") = 3: R = 3/4, P = 3/5, beta = P/R = 0.8
    r, p, beta2 = 0.75, 0.6, 0.64
    assert rouge_l_sentence("a b c d".split(), "a c d e f".split()) == pytest.approx(
        (1 + beta2) * r * p / (r + beta2 * p))


def test_rouge_l_with_equal_precision_and_recall_is_that_value():
    assert rouge_l_sentence("a b c d".split(), "a x c d".split()) == pytest.approx(0.75)


def test_rouge_l_differs_from_fixed_beta_1_2():
    r, p = 0.75, 0.6
    fixed = (1 + 1.44) * r * p / (r + 1.44 * p)
    assert rouge_l_sentence("a b c d".split(), "a c d e f".split()) != pytest.approx(fixed)


def test_rouge_l_is_the_mean_of_sentence_scores():
    assert rouge_l(["a b c", "d e f g h i"], ["a b c", "x"]) == pytest.approx(50.0)


def test_rouge_l_of_an_empty_hypothesis_is_zero():
    assert rouge_l(["a b"], [""]) == 0.0


def test_lcs_length_matches_plain_dp():
    rng = np.random.default_rng(1)
    for _ in range(100):
        a, b = list(rng.choice(list("abcd"), rng.integers(0, 9))), list(rng.choice(list("abcd"), rng.integers(0, 9)))
        t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
        assert lcs_length(a, b) == t[-1][-1]


def test_translation_metrics_reports_the_paper_table():
    assert set(translation_metrics(["a b"], ["a b"])) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"}


def test_unknown_level_is_an_error():
    with pytest.raises(VisionZooError, match="unknown text level 'byte'"):
        rouge_l(["a"], ["a"], level="byte")


def test_mismatched_corpus_sizes_are_an_error():
    with pytest.raises(VisionZooError, match="one hypothesis per reference"):
        bleu(["a", "b"], ["a"])
