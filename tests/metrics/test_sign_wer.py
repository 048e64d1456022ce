"""WER with sclite costs and the Phoenix cleanups (spec sign_language.md §1c)."""

from __future__ import annotations

import numpy as np
import pytest

from visionzoo.core.errors import VisionZooError
from visionzoo.metrics.wer import CLEANUP_RULES, SCLITE_COSTS, UNIT_COSTS, align_counts, clean_glosses, wer

jiwer = pytest.importorskip("jiwer")

VOCAB = [f"G{i}" for i in range(40)]


def naive_counts(ref: list[str], hyp: list[str], sub=4, ins=3, dele=3) -> tuple[int, int, int]:
    """The spec's scorer written as plainly as possible: full DP table, then a backtrace preferring
    match, substitution, insertion, deletion. Returns (S, D, I)."""
    n, m = len(ref), len(hyp)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                d[i][j] = j * ins + i * dele
                continue
            diag = d[i - 1][j - 1] + (0 if ref[i - 1] == hyp[j - 1] else sub)
            d[i][j] = min(diag, d[i - 1][j] + dele, d[i][j - 1] + ins)
    s = de = it = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i and j and ref[i - 1] == hyp[j - 1] and d[i][j] == d[i - 1][j - 1]:
            i, j = i - 1, j - 1
        elif i and j and d[i][j] == d[i - 1][j - 1] + sub:
            s, i, j = s + 1, i - 1, j - 1
        elif j and d[i][j] == d[i][j - 1] + ins:
            it, j = it + 1, j - 1
        else:
            de, i = de + 1, i - 1
    return s, de, it


def random_pairs(rng, count: int, vocab: int = 6, max_len: int = 12) -> tuple[list[str], list[str]]:
    refs = [" ".join(rng.choice(VOCAB[:vocab], rng.integers(1, max_len))) for _ in range(count)]
    hyps = [" ".join(rng.choice(VOCAB[:vocab], rng.integers(0, max_len))) for _ in range(count)]
    return refs, hyps


def sparse_edits(rng, ref: list[str], edits: int) -> list[str]:
    hyp = list(ref)
    for _ in range(edits):
        op, pos = rng.integers(3), int(rng.integers(0, len(hyp) + 1))
        if op == 0 and pos < len(hyp):
            hyp[pos] = VOCAB[rng.integers(len(VOCAB))]
        elif op == 1 and pos < len(hyp):
            del hyp[pos]
        else:
            hyp.insert(pos, VOCAB[rng.integers(len(VOCAB))])
    return hyp


def test_hand_computed_substitution_and_insertion():
    r = wer(["A B C D"], ["A X C D E"])
    assert (r.substitutions, r.deletions, r.insertions, r.hits) == (1, 0, 1, 3)
    assert r.wer == pytest.approx(50.0)


def test_sclite_costs_prefer_shift_over_many_substitutions():
    # unit costs: 5 substitutions (5 < 6); sclite: 3 deletions + 3 insertions (18 < 20)
    sclite = wer(["A B C D E"], ["D E X Y Z"])
    unit = wer(["A B C D E"], ["D E X Y Z"], costs=UNIT_COSTS)
    assert (sclite.substitutions, sclite.deletions, sclite.insertions) == (0, 3, 3)
    assert sclite.wer == pytest.approx(120.0)
    assert (unit.substitutions, unit.deletions, unit.insertions) == (5, 0, 0)


def test_counts_match_plain_dp_with_documented_tie_breaking():
    rng = np.random.default_rng(0)
    refs, hyps = random_pairs(rng, 300, vocab=4)
    got = align_counts([r.split() for r in refs], [h.split() for h in hyps], SCLITE_COSTS)
    want = np.array([naive_counts(r.split(), h.split()) for r, h in zip(refs, hyps)])
    np.testing.assert_array_equal(got[:, :3], want)


