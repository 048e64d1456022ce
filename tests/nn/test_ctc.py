"""CTC utilities: the loss wrapper, greedy and prefix beam-search decoding, Viterbi forced alignment.

Exactness is checked against brute force: on tiny inputs every alignment (all V**T label paths) is
enumerated, so the probability of a label sequence and its best path are known exactly.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError, VisionZooError
from visionzoo.nn.ctc import (
    collapse_repeats,
    ctc_loss,
    forced_align,
    greedy_decode,
    prefix_beam_search,
)


def random_log_probs(seed: int, shape: tuple[int, ...], sharpness: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * sharpness).log_softmax(-1)


def confident_log_probs(seed: int, batch: int, frames: int, vocab: int) -> torch.Tensor:
    """Posteriors of a well-trained head: every frame's arg-max carries > 90% of the mass."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, vocab, (batch, frames), generator=g)
    labels[torch.rand(batch, frames, generator=g) < 0.5] = 0  # blank-heavy, as CTC heads are
    logits = torch.randn(batch, frames, vocab, generator=g, dtype=torch.float64)
    boost = torch.full((batch, frames, 1), 8.0 + math.log(vocab), dtype=torch.float64)
    logits.scatter_add_(-1, labels[..., None], boost)
    lp = logits.log_softmax(-1)
    assert lp.exp().amax(-1).min() > 0.9
    return lp


def brute_force_label_probs(lp: np.ndarray, blank: int = 0) -> dict[tuple[int, ...], float]:
    """log P(y) for every label sequence y: logsumexp over all paths that collapse to y."""
    T, V = lp.shape
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        score = float(sum(lp[t, v] for t, v in enumerate(path)))
        y = tuple(v for v in collapse_repeats(path) if v != blank)
        out[y] = float(np.logaddexp(out.get(y, -np.inf), score))
    return out


def brute_force_best_path(lp: np.ndarray, target: list[int], blank: int = 0) -> tuple[tuple[int, ...], float]:
    T, V = lp.shape
    best, best_path = -np.inf, None
    for path in itertools.product(range(V), repeat=T):
        if [v for v in collapse_repeats(path) if v != blank] == target:
            score = float(sum(lp[t, v] for t, v in enumerate(path)))
            if score > best:
                best, best_path = score, path
    return best_path, best


TINY_CASES = [(seed, 1 + seed % 5, 2 + seed % 2) for seed in range(24)]  # (seed, T <= 5, V <= 3)


# ------------------------------------------------------------------------------------------------ loss

def test_ctc_loss_with_padded_targets_equals_torch_ctc_loss():
    lp = random_log_probs(0, (3, 12, 6)).float()
    targets = torch.tensor([[1, 2, 2, 0], [3, 0, 0, 0], [5, 4, 1, 2]])
    in_lens, tgt_lens = torch.tensor([12, 9, 11]), torch.tensor([3, 1, 4])
    for reduction in ("none", "sum", "mean"):
        ours = ctc_loss(lp, targets, in_lens, tgt_lens, reduction=reduction)
        ref = F.ctc_loss(lp.transpose(0, 1), targets, in_lens, tgt_lens, reduction=reduction, zero_infinity=True)
        torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-6)


def test_ctc_loss_accepts_a_list_of_sequences():
    lp = random_log_probs(1, (2, 10, 5)).float()
    padded = torch.tensor([[1, 2, 3], [4, 0, 0]])
    from_list = ctc_loss(lp, [[1, 2, 3], [4]], reduction="none")
    from_padded = ctc_loss(lp, padded, target_lengths=[3, 1], reduction="none")
    torch.testing.assert_close(from_list, from_padded)


def test_ctc_loss_batchmean_is_the_batch_sum_over_batch_size():
    lp = random_log_probs(2, (4, 8, 5)).float()
    targets = [[1], [2, 3], [4, 4], [1, 2, 3]]
    batchmean = ctc_loss(lp, targets, reduction="batchmean")
    torch.testing.assert_close(batchmean, ctc_loss(lp, targets, reduction="sum") / 4)


