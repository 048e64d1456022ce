"""Clip transforms: one random draw per clip, applied alike to every frame, to heatmaps and to keypoints."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from visionzoo.core.errors import ConfigError
from visionzoo.data.video_transforms import (
    ClipAugment,
    ClipAugmentConfig,
    RelBox,
    center_window_indices,
    color_jitter,
    hflip_keypoints,
    sample_color_jitter,
    sample_resized_crop_box,
    temporal_crop_indices,
    temporal_rescale_indices,
    thwc_to_tchw,
)

# Spatial-only pipeline: no temporal resampling, no colour jitter, identity normalisation.
SPATIAL = dict(temporal_scale=None, color_jitter=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), heatmap_norm=None)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_dot(h: int, w: int, x: float, y: float, sigma: float) -> torch.Tensor:
    """(h, w) float map exp(-d^2 / 2 sigma^2) around (x, y) in pixel-index coordinates."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


def centre_of_mass(img: torch.Tensor) -> tuple[float, float]:
    """(x, y) in pixel-index coordinates of a non-negative (h, w) map."""
    h, w = img.shape
    total = img.sum()
    x = (img.sum(0) * torch.arange(w, dtype=img.dtype)).sum() / total
    y = (img.sum(1) * torch.arange(h, dtype=img.dtype)).sum() / total
    return x.item(), y.item()


def relative(x: float, y: float, hw: tuple[int, int]) -> torch.Tensor:
    """Pixel-index position -> fraction of the image (pixel i covers [i, i+1) / size)."""
    return torch.tensor([(x + 0.5) / hw[1], (y + 0.5) / hw[0]])


# ---------------------------------------------------------------------------------------------- spatial


def test_same_crop_box_is_applied_to_every_frame():
    clip = torch.randint(0, 256, (5, 3, 60, 80), dtype=torch.uint8)
    aug = ClipAugment(ClipAugmentConfig(size=(32, 32), crop_scale=(0.3, 0.6), **SPATIAL))
    out = aug(clip, generator=gen(0))
    top, left, h, w = out.params.box.to_pixels((60, 80))
    assert (h, w) != (60, 80)  # a real crop, not the whole frame
    per_frame = torch.stack([TF.resized_crop(f, top, left, h, w, [32, 32]) for f in clip])
    torch.testing.assert_close(out.rgb, per_frame.float() / 255, atol=1e-6, rtol=0)


def test_heatmaps_stay_aligned_with_rgb_after_crop_and_flip():
    # a dot at heatmap pixel (52, 20) is at RGB pixel (104.5, 40.5) on a frame twice the size
    rgb = (255 * gaussian_dot(120, 160, 104.5, 40.5, sigma=3.0)).to(torch.uint8).expand(2, 3, 120, 160)
    heatmaps = gaussian_dot(60, 80, 52.0, 20.0, sigma=1.5).expand(2, 1, 60, 80)
    aug = ClipAugment(ClipAugmentConfig(size=(64, 64), aux_size=(32, 32), crop_scale=(0.6, 1.0),
                                        crop_ratio=(0.9, 1.1), hflip_p=1.0, **SPATIAL))
    for seed in range(5):
        out = aug(rgb, heatmaps, generator=gen(seed))
        assert out.params.flip
        at_rgb = relative(*centre_of_mass(out.rgb[0, 0]), (64, 64))
        at_hm = relative(*centre_of_mass(out.heatmaps[0, 0]), (32, 32))
        # whole-pixel boxes at each resolution may disagree by up to one heatmap pixel
        torch.testing.assert_close(at_hm, at_rgb, atol=1 / 32, rtol=0)


def test_keypoints_follow_the_crop_to_the_rendered_dot():
    # a small crop blown up ~2x, so a half-pixel convention slip would move the point by ~0.5 px
    aug = ClipAugment(ClipAugmentConfig(size=(128, 128), crop_scale=(0.2, 0.3), crop_ratio=(0.9, 1.1), **SPATIAL))
    for seed in range(5):
        params = aug.sample(1, (120, 160), gen(seed))
        top, left, h, w = params.box.to_pixels((120, 160))
        x, y = left + 0.3 * w, top + 0.6 * h  # inside the box, away from its centre
        rgb = (255 * gaussian_dot(120, 160, x, y, sigma=4.0)).to(torch.uint8).expand(1, 3, 120, 160)
        out = aug.apply(params, rgb, keypoints=torch.tensor([[[x, y, 0.9]]]))  # keypoints (T, K, 3)
        dot = torch.tensor(centre_of_mass(out.rgb[0, 0]))
        torch.testing.assert_close(out.keypoints[0, 0, :2], dot, atol=0.1, rtol=0)
        assert out.keypoints[0, 0, 2] == pytest.approx(0.9)  # scores pass through


