"""SlimCLR loss pieces: MoCo InfoNCE, SEED-style distillation, width weights, slow start, key queue."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError
from visionzoo.methods.ssl.slimclr.loss import (
    distill_soft_ce,
    enqueue,
    moco_infonce,
    slow_start_active,
    width_loss_weights,
)

# ------------------------------------------------------------------------------------------ InfoNCE


def test_infonce_on_a_hand_built_example():
    # positive cosine 1, negatives 0 and -1: logits [1, 0, -1] / T with the target at column 0
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    t = 0.5
    loss, logits = moco_infonce(q, k, queue, t)
    torch.testing.assert_close(logits, torch.tensor([[1.0, 0.0, -1.0]]) / t)
    expected = math.log(math.exp(1 / t) + 1 + math.exp(-1 / t)) - 1 / t
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_infonce_equals_cross_entropy_over_positive_then_queue():
    torch.manual_seed(0)
    q, k = F.normalize(torch.randn(6, 16), dim=1), F.normalize(torch.randn(6, 16), dim=1)
    queue = F.normalize(torch.randn(10, 16), dim=1)
    loss, logits = moco_infonce(q, k, queue, 0.07)
    hand = torch.stack([torch.cat([(q[i] @ k[i]).view(1), queue @ q[i]]) for i in range(6)]) / 0.07
    torch.testing.assert_close(logits, hand)
    torch.testing.assert_close(loss, F.cross_entropy(hand, torch.zeros(6, dtype=torch.long)))


def test_infonce_gives_no_gradient_to_keys_or_queue():
    q = F.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    k = F.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    queue = F.normalize(torch.randn(5, 8), dim=1).requires_grad_()
    moco_infonce(q, k, queue, 0.2)[0].backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None and queue.grad is None


# ------------------------------------------------------------------------------------------ distillation


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    p = F.softmax(logits, dim=-1)
    return -(p * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def test_kd_equals_teacher_entropy_times_t_squared_when_student_matches_teacher():
    torch.manual_seed(0)
    logits = torch.randn(4, 9)
    kd = distill_soft_ce(logits, logits, t_student=2.0, t_teacher=2.0)
    torch.testing.assert_close(kd, _entropy(logits / 2.0) * 4.0)


def test_kd_exceeds_teacher_entropy_when_student_differs():
    torch.manual_seed(0)
    teacher, student = torch.randn(4, 9), torch.randn(4, 9)
    kd = distill_soft_ce(student, teacher, t_student=1.0, t_teacher=1.0)
    assert kd > _entropy(teacher) + 1e-3  # cross-entropy = entropy + KL, KL > 0 for different rows


def test_kd_gradient_vanishes_when_student_matches_teacher():
    torch.manual_seed(0)
    teacher = torch.randn(4, 9)
    student = teacher.clone().requires_grad_()
    distill_soft_ce(student, teacher, 5.0, 5.0).backward()
    assert student.grad.abs().max() < 1e-6


def test_kd_sends_no_gradient_to_the_teacher():
    teacher = torch.randn(4, 9, requires_grad=True)
    student = torch.randn(4, 9, requires_grad=True)
    distill_soft_ce(student, teacher, 1.0, 1.0).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------ schedule


def test_full_width_weight_is_one_plus_the_other_widths():
    assert width_loss_weights([1.0, 0.75, 0.5, 0.25]) == [2.5, 1.0, 1.0, 1.0]
    assert width_loss_weights([0.25, 1.0, 0.5]) == [1.75, 1.0, 1.0]  # ordered widest first


def test_without_reweighting_every_width_weighs_one():
    assert width_loss_weights([1.0, 0.75, 0.5, 0.25], reweight=False) == [1.0, 1.0, 1.0, 1.0]


def test_slow_start_covers_the_first_fraction_of_training():
    assert slow_start_active(0, 200, 0.5) and slow_start_active(99, 200, 0.5)
    assert not slow_start_active(100, 200, 0.5) and not slow_start_active(199, 200, 0.5)
    assert not slow_start_active(0, 200, 0.0)  # no slow start: sub-widths from step 0


def test_slow_start_rejects_a_fraction_outside_zero_one():
    with pytest.raises(ConfigError, match="slim_start_fraction"):
        slow_start_active(0, 100, 1.5)


# ------------------------------------------------------------------------------------------ queue


def test_enqueue_writes_at_the_pointer_and_advances_it():
    queue = torch.zeros(6, 2)
    ptr = enqueue(queue, 0, torch.ones(2, 2))
    assert ptr == 2 and queue[:2].eq(1).all() and queue[2:].eq(0).all()


def test_enqueue_wraps_around_the_end():
    queue = torch.zeros(5, 1)
    keys = torch.tensor([[1.0], [2.0], [3.0]])
    ptr = enqueue(queue, 3, keys)
    assert ptr == 1
    assert queue.squeeze(1).tolist() == [3.0, 0.0, 0.0, 1.0, 2.0]


def test_enqueue_of_more_keys_than_slots_keeps_the_newest():
    queue = torch.zeros(3, 1)
    keys = torch.arange(1.0, 6.0).unsqueeze(1)  # 5 keys, written one by one from slot 1
    ptr = enqueue(queue, 1, keys)
    assert ptr == 0
    assert queue.squeeze(1).tolist() == [3.0, 4.0, 5.0]
