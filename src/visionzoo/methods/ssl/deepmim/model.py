"""DeepMIM (Ren et al., WACV 2025, arXiv 2303.08817): deep supervision for masked image modeling.

MAE supervises only the encoder's last layer. DeepMIM attaches one independent MAE-style decoder to the hidden
states of several blocks (6, 8, 10 and 12 of ViT-B), each reconstructing the hidden patches, and sums the losses.
Shallow layers then receive a direct training signal and, the paper argues, become more meaningful; only the
encoder is kept for fine-tuning.

Released-code facts (spec 1b) reproduced here:
- intermediate hidden states are taken *raw*; only the last supervised block (= the final one) is taken after
  the encoder's final LayerNorm (``norm_intermediate`` switches the variant that norms every tap);
- each branch has its own input projection, mask token, blocks, norm and predictor; the decoder positions are the
  same fixed sin-cos table in every branch;
- targets: normalised pixels (DeepMIM-MAE, the 84.2 variant) or a frozen teacher's patch tokens (DeepMIM-CLIP:
  OpenAI CLIP ViT-B/16 tokens after ``ln_post`` and ``proj``, loss 2 - 2 cos); ``level_targets`` picks one per level;
- total loss = sum_l w_l * loss_l over masked tokens only (released weights: all 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.methods.ssl.mae.model import (DataConfig, EvalConfig, FinetuneConfig, MAEArch, MAEDecoder,
                                             _mae_init_embeddings, mae_init, masked_mse, patchify, pixel_target,
                                             unpatchify)
from visionzoo.nn.vit import VisionTransformer, random_masking

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def feature_cosine_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """DeepMIM-CLIP's per-token loss 2 - 2 cos(pred, target), averaged over hidden tokens; (B, N, D), mask (B, N)."""
    per_token = 2 - 2 * (F.normalize(pred, dim=-1) * F.normalize(target, dim=-1)).sum(-1)
    return (per_token * mask).sum() / mask.sum()


@dataclass
class DeepMIMArch(MAEArch):
    """MAE's architecture plus where and what to supervise. Defaults: released DeepMIM on ViT-B/16."""

    decoder_depth: int = 4  # per branch (the released constructor passes 4; its comment says 8)
    supervised_blocks: list[int] = field(default_factory=lambda: [6, 8, 10, 12])  # 1-based; the last = depth
    loss_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0])
    level_targets: list[str] = field(default_factory=lambda: ["pixel"] * 4)  # per level: "pixel" or "teacher"
    teacher_dim: int = 512  # token width of the teacher's targets (CLIP ViT-B/16 proj: 512)
    norm_intermediate: bool = False  # variant: the final LayerNorm on every tap, not only the last

    def __post_init__(self):
        n = len(self.supervised_blocks)
        if not n or len(self.loss_weights) != n or len(self.level_targets) != n:
            raise ConfigError(f"model.supervised_blocks {self.supervised_blocks}, loss_weights {self.loss_weights} and "
                              f"level_targets {self.level_targets} must be non-empty lists of the same length")
        if any(not 1 <= b <= self.depth for b in self.supervised_blocks) or sorted(set(self.supervised_blocks)) != list(self.supervised_blocks):
            raise ConfigError(f"model.supervised_blocks={self.supervised_blocks}; expected increasing block numbers "
                              f"in 1..{self.depth}")
        bad = [t for t in self.level_targets if t not in ("pixel", "teacher")]
        if bad:
            raise ConfigError(f"model.level_targets has {bad[0]!r}; expected 'pixel' or 'teacher'")


@dataclass
class DeepMIMOutput:
    loss: torch.Tensor  # sum_l w_l * loss_l
    losses: dict[int, torch.Tensor]  # supervised block -> its branch loss
    preds: dict[int, torch.Tensor]  # supervised block -> (B, N, D_target)
    mask: torch.Tensor  # (B, N), 1 = hidden