def test_keypoints_follow_the_flip():
    rgb = torch.zeros(1, 3, 40, 50, dtype=torch.uint8)
    rgb[0, :, 10, 7] = 255
    keypoints = torch.tensor([[[7.0, 10.0], [30.0, 5.0]]])
    aug = ClipAugment(ClipAugmentConfig(size=(40, 50), crop_scale=(1.0, 1.0), crop_ratio=(1.25, 1.25),
                                        hflip_p=1.0, **SPATIAL))
    out = aug(rgb, keypoints=keypoints, generator=gen(0))
    assert out.params.box == RelBox.full()
    y, x = divmod(out.rgb[0, 0].argmax().item(), 50)
    assert (x, y) == (42, 10) == tuple(out.keypoints[0, 0].tolist())
    assert out.keypoints[0, 1].tolist() == [19.0, 5.0]


def test_flip_index_swaps_left_and_right_points_and_heatmap_channels():
    aug = ClipAugment(ClipAugmentConfig(size=(8, 8), aux_size=(8, 8), crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                                        hflip_p=1.0, flip_index=(1, 0, 2), **SPATIAL))
    heatmaps = torch.zeros(1, 3, 8, 8)
    heatmaps[0, 0, 2, 1] = 1.0  # "left wrist" channel 0 at x=1
    keypoints = torch.tensor([[[1.0, 2.0], [6.0, 2.0], [4.0, 4.0]]])
    out = aug(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), heatmaps, keypoints, generator=gen(0))
    assert out.heatmaps[0, 1, 2, 6] == 1.0 and out.heatmaps[0, 0].sum() == 0  # now the "right" channel, mirrored
    assert out.keypoints[0].tolist() == [[1.0, 2.0], [6.0, 2.0], [3.0, 4.0]]


def test_hflip_keypoints_is_its_own_inverse():
    kp = torch.rand(4, 5, 2) * 30
    torch.testing.assert_close(hflip_keypoints(hflip_keypoints(kp, 31), 31), kp)


def test_resized_crop_box_respects_scale_and_ratio():
    g = gen(0)
    for _ in range(200):
        box = sample_resized_crop_box((210, 260), g, scale=(0.7, 1.0), ratio=(0.75, 1.3))
        top, left, h, w = box.to_pixels((210, 260))
        assert top >= 0 and left >= 0 and top + h <= 210 and left + w <= 260
        # whole-pixel rounding moves area and aspect by at most ~1%; the fallback box is the full frame
        assert 0.69 <= h * w / (210 * 260) <= 1.0
        assert 0.74 <= w / h <= 1.31


def test_relbox_round_trips_whole_pixels_at_its_own_resolution():
    for top in range(210):
        box = RelBox.from_pixels(top, top, 210 - top, 260 - top, (210, 260))
        assert box.to_pixels((210, 260)) == (top, top, 210 - top, 260 - top)


def test_relbox_maps_the_same_region_across_resolutions():
    box = RelBox.from_pixels(40, 60, 100, 120, (200, 240))
    assert box.to_pixels((100, 120)) == (20, 30, 50, 60)


# ---------------------------------------------------------------------------------------------- photometric


def test_color_jitter_applies_one_draw_to_every_frame():
    clip = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    params = sample_color_jitter(gen(1), 0.4, 0.4, 0.4, 0.1)
    per_frame = torch.stack([color_jitter(f, params) for f in clip])
    assert torch.equal(color_jitter(clip, params), per_frame)
    assert not torch.equal(color_jitter(clip, params), clip)


