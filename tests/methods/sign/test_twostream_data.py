"""TwoStream-SLR clip preparation: one crop box for RGB and heatmaps, lengths a multiple of 4, padding."""

from __future__ import annotations

import torch

from visionzoo.data.keypoints import TWOSTREAM_79_INDICES
from visionzoo.data.video_transforms import ClipAugment, ClipParams, RelBox
from visionzoo.methods.sign.twostream.data import DataConfig, clip_augment_config, collate_clips, make_clip

CFG = DataConfig(image_size=32, heatmap_size=16, sigma=3.0, bgr=False, color_jitter_p=0.0)
HAND = TWOSTREAM_79_INDICES.index(100)  # heatmap channel of COCO point 100 (a right-hand joint)


def _clip(t=10, h=60, w=50, x=30.0, y=20.0):
    frames = torch.zeros(t, h, w, 3, dtype=torch.uint8)
    frames[:, int(y), int(x)] = 255  # a bright pixel exactly where the keypoint is
    kps = torch.zeros(t, 133, 3)
    kps[:, 100] = torch.tensor([x, y, 1.0])
    return frames, kps


def test_the_same_crop_box_is_applied_to_rgb_and_heatmaps():
    frames, kps = _clip()
    augment = ClipAugment(clip_augment_config(CFG), train=True)
    box = RelBox.from_pixels(10, 12, 40, 36, (60, 50))  # a crop that moves the point off-centre
    rgb, heat = make_clip(frames, kps, CFG, augment, ClipParams(torch.arange(10), box))
    assert rgb.shape == (3, 10, 32, 32) and heat.shape == (79, 10, 16, 16)
    bright = rgb[0, 0].flatten().argmax()
    peak = heat[HAND, 0].flatten().argmax()
    ry, rx = divmod(int(bright), 32)
    hy, hx = divmod(int(peak), 16)
    # the heatmap peak sits at half the RGB position (within a pixel of rounding)
    assert abs(hy - ry / 2) <= 1 and abs(hx - rx / 2) <= 1
    expected_x = (30 + 0.5 - 12) * 32 / 36 - 0.5
    assert abs(rx - expected_x) <= 1
    others = torch.cat([heat[:HAND], heat[HAND + 1:]])
    assert torch.all(others == -1.0)  # undetected points: empty maps, normalised to -1


def test_training_lengths_are_resampled_to_multiples_of_four():
    frames, kps = _clip(t=21)
    augment = ClipAugment(clip_augment_config(CFG), train=True)
    lengths = set()
    for seed in range(12):
        params = augment.sample(21, (60, 50), torch.Generator().manual_seed(seed))
        rgb, heat = make_clip(frames, kps, CFG, augment, params)
        assert rgb.shape[1] % 4 == 0 and heat.shape[1] == rgb.shape[1]
        assert 0.5 * 21 <= rgb.shape[1] <= 1.5 * 21 + 4
        lengths.add(rgb.shape[1])
    assert len(lengths) > 2  # the length really varies


def test_test_time_keeps_all_frames_truncated_to_a_multiple_of_four():
    frames, kps = _clip(t=23)
    augment = ClipAugment(clip_augment_config(CFG), train=False)
    rgb, _ = make_clip(frames, kps, CFG, augment, augment.sample(23, (60, 50), None))
    assert rgb.shape[1] == 20


def test_bgr_flips_channels_only():
    frames, kps = _clip(t=4)
    frames[..., 0] = 200  # red
    augment = ClipAugment(clip_augment_config(CFG), train=False)
    params = augment.sample(4, (60, 50), None)
    rgb, _ = make_clip(frames, kps, CFG, augment, params)
    bgr, _ = make_clip(frames, kps, DataConfig(image_size=32, heatmap_size=16, sigma=3.0, bgr=True), augment, params)
    torch.testing.assert_close(bgr, rgb.flip(0))


def test_collate_pads_by_repeating_the_last_frame():
    items = [{"rgb": torch.randn(3, t, 4, 4), "heatmaps": torch.randn(79, t, 2, 2), "gloss_ids": torch.tensor(g),
              "gloss": ["A"] * len(g), "name": str(t)} for t, g in ((8, [3, 4]), (4, [5]))]
    batch = collate_clips(items)
    assert batch["rgb"].shape == (2, 3, 8, 4, 4) and batch["heatmaps"].shape == (2, 79, 8, 2, 2)
    assert batch["lengths"].tolist() == [8, 4] and batch["gloss_lengths"].tolist() == [2, 1]
    torch.testing.assert_close(batch["rgb"][1, :, 7], items[1]["rgb"][:, 3])
    assert batch["gloss_ids"].tolist() == [[3, 4], [5, 0]]
