"""VKNet, NLA-SLR's video-keypoint backbone, and its seven classification heads (spec sign_language.md §2b).

Four S3D streams see one sign clip at two temporal resolutions and two modalities:

    RGB-64  (B, 3, 64, 224, 224)     KP-64  (B, 63, 64, 112, 112)   heatmaps of the 63-point subset
    RGB-32  (B, 3, 32, 224, 224)     KP-32  (B, 63, 32, 112, 112)   a consecutive sub-window of the 64

After each of blocks 1-4 the streams exchange features, in this order (each direction reads the other
stream's *pre-fusion* features, the fusion is addition):

1. intra-resolution RGB <-> KP laterals, kernel (1, 3, 3), spatial ratio 2 (``TwoStreamS3D``'s laterals);
2. inter-resolution RGB-64 <-> RGB-32, kernel (3, 1, 1), temporal ratio 2 (strided Conv3d high->low,
   ConvTranspose3d low->high);
3. the same between KP-64 and KP-32.

No fusion after block 5. Each stream is pooled to a 1024-d vector (``clip_pool``: window-2 temporal average
then mean) and seven linear heads classify: one per stream, ``joint_h`` = [RGB-64, KP-64], ``joint_l`` =
[RGB-32, KP-32] and ``joint_all`` = all four. Every head also owns the two layers of inter-modality mixup
(a gloss-embedding mapper and a second classifier, see ``loss.py``).

``modalities="keypoint"`` is our own CPU variant (not in the paper): only KP-64 and KP-32 with their
inter-resolution laterals, heads ``kp_h``, ``kp_l`` and ``joint_all`` = [KP-64, KP-32].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import register_model
from visionzoo.nn.dual_s3d import TwoStreamS3D
from visionzoo.nn.s3d import S3D, S3DConfig, clip_pool, set_bn_momentum

FUSED_BLOCKS = (1, 2, 3, 4)  # laterals after these blocks; none after block 5
INTRA_KERNEL = (1, 3, 3)
INTER_KERNEL = (3, 1, 1)
# head name -> the pooled stream features it concatenates ("four_type3" of the official configs)
HEADS_FOUR_STREAM = {
    "rgb_h": ("rgb_h",), "rgb_l": ("rgb_l",), "kp_h": ("kp_h",), "kp_l": ("kp_l",),
    "joint_h": ("rgb_h", "kp_h"), "joint_l": ("rgb_l", "kp_l"), "joint_all": ("rgb_h", "rgb_l", "kp_h", "kp_l"),
}
HEADS_KEYPOINT_ONLY = {"kp_h": ("kp_h",), "kp_l": ("kp_l",), "joint_all": ("kp_h", "kp_l")}


@dataclass
class VKNetConfig:
    """The network and the input geometry it was trained with (``predict`` rebuilds the inputs from it)."""

    num_classes: int = 2000
    keypoint_channels: int = 63  # data.keypoints.NLA_SLR_63_INDICES
    width: float = 1.0  # S3D channel multiplier; 1.0 is the paper's network
    modalities: Literal["rgb+keypoint", "keypoint"] = "rgb+keypoint"
    emb_dim: int = 300  # gloss-embedding size the mixup mappers read (fastText 300, MiniLM 384)
    head_dropout: float = 0.0
    # S3D's BN momentum 1e-3 suits K400-initialised running statistics; trained from scratch over a few hundred
    # steps they stay near their init and eval-mode outputs are meaningless, so short runs raise it
    bn_momentum: float = 1e-3
    channels_last: bool = True
    # input geometry
    frames_high: int = 64
    frames_low: int = 32
    rgb_size: int = 224
    heatmap_size: int = 112
    raw_size: int = 256  # frames (and keypoints) are resized to raw_size^2 before cropping
    heatmap_sigma: float = 8.0  # Gaussian std in pixels of the raw_size frame
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.modalities not in ("rgb+keypoint", "keypoint"):
            raise ConfigError(f"VKNetConfig.modalities: expected 'rgb+keypoint' or 'keypoint', got {self.modalities!r}")
        if self.frames_high != 2 * self.frames_low or self.frames_low % 8:
            raise ConfigError(f"VKNetConfig: frames_high must be twice frames_low and frames_low a multiple of 8 "
                              f"(temporal ratio 2 at every fused block), got {self.frames_high} and {self.frames_low}")
        if self.rgb_size != 2 * self.heatmap_size:
            raise ConfigError(f"VKNetConfig: heatmaps run at half the RGB resolution, got rgb_size {self.rgb_size} "
                              f"and heatmap_size {self.heatmap_size}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ConfigError(f"VKNetConfig: {len(self.class_names)} class_names for num_classes={self.num_classes}")

    @property
    def heads(self) -> dict[str, tuple[str, ...]]:
        return HEADS_FOUR_STREAM if self.modalities == "rgb+keypoint" else HEADS_KEYPOINT_ONLY

    @property
    def joint_heads(self) -> tuple[str, ...]:
        return tuple(h for h in self.heads if h.startswith("joint"))


class InterResolutionLateral(nn.Module):
    """Bidirectional laterals between the 64- and 32-frame streams of one modality after one block."""

    def __init__(self, channels: int, kernel=INTER_KERNEL):
        super().__init__()
        kt, kh, kw = kernel
        padding = (kt // 2, kh // 2, kw // 2)
        self.high_to_low = nn.Conv3d(channels, channels, kernel, stride=(2, 1, 1), padding=padding, bias=False)
        # output_padding 1 in time: exactly twice the low stream's frames
        self.low_to_high = nn.ConvTranspose3d(channels, channels, kernel, stride=(2, 1, 1), padding=padding,
                                              output_padding=(1, 0, 0), bias=False)
        for conv in (self.high_to_low, self.low_to_high):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (B, C, 2T, H, W), (B, C, T, H, W) -> same shapes
        if high.shape[2] != 2 * low.shape[2] or high.shape[-2:] != low.shape[-2:]:
            raise ValueError(f"VKNet inter-resolution lateral: expected the high stream at twice the low stream's "
                             f"frames and the same H, W; got {tuple(high.shape)} and {tuple(low.shape)}")
        return high + self.low_to_high(low), low + self.high_to_low(high)


class ClassifierHead(nn.Module):
    """One of the seven heads: the classifier, plus inter-modality mixup's mapper phi and classifier W_mix."""

    def __init__(self, in_dim: int, num_classes: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(in_dim, num_classes)
        self.word_emb_mapper = nn.Linear(emb_dim, in_dim)  # phi: gloss embedding -> visual feature space
        self.mixed_classifier = nn.Linear(in_dim, num_classes)  # W_mix: scores visual + phi(gloss) blends

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))  # (B, C) -> (B, N)

    def mixed_logits(self, features: torch.Tensor, gloss_embeddings: torch.Tensor) -> torch.Tensor:
        """f_k = v + phi(e_k), scored by W_mix: (B, C), (B, K, E) -> (B, K, N)."""
        blended = features.unsqueeze(1) + self.word_emb_mapper(gloss_embeddings)
        return self.mixed_classifier(self.dropout(blended))


