"""The NLA-SLR training task (recipe config, losses per step, EMA coupling) and its evaluation.

Per training step: raw batch -> the four clips (``data.make_clips``) -> video mixup -> VKNet -> for each of the
seven heads the label-smoothed CE (language-aware, uniform or none) + w(e) x inter-modality mixup. After
each optimiser step every head's classifier is pulled towards its mixup classifier (``loss.ema_couple_``).
Evaluation: central crop or the "3x_pad" three-window ensemble, ``ensemble_last`` (the joint heads, used
for model selection) and ``ensemble_all``, per-instance and per-class top-1/top-5, plus where the
probability mass goes (the gloss's semantic neighbours; SynthSign's visually similar partner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from visionzoo.core.registry import create_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.methods.sign.nla_slr.data import (ClipGeometry, DataConfig, NLASLRDataModule, batch_seed,
                                                 class_names_of, ensure_data, gloss_embeddings, make_clips,
                                                 video_mixup)
from visionzoo.methods.sign.nla_slr.loss import (ema_beta, ema_couple_, gloss_similarity, imm_candidates,
                                                 imm_targets, imm_weight, mix_targets, smoothed_targets,
                                                 soft_cross_entropy)
from visionzoo.methods.sign.nla_slr.model import VKNet
from visionzoo.metrics.classification import topk_accuracy


@dataclass
class ModelConfig:
    width: float = 1.0
    modalities: Literal["rgb+keypoint", "keypoint"] = "rgb+keypoint"
    head_dropout: float = 0.0
    bn_momentum: float = 0.001  # S3D's; raise it (e.g. 0.1) for short runs from scratch
    frames_high: int = 64
    frames_low: int = 32
    rgb_size: int = 224
    heatmap_size: int = 112
    raw_size: int = 256
    heatmap_sigma: float = 8.0


@dataclass
class ObjectiveConfig:
    smoothing: Literal["language", "uniform", "none"] = "language"
    epsilon: float = 0.2
    tau: float = 0.5
    imm: bool = True  # inter-modality mixup (+ EMA coupling of the classifiers)
    imm_candidates: int = 0  # K; 0 = every class (all released configs)
    imm_decay_epochs: float = 100.0  # w(e) = 0.5 (1 + cos(pi e / this))
    ema: bool = True


@dataclass
class EvalConfig:
    crops: Literal["central", "3x_pad"] = "3x_pad"
    split: str = "test"


@dataclass
class NLASLRConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


def geometry(m: ModelConfig) -> ClipGeometry:
    return ClipGeometry(m.frames_high, m.frames_low, m.rgb_size, m.heatmap_size, m.raw_size, m.heatmap_sigma)


class NLASLR(Task):
    """VKNet + LA-LS + IMM + EMA coupling + video mixup."""

    def __init__(self, cfg: NLASLRConfig, class_names: list[str] | None = None,
                 embeddings: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        if class_names is None:
            ensure_data(cfg.data)
            class_names = class_names_of(cfg.data)
        if embeddings is None:
            embeddings = gloss_embeddings(cfg.data, class_names)
        m = cfg.model
        self.net: VKNet = create_model(
            "nla_slr_vknet", num_classes=len(class_names), width=m.width, modalities=m.modalities,
            emb_dim=int(embeddings.shape[1]), head_dropout=m.head_dropout, bn_momentum=m.bn_momentum, frames_high=m.frames_high,
            frames_low=m.frames_low, rgb_size=m.rgb_size, heatmap_size=m.heatmap_size, raw_size=m.raw_size,
            heatmap_sigma=m.heatmap_sigma, class_names=list(class_names),
        )
        self.class_names = list(class_names)
        self.register_buffer("gloss_embeddings", embeddings.float())  # (N, E)
        self.register_buffer("gloss_similarity", gloss_similarity(embeddings))  # (N, N)
        self.geometry = geometry(m)
        self._val: dict[str, list] = {}

    # -- schedules ------------------------------------------------------------------------------
    def epoch_of(self, ctx: StepContext) -> float:
        """Fractional epoch e of this step (the paper's schedules are in epochs)."""
        return ctx.progress * max(1, self.cfg.train.max_epochs)

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        cfg, o = self.cfg, self.cfg.objective
        seed = batch_seed(cfg.train.seed, ctx.global_step, int(batch["index"][0]))
        generator = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        clips = make_clips(batch, self.geometry, cfg.data, "train", generator)
        labels = batch["labels"]
        clips, labels_b, lam = video_mixup(clips, labels, cfg.data.video_mixup_p, cfg.data.video_mixup_alpha,
                                           rng, generator)
        out = self.net(clips["rgb_high"], clips["rgb_low"], clips["heatmaps_high"], clips["heatmaps_low"])
        n = self.net.config.num_classes

        def targets(y):
            return smoothed_targets(y, n, o.smoothing, o.epsilon, o.tau, self.gloss_similarity)

        ls_targets = mix_targets(targets(labels), targets(labels_b), lam)
        label_dist = mix_targets(F.one_hot(labels, n).float(), F.one_hot(labels_b, n).float(), lam)
        w_imm = imm_weight(self.epoch_of(ctx), o.imm_decay_epochs) if o.imm else 0.0
        total, logs = 0.0, {"imm_weight": w_imm, "mixup_lambda": lam}
        for name, logits in out.logits.items():
            ce = soft_cross_entropy(logits, ls_targets)
            total = total + ce
            logs[f"ce_{name}"] = ce.detach()
            if w_imm > 0:
                cand = imm_candidates(logits, labels, o.imm_candidates)  # (B, K)
                mixed = self.net.heads[name].mixed_logits(out.features[name], self.gloss_embeddings[cand])
                imm = soft_cross_entropy(mixed, imm_targets(cand, label_dist))
                total = total + w_imm * imm
                logs[f"imm_{name}"] = imm.detach()
        return StepOutput(total, logs)

    @torch.no_grad()
    def on_after_optimizer_step(self, ctx: StepContext) -> None:
        o = self.cfg.objective
        if not (o.imm and o.ema):
            return
        beta = ema_beta(self.epoch_of(ctx), self.cfg.train.max_epochs)
        for head in self.net.heads.values():
            ema_couple_(head.classifier, head.mixed_classifier, beta)

    # -- validation (central crop, ensemble_last) --------------------------------------------------
    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        probs = predict_probabilities(self.net, batch, self.cfg.data, "central")
        self._val.setdefault("scores", []).append(probs["ensemble_last"].cpu())
        self._val.setdefault("labels", []).append(batch["labels"].cpu())

    def validation_metrics(self) -> dict[str, float]:
        if not self._val:
            return {}
        scores, labels = torch.cat(self._val["scores"]), torch.cat(self._val["labels"])
        self._val = {}
        acc = topk_accuracy(scores, labels, (1, 5))
        return {"top1": acc["per_instance_top1"], "top5": acc["per_instance_top5"]}

    def export_model(self) -> VKNet:
        return self.net


# ------------------------------------------------------------------------------------------------ inference
CROPS = {"central": ("central",), "3x_pad": ("start", "central", "end")}


@torch.no_grad()
def predict_probabilities(net: VKNet, batch: dict, data_cfg: DataConfig, crops: str = "central") -> dict:
    """{head: (B, N) softmax averaged over the crops, 'ensemble_last' / 'ensemble_all': normalised sums}."""
    was_training = net.training
    net.eval()
    c = net.config
    geo = ClipGeometry(c.frames_high, c.frames_low, c.rgb_size, c.heatmap_size, c.raw_size, c.heatmap_sigma)
    per_head: dict[str, torch.Tensor] = {}
    modes = CROPS[crops]
    for mode in modes:
        clips = make_clips(batch, geo, data_cfg, mode)
        out = net(clips["rgb_high"], clips["rgb_low"], clips["heatmaps_high"], clips["heatmaps_low"])
        for h, logits in out.logits.items():
            per_head[h] = per_head.get(h, 0) + logits.softmax(-1) / len(modes)
    net.train(was_training)
    result = dict(per_head)
    for key, heads in (("ensemble_last", c.joint_heads), ("ensemble_all", tuple(c.heads))):
        result[key] = torch.stack([per_head[h] for h in heads]).mean(0)  # log of this = the official ensemble + const
    return result


def similar_pairs_of(root: str | Path, class_names: list[str]) -> dict[int, int]:
    """SynthSign's visually similar, semantically related partner of each class (empty for real data)."""
    meta = Path(root) / "synthsign_meta.json"
    if not meta.is_file():
        return {}
    pairs = json.loads(meta.read_text()).get("similar_pairs", [])
    index = {g.lower(): i for i, g in enumerate(class_names)}
    out = {}
    for a, b in pairs:
        if a.lower() in index and b.lower() in index:
            out[index[a.lower()]], out[index[b.lower()]] = index[b.lower()], index[a.lower()]
    return out


def mass_metrics(probs: torch.Tensor, labels: torch.Tensor, similarity: torch.Tensor,
                 partners: dict[int, int]) -> dict[str, float]:
    """Where the predicted probability mass goes (percent, averaged over clips).

    mass_semantic_top3: on the label's 3 nearest glosses by embedding cosine (not the label itself);
    mass_similar_pair: on SynthSign's visually similar partner of the label (clips with one only);
    mass_true: on the label.
    """
    sim = similarity.clone().fill_diagonal_(float("-inf"))
    neighbours = sim[labels].topk(min(3, sim.shape[0] - 1), dim=1).indices  # (B, 3)
    out = {"mass_true": 100 * probs.gather(1, labels[:, None]).mean().item(),
           "mass_semantic_top3": 100 * probs.gather(1, neighbours).sum(1).mean().item()}
    has = [i for i, y in enumerate(labels.tolist()) if y in partners]
    if has:
        idx = torch.tensor(has)
        partner = torch.tensor([partners[int(labels[i])] for i in has])
        out["mass_similar_pair"] = 100 * probs[idx, partner].mean().item()
        out["pair_top1"] = 100 * (probs[idx].argmax(1) == labels[idx]).float().mean().item()
    return out


@torch.no_grad()
def evaluate(task: NLASLR, datamodule: NLASLRDataModule, cfg: NLASLRConfig) -> dict[str, float]:
    """Top-1/top-5 per instance and per class on ``eval.split`` with ``eval.crops``; ensemble_last is the
    headline (unprefixed keys), ensemble_all and every head's per-instance top-1 follow."""
    loader = datamodule.eval_loader(cfg.eval.split)
    device = next(task.parameters()).device
    scores: dict[str, list] = {}
    labels = []
    for batch in loader:
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        probs = predict_probabilities(task.net, batch, cfg.data, cfg.eval.crops)
        for k, v in probs.items():
            scores.setdefault(k, []).append(v.cpu())
        labels.append(batch["labels"].cpu())
    y = torch.cat(labels)
    probs = {k: torch.cat(v) for k, v in scores.items()}
    out = dict(topk_accuracy(probs["ensemble_last"], y, (1, 5)))
    out.update({f"all_{k}": v for k, v in topk_accuracy(probs["ensemble_all"], y, (1, 5)).items()})
    for h in task.net.head_names:
        out[f"head_{h}_top1"] = topk_accuracy(probs[h], y, (1,))["per_instance_top1"]
    out.update(mass_metrics(probs["ensemble_last"], y, task.gloss_similarity.cpu(),
                            similar_pairs_of(cfg.data.root, task.class_names)))
    return out


def build_task(cfg: NLASLRConfig) -> NLASLR:
    return NLASLR(cfg)


def build_data(cfg: NLASLRConfig) -> NLASLRDataModule:
    return NLASLRDataModule(cfg.data, cfg.model.raw_size, cfg.train.batch_size, seed=cfg.train.seed,
                            num_workers=cfg.train.num_workers)