def test_unit_costs_equal_jiwer_on_random_pairs():
    rng = np.random.default_rng(1)
    refs, hyps = random_pairs(rng, 300)
    ours = wer(refs, hyps, costs=UNIT_COSTS)
    theirs = jiwer.process_words(refs, hyps)
    assert ours.wer == pytest.approx(100.0 * theirs.wer, abs=1e-9)
    per_sentence = [jiwer.process_words(r, h) for r, h in zip(refs[:50], hyps[:50])]
    np.testing.assert_array_equal(ours.per_sentence[:50, :3].sum(1),
                                  [o.substitutions + o.deletions + o.insertions for o in per_sentence])


def test_sclite_costs_equal_jiwer_when_sentences_have_at_most_two_errors():
    # sclite cost >= 3 * errors and the edit-distance alignment costs <= 4 * E, so an alignment with
    # more errors than E can only win when 3 * (E + 1) <= 4 * E, i.e. E >= 3: below that they coincide.
    rng = np.random.default_rng(2)
    refs = [list(rng.choice(VOCAB, rng.integers(3, 15))) for _ in range(300)]
    hyps = [sparse_edits(rng, r, int(rng.integers(0, 3))) for r in refs]
    refs_s, hyps_s = [" ".join(r) for r in refs], [" ".join(h) for h in hyps]
    ours = wer(refs_s, hyps_s)
    theirs = [jiwer.process_words(r, h) for r, h in zip(refs_s, hyps_s)]
    np.testing.assert_array_equal(ours.per_sentence[:, :3].sum(1),
                                  [o.substitutions + o.deletions + o.insertions for o in theirs])


def test_sclite_errors_lie_between_edit_distance_and_four_thirds_of_it():
    rng = np.random.default_rng(3)
    refs, hyps = random_pairs(rng, 300)
    ours = wer(refs, hyps).per_sentence[:, :3].sum(1)
    edit = np.array([jiwer.process_words(r, h).wer * len(r.split()) for r, h in zip(refs, hyps)]).round()
    assert (ours >= edit).all() and (3 * ours <= 4 * edit).all()
    assert (ours > edit).any()  # on random pairs the two do part


def test_wer_is_corpus_level_not_mean_of_sentences():
    r = wer(["A", "A B C D E F G H I"], ["X", "A B C D E F G H I"])
    assert r.wer == pytest.approx(10.0)  # 1 error / 10 glosses, not mean(100, 0) = 50


def test_empty_hypothesis_is_all_deletions():
    r = wer(["A B C"], [""])
    assert (r.deletions, r.wer) == (3, pytest.approx(100.0))


def test_long_sentences_do_not_overflow():
    # the official uint8 DP matrix wraps at 255; 300 deletions cost 900
    r = wer([" ".join(["A"] * 300)], [""])
    assert r.deletions == 300


def test_glosses_are_upper_cased_before_scoring():
    assert wer(["regen wind"], ["REGEN WIND"]).wer == 0.0


def test_cleanup_applies_to_both_reference_and_hypothesis():
    ref, hyp = ["loc-NORD REGEN"], ["NORD REGEN"]
    assert wer(ref, hyp, cleanup="phoenix2014").wer == 0.0
    assert wer(ref, hyp).wer == pytest.approx(50.0)