def test_normalisation_maps_uint8_to_minus_one_one_by_default():
    clip = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 4, 4)
    out = ClipAugment(ClipAugmentConfig(size=(4, 4)), train=False)(clip)
    assert out.rgb[0].unique().tolist() == [-1.0] and out.rgb[1].unique().tolist() == [1.0]


# ---------------------------------------------------------------------------------------------- determinism


def test_augmentation_is_deterministic_given_generator():
    clip = torch.randint(0, 256, (12, 3, 30, 40), dtype=torch.uint8)
    aug = ClipAugment(ClipAugmentConfig(size=(16, 16), color_jitter_p=1.0, hflip_p=0.5))
    a, b, c = aug(clip, generator=gen(7)), aug(clip, generator=gen(7)), aug(clip, generator=gen(8))
    assert torch.equal(a.rgb, b.rgb) and a.params.box == b.params.box
    assert a.params.box != c.params.box


def test_training_augmentation_without_generator_is_a_config_error():
    with pytest.raises(ConfigError, match="Generator"):
        ClipAugment()(torch.zeros(4, 3, 8, 8, dtype=torch.uint8))


def test_eval_mode_is_a_plain_resize_of_all_frames():
    clip = torch.randint(0, 256, (8, 3, 30, 40), dtype=torch.uint8)
    out = ClipAugment(ClipAugmentConfig(size=(16, 16), **SPATIAL), train=False)(clip)
    torch.testing.assert_close(out.rgb, TF.resize(clip, [16, 16]).float() / 255, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------- temporal


def test_temporal_rescale_length_is_a_multiple_of_four_within_range():
    g = gen(0)
    lengths = set()
    for _ in range(100):
        idx = temporal_rescale_indices(100, g)
        lengths.add(len(idx))
        assert len(idx) % 4 == 0 and 48 <= len(idx) <= 152
        assert torch.equal(idx, idx.sort().values) and idx.min() >= 0 and idx.max() < 100
    assert min(lengths) < 100 < max(lengths)  # both sub-sampling and duplication occur


def test_temporal_rescale_shorter_clip_keeps_distinct_frames_longer_clip_keeps_all():
    g = gen(3)
    for _ in range(50):
        idx = temporal_rescale_indices(40, g)
        if len(idx) < 40:
            assert len(idx.unique()) == len(idx)
        else:
            assert set(idx.tolist()) == set(range(40))


def test_temporal_rescale_is_capped_at_max_frames():
    g = gen(0)
    assert all(len(temporal_rescale_indices(390, g)) <= 400 for _ in range(50))


def test_test_time_window_is_centred_and_truncated_to_multiple_of_four():
    assert center_window_indices(450).tolist() == list(range(25, 425))
    assert center_window_indices(10).tolist() == list(range(1, 9))


def test_temporal_crop_pads_short_clip_with_last_frame():
    assert temporal_crop_indices(3, 5).tolist() == [0, 1, 2, 2, 2]


def test_temporal_indices_select_same_frames_of_rgb_heatmaps_and_keypoints():
    t = 20
    rgb = torch.arange(t).view(t, 1, 1, 1).expand(t, 3, 8, 8).to(torch.uint8)
    heatmaps = torch.arange(t, dtype=torch.float32).view(t, 1, 1, 1).expand(t, 2, 4, 4)
    keypoints = torch.zeros(t, 2, 3)
    keypoints[..., 2] = torch.arange(t, dtype=torch.float32).view(t, 1)  # frame id in the score slot
    cfg = ClipAugmentConfig(size=(8, 8), aux_size=(4, 4), crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                            color_jitter=None, mean=(0.0,) * 3, std=(1 / 255,) * 3, heatmap_norm=None)
    out = ClipAugment(cfg)(rgb, heatmaps, keypoints, generator=gen(0))
    frame_ids = out.params.frame_idx.float()
    assert len(frame_ids) != t
    torch.testing.assert_close(out.rgb[:, 0, 0, 0], frame_ids)
    torch.testing.assert_close(out.heatmaps[:, 0, 0, 0], frame_ids)
    torch.testing.assert_close(out.keypoints[:, 0, 2], frame_ids)


def test_thwc_to_tchw_moves_channels():
    assert thwc_to_tchw(torch.zeros(2, 5, 7, 3)).shape == (2, 3, 5, 7)
