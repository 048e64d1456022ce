"""The one LightningModule every method plugs into: it owns optimisation and logging, the Task the rest."""

from __future__ import annotations

import math

import lightning as L
import torch

from visionzoo.engine.config import OptimConfig
from visionzoo.engine.task import StepContext, Task


def lr_factor(step: int, total: int, cfg: OptimConfig) -> float:
    """Multiplier of the base lr at optimiser step ``step`` of ``total`` (warm-up, then the schedule)."""
    warmup = int(cfg.warmup_fraction * total)
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.step_gamma ** sum(step >= m * total for m in cfg.step_milestones)
    progress = (step - warmup) / max(1, total - warmup)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas))
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas))


class LitTask(L.LightningModule):
    def __init__(self, task: Task, optim: OptimConfig):
        super().__init__()
        self.task = task
        self.optim_cfg = optim

    # -- helpers -------------------------------------------------------------------------------
    def total_steps(self) -> int:
        """Optimiser steps of the whole run.

        Not ``trainer.estimated_stepping_batches``: it sets up the train loader before a checkpoint's
        loader state is restored, and the resumed run then silently starts the epoch from the beginning.
        """
        if getattr(self, "_total_steps", None) is None:
            trainer = self.trainer
            if trainer.max_steps > 0:
                self._total_steps = trainer.max_steps
            else:
                batches = len(trainer.datamodule.train_dataloader())
                self._total_steps = math.ceil(batches / trainer.accumulate_grad_batches) * trainer.max_epochs
        return max(1, self._total_steps)

    def _ctx(self) -> StepContext:
        total = self.total_steps() if self._trainer is not None else 1
        return StepContext(global_step=self.global_step, total_steps=total, epoch=self.current_epoch)

    def _log_dict(self, prefix: str, logs: dict, **kw) -> None:
        for k, v in logs.items():
            v = v.detach() if torch.is_tensor(v) else torch.tensor(float(v))
            self.log(f"{prefix}/{k}", v.float(), **kw)

    # -- lightning hooks -----------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        out = self.task.training_step(batch, self._ctx())
        if not torch.isfinite(out.loss):
            raise FloatingPointError(f"loss became {out.loss.item()} at step {self.global_step}; "
                                     "lower train lr or check the data")
        bs = _batch_size(batch)
        self._log_dict("train", {"loss": out.loss, **out.logs}, on_step=True, on_epoch=False,
                       prog_bar=False, batch_size=bs, sync_dist=False)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, batch_size=bs)
        return out.loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        # Lightning increments global_step before this hook when the optimiser stepped
        if (batch_idx + 1) % self.trainer.accumulate_grad_batches == 0:
            self.task.on_after_optimizer_step(self._ctx())

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.task.validation_step(batch, dataloader_idx)

    def on_validation_epoch_end(self):
        metrics = self.task.validation_metrics()
        if metrics:
            self._log_dict("val", metrics, on_epoch=True, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        cfg = self.optim_cfg
        opt = build_optimizer(self.task.param_groups(cfg.weight_decay, cfg.no_decay_norm_and_bias), cfg)
        total = self.total_steps()
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, cfg))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _batch_size(batch) -> int:
    if torch.is_tensor(batch):
        return batch.shape[0]
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return 1
