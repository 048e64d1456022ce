"""TinyMIM (Ren et al., CVPR 2023, arXiv 2301.01296): pre-train a small ViT by distilling a frozen
MIM-pretrained ViT teacher, instead of running MIM on the small model itself.

A small ViT gains little from masked image modelling (MAE ViT-T is below supervised DeiT-T); TinyMIM feeds
the *unmasked* image to a frozen MAE teacher and to the student, and trains the student's last block to
reproduce the teacher's token relations at one chosen block (``loss.relation_distill_loss``):

    teacher block l:  R_qk = softmax(Q Kᵀ/√d), R_vv = softmax(V Vᵀ/√d)  (per head, over all tokens incl. cls)
    student block L:  the same relations from its own Q, K, V, split into the *teacher's* head count
    loss:             KL(R_qk^T ‖ R_qk^S) + KL(R_vv^T ‖ R_vv^S)

Only the student's qkv of its last block enters the loss (that block's proj, MLP and the final norm stay at
initialisation, as in the official code). ``objective.target`` switches to the paper's ablations: feature
distillation (student tokens → Linear → smooth-L1 to whitened teacher tokens of block l) or class-token
distillation (the same on the cls token only). The teacher sees the crop, the student the same crop with
colour jitter (§2b of the spec).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.methods.ssl.mae.model import EvalConfig  # the MIM evaluation settings, shared with MAE / DeepMIM
from visionzoo.methods.ssl.tinymim.loss import feature_distill_loss, relation_distill_loss
from visionzoo.nn.vit import VIT_CONFIGS, VisionTransformer, ViTConfig

# Students of the paper (spec 2b): width, depth, heads in blocks 1..11, heads of the relation block (= teacher's).
# With a 1000-class head these have 5.7M / 22.1M / 86.6M parameters, the published ViT-T/S/B sizes.
STUDENT_PRESETS: dict[str, dict] = {
    "vit_tiny": {"embed_dim": 192, "depth": 12, "num_heads": 6, "relation_heads": 12},  # teacher MAE ViT-B
    "vit_small": {"embed_dim": 384, "depth": 12, "num_heads": 6, "relation_heads": 12},  # teacher MAE ViT-B
    "vit_base": {"embed_dim": 768, "depth": 12, "num_heads": 12, "relation_heads": 16},  # teacher MAE ViT-L
}


@register_model("tinymim_vit")
def tinymim_vit(**config) -> VisionTransformer:
    """A plain ViT (any ViTConfig fields): the TinyMIM student as saved after distillation."""
    return VisionTransformer(ViTConfig(**config))


# ------------------------------------------------------------------------------------------------ config
@dataclass
class ModelConfig:
    """The student. ``size`` picks a paper student (overriding width, depth and heads); "custom" uses the fields."""

    size: Literal["custom", "vit_tiny", "vit_small", "vit_base"] = "custom"
    img_size: int = 16
    patch_size: int = 4
    in_chans: int = 3
    embed_dim: int = 32
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.1
    relation_heads: int | None = None  # heads of the student's relation block; None = the teacher's head count


@dataclass
class TeacherConfig:
    pretrained: str = ""  # a pretrained folder (config.json + model.safetensors), e.g. our MAE run's model/
    mae_checkpoint: str = ""  # or an official MAE checkpoint (mae_pretrain_vit_large.pth), encoder only
    arch: str = "vit_base_patch16_224"  # the ViT of mae_checkpoint (see visionzoo.nn.vit.VIT_CONFIGS)
    block: int = 0  # 1-based block whose relations / tokens are the target; 0 = the last (ViT-L: 18 in the paper)


@dataclass
class ObjectiveConfig:
    target: Literal["relation", "feature", "cls"] = "relation"
    qk_weight: float = 1.0
    vv_weight: float = 1.0


@dataclass
class DataConfig:
    root: str = "data/digits"
    synth: str = "digits"  # written to root when missing
    image_size: int = 16
    augment: Literal["batched", "imagenet"] = "batched"  # batched: in-memory small images
    crop_min_scale: float = 0.5
    jitter: float = 0.4  # colour jitter strength on the student's view only


@dataclass
class TinyMIMConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


def student_vit_config(m: ModelConfig) -> tuple[ViTConfig, int | None]:
    """(ViTConfig of the student, its relation-block head count or None) from the recipe's model section."""
    arch = {"embed_dim": m.embed_dim, "depth": m.depth, "num_heads": m.num_heads}
    relation_heads = m.relation_heads
    if m.size != "custom":
        if m.size not in STUDENT_PRESETS:
            raise ConfigError(f"model.size={m.size!r}; expected 'custom' or one of {sorted(STUDENT_PRESETS)}")
        arch = dict(STUDENT_PRESETS[m.size])
        preset_heads = arch.pop("relation_heads")
        relation_heads = relation_heads or preset_heads
    vit = ViTConfig(img_size=m.img_size, patch_size=m.patch_size, in_chans=m.in_chans, mlp_ratio=m.mlp_ratio,
                    drop_path_rate=m.drop_path_rate, pos_embed="sincos", num_classes=0, global_pool="token", **arch)
    return vit, relation_heads


