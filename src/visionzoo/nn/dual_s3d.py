"""Two S3D streams (RGB frames + keypoint heatmaps) with bidirectional lateral connections.

The dual visual encoder of TwoStream-SLR (NeurIPS 2022, spec sign_language.md §1b), reused by NLA-SLR's
VKNet (§2b). The RGB stream sees (B, 3, T, H, W) frames, the keypoint stream (B, K, T, H/2, W/2) Gaussian
heatmaps, so after every block the keypoint features are at half the RGB spatial resolution. After the
blocks listed in ``lateral_blocks`` each stream receives the other's *pre-fusion* block output:

    rgb' = rgb + ConvTranspose3d(kp)   (stride (1, 2, 2): up to the RGB resolution)
    kp'  = kp  + Conv3d(rgb)           (stride (1, 2, 2): down to the keypoint resolution)

Both lateral convolutions have a (7, 3, 3) kernel (temporal 7, as PoseC3D), no bias, Kaiming-normal
init (the official ``fusion.py``). The RGB stream's first block is frozen and kept in eval mode by default,
as the official code does with its Kinetics-400 initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.nn.s3d import S3D, S3DConfig


@dataclass
class TwoStreamS3DOutput:
    rgb_blocks: list[torch.Tensor]  # per-block RGB outputs after fusion, block 1 first; (B, C_i, T_i, H_i, W_i)
    keypoint_blocks: list[torch.Tensor]  # the same for the keypoint stream, at half the RGB H, W


class LateralConnection(nn.Module):
    """The two lateral convolutions between the streams after one block, fused by addition."""

    def __init__(self, rgb_chans: int, kp_chans: int, kernel: Sequence[int] = (7, 3, 3), zero_init: bool = False):
        super().__init__()
        kt, kh, kw = kernel
        padding = (kt // 2, kh // 2, kw // 2)
        self.rgb_to_keypoint = nn.Conv3d(rgb_chans, kp_chans, kernel, stride=(1, 2, 2), padding=padding, bias=False)
        # output_padding (0, 1, 1) makes the up-sampled map exactly twice the keypoint map's H, W
        self.keypoint_to_rgb = nn.ConvTranspose3d(
            kp_chans, rgb_chans, kernel, stride=(1, 2, 2), padding=padding, output_padding=(0, 1, 1), bias=False
        )
        for conv in (self.rgb_to_keypoint, self.keypoint_to_rgb):
            if zero_init:  # the streams start as they were pretrained; the laterals still get gradients
                nn.init.zeros_(conv.weight)
            else:
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, rgb: torch.Tensor, kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (B, C, T, H, W), (B, C', T, H/2, W/2) -> same shapes; each direction reads pre-fusion features
        to_rgb = self.keypoint_to_rgb(kp)
        if to_rgb.shape[-2:] != rgb.shape[-2:]:
            raise ValueError(
                f"TwoStreamS3D: the keypoint stream must run at exactly half the RGB resolution; got RGB "
                f"features {tuple(rgb.shape[-2:])} and keypoint features {tuple(kp.shape[-2:])}"
            )
        return rgb + to_rgb, kp + self.rgb_to_keypoint(rgb)


class TwoStreamS3D(nn.Module):
    """Two S3D backbones run block by block with lateral connections after ``lateral_blocks`` (1-based).

    ``lateral_blocks=()`` gives two independent streams. Both configs must have the same ``num_blocks``.
    """

    def __init__(
        self,
        rgb: S3DConfig,
        keypoint: S3DConfig,
        lateral_blocks: Sequence[int] = (1, 2, 3),
        lateral_kernel: Sequence[int] = (7, 3, 3),
        freeze_rgb_block1: bool = True,
        zero_init_laterals: bool = False,
    ):
        super().__init__()
        if rgb.num_blocks != keypoint.num_blocks:
            raise ConfigError(
                f"TwoStreamS3D: both streams need the same num_blocks, got rgb {rgb.num_blocks} and "
                f"keypoint {keypoint.num_blocks}"
            )
        bad = [b for b in lateral_blocks if not 1 <= b <= rgb.num_blocks]
        if bad:
            raise ConfigError(f"TwoStreamS3D.lateral_blocks: expected blocks in 1..{rgb.num_blocks}, got {bad}")
        if len(lateral_kernel) != 3 or any(k % 2 == 0 for k in lateral_kernel):
            raise ConfigError(f"TwoStreamS3D.lateral_kernel: expected three odd sizes, got {tuple(lateral_kernel)}")
        self.rgb_stream = S3D(rgb)
        self.keypoint_stream = S3D(keypoint)
        self.lateral_blocks = tuple(sorted(set(int(b) for b in lateral_blocks)))
        rgb_ch, kp_ch = rgb.block_channels, keypoint.block_channels
        # keyed by the 1-based block number, as strings (ModuleDict keys)
        self.laterals = nn.ModuleDict(
            {str(b): LateralConnection(rgb_ch[b - 1], kp_ch[b - 1], lateral_kernel, zero_init_laterals)
             for b in self.lateral_blocks}
        )
        self.freeze_rgb_block1 = freeze_rgb_block1
        if freeze_rgb_block1:
            for p in self.rgb_stream.blocks[0].parameters():
                p.requires_grad_(False)

    @property
    def rgb_channels(self) -> tuple[int, ...]:
        return self.rgb_stream.config.block_channels

    @property
    def keypoint_channels(self) -> tuple[int, ...]:
        return self.keypoint_stream.config.block_channels

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_rgb_block1:  # frozen layer keeps its (pretrained) BN statistics
            self.rgb_stream.blocks[0].eval()
        return self

    def forward(self, rgb: torch.Tensor, heatmaps: torch.Tensor) -> TwoStreamS3DOutput:
        """rgb (B, 3, T, H, W), heatmaps (B, K, T, H/2, W/2) -> per-block outputs of both streams."""
        if rgb.shape[0] != heatmaps.shape[0] or rgb.shape[2] != heatmaps.shape[2]:
            raise ValueError(
                f"TwoStreamS3D: RGB {tuple(rgb.shape)} and heatmaps {tuple(heatmaps.shape)} must agree on batch "
                "and frame count"
            )
        for stream, x in ((self.rgb_stream, rgb), (self.keypoint_stream, heatmaps)):
            if x.ndim != 5 or x.shape[1] != stream.config.in_chans:
                raise ValueError(
                    f"TwoStreamS3D: expected (B, {stream.config.in_chans}, T, H, W), got {tuple(x.shape)}"
                )
        if self.rgb_stream.config.channels_last:
            rgb = rgb.contiguous(memory_format=torch.channels_last_3d)
        if self.keypoint_stream.config.channels_last:
            heatmaps = heatmaps.contiguous(memory_format=torch.channels_last_3d)
        rgb_blocks, kp_blocks = [], []
        x_rgb, x_kp = rgb, heatmaps
        for i, (rgb_block, kp_block) in enumerate(zip(self.rgb_stream.blocks, self.keypoint_stream.blocks)):
            x_rgb, x_kp = rgb_block(x_rgb), kp_block(x_kp)
            lateral = self.laterals[str(i + 1)] if str(i + 1) in self.laterals else None
            if lateral is not None:
                x_rgb, x_kp = lateral(x_rgb, x_kp)
            rgb_blocks.append(x_rgb)
            kp_blocks.append(x_kp)
        return TwoStreamS3DOutput(rgb_blocks=rgb_blocks, keypoint_blocks=kp_blocks)
