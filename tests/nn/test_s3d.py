"""S3D backbone: parity with torchvision, the block layout TwoStream-SLR taps, truncation, converters."""

from __future__ import annotations

import pytest
import torch

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.nn.s3d import (
    S3D,
    S3DConfig,
    check_state_dict,
    clip_pool,
    convert_kylemin_s3d,
    convert_torchvision_s3d,
)

tv_video = pytest.importorskip("torchvision.models.video")

# torchvision `features` index that closes each of our five blocks
TV_BLOCK_ENDS = (0, 3, 6, 12, 15)


def _randomise_bn(model: torch.nn.Module) -> None:
    # fresh BN is nearly the identity; random statistics make a swapped or dropped BN visible
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)


@pytest.fixture(scope="module")
def pair() -> tuple[S3D, torch.nn.Module]:
    torch.manual_seed(0)
    peer = tv_video.s3d(weights=None, num_classes=10)
    _randomise_bn(peer)
    ours = S3D(S3DConfig(num_classes=10))
    ours.load_state_dict(convert_torchvision_s3d(peer.state_dict()))
    return ours.eval(), peer.eval()


@torch.no_grad()
def test_block_outputs_equal_torchvision_intermediate_features(pair):
    ours, peer = pair
    taps = {}
    for i in TV_BLOCK_ENDS:
        peer.features[i].register_forward_hook(lambda m, inp, out, i=i: taps.__setitem__(i, out))
    x = torch.randn(1, 3, 16, 112, 112)
    out = ours(x)
    peer.features(x)
    shapes = [(64, 8, 56, 56), (192, 8, 28, 28), (480, 8, 14, 14), (832, 4, 7, 7), (1024, 2, 3, 3)]
    assert [tuple(b.shape[1:]) for b in out.blocks] == shapes
    for ours_block, i in zip(out.blocks, TV_BLOCK_ENDS):
        torch.testing.assert_close(ours_block, taps[i], atol=1e-4, rtol=1e-4)
    assert out.features is out.blocks[-1]


@pytest.mark.slow  # ~3 s of CPU; the two tests around it cover backbone and head separately at low cost
@torch.no_grad()
def test_logits_equal_torchvision_at_224(pair):
    # torchvision's head pools (2, 7, 7) with stride 1, so it only runs at >= 224 px and >= 13 frames
    ours, peer = pair
    x = torch.randn(1, 3, 16, 224, 224)
    logits = ours(x).logits
    assert logits.shape == (1, 10)
    torch.testing.assert_close(logits, peer(x), atol=1e-4, rtol=1e-4)


@torch.no_grad()
@pytest.mark.parametrize("t", [2, 4])
def test_clip_pooling_and_classifier_equal_torchvision_head(pair, t):
    # with 4 time steps the original's stride-1 window pooling weighs the edge steps half: we must too
    ours, peer = pair
    feats = torch.randn(2, 1024, t, 7, 7)
    expected = peer.classifier(peer.avgpool(feats)).mean(dim=(2, 3, 4))
    torch.testing.assert_close(ours.head(clip_pool(feats)), expected, atol=1e-5, rtol=1e-5)


def test_block_layout_follows_the_spec_at_224():
    # spec (sign_language.md 0): channels 64/192/480/832/1024; spatial stride 2..32; temporal 2,2,2,4,8
    with torch.device("meta"):
        model = S3D(S3DConfig(num_classes=0))
        out = model(torch.empty(2, 3, 32, 224, 224))
    assert [tuple(b.shape) for b in out.blocks] == [
        (2, 64, 16, 112, 112),
        (2, 192, 16, 56, 56),
        (2, 480, 16, 28, 28),
        (2, 832, 8, 14, 14),
        (2, 1024, 4, 7, 7),
    ]


def test_keypoint_stream_takes_79_heatmap_channels_at_112():
    # TwoStream-SLR's keypoint stream: 79 heatmaps at 112 px, half the RGB stream's resolution per block
    with torch.device("meta"):
        model = S3D(S3DConfig(in_chans=79, num_classes=0, num_blocks=4))
        out = model(torch.empty(1, 79, 16, 112, 112))
    assert [tuple(b.shape[1:]) for b in out.blocks] == [
        (64, 8, 56, 56),
        (192, 8, 28, 28),
        (480, 8, 14, 14),
        (832, 4, 7, 7),
    ]


def test_batchnorm_uses_eps_1e3_everywhere():
    bns = [m for m in S3D(S3DConfig(num_blocks=2)).modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 1e-3 for m in bns)


def test_convolutions_are_separable_spatial_then_temporal():
    sep = S3D(S3DConfig(num_blocks=1)).blocks[0].SepConv3d_1a_7x7
    assert sep.conv_s.kernel_size == (1, 7, 7) and sep.conv_s.stride == (1, 2, 2)
    assert sep.conv_t.kernel_size == (7, 1, 1) and sep.conv_t.stride == (2, 1, 1)


