"""S3D: separable 3D Inception video backbone (Xie et al., "Rethinking Spatiotemporal Feature Learning", ECCV 2018).

Every 3D convolution with a k x k x k kernel is factorised into a spatial (1, k, k) convolution followed by a
temporal (k, 1, 1) one ("SepConv"), each with BatchNorm (eps 1e-3, momentum 1e-3, as in the TF original)
and ReLU. The network is split into the five blocks the sign-language papers tap (TwoStream-SLR, NLA-SLR):

| block | layers                                      | channels | stride (T, H/W) |
|-------|---------------------------------------------|----------|-----------------|
| 1     | SepConv3d_1a_7x7                            | 64       | 2, 2            |
| 2     | MaxPool3d_2a, Conv3d_2b_1x1, SepConv3d_2c   | 192      | 2, 4            |
| 3     | MaxPool3d_3a, Mixed_3b, Mixed_3c            | 480      | 2, 8            |
| 4     | MaxPool3d_4a, Mixed_4b .. Mixed_4f          | 832      | 4, 16           |
| 5     | MaxPool3d_5a, Mixed_5b, Mixed_5c            | 1024     | 8, 32           |

``model.blocks[i]`` is public so two-stream models can interleave two backbones block by block and add
lateral connections between them. Submodule names follow the kylemin/S3D port (``conv_s``/``bn_s``/
``conv_t``/``bn_t``, ``branch0..3``) that TwoStream-SLR's checkpoints use; ``convert_torchvision_s3d`` and
``convert_kylemin_s3d`` map the two common checkpoint layouts onto ours.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError

BN_EPS = 1e-3
BN_MOMENTUM = 1e-3  # PyTorch convention: TF's moving-average decay 0.999
BLOCK_CHANNELS = (64, 192, 480, 832, 1024)


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def set_bn_momentum(module: nn.Module, momentum: float) -> None:
    """Set the running-statistics momentum of every BatchNorm in ``module``.

    S3D's 1e-3 suits fine-tuning from K400 statistics. Trained from scratch for a few hundred steps, the
    running statistics stay near their initial (0, 1), and eval-mode outputs no longer match training.
    """
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def fold_bn(conv: nn.Conv3d, bn: nn.BatchNorm3d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of the single conv equal to bias-free ``conv`` followed by eval-mode ``bn``.

    Recomputed on every call (cheap next to the convolution; stays differentiable, so frozen-BN fine-tuning
    still trains the conv), it saves one full read + write of the activation per BN.
    """
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return conv.weight * scale.view(-1, 1, 1, 1, 1), bn.bias - bn.running_mean * scale


def _conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride=1, padding=0) -> torch.Tensor:
    """F.conv3d, sending float32 CPU convolutions to oneDNN.

    PyTorch's backend heuristic, tuned for 2D, picks the unvectorised vol2col path for batch-1 clips with
    small C*T*H (most S3D layers); oneDNN runs those several times faster on CPU.
    """
    if x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
        stride = (stride,) * 3 if isinstance(stride, int) else stride
        padding = (padding,) * 3 if isinstance(padding, int) else padding
        return torch.mkldnn_convolution(x, weight, bias, padding, stride, (1, 1, 1), 1)
    return F.conv3d(x, weight, bias, stride, padding)


def _conv_bn_relu(x: torch.Tensor, conv: nn.Conv3d, bn: nn.BatchNorm3d, training: bool) -> torch.Tensor:
    if training:  # batch statistics: BN must see the conv output
        return F.relu(bn(conv(x)), inplace=True)
    weight, bias = fold_bn(conv, bn)
    return F.relu(_conv3d(x, weight, bias, conv.stride, conv.padding), inplace=True)


