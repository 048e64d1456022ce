"""Slimmable networks: one set of full-size weights that runs at several widths (Yu et al. 2019).

Width ``w`` runs the *leading* channel slice of every conv / linear weight,
``weight[:int(C_out * w), :int(C_in * w)]``, so the narrow networks are nested inside the wide one and
share its weights. BatchNorm cannot be shared (each width sees different feature statistics), so it is
*switchable*: one private BN per width, picked by the position of ``w`` in the width list sorted in
descending order (index 0 = the widest). SlimCLR (arXiv 2209.15525) trains such a ResNet-50 with a
contrastive objective; the loss pieces live in ``visionzoo.methods.ssl.slimclr.loss``.

The active width is a plain attribute on each slimmable module (not a buffer: it is run-time state,
not a weight). Set it on a whole model with ``set_width(model, w)``, which also works as a context
manager that restores the previous widths on exit.

State-dict names follow the official SlimCLR code (``conv1``, ``bn1.bn.{i}``, ``features.{k}.conv1``,
``features.{k}.shortcut.{0,1}``, head ``fc.{0,2}``) so released checkpoints load after stripping their
wrapper prefixes (``convert_official_slimclr_state_dict``). ``export_width`` cuts one width out as a
plain torchvision-layout ResNet state dict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError

__all__ = [
    "scaled_channels",
    "width_index",
    "set_width",
    "SlimmableConv2d",
    "SlimmableLinear",
    "SwitchableBatchNorm1d",
    "SwitchableBatchNorm2d",
    "SlimmableBasicBlock",
    "SlimmableBottleneck",
    "SlimmableResNetConfig",
    "SlimmableResNet",
    "SlimmableMLPHead",
    "SlimmableEncoder",
    "slim_resnet50",
    "slim_resnet18",
    "slim_resnet_tiny",
    "mocov2_head",
    "mocov3_head",
    "count_params_at_width",
    "export_width",
    "narrow_resnet",
    "convert_official_slimclr_state_dict",
]


# --------------------------------------------------------------------------------------------------
# widths
# --------------------------------------------------------------------------------------------------


def scaled_channels(channels: int, width: float) -> int:
    """Channels used at ``width``: truncation, as in the official code, so checkpoint shapes match."""
    return int(channels * width)


def _sorted_widths(widths: Iterable[float]) -> tuple[float, ...]:
    ws = tuple(sorted((float(w) for w in widths), reverse=True))
    if not ws or len(set(ws)) != len(ws) or any(not 0.0 < w <= 1.0 for w in ws):
        raise ConfigError(f"widths: expected distinct values in (0, 1], got {list(widths)}")
    return ws


def width_index(widths: Iterable[float], width: float) -> int:
    """Position of ``width`` in ``widths`` sorted descending: the switchable-BN copy (official ``bn.{i}``)."""
    ordered = _sorted_widths(widths)
    if float(width) not in ordered:
        raise ConfigError(
            f"width {width} is not one of the trained widths {list(ordered)} (switchable BN has no statistics for it)"
        )
    return ordered.index(float(width))


class _Slimmable:
    """Marker + shared state of modules that run at a width: ``widths`` (descending) and ``width``."""

    widths: tuple[float, ...]
    width: float

    def _init_widths(self, widths: Iterable[float]) -> None:
        self.widths = _sorted_widths(widths)
        self.width = self.widths[0]

    def _leading_slice(self, c_out: int, c_in: int) -> torch.Tensor:
        # Sliced inside the autograd graph, so gradients of every width reach the shared weight. The
        # copy to contiguous memory is small next to the activations and measured ~5% faster on CPU
        # convolutions than passing the strided view.
        return self.weight[:c_out, :c_in].contiguous()  # type: ignore[attr-defined]


class _WidthScope:
    """Returned by ``set_width``; as a context manager it restores the widths that were active before."""

    def __init__(self, previous: list[tuple[_Slimmable, float]]):
        self._previous = previous

    def __enter__(self) -> "_WidthScope":
        return self

    def __exit__(self, *exc: object) -> None:
        for module, width in self._previous:
            module.width = width


def set_width(module: nn.Module, width: float) -> _WidthScope:
    """Make every slimmable submodule of ``module`` run at ``width``.

    Use as a statement (``set_width(model, 0.5)``) or as ``with set_width(model, 0.5): ...`` to restore
    the previous widths afterwards. All submodules are checked before any is changed.
    """
    targets = [(name, m) for name, m in module.named_modules() if isinstance(m, _Slimmable)]
    for name, m in targets:
        if float(width) not in m.widths:
            raise ConfigError(
                f"{name or type(m).__name__}: width {width} is not one of its widths {list(m.widths)}"
            )
    previous = [(m, m.width) for _, m in targets]
    for _, m in targets:
        m.width = float(width)
    return _WidthScope(previous)


# --------------------------------------------------------------------------------------------------
# slimmable layers
# --------------------------------------------------------------------------------------------------


class SlimmableConv2d(_Slimmable, nn.Conv2d):
    """A Conv2d holding full-size weights; at width w it uses ``weight[:int(C_out*w), :int(C_in*w)]``.

    ``slim_in=False`` / ``slim_out=False`` fix channels that do not scale (e.g. the stem's 3 inputs).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = False,
        widths: Iterable[float] = (1.0,),
        slim_in: bool = True,
        slim_out: bool = True,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self._init_widths(widths)
        self.slim_in, self.slim_out = slim_in, slim_out

    def active_channels(self, width: float | None = None) -> tuple[int, int]:
        w = self.width if width is None else width
        c_out = scaled_channels(self.out_channels, w) if self.slim_out else self.out_channels
        c_in = scaled_channels(self.in_channels, w) if self.slim_in else self.in_channels
        return c_out, c_in

    def sliced_weight(self, width: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        c_out, c_in = self.active_channels(width)
        if (c_out, c_in) == (self.out_channels, self.in_channels):
            return self.weight, self.bias  # full width: skip the slicing op in the autograd graph
        return self._leading_slice(c_out, c_in), None if self.bias is None else self.bias[:c_out]

    def num_params_at(self, width: float) -> int:
        c_out, c_in = self.active_channels(width)
        k = self.weight.shape[2] * self.weight.shape[3]
        return c_out * c_in * k + (c_out if self.bias is not None else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, int(C_in*w), H, W) -> (B, int(C_out*w), H', W')
        weight, bias = self.sliced_weight()
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class SlimmableLinear(_Slimmable, nn.Linear):
    """A Linear holding full-size weights; at width w it uses ``weight[:int(out*w), :int(in*w)]``.

    ``slim_out=False`` keeps a fixed output dim across widths (e.g. the 128-d contrastive embedding).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        widths: Iterable[float] = (1.0,),
        slim_in: bool = True,
        slim_out: bool = True,
    ):
        super().__init__(in_features, out_features, bias=bias)
        self._init_widths(widths)
        self.slim_in, self.slim_out = slim_in, slim_out

    def active_channels(self, width: float | None = None) -> tuple[int, int]:
        w = self.width if width is None else width
        c_out = scaled_channels(self.out_features, w) if self.slim_out else self.out_features
        c_in = scaled_channels(self.in_features, w) if self.slim_in else self.in_features
        return c_out, c_in

    def sliced_weight(self, width: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        c_out, c_in = self.active_channels(width)
        if (c_out, c_in) == (self.out_features, self.in_features):
            return self.weight, self.bias
        return self._leading_slice(c_out, c_in), None if self.bias is None else self.bias[:c_out]

    def num_params_at(self, width: float) -> int:
        c_out, c_in = self.active_channels(width)
        return c_out * c_in + (c_out if self.bias is not None else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, int(in*w)) -> (B, int(out*w))
        weight, bias = self.sliced_weight()
        return F.linear(x, weight, bias)


class _SwitchableBatchNorm(_Slimmable, nn.Module):
    norm_layer: type[nn.modules.batchnorm._BatchNorm]

    def __init__(
        self, num_features: int, widths: Iterable[float] = (1.0,), affine: bool = True, slim: bool = True
    ):
        super().__init__()
        self._init_widths(widths)
        self.num_features, self.slim = num_features, slim
        # One private BN per width (own affine parameters and running statistics), widest first.
        self.bn = nn.ModuleList(
            self.norm_layer(scaled_channels(num_features, w) if slim else num_features, affine=affine)
            for w in self.widths
        )

    @property
    def index(self) -> int:
        return self.widths.index(self.width)

    def num_params_at(self, width: float) -> int:
        return sum(p.numel() for p in self.bn[self.widths.index(width)].parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn[self.index](x)


class SwitchableBatchNorm2d(_SwitchableBatchNorm):
    """One private ``BatchNorm2d`` per width; x: (B, int(C*w), H, W)."""

    norm_layer = nn.BatchNorm2d


class SwitchableBatchNorm1d(_SwitchableBatchNorm):
    """One private ``BatchNorm1d`` per width; x: (B, int(C*w)). ``affine=False`` for MoCo v3's last BN."""

    norm_layer = nn.BatchNorm1d


# --------------------------------------------------------------------------------------------------
# slimmable ResNet
# --------------------------------------------------------------------------------------------------


class SlimmableBasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with slimmable convs and switchable BNs."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int, widths: Iterable[float]):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = SlimmableConv2d(in_channels, planes, 3, stride, 1, widths=widths)
        self.bn1 = SwitchableBatchNorm2d(planes, widths)
        self.conv2 = SlimmableConv2d(planes, out, 3, 1, 1, widths=widths)
        self.bn2 = SwitchableBatchNorm2d(out, widths)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out, stride, widths)

    @property
    def last_bn(self) -> SwitchableBatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as torchvision: saves one activation-sized allocation per block
        return self.relu(out)


class SlimmableBottleneck(nn.Module):
    """ResNet v1.5 bottleneck (1x1, 3x3 with the stride, 1x1 x4) with slimmable convs and switchable BNs."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int, widths: Iterable[float]):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = SlimmableConv2d(in_channels, planes, 1, widths=widths)
        self.bn1 = SwitchableBatchNorm2d(planes, widths)
        self.conv2 = SlimmableConv2d(planes, planes, 3, stride, 1, widths=widths)
        self.bn2 = SwitchableBatchNorm2d(planes, widths)
        self.conv3 = SlimmableConv2d(planes, out, 1, widths=widths)
        self.bn3 = SwitchableBatchNorm2d(out, widths)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out, stride, widths)

    @property
    def last_bn(self) -> SwitchableBatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


def _shortcut(in_channels: int, out: int, stride: int, widths: Iterable[float]) -> nn.Sequential | None:
    # Projection shortcut only where the shape changes; stored as shortcut.0 (conv) + shortcut.1 (BN).
    if stride == 1 and in_channels == out:
        return None
    return nn.Sequential(
        SlimmableConv2d(in_channels, out, 1, stride, widths=widths), SwitchableBatchNorm2d(out, widths)
    )


_BLOCKS: dict[str, type[SlimmableBasicBlock] | type[SlimmableBottleneck]] = {
    "basic": SlimmableBasicBlock,
    "bottleneck": SlimmableBottleneck,
}
_STEMS = ("imagenet", "cifar")


@dataclass
class SlimmableResNetConfig:
    block: str = "bottleneck"  # 'bottleneck' (ResNet-50 v1.5) or 'basic' (ResNet-18/34)
    layers: list[int] = field(default_factory=lambda: [3, 4, 6, 3])
    base_width: int = 64  # stem / first-stage channels at width 1.0
    stem: str = "imagenet"  # 'imagenet': 7x7/2 conv + 3x3/2 maxpool; 'cifar': 3x3/1 conv, no maxpool
    widths: list[float] = field(default_factory=lambda: [1.0, 0.75, 0.5, 0.25])
    in_chans: int = 3
    zero_init_residual: bool = True  # zero gamma of each block's last BN: blocks start as identities

    def __post_init__(self) -> None:
        if self.block not in _BLOCKS:
            raise ConfigError(f"block: expected one of {sorted(_BLOCKS)}, got {self.block!r}")
        if self.stem not in _STEMS:
            raise ConfigError(f"stem: expected one of {list(_STEMS)}, got {self.stem!r}")
        if not self.layers or any(n < 1 for n in self.layers):
            raise ConfigError(f"layers: expected a non-empty list of positive block counts, got {self.layers}")
        self.widths = list(_sorted_widths(self.widths))
        if scaled_channels(self.base_width, self.widths[-1]) < 1:
            raise ConfigError(
                f"widths: width {self.widths[-1]} leaves no channels of base_width {self.base_width}"
            )


class SlimmableResNet(nn.Module):
    """A ResNet whose every width in ``config.widths`` shares one set of weights.

    Blocks are stored flat as ``features.0..N-1`` (official SlimCLR layout), not as ``layer1..4``.
    """

    def __init__(self, config: SlimmableResNetConfig | None = None, **overrides: object):
        super().__init__()
        if config is None:
            config = SlimmableResNetConfig(**overrides)  # type: ignore[arg-type]
        elif overrides:
            raise ConfigError(f"pass either a config or keyword overrides, not both: {sorted(overrides)}")
        self.config = cfg = config
        widths = cfg.widths
        stem = cfg.base_width
        if cfg.stem == "imagenet":
            self.conv1 = SlimmableConv2d(cfg.in_chans, stem, 7, 2, 3, widths=widths, slim_in=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:  # small images: keep the resolution, as CIFAR ResNets do
            self.conv1 = SlimmableConv2d(cfg.in_chans, stem, 3, 1, 1, widths=widths, slim_in=False)
            self.maxpool = nn.Identity()
        self.bn1 = SwitchableBatchNorm2d(stem, widths)
        self.relu = nn.ReLU(inplace=True)

        block = _BLOCKS[cfg.block]
        blocks: list[nn.Module] = []
        channels = stem
        for stage, n in enumerate(cfg.layers):
            planes = cfg.base_width * 2**stage
            for i in range(n):
                stride = 2 if (i == 0 and stage > 0) else 1
                blocks.append(block(channels, planes, stride, widths))
                channels = planes * block.expansion
        self.features = nn.Sequential(*blocks)
        self.num_features = channels  # pooled feature dim at width 1.0
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.config.zero_init_residual:
            for blk in self.features:
                for bn in blk.last_bn.bn:
                    nn.init.zeros_(bn.weight)

    @property
    def widths(self) -> list[float]:
        return list(self.config.widths)

    def feature_dim(self, width: float | None = None) -> int:
        """Pooled feature dim at ``width`` (default: the active width), e.g. 2048*w for ResNet-50."""
        w = self.conv1.width if width is None else width
        return scaled_channels(self.num_features, w)

    def forward_features(self, x: torch.Tensor, width: float | None = None) -> torch.Tensor:
        # x: (B, 3, H, W) -> (B, feature_dim(w), H/32, W/32) (H/8 with the cifar stem)
        if width is not None:
            with set_width(self, width):
                return self.forward_features(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.features(x)

    def forward(self, x: torch.Tensor, width: float | None = None) -> torch.Tensor:
        # x: (B, 3, H, W) -> pooled features (B, feature_dim(w))
        x = self.forward_features(x, width)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def slim_resnet50(widths: Iterable[float] = (1.0, 0.75, 0.5, 0.25), **overrides: object) -> SlimmableResNet:
    """Slimmable ResNet-50 v1.5 (SlimCLR's backbone); 23.5M / 13.2M / 5.9M / 1.5M params at 1 / .75 / .5 / .25."""
    return SlimmableResNet(SlimmableResNetConfig(widths=list(widths), **overrides))  # type: ignore[arg-type]


def slim_resnet18(widths: Iterable[float] = (1.0, 0.5, 0.25), **overrides: object) -> SlimmableResNet:
    kw = dict(block="basic", layers=[2, 2, 2, 2]) | overrides
    return SlimmableResNet(SlimmableResNetConfig(widths=list(widths), **kw))  # type: ignore[arg-type]


def slim_resnet_tiny(widths: Iterable[float] = (1.0, 0.5, 0.25), **overrides: object) -> SlimmableResNet:
    """A CPU-sized slimmable ResNet for tests and proxies: basic blocks [1,1,1,1], base 16, cifar stem."""
    kw = dict(block="basic", layers=[1, 1, 1, 1], base_width=16, stem="cifar") | overrides
    return SlimmableResNet(SlimmableResNetConfig(widths=list(widths), **kw))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# projection heads
# --------------------------------------------------------------------------------------------------


class SlimmableMLPHead(nn.Sequential):
    """Slimmable projection MLP whose output dim is fixed across widths.

    ``batch_norm=False`` (MoCo v2): Linear(in*w -> hidden*w), ReLU, Linear(hidden*w -> out); keys ``{0,2}``.
    ``batch_norm=True`` (MoCo v3): Linear (no bias), switchable BN1d, ReLU, Linear (no bias), and with
    ``last_bn`` a switchable BN1d without affine; keys ``{0,1,3,4}``. ``slim_in=False`` fixes the input dim
    (MoCo v3's predictor takes the fixed 256-d embedding).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        widths: Iterable[float] = (1.0,),
        batch_norm: bool = False,
        last_bn: bool | None = None,
        slim_in: bool = True,
    ):
        widths = _sorted_widths(widths)
        last_bn = batch_norm if last_bn is None else last_bn
        bias = not batch_norm  # a bias before BN is redundant
        layers: list[nn.Module] = [SlimmableLinear(in_dim, hidden_dim, bias, widths, slim_in=slim_in)]
        if batch_norm:
            layers.append(SwitchableBatchNorm1d(hidden_dim, widths))
        layers += [nn.ReLU(inplace=True), SlimmableLinear(hidden_dim, out_dim, bias, widths, slim_out=False)]
        if last_bn:
            layers.append(SwitchableBatchNorm1d(out_dim, widths, affine=False, slim=False))
        super().__init__(*layers)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, width: float | None = None) -> torch.Tensor:  # type: ignore[override]
        # x: (B, int(in_dim*w)) -> (B, out_dim)
        if width is not None:
            with set_width(self, width):
                return super().forward(x)
        return super().forward(x)


def mocov2_head(widths: Iterable[float], in_dim: int = 2048, dim: int = 128) -> SlimmableMLPHead:
    """MoCo v2 head: Linear 2048w -> 2048w, ReLU, Linear 2048w -> 128."""
    return SlimmableMLPHead(in_dim, in_dim, dim, widths)


def mocov3_head(widths: Iterable[float], in_dim: int = 2048, hidden: int = 4096, dim: int = 256) -> SlimmableMLPHead:
    """MoCo v3 projector: Linear 2048w -> 4096w, BN, ReLU, Linear 4096w -> 256, BN without affine."""
    return SlimmableMLPHead(in_dim, hidden, dim, widths, batch_norm=True)


class SlimmableEncoder(nn.Module):
    """Backbone + projection head at a shared active width; keys ``backbone.*`` and ``head.*``."""

    def __init__(self, backbone: SlimmableResNet, head: SlimmableMLPHead):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor, width: float | None = None) -> torch.Tensor:
        # x: (B, 3, H, W) -> embedding (B, head.out_dim), not normalised
        if width is not None:
            with set_width(self, width):
                return self.head(self.backbone(x))
        return self.head(self.backbone(x))


# --------------------------------------------------------------------------------------------------
# per-width size and export to a plain network
# --------------------------------------------------------------------------------------------------


def count_params_at_width(module: nn.Module, width: float) -> int:
    """Parameters actually used at ``width`` (sliced weights, that width's BN copy), not the stored total."""
    if isinstance(module, (SlimmableConv2d, SlimmableLinear, _SwitchableBatchNorm)):
        return module.num_params_at(width)
    own = sum(p.numel() for p in module.parameters(recurse=False))
    return own + sum(count_params_at_width(child, width) for child in module.children())


def _torchvision_name(name: str, layer_of_block: list[tuple[int, int]]) -> str:
    # features.{k}.rest -> layer{stage}.{j}.rest ; shortcut -> downsample (spec 3e)
    m = re.match(r"features\.(\d+)\.(.*)", name)
    if m is None:
        return name
    stage, j = layer_of_block[int(m.group(1))]
    rest = re.sub(r"^shortcut\.", "downsample.", m.group(2))
    return f"layer{stage}.{j}.{rest}"


@torch.no_grad()
def export_width(model: SlimmableResNet, width: float) -> dict[str, torch.Tensor]:
    """The width-``width`` sub-network as a plain torchvision-layout ResNet state dict (copies).

    Conv weights are sliced to the leading channels, each BN is that width's private copy, and blocks
    are renamed ``features.k`` -> ``layer{s}.{j}``, ``shortcut`` -> ``downsample``. Load it into
    ``narrow_resnet(model.config, width)`` (or ``torchvision.models.resnet50()`` at width 1.0).
    """
    width_index(model.widths, width)  # fail early on an untrained width
    layer_of_block = [(s + 1, j) for s, n in enumerate(model.config.layers) for j in range(n)]
    out: dict[str, torch.Tensor] = {}
    for name, m in model.named_modules():
        if isinstance(m, (SlimmableConv2d, SlimmableLinear)):
            weight, bias = m.sliced_weight(width)
            out[f"{name}.weight"] = weight.detach().clone()
            if bias is not None:
                out[f"{name}.bias"] = bias.detach().clone()
        elif isinstance(m, _SwitchableBatchNorm):
            for key, value in m.bn[m.widths.index(float(width))].state_dict().items():
                out[f"{name}.{key}"] = value.clone()
    return {_torchvision_name(k, layer_of_block): v for k, v in out.items()}


class _PlainResNet(nn.Module):
    """torchvision-layout ResNet of arbitrary channel counts; forward returns pooled features."""

    def __init__(self, conv1: nn.Conv2d, maxpool: nn.Module, layers: list[nn.Sequential]):
        super().__init__()
        self.conv1, self.bn1 = conv1, nn.BatchNorm2d(conv1.out_channels)
        self.relu, self.maxpool = nn.ReLU(inplace=True), maxpool
        for i, layer in enumerate(layers):
            self.add_module(f"layer{i + 1}", layer)
        self.num_layers = len(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, H, W) -> (B, C)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def narrow_resnet(config: SlimmableResNetConfig, width: float) -> nn.Module:
    """A standalone (non-slimmable) ResNet with the channel counts of ``config`` at ``width``.

    Built from torchvision's own ``BasicBlock`` / ``Bottleneck``, so it is an independent reference for
    the sliced network, and it loads ``export_width(model, width)`` strictly.
    """
    from torchvision.models.resnet import BasicBlock, Bottleneck

    width_index(config.widths, width)
    block = Bottleneck if config.block == "bottleneck" else BasicBlock
    stem = scaled_channels(config.base_width, width)
    if config.stem == "imagenet":
        conv1 = nn.Conv2d(config.in_chans, stem, 7, 2, 3, bias=False)
        maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    else:
        conv1, maxpool = nn.Conv2d(config.in_chans, stem, 3, 1, 1, bias=False), nn.Identity()
    layers, channels = [], stem
    for stage, n in enumerate(config.layers):
        planes = scaled_channels(config.base_width * 2**stage, width)
        blocks = []
        for i in range(n):
            stride = 2 if (i == 0 and stage > 0) else 1
            out = planes * block.expansion
            down = None
            if stride != 1 or channels != out:
                down = nn.Sequential(nn.Conv2d(channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            blocks.append(block(channels, planes, stride, down))
            channels = out
        layers.append(nn.Sequential(*blocks))
    return _PlainResNet(conv1, maxpool, layers)


# --------------------------------------------------------------------------------------------------
# official SlimCLR checkpoints
# --------------------------------------------------------------------------------------------------

# MoCo v2 / SimCLR wrap the encoders as encoder_q / encoder_k, MoCo v3 as base_encoder / momentum_encoder.
_ENCODER_PREFIXES = {"query": ("encoder_q.", "base_encoder."), "key": ("encoder_k.", "momentum_encoder.")}
_BACKBONE_ROOTS = ("conv1.", "bn1.", "features.")


def convert_official_slimclr_state_dict(
    checkpoint: Mapping[str, object], encoder: str = "query"
) -> dict[str, torch.Tensor]:
    """Map an official SlimCLR checkpoint (``*.pth.tar`` dict or its ``state_dict``) to our keys.

    Picks one encoder (``'query'``: ``module.encoder_q`` / ``module.base_encoder``; ``'key'``: the
    momentum encoder) and returns ``backbone.*`` (same names as ``SlimmableResNet``) and ``head.*``
    (the projection ``fc.*``, same indices as ``SlimmableMLPHead``; a linear-probe ``fc.linears.{i}`` stays
    ``head.linears.{i}``). Also carried: ``queue`` transposed from official (D, K) to our (K, D),
    ``queue_ptr``, and MoCo v3's ``predictor.*``. Checkpoints without a wrapper (supervised / probe)
    map the bare encoder keys. Unknown keys raise ``CheckpointError``.
    """
    if encoder not in _ENCODER_PREFIXES:
        raise ConfigError(f"encoder: expected 'query' or 'key', got {encoder!r}")
    sd = checkpoint.get("state_dict", checkpoint)
    if not isinstance(sd, Mapping):
        raise CheckpointError("checkpoint['state_dict']: expected a mapping of tensors")
    own = _ENCODER_PREFIXES[encoder]
    other = _ENCODER_PREFIXES["key" if encoder == "query" else "query"]
    every = own + other
    wrapped = any(str(k).removeprefix("module.").startswith(every) for k in sd)

    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        k = str(key).removeprefix("module.")  # DDP wrapper
        if k == "queue":
            out["queue"] = value.t().contiguous()  # type: ignore[union-attr]
            continue
        if k == "queue_ptr" or k.startswith("predictor."):
            out[k] = value  # type: ignore[assignment]
            continue
        if k.startswith(other):
            continue
        prefix = next((p for p in own if k.startswith(p)), None)
        if prefix is not None:
            k = k[len(prefix):]
        elif wrapped:
            raise CheckpointError(f"{key!r}: unexpected key; expected it under module.{own[0]} or module.{own[1]}")
        if k.startswith(_BACKBONE_ROOTS):
            out[f"backbone.{k}"] = value  # type: ignore[assignment]
        elif k.startswith("fc."):
            out[f"head.{k[len('fc.'):]}"] = value  # type: ignore[assignment]
        else:
            raise CheckpointError(f"{key!r}: not a slimmable ResNet key; expected conv1.*, bn1.*, features.* or fc.*")
    if "backbone.conv1.weight" not in out:
        raise CheckpointError(f"no {encoder} encoder found: expected a key like 'module.{own[0]}conv1.weight'")
    return out