def test_num_blocks_4_builds_no_block_5_and_no_classifier_input_mismatch():
    model = S3D(S3DConfig(num_blocks=4, num_classes=0))
    assert len(model.blocks) == 4 and model.head is None
    assert not any(k.startswith("blocks.4.") for k in model.state_dict())
    assert not any("Mixed_5" in k for k in model.state_dict())


@torch.no_grad()
def test_forward_can_stop_after_the_first_k_blocks():
    model = S3D(S3DConfig(num_blocks=3, num_classes=5)).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    early = model(x, num_blocks=2)
    assert len(early.blocks) == 2 and early.logits is None
    full = model(x)
    assert len(full.blocks) == 3 and full.logits.shape == (1, 5)
    torch.testing.assert_close(early.features, full.blocks[1])


@torch.no_grad()
def test_forward_sequence_pools_space_into_a_frame_sequence():
    model = S3D(S3DConfig(num_blocks=4, num_classes=0)).eval()
    x = torch.randn(1, 3, 16, 32, 32)
    features = model(x).features  # (1, 832, 4, 2, 2)
    seq = model.forward_sequence(x)
    assert seq.shape == (1, 832, 4)  # T/4 after block 4
    torch.testing.assert_close(seq[..., 3], features[:, :, 3].mean(dim=(2, 3)))


@torch.no_grad()
def test_channels_last_changes_memory_format_not_values():
    fast = S3D(S3DConfig(num_blocks=3, num_classes=0, channels_last=True)).eval()
    plain = S3D(S3DConfig(num_blocks=3, num_classes=0, channels_last=False)).eval()
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(1, 3, 8, 48, 48)
    torch.testing.assert_close(fast(x).features, plain(x).features, atol=1e-5, rtol=1e-5)


def test_training_step_backpropagates_to_the_first_conv():
    model = S3D(S3DConfig(num_blocks=2, num_classes=0)).train()
    model(torch.randn(2, 3, 8, 32, 32)).features.mean().backward()
    grad = model.blocks[0].SepConv3d_1a_7x7.conv_s.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_wrong_number_of_input_channels_is_rejected():
    with pytest.raises(ValueError, match=r"\(B, 79, T, H, W\)"):
        S3D(S3DConfig(in_chans=79, num_blocks=1))(torch.randn(1, 3, 8, 32, 32))


def test_config_rejects_six_blocks():
    with pytest.raises(ConfigError, match="num_blocks"):
        S3DConfig(num_blocks=6)


def test_torchvision_converter_names_an_unknown_key():
    sd = tv_video.s3d(weights=None).state_dict()
    sd["features.5.branch4.0.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="features.5.branch4.0.weight"):
        convert_torchvision_s3d(sd)


def test_kylemin_converter_maps_flat_base_indices_to_blocks():
    ours = S3D(S3DConfig(num_classes=7))
    sd = ours.state_dict()
    # the kylemin port (TwoStream-SLR's K400 init) keeps our submodule names under a flat `base.<i>` index,
    # with a 1x1x1 Conv3d classifier `fc` and DataParallel prefixes
    flat = [name for block in ours.blocks for name in block._modules]
    port = {}
    for k, v in sd.items():
        if k.startswith("head."):
            port["module.fc." + k[5:]] = v[..., None, None, None] if k.endswith("weight") else v
        else:
            _, _, name, rest = k.split(".", 3)
            port[f"module.base.{flat.index(name)}.{rest}"] = v
    assert "module.base.5.branch1.1.conv_s.weight" in port  # Mixed_3b is base[5] in the port
    converted = convert_kylemin_s3d({"state_dict": port})
    assert converted.keys() == sd.keys()
    assert all(torch.equal(converted[k], sd[k]) for k in sd)


def test_check_state_dict_names_the_missing_key():
    model = S3D(S3DConfig(num_blocks=1, num_classes=0))
    sd = model.state_dict()
    del sd["blocks.0.SepConv3d_1a_7x7.bn_t.running_var"]
    with pytest.raises(CheckpointError, match="missing key 'blocks.0.SepConv3d_1a_7x7.bn_t.running_var'"):
        check_state_dict(sd, model, "s3d.safetensors")


def test_eval_mode_still_backpropagates_for_frozen_bn_fine_tuning():
    # eval mode folds BN into the convs and fuses the 1x1x1 branches; gradients must still reach the weights
    model = S3D(S3DConfig(num_blocks=3, num_classes=0)).eval()
    model(torch.randn(1, 3, 8, 32, 32)).features.sum().backward()
    mixed = model.blocks[2].Mixed_3b
    for p in (mixed.branch1[0].conv.weight, mixed.branch1[0].bn.weight, mixed.branch3[1].conv.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
