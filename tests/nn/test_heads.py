"""Transformer encoder / decoder stacks for method heads: parity with torch.nn, causality, padding masks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from visionzoo.nn.heads import TransformerDecoder, TransformerEncoder

DIM, HEADS = 32, 4


def seeded(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def decoder() -> TransformerDecoder:
    torch.manual_seed(0)
    return TransformerDecoder(DIM, depth=2, heads=HEADS).eval()


@torch.no_grad()
def test_encoder_matches_torch_transformer_encoder_with_same_weights():
    torch.manual_seed(0)
    ours = TransformerEncoder(DIM, depth=2, heads=HEADS).eval()
    layer = nn.TransformerEncoderLayer(DIM, HEADS, 4 * DIM, dropout=0.0, activation="gelu", layer_norm_eps=1e-6,
                                       batch_first=True, norm_first=True)
    final_norm = nn.LayerNorm(DIM, eps=1e-6)
    peer = nn.TransformerEncoder(layer, num_layers=2, norm=final_norm, enable_nested_tensor=False).eval()
    for block, p in zip(ours.blocks, peer.layers):
        p.self_attn.in_proj_weight.copy_(block.attn.qkv.weight)
        p.self_attn.in_proj_bias.copy_(block.attn.qkv.bias)
        p.self_attn.out_proj.load_state_dict(block.attn.proj.state_dict())
        p.linear1.load_state_dict(block.mlp.fc1.state_dict())
        p.linear2.load_state_dict(block.mlp.fc2.state_dict())
        p.norm1.load_state_dict(block.norm1.state_dict())
        p.norm2.load_state_dict(block.norm2.state_dict())
    peer.norm.load_state_dict(ours.norm.state_dict())
    x = seeded(2, 7, DIM)
    pad = torch.tensor([[False] * 7, [False] * 4 + [True] * 3])
    real = ~pad
    torch.testing.assert_close(ours(x, pad)[real], peer(x, src_key_padding_mask=pad)[real], atol=1e-5, rtol=0)


@torch.no_grad()
def test_decoder_matches_torch_transformer_decoder_with_same_weights(decoder):
    layer = nn.TransformerDecoderLayer(DIM, HEADS, 4 * DIM, dropout=0.0, activation="gelu", layer_norm_eps=1e-6,
                                       batch_first=True, norm_first=True)
    peer = nn.TransformerDecoder(layer, num_layers=2, norm=nn.LayerNorm(DIM, eps=1e-6)).eval()
    for block, p in zip(decoder.blocks, peer.layers):
        p.self_attn.in_proj_weight.copy_(block.attn.qkv.weight)
        p.self_attn.in_proj_bias.copy_(block.attn.qkv.bias)
        p.self_attn.out_proj.load_state_dict(block.attn.proj.state_dict())
        # torch stacks the cross-attention's q, k, v projections; ours keeps q apart from the fused kv
        p.multihead_attn.in_proj_weight.copy_(torch.cat([block.cross_attn.q.weight, block.cross_attn.kv.weight]))
        p.multihead_attn.in_proj_bias.copy_(torch.cat([block.cross_attn.q.bias, block.cross_attn.kv.bias]))
        p.multihead_attn.out_proj.load_state_dict(block.cross_attn.proj.state_dict())
        p.linear1.load_state_dict(block.mlp.fc1.state_dict())
        p.linear2.load_state_dict(block.mlp.fc2.state_dict())
        for i in (1, 2, 3):
            getattr(p, f"norm{i}").load_state_dict(getattr(block, f"norm{i}").state_dict())
    peer.norm.load_state_dict(decoder.norm.state_dict())
    tgt, memory = seeded(2, 6, DIM), seeded(2, 9, DIM, seed=1)
    tgt_pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    mem_pad = torch.tensor([[False] * 9, [False] * 5 + [True] * 4])
    ours = decoder(tgt, memory, tgt_pad, mem_pad)
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)  # torch convention: True = may not attend
    expected = peer(tgt, memory, tgt_mask=causal, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=mem_pad)
    torch.testing.assert_close(ours[~tgt_pad], expected[~tgt_pad], atol=1e-5, rtol=0)


@torch.no_grad()
def test_encoder_outputs_ignore_padded_positions():
    torch.manual_seed(0)
    encoder = TransformerEncoder(DIM, depth=2, heads=HEADS).eval()
    x = seeded(1, 8, DIM)
    pad = torch.tensor([[False] * 5 + [True] * 3])
    changed = x.clone()
    changed[:, 5:] = seeded(1, 3, DIM, seed=2)
    torch.testing.assert_close(encoder(x, pad)[:, :5], encoder(changed, pad)[:, :5], atol=1e-6, rtol=0)
    assert not torch.allclose(encoder(x)[:, :5], encoder(changed)[:, :5], atol=1e-4)  # without the mask they leak


@torch.no_grad()
def test_decoder_is_causal_future_targets_do_not_change_past_outputs(decoder):
    tgt, memory = seeded(2, 8, DIM), seeded(2, 5, DIM, seed=1)
    changed = tgt.clone()
    changed[:, 5:] = seeded(2, 3, DIM, seed=2)
    before, after = decoder(tgt, memory), decoder(changed, memory)
    torch.testing.assert_close(before[:, :5], after[:, :5], atol=1e-6, rtol=0)
    assert not torch.allclose(before[:, 5:], after[:, 5:], atol=1e-4)
    assert not torch.allclose(decoder(tgt, memory, causal=False)[:, :5], decoder(changed, memory, causal=False)[:, :5])


@torch.no_grad()
def test_decoder_ignores_padded_memory_positions(decoder):
    tgt, memory = seeded(1, 4, DIM), seeded(1, 7, DIM, seed=1)
    mem_pad = torch.tensor([[False] * 4 + [True] * 3])
    changed = memory.clone()
    changed[:, 4:] = seeded(1, 3, DIM, seed=3)
    torch.testing.assert_close(
        decoder(tgt, memory, memory_key_padding_mask=mem_pad),
        decoder(tgt, changed, memory_key_padding_mask=mem_pad),
        atol=1e-6, rtol=0,
    )
    assert not torch.allclose(decoder(tgt, memory), decoder(tgt, changed), atol=1e-4)


@torch.no_grad()
def test_decoder_target_padding_hides_pad_tokens_from_real_ones_without_causal_mask(decoder):
    tgt, memory = seeded(1, 6, DIM), seeded(1, 5, DIM, seed=1)
    tgt_pad = torch.tensor([[False] * 4 + [True] * 2])
    changed = tgt.clone()
    changed[:, 4:] = seeded(1, 2, DIM, seed=4)
    before = decoder(tgt, memory, key_padding_mask=tgt_pad, causal=False)
    after = decoder(changed, memory, key_padding_mask=tgt_pad, causal=False)
    torch.testing.assert_close(before[:, :4], after[:, :4], atol=1e-6, rtol=0)


def test_decoder_cross_attends_to_a_memory_of_another_width():
    decoder = TransformerDecoder(DIM, depth=1, heads=HEADS, memory_dim=48)
    out = decoder(seeded(2, 3, DIM), seeded(2, 10, 48))
    assert out.shape == (2, 3, DIM)
    out.sum().backward()
    assert decoder.blocks[0].cross_attn.kv.weight.grad.abs().sum() > 0
