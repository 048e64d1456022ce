"""TwoStream-SLR's gloss head ("VisualHead", spec §1b) and its parts.

Linear(in -> 512) -> masked BatchNorm -> ReLU -> + sinusoidal positions -> Dropout -> residual
temporal-conv feed-forward (LayerNorm -> Conv1d k3 -> ReLU -> Dropout -> Conv1d k3 -> Dropout, + skip)
-> LayerNorm(eps 1e-6) -> Linear(512 -> |V|). The 512-d pre-classifier output (``gloss_feature``) is what
TwoStream-SLT feeds its translation network. Submodule names follow the official ``Visualhead.py`` so the
checkpoint converter is a prefix map.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) valid lengths -> (B, max_len) bool, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def sinusoidal_positions(length: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The Transformer's sin/cos position table (Vaswani et al.), (length, dim); sin on even, cos on odd dims."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return table.to(dtype)


class MaskedBatchNorm(nn.Module):
    """BatchNorm over the feature dim of (B, T, C) whose training statistics come from valid frames only.

    Padded frames keep their input values in training (they never reach a loss through CTC); in eval every
    frame is normalised with the running statistics, as the official ``MaskedNorm``.
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(num_features)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x (B, T, C), mask (B, T) bool
        if not self.training:
            return self.norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        flat, keep = x.reshape(-1, x.shape[-1]), mask.reshape(-1)
        out = flat.clone()
        out[keep] = self.norm(flat[keep])
        return out.reshape(x.shape)


class TemporalFeedForward(nn.Module):
    """Pre-norm residual feed-forward whose two "linear" layers are 1-D convolutions over time (k=3, same)."""

    def __init__(self, dim: int, ff: int, kernel_size: int = 3, dropout: float = 0.1):
        super().__init__()
        self.layer_norm = nn.LayerNorm(dim, eps=1e-6)
        pad = kernel_size // 2
        self.pwff_layer = nn.Sequential(
            nn.Conv1d(dim, ff, kernel_size, padding=pad),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(ff, dim, kernel_size, padding=pad),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, T, C) -> (B, T, C)
        y = self.pwff_layer(self.layer_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + y


class VisualHead(nn.Module):
    """One CTC gloss head: (B, T, in_dim) frame features -> per-frame gloss logits and 512-d gloss features."""

    def __init__(self, in_dim: int, vocab_size: int, hidden: int = 512, ff: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.in_dim, self.vocab_size, self.hidden = in_dim, vocab_size, hidden
        self.fc1 = nn.Linear(in_dim, hidden)
        self.bn1 = MaskedBatchNorm(hidden)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)
        self.feedforward = TemporalFeedForward(hidden, ff, 3, dropout)
        self.layer_norm = nn.LayerNorm(hidden, eps=1e-6)
        self.gloss_output_layer = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, T, in_dim), lengths (B,) -> dict(logits (B, T, V), gloss_feature (B, T, hidden))."""
        if x.ndim != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"VisualHead: expected (B, T, {self.in_dim}), got {tuple(x.shape)}")
        mask = length_mask(lengths.to(x.device), x.shape[1])
        x = self.relu1(self.bn1(self.fc1(x), mask))
        x = x + sinusoidal_positions(x.shape[1], self.hidden, x.device, x.dtype)
        x = self.layer_norm(self.feedforward(self.dropout1(x)))
        return {"logits": self.gloss_output_layer(x), "gloss_feature": x}
