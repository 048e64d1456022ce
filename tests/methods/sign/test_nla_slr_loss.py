"""NLA-SLR's losses as specifications: exact LA-LS / IMM targets, schedules, EMA coupling, and the mechanism."""

import math

import pytest
import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError
from visionzoo.methods.sign.nla_slr.loss import (ema_beta, ema_couple_, gloss_similarity, imm_candidates,
                                                 imm_targets, imm_weight, language_aware_targets, mix_targets,
                                                 smoothed_targets, soft_cross_entropy, uniform_targets)


def _similarity(n=6, dim=8, seed=0):
    return gloss_similarity(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)))


def test_language_aware_targets_put_one_minus_eps_on_the_label_and_sum_to_one():
    sim = _similarity()
    labels = torch.tensor([0, 3, 5])
    q = language_aware_targets(labels, sim, eps=0.2, tau=0.5)
    assert torch.allclose(q[torch.arange(3), labels], torch.full((3,), 0.8))
    assert torch.allclose(q.sum(1), torch.ones(3))


def test_language_aware_targets_spread_eps_by_softmax_of_similarity_over_tau_off_the_label():
    sim = _similarity()
    q = language_aware_targets(torch.tensor([2]), sim, eps=0.2, tau=0.5)[0]
    others = [j for j in range(6) if j != 2]
    expected = 0.2 * torch.softmax(sim[2, others] / 0.5, dim=0)
    assert torch.allclose(q[others], expected, atol=1e-6)


def test_uniform_targets_match_torch_label_smoothing():
    logits = torch.randn(4, 7)
    labels = torch.tensor([0, 6, 2, 2])
    ours = soft_cross_entropy(logits, uniform_targets(labels, 7, 0.2))
    assert torch.allclose(ours, F.cross_entropy(logits, labels, label_smoothing=0.2), atol=1e-6)


def test_smoothing_none_is_plain_cross_entropy_and_language_needs_embeddings():
    logits, labels = torch.randn(3, 5), torch.tensor([1, 4, 0])
    assert torch.allclose(soft_cross_entropy(logits, smoothed_targets(labels, 5, "none", 0.2, 0.5)),
                          F.cross_entropy(logits, labels), atol=1e-6)
    with pytest.raises(ConfigError, match="gloss embeddings"):
        smoothed_targets(labels, 5, "language", 0.2, 0.5, None)


def test_mixed_targets_give_the_mixed_loss():
    logits, sim = torch.randn(2, 6), _similarity()
    ya, yb, lam = torch.tensor([0, 1]), torch.tensor([4, 1]), 0.3
    qa, qb = language_aware_targets(ya, sim), language_aware_targets(yb, sim)
    mixed = soft_cross_entropy(logits, mix_targets(qa, qb, lam))
    assert torch.allclose(mixed, lam * soft_cross_entropy(logits, qa) + (1 - lam) * soft_cross_entropy(logits, qb))


def test_imm_candidates_are_the_label_then_the_top_scoring_other_classes():
    logits = torch.tensor([[0.1, 5.0, 3.0, 4.0, -1.0]])
    cand = imm_candidates(logits, torch.tensor([1]), k=3)
    assert cand.tolist() == [[1, 3, 2]]
    assert imm_candidates(logits, torch.tensor([1]), k=0).shape == (1, 5)  # K = 0: every class


def test_imm_target_rows_sum_to_one_and_are_all_on_the_label_when_k_is_the_label():
    labels = torch.tensor([2, 0])
    cand = imm_candidates(torch.randn(2, 5), labels, k=0)
    t = imm_targets(cand, F.one_hot(labels, 5).float())  # (B, K, N)
    assert torch.allclose(t.sum(-1), torch.ones(2, 5))
    assert torch.allclose(t[0, 0], F.one_hot(torch.tensor(2), 5).float())  # k = y: 1.0 on y
    k = int(cand[0, 1])
    assert t[0, 1, k] == 0.5 and t[0, 1, 2] == 0.5


def test_imm_targets_under_video_mixup_split_the_label_half_by_lambda():
    base = mix_targets(F.one_hot(torch.tensor([1]), 4).float(), F.one_hot(torch.tensor([3]), 4).float(), 0.7)
    t = imm_targets(torch.tensor([[0]]), base)[0, 0]
    assert torch.allclose(t, torch.tensor([0.5, 0.35, 0.0, 0.15]))


def test_imm_weight_decays_from_one_to_zero_over_its_epochs():
    assert imm_weight(0, 100) == 1.0
    assert math.isclose(imm_weight(50, 100), 0.5)
    assert imm_weight(100, 100) < 1e-12 and imm_weight(150, 100) < 1e-12


def test_ema_beta_goes_from_0_99_to_1():
    assert math.isclose(ema_beta(0, 100), 0.99)
    assert math.isclose(ema_beta(50, 100), 0.995)
    assert math.isclose(ema_beta(100, 100), 1.0)


def test_ema_couple_moves_the_classifier_towards_the_mixup_classifier():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    w0, bias0 = a.weight.clone(), a.bias.clone()
    ema_couple_(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * w0 + 0.1 * b.weight)
    assert torch.allclose(a.bias, 0.9 * bias0 + 0.1 * b.bias)


def _train_toy(targets_fn, x, y, steps=100, seed=0):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 40))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        loss = soft_cross_entropy(model(x), targets_fn(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_language_aware_smoothing_moves_probability_mass_to_semantic_neighbours():
    """Spec §2g mechanism test: 40 classes in 10 groups of 4 with near-identical visuals and related glosses."""
    g = torch.Generator().manual_seed(0)
    group = torch.arange(40) // 4
    centres = torch.randn(10, 32, generator=g)[group] + 0.3 * torch.randn(40, 32, generator=g)
    words = torch.randn(10, 16, generator=g)[group] + 0.3 * torch.randn(40, 16, generator=g)
    sim = gloss_similarity(words)
    y = torch.arange(40).repeat(4)
    x = centres[y] + 0.5 * torch.randn(len(y), 32, generator=g)
    y_test = torch.arange(40).repeat(5)
    x_test = centres[y_test] + 0.5 * torch.randn(len(y_test), 32, generator=g)
    same_group = (group[y_test, None] == group[None]) & (torch.arange(40)[None] != y_test[:, None])

    def neighbour_mass(targets_fn):
        p = _train_toy(targets_fn, x, y)(x_test).softmax(1)
        return (p * same_group).sum(1).mean().item()

    la = neighbour_mass(lambda t: language_aware_targets(t, sim, 0.2, 0.5))
    uni = neighbour_mass(lambda t: uniform_targets(t, 40, 0.2))
    print(f"neighbour mass: LA-LS {la:.3f}, uniform {uni:.3f}")
    assert la - uni >= 0.1, f"LA-LS neighbour mass {la:.3f} vs uniform {uni:.3f}"
