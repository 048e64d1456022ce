"""Isolated sign language recognition (ISLR) accuracy: per-instance and per-class top-k (NLA-SLR §2c).

- **per-instance top-k**: percent of test clips whose label is among their k best predictions;
- **per-class top-k**: the mean over classes of each class's top-k recall, where only classes that
  occur in the test labels count (the official ``nanmean``: one WLASL-2000 class has no test clip).

Predictions are given either as scores (N, C) or as ranked label ids (N, K), best first (what a
predictions file holds). Ranking scores uses ``torch.topk``; between equal scores the lower label id
ranks first, so results do not depend on the sort's stability.
"""

from __future__ import annotations

from typing import Sequence

import torch

from visionzoo.core.errors import VisionZooError


def ranked_labels(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(N, C) scores -> (N, min(k, C)) label ids, best first; ties broken towards the lower id."""
    scores = torch.as_tensor(scores, dtype=torch.float64)
    k = min(k, scores.shape[1])
    # a stable descending sort keeps the lower id first among equal scores
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]


def topk_accuracy(predictions: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """{"per_instance_top{k}", "per_class_top{k}"} in percent.

    predictions: (N, C) float scores, or (N, K) integer label ids ranked best first.
    labels: (N,) integer class ids.
    """
    predictions, labels = torch.as_tensor(predictions), torch.as_tensor(labels).long()
    if predictions.ndim != 2 or labels.ndim != 1 or predictions.shape[0] != labels.shape[0]:
        raise VisionZooError(f"top-k accuracy expects predictions (N, C|K) and labels (N,), got "
                             f"{tuple(predictions.shape)} and {tuple(labels.shape)}")
    if labels.numel() == 0:
        raise VisionZooError("top-k accuracy of an empty test set is undefined")
    if predictions.is_floating_point():
        ranked = ranked_labels(predictions, max(ks))
    else:
        ranked = predictions.long()
        if ranked.shape[1] < max(ks):  # a top-5 file cannot tell top-10 hits
            raise VisionZooError(f"top-{max(ks)} accuracy needs at least {max(ks)} ranked labels per clip, "
                                 f"got {ranked.shape[1]}")
    classes, inverse = torch.unique(labels, return_inverse=True)  # only classes present in the test set
    out = {}
    for k in ks:
        hit = (ranked[:, :k] == labels[:, None]).any(1).double()  # (N,)
        per_class = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, inverse, hit)
        per_class /= torch.bincount(inverse, minlength=len(classes))
        out[f"per_instance_top{k}"] = 100.0 * hit.mean().item()
        out[f"per_class_top{k}"] = 100.0 * per_class.mean().item()
    return out
