"""Gaussian keypoint heatmaps, the keypoint-stream input of TwoStream-SLR and NLA-SLR.

The official pipeline renders one Gaussian exp(-d^2 / 2 sigma^2) per keypoint on the raw frame
(sigma = 8 raw pixels), crops the video's crop box out of it and resizes the crop to 112 x 112. We
render straight at the output resolution instead: the crop/resize is an affine map per axis, so we
map the keypoints (and sigma, per axis) into output pixels and evaluate the Gaussian there. A 2D
Gaussian with axis-aligned sigmas is separable, so each map is the outer product of a row profile
and a column profile: O(T K (H + W)) exponentials instead of O(T K H_raw W_raw), and no loops.

Differences from the official code, on purpose:
- points with score <= ``min_score`` (0 by default: not detected) give all-zero maps; the official
  code draws zero-filled points as a Gaussian in the frame's top-left corner.
- no resampling error: we evaluate the exact Gaussian at each output pixel centre. The official
  bilinear resize of a raw-resolution map differs from it by at most 1 / (4 sigma^2) (0.004 for
  sigma = 8, the bilinear interpolation error bound), plus, when the crop is upsampled, in the
  outermost output pixels where ``F.interpolate`` clamps to the crop's edge.
  ``render_heatmaps_dense`` is that pipeline, kept for parity checks.

Coordinates: keypoints are in raw-frame pixels with pixel i's centre at i (mmpose's convention);
output pixel j's centre sits where ``F.interpolate(..., align_corners=False)`` samples it, so
x_out = (x - x0 + 0.5) * out_w / crop_w - 0.5. The normalisation (h - 0.5) / 0.5 the models apply
is not done here.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from visionzoo.core.errors import VisionZooError

SIGMA_RAW_PX = 8.0  # spec 1b: sigma in raw-frame pixels (TwoStream and NLA-SLR)
HEATMAP_SIZE = 112


def _as_points(points) -> torch.Tensor:
    points = torch.as_tensor(points)
    if points.ndim < 2 or points.shape[-1] != 3:
        raise VisionZooError(f"render_heatmaps: expected points (..., K, 3) = x, y, score, got {tuple(points.shape)}")
    return points if points.is_floating_point() else points.float()


def _pair(size: int | Sequence[int], what: str) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h <= 0 or w <= 0:
        raise VisionZooError(f"render_heatmaps: {what} must be positive (H, W), got {size}")
    return int(h), int(w)


def _crop(crop_box, frame_size: tuple[int, int]) -> tuple[float, float, float, float]:
    if crop_box is None:
        return 0.0, 0.0, float(frame_size[1]), float(frame_size[0])
    x0, y0, x1, y1 = (float(v) for v in crop_box)
    if x1 <= x0 or y1 <= y0:
        raise VisionZooError(f"render_heatmaps: crop_box must be (x0, y0, x1, y1) with x1 > x0, y1 > y0, got {crop_box}")
    return x0, y0, x1, y1


def map_to_output(
    points, frame_size: tuple[int, int], out_size: int | Sequence[int] = HEATMAP_SIZE, crop_box=None
) -> torch.Tensor:
    """Raw-frame (x, y) -> output-pixel (x, y) under the crop + resize; the score is kept. (..., K, 3)"""
    points = _as_points(points)
    out_h, out_w = _pair(out_size, "out_size")
    x0, y0, x1, y1 = _crop(crop_box, _pair(frame_size, "frame_size"))
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    x = (points[..., 0] - x0 + 0.5) * sx - 0.5
    y = (points[..., 1] - y0 + 0.5) * sy - 0.5
    return torch.stack([x, y, points[..., 2]], dim=-1)


def render_heatmaps(
    points,
    frame_size: tuple[int, int],
    out_size: int | Sequence[int] = HEATMAP_SIZE,
    sigma: float = SIGMA_RAW_PX,
    crop_box: Sequence[float] | None = None,
    min_score: float = 0.0,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gaussian heatmaps of keypoints, cropped and resized.

    points: (..., K, 3) x, y in raw-frame pixels and a score (numpy or torch; typically (T, K, 3)).
    frame_size: (H, W) of the raw frame. out_size: int or (H_out, W_out).
    sigma: Gaussian std in raw-frame pixels. crop_box: (x0, y0, x1, y1) in raw-frame pixels, the same
    box for all frames (one crop per video); None = the whole frame.
    Returns (..., K, H_out, W_out) float32 in [0, 1] on the points' device; points with score <=
    min_score give all-zero maps. ``out``: an optional float32 tensor of that shape to write into;
    reusing one skips the page faults of a fresh allocation, which dominate the cost on CPU.
    """
    if sigma <= 0:
        raise VisionZooError(f"render_heatmaps: sigma must be > 0 raw pixels, got {sigma}")
    out_h, out_w = _pair(out_size, "out_size")
    x0, y0, x1, y1 = _crop(crop_box, _pair(frame_size, "frame_size"))
    pts = map_to_output(points, frame_size, (out_h, out_w), (x0, y0, x1, y1)).float()
    # sigma scales with the resize, separately per axis when the crop's aspect differs from the output's
    sigma_x, sigma_y = sigma * out_w / (x1 - x0), sigma * out_h / (y1 - y0)

    cols = torch.arange(out_w, dtype=pts.dtype, device=pts.device)
    rows = torch.arange(out_h, dtype=pts.dtype, device=pts.device)
    gx = torch.exp(-((cols - pts[..., 0:1]) ** 2) / (2 * sigma_x**2))  # (..., K, W_out)
    gy = torch.exp(-((rows - pts[..., 1:2]) ** 2) / (2 * sigma_y**2))  # (..., K, H_out)
    gx = gx * (pts[..., 2:3] > min_score).to(gx.dtype)  # undetected points: zero maps
    return torch.mul(gy.unsqueeze(-1), gx.unsqueeze(-2), out=out)  # (..., K, H_out, W_out)


def render_heatmaps_dense(
    points,
    frame_size: tuple[int, int],
    out_size: int | Sequence[int] = HEATMAP_SIZE,
    sigma: float = SIGMA_RAW_PX,
    crop_box: Sequence[float] | None = None,
    min_score: float = 0.0,
) -> torch.Tensor:
    """The official pipeline, for parity checks: render at raw resolution, crop, bilinear resize.

    Same arguments and output as ``render_heatmaps`` (crop box edges are rounded to whole pixels, as
    a tensor slice needs). Memory is O(T K H_raw W_raw): use it on short clips only.
    """
    points = _as_points(points).float()
    frame_h, frame_w = _pair(frame_size, "frame_size")
    out_h, out_w = _pair(out_size, "out_size")
    x0, y0, x1, y1 = (round(v) for v in _crop(crop_box, (frame_h, frame_w)))
    lead = points.shape[:-1]  # (..., K)
    pts = points.reshape(-1, 3)
    yy, xx = torch.meshgrid(
        torch.arange(frame_h, dtype=pts.dtype, device=pts.device),
        torch.arange(frame_w, dtype=pts.dtype, device=pts.device),
        indexing="ij",
    )
    d2 = (xx - pts[:, 0, None, None]) ** 2 + (yy - pts[:, 1, None, None]) ** 2  # (N, H_raw, W_raw)
    hmap = torch.exp(-d2 / (2 * sigma**2)) * (pts[:, 2, None, None] > min_score)
    crop = hmap[:, y0:y1, x0:x1].unsqueeze(1)  # (N, 1, h, w)
    out = F.interpolate(crop, size=(out_h, out_w), mode="bilinear", align_corners=False)
    return out.reshape(*lead, out_h, out_w)
