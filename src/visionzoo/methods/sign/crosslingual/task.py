"""The joint CSLR training run (`visionzoo train crosslingual/<recipe>`): the CSLR method's own task on the
joint corpus, wrapped so the engine trains it unchanged and evaluation scores target glosses only."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.engine.task import StepContext, StepOutput, Task
from visionzoo.methods.sign.crosslingual.backends import CSLRBackend, TrainedCSLR, make_cslr_backend
from visionzoo.methods.sign.crosslingual.config import CrossLingualConfig
from visionzoo.methods.sign.crosslingual.corpus import is_aux_name


def joint_backend(cfg: CrossLingualConfig) -> CSLRBackend:
    return make_cslr_backend(cfg)


def joint_cslr_config(cfg: CrossLingualConfig):
    """(CSLR method spec, its config on the joint corpus): stages 1-4 run first (cached)."""
    from visionzoo.methods.sign.crosslingual.pipeline import prepare

    prep = prepare(cfg)
    spec, cslr_cfg, _ = joint_backend(cfg).load(prep["joint_root"], "phoenix2014t", cfg.train.seed)
    return spec, cslr_cfg, prep


def aux_sample_weight(names: list[str], aux_loss_weight: float) -> torch.Tensor:
    """(B,) loss weights: ``aux_loss_weight`` for auxiliary sentences, 1 for target ones. The CSLR task reads
    ``batch["sample_weight"]`` (TwoStream-SLR's loss scales each sentence's terms by it)."""
    return torch.tensor([aux_loss_weight if is_aux_name(n) else 1.0 for n in names])


class JointCSLRTask(Task):
    """Delegates every engine hook to the CSLR method's task."""

    def __init__(self, cfg: CrossLingualConfig):
        super().__init__()
        if cfg.joint.aux_loss_weight < 0:
            raise ConfigError(f"joint.aux_loss_weight: {cfg.joint.aux_loss_weight}; expected >= 0 (1 = as a target "
                              "sentence, 0 = auxiliary sentences give no gradient)")
        spec, cslr_cfg, prep = joint_cslr_config(cfg)
        self.inner = spec.build_task(cslr_cfg)
        self.cslr_config, self.prepared = cslr_cfg, prep
        self.aux_loss_weight = float(cfg.joint.aux_loss_weight)

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        if self.aux_loss_weight != 1.0:
            batch = {**batch, "sample_weight": aux_sample_weight(batch["names"], self.aux_loss_weight)}
        return self.inner.training_step(batch, ctx)

    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        self.inner.validation_step(batch, dataloader_idx)

    def validation_metrics(self) -> dict[str, float]:
        return self.inner.validation_metrics()

    def on_after_optimizer_step(self, ctx: StepContext) -> None:
        self.inner.on_after_optimizer_step(ctx)

    def param_groups(self, weight_decay: float, no_decay_norm_and_bias: bool = True) -> list[dict]:
        return self.inner.param_groups(weight_decay, no_decay_norm_and_bias)

    def export_model(self) -> nn.Module:
        return self.inner.export_model()


def build_data(cfg: CrossLingualConfig):
    spec, cslr_cfg, _ = joint_cslr_config(cfg)
    return spec.build_data(cslr_cfg)


def evaluate(task: JointCSLRTask, datamodule, cfg: CrossLingualConfig) -> dict:
    """Target dev/test WER scoring target glosses only, plus the stage metrics (IoU, mapping P/R)."""
    from visionzoo.methods.sign.crosslingual.pipeline import decode_posteriors, score_target

    backend = joint_backend(cfg)
    trained = TrainedCSLR(task.inner, datamodule, task.cslr_config, Path("."))
    vocab = backend.vocabulary(trained)
    target_vocab = set(task.prepared["stages"]["joint"]["target_vocabulary"])
    metrics = {}
    for split in ("dev", "test"):
        posts = backend.posteriors(trained, split)
        hyps = decode_posteriors(posts, vocab, cfg.cslr.decode, cfg.cslr.beam_size)
        metrics[f"{split}/wer"] = score_target([p.glosses for p in posts], hyps, target_vocab, cfg.eval.cleanup)
    stages = task.prepared["stages"]
    for name in ("dict_target", "dict_aux"):
        if "boundary_iou" in stages.get(name, {}):
            metrics[f"{name}/boundary_iou"] = stages[name]["boundary_iou"]
    for key, value in stages.get("mapping", {}).items():
        if key.startswith("mapping_") or key == "mapped":
            metrics[f"mapping/{key.removeprefix('mapping_')}"] = value
    metrics["joint/aux_sentences"] = stages["joint"]["aux_sentences"]
    metrics["joint/aux_dropped"] = stages["joint"]["aux_dropped"]  # unmapped=drop: sentences left out
    return metrics