def test_ctc_loss_sample_weight_scales_each_sample_before_every_reduction():
    lp = random_log_probs(4, (3, 10, 6)).float()
    targets, lens = torch.tensor([[1, 2, 0], [3, 0, 0], [5, 4, 1]]), torch.tensor([2, 1, 3])
    per = ctc_loss(lp, targets, target_lengths=lens, reduction="none")
    w = torch.tensor([0.5, 0.0, 2.0])
    torch.testing.assert_close(ctc_loss(lp, targets, target_lengths=lens, reduction="none", sample_weight=w), per * w)
    torch.testing.assert_close(ctc_loss(lp, targets, target_lengths=lens, reduction="sum", sample_weight=w),
                               (per * w).sum())
    torch.testing.assert_close(ctc_loss(lp, targets, target_lengths=lens, reduction="batchmean", sample_weight=w),
                               (per * w).sum() / 3)
    torch.testing.assert_close(ctc_loss(lp, targets, target_lengths=lens, reduction="mean", sample_weight=w),
                               (per * w / lens).mean())
    for reduction in ("sum", "mean", "batchmean"):  # all ones = unweighted
        torch.testing.assert_close(
            ctc_loss(lp, targets, target_lengths=lens, reduction=reduction, sample_weight=torch.ones(3)),
            ctc_loss(lp, targets, target_lengths=lens, reduction=reduction))
    with pytest.raises(VisionZooError, match="one weight per sentence"):
        ctc_loss(lp, targets, target_lengths=lens, sample_weight=torch.ones(2))


def test_ctc_loss_zero_infinity_zeroes_impossible_targets():
    lp = random_log_probs(3, (1, 2, 4)).float()  # 3 tokens cannot fit in 2 frames
    assert ctc_loss(lp, [[1, 2, 3]], reduction="sum").item() == 0.0
    assert math.isinf(ctc_loss(lp, [[1, 2, 3]], reduction="sum", zero_infinity=False).item())


def test_ctc_loss_rejects_unknown_reduction():
    with pytest.raises(ConfigError, match="reduction"):
        ctc_loss(random_log_probs(0, (1, 4, 3)), [[1]], reduction="avg")


# ---------------------------------------------------------------------------------------------- greedy

def test_greedy_decode_collapses_repeats_then_drops_blanks():
    frames = [0, 1, 1, 0, 1, 2, 2, 0, 0, 3]  # -> 1 (repeat merged), 1 (new after blank), 2, 3
    lp = F.one_hot(torch.tensor([frames]), 4).double().add(1e-3).log()
    assert greedy_decode(lp) == [[1, 1, 2, 3]]


def test_greedy_decode_ignores_frames_past_each_length():
    lp = F.one_hot(torch.tensor([[1, 0, 2, 3], [2, 2, 0, 1]]), 4).double().add(1e-3).log()
    assert greedy_decode(lp, lengths=[3, 2]) == [[1, 2], [2]]


def test_greedy_decode_honours_a_non_zero_blank():
    lp = F.one_hot(torch.tensor([[3, 1, 3, 1, 1]]), 4).double().add(1e-3).log()
    assert greedy_decode(lp, blank=3) == [[1, 1]]


# ----------------------------------------------------------------------------------------- beam search

def test_beam_one_equals_greedy_on_confident_posteriors():
    # with > 90% of each frame's mass on its arg-max, the best path's prefix is also the best prefix
    # at every step, so a one-prefix beam must follow it
    lp = confident_log_probs(0, batch=8, frames=30, vocab=7)
    beam = [hyps[0].tokens for hyps in prefix_beam_search(lp, beam_size=1)]
    assert beam == greedy_decode(lp)


def test_beam_search_sums_alignments_where_greedy_takes_the_best_path():
    # per frame: blank 0.4, a 0.35, b 0.25. Best path is (blank, blank) -> [] with 0.16, but the
    # prefix [a] collects aa + a- + -a = 0.1225 + 0.14 + 0.14 = 0.4025
    lp = torch.tensor([[0.4, 0.35, 0.25]] * 2, dtype=torch.float64).log()[None]
    assert greedy_decode(lp) == [[]]
    best = prefix_beam_search(lp, beam_size=5)[0][0]
    assert best.tokens == [1]
    assert best.score == pytest.approx(math.log(0.4025), abs=1e-12)


@pytest.mark.parametrize("seed,T,V", TINY_CASES)
def test_every_hypothesis_score_is_the_brute_force_label_probability(seed, T, V):
    lp = random_log_probs(seed, (1, T, V))
    exact = brute_force_label_probs(lp[0].numpy())
    hyps = prefix_beam_search(lp, beam_size=64)[0]  # wide enough to never prune on T <= 5
    assert {tuple(h.tokens) for h in hyps} == set(exact)
    for h in hyps:
        assert h.score == pytest.approx(exact[tuple(h.tokens)], abs=1e-9)


@pytest.mark.parametrize("seed,T,V", TINY_CASES)
def test_top_hypothesis_is_the_brute_force_best_label_sequence(seed, T, V):
    lp = random_log_probs(seed, (1, T, V))
    exact = brute_force_label_probs(lp[0].numpy())
    assert tuple(prefix_beam_search(lp, beam_size=64)[0][0].tokens) == max(exact, key=exact.get)


