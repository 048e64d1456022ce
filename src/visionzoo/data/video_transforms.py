"""Clip-consistent video augmentation: one set of random parameters per clip, applied to every frame.

A clip's random parameters (frame indices, crop box, flip, colour jitter) are drawn once, from a
``torch.Generator``, into a :class:`ClipParams`, and then applied to every frame of the RGB clip and,
aligned, to a second tensor at another resolution (keypoint heatmaps ``(T, K, h, w)``) and to keypoint
coordinates ``(T, K, 2|3)``. The crop box is kept in *relative* coordinates (:class:`RelBox`), so the
box drawn on a 260x210 frame maps onto its 112x112 heatmaps (TwoStream-SLR §1b: "the same crop box,
rescaled, is applied to the heatmaps").

Conventions
- images: ``(..., H, W)``; the RGB clip is ``(T, C, H, W)`` (torchvision's video layout);
  readers return ``(T, H, W, C)``: use :func:`thwc_to_tchw`.
- keypoints: ``(..., K, 2|3)`` as (x, y[, score]) in pixel-index coordinates of the RGB frame
  (pixel i's centre is at i, as HRNet/mmpose write them); scores pass through unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch
import torchvision.transforms.v2.functional as TF
from einops import rearrange

from visionzoo.core.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def thwc_to_tchw(clip: torch.Tensor) -> torch.Tensor:
    return rearrange(clip, "t h w c -> t c h w")


def tchw_to_thwc(clip: torch.Tensor) -> torch.Tensor:
    return rearrange(clip, "t c h w -> t h w c")


# ----------------------------------------------------------------------------------------------
# Temporal: frame indices shared by RGB, heatmaps and keypoints


def temporal_rescale_indices(
    num_frames: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.5, 1.5),
    max_frames: int = 400,
    multiple: int = 4,
) -> torch.Tensor:
    """TwoStream-SLR training-time temporal augmentation (§1b) as indices into a ``num_frames`` clip.

    The new length is drawn from U[scale[0]*T, scale[1]*T], capped at ``max_frames`` and rounded up to a
    ``multiple``; a shorter clip keeps a sorted random subset of frames, a longer one adds random
    duplicates (kept in temporal order).
    """
    t = num_frames
    u = torch.rand((), generator=generator, dtype=torch.float64).item()
    length = min(int(scale[0] * t + (scale[1] - scale[0]) * t * u), max_frames)
    length = max(multiple, math.ceil(length / multiple) * multiple)
    length = min(length, max(multiple, max_frames // multiple * multiple))  # rounding up must not pass the cap
    if length < t:
        return torch.randperm(t, generator=generator)[:length].sort().values
    extra = torch.randint(0, t, (length - t,), generator=generator)
    return torch.cat([torch.arange(t), extra]).sort().values


def temporal_crop_indices(num_frames: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A window of ``length`` consecutive frames: random start with a generator, centred without.

    A clip shorter than ``length`` is padded by repeating its last frame (TwoStream's batch padding).
    """
    room = max(0, num_frames - length)
    start = int(torch.randint(0, room + 1, (), generator=generator)) if generator is not None else room // 2
    return (start + torch.arange(length)).clamp_(max=num_frames - 1)


