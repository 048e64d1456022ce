"""I3D: Inflated Inception-v1 (Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017).

Laid out like the common PyTorch port (piergiaj/pytorch-i3d) that bsl1k and CiCo build on: one attribute per
endpoint (``Conv3d_1a_7x7`` ... ``Mixed_5c``), ``Unit3D`` = ``conv3d`` + ``bn`` (eps 1e-3), Inception branches
``b0, b1a, b1b, b2a, b2b, b3b`` and a 1x1x1 ``logits`` Unit3D with bias. Parameter names equal that port's, so
``convert_i3d_state_dict`` only unwraps checkpoints and validates keys and shapes.

Padding is TensorFlow "SAME", as in the port (its weights come from the TF original): strided convolutions
and all max-pools pad ``kernel - stride`` in total, the extra one at the end (zeros, like the port; every
pooled tensor follows a ReLU, so zeros act as -inf would).

CiCo's sign encoder (the BSL-1K I3D) turns each 16-frame 224 px window into one 1024-d feature:
``extract_features`` returns that global average of ``Mixed_5c``; ``forward`` classifies it (the bsl1k head).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.nn.s3d import unwrap_state_dict, check_state_dict

ENDPOINTS = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
    "Logits",
)


def _same_pad(sizes: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """TF "SAME" padding for (T, H, W), in F.pad order (W front, W back, H front, H back, T front, T back)."""
    pad = []
    for s, k, st in zip(reversed(sizes), reversed(kernel), reversed(stride)):
        total = max(k - (st if s % st == 0 else s % st), 0)
        pad += [total // 2, total - total // 2]
    return pad


def _triple(v: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)


class Unit3D(nn.Module):
    """Conv3d with TF SAME padding -> optional BN -> optional ReLU."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel: int | tuple[int, int, int] = 1,
        stride: int | tuple[int, int, int] = 1,
        use_bn: bool = True,
        use_bias: bool = False,
        activation: bool = True,
    ):
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        # stride 1 with an odd kernel pads symmetrically: let the conv do it instead of an extra F.pad copy
        self.static = all(s == 1 for s in self.stride) and all(k % 2 for k in self.kernel)
        padding = tuple(k // 2 for k in self.kernel) if self.static else 0
        self.conv3d = nn.Conv3d(in_chans, out_chans, self.kernel, self.stride, padding=padding, bias=use_bias)
        self.bn = nn.BatchNorm3d(out_chans, eps=1e-3, momentum=0.01) if use_bn else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.static:
            x = F.pad(x, _same_pad(x.shape[2:], self.kernel, self.stride))
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.activation else x


class MaxPool3dSame(nn.Module):
    """Max-pool with TF SAME zero padding (no parameters)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, _same_pad(x.shape[2:], self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Inception-v1 block inflated to 3D: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | max-pool -> 1x1, concatenated."""

    def __init__(self, in_chans: int, b0: int, b1_mid: int, b1: int, b2_mid: int, b2: int, b3: int):
        super().__init__()
        self.b0 = Unit3D(in_chans, b0)
        self.b1a = Unit3D(in_chans, b1_mid)
        self.b1b = Unit3D(b1_mid, b1, 3)
        self.b2a = Unit3D(in_chans, b2_mid)
        self.b2b = Unit3D(b2_mid, b2, 3)
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_chans, b3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C_in, T, H, W) -> (B, b0 + b1 + b2 + b3, T, H, W)
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


def _endpoint_modules(in_chans: int) -> dict[str, nn.Module]:
    return {
        "Conv3d_1a_7x7": Unit3D(in_chans, 64, 7, stride=2),
        "MaxPool3d_2a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
        "Conv3d_2b_1x1": Unit3D(64, 64),
        "Conv3d_2c_3x3": Unit3D(64, 192, 3),
        "MaxPool3d_3a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
        "Mixed_3b": InceptionModule(192, 64, 96, 128, 16, 32, 32),
        "Mixed_3c": InceptionModule(256, 128, 128, 192, 32, 96, 64),
        "MaxPool3d_4a_3x3": MaxPool3dSame((3, 3, 3), (2, 2, 2)),
        "Mixed_4b": InceptionModule(480, 192, 96, 208, 16, 48, 64),
        "Mixed_4c": InceptionModule(512, 160, 112, 224, 24, 64, 64),
        "Mixed_4d": InceptionModule(512, 128, 128, 256, 24, 64, 64),
        "Mixed_4e": InceptionModule(512, 112, 144, 288, 32, 64, 64),
        "Mixed_4f": InceptionModule(528, 256, 160, 320, 32, 128, 128),
        "MaxPool3d_5a_2x2": MaxPool3dSame((2, 2, 2), (2, 2, 2)),
        "Mixed_5b": InceptionModule(832, 256, 160, 320, 32, 128, 128),
        "Mixed_5c": InceptionModule(832, 384, 192, 384, 48, 128, 128),
    }


@dataclass
class I3DConfig:
    in_chans: int = 3  # 3 for RGB, 2 for optical flow
    num_classes: int = 400  # 400 Kinetics; 1064 BSL-1K; 5383 bsl5k (CiCo); 0: no classifier
    dropout: float = 0.5  # before the logits (the port's misnamed ``dropout_keep_prob``)
    final_endpoint: str = "Logits"  # build the network up to this endpoint only

    def __post_init__(self):
        if self.final_endpoint not in ENDPOINTS:
            raise ConfigError(f"I3DConfig.final_endpoint: expected one of {ENDPOINTS}, got {self.final_endpoint!r}")
        if self.in_chans < 1 or self.num_classes < 0:
            raise ConfigError(
                f"I3DConfig: expected in_chans >= 1 and num_classes >= 0, got {self.in_chans} and {self.num_classes}"
            )


