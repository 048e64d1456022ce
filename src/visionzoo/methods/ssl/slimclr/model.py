"""SlimCLR (Zhao et al., IJCV 2024, arXiv 2209.15525): one contrastive run trains a weight-sharing
slimmable network whose every width is a usable encoder.

Naively training all widths together with a contrastive loss makes them interfere (the shared weights
get conflicting gradients) and the small widths collapse. SlimCLR's three remedies, all here:

1. **slow start**: for the first ``slow_start_fraction`` of training only the full width trains;
2. **online distillation**: each sub-width also matches the full width's similarity distribution over
   the same (positive + queue) candidates (``distill_soft_ce``);
3. **loss re-weighting**: the full width's loss weighs ``1 + sum(other widths)`` so it stays in charge.

The objective is MoCo v2: queries from every width of the online encoder, keys from an EMA copy run at
full width only, a queue of past keys as negatives.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.methods.ssl.slimclr.loss import (distill_soft_ce, enqueue, moco_infonce, slow_start_active,
                                                width_loss_weights)
from visionzoo.metrics.knn import knn_accuracy
from visionzoo.nn.slimmable import SlimmableEncoder, SlimmableMLPHead, slim_resnet18, slim_resnet50, slim_resnet_tiny

BACKBONES = {"resnet50": slim_resnet50, "resnet18": slim_resnet18, "tiny": slim_resnet_tiny}


def _encoder(backbone: str, widths, head_dim: int, **backbone_kwargs) -> SlimmableEncoder:
    net = BACKBONES[backbone](widths=widths, **backbone_kwargs)
    return SlimmableEncoder(net, SlimmableMLPHead(net.num_features, net.num_features, head_dim, widths))


@register_model("slimclr_resnet50")
def slimclr_resnet50(widths=(1.0, 0.75, 0.5, 0.25), head_dim: int = 128) -> SlimmableEncoder:
    return _encoder("resnet50", widths, head_dim)


@register_model("slimclr_resnet18")
def slimclr_resnet18(widths=(1.0, 0.5, 0.25), head_dim: int = 128, stem: str = "imagenet") -> SlimmableEncoder:
    return _encoder("resnet18", widths, head_dim, stem=stem)


@register_model("slimclr_tiny")
def slimclr_tiny(widths=(1.0, 0.5, 0.25), head_dim: int = 128, base_width: int = 16) -> SlimmableEncoder:
    return _encoder("tiny", widths, head_dim, base_width=base_width)


# ------------------------------------------------------------------------------------------------ config
@dataclass
class ModelConfig:
    backbone: Literal["resnet50", "resnet18", "tiny"] = "tiny"
    widths: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.25])
    head_dim: int = 128
    base_width: int = 16  # only for the tiny backbone


@dataclass
class ObjectiveConfig:
    mode: Literal["slimclr", "naive"] = "slimclr"  # naive: all widths from step 0, equal weights, no KD
    queue_size: int = 65536
    temperature: float = 0.2
    momentum: float = 0.999  # EMA of the key encoder
    slow_start_fraction: float = 0.5
    distill: bool = True
    kd_temperature: float = 5.0  # official MoCo v2 script: 5.0 on raw cosines
    kd_on_raw_cosine: bool = True  # official v2 divides raw cosines, not logits/T, by the KD temperature
    aux_weight: float = 0.5  # sub-width loss = (1 - aux) * InfoNCE + aux * KD
    reweight: bool = True


@dataclass
class DataConfig:
    root: str = "data/digits"
    synth: str = "digits"  # written to root by `visionzoo data synth` / `demo` when root is missing
    image_size: int = 32
    augment: Literal["mocov2", "batched"] = "batched"  # batched: in-memory images, batch-level augmentation
    crop_min_scale: float = 0.5


@dataclass
class EvalConfig:
    knn_k: int = 20
    knn_temperature: float = 0.1
    linear_probe_epochs: int = 100
    linear_probe_lr: float = 0.01


@dataclass
class SlimCLRConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


# ------------------------------------------------------------------------------------------------ task
class SlimCLR(Task):
    def __init__(self, cfg: SlimCLRConfig):
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        kwargs = {"widths": tuple(m.widths), "head_dim": m.head_dim}
        if m.backbone == "tiny":
            kwargs["base_width"] = m.base_width
        self.encoder_q = create_model(f"slimclr_{m.backbone}", **kwargs)
        self.encoder_k = copy.deepcopy(self.encoder_q).requires_grad_(False)
        self.widths = sorted(m.widths, reverse=True)
        queue = F.normalize(torch.randn(cfg.objective.queue_size, m.head_dim), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self._pending_keys: torch.Tensor | None = None
        self._val: dict = {}

    # -- the paper's loss ------------------------------------------------------------------------
    def trained_widths(self, ctx: StepContext) -> tuple[list[float], list[float], bool]:
        """(widths, loss weights, distill?) for this step: the slow-start gate and re-weighting."""
        o = self.cfg.objective
        if o.mode == "naive":
            return self.widths, [1.0] * len(self.widths), False
        if slow_start_active(ctx.global_step, ctx.total_steps, o.slow_start_fraction):
            return self.widths[:1], [1.0], False
        return self.widths, width_loss_weights(self.widths, o.reweight), o.distill

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        (view_q, view_k), _ = batch
        o = self.cfg.objective
        with torch.no_grad():
            self.encoder_k.train()
            k = F.normalize(self.encoder_k(view_k, width=self.widths[0]), dim=1)
        widths, weights, distill = self.trained_widths(ctx)
        total, logs, teacher = 0.0, {}, None
        for w, weight in zip(widths, weights):
            q = F.normalize(self.encoder_q(view_q, width=w), dim=1)
            nce, logits = moco_infonce(q, k, self.queue, o.temperature)
            loss = nce
            if w == self.widths[0]:
                teacher = logits
            elif distill:
                scale = o.temperature if o.kd_on_raw_cosine else 1.0  # back to raw cosines
                kd = distill_soft_ce(logits * scale, teacher * scale, o.kd_temperature, o.kd_temperature)
                loss = (1 - o.aux_weight) * nce + o.aux_weight * kd
                logs[f"kd_w{w:g}"] = kd.detach()
            logs[f"nce_w{w:g}"] = nce.detach()
            total = total + weight * loss
        self._pending_keys = k
        logs["widths_trained"] = float(len(widths))
        return StepOutput(total, logs)

    @torch.no_grad()
    def on_after_optimizer_step(self, ctx: StepContext) -> None:
        m = self.cfg.objective.momentum
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder_q.parameters()):
            pk.mul_(m).add_(pq.detach(), alpha=1 - m)
        if self._pending_keys is not None:
            keys = self._pending_keys
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                gathered = [torch.empty_like(keys) for _ in range(torch.distributed.get_world_size())]
                torch.distributed.all_gather(gathered, keys)
                keys = torch.cat(gathered)
            self.queue_ptr.fill_(enqueue(self.queue, self.queue_ptr, keys))
            self._pending_keys = None

    # -- evaluation: per-width k-NN on the backbone's pooled features -------------------------------
    @torch.no_grad()
    def features(self, images: torch.Tensor, width: float) -> torch.Tensor:
        return self.encoder_q.backbone(images, width=width)

    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        images, labels = batch
        store = self._val.setdefault(dataloader_idx, {"labels": []})
        store["labels"].append(labels.cpu())
        for w in self.widths:
            store.setdefault(w, []).append(self.features(images, w).cpu())

    def validation_metrics(self) -> dict[str, float]:
        if set(self._val) != {0, 1}:
            self._val = {}
            return {}
        bank, val = self._val[0], self._val[1]
        out = {}
        for w in self.widths:
            out[f"knn_w{w:g}"] = knn_accuracy(torch.cat(bank[w]), torch.cat(bank["labels"]), torch.cat(val[w]),
                                              torch.cat(val["labels"]), k=self.cfg.eval.knn_k,
                                              temperature=self.cfg.eval.knn_temperature)
        self._val = {}
        return out

    def param_groups(self, weight_decay: float, no_decay_norm_and_bias: bool = True) -> list[dict]:
        # the key encoder is an EMA, never optimised
        decay, no_decay = [], []
        for p in self.encoder_q.parameters():
            (no_decay if no_decay_norm_and_bias and p.ndim <= 1 else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def export_model(self) -> nn.Module:
        return self.encoder_q


# ------------------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def extract_features(encoder: SlimmableEncoder, loader, widths) -> tuple[dict, torch.Tensor]:
    encoder.eval()
    feats, labels = {w: [] for w in widths}, []
    for images, y in loader:
        labels.append(y)
        for w in widths:
            feats[w].append(encoder.backbone(images, width=w))
    return {w: torch.cat(f) for w, f in feats.items()}, torch.cat(labels)


def switchable_linear_probe(train: dict, y_train, test: dict, y_test, widths, epochs: int = 100, lr: float = 0.01,
                            seed: int = 0) -> dict[float, float]:
    """SlimCLR's switchable probe on frozen features: one linear layer per width; the full width learns
    from labels, each sub-width from (labels + the full width's softmax) / 2. Returns top-1 per width."""
    g = torch.Generator().manual_seed(seed)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    mean = {w: train[w].mean(0) for w in widths}
    std = {w: train[w].std(0) + 1e-6 for w in widths}
    probes = nn.ModuleList([nn.Linear(train[w].shape[1], num_classes) for w in widths])
    probe = dict(zip(widths, probes))
    opt = torch.optim.Adam(probes.parameters(), lr=lr)
    n = len(y_train)
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=g).split(256):
            logits = {w: probe[w]((train[w][idx] - mean[w]) / std[w]) for w in widths}
            full = widths[0]
            loss = F.cross_entropy(logits[full], y_train[idx])
            soft = logits[full].detach().softmax(1)
            for w in widths[1:]:
                kd = -(soft * logits[w].log_softmax(1)).sum(1).mean()
                loss = loss + 0.5 * (F.cross_entropy(logits[w], y_train[idx]) + kd)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return {w: 100.0 * (probe[w]((test[w] - mean[w]) / std[w]).argmax(1) == y_test).float().mean().item()
                for w in widths}


def evaluate(task: SlimCLR, datamodule, cfg: SlimCLRConfig) -> dict[str, float]:
    """k-NN and switchable linear probe per width, on the val split, with the bank = train split."""
    widths = task.widths
    loaders = datamodule.val_dataloader()
    train, y_train = extract_features(task.encoder_q, loaders[0], widths)
    test, y_test = extract_features(task.encoder_q, loaders[1], widths)
    out = {}
    for w in widths:
        out[f"knn_w{w:g}"] = knn_accuracy(train[w], y_train, test[w], y_test, k=cfg.eval.knn_k,
                                          temperature=cfg.eval.knn_temperature)
    probe = switchable_linear_probe(train, y_train, test, y_test, widths, cfg.eval.linear_probe_epochs,
                                    cfg.eval.linear_probe_lr, seed=cfg.train.seed)
    out.update({f"linear_w{w:g}": acc for w, acc in probe.items()})
    return out