def center_window_indices(num_frames: int, max_frames: int = 400, multiple: int = 4) -> torch.Tensor:
    """Test-time frames (§1b): all of them, a centred ``max_frames`` window if longer, truncated to a
    ``multiple`` (clips shorter than ``multiple`` are padded with their last frame instead)."""
    length = max(multiple, min(num_frames, max_frames) // multiple * multiple)
    return temporal_crop_indices(num_frames, length)


# ----------------------------------------------------------------------------------------------
# Spatial: crop boxes in relative coordinates


@dataclass(frozen=True)
class RelBox:
    """A crop box as fractions of the frame: it means the same region at any resolution."""

    top: float
    left: float
    height: float
    width: float

    @classmethod
    def full(cls) -> RelBox:
        return cls(0.0, 0.0, 1.0, 1.0)

    @classmethod
    def from_pixels(cls, top: int, left: int, height: int, width: int, frame_hw: tuple[int, int]) -> RelBox:
        fh, fw = frame_hw
        return cls(top / fh, left / fw, height / fh, width / fw)

    @classmethod
    def center(cls, fraction: float) -> RelBox:
        """A centred square-in-relative-terms crop, e.g. CSL-Daily's 270/320 test-time centre crop."""
        margin = (1.0 - fraction) / 2
        return cls(margin, margin, fraction, fraction)

    def to_pixels(self, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) in whole pixels of a ``frame_hw`` image, at least one pixel."""
        fh, fw = frame_hw
        top, left = round(self.top * fh), round(self.left * fw)
        height = max(1, min(round(self.height * fh), fh - top))
        width = max(1, min(round(self.width * fw), fw - left))
        return top, left, height, width


def sample_resized_crop_box(
    frame_hw: tuple[int, int],
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> RelBox:
    """RandomResizedCrop's box (area fraction ~ U(scale), log aspect ~ U(log ratio)), drawn from ``generator``.

    The box is whole pixels of ``frame_hw`` (the RGB frame), so the RGB crop is exactly torchvision's;
    other resolutions get the same box through :class:`RelBox`. After 10 rejected draws it falls back to
    the largest centred box with an aspect ratio inside ``ratio``, as torchvision does.
    """
    fh, fw = frame_hw
    area = fh * fw
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= fw and 0 < h <= fh:
            top = int(torch.randint(0, fh - h + 1, (), generator=generator))
            left = int(torch.randint(0, fw - w + 1, (), generator=generator))
            return RelBox.from_pixels(top, left, h, w, frame_hw)
    in_ratio = fw / fh
    if in_ratio < min(ratio):
        w, h = fw, round(fw / min(ratio))
    elif in_ratio > max(ratio):
        w, h = round(fh * max(ratio)), fh
    else:
        w, h = fw, fh
    return RelBox.from_pixels((fh - h) // 2, (fw - w) // 2, h, w, frame_hw)


def resized_crop(x: torch.Tensor, box: RelBox, size: Sequence[int], antialias: bool = True) -> torch.Tensor:
    """Crop ``box`` out of every image of ``x`` (..., H, W) and resize it to ``size`` (h, w)."""
    top, left, height, width = box.to_pixels(tuple(x.shape[-2:]))
    return TF.resized_crop(x, top, left, height, width, list(size), antialias=antialias)


def crop_keypoints(
    keypoints: torch.Tensor, box: RelBox, frame_hw: tuple[int, int], size: Sequence[int]
) -> torch.Tensor:
    """Map keypoints (..., K, 2|3) of a ``frame_hw`` frame through ``resized_crop(frame, box, size)``."""
    top, left, height, width = box.to_pixels(frame_hw)
    out = keypoints.clone()
    # pixel-index coords: shift to pixel-corner coords (+0.5), crop and scale, shift back.
    out[..., 0] = (keypoints[..., 0] + 0.5 - left) * (size[1] / width) - 0.5
    out[..., 1] = (keypoints[..., 1] + 0.5 - top) * (size[0] / height) - 0.5
    return out


def hflip(x: torch.Tensor, flip_index: Sequence[int] | None = None, channel_dim: int = -3) -> torch.Tensor:
    """Mirror every image of ``x`` (..., H, W); ``flip_index`` also swaps left/right channels (heatmaps)."""
    x = TF.horizontal_flip(x)
    return x if flip_index is None else x.index_select(channel_dim, torch.as_tensor(flip_index))


def hflip_keypoints(keypoints: torch.Tensor, width: int, flip_index: Sequence[int] | None = None) -> torch.Tensor:
    """Keypoints (..., K, 2|3) of a mirrored ``width``-pixel image; ``flip_index`` swaps left/right points."""
    out = keypoints.clone()
    out[..., 0] = (width - 1) - keypoints[..., 0]
    return out if flip_index is None else out.index_select(-2, torch.as_tensor(flip_index))


# ----------------------------------------------------------------------------------------------
# Photometric


@dataclass(frozen=True)
class ColorJitterParams:
    brightness: float
    contrast: float
    saturation: float
    hue: float
    order: tuple[int, ...]  # the four adjustments in random order, as torchvision's ColorJitter


def sample_color_jitter(
    generator: torch.Generator, brightness: float, contrast: float, saturation: float, hue: float
) -> ColorJitterParams:
    u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
    order = tuple(torch.randperm(4, generator=generator).tolist())

    def factor(strength: float, v: float) -> float:
        lo = max(0.0, 1.0 - strength)
        return lo + (1.0 + strength - lo) * v

    return ColorJitterParams(
        brightness=factor(brightness, u[0]), contrast=factor(contrast, u[1]),
        saturation=factor(saturation, u[2]), hue=-hue + 2 * hue * u[3], order=order,
    )


def color_jitter(clip: torch.Tensor, params: ColorJitterParams) -> torch.Tensor:
    """Apply the same jitter to every frame of ``clip`` (T, 3, H, W), uint8 or float in [0, 1]."""
    ops = (
        lambda x: TF.adjust_brightness(x, params.brightness),
        lambda x: TF.adjust_contrast(x, params.contrast),
        lambda x: TF.adjust_saturation(x, params.saturation),
        lambda x: TF.adjust_hue(x, params.hue),
    )
    for i in params.order:
        clip = ops[i](clip)
    return clip


def normalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(T, C, H, W) uint8 (scaled to [0, 1] first) or float -> float32 ``(x - mean) / std`` per channel."""
    x = clip.float().div_(255) if clip.dtype == torch.uint8 else clip.float()
    return TF.normalize(x, list(mean), list(std))


# ----------------------------------------------------------------------------------------------
# The whole clip pipeline


@dataclass
class ClipAugmentConfig:
    """Defaults are TwoStream-SLR's training augmentation (§1b)."""

    size: tuple[int, int] = (224, 224)  # RGB output (h, w)
    aux_size: tuple[int, int] | None = (112, 112)  # heatmap output (h, w); None keeps their crop size
    crop_scale: tuple[float, float] = (0.7, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.3)
    hflip_p: float = 0.0  # sign language: mirroring swaps the signing hand, so TwoStream does not flip
    flip_index: tuple[int, ...] | None = None  # keypoint/heatmap channel permutation that swaps left/right
    color_jitter: tuple[float, float, float, float] | None = (0.4, 0.4, 0.4, 0.1)
    color_jitter_p: float = 0.3
    temporal_scale: tuple[float, float] | None = (0.5, 1.5)
    max_frames: int = 400
    frame_multiple: int = 4
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # TwoStream scales frames to [-1, 1]
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    heatmap_norm: tuple[float, float] | None = (0.5, 0.5)  # (h - 0.5) / 0.5 as TwoStream; None: leave as is
    eval_center_crop: float = 1.0  # test time: a centred crop of this fraction (CSL-Daily: 270/320)

    def __post_init__(self) -> None:
        for key in ("hflip_p", "color_jitter_p"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"ClipAugmentConfig.{key}: expected a probability in [0, 1], got {getattr(self, key)!r}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"ClipAugmentConfig.crop_scale: expected 0 < low <= high <= 1, got {self.crop_scale!r}")


@dataclass
class ClipParams:
    """Everything random about one clip's augmentation, drawn once."""

    frame_idx: torch.Tensor  # (T',) int64 indices into the input clip
    box: RelBox
    flip: bool = False
    color: ColorJitterParams | None = None


@dataclass
class AugmentedClip:
    rgb: torch.Tensor  # (T', C, h, w) float32, normalised
    heatmaps: torch.Tensor | None = None  # (T', K, h_aux, w_aux)
    keypoints: torch.Tensor | None = None  # (T', K, 2|3) in pixel-index coordinates of ``rgb``
    params: ClipParams | None = field(default=None, repr=False)


class ClipAugment:
    """Train/test clip pipeline: temporal resampling, resized crop, flip, colour jitter, normalisation."""

    def __init__(self, cfg: ClipAugmentConfig | None = None, train: bool = True):
        self.cfg = cfg or ClipAugmentConfig()
        self.train = train

    def sample(self, num_frames: int, frame_hw: tuple[int, int], generator: torch.Generator | None) -> ClipParams:
        """Draw one clip's parameters; ``frame_hw`` is the RGB frame size the crop box is drawn on."""
        cfg = self.cfg
        if not self.train:
            return ClipParams(center_window_indices(num_frames, cfg.max_frames, cfg.frame_multiple),
                              RelBox.center(cfg.eval_center_crop))
        if generator is None:
            raise ConfigError("ClipAugment(train=True) needs a torch.Generator so augmentation is reproducible")
        if cfg.temporal_scale is not None:
            idx = temporal_rescale_indices(num_frames, generator, cfg.temporal_scale, cfg.max_frames, cfg.frame_multiple)
        else:
            idx = torch.arange(num_frames)
        box = sample_resized_crop_box(frame_hw, generator, cfg.crop_scale, cfg.crop_ratio)
        flip = cfg.hflip_p > 0 and torch.rand((), generator=generator).item() < cfg.hflip_p
        color = None
        if cfg.color_jitter is not None and torch.rand((), generator=generator).item() < cfg.color_jitter_p:
            color = sample_color_jitter(generator, *cfg.color_jitter)
        return ClipParams(idx, box, flip, color)

    def apply(
        self,
        params: ClipParams,
        rgb: torch.Tensor,
        heatmaps: torch.Tensor | None = None,
        keypoints: torch.Tensor | None = None,
    ) -> AugmentedClip:
        """rgb (T, C, H, W) uint8/float, heatmaps (T, K, h, w), keypoints (T, K, 2|3) in rgb pixels."""
        cfg = self.cfg
        frame_hw = (rgb.shape[-2], rgb.shape[-1])
        idx = params.frame_idx
        rgb = resized_crop(rgb[idx], params.box, cfg.size)
        if params.flip:
            rgb = hflip(rgb)
        if params.color is not None:
            rgb = color_jitter(rgb, params.color)
        out = AugmentedClip(rgb=normalize(rgb, cfg.mean, cfg.std), params=params)
        if heatmaps is not None:
            aux_size = cfg.aux_size or params.box.to_pixels(tuple(heatmaps.shape[-2:]))[2:]
            hm = resized_crop(heatmaps[idx], params.box, aux_size)
            if params.flip:
                hm = hflip(hm, cfg.flip_index)
            if cfg.heatmap_norm is not None:
                hm = (hm.float() - cfg.heatmap_norm[0]) / cfg.heatmap_norm[1]
            out.heatmaps = hm
        if keypoints is not None:
            kp = crop_keypoints(keypoints[idx], params.box, frame_hw, cfg.size)
            if params.flip:
                kp = hflip_keypoints(kp, cfg.size[1], cfg.flip_index)
            out.keypoints = kp
        return out

    def __call__(
        self,
        rgb: torch.Tensor,
        heatmaps: torch.Tensor | None = None,
        keypoints: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> AugmentedClip:
        params = self.sample(rgb.shape[0], (rgb.shape[-2], rgb.shape[-1]), generator)
        return self.apply(params, rgb, heatmaps, keypoints)

    def with_config(self, **changes) -> ClipAugment:
        return ClipAugment(replace(self.cfg, **changes), self.train)