class InceptionI3d(nn.Module):
    def __init__(self, config: I3DConfig | None = None, **kwargs):
        super().__init__()
        self.config = config = config or I3DConfig(**kwargs)
        last = ENDPOINTS.index(config.final_endpoint)
        self.endpoints = [e for e in ENDPOINTS[: last + 1] if e != "Logits"]
        for name, module in _endpoint_modules(config.in_chans).items():
            if name in self.endpoints:
                self.add_module(name, module)
        self.dropout = nn.Dropout(config.dropout)
        self.logits = None
        if config.final_endpoint == "Logits" and config.num_classes:
            self.logits = Unit3D(1024, config.num_classes, use_bn=False, use_bias=True, activation=False)

    def forward_endpoints(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every built endpoint's output, in network order; x: (B, C_in, T, H, W)."""
        if x.ndim != 5 or x.shape[1] != self.config.in_chans:
            raise ValueError(
                f"InceptionI3d: expected a clip (B, {self.config.in_chans}, T, H, W), got shape {tuple(x.shape)}"
            )
        outs = {}
        for name in self.endpoints:
            x = outs[name] = getattr(self, name)(x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last built endpoint: (B, C, T', H', W') (Mixed_5c: 1024 x T/8 x H/32 x W/32)."""
        for name in self.endpoints:
            x = getattr(self, name)(x)
        return x

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) -> (B, 1024): Mixed_5c averaged over time and space.

        For 16-frame (or 64-frame) windows at 224 px this equals bsl1k's AvgPool3d((T/8, 7, 7)) embedding.
        """
        if self.endpoints[-1] != "Mixed_5c":
            raise ValueError(f"InceptionI3d.extract_features needs Mixed_5c; built up to {self.endpoints[-1]}")
        return self.forward_features(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) -> (B, num_classes): one prediction per clip (window)."""
        if self.logits is None:
            raise ValueError("InceptionI3d.forward: this model has no classifier (num_classes=0 or truncated)")
        pooled = self.extract_features(x)[:, :, None, None, None]  # (B, 1024, 1, 1, 1)
        return self.logits(self.dropout(pooled)).flatten(1)


@torch.no_grad()
def extract_window_features(
    model: InceptionI3d, video: torch.Tensor, window: int = 16, stride: int = 1, batch_size: int = 8
) -> torch.Tensor:
    """CiCo's sign features: one 1024-d vector per sliding window. video (C, T, H, W) -> (N_windows, 1024).

    N_windows = floor((T - window) / stride) + 1; a video shorter than one window is an error.
    """
    C, T, H, W = video.shape
    if T < window:
        raise ValueError(f"extract_window_features: video has {T} frames, fewer than one {window}-frame window")
    windows = video.unfold(1, window, stride)  # (C, N, H, W, window)
    windows = windows.permute(1, 0, 4, 2, 3)  # (N, C, window, H, W)
    feats = [model.extract_features(windows[i : i + batch_size]) for i in range(0, windows.shape[0], batch_size)]
    return torch.cat(feats)


def config_from_state_dict(sd: dict[str, torch.Tensor]) -> I3DConfig:
    """Input channels and class count of an (unwrapped) InceptionI3d state dict."""
    if "Conv3d_1a_7x7.conv3d.weight" not in sd:
        raise CheckpointError(
            "I3D checkpoint: missing key 'Conv3d_1a_7x7.conv3d.weight'; expected the InceptionI3d layout"
        )
    logits = sd.get("logits.conv3d.weight")
    return I3DConfig(
        in_chans=sd["Conv3d_1a_7x7.conv3d.weight"].shape[1], num_classes=0 if logits is None else logits.shape[0]
    )


def convert_i3d_state_dict(sd: dict, config: I3DConfig | None = None) -> dict[str, torch.Tensor]:
    """A pytorch-i3d / bsl1k / CiCo InceptionI3d checkpoint -> our state dict, validated.

    Accepts a plain state dict or one wrapped in ``{'state_dict': ...}`` with ``module.`` prefixes. Without
    ``config`` the input channels and class count are read from the checkpoint. With ``config.num_classes=0``
    or an earlier ``final_endpoint`` the layers the model lacks are dropped (feature extraction). Missing ``num_batches_tracked`` buffers are
    filled with zeros. Raises CheckpointError naming the first missing/unexpected key or wrong shape.
    """
    sd = unwrap_state_dict(sd)
    config = config or config_from_state_dict(sd)
    with torch.device("meta"):  # only names and shapes are needed: allocate nothing
        model = InceptionI3d(config)
    # a truncated or classifier-free model takes the part of a full checkpoint it has
    not_built = {e for e in ENDPOINTS if e not in model.endpoints} | ({"logits"} if model.logits is None else set())
    sd = {k: v for k, v in sd.items() if k.split(".", 1)[0] not in not_built}
    check_state_dict(sd, model, "I3D checkpoint")
    out = dict(sd)
    for k in model.state_dict():
        if k.endswith("num_batches_tracked") and k not in out:
            out[k] = torch.zeros((), dtype=torch.long)
    return out


def read_weights(path: str | Path) -> dict:
    """Read a weights file without unpickling code: ``.safetensors``, else ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or a pickle that needs code: say which file and why, in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot read weights ({first})") from None


def load_i3d(path: str | Path, config: I3DConfig | None = None) -> InceptionI3d:
    """Build an InceptionI3d from a pytorch-i3d / bsl1k / CiCo checkpoint file (e.g. ``bsl5k.pth.tar``)."""
    sd = unwrap_state_dict(read_weights(path))
    config = config or config_from_state_dict(sd)
    sd = convert_i3d_state_dict(sd, config)
    model = InceptionI3d(config)
    model.load_state_dict(sd)
    return model