class DeepMIM(nn.Module):
    """ViT encoder (``self.encoder``, timm names) + one MAE decoder per supervised block (``self.decoders``)."""

    def __init__(self, arch: DeepMIMArch | None = None, **overrides):
        super().__init__()
        self.arch = a = DeepMIMArch(**{**(asdict(arch) if arch else {}), **overrides})
        self.encoder = VisionTransformer(a.vit_config())
        pixel_dim = a.patch_size**2 * a.in_chans
        self.decoders = nn.ModuleList(
            MAEDecoder(a.embed_dim, a.img_size // a.patch_size, pixel_dim if t == "pixel" else a.teacher_dim,
                       a.decoder_embed_dim, a.decoder_depth, a.decoder_num_heads, a.mlp_ratio, a.norm_eps)
            for t in a.level_targets
        )
        self.apply(mae_init)
        _mae_init_embeddings(self)

    @property
    def num_patches(self) -> int:
        return self.encoder.num_patches

    def supervised_states(self, images: torch.Tensor, keep: torch.Tensor) -> dict[int, torch.Tensor]:
        """Encoder states of the visible tokens at every supervised block: {block: (B, 1 + N_keep, C)}."""
        a = self.arch
        out = self.encoder.forward_features(images, keep_indices=keep, return_taps=a.supervised_blocks)
        states = {b: (self.encoder.norm(h) if a.norm_intermediate else h) for b, h in out.taps.items()}
        if a.depth in states:
            states[a.depth] = out.tokens  # the last block is supervised after the final norm, as in MAE
        return states

    def forward(self, images: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None,
                teacher_tokens: torch.Tensor | None = None) -> DeepMIMOutput:
        # images (B, C, H, W) normalised; teacher_tokens (B, N, teacher_dim) from the full image, for "teacher" levels
        a = self.arch
        keep, mask, restore = random_masking(images.shape[0], self.num_patches, mask_ratio, noise=noise,
                                             device=images.device)
        states = self.supervised_states(images, keep)
        pixels = pixel_target(images, a.patch_size, a.norm_pix_loss) if "pixel" in a.level_targets else None
        if "teacher" in a.level_targets and teacher_tokens is None:
            raise ValueError("DeepMIM: a level has target 'teacher' but no teacher_tokens were given")
        total, losses, preds = 0.0, {}, {}
        for block, weight, target, decoder in zip(a.supervised_blocks, a.loss_weights, a.level_targets, self.decoders):
            pred = decoder(states[block], restore)
            if target == "pixel":
                losses[block] = masked_mse(pred, pixels, mask)
            else:
                losses[block] = feature_cosine_loss(pred, teacher_tokens, mask)
            preds[block] = pred
            total = total + weight * losses[block]
        return DeepMIMOutput(total, losses, preds, mask)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None):
        """Like ``MaskedAutoencoderViT.reconstruct``, from the deepest pixel-target branch."""
        a = self.arch
        pixel_blocks = [b for b, t in zip(a.supervised_blocks, a.level_targets) if t == "pixel"]
        if not pixel_blocks:
            raise ValueError("DeepMIM.reconstruct: no branch predicts pixels")
        keep, mask, restore = random_masking(images.shape[0], self.num_patches, mask_ratio, noise=noise,
                                             device=images.device)
        states = self.supervised_states(images, keep)
        block = pixel_blocks[-1]
        pred = self.decoders[a.supervised_blocks.index(block)](states[block], restore)
        patches = patchify(images, a.patch_size)
        if a.norm_pix_loss:
            pred = pred * (patches.var(-1, keepdim=True) + 1e-6) ** 0.5 + patches.mean(-1, keepdim=True)
        m = mask.unsqueeze(-1)
        return (unpatchify(patches * (1 - m), a.patch_size, a.in_chans),
                unpatchify(patches * (1 - m) + pred * m, a.patch_size, a.in_chans), images)


# ------------------------------------------------------------------------------------------------ teachers
class FrozenTeacher(nn.Module):
    """Patch-token targets (B, N, D) from the full image by a frozen network, never trained or saved with DeepMIM."""

    def __init__(self, kind: str, path: str = "", img_size: int = 224):
        super().__init__()
        self.kind = kind
        if kind == "clip_vit_b16":  # DeepMIM-CLIP: OpenAI CLIP ViT-B/16 image tower
            from visionzoo.nn.clip import CLIPVisionTower, clip_vit_b16, load_openai_state_dict

            if path:
                self.net = load_openai_state_dict(path).visual
            else:  # random weights: only for instantiating the recipe and tests
                cfg = clip_vit_b16()
                self.net = CLIPVisionTower(cfg.vision, cfg.embed_dim, act=cfg.act, norm_eps=cfg.norm_eps)
        elif kind == "mim":  # a pretrained folder of ours (MAE / DeepMIM): its encoder's final patch tokens
            from visionzoo.core.hub import from_pretrained

            if not path:
                raise ConfigError("model.teacher='mim' needs model.teacher_path (a pretrained folder)")
            self.net = from_pretrained(path).encoder
        else:
            raise ConfigError(f"model.teacher={kind!r}; expected 'none', 'clip_vit_b16' or 'mim'")
        self.net.requires_grad_(False).eval()

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: always in eval mode

    @staticmethod
    def imagenet_to_clip(images: torch.Tensor) -> torch.Tensor:
        """The image arrives ImageNet-normalised; CLIP was trained on its own statistics. (B, 3, H, W)."""
        def stat(v):
            return torch.tensor(v, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)

        return (images * stat(IMAGENET_STD) + stat(IMAGENET_MEAN) - stat(CLIP_MEAN)) / stat(CLIP_STD)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.kind == "clip_vit_b16":
            out = self.net(self.imagenet_to_clip(images), return_tokens=True)
            return out.tokens[:, 1:] @ self.net.proj  # (B, N, 512): ln_post then proj, cls dropped
        enc = self.net
        return enc.forward_features(images).tokens[:, enc.num_prefix_tokens:]