# one case per rule: (dataset, rule name, input, expected)
RULE_CASES = [
    ("phoenix2014", "strip_prefix_loc", "loc-NORD WIND", "NORD WIND"),
    ("phoenix2014", "strip_prefix_cl", "cl-KOMMEN", "KOMMEN"),
    ("phoenix2014", "strip_prefix_qu", "qu-WAS", "WAS"),
    ("phoenix2014", "strip_prefix_poss", "poss-EUCH", "EUCH"),
    ("phoenix2014", "strip_prefix_lh", "lh-SONNE", "SONNE"),
    ("phoenix2014", "fix_sonne", "S0NNE SCHEINEN", "SONNE SCHEINEN"),
    ("phoenix2014", "fix_haben2", "HABEN2 REGEN", "HABEN REGEN"),
    ("phoenix2014", "drop_emotion", "REGEN __EMOTION__ WIND", "REGEN WIND"),
    ("phoenix2014", "drop_pu", "__PU__ REGEN", "REGEN"),
    ("phoenix2014", "drop_lefthand", "REGEN __LEFTHAND__", "REGEN"),
    ("phoenix2014", "join_wie_aussehen", "MORGEN WIE AUSSEHEN", "MORGEN WIE-AUSSEHEN"),
    ("phoenix2014", "zeigen_bildschirm", "ZEIGEN WETTER", "ZEIGEN-BILDSCHIRM WETTER"),
    ("phoenix2014", "join_spelled_letters", "HEUTE A B C WIND", "HEUTE A+B+C WIND"),
    ("phoenix2014", "drop_raum_suffix", "NORDRAUM RAUM", "NORD RAUM"),
    ("phoenix2014", "drop_plusplus", "WOLKE-PLUSPLUS", "WOLKE"),
    ("phoenix2014", "squeeze_spaces", "REGEN __PU__ WIND", "REGEN WIND"),
    ("phoenix2014", "merge_repeats", "REGEN REGEN REGEN WIND REGEN", "REGEN WIND REGEN"),
    ("phoenix2014t", "drop_markers", "__ON__ REGEN __EPENTHESIS__ __OFF__", "REGEN"),
    ("phoenix2014t", "strip_prefix_loc", "loc-SUED", "SUED"),
    ("phoenix2014t", "strip_prefix_cl", "cl-KOMMEN", "KOMMEN"),
    ("phoenix2014t", "join_wie_aussehen", "WIE AUSSEHEN", "WIE-AUSSEHEN"),
    ("phoenix2014t", "join_spelled_letters", "SCH A NN E", "SCH+A+NN+E"),
    ("phoenix2014t", "drop_raum_suffix", "SUEDRAUM", "SUED"),
    ("phoenix2014t", "drop_plusplus", "REGEN-PLUSPLUS", "REGEN"),
    ("phoenix2014t", "squeeze_spaces", "REGEN   WIND", "REGEN WIND"),
    ("phoenix2014t", "merge_repeats", "WIND WIND", "WIND"),
]


@pytest.mark.parametrize("dataset,rule,text,expected", RULE_CASES, ids=[f"{d}-{r}" for d, r, *_ in RULE_CASES])
def test_cleanup_rule(dataset, rule, text, expected):
    assert rule in {name for name, *_ in CLEANUP_RULES[dataset]}
    assert clean_glosses(text, dataset) == expected


def test_every_cleanup_rule_has_a_case():
    for dataset, rules in CLEANUP_RULES.items():
        covered = {r for d, r, *_ in RULE_CASES if d == dataset}
        assert {name for name, *_ in rules} == covered, dataset


def test_phoenix2014t_keeps_the_phoenix2014_only_fixes():
    assert clean_glosses("S0NNE HABEN2 poss-EUCH ZEIGEN", "phoenix2014t") == "S0NNE HABEN2 POSS-EUCH ZEIGEN"


def test_spelled_letters_join_onto_an_already_joined_run():
    assert clean_glosses("A+B C REGEN", "phoenix2014") == "A+B+C REGEN"


def test_prefixes_are_stripped_only_at_the_start_of_a_gloss():
    assert clean_glosses("WOLKE-LOC-X", "phoenix2014") == "WOLKE-LOC-X"


def test_csl_daily_has_no_cleanup():
    assert clean_glosses("你 好 好", "csl-daily") == "你 好 好"


def test_unknown_cleanup_is_an_error():
    with pytest.raises(VisionZooError, match="unknown WER cleanup 'phoenix'"):
        wer(["A"], ["A"], cleanup="phoenix")


def test_mismatched_corpus_sizes_are_an_error():
    with pytest.raises(VisionZooError, match="one hypothesis per reference"):
        wer(["A", "B"], ["A"])


def test_chunked_scoring_gives_the_same_counts_in_input_order():
    rng = np.random.default_rng(4)
    refs, hyps = random_pairs(rng, 50, max_len=20)
    whole, chunked = wer(refs, hyps), wer(refs, hyps, chunk=7)
    np.testing.assert_array_equal(whole.per_sentence, chunked.per_sentence)
    assert whole.wer == chunked.wer