class BasicConv3d(nn.Module):
    """Conv3d (no bias) -> BN -> ReLU."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 1, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv3d(in_chans, out_chans, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = _bn(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _conv_bn_relu(x, self.conv, self.bn, self.training)


class SepConv3d(nn.Module):
    """A k x k x k conv factorised as spatial (1, k, k) then temporal (k, 1, 1), each followed by BN + ReLU."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        k, s, p = kernel_size, stride, padding
        self.conv_s = nn.Conv3d(in_chans, out_chans, (1, k, k), stride=(1, s, s), padding=(0, p, p), bias=False)
        self.bn_s = _bn(out_chans)
        self.conv_t = nn.Conv3d(out_chans, out_chans, (k, 1, 1), stride=(s, 1, 1), padding=(p, 0, 0), bias=False)
        self.bn_t = _bn(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _conv_bn_relu(x, self.conv_s, self.bn_s, self.training)
        return _conv_bn_relu(x, self.conv_t, self.bn_t, self.training)


class SepInception(nn.Module):
    """An Inception ("Mixed") block whose 3x3x3 convolutions are SepConvs; the four branches are concatenated."""

    def __init__(self, in_chans: int, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int, b3: int):
        super().__init__()
        self.branch0 = BasicConv3d(in_chans, b0)
        self.branch1 = nn.Sequential(BasicConv3d(in_chans, b1_mid), SepConv3d(b1_mid, b1, 3, padding=1))
        self.branch2 = nn.Sequential(BasicConv3d(in_chans, b2_mid), SepConv3d(b2_mid, b2, 3, padding=1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), BasicConv3d(in_chans, b3))
        self.out_chans = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C_in, T, H, W) -> (B, b0 + b1 + b2 + b3, T, H, W)
        if self.training:
            return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)
        # eval: the three 1x1x1 convs that read x run as one conv (one pass over x, one larger GEMM)
        units = (self.branch0, self.branch1[0], self.branch2[0])
        weights, biases = zip(*(fold_bn(u.conv, u.bn) for u in units))
        y = F.relu(_conv3d(x, torch.cat(weights), torch.cat(biases)), inplace=True)
        x0, x1, x2 = y.split([u.conv.out_channels for u in units], dim=1)
        return torch.cat([x0, self.branch1[1](x1), self.branch2[1](x2), self.branch3(x)], dim=1)


def _scaled(channels: int, width: float) -> int:
    """A channel count times the width multiplier, rounded, at least 1 (width 1.0 returns it unchanged)."""
    return channels if width == 1.0 else max(1, int(round(channels * width)))


def _inception(in_chans: int, width: float, *branches: int) -> SepInception:
    return SepInception(in_chans, *(_scaled(c, width) for c in branches))


def _layout(in_chans: int, width: float = 1.0) -> list[list[tuple[str, nn.Module]]]:
    """The five blocks as (endpoint name, module) lists, in the order of the original network.

    ``width`` scales every convolution's output channels (the branch widths of the Inception blocks, so a
    block's output is the sum of its scaled branches); 1.0 is the original network.
    """
    w = width
    c64, c192 = _scaled(64, w), _scaled(192, w)
    mixed_3b = _inception(c192, w, 64, 96, 128, 16, 32, 32)
    mixed_3c = _inception(mixed_3b.out_chans, w, 128, 128, 192, 32, 96, 64)
    mixed_4b = _inception(mixed_3c.out_chans, w, 192, 96, 208, 16, 48, 64)
    mixed_4c = _inception(mixed_4b.out_chans, w, 160, 112, 224, 24, 64, 64)
    mixed_4d = _inception(mixed_4c.out_chans, w, 128, 128, 256, 24, 64, 64)
    mixed_4e = _inception(mixed_4d.out_chans, w, 112, 144, 288, 32, 64, 64)
    mixed_4f = _inception(mixed_4e.out_chans, w, 256, 160, 320, 32, 128, 128)
    mixed_5b = _inception(mixed_4f.out_chans, w, 256, 160, 320, 32, 128, 128)
    mixed_5c = _inception(mixed_5b.out_chans, w, 384, 192, 384, 48, 128, 128)
    return [
        [("SepConv3d_1a_7x7", SepConv3d(in_chans, c64, 7, stride=2, padding=3))],
        [
            ("MaxPool3d_2a_3x3", nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))),
            ("Conv3d_2b_1x1", BasicConv3d(c64, c64)),
            ("SepConv3d_2c_3x3", SepConv3d(c64, c192, 3, padding=1)),
        ],
        [
            ("MaxPool3d_3a_3x3", nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))),
            ("Mixed_3b", mixed_3b),
            ("Mixed_3c", mixed_3c),
        ],
        [
            ("MaxPool3d_4a_3x3", nn.MaxPool3d(3, stride=2, padding=1)),
            ("Mixed_4b", mixed_4b),
            ("Mixed_4c", mixed_4c),
            ("Mixed_4d", mixed_4d),
            ("Mixed_4e", mixed_4e),
            ("Mixed_4f", mixed_4f),
        ],
        [
            ("MaxPool3d_5a_2x2", nn.MaxPool3d(2, stride=2)),
            ("Mixed_5b", mixed_5b),
            ("Mixed_5c", mixed_5c),
        ],
    ]


def block_channels(width: float = 1.0) -> tuple[int, ...]:
    """Output channels of blocks 1..5 at a width multiplier (64/192/480/832/1024 at 1.0)."""
    if width == 1.0:
        return BLOCK_CHANNELS
    w = width
    ends = [_scaled(64, w), _scaled(192, w)]
    # block 3 ends with Mixed_3c, block 4 with Mixed_4f, block 5 with Mixed_5c: sums of their scaled branches
    ends.append(sum(_scaled(c, w) for c in (128, 192, 96, 64)))
    ends.append(sum(_scaled(c, w) for c in (256, 320, 128, 128)))
    ends.append(sum(_scaled(c, w) for c in (384, 384, 128, 128)))
    return tuple(ends)


