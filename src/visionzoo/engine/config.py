"""Configs every recipe shares: how to train (trainer) and how to optimise (optimiser + schedule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw", "adam"] = "sgd"
    lr: float = 0.1
    weight_decay: float = 1e-4
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["cosine", "constant", "step"] = "cosine"
    warmup_fraction: float = 0.0  # of all optimiser steps
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    step_milestones: list[float] = None  # fractions of training, for schedule=step
    step_gamma: float = 0.1
    no_decay_norm_and_bias: bool = True

    def __post_init__(self):
        if self.step_milestones is None:
            self.step_milestones = []


@dataclass
class TrainConfig:
    max_epochs: int = 1
    max_steps: int = -1  # > 0 overrides max_epochs
    batch_size: int = 32
    accumulate_grad_batches: int = 1
    gradient_clip_val: float = 0.0
    precision: str = "32-true"  # Lightning precision: 32-true, bf16-mixed, 16-mixed
    accelerator: str = "auto"  # cpu, gpu, auto
    devices: str = "1"  # "1", "2", "auto", "0,1"
    num_nodes: int = 1
    strategy: str = "auto"  # auto, ddp, ddp_spawn, fsdp, deepspeed
    num_workers: int = 0
    seed: int = 0
    log_every_n_steps: int = 10
    val_every_n_epochs: int = 1
    checkpoint_every_n_steps: int = 0  # 0: at the end of every epoch
    logger: Literal["csv", "tensorboard", "both", "none"] = "csv"
    deterministic: bool = False
    progress: bool = True
