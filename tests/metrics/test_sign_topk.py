"""ISLR per-instance and per-class top-k accuracy (spec sign_language.md §2c)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionzoo.core.errors import VisionZooError
from visionzoo.metrics.classification import ranked_labels, topk_accuracy


def test_per_instance_and_per_class_differ_on_imbalanced_classes():
    # class 0: 3 clips all right; class 1: 1 clip wrong -> per-instance 75, per-class mean(100, 0) = 50
    ranked = torch.tensor([[0], [0], [0], [0]])
    out = topk_accuracy(ranked, torch.tensor([0, 0, 0, 1]), ks=(1,))
    assert out == {"per_instance_top1": pytest.approx(75.0), "per_class_top1": pytest.approx(50.0)}


def test_topk_counts_a_label_anywhere_in_the_first_k():
    ranked = torch.tensor([[2, 1, 0], [2, 1, 0]])
    out = topk_accuracy(ranked, torch.tensor([1, 0]), ks=(1, 2, 3))
    assert [out[f"per_instance_top{k}"] for k in (1, 2, 3)] == [0.0, 50.0, 100.0]


def test_classes_absent_from_the_test_set_are_skipped():
    scores = torch.zeros(2, 5)
    scores[:, 4] = 1.0  # everything predicted as class 4, which has no test clip
    scores[0, 0] = 2.0
    out = topk_accuracy(scores, torch.tensor([0, 1]), ks=(1,))
    assert out["per_class_top1"] == pytest.approx(50.0)  # mean over classes 0 and 1, not over 5 classes


def test_scores_and_ranked_ids_give_the_same_result():
    g = torch.Generator().manual_seed(0)
    scores, labels = torch.randn(40, 12, generator=g), torch.randint(0, 12, (40,), generator=g)
    assert topk_accuracy(scores, labels) == topk_accuracy(scores.argsort(1, descending=True)[:, :5], labels)


def test_equal_scores_rank_the_lower_label_first():
    assert ranked_labels(torch.tensor([[0.5, 0.9, 0.9, 0.9]]), 2).tolist() == [[1, 2]]


def test_matches_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    scores, labels = rng.normal(size=(200, 10)), rng.integers(0, 8, 200)  # classes 8, 9 never occur
    out = topk_accuracy(torch.from_numpy(scores), torch.from_numpy(labels))
    assert out["per_instance_top5"] == pytest.approx(
        100 * sklearn_metrics.top_k_accuracy_score(labels, scores, k=5, labels=np.arange(10)))
    assert out["per_instance_top1"] == pytest.approx(100 * sklearn_metrics.accuracy_score(labels, scores.argmax(1)))
    with pytest.warns(UserWarning):  # sklearn warns about the predicted-only classes it then ignores
        balanced = sklearn_metrics.balanced_accuracy_score(labels, scores.argmax(1))
    assert out["per_class_top1"] == pytest.approx(100 * balanced)


def test_ranked_ids_shorter_than_k_are_an_error():
    with pytest.raises(VisionZooError, match="top-5 accuracy needs at least 5 ranked labels"):
        topk_accuracy(torch.tensor([[0, 1, 2]]), torch.tensor([0]))


def test_shape_mismatch_is_an_error():
    with pytest.raises(VisionZooError, match="expects predictions"):
        topk_accuracy(torch.zeros(3, 4), torch.tensor([0, 1]))