@dataclass
class VKNetOutput:
    features: dict[str, torch.Tensor]  # head name -> (B, C_head) the head's input
    logits: dict[str, torch.Tensor]  # head name -> (B, N)


def ensemble(logits: dict[str, torch.Tensor], heads) -> torch.Tensor:
    """log sum_h softmax(logits_h): the official ``ensemble_last`` (joint heads) / ``ensemble_all`` (all)."""
    return torch.stack([logits[h].softmax(-1) for h in heads]).sum(0).log()


class VKNet(nn.Module):
    """Four (or, keypoint-only, two) S3D streams with intra- and inter-resolution laterals and seven heads."""

    def __init__(self, config: VKNetConfig | None = None, **kwargs):
        super().__init__()
        self.config = cfg = config or VKNetConfig(**kwargs)
        kp = S3DConfig(in_chans=cfg.keypoint_channels, num_classes=0, num_blocks=5, dropout=0.0,
                       channels_last=cfg.channels_last, width=cfg.width)
        channels = kp.block_channels
        self.use_rgb = cfg.modalities == "rgb+keypoint"
        if self.use_rgb:
            rgb = S3DConfig(in_chans=3, num_classes=0, num_blocks=5, dropout=0.0, channels_last=cfg.channels_last,
                            width=cfg.width)
            # RGB<->KP per resolution; VKNet trains every block (no frozen block 1, spec §2b)
            self.high = TwoStreamS3D(rgb, kp, FUSED_BLOCKS, INTRA_KERNEL, freeze_rgb_block1=False)
            self.low = TwoStreamS3D(rgb, kp, FUSED_BLOCKS, INTRA_KERNEL, freeze_rgb_block1=False)
            self.rgb_inter = nn.ModuleDict({str(b): InterResolutionLateral(channels[b - 1]) for b in FUSED_BLOCKS})
            streams = {"rgb_h": self.high.rgb_stream, "rgb_l": self.low.rgb_stream,
                       "kp_h": self.high.keypoint_stream, "kp_l": self.low.keypoint_stream}
        else:
            self.kp_high, self.kp_low = S3D(kp), S3D(kp)
            streams = {"kp_h": self.kp_high, "kp_l": self.kp_low}
        self.kp_inter = nn.ModuleDict({str(b): InterResolutionLateral(channels[b - 1]) for b in FUSED_BLOCKS})
        set_bn_momentum(self, cfg.bn_momentum)
        self._streams = streams  # plain dict: the modules are registered above under their own names
        out = channels[-1]
        self.heads = nn.ModuleDict({name: ClassifierHead(out * len(parts), cfg.num_classes, cfg.emb_dim,
                                                         cfg.head_dropout)
                                    for name, parts in cfg.heads.items()})

    @property
    def head_names(self) -> tuple[str, ...]:
        return tuple(self.config.heads)

    def backbone(self, rgb_high: torch.Tensor | None, rgb_low: torch.Tensor | None, heatmaps_high: torch.Tensor,
                 heatmaps_low: torch.Tensor) -> dict[str, torch.Tensor]:
        """Clips -> pooled per-stream features {rgb_h, rgb_l, kp_h, kp_l} (B, C) (no rgb_* when keypoint-only).

        rgb_high (B, 3, T, H, W), rgb_low (B, 3, T/2, H, W), heatmaps_* (B, K, T | T/2, H/2, W/2).
        """
        x = {"kp_h": heatmaps_high, "kp_l": heatmaps_low}
        if self.use_rgb:
            if rgb_high is None or rgb_low is None:
                raise ValueError("VKNet: modalities 'rgb+keypoint' needs rgb_high and rgb_low clips")
            x = {"rgb_h": rgb_high, "rgb_l": rgb_low, **x}
        for name, clip in x.items():
            want = 3 if name.startswith("rgb") else self.config.keypoint_channels
            if clip.ndim != 5 or clip.shape[1] != want:
                raise ValueError(f"VKNet: input {name} must be (B, {want}, T, H, W), got {tuple(clip.shape)}")
        if self.config.channels_last:
            x = {k: v.contiguous(memory_format=torch.channels_last_3d) for k, v in x.items()}
        for i in range(5):
            x = {k: self._streams[k].blocks[i](v) for k, v in x.items()}
            block = str(i + 1)
            if i + 1 not in FUSED_BLOCKS:
                continue
            if self.use_rgb:  # order (official four_stream.py): intra, inter RGB, inter KP
                x["rgb_h"], x["kp_h"] = self.high.laterals[block](x["rgb_h"], x["kp_h"])
                x["rgb_l"], x["kp_l"] = self.low.laterals[block](x["rgb_l"], x["kp_l"])
                x["rgb_h"], x["rgb_l"] = self.rgb_inter[block](x["rgb_h"], x["rgb_l"])
            x["kp_h"], x["kp_l"] = self.kp_inter[block](x["kp_h"], x["kp_l"])
        return {k: clip_pool(v) for k, v in x.items()}

    def forward(self, rgb_high: torch.Tensor | None, rgb_low: torch.Tensor | None, heatmaps_high: torch.Tensor,
                heatmaps_low: torch.Tensor) -> VKNetOutput:
        pooled = self.backbone(rgb_high, rgb_low, heatmaps_high, heatmaps_low)
        feats = {name: torch.cat([pooled[p] for p in parts], dim=1) for name, parts in self.config.heads.items()}
        return VKNetOutput(features=feats, logits={name: self.heads[name](f) for name, f in feats.items()})

    def ensemble_last(self, logits: dict[str, torch.Tensor]) -> torch.Tensor:
        return ensemble(logits, self.config.joint_heads)

    def ensemble_all(self, logits: dict[str, torch.Tensor]) -> torch.Tensor:
        return ensemble(logits, self.head_names)


@register_model("nla_slr_vknet")
def nla_slr_vknet(**kwargs) -> VKNet:
    """VKNet with seven heads; kwargs are :class:`VKNetConfig` fields (saved in config.json)."""
    return VKNet(VKNetConfig(**kwargs))