# The endpoint names of all 16 layers, in network order, with the block (0-based) each belongs to.
with torch.device("meta"):  # names only: allocate and initialise nothing
    LAYER_NAMES: list[tuple[int, str]] = [(b, name) for b, block in enumerate(_layout(1)) for name, _ in block]


@dataclass
class S3DConfig:
    in_chans: int = 3  # 3 for RGB frames, 79 (TwoStream-SLR) or 63 (NLA-SLR) for keypoint heatmaps
    num_classes: int = 400  # 0: no classifier, the model is a feature extractor
    num_blocks: int = 5  # build blocks 1..num_blocks only (TwoStream-SLR keeps 4)
    dropout: float = 0.2  # before the classifier
    channels_last: bool = True  # run convolutions in channels_last_3d memory format (faster on CPU)
    width: float = 1.0  # channel multiplier for narrow CPU models; 1.0 is the original network

    def __post_init__(self):
        if not self.width > 0:
            raise ConfigError(f"S3DConfig.width: expected a positive multiplier, got {self.width}")
        if not 1 <= self.num_blocks <= 5:
            raise ConfigError(f"S3DConfig.num_blocks: expected 1..5, got {self.num_blocks}")
        if self.in_chans < 1 or self.num_classes < 0:
            raise ConfigError(
                f"S3DConfig: expected in_chans >= 1 and num_classes >= 0, got {self.in_chans} and {self.num_classes}"
            )

    @property
    def block_channels(self) -> tuple[int, ...]:
        """Output channels of blocks 1..num_blocks at this width."""
        return block_channels(self.width)[: self.num_blocks]

    @property
    def out_chans(self) -> int:
        return self.block_channels[-1]


@dataclass
class S3DOutput:
    blocks: list[torch.Tensor]  # output of every block run, block 1 first; each (B, C_i, T_i, H_i, W_i)
    features: torch.Tensor  # (B, C, T', H', W'): output of the last block run
    logits: torch.Tensor | None = None  # (B, num_classes) when a classifier ran


def spatial_pool(x: torch.Tensor) -> torch.Tensor:
    """Mean over space: (B, C, T, H, W) -> (B, C, T), the frame-feature sequence sign-language heads consume."""
    return x.mean(dim=(3, 4))


def clip_pool(x: torch.Tensor) -> torch.Tensor:
    """Clip-level pooling of the S3D classifier: (B, C, T, H, W) -> (B, C).

    Average over space, then over temporal windows of 2 steps with stride 1, then over those windows. This is
    the original head's AvgPool3d((2, 7, 7), stride=1) + mean at 224 px, generalised to any input size; with
    more than 2 steps the first and last steps weigh half as much as the others, as in the original.
    """
    seq = spatial_pool(x)  # (B, C, T)
    if seq.shape[-1] > 1:
        seq = F.avg_pool1d(seq, kernel_size=2, stride=1)
    return seq.mean(dim=-1)


class S3D(nn.Module):
    def __init__(self, config: S3DConfig | None = None, **kwargs):
        super().__init__()
        self.config = config = config or S3DConfig(**kwargs)
        layout = _layout(config.in_chans, config.width)[: config.num_blocks]
        self.blocks = nn.ModuleList(nn.Sequential(OrderedDict(block)) for block in layout)
        self.head_drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.out_chans, config.num_classes) if config.num_classes else None

    def forward(self, x: torch.Tensor, num_blocks: int | None = None) -> S3DOutput:
        """Run blocks 1..num_blocks (default: all built) on a clip (B, C_in, T, H, W).

        The classifier runs only when every block ran and the model has one.
        """
        n = len(self.blocks) if num_blocks is None else num_blocks
        if not 1 <= n <= len(self.blocks):
            raise ValueError(f"S3D.forward: num_blocks must be in 1..{len(self.blocks)}, got {n}")
        if x.ndim != 5 or x.shape[1] != self.config.in_chans:
            raise ValueError(
                f"S3D.forward: expected a clip (B, {self.config.in_chans}, T, H, W), got shape {tuple(x.shape)}"
            )
        if self.config.channels_last:
            # oneDNN's 3D convolutions are faster on NDHWC; every later op keeps the format
            x = x.contiguous(memory_format=torch.channels_last_3d)
        outs = []
        for block in self.blocks[:n]:
            x = block(x)
            outs.append(x)
        logits = None
        if self.head is not None and n == len(self.blocks):
            logits = self.head(self.head_drop(clip_pool(x)))
        return S3DOutput(blocks=outs, features=x, logits=logits)

    def forward_sequence(self, x: torch.Tensor, num_blocks: int | None = None) -> torch.Tensor:
        """(B, C_in, T, H, W) -> (B, C, T'): last block's output pooled over space (T' = T/4 after block 4)."""
        return spatial_pool(self.forward(x, num_blocks).features)