@pytest.mark.parametrize("seed", range(12))
def test_scores_stay_exact_when_some_labels_have_zero_probability(seed):
    # log 0 = -inf entries kill prefixes mid-search; a dead slot must never be revived by a merge
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand(1, 5, 3, generator=g, dtype=torch.float64)
    probs[torch.rand(1, 5, 3, generator=g) < 0.35] = 0.0
    probs[..., 0] += (probs.sum(-1) == 0)  # keep every frame a distribution
    lp = (probs / probs.sum(-1, keepdim=True)).log()
    exact = {y: s for y, s in brute_force_label_probs(lp[0].numpy()).items() if s > -np.inf}
    hyps = prefix_beam_search(lp, beam_size=64)[0]
    assert {tuple(h.tokens) for h in hyps} == set(exact)
    for h in hyps:
        assert h.score == pytest.approx(exact[tuple(h.tokens)], abs=1e-9)


def test_narrow_beam_scores_are_lower_bounds_of_the_label_probability():
    # a pruned beam loses alignments through dropped prefixes, never invents mass
    for seed in range(6):
        lp = random_log_probs(100 + seed, (1, 5, 3), sharpness=1.0)
        exact = brute_force_label_probs(lp[0].numpy())
        hyps = prefix_beam_search(lp, beam_size=2)[0]
        assert len(hyps) == 2
        for h in hyps:
            assert h.score <= exact[tuple(h.tokens)] + 1e-9


def test_hypotheses_are_sorted_and_distinct():
    lp = random_log_probs(7, (2, 20, 6), sharpness=1.0)
    for hyps in prefix_beam_search(lp, beam_size=8):
        assert len(hyps) == 8
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 8


def test_batched_search_with_padding_equals_searching_each_item_alone():
    lp = random_log_probs(8, (3, 15, 6), sharpness=1.5)
    lengths = [15, 9, 4]
    batched = prefix_beam_search(lp, lengths, beam_size=4)
    for b, n in enumerate(lengths):
        alone = prefix_beam_search(lp[b : b + 1, :n], beam_size=4)[0]
        assert [h.tokens for h in batched[b]] == [h.tokens for h in alone]
        assert [h.score for h in batched[b]] == pytest.approx([h.score for h in alone], abs=1e-9)


def test_a_threshold_that_prunes_nothing_changes_nothing():
    lp = random_log_probs(9, (2, 12, 5), sharpness=1.5)
    exact = prefix_beam_search(lp, beam_size=5)
    pruned = prefix_beam_search(lp, beam_size=5, token_min_logp=-1e30)
    for a, b in zip(exact, pruned):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-9)


def test_token_pruning_keeps_the_top_hypothesis_on_confident_posteriors():
    lp = confident_log_probs(1, batch=6, frames=40, vocab=50)
    exact = [h[0].tokens for h in prefix_beam_search(lp, beam_size=5)]
    assert [h[0].tokens for h in prefix_beam_search(lp, beam_size=5, top_k=2)] == exact
    assert [h[0].tokens for h in prefix_beam_search(lp, beam_size=5, token_min_logp=-5.0)] == exact


def test_threshold_pruning_never_tries_tokens_below_it_except_the_frame_argmax():
    # frame 1 offers token 2 at log prob ~-4.6 (below the threshold), so no hypothesis may contain it
    probs = torch.tensor([[0.1, 0.9, 0.0], [0.99, 0.0, 0.01], [0.1, 0.9, 0.0]], dtype=torch.float64)
    lp = (probs + 1e-12).log()[None]
    assert any(2 in h.tokens for h in prefix_beam_search(lp, beam_size=5)[0])
    assert not any(2 in h.tokens for h in prefix_beam_search(lp, beam_size=5, token_min_logp=-3.0)[0])
    # the arg-max survives any threshold
    assert prefix_beam_search(lp, beam_size=5, token_min_logp=0.0)[0][0].tokens == [1, 1]


def test_collapse_twice_merges_genuine_repeats_like_the_official_decoder():
    # a, blank, a: two genuine identical glosses
    lp = F.one_hot(torch.tensor([[1, 0, 1]]), 3).double().add(1e-4).log()
    assert prefix_beam_search(lp, beam_size=5)[0][0].tokens == [1, 1]
    assert prefix_beam_search(lp, beam_size=5, collapse_twice=True)[0][0].tokens == [1]


