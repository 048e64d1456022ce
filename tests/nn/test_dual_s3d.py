"""Two-stream S3D: block shapes at half keypoint resolution, lateral wiring, freezing, narrow width."""

from __future__ import annotations

import pytest
import torch

from visionzoo.core.errors import ConfigError
from visionzoo.nn.dual_s3d import TwoStreamS3D
from visionzoo.nn.s3d import S3D, S3DConfig, block_channels


def _cfgs(width=0.125, kp=5):
    return (S3DConfig(in_chans=3, num_classes=0, num_blocks=4, width=width),
            S3DConfig(in_chans=kp, num_classes=0, num_blocks=4, width=width))


def test_blocks_keep_the_keypoint_stream_at_half_the_rgb_resolution():
    model = TwoStreamS3D(*_cfgs()).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 16, 64, 64), torch.rand(1, 5, 16, 32, 32))
    ch = block_channels(0.125)
    assert [tuple(b.shape[1:]) for b in out.rgb_blocks] == [
        (ch[0], 8, 32, 32), (ch[1], 8, 16, 16), (ch[2], 8, 8, 8), (ch[3], 4, 4, 4)]
    assert [tuple(b.shape[1:]) for b in out.keypoint_blocks] == [
        (ch[0], 8, 16, 16), (ch[1], 8, 8, 8), (ch[2], 8, 4, 4), (ch[3], 4, 2, 2)]


def test_full_width_layout_matches_the_spec_table_on_meta():
    with torch.device("meta"):
        model = TwoStreamS3D(S3DConfig(num_classes=0, num_blocks=4),
                             S3DConfig(in_chans=79, num_classes=0, num_blocks=4))
        out = model(torch.empty(1, 3, 16, 224, 224), torch.empty(1, 79, 16, 112, 112))
    assert [b.shape[1] for b in out.rgb_blocks] == [64, 192, 480, 832]
    assert [tuple(b.shape[-2:]) for b in out.keypoint_blocks] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    lat = model.laterals["1"]
    assert lat.rgb_to_keypoint.kernel_size == (7, 3, 3) and lat.rgb_to_keypoint.stride == (1, 2, 2)
    assert lat.keypoint_to_rgb.output_padding == (0, 1, 1) and lat.keypoint_to_rgb.bias is None
    assert sorted(model.laterals) == ["1", "2", "3"]


@torch.no_grad()
def test_laterals_add_the_other_streams_prefusion_features():
    model = TwoStreamS3D(*_cfgs(), lateral_blocks=(1,)).eval()
    plain = TwoStreamS3D(*_cfgs(), lateral_blocks=()).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    rgb, hm = torch.randn(1, 3, 8, 32, 32), torch.rand(1, 5, 8, 16, 16)
    fused, separate = model(rgb, hm), plain(rgb, hm)
    lat = model.laterals["1"]
    r1, k1 = separate.rgb_blocks[0], separate.keypoint_blocks[0]
    torch.testing.assert_close(fused.rgb_blocks[0], r1 + lat.keypoint_to_rgb(k1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused.keypoint_blocks[0], k1 + lat.rgb_to_keypoint(r1), atol=1e-5, rtol=1e-5)


def test_zero_initialised_laterals_start_as_independent_streams_and_still_learn():
    model = TwoStreamS3D(*_cfgs(), zero_init_laterals=True).eval()
    plain = TwoStreamS3D(*_cfgs(), lateral_blocks=()).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    rgb, hm = torch.randn(1, 3, 8, 32, 32), torch.rand(1, 5, 8, 16, 16)
    fused, separate = model(rgb, hm), plain(rgb, hm)
    for a, b in zip(fused.rgb_blocks + fused.keypoint_blocks, separate.rgb_blocks + separate.keypoint_blocks):
        torch.testing.assert_close(a, b)
    (fused.rgb_blocks[-1].sum() + fused.keypoint_blocks[-1].sum()).backward()
    for lat in model.laterals.values():
        assert lat.rgb_to_keypoint.weight.grad.abs().sum() > 0 and lat.keypoint_to_rgb.weight.grad.abs().sum() > 0


@torch.no_grad()
def test_no_laterals_means_independent_streams():
    model = TwoStreamS3D(*_cfgs(), lateral_blocks=()).eval()
    rgb, hm = torch.randn(1, 3, 8, 32, 32), torch.rand(1, 5, 8, 16, 16)
    a = model(rgb, hm).rgb_blocks[-1]
    b = model(rgb, torch.rand_like(hm)).rgb_blocks[-1]
    torch.testing.assert_close(a, b)
    assert len(model.laterals) == 0


def test_rgb_block1_is_frozen_and_stays_in_eval_mode():
    model = TwoStreamS3D(*_cfgs()).train()
    assert not any(p.requires_grad for p in model.rgb_stream.blocks[0].parameters())
    assert not model.rgb_stream.blocks[0].training and model.rgb_stream.blocks[1].training
    assert all(p.requires_grad for p in model.keypoint_stream.blocks[0].parameters())
    model(torch.randn(2, 3, 8, 32, 32), torch.rand(2, 5, 8, 16, 16)).keypoint_blocks[-1].mean().backward()
    assert model.laterals["1"].rgb_to_keypoint.weight.grad.abs().sum() > 0


def test_wrong_heatmap_resolution_is_a_clear_error():
    model = TwoStreamS3D(*_cfgs()).eval()
    with pytest.raises(ValueError, match="half the RGB resolution"):
        model(torch.randn(1, 3, 8, 32, 32), torch.rand(1, 5, 8, 32, 32))


def test_bad_lateral_block_is_rejected():
    with pytest.raises(ConfigError, match="lateral_blocks"):
        TwoStreamS3D(*_cfgs(), lateral_blocks=(5,))


def test_width_multiplier_scales_channels_and_defaults_to_the_original():
    assert S3DConfig().block_channels == (64, 192, 480, 832, 1024)
    narrow = S3D(S3DConfig(num_classes=0, width=0.25)).eval()
    with torch.no_grad():
        out = narrow(torch.randn(1, 3, 16, 32, 32))
    assert tuple(b.shape[1] for b in out.blocks) == S3DConfig(width=0.25).block_channels == (16, 48, 120, 208, 256)
    with pytest.raises(ConfigError, match="width"):
        S3DConfig(width=0)