# ---------------------------------------------------------------------------------------------------------
# Checkpoint converters. Both take a state dict (tensors only; read files with safetensors or
# torch.load(weights_only=True)) and return one that loads into S3D with strict=True.


def unwrap_state_dict(sd: dict) -> dict[str, torch.Tensor]:
    """Unwrap {'state_dict': ...} / {'model_state': ...} / {'model': ...} and strip DataParallel 'module.'."""
    for wrapper in ("state_dict", "model_state", "model"):
        if wrapper in sd and isinstance(sd[wrapper], dict):
            sd = sd[wrapper]
    out = {}
    for k, v in sd.items():
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


def _our_key(layer: int, rest: str) -> str:
    block, name = LAYER_NAMES[layer]
    return f"blocks.{block}.{name}.{rest}"


def _torchvision_rest(name: str, rest: str, key: str) -> str:
    """Rename a key inside one torchvision layer (Sequential indices) to our submodule names."""
    unit = {"0": "conv", "1": "bn"}  # Conv3dNormActivation = Sequential(conv, bn, relu)
    part = {"0": "s", "1": "t"}  # TemporalSeparableConv = Sequential(spatial unit, temporal unit)
    t = rest.split(".")
    try:
        if name.startswith("SepConv3d"):  # "0.1.weight" -> "bn_s.weight"
            return f"{unit[t[1]]}_{part[t[0]]}.{'.'.join(t[2:])}"
        if name.startswith("Conv3d"):  # "1.running_mean" -> "bn.running_mean"
            return f"{unit[t[0]]}.{'.'.join(t[1:])}"
        if name.startswith("Mixed"):
            branch = t[0]
            if branch == "branch0":  # a single unit
                return f"branch0.{unit[t[1]]}.{'.'.join(t[2:])}"
            if branch == "branch3":  # (maxpool, unit)
                return f"branch3.1.{unit[t[2]]}.{'.'.join(t[3:])}"
            if branch in ("branch1", "branch2"):  # (1x1 unit, separable conv)
                if t[1] == "0":
                    return f"{branch}.0.{unit[t[2]]}.{'.'.join(t[3:])}"
                return f"{branch}.1.{unit[t[3]]}_{part[t[2]]}.{'.'.join(t[4:])}"
    except (KeyError, IndexError):
        pass
    raise CheckpointError(f"torchvision S3D checkpoint: unexpected key {key!r}")


def convert_torchvision_s3d(sd: dict) -> dict[str, torch.Tensor]:
    """torchvision.models.video.S3D state dict -> ours (classifier conv 1x1x1 -> Linear)."""
    out = {}
    for key, value in unwrap_state_dict(sd).items():
        t = key.split(".", 2)
        if t[0] == "features" and len(t) == 3 and t[1].isdigit() and int(t[1]) < len(LAYER_NAMES):
            layer = int(t[1])
            out[_our_key(layer, _torchvision_rest(LAYER_NAMES[layer][1], t[2], key))] = value
        elif key in ("classifier.1.weight", "classifier.1.bias"):
            out[f"head.{key.rsplit('.', 1)[1]}"] = value.flatten(1) if value.ndim == 5 else value
        else:
            raise CheckpointError(f"torchvision S3D checkpoint: unexpected key {key!r}")
    return out


def convert_kylemin_s3d(sd: dict) -> dict[str, torch.Tensor]:
    """kylemin/S3D state dict (``base.<i>.*`` + ``fc.*``; the K400 weights TwoStream-SLR starts from) -> ours.

    Its submodule names are ours already, only the flat ``base`` index becomes (block, endpoint).
    """
    out = {}
    for key, value in unwrap_state_dict(sd).items():
        t = key.split(".", 2)
        if t[0] == "base" and len(t) == 3 and t[1].isdigit() and int(t[1]) < len(LAYER_NAMES):
            out[_our_key(int(t[1]), t[2])] = value
        elif key in ("fc.weight", "fc.bias"):
            out[f"head.{t[1]}"] = value.flatten(1) if value.ndim == 5 else value
        else:
            raise CheckpointError(f"kylemin S3D checkpoint: unexpected key {key!r}")
    return out


def check_state_dict(sd: dict[str, torch.Tensor], model: nn.Module, source: str) -> None:
    """Raise CheckpointError naming the first missing/unexpected key or mismatched shape (and how many more).

    ``num_batches_tracked`` buffers may be absent (checkpoints from before PyTorch 0.4.1 lack them).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in expected]
    for problem, keys in (("missing key", missing), ("unexpected key", unexpected)):
        if keys:
            more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
            raise CheckpointError(f"{source}: {problem} {keys[0]!r}{more}; expected the {type(model).__name__} layout")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CheckpointError(
                f"{source}: key {k!r} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}"
            )