# ------------------------------------------------------------------------------------------------ teacher
def load_teacher(t: TeacherConfig) -> VisionTransformer:
    """The frozen teacher: a pretrained folder (``from_pretrained``) or an official MAE checkpoint."""
    if bool(t.pretrained) == bool(t.mae_checkpoint):
        raise ConfigError("teacher: set exactly one of teacher.pretrained (a pretrained folder) and "
                          "teacher.mae_checkpoint (an official MAE .pth)")
    if t.pretrained:
        from visionzoo.core.hub import from_pretrained

        if not Path(t.pretrained).is_dir():
            raise ConfigError(f"teacher.pretrained={t.pretrained}: folder not found; train one with `python -m "
                              f"visionzoo.methods.ssl.tinymim.proxy --teacher-only --teacher-dir {t.pretrained}`")
        model = from_pretrained(t.pretrained)
        # an MAE pre-training model wraps its encoder; take the ViT out of it
        model = model if isinstance(model, VisionTransformer) else getattr(model, "encoder", None)
        if not isinstance(model, VisionTransformer):
            raise CheckpointError(f"{t.pretrained}: holds no VisionTransformer (nor one as .encoder) to distil from")
    else:
        from visionzoo.engine.checkpoint_io import load_training_checkpoint
        from visionzoo.nn.vit import convert_mae_state_dict, load_timm_state_dict

        if t.arch not in VIT_CONFIGS:
            raise ConfigError(f"teacher.arch={t.arch!r}; expected one of {sorted(VIT_CONFIGS)}")
        model = VisionTransformer(VIT_CONFIGS[t.arch], num_classes=0, pos_embed="sincos")
        state = convert_mae_state_dict(load_training_checkpoint(t.mae_checkpoint), fc_norm=False,
                                       source=t.mae_checkpoint)
        load_timm_state_dict(model, state, strict=True, source=t.mae_checkpoint)
    return model.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------------ task
class TinyMIM(Task):
    def __init__(self, cfg: TinyMIMConfig, teacher: VisionTransformer | None = None):
        super().__init__()
        self.cfg = cfg
        self.teacher = (teacher if teacher is not None else load_teacher(cfg.teacher)).eval().requires_grad_(False)
        tcfg = self.teacher.config
        self.teacher_block = cfg.teacher.block or tcfg.depth
        if not 1 <= self.teacher_block <= tcfg.depth:
            raise ConfigError(f"teacher.block={cfg.teacher.block}; the teacher has blocks 1..{tcfg.depth}")
        vit, relation_heads = student_vit_config(cfg.model)
        self.relation_heads = relation_heads or tcfg.num_heads
        if vit.embed_dim % self.relation_heads:
            raise ConfigError(f"model.relation_heads={self.relation_heads} (the teacher's head count unless set) "
                              f"does not divide the student width {vit.embed_dim}")
        if (vit.num_patches, vit.class_token) != (tcfg.num_patches, tcfg.class_token):
            raise ConfigError(f"student has {vit.num_patches} patches, teacher {tcfg.num_patches}: relations need "
                              "equal token counts (set model.img_size / model.patch_size to the teacher's grid)")
        self.student = create_model("tinymim_vit", **dataclasses.asdict(vit))
        # feature / cls ablations regress the teacher's width through a projection that is not kept
        self.proj = nn.Linear(vit.embed_dim, tcfg.embed_dim) if cfg.objective.target != "relation" else None

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # frozen: no drop-path, whatever mode the engine sets
        return self

    def distill_loss(self, teacher_view: torch.Tensor, student_view: torch.Tensor) -> StepOutput:
        """(B, C, H, W) teacher and student views of the same crops -> the objective's loss."""
        o, depth = self.cfg.objective, self.student.config.depth
        if o.target == "relation":
            with torch.no_grad():
                t = self.teacher.forward_qkv(teacher_view, self.teacher_block)
            s = self.student.forward_qkv(student_view, depth, num_heads=self.relation_heads)
            loss, logs = relation_distill_loss((t.q, t.k, t.v), (s.q, s.k, s.v), o.qk_weight, o.vv_weight)
            return StepOutput(loss, logs)
        with torch.no_grad():
            target = self.teacher.forward_blocks(teacher_view, self.teacher_block)  # (B, N, C_t)
        tokens = self.student.forward_features(student_view).tokens  # (B, N, C_s)
        if o.target == "cls":
            tokens, target = tokens[:, :1], target[:, :1]
        loss = feature_distill_loss(self.proj(tokens), target)
        return StepOutput(loss, {f"{o.target}_l1": loss.detach()})

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        (teacher_view, student_view), _ = batch
        return self.distill_loss(teacher_view, student_view)

    def param_groups(self, weight_decay: float, no_decay_norm_and_bias: bool = True) -> list[dict]:
        # the teacher is frozen; only the student (and the ablations' projection) is optimised
        decay, no_decay = [], []
        modules = [self.student] + ([self.proj] if self.proj is not None else [])
        for p in (p for m in modules for p in m.parameters() if p.requires_grad):
            (no_decay if no_decay_norm_and_bias and p.ndim <= 1 else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def export_model(self) -> nn.Module:
        return self.student


def evaluate(task: TinyMIM, datamodule, cfg: TinyMIMConfig) -> dict[str, float]:
    """The student judged like any MIM encoder (``mim_eval``): k-NN, linear probe, few-label fine-tune."""
    from visionzoo.methods.ssl import mim_eval

    return mim_eval.evaluate_encoder(task.student, datamodule, cfg.eval, seed=cfg.train.seed)
