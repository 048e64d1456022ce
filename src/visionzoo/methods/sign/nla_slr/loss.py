"""NLA-SLR's two uses of gloss semantics (spec sign_language.md §2b), plus video mixup targets.

**Language-aware label smoothing (LA-LS).** Instead of spreading the smoothing mass ``eps`` uniformly, it
goes to the classes whose glosses are semantically close to the label y:

    q_y = 1 - eps,    q_j = eps * softmax_{j != y}(S_yj / tau)    (S = cosine similarity of gloss embeddings)

**Inter-modality mixup (IMM).** For a head's visual feature v and candidate classes k (the label plus the
head's current top-(K-1) wrong classes), a blend f_k = v + phi(e_k) is scored by a second classifier W_mix
against the target 0.5 on k + 0.5 on y. Its weight decays as 0.5 (1 + cos(pi e / E_imm)); after every
optimiser step the head's classifier is pulled towards W_mix: W <- beta W + (1 - beta) W_mix with
beta(e) = 1 - 0.01 (cos(pi e / E) + 1) / 2.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError

Smoothing = Literal["language", "uniform", "none"]


def gloss_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """(N, E) gloss embeddings -> (N, N) cosine similarities S_ij."""
    e = F.normalize(embeddings.float(), dim=1)
    return e @ e.T


def language_aware_targets(labels: torch.Tensor, similarity: torch.Tensor, eps: float = 0.2,
                           tau: float = 0.5) -> torch.Tensor:
    """LA-LS target distributions (B, N): 1 - eps on the label, eps spread by softmax_{j != y}(S_yj / tau)."""
    sims = similarity[labels] / tau  # (B, N)
    sims = sims.masked_fill(F.one_hot(labels, similarity.shape[0]).bool(), float("-inf"))
    targets = eps * sims.softmax(dim=1)
    return targets.scatter(1, labels[:, None], 1.0 - eps)


def uniform_targets(labels: torch.Tensor, num_classes: int, eps: float = 0.2) -> torch.Tensor:
    """Uniform label smoothing as ``F.cross_entropy(label_smoothing=eps)``: eps / N on every class, + 1 - eps on y."""
    targets = torch.full((len(labels), num_classes), eps / num_classes, device=labels.device)
    return targets.scatter_add(1, labels[:, None], torch.full_like(targets[:, :1], 1.0 - eps))


def smoothed_targets(labels: torch.Tensor, num_classes: int, kind: Smoothing, eps: float, tau: float,
                     similarity: torch.Tensor | None = None) -> torch.Tensor:
    """(B, N) targets of one of the three label treatments the proxy compares."""
    if kind == "language":
        if similarity is None:
            raise ConfigError("language-aware label smoothing needs gloss embeddings (objective.smoothing=language)")
        return language_aware_targets(labels, similarity, eps, tau)
    if kind == "uniform":
        return uniform_targets(labels, num_classes, eps)
    if kind == "none":
        return F.one_hot(labels, num_classes).float()
    raise ConfigError(f"objective.smoothing: expected 'language', 'uniform' or 'none', got {kind!r}")


def mix_targets(targets_a: torch.Tensor, targets_b: torch.Tensor, lam: float) -> torch.Tensor:
    """Video mixup: the loss lam LS(y_a) + (1 - lam) LS(y_b) equals CE against the mixed targets (CE is linear in q)."""
    return lam * targets_a + (1.0 - lam) * targets_b


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-sum_j q_j log p_j, averaged over all leading dims. logits, targets (..., N)."""
    return -(targets * logits.log_softmax(dim=-1)).sum(-1).mean()


# ------------------------------------------------------------------------------------------ inter-modality mixup
def imm_candidates(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """(B, K) candidate classes: the label first, then the K - 1 highest-scoring other classes (no gradient)."""
    n = logits.shape[1]
    k = n if k <= 0 else min(k, n)
    scores = logits.detach().scatter(1, labels[:, None], float("-inf"))
    others = scores.topk(k - 1, dim=1).indices if k > 1 else labels[:, :0]
    return torch.cat([labels[:, None], others], dim=1)


def imm_targets(candidates: torch.Tensor, base_targets: torch.Tensor) -> torch.Tensor:
    """(B, K, N): 0.5 on candidate k + 0.5 x the sample's label distribution (one-hot y, or its video-mixup mix).

    Rows sum to 1; for k = y (one-hot base) the row is 1.0 on y.
    """
    n = base_targets.shape[1]
    return 0.5 * F.one_hot(candidates, n).float() + 0.5 * base_targets.unsqueeze(1)


def imm_weight(epoch: float, decay_epochs: float = 100.0) -> float:
    """w(e) = 0.5 (1 + cos(pi e / E_imm)), 1 at the start and 0 from ``decay_epochs`` on."""
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, epoch / max(decay_epochs, 1e-9))))


def ema_beta(epoch: float, total_epochs: float) -> float:
    """beta(e) = 1 - 0.01 (cos(pi e / E) + 1) / 2: 0.99 at the start, 1.0 at the end of training."""
    return 1.0 - 0.01 * (math.cos(math.pi * min(1.0, epoch / max(total_epochs, 1e-9))) + 1.0) / 2.0


@torch.no_grad()
def ema_couple_(classifier: torch.nn.Linear, mixed_classifier: torch.nn.Linear, beta: float) -> None:
    """W <- beta W + (1 - beta) W_mix (weights and biases), in place."""
    for p, q in ((classifier.weight, mixed_classifier.weight), (classifier.bias, mixed_classifier.bias)):
        p.mul_(beta).add_(q, alpha=1.0 - beta)
