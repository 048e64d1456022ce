"""A tiny method used to test the engine: an MLP with dropout on noisy blobs, with random augmentation
drawn from the global torch RNG (so resume exactness depends on RNG restoration and loader state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from visionzoo.core.registry import MethodSpec, create_model, register_model
from visionzoo.engine import OptimConfig, StepOutput, Task, TrainConfig
from visionzoo.engine.data import make_loader


@dataclass
class ToyConfig:
    n: int = 96
    dim: int = 8
    hidden: int = 32
    dropout: float = 0.3
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=8, max_epochs=2, progress=False,
                                                                   logger="csv", accelerator="cpu"))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="sgd", lr=0.1, warmup_fraction=0.1))


@register_model("test-toy-mlp")
def toy_mlp(dim: int = 8, hidden: int = 32, dropout: float = 0.3) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 3))


class ToyTask(Task):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.net = create_model("test-toy-mlp", dim=cfg.dim, hidden=cfg.hidden, dropout=cfg.dropout)
        self.correct = self.total = 0

    def training_step(self, batch, ctx):
        x, y = batch
        x = x + 0.1 * torch.randn_like(x)  # augmentation from the global RNG
        loss = F.cross_entropy(self.net(x), y)
        return StepOutput(loss, {"acc": (self.net(x).argmax(1) == y).float().mean()})

    def validation_step(self, batch, dataloader_idx=0):
        x, y = batch
        self.correct += int((self.net(x).argmax(1) == y).sum())
        self.total += len(y)

    def validation_metrics(self):
        acc = self.correct / max(1, self.total)
        self.correct = self.total = 0
        return {"acc": acc}

    def export_model(self):
        return self.net


class ToyData(L.LightningDataModule):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg = cfg
        g = torch.Generator().manual_seed(1234)
        y = torch.randint(0, 3, (cfg.n,), generator=g)
        centers = torch.randn(3, cfg.dim, generator=g) * 2
        x = centers[y] + torch.randn(cfg.n, cfg.dim, generator=g)
        self.ds = TensorDataset(x, y)

    def train_dataloader(self):
        return make_loader(self.ds, self.cfg.train.batch_size, shuffle=True, seed=self.cfg.train.seed)

    def val_dataloader(self):
        return make_loader(self.ds, 32, shuffle=False)


TOY = MethodSpec(name="toy", area="test", paper="-", config_cls=ToyConfig, build_task=ToyTask,
                 build_data=ToyData, recipes_dir=Path(__file__).parent)
