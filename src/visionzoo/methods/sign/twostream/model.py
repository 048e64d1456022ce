"""TwoStream-SLR (Chen et al., NeurIPS 2022): RGB + keypoint-heatmap S3D streams for continuous sign recognition.

The idea in one screen (spec sign_language.md §1b):
- two S3D streams truncated after block 4, the keypoint stream on 79 Gaussian heatmaps at half resolution,
  with bidirectional lateral connections after blocks 1-3 (``visionzoo.nn.dual_s3d``);
- per stream a sign pyramid: the block-4 map is up-sampled (transposed convs) and added to block 3, that sum
  up-sampled and added to block 2; each level is pooled over space into a frame sequence;
- seven CTC heads: per stream a main head on block 4 (T/4) and two auxiliary heads on the pyramid levels
  (T/2), plus a joint head on concat[keypoint, RGB] block-4 features;
- the prediction is "ensemble_last": log of the summed softmaxes of the three main heads.

``streams="rgb"``/``"keypoint"`` builds one stream with its main head (the single-stream pretraining stage);
parameter names are those of the two-stream model, so stage 2 loads stage-1 weights by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import register_model
from visionzoo.methods.sign.twostream.heads import VisualHead
from visionzoo.nn.dual_s3d import TwoStreamS3D
from visionzoo.nn.s3d import BN_EPS, BN_MOMENTUM, S3D, S3DConfig, set_bn_momentum, spatial_pool

MAIN_HEADS = ("rgb", "keypoint", "joint")


@dataclass
class TwoStreamSLRConfig:
    vocab_size: int = 1124  # gloss vocabulary incl. specials; blank = 0 (P14T gloss2ids: 1,124); 0 = from data
    glosses: tuple[str, ...] = ()  # the vocabulary itself (id order), saved in config.json for `predict`
    streams: Literal["both", "rgb", "keypoint"] = "both"
    laterals: bool = True  # bidirectional lateral connections after blocks 1-3 (both streams only)
    pyramid: bool = True  # sign pyramid + two auxiliary CTC heads per stream
    distill: bool = True  # frame-level self-distillation (the loss reads this switch)
    joint_head: bool = True  # head on concat[keypoint, rgb] (both streams only)
    keypoint_channels: int = 79  # heatmap channels (TWOSTREAM_79_INDICES)
    width: float = 1.0  # S3D channel multiplier (< 1 for CPU proxies)
    lateral_kernel: tuple[int, int, int] = (7, 3, 3)
    # official: random (Kaiming) laterals, which perturb both pretrained streams at the start of stage 2;
    # zero: stage 2 starts from exactly the single-stream functions (what small models need, see README)
    lateral_zero_init: bool = False
    freeze_rgb_block1: bool = True
    head_hidden: int = 512
    head_ff: int = 2048
    head_dropout: float = 0.1
    bn_momentum: float = 1e-3  # S3D's, for K400-initialised statistics; 0.1 for short runs from scratch
    aux_weight_rgb: float = 0.2
    aux_weight_keypoint: float = 0.5
    distill_weight: float = 1.0
    blank: int = 0

    def __post_init__(self):
        if self.streams not in ("both", "rgb", "keypoint"):
            raise ConfigError(f"TwoStreamSLRConfig.streams: expected 'both', 'rgb' or 'keypoint', got {self.streams!r}")
        self.lateral_kernel = tuple(self.lateral_kernel)
        self.glosses = tuple(self.glosses)
        if self.glosses and self.vocab_size in (0, len(self.glosses)):
            self.vocab_size = len(self.glosses)
        elif self.glosses:
            raise ConfigError(f"TwoStreamSLRConfig: vocab_size {self.vocab_size} but {len(self.glosses)} glosses")
        if self.vocab_size != 0 and self.vocab_size < 2:
            raise ConfigError(f"TwoStreamSLRConfig.vocab_size: expected >= 2 (blank + a gloss) or 0 (from the data), "
                              f"got {self.vocab_size}")

    def stream_names(self) -> tuple[str, ...]:
        return ("rgb", "keypoint") if self.streams == "both" else (self.streams,)

    def s3d(self, stream: str) -> S3DConfig:
        in_chans = 3 if stream == "rgb" else self.keypoint_channels
        return S3DConfig(in_chans=in_chans, num_classes=0, num_blocks=4, width=self.width)


@dataclass
class TwoStreamOutput:
    heads: dict[str, dict[str, torch.Tensor]]  # name -> dict(logits (B, T_h, V), gloss_feature, lengths (B,))
    ensemble_log_probs: torch.Tensor  # (B, T/4, V): log(sum of the main heads' softmaxes), "ensemble_last"
    lengths: torch.Tensor  # (B,) valid frames of the main heads (T/4 level)


class PyramidUpsample(nn.Module):
    """Spatial then temporal transposed conv, each + BN + ReLU (official ``Upsampling``, interpolate=False)."""

    def __init__(self, in_chans: int, out_chans: int, temporal_stride: int):
        super().__init__()
        self.conv_trans_s = nn.ConvTranspose3d(in_chans, out_chans, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                                               output_padding=(0, 1, 1), bias=False)
        self.bn_s = nn.BatchNorm3d(out_chans, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv_trans_t = nn.ConvTranspose3d(out_chans, out_chans, (3, 1, 1), stride=(temporal_stride, 1, 1),
                                               padding=(1, 0, 0), output_padding=(temporal_stride - 1, 0, 0),
                                               bias=False)
        self.bn_t = nn.BatchNorm3d(out_chans, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn_s(self.conv_trans_s(x)))
        return F.relu(self.bn_t(self.conv_trans_t(x)))


class SignPyramid(nn.Module):
    """Top-down pathway over blocks 2-4: c4 -> (+c3) -> (+c2). Returns [p2, p3, c4] pooled to (B, T_i, C_i)."""

    def __init__(self, channels: tuple[int, int, int]):
        super().__init__()
        c2, c3, c4 = channels
        # block 4 runs at T/4, blocks 2-3 at T/2: only the first step up-samples time
        self.upsample_layers = nn.ModuleList([PyramidUpsample(c4, c3, 2), PyramidUpsample(c3, c2, 1)])

    def forward(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        c2, c3, c4 = blocks[1], blocks[2], blocks[3]
        p3 = c3 + _match(self.upsample_layers[0](c4), c3)
        p2 = c2 + _match(self.upsample_layers[1](p3), c2)
        return [spatial_pool(x).transpose(1, 2) for x in (p2, p3, c4)]


def _match(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Crop an up-sampled map to ``ref``'s (T, H, W): odd sizes make the transposed conv overshoot by one."""
    if x.shape[2:] == ref.shape[2:]:
        return x
    if any(a < b for a, b in zip(x.shape[2:], ref.shape[2:])):
        raise ValueError(f"SignPyramid: up-sampled map {tuple(x.shape)} is smaller than {tuple(ref.shape)}")
    return x[:, :, : ref.shape[2], : ref.shape[3], : ref.shape[4]]


