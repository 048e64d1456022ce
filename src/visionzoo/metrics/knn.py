"""Weighted k-NN classification on frozen features (InstDisc / DINO style), the cheap SSL probe."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor, *, k: int = 20,
                temperature: float = 0.1, num_classes: int | None = None, chunk: int = 1024) -> torch.Tensor:
    """Class scores (N_test, C) from the k nearest train features by cosine, weighted by exp(sim / T)."""
    num_classes = int(train_labels.max()) + 1 if num_classes is None else num_classes
    train = F.normalize(train_feats.float(), dim=1)
    k = min(k, train.shape[0])
    scores = []
    for start in range(0, test_feats.shape[0], chunk):
        q = F.normalize(test_feats[start : start + chunk].float(), dim=1)
        sim, idx = (q @ train.t()).topk(k, dim=1)  # (n, k)
        weights = (sim / temperature).exp()
        onehot = F.one_hot(train_labels[idx], num_classes).float()  # (n, k, C)
        scores.append((weights.unsqueeze(-1) * onehot).sum(1))
    return torch.cat(scores)


def knn_accuracy(train_feats, train_labels, test_feats, test_labels, *, k: int = 20, temperature: float = 0.1) -> float:
    """Top-1 accuracy in percent."""
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    pred = knn_predict(train_feats, train_labels, test_feats, k=k, temperature=temperature,
                       num_classes=num_classes).argmax(1)
    return 100.0 * (pred == test_labels).float().mean().item()