def test_blank_may_be_any_class():
    lp = random_log_probs(10, (2, 10, 4), sharpness=1.5)
    perm = torch.tensor([1, 2, 3, 0])  # new class j holds old class perm[j]: blank moves to the last id
    moved = prefix_beam_search(lp[..., perm], beam_size=5, blank=3)
    ref = prefix_beam_search(lp, beam_size=5, blank=0)
    old_to_new = {int(o): n for n, o in enumerate(perm)}
    for a, b in zip(moved, ref):
        assert [h.tokens for h in a] == [[old_to_new[v] for v in h.tokens] for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-9)


def test_length_norm_ranks_by_score_per_token():
    lp = random_log_probs(11, (1, 12, 5), sharpness=1.0)
    raw = prefix_beam_search(lp, beam_size=5)[0]
    normed = prefix_beam_search(lp, beam_size=5, length_norm=True)[0]
    expected = sorted(((h.score / max(len(h.tokens), 1), h.tokens) for h in raw), key=lambda x: -x[0])
    assert [(h.score, h.tokens) for h in normed] == [(pytest.approx(s, abs=1e-12), t) for s, t in expected]


def test_top_hypotheses_match_pyctcdecode_on_confident_posteriors():
    pyctcdecode = pytest.importorskip("pyctcdecode")
    V = 30
    labels = [""] + [chr(ord("a") + i) if i < 26 else chr(0x4E00 + i) for i in range(V - 1)]
    decoder = pyctcdecode.build_ctcdecoder(labels)
    lp = confident_log_probs(2, batch=4, frames=40, vocab=V).float()
    ours = prefix_beam_search(lp, beam_size=5, token_min_logp=-5.0)
    for b in range(4):
        text = decoder.decode_beams(lp[b].numpy(), beam_width=5, token_min_logp=-5.0)[0][0]
        assert ours[b][0].tokens == [labels.index(ch) for ch in text]


def test_beam_search_rejects_bad_arguments():
    lp = random_log_probs(0, (2, 4, 3))
    with pytest.raises(ConfigError, match="beam_size"):
        prefix_beam_search(lp, beam_size=0)
    with pytest.raises(ConfigError, match="blank"):
        prefix_beam_search(lp, blank=3)
    with pytest.raises(VisionZooError, match="lengths"):
        prefix_beam_search(lp, lengths=[4, 5])
    with pytest.raises(VisionZooError, match=r"\(B, T, V\)"):
        prefix_beam_search(lp[0])


# ----------------------------------------------------------------------------------- forced alignment

ALIGN_CASES = [
    (0, 4, 3, [1, 2]),
    (1, 5, 3, [2, 2]),  # a repeat needs a blank between
    (2, 6, 3, [1, 2, 1]),
    (3, 3, 2, [1, 1]),  # exactly len + repeats frames
    (4, 5, 3, []),
    (5, 6, 3, [2]),
]


@pytest.mark.parametrize("seed,T,V,target", ALIGN_CASES)
def test_forced_alignment_equals_the_brute_force_best_path(seed, T, V, target):
    lp = random_log_probs(seed, (T, V))
    path, score = brute_force_best_path(lp.numpy(), target)
    align = forced_align(lp, target)
    assert tuple(align.labels) == path
    assert align.score == pytest.approx(score, abs=1e-9)


def test_alignment_spans_are_contiguous_ordered_and_cover_their_tokens():
    lp = random_log_probs(20, (40, 8), sharpness=1.0)
    target = [3, 5, 5, 1, 7, 3]
    align = forced_align(lp, target)
    assert [v for v in collapse_repeats(align.labels) if v != 0] == target
    assert len(align.spans) == len(target)
    for (start, end), token in zip(align.spans, target):
        assert 0 <= start < end <= 40
        assert all(label == token for label in align.labels[start:end])
    assert all(a[1] <= b[0] for a, b in zip(align.spans, align.spans[1:]))
    covered = {t for s, e in align.spans for t in range(s, e)}
    assert all(align.labels[t] == 0 for t in range(40) if t not in covered)


def test_alignment_score_is_the_sum_of_its_frames_log_probs():
    lp = random_log_probs(21, (25, 6), sharpness=1.0)
    align = forced_align(lp, [2, 4, 4, 1])
    assert align.score == pytest.approx(float(lp[torch.arange(25), torch.tensor(align.labels)].sum()), abs=1e-9)
    for (s, e), token, ts in zip(align.spans, [2, 4, 4, 1], align.token_scores):
        assert ts == pytest.approx(float(lp[s:e, token].sum()), abs=1e-9)


def test_forced_align_rejects_a_target_that_cannot_fit():
    lp = random_log_probs(22, (3, 4))
    with pytest.raises(VisionZooError, match="at least 4 frames"):
        forced_align(lp, [1, 1, 2])  # 3 tokens + 1 repeat needs 4 frames
    with pytest.raises(VisionZooError, match="non-blank"):
        forced_align(lp, [0, 1])
