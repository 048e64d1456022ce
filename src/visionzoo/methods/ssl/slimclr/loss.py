"""SlimCLR loss pieces (arXiv 2209.15525, MoCo v2 variant): pure functions, no state.

How they compose into the SlimCLR objective (spec section 3b), for widths sorted descending:
- every width w: ``moco_infonce(q_w, k, queue, T)`` with that width's normalised query and the shared
  full-width keys from the EMA key encoder;
- sub-widths additionally distil from the full width's logits (SEED-style soft cross-entropy,
  ``distill_soft_ce``); sub-width loss = weight_w * ((1 - aux) * InfoNCE_w + aux * KD_w), aux = 0.5;
- weights from ``width_loss_weights``: the full width gets 1 + sum(other widths), sub-widths 1.0;
- slow start: while ``slow_start_active`` only the full width is trained, with weight 1.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError

__all__ = ["moco_infonce", "distill_soft_ce", "width_loss_weights", "slow_start_active", "enqueue"]


def moco_infonce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo InfoNCE: each query against its positive key (index 0) and the queue of negatives.

    q: (B, D) normalised queries; k: (B, D) normalised positive keys; queue: (K, D) normalised negatives.
    Returns (loss, logits) with logits (B, 1 + K) = [q.k | q.queue] / temperature. Keys and queue get no
    gradient (they come from the momentum encoder). ``logits * temperature`` are the raw cosines that the
    official MoCo v2 script distils with KD temperature 5.
    """
    if q.shape != k.shape or q.ndim != 2 or queue.ndim != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"expected q, k (B, D) and queue (K, D), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(queue.shape)}")
    k, queue = k.detach(), queue.detach()
    l_pos = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
    l_neg = q @ queue.t()  # (B, K)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)  # the positive is column 0
    return F.cross_entropy(logits, target), logits


def distill_soft_ce(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, t_student: float, t_teacher: float
) -> torch.Tensor:
    """SEED-style soft cross-entropy -sum softmax(teacher/Tt) * log_softmax(student/Ts), times Ts^2.

    Both logits are (B, N) over the same candidates; the teacher (the full width) is detached. The Ts^2
    factor keeps gradient magnitudes comparable across temperatures (Hinton et al.). Mean over B.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}")
    p_teacher = F.softmax(teacher_logits.detach() / t_teacher, dim=-1)
    log_p_student = F.log_softmax(student_logits / t_student, dim=-1)
    return -(p_teacher * log_p_student).sum(dim=-1).mean() * t_student**2


def width_loss_weights(widths: Iterable[float], reweight: bool = True) -> list[float]:
    """Loss weight per width, widths sorted descending (official ``slim_loss_weighted=5``).

    Re-weighted, the full network gets 1 + sum(other widths), e.g. 2.5 for [1, .75, .5, .25], so the
    shared weights keep following the widest network; every sub-network gets 1.0.
    """
    ordered = sorted((float(w) for w in widths), reverse=True)
    if not ordered:
        raise ConfigError("widths: expected at least one width")
    full = 1.0 + sum(ordered[1:]) if reweight else 1.0
    return [full] + [1.0] * (len(ordered) - 1)


def slow_start_active(step: int, total_steps: int, slim_start_fraction: float) -> bool:
    """True during slow start: the first ``slim_start_fraction`` of training trains the full width only.

    From step ``slim_start_fraction * total_steps`` on it is False and all widths train every step
    (official: ``epoch >= slim_start_epoch`` enables the sub-networks).
    """
    if total_steps <= 0:
        raise ConfigError(f"total_steps: expected a positive step count, got {total_steps}")
    if not 0.0 <= slim_start_fraction <= 1.0:
        raise ConfigError(f"slim_start_fraction: expected a value in [0, 1], got {slim_start_fraction}")
    return step < slim_start_fraction * total_steps


@torch.no_grad()
def enqueue(queue: torch.Tensor, ptr: int | torch.Tensor, keys: torch.Tensor) -> int:
    """Write ``keys`` (B, D) into the ring buffer ``queue`` (K, D) in place from ``ptr``; return the new ptr.

    Wraps around the end of the queue, so K need not be a multiple of B (the official code asserts it).
    With B > K only the newest K keys survive, as if written one by one.
    """
    if keys.ndim != 2 or queue.ndim != 2 or keys.shape[1] != queue.shape[1]:
        raise ValueError(f"expected keys (B, D) and queue (K, D), got {tuple(keys.shape)} and {tuple(queue.shape)}")
    size, n = queue.shape[0], keys.shape[0]
    start = int(ptr)
    if n > size:  # older keys would be overwritten within this same call
        start, keys = (start + n - size) % size, keys[n - size:]
    index = (start + torch.arange(keys.shape[0], device=queue.device)) % size
    queue[index] = keys.detach().to(queue.dtype)
    return (int(ptr) + n) % size
