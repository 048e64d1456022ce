"""Gaussian keypoint heatmaps: geometry, sigma, undetected points, and agreement with slow references."""

import math

import numpy as np
import pytest
import torch

from visionzoo.core.errors import VisionZooError
from visionzoo.data.heatmaps import map_to_output, render_heatmaps, render_heatmaps_dense

PHOENIX_HW = (260, 210)  # raw Phoenix frame (H, W)


def random_points(t, k, hw, seed=0, margin=0.0):
    g = torch.Generator().manual_seed(seed)
    h, w = hw
    xy = torch.rand(t, k, 2, generator=g) * torch.tensor([w - 2 * margin, h - 2 * margin]) + margin
    return torch.cat([xy, torch.ones(t, k, 1)], dim=-1)


def naive_heatmaps(points, frame_size, out_size, sigma, crop_box):
    """One pixel at a time, straight from the definition (exp of the 2D squared distance)."""
    h, w = frame_size
    x0, y0, x1, y1 = crop_box or (0, 0, w, h)
    sx, sy = out_size / (x1 - x0), out_size / (y1 - y0)
    t_len, k_len, _ = points.shape
    out = np.zeros((t_len, k_len, out_size, out_size))
    for t in range(t_len):
        for k in range(k_len):
            x, y, score = points[t, k].tolist()
            if score <= 0:
                continue
            u, v = (x - x0 + 0.5) * sx - 0.5, (y - y0 + 0.5) * sy - 0.5
            for i in range(out_size):
                for j in range(out_size):
                    d2 = ((j - u) / (sigma * sx)) ** 2 + ((i - v) / (sigma * sy)) ** 2
                    out[t, k, i, j] = math.exp(-d2 / 2)
    return torch.from_numpy(out).float()


def test_output_shape_and_range():
    maps = render_heatmaps(random_points(3, 79, PHOENIX_HW), PHOENIX_HW, out_size=112)
    assert maps.shape == (3, 79, 112, 112)
    assert maps.dtype == torch.float32
    assert maps.min() >= 0 and maps.max() <= 1


def test_peak_is_at_the_mapped_point_without_crop():
    points = random_points(2, 20, PHOENIX_HW, seed=1, margin=10)
    maps = render_heatmaps(points, PHOENIX_HW, out_size=112)
    peak_y, peak_x = np.unravel_index(maps.flatten(-2).argmax(-1).numpy(), (112, 112))
    # whole frame resized to 112 x 112: x scales by 112 / 210, y by 112 / 260 (pixel centres aligned)
    expect_x = (points[..., 0] + 0.5) * 112 / 210 - 0.5
    expect_y = (points[..., 1] + 0.5) * 112 / 260 - 0.5
    assert np.abs(peak_x - expect_x.numpy()).max() <= 1.0
    assert np.abs(peak_y - expect_y.numpy()).max() <= 1.0


def test_peak_follows_the_crop_box():
    box = (40, 60, 180, 230)  # x0, y0, x1, y1 in raw pixels: 140 x 170 -> 112 x 112
    points = random_points(2, 20, (100, 80), seed=2, margin=5)
    points[..., 0] += box[0] + 30  # keep the points inside the box
    points[..., 1] += box[1] + 35
    maps = render_heatmaps(points, PHOENIX_HW, out_size=112, crop_box=box)
    peak_y, peak_x = np.unravel_index(maps.flatten(-2).argmax(-1).numpy(), (112, 112))
    expect_x = (points[..., 0] - 40 + 0.5) * 112 / 140 - 0.5
    expect_y = (points[..., 1] - 60 + 0.5) * 112 / 170 - 0.5
    assert np.abs(peak_x - expect_x.numpy()).max() <= 1.0
    assert np.abs(peak_y - expect_y.numpy()).max() <= 1.0
    torch.testing.assert_close(map_to_output(points, PHOENIX_HW, 112, box)[..., :2], torch.stack([expect_x, expect_y], -1))


def test_crop_box_centre_maps_to_the_map_centre():
    box = (40, 60, 180, 230)
    centre = torch.tensor([[[(40 + 180) / 2 - 0.5, (60 + 230) / 2 - 0.5, 1.0]]])  # pixel-centre convention
    maps = render_heatmaps(centre, PHOENIX_HW, out_size=112, crop_box=box)[0, 0]
    # the peak sits between pixels 55 and 56 on both axes: four equal maxima around the centre
    block = maps[55:57, 55:57]
    torch.testing.assert_close(block, block[0, 0].expand(2, 2))
    assert maps.max() == block[0, 0]


