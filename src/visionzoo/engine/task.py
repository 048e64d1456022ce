"""The contract between a method and the engine.

A :class:`Task` owns the method's modules and computes its losses and metrics. It is a plain
``nn.Module``: it never moves tensors between devices, wraps itself in DDP or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class StepContext:
    global_step: int  # optimiser steps taken so far
    total_steps: int  # optimiser steps in the whole run
    epoch: int

    @property
    def progress(self) -> float:
        return self.global_step / max(1, self.total_steps)


@dataclass
class StepOutput:
    loss: torch.Tensor
    logs: dict[str, float | torch.Tensor] = field(default_factory=dict)


class Task(nn.Module):
    """Base class of a method's training logic. Subclasses implement :meth:`training_step`."""

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        raise NotImplementedError

    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        """Accumulate whatever :meth:`validation_metrics` needs."""

    def validation_metrics(self) -> dict[str, float]:
        """Compute metrics from the accumulated validation outputs and reset them."""
        return {}

    def on_after_optimizer_step(self, ctx: StepContext) -> None:
        """E.g. an EMA update of a key encoder."""

    def export_model(self) -> nn.Module:
        """The network a user keeps after training (saved with ``save_pretrained``)."""
        raise NotImplementedError

    def param_groups(self, weight_decay: float, no_decay_norm_and_bias: bool = True) -> list[dict]:
        """Trainable parameters, with weight decay off for norms and biases (1-d tensors)."""
        decay, no_decay = [], []
        for p in self.parameters():
            if not p.requires_grad:
                continue
            (no_decay if no_decay_norm_and_bias and p.ndim <= 1 else decay).append(p)
        groups = [{"params": decay, "weight_decay": weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        return groups
