"""TinyMIM's relation targets (spec 2b, 5.3): what the relations are, and the KL that compares them."""

import pytest
import torch

from visionzoo.core.errors import ConfigError
from visionzoo.methods.ssl.tinymim.loss import (feature_distill_loss, relation_distill_loss, relation_kl,
                                                relation_logits, whiten)
from visionzoo.nn.vit import VisionTransformer, block_qkv


def _vit(**kw) -> VisionTransformer:
    torch.manual_seed(0)
    cfg = dict(img_size=16, patch_size=4, embed_dim=32, depth=3, num_heads=4, num_classes=0, pos_embed="sincos")
    return VisionTransformer(**{**cfg, **kw}).eval()


def _qkv(b=2, h=4, n=17, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, h, n, d, generator=g) for _ in range(3))


def test_qk_relation_is_the_blocks_attention_map():
    vit, x = _vit(), torch.randn(2, 3, 16, 16)
    qkv = vit.forward_qkv(x, block=2)
    attn = vit.forward_features(x, return_attention=[2]).attentions[0]  # (B, H, N, N) from the explicit softmax
    torch.testing.assert_close(relation_logits(qkv.q, qkv.k).softmax(-1), attn, atol=1e-6, rtol=1e-5)


def test_qk_relation_equals_softmax_of_scaled_query_key_products():
    q, k, _ = _qkv(d=8)
    expected = torch.softmax(torch.einsum("bhnd,bhmd->bhnm", q, k) / 8**0.5, dim=-1)
    torch.testing.assert_close(relation_logits(q, k).softmax(-1), expected)


def test_relations_are_row_stochastic():
    q, k, v = _qkv()
    for rel in (relation_logits(q, k).softmax(-1), relation_logits(v, v).softmax(-1)):
        assert (rel >= 0).all()
        torch.testing.assert_close(rel.sum(-1), torch.ones(rel.shape[:-1]))


def test_vv_relation_is_symmetric_before_softmax_but_not_after():
    _, _, v = _qkv()
    logits = relation_logits(v, v)
    torch.testing.assert_close(logits, logits.transpose(-2, -1))
    probs = logits.softmax(-1)
    assert not torch.allclose(probs, probs.transpose(-2, -1))  # rows are normalised separately


def test_kl_is_non_negative_and_zero_for_identical_relations():
    q, k, _ = _qkv(seed=1)
    a, b = relation_logits(q, k), relation_logits(k, q) * 3
    assert relation_kl(a, b) > 0 and relation_kl(b, a) > 0
    assert relation_kl(a, a).abs() < 1e-6


def test_kl_matches_its_definition_averaged_over_batch_heads_and_queries():
    t, s = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    p, r = t.softmax(-1), s.softmax(-1)
    expected = (p * (p.log() - r.log())).sum(-1).mean()
    torch.testing.assert_close(relation_kl(t, s), expected)


def test_kl_stays_finite_where_student_probabilities_underflow():
    t = torch.zeros(1, 1, 2, 2)
    s = torch.tensor([[[[0.0, -200.0], [-200.0, 0.0]]]])  # softmax gives exp(-200) = 0 in fp32; log would be -inf
    assert torch.isfinite(relation_kl(t, s))


def test_distill_loss_is_the_one_to_one_sum_of_qk_and_vv_kls():
    t, s = _qkv(seed=2), _qkv(seed=3)
    loss, logs = relation_distill_loss(t, s)
    torch.testing.assert_close(loss, logs["kl_qk"] + logs["kl_vv"])
    vv_only, _ = relation_distill_loss(t, s, qk_weight=0.0)
    torch.testing.assert_close(vv_only, logs["kl_vv"])


def test_only_the_student_side_receives_gradients():
    t = tuple(x.requires_grad_() for x in _qkv(seed=4))
    s = tuple(x.requires_grad_() for x in _qkv(seed=5))
    relation_distill_loss(t, s)[0].backward()
    assert all(x.grad is None for x in t) and all(x.grad is not None for x in s)


def test_head_count_mismatch_is_a_config_error_naming_the_fix():
    with pytest.raises(ConfigError, match="relation_heads"):
        relation_distill_loss(_qkv(h=8), _qkv(h=4))


def test_relations_of_different_widths_compare_when_heads_and_tokens_match():
    # a 64-wide teacher (head dim 8) and a 32-wide student (head dim 4) with 8 heads each: relations are N x N
    loss, _ = relation_distill_loss(_qkv(h=8, d=8), _qkv(h=8, d=4))
    assert torch.isfinite(loss) and loss > 0


def test_student_relation_block_splits_into_another_head_count():
    vit, x = _vit(), torch.randn(2, 3, 16, 16)
    q8 = vit.forward_qkv(x, block=3, num_heads=8).q  # 4-head block read as 8 heads of dim 4
    q4 = vit.forward_qkv(x, block=3).q
    assert q8.shape == (2, 8, 17, 4) and q4.shape == (2, 4, 17, 8)
    torch.testing.assert_close(q8.reshape(2, 4, 2, 17, 4).transpose(2, 3).reshape(2, 4, 17, 8), q4)


def test_head_count_that_does_not_divide_the_width_is_rejected():
    vit = _vit()
    with pytest.raises(ConfigError, match="num_heads=5"):
        block_qkv(vit.blocks[0], torch.randn(1, 17, 32), num_heads=5)


def test_feature_loss_targets_whitened_teacher_tokens():
    teacher = torch.randn(2, 17, 64) * 5 + 3
    assert feature_distill_loss(whiten(teacher), teacher) < 1e-6
    assert feature_distill_loss(teacher, teacher) > 1.0  # raw teacher scale is not the target