def test_sigma_is_in_raw_pixels_and_scales_per_axis():
    # 224 x 224 frame, crop 224 wide x 112 tall -> 112 x 112: x halves, y stays, so sigma_x = 4, sigma_y = 8
    points = torch.tensor([[[112.0, 56.0, 1.0]]])
    maps = render_heatmaps(points, (224, 224), out_size=112, sigma=8.0, crop_box=(0, 0, 224, 112))[0, 0]
    coords = torch.arange(112, dtype=torch.float64)

    def std(profile):
        p = profile.double() / profile.double().sum()
        mean = (p * coords).sum()
        return ((p * (coords - mean) ** 2).sum()).sqrt().item()

    peak_row, peak_col = np.unravel_index(maps.argmax().item(), maps.shape)
    assert std(maps[peak_row]) == pytest.approx(4.0, rel=0.01)
    assert std(maps[:, peak_col]) == pytest.approx(8.0, rel=0.01)


def test_doubling_sigma_doubles_the_spread():
    points = torch.tensor([[[105.0, 130.0, 1.0]]])
    narrow = render_heatmaps(points, PHOENIX_HW, sigma=4.0)[0, 0]
    wide = render_heatmaps(points, PHOENIX_HW, sigma=8.0)[0, 0]
    # the exponent is quadratic in 1 / sigma: doubling sigma takes the 4th root of every value
    assert torch.allclose(wide, narrow ** 0.25, atol=1e-6)


def test_points_with_score_zero_give_all_zero_maps():
    points = random_points(2, 10, PHOENIX_HW, seed=3)
    points[0, 3, 2] = 0.0
    points[1, :, 2] = 0.0  # a frame with no detection (SLRT zero-fills those)
    points[1, :, :2] = 0.0
    maps = render_heatmaps(points, PHOENIX_HW)
    assert maps[0, 3].abs().max() == 0
    assert maps[1].abs().max() == 0
    assert maps[0, 2].max() > 0.5  # the other points still render


def test_min_score_threshold():
    points = torch.tensor([[[50.0, 50.0, 0.2], [60.0, 60.0, 0.9]]])
    maps = render_heatmaps(points, PHOENIX_HW, min_score=0.5)
    assert maps[0, 0].max() == 0 and maps[0, 1].max() > 0.5


def test_equals_a_naive_per_pixel_loop():
    points = random_points(2, 3, (40, 30), seed=4)
    points[1, 2, 2] = 0.0
    box = (3, 5, 27, 37)
    ours = render_heatmaps(points, (40, 30), out_size=16, sigma=3.0, crop_box=box)
    ref = naive_heatmaps(points, (40, 30), 16, 3.0, box)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_matches_the_official_render_crop_resize_pipeline():
    # Bilinear interpolation of a Gaussian with sigma in raw pixels errs by at most
    # (|f_xx| + |f_yy|) / 8 <= 1 / (4 sigma^2) (raw pixel spacing 1); downsampling needs no edge clamp.
    sigma = 8.0
    points = random_points(2, 79, PHOENIX_HW, seed=5)
    box = (20, 30, 190, 240)
    ours = render_heatmaps(points, PHOENIX_HW, 112, sigma, box)
    dense = render_heatmaps_dense(points, PHOENIX_HW, 112, sigma, box)
    torch.testing.assert_close(ours, dense, atol=1 / (4 * sigma**2) + 1e-5, rtol=0)


def test_accepts_numpy_and_leading_batch_dims():
    points = random_points(3, 5, PHOENIX_HW, seed=6)
    batched = render_heatmaps(points.numpy()[None].repeat(2, axis=0), PHOENIX_HW, out_size=(56, 48))
    assert batched.shape == (2, 3, 5, 56, 48)
    torch.testing.assert_close(batched[1], render_heatmaps(points, PHOENIX_HW, out_size=(56, 48)))


def test_writes_into_a_given_buffer():
    points = random_points(2, 4, PHOENIX_HW, seed=7)
    buf = torch.full((2, 4, 112, 112), -1.0)
    result = render_heatmaps(points, PHOENIX_HW, out=buf)
    assert result.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(buf, render_heatmaps(points, PHOENIX_HW))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma": 0.0}, "sigma"),
        ({"crop_box": (10, 10, 5, 20)}, "crop_box"),
        ({"out_size": 0}, "out_size"),
    ],
)
def test_bad_arguments_raise_one_line_errors(kwargs, match):
    with pytest.raises(VisionZooError, match=match):
        render_heatmaps(random_points(1, 2, PHOENIX_HW), PHOENIX_HW, **kwargs)


def test_rejects_points_without_a_score():
    with pytest.raises(VisionZooError, match=r"\(\.\.\., K, 3\)"):
        render_heatmaps(torch.zeros(4, 79, 2), PHOENIX_HW)
