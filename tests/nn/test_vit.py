"""VisionTransformer: parity with timm, MAE masking, taps, attention maps, checkpoint loading."""

from __future__ import annotations

import argparse

import pytest
import timm
import torch
from timm.layers import resample_abs_pos_embed

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.nn.vit import (
    VIT_CONFIGS,
    VisionTransformer,
    ViTConfig,
    convert_mae_state_dict,
    load_timm_state_dict,
    random_masking,
    sincos_2d_pos_embed,
    vit_base_patch16_224,
    vit_large_patch16_224,
)

TINY = dict(img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=10)


def tiny_pair(**overrides) -> tuple[VisionTransformer, torch.nn.Module]:
    """Our tiny ViT and timm's, holding the same random weights, in eval mode."""
    torch.manual_seed(0)
    kw = TINY | overrides
    peer = timm.create_model("vit_base_patch16_224", pretrained=False, **kw).eval()
    ours = VisionTransformer(ViTConfig(**kw)).eval()
    load_timm_state_dict(ours, peer.state_dict())
    return ours, peer


def images(batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


# --- parity with timm ---------------------------------------------------------------------------------------------


@torch.no_grad()
def test_vit_base_logits_match_timm():
    torch.manual_seed(0)
    ours = vit_base_patch16_224().eval()
    # weight_init="skip" saves timm's init time; every tensor is overwritten with ours below
    peer = timm.create_model("vit_base_patch16_224", pretrained=False, weight_init="skip").eval()
    peer.load_state_dict(ours.state_dict())
    x = images(1, 224)
    torch.testing.assert_close(ours(x), peer(x), atol=1e-4, rtol=0)


@torch.no_grad()
def test_tiny_tokens_and_logits_match_timm():
    ours, peer = tiny_pair()
    x = images()
    torch.testing.assert_close(ours.forward_features(x).tokens, peer.forward_features(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours(x), peer(x), atol=1e-5, rtol=0)


@torch.no_grad()
def test_avg_pool_with_fc_norm_matches_timm_mae_head():
    ours, peer = tiny_pair(global_pool="avg")
    assert isinstance(ours.norm, torch.nn.Identity) and isinstance(ours.fc_norm, torch.nn.LayerNorm)
    x = images()
    torch.testing.assert_close(ours(x), peer(x), atol=1e-5, rtol=0)


def test_cls_only_last_block_gives_same_logits_and_gradients_as_full_forward():
    ours, _ = tiny_pair()
    x = images()
    fast = ours(x)
    fast.square().sum().backward()
    fast_grads = {n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None}
    ours.zero_grad()
    full = ours.head(ours.forward_features(x).pooled)
    full.square().sum().backward()
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=0)
    for name, p in ours.named_parameters():
        torch.testing.assert_close(fast_grads[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_base_and_large_parameter_counts_equal_timm():
    factories = {"vit_base_patch16_224": vit_base_patch16_224, "vit_large_patch16_224": vit_large_patch16_224}
    with torch.device("meta"):
        for name, factory in factories.items():
            ours = sum(p.numel() for p in factory().parameters())
            peer = sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters())
            assert ours == peer, name


def test_factories_are_registered_in_vit_configs():
    sizes = ("tiny", "small", "base", "large")
    assert set(VIT_CONFIGS) == {f"vit_{size}_patch16_224" for size in sizes}
    assert VIT_CONFIGS["vit_large_patch16_224"].depth == 24


def test_config_rejects_token_pool_without_class_token():
    with pytest.raises(ConfigError, match="global_pool='token'"):
        ViTConfig(class_token=False, global_pool="token")


# --- sin-cos positional embedding -----------------------------------------------------------------------------------


def test_sincos_pos_embed_layout_is_mae_column_then_row():
    D, H, W = 16, 3, 5
    pe = sincos_2d_pos_embed(D, (H, W), cls_token=True)
    assert pe.shape == (1 + H * W, D)
    assert torch.all(pe[0] == 0)  # cls row
    omega = 1.0 / 10000 ** (torch.arange(D // 4, dtype=torch.float64) / (D // 4))
    row, col = 2, 3
    expected = torch.cat([(col * omega).sin(), (col * omega).cos(), (row * omega).sin(), (row * omega).cos()])
    torch.testing.assert_close(pe[1 + row * W + col], expected.float())


def test_sincos_pos_embed_is_fixed_and_not_trained():
    model = VisionTransformer(ViTConfig(**TINY, pos_embed="sincos"))
    assert not model.pos_embed.requires_grad
    torch.testing.assert_close(model.pos_embed[0], sincos_2d_pos_embed(64, 4, cls_token=True))


# --- masking ----------------------------------------------------------------------------------------------------


def test_random_masking_with_same_noise_matches_hf_vitmae():
    from transformers import ViTMAEConfig
    from transformers.models.vit_mae.modeling_vit_mae import ViTMAEEmbeddings

    noise = torch.rand(3, 16, generator=torch.Generator().manual_seed(0))
    keep, mask, restore = random_masking(3, 16, 0.75, noise=noise)
    hf = ViTMAEEmbeddings(ViTMAEConfig(hidden_size=8, image_size=16, patch_size=4, mask_ratio=0.75))
    seq = torch.arange(16.0).expand(3, 16).unsqueeze(-1)
    hf_kept, hf_mask, hf_restore = hf.random_masking(seq, noise=noise)
    assert torch.equal(keep, hf_kept[..., 0].long())
    assert torch.equal(mask, hf_mask) and torch.equal(restore, hf_restore)


def test_random_masking_is_reproducible_from_a_generator():
    a = random_masking(2, 49, 0.75, generator=torch.Generator().manual_seed(7))
    b = random_masking(2, 49, 0.75, generator=torch.Generator().manual_seed(7))
    c = random_masking(2, 49, 0.75, generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == (2, 12) and a[1].sum(dim=1).tolist() == [37.0, 37.0]


@torch.no_grad()
def test_keep_indices_encode_only_the_kept_patches_plus_cls():
    ours, peer = tiny_pair()
    x = images()
    keep, _, _ = random_masking(2, 16, 0.75, noise=torch.rand(2, 16, generator=torch.Generator().manual_seed(3)))
    out = ours.forward_features(x, keep_indices=keep)
    # reference built from timm's own modules: embed all patches, keep the chosen ones, prepend cls
    patches = peer.patch_embed(x) + peer.pos_embed[:, 1:]
    kept = torch.stack([patches[b, keep[b]] for b in range(2)])
    h = torch.cat([(peer.cls_token + peer.pos_embed[:, :1]).expand(2, -1, -1), kept], dim=1)
    expected = peer.norm(peer.blocks(h))
    assert out.tokens.shape == (2, 1 + 4, 64)
    torch.testing.assert_close(out.tokens, expected, atol=1e-5, rtol=0)


# --- taps and attention maps ------------------------------------------------------------------------------------------


@torch.no_grad()
def test_taps_equal_timm_intermediates_before_final_norm():
    ours, peer = tiny_pair()
    x = images()
    taps = ours.forward_features(x, return_taps=(1, 3)).taps
    spatial, prefix = zip(
        *peer.forward_intermediates(
            x, indices=[0, 2], norm=False, output_fmt="NLC", intermediates_only=True, return_prefix_tokens=True
        )
    )
    for tap, s, p in zip((taps[1], taps[3]), spatial, prefix):
        torch.testing.assert_close(tap, torch.cat([p, s], dim=1), atol=1e-5, rtol=0)


def test_taps_reject_block_numbers_outside_1_to_depth():
    ours, _ = tiny_pair()
    with pytest.raises(ValueError, match="1..3"):
        ours.forward_features(images(), return_taps=(0,))


@torch.no_grad()
def test_attention_maps_are_row_stochastic_and_match_an_explicit_softmax():
    ours, _ = tiny_pair()
    x = images()
    out = ours.forward_features(x, return_taps=(1,), return_attention=(2,))
    (attn,) = out.attentions
    assert attn.shape == (2, 4, 17, 17)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4, 17))
    block = ours.blocks[1]
    q, k, _ = block.attn.qkv(block.norm1(out.taps[1])).reshape(2, 17, 3, 4, 16).permute(2, 0, 3, 1, 4)
    expected = torch.softmax(q @ k.transpose(-1, -2) / 16**0.5, dim=-1)
    torch.testing.assert_close(attn, expected, atol=1e-6, rtol=0)


@torch.no_grad()
def test_requesting_attention_maps_does_not_change_the_tokens():
    ours, _ = tiny_pair()
    x = images()
    plain = ours.forward_features(x)
    with_maps = ours.forward_features(x, return_attention=True)
    assert len(with_maps.attentions) == 3 and plain.attentions == []
    torch.testing.assert_close(with_maps.tokens, plain.tokens, atol=1e-5, rtol=0)


# --- loading -------------------------------------------------------------------------------------------------------


def test_loading_a_224_checkpoint_into_160_resamples_pos_embed_bicubic():
    torch.manual_seed(0)
    peer = timm.create_model("vit_base_patch16_224", pretrained=False, **(TINY | dict(img_size=64)))
    ours = VisionTransformer(ViTConfig(**(TINY | dict(img_size=40))))
    load_timm_state_dict(ours, peer.state_dict())
    expected = resample_abs_pos_embed(peer.pos_embed.detach(), new_size=[5, 5], num_prefix_tokens=1, antialias=False)
    assert ours.pos_embed.shape == (1, 1 + 25, 64)
    torch.testing.assert_close(ours.pos_embed.detach(), expected)


def test_strict_loading_names_unexpected_keys():
    ours, peer = tiny_pair()
    sd = peer.state_dict() | {"dist_token": torch.zeros(1, 1, 64)}
    with pytest.raises(CheckpointError, match="unexpected \\['dist_token'\\]"):
        load_timm_state_dict(ours, sd)


def test_loading_rejects_shape_mismatch_with_key_name():
    ours, peer = tiny_pair()
    sd = peer.state_dict() | {"head.weight": torch.zeros(5, 64)}
    with pytest.raises(CheckpointError, match="head.weight"):
        load_timm_state_dict(ours, sd)


def mae_pretrain_checkpoint(encoder: dict[str, torch.Tensor], decoders: int = 1) -> dict:
    """A synthetic checkpoint in MAE's ``save_model`` layout (DeepMIM numbers its decoders 1..n)."""
    model = {k: v for k, v in encoder.items() if not k.startswith("head.")}
    suffixes = [""] if decoders == 1 else [str(i) for i in range(1, decoders + 1)]
    for s in suffixes:
        model |= {
            f"mask_token{s}": torch.zeros(1, 1, 32),
            f"decoder_embed{s}.weight": torch.zeros(32, 64),
            f"decoder_blocks{s}.0.attn.qkv.weight": torch.zeros(96, 32),
            f"decoder_norm{s}.weight": torch.ones(32),
            f"decoder_pred{s}.weight": torch.zeros(192, 32),
        }
    model["decoder_pos_embed"] = torch.zeros(1, 17, 32)
    return {"model": model, "optimizer": {}, "epoch": 799, "scaler": {}, "args": argparse.Namespace(mask_ratio=0.75)}


@pytest.mark.parametrize("decoders", [1, 4], ids=["mae", "deepmim"])
@torch.no_grad()
def test_mae_pretrain_checkpoint_converts_to_an_encoder_equal_to_timm(decoders):
    _, peer = tiny_pair()
    ckpt = mae_pretrain_checkpoint(peer.state_dict(), decoders)
    encoder = VisionTransformer(ViTConfig(**(TINY | dict(num_classes=0, pos_embed="sincos")))).eval()
    load_timm_state_dict(encoder, convert_mae_state_dict(ckpt))  # strict: nothing missing, nothing extra
    x = images()
    torch.testing.assert_close(encoder.forward_features(x).tokens, peer.forward_features(x), atol=1e-5, rtol=0)


def test_mae_checkpoint_for_finetuning_drops_norm_and_leaves_head_and_fc_norm_missing():
    _, peer = tiny_pair()
    ckpt = mae_pretrain_checkpoint(peer.state_dict())
    finetune = VisionTransformer(ViTConfig(**(TINY | dict(global_pool="avg"))))
    missing, unexpected = load_timm_state_dict(finetune, convert_mae_state_dict(ckpt, fc_norm=True), strict=False)
    # exactly what MAE's main_finetune.py asserts for a global-pool model
    assert set(missing) == {"head.weight", "head.bias", "fc_norm.weight", "fc_norm.bias"} and unexpected == []


def test_global_pool_finetuned_checkpoint_into_token_model_is_an_error():
    ours, peer = tiny_pair(global_pool="avg")
    with pytest.raises(CheckpointError, match="global_pool='avg'"):
        convert_mae_state_dict({"model": peer.state_dict()}, fc_norm=False)
