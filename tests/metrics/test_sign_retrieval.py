"""Sign retrieval R@K / MedR / MnR with several clips per sentence (spec sign_language.md §3c)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionzoo.core.errors import VisionZooError
from visionzoo.metrics.retrieval import retrieval_metrics, sentence_scores


def spec_oracle(sim: np.ndarray, clip_to_text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CiCo protocol with loops and argsort (no ties in the inputs): 0-based T2V and V2T ranks."""
    n_text, n_clip = sim.shape
    t2v = []
    for q in range(n_text):
        per_sentence = [max(sim[q, c] for c in range(n_clip) if clip_to_text[c] == s) for s in range(n_text)]
        order = np.argsort(-np.array(per_sentence))
        t2v.append(int(np.where(order == q)[0][0]))
    v2t = []
    for c in range(n_clip):
        order = np.argsort(-sim[:, c])
        v2t.append(int(np.where(order == clip_to_text[c])[0][0]))
    return np.array(t2v), np.array(v2t)


def test_hand_computed_multi_clip_case():
    # 3 sentences; sentence 1 has clips 1 and 2
    sim = np.array([
        [0.9, 0.1, 0.2, 0.3],
        [0.5, 0.2, 0.8, 0.1],  # its best clip (2) wins the row: T2V rank 0; clip 1 alone would lose
        [0.4, 0.6, 0.0, 0.3],  # own clip 3 (0.3) loses to sentence 1's best (0.6) and sentence 0's (0.4)
    ])
    out = retrieval_metrics(sim, [0, 1, 1, 2], ks=(1, 2))
    # T2V ranks [0, 0, 2]; V2T ranks: clip0 0, clip1 (col [.1,.2,.6]) 1, clip2 0, clip3 (col [.3,.1,.3]) tie
    assert out["t2v_r1"] == pytest.approx(200 / 3) and out["t2v_mnr"] == pytest.approx(5 / 3)
    assert out["t2v_medr"] == 1.0
    # pessimistic: clip 3 ties with sentence 0 at 0.3, so sentence 0 ranks above it: rank 1
    assert out["v2t_r1"] == pytest.approx(50.0) and out["v2t_r2"] == pytest.approx(100.0)
    assert out["v2t_medr"] == pytest.approx(1.5)


def test_t2v_scores_a_sentence_by_its_best_clip():
    sim = torch.tensor([[0.1, 0.7, 0.2], [0.3, 0.4, 0.5]], dtype=torch.float64)
    assert sentence_scores(sim, torch.tensor([0, 0, 1])).tolist() == [[0.7, 0.2], [0.4, 0.5]]


def test_matches_the_protocol_on_random_similarities():
    rng = np.random.default_rng(0)
    clip_to_text = np.concatenate([np.arange(30), rng.integers(0, 30, 15)])  # 15 sentences get 2-3 clips
    sim = rng.normal(size=(30, len(clip_to_text)))
    t2v, v2t = spec_oracle(sim, clip_to_text)
    out = retrieval_metrics(sim, clip_to_text)
    for prefix, ranks in (("t2v_", t2v), ("v2t_", v2t)):
        for k in (1, 5, 10):
            assert out[f"{prefix}r{k}"] == pytest.approx(100 * np.mean(ranks < k))
        assert out[f"{prefix}medr"] == pytest.approx(np.median(ranks) + 1)
        assert out[f"{prefix}mnr"] == pytest.approx(ranks.mean() + 1)


def test_v2t_recall_matches_torchmetrics_hit_rate():
    tm = pytest.importorskip("torchmetrics.retrieval")
    rng = np.random.default_rng(1)
    clip_to_text = np.concatenate([np.arange(20), rng.integers(0, 20, 10)])
    sim = torch.from_numpy(rng.normal(size=(20, len(clip_to_text))))
    out = retrieval_metrics(sim, clip_to_text)
    # one query per clip, candidates = sentences, one relevant candidate
    preds = sim.t().reshape(-1)
    target = torch.from_numpy(np.arange(20)[None, :] == clip_to_text[:, None]).reshape(-1)
    indexes = torch.arange(len(clip_to_text)).repeat_interleave(20)
    for k in (1, 5, 10):
        assert out[f"v2t_r{k}"] == pytest.approx(100 * tm.RetrievalHitRate(top_k=k)(preds, target, indexes).item())


def test_ties_count_against_the_query_by_default():
    out = retrieval_metrics(np.ones((4, 6)), [0, 1, 2, 3, 3, 3])
    assert out["t2v_r1"] == 0.0 and out["t2v_medr"] == 4.0 and out["v2t_r1"] == 0.0


def test_optimistic_ties_equal_the_official_first_position_rule():
    out = retrieval_metrics(np.ones((4, 6)), [0, 1, 2, 3, 3, 3], ties="optimistic")
    assert out["t2v_r1"] == 100.0 and out["v2t_medr"] == 1.0


def test_sentence_without_clip_is_an_error():
    with pytest.raises(VisionZooError, match="1 sentences have no clip"):
        retrieval_metrics(np.zeros((3, 2)), [0, 1])


def test_non_finite_similarities_are_an_error():
    with pytest.raises(VisionZooError, match="NaN or inf"):
        retrieval_metrics(np.array([[np.nan]]), [0])


def test_shape_mismatch_is_an_error():
    with pytest.raises(VisionZooError, match="clip_to_text"):
        retrieval_metrics(np.zeros((2, 3)), [0, 1])


def test_unknown_tie_rule_is_an_error():
    with pytest.raises(VisionZooError, match="unknown tie rule"):
        retrieval_metrics(np.eye(2), [0, 1], ties="random")