class SingleStreamS3D(nn.Module):
    """One S3D stream under the attribute name the two-stream model uses (``rgb_stream``/``keypoint_stream``)."""

    def __init__(self, stream: str, config: S3DConfig, freeze_block1: bool):
        super().__init__()
        self.stream = stream
        setattr(self, f"{stream}_stream", S3D(config))
        self.freeze_block1 = freeze_block1
        if freeze_block1:
            for p in self.net.blocks[0].parameters():
                p.requires_grad_(False)

    @property
    def net(self) -> S3D:
        return getattr(self, f"{self.stream}_stream")

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_block1:
            self.net.blocks[0].eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net(x).blocks


def output_lengths(lengths: torch.Tensor, t_in: int, t_out: int) -> torch.Tensor:
    """Valid frames after temporal down-sampling: floor(len * T_out / T_in), as the official code."""
    return torch.div(lengths * t_out, t_in, rounding_mode="floor").clamp_(min=1)


class TwoStreamSLR(nn.Module):
    """The TwoStream-SLR recognition network (or one of its single-stream pretraining variants)."""

    def __init__(self, config: TwoStreamSLRConfig | None = None, **kwargs):
        super().__init__()
        self.config = cfg = config or TwoStreamSLRConfig(**kwargs)
        if cfg.vocab_size < 2:
            raise ConfigError("TwoStreamSLR: vocab_size is unresolved (0); build the vocabulary from the data first")
        streams = cfg.stream_names()
        if cfg.streams == "both":
            self.backbone = TwoStreamS3D(cfg.s3d("rgb"), cfg.s3d("keypoint"),
                                         lateral_blocks=(1, 2, 3) if cfg.laterals else (),
                                         lateral_kernel=cfg.lateral_kernel, freeze_rgb_block1=cfg.freeze_rgb_block1,
                                         zero_init_laterals=cfg.lateral_zero_init)
        else:
            self.backbone = SingleStreamS3D(cfg.streams, cfg.s3d(cfg.streams),
                                            freeze_block1=cfg.freeze_rgb_block1 and cfg.streams == "rgb")
        channels = {s: cfg.s3d(s).block_channels for s in streams}
        self.pyramids = nn.ModuleDict(
            {s: SignPyramid(channels[s][1:4]) for s in streams} if cfg.pyramid else {}
        )

        def head(in_dim: int) -> VisualHead:
            return VisualHead(in_dim, cfg.vocab_size, cfg.head_hidden, cfg.head_ff, cfg.head_dropout)

        heads = {}
        for s in streams:
            heads[s] = head(channels[s][3])
            if cfg.pyramid:
                heads[f"{s}_aux1"] = head(channels[s][1])  # block-2 level (official *_remain.0)
                heads[f"{s}_aux2"] = head(channels[s][2])  # block-3 level (official *_remain.1)
        if cfg.streams == "both" and cfg.joint_head:
            heads["joint"] = head(channels["keypoint"][3] + channels["rgb"][3])
        self.heads = nn.ModuleDict(heads)
        for module in (self.backbone, self.pyramids):  # the heads keep their own BN settings
            set_bn_momentum(module, cfg.bn_momentum)

    # ------------------------------------------------------------------------------------------ features
    def _stream_blocks(self, rgb: torch.Tensor | None, heatmaps: torch.Tensor | None) -> dict[str, list[torch.Tensor]]:
        cfg = self.config
        if cfg.streams == "both":
            out = self.backbone(rgb, heatmaps)
            return {"rgb": out.rgb_blocks, "keypoint": out.keypoint_blocks}
        x = rgb if cfg.streams == "rgb" else heatmaps
        if x is None:
            raise ValueError(f"TwoStreamSLR(streams={cfg.streams!r}) needs its {cfg.streams} input")
        return {cfg.streams: self.backbone(x)}

    def _levels(self, blocks: dict[str, list[torch.Tensor]]) -> dict[str, list[torch.Tensor]]:
        """Per stream: [aux1 input, aux2 input, main input] as (B, T_i, C_i) (only main without a pyramid)."""
        if self.config.pyramid:
            return {s: self.pyramids[s](b) for s, b in blocks.items()}
        return {s: [spatial_pool(b[3]).transpose(1, 2)] for s, b in blocks.items()}

    def extract_features(self, rgb: torch.Tensor | None, heatmaps: torch.Tensor | None,
                         lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """The main heads' inputs (what TwoStream-SLT consumes): rgb/keypoint (B, T/4, C), joint (B, T/4, 2C)
        = concat[keypoint, rgb], and their valid ``lengths`` (B,)."""
        t_in = (rgb if rgb is not None else heatmaps).shape[2]
        levels = self._levels(self._stream_blocks(rgb, heatmaps))
        out = {s: lv[-1] for s, lv in levels.items()}
        if "rgb" in out and "keypoint" in out:
            out["joint"] = torch.cat([out["keypoint"], out["rgb"]], dim=-1)
        main = next(iter(levels.values()))[-1]
        out["lengths"] = output_lengths(lengths.to(main.device), t_in, main.shape[1])
        return out

    # --------------------------------------------------------------------------------------------- heads
    def forward(self, rgb: torch.Tensor | None, heatmaps: torch.Tensor | None,
                lengths: torch.Tensor) -> TwoStreamOutput:
        """rgb (B, 3, T, H, W), heatmaps (B, K, T, H/2, W/2), lengths (B,) valid input frames."""
        t_in = (rgb if rgb is not None else heatmaps).shape[2]
        levels = self._levels(self._stream_blocks(rgb, heatmaps))
        inputs: dict[str, torch.Tensor] = {}
        for s, lv in levels.items():
            inputs[s] = lv[-1]
            if self.config.pyramid:
                inputs[f"{s}_aux1"], inputs[f"{s}_aux2"] = lv[0], lv[1]
        if "joint" in self.heads:
            inputs["joint"] = torch.cat([inputs["keypoint"], inputs["rgb"]], dim=-1)
        heads = {}
        for name, x in inputs.items():
            lens = output_lengths(lengths.to(x.device), t_in, x.shape[1])
            heads[name] = {**self.heads[name](x, lens), "lengths": lens}
        main = [heads[n]["logits"] for n in MAIN_HEADS if n in heads]
        ensemble = torch.stack([m.float().softmax(-1) for m in main]).sum(0).log()
        main_lengths = heads[next(n for n in MAIN_HEADS if n in heads)]["lengths"]
        return TwoStreamOutput(heads=heads, ensemble_log_probs=ensemble, lengths=main_lengths)


@register_model("twostream_slr")
def twostream_slr(**kwargs) -> TwoStreamSLR:
    """TwoStream-SLR recognition network; kwargs are TwoStreamSLRConfig fields."""
    return TwoStreamSLR(TwoStreamSLRConfig(**kwargs))