# ------------------------------------------------------------------------------------------------ registry
@register_model("deepmim_vit")
def deepmim_vit(**arch) -> DeepMIM:
    """Any DeepMIM; keyword arguments are ``DeepMIMArch`` fields (the tiny recipes use this one)."""
    return DeepMIM(DeepMIMArch(**arch))


@register_model("deepmim_vit_base_patch16")
def deepmim_vit_base_patch16(**overrides) -> DeepMIM:
    """DeepMIM-MAE ViT-B/16: pixel targets at blocks 6/8/10/12, four 512-wide 4-block decoders."""
    return DeepMIM(DeepMIMArch(), **overrides)


@register_model("deepmim_clip_vit_base_patch16")
def deepmim_clip_vit_base_patch16(**overrides) -> DeepMIM:
    """DeepMIM-CLIP ViT-B/16 (the released model): CLIP-token targets (512-d) at blocks 6/8/10/12."""
    return DeepMIM(DeepMIMArch(level_targets=["teacher"] * 4, teacher_dim=512), **overrides)


# ------------------------------------------------------------------------------------------------ recipe config
@dataclass
class ModelConfig(DeepMIMArch):
    name: str = "deepmim_vit"
    mask_ratio: float = 0.75
    teacher: Literal["none", "clip_vit_b16", "mim"] = "none"
    teacher_path: str = ""

    def arch_kwargs(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in DeepMIMArch.__dataclass_fields__}


@dataclass
class DeepMIMConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


class DeepMIMTask(Task):
    def __init__(self, cfg: DeepMIMConfig):
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        if m.img_size != cfg.data.image_size:
            raise ConfigError(f"model.img_size={m.img_size} differs from data.image_size={cfg.data.image_size}")
        self.model = create_model(m.name, **m.arch_kwargs()) if m.name == "deepmim_vit" else create_model(m.name)
        needs_teacher = "teacher" in self.model.arch.level_targets
        if needs_teacher and m.teacher == "none":
            raise ConfigError("model.level_targets uses 'teacher' but model.teacher is 'none'")
        # not a registered submodule: the frozen teacher is neither optimised nor saved in checkpoints
        self._teacher = [FrozenTeacher(m.teacher, m.teacher_path, m.img_size)] if needs_teacher else []
        self._val: dict = {}

    @property
    def encoder(self) -> VisionTransformer:
        return self.model.encoder

    def _apply(self, fn, *args, **kwargs):  # device / dtype moves reach the unregistered teacher too
        for t in self._teacher:
            t._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        images, _ = batch
        teacher_tokens = self._teacher[0](images) if self._teacher else None
        out = self.model(images, self.cfg.model.mask_ratio, teacher_tokens=teacher_tokens)
        return StepOutput(out.loss, {f"loss_block{b}": v.detach() for b, v in out.losses.items()})

    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        from visionzoo.methods.ssl.mim_eval import pooled_features

        images, labels = batch
        store = self._val.setdefault(dataloader_idx, {"feats": [], "labels": []})
        store["feats"].append(pooled_features(self.encoder, images, self.cfg.eval.pool))
        store["labels"].append(labels)

    def validation_metrics(self) -> dict[str, float]:
        from visionzoo.metrics.knn import knn_accuracy

        val, self._val = self._val, {}
        if set(val) != {0, 1}:
            return {}
        e = self.cfg.eval
        return {"knn": knn_accuracy(torch.cat(val[0]["feats"]), torch.cat(val[0]["labels"]),
                                    torch.cat(val[1]["feats"]), torch.cat(val[1]["labels"]), k=e.knn_k,
                                    temperature=e.knn_temperature)}

    def export_model(self) -> nn.Module:
        return self.model


def build_task(cfg: DeepMIMConfig) -> Task:
    if cfg.finetune.stage == "pretrain":
        return DeepMIMTask(cfg)
    from visionzoo.methods.ssl.mae.finetune import MAEClassifierTask

    return MAEClassifierTask(cfg)  # fine-tuning drops the decoders: the same protocol as MAE


def evaluate(task: Task, datamodule, cfg: DeepMIMConfig) -> dict[str, float]:
    from visionzoo.methods.ssl import mim_eval

    if cfg.finetune.stage != "pretrain":
        return {"top1": mim_eval.classifier_accuracy(task.export_model(), datamodule.val_dataloader()[1])}
    has_pixels = "pixel" in task.model.arch.level_targets
    return mim_eval.evaluate_encoder(task.encoder, datamodule, cfg.eval, seed=cfg.train.seed,
                                     reconstructor=task.model if has_pixels else None,
                                     mask_ratio=cfg.model.mask_ratio)
