"""A-CLIP: Attentive Mask CLIP (Yang et al., ICCV 2023, arXiv 2212.08653).

CLIP trained on *half* of each image's patch tokens, chosen by where an EMA copy of the image encoder
looks (spec §1b):

1. The EMA encoder sees a "zoom-out" view covering both online crops. Its CLS->patch attention, averaged
   over layers and heads, scores every patch of that view (``cls_attention_score``).
2. The score is resampled into each online crop's patch grid through the crops' pixel boxes
   (``map_score_to_crop``), pooled into cells of 2x2 patches and the top cells are kept
   (``select_tokens``): 25 of 49 cells, 100 of 196 tokens for ViT-B/16.
3. Each online view runs the encoder on its kept tokens only; the loss is

       L = mean_v CLIP(view_v, text) + 1.0 * SimCLR(view_1, view_2) + 2.0 * mean_v BYOL(view_v, EMA)

   with CLIP the symmetric InfoNCE of the CLIP base method (``clip_contrastive_loss``).

``mask.mode`` switches the token choice to FLIP-style random cells (same token budget) or no masking,
the ablations of the paper's Table "attentive vs random".
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.methods.vl.clip.model import DataConfig as CLIPDataConfig
from visionzoo.methods.vl.clip.model import EvalConfig as CLIPEvalConfig
from visionzoo.methods.vl.clip.model import MAX_LOGIT_SCALE, clip_contrastive_loss, gather_with_grad
from visionzoo.methods.vl.clip.model import evaluate as clip_evaluate
from visionzoo.nn.clip import CLIPTextConfig, CLIPTextTower
from visionzoo.nn.vit import ViTConfig, VisionTransformer

# ------------------------------------------------------------------------------------------------ network


@dataclass
class ACLIPArch:
    """Tower sizes: a timm ViT image encoder, an OpenAI-CLIP text encoder, and the SSL heads' sizes."""

    vision: ViTConfig
    text: CLIPTextConfig
    embed_dim: int = 512  # shared image-text embedding
    ssl_hidden: int = 4096  # hidden width of the SimCLR MLP and the BYOL projector / predictor
    ssl_dim: int = 256  # output width of the SimCLR MLP and the BYOL projector / predictor


def aclip_vit_b16() -> ACLIPArch:
    """The paper's model: timm ViT-B/16 (224 px, 196 patches) + 12-layer 512-wide text transformer."""
    return ACLIPArch(ViTConfig(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=0),
                     CLIPTextConfig(context_length=77, vocab_size=49408, width=512, heads=8, layers=12))


def aclip_vit_s16() -> ACLIPArch:
    """ViT-S/16 variant (384 wide), same text tower."""
    return ACLIPArch(ViTConfig(img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=6, num_classes=0),
                     CLIPTextConfig())


def aclip_vit_l16() -> ACLIPArch:
    """ViT-L/16 variant (1024 wide, 24 layers), same text tower."""
    return ACLIPArch(ViTConfig(img_size=224, patch_size=16, embed_dim=1024, depth=24, num_heads=16, num_classes=0),
                     CLIPTextConfig())


def aclip_tiny() -> ACLIPArch:
    """CPU scale: 32 px images of 4 px patches (an 8x8 grid, 64 tokens), 4 blocks of width 64 (spec §1g)."""
    return ACLIPArch(ViTConfig(img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4, num_classes=0),
                     CLIPTextConfig(context_length=16, vocab_size=49408, width=32, heads=2, layers=2),
                     embed_dim=32, ssl_hidden=128, ssl_dim=32)


def aclip_micro() -> ACLIPArch:
    """The hardened proxy's encoder (spec §1g): width 32, 2 blocks, same 8x8 token grid as ``tiny``."""
    return ACLIPArch(ViTConfig(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=4, num_classes=0),
                     CLIPTextConfig(context_length=16, vocab_size=49408, width=32, heads=2, layers=2),
                     embed_dim=32, ssl_hidden=128, ssl_dim=32)


ARCHS = {"tiny": aclip_tiny, "micro": aclip_micro, "vit_s16": aclip_vit_s16, "vit_b16": aclip_vit_b16,
         "vit_l16": aclip_vit_l16}


class ACLIP(nn.Module):
    """The encoders a user keeps: image tower (timm ViT + projection), text tower, temperature.

    Same interface as ``nn.clip.CLIP`` (``encode_image``, ``encode_text``, ``logit_scale``), so the CLIP
    base method's zero-shot and retrieval evaluation runs on it unchanged.
    """

    def __init__(self, arch: ACLIPArch, freeze_patch_embed: bool = True):
        super().__init__()
        self.arch = arch
        self.visual = VisionTransformer(arch.vision)
        # MoCo v3's trick, kept by A-CLIP: a random, fixed patch projection stabilises training.
        self.visual.patch_embed.requires_grad_(not freeze_patch_embed)
        width = arch.vision.embed_dim
        self.image_projection = nn.Parameter(torch.randn(width, arch.embed_dim) * width**-0.5)
        self.text = CLIPTextTower(arch.text, arch.embed_dim, act="quick_gelu", norm_eps=1e-5)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def grid_size(self) -> int:
        return self.arch.vision.img_size // self.arch.vision.patch_size

    def image_features(self, images: torch.Tensor, keep_indices: torch.Tensor | None = None) -> torch.Tensor:
        # images (B, 3, H, W), keep_indices (B, N_keep) patch ids or None -> final-norm CLS token (B, W)
        return self.visual.forward_features(images, keep_indices).pooled

    def encode_image(self, images: torch.Tensor, normalize: bool = False,
                     keep_indices: torch.Tensor | None = None) -> torch.Tensor:
        x = self.image_features(images, keep_indices) @ self.image_projection  # (B, E)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        x = self.text(text).embeds  # (B, E)
        return F.normalize(x, dim=-1) if normalize else x


@register_model("aclip")
def aclip_model(arch: str = "vit_b16", freeze_patch_embed: bool = True) -> ACLIP:
    """A-CLIP's encoders by architecture name (``tiny``, ``micro``, ``vit_s16``, ``vit_b16``, ``vit_l16``)."""
    if arch not in ARCHS:
        raise ConfigError(f"model.arch: unknown A-CLIP architecture {arch!r}; expected one of {sorted(ARCHS)}")
    return ACLIP(ARCHS[arch](), freeze_patch_embed=freeze_patch_embed)


def mlp_head(dims: list[int], bias: bool = True) -> nn.Sequential:
    """Linear -> BN -> ReLU between every pair of ``dims``; the last linear is bare (SimCLR/BYOL heads)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(dims) - 2:
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------------------ attentive mask


@torch.no_grad()
def cls_attention_score(vit: VisionTransformer, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """images (B, 3, H, W) -> (score (B, g, g), pooled CLS (B, W)).

    The score is the CLS token's attention to each patch, averaged over all blocks and heads. Both means
    are linear, so only the CLS row of each block is kept: the (B, H, N, N) maps are never stored.
    """
    h = vit.embed(images)
    P = vit.num_prefix_tokens
    total = None
    for block in vit.blocks:
        h, attn = block(h, return_attention=True)
        row = attn[:, :, 0, P:].mean(dim=1)  # (B, N_patches)
        total = row if total is None else total + row
    g = vit.config.grid_size
    score = (total / len(vit.blocks)).reshape(-1, g, g)
    return score, vit.pool(vit.norm(h))


def map_score_to_crop(score: torch.Tensor, source_box: torch.Tensor, crop_box: torch.Tensor,
                      out_grid: int | None = None) -> torch.Tensor:
    """Resample a patch score of one view into the patch grid of another crop of the same image.

    score (B, g, g) lives on ``source_box``'s patch grid; boxes (B, 4) are (top, left, height, width) in
    original-image pixels. Each output patch takes the bilinear sample of ``score`` at the patch's centre,
    located through the boxes (outside ``source_box`` the border value). Returns (B, G, G), G = out_grid
    (default g). The official code resizes the score to the EMA crop's pixel size, crops and resizes back;
    sampling at the patch centres is the same map with one interpolation instead of two, and is exact for
    crops aligned to the source's patches (then it just copies cells).
    """
    B, g, _ = score.shape
    G = out_grid or g
    src = source_box.to(score.dtype)
    dst = crop_box.to(score.dtype)
    centres = (torch.arange(G, device=score.device, dtype=score.dtype) + 0.5) / G  # (G,) fraction of the crop
    ys = dst[:, 0:1] + centres * dst[:, 2:3]  # (B, G) image pixel rows of the crop's patch centres
    xs = dst[:, 1:2] + centres * dst[:, 3:4]
    # grid_sample's align_corners=False frame: -1 / +1 are the outer edges of the source view
    ny = 2 * (ys - src[:, 0:1]) / src[:, 2:3] - 1
    nx = 2 * (xs - src[:, 1:2]) / src[:, 3:4] - 1
    grid = torch.stack(torch.broadcast_tensors(nx[:, None, :], ny[:, :, None]), dim=-1)  # (B, G, G, 2) as (x, y)
    out = F.grid_sample(score[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, 0]


def num_kept_cells(num_cells: int, mask_ratio: float) -> int:
    """Cells kept when ``mask_ratio`` of them are removed: ceil(n (1 - r)), 25 of 49 at r = 0.5 as in A-CLIP."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ConfigError(f"mask.ratio={mask_ratio}; expected 0 <= ratio < 1")
    return max(1, math.ceil(num_cells * (1 - mask_ratio) - 1e-9))


def select_tokens(score: torch.Tensor, mask_ratio: float, cell: int = 1) -> torch.Tensor:
    """score (B, g, g) -> keep_indices (B, K * cell^2): row-major patch ids of the top-scoring cells, sorted.

    The score is averaged over ``cell`` x ``cell`` blocks of patches (A-CLIP: 2x2, i.e. its bilinear 14 -> 7
    downsampling), the top ``num_kept_cells`` cells are kept whole. Every sample keeps the same count, so
    the kept tokens stack into one tensor (an MAE-style gather).
    """
    B, g, _ = score.shape
    if g % cell:
        raise ConfigError(f"mask.cell={cell} does not divide the {g}x{g} patch grid")
    cells = F.avg_pool2d(score[:, None], cell)[:, 0] if cell > 1 else score  # (B, g/c, g/c)
    gc = g // cell
    top = cells.flatten(1).topk(num_kept_cells(gc * gc, mask_ratio), dim=1).indices  # (B, K)
    offsets = torch.arange(cell, device=score.device)
    within = (offsets[:, None] * g + offsets[None, :]).flatten()  # (cell^2,) patch ids inside a cell
    first = (top // gc) * cell * g + (top % gc) * cell  # (B, K) top-left patch id of each kept cell
    return (first[:, :, None] + within).flatten(1).sort(dim=1).values


def ema_momentum(base: float, progress: float) -> float:
    """Cosine schedule of the EMA momentum from ``base`` (start) to 1.0 (end of training)."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * min(max(progress, 0.0), 1.0)) + 1.0) / 2.0


# ------------------------------------------------------------------------------------------------ losses


def simclr_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1, gather: bool = True) -> torch.Tensor:
    """NT-Xent between two views (B, D) each: a sample's other view against all 2N - 2 other embeddings.

    Under DDP the candidates are every rank's embeddings (gathered with gradient), as in SLIP / A-CLIP.
    """
    z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    if gather:
        all1, rank = gather_with_grad(z1)
        all2, _ = gather_with_grad(z2)
    else:
        all1, all2, rank = z1, z2, 0
    B = z1.shape[0]
    targets = torch.arange(B, device=z1.device) + rank * B
    not_self = F.one_hot(targets, all1.shape[0]).to(z1.dtype) * 1e9  # a sample is not its own negative
    l11 = z1 @ all1.t() / temperature - not_self
    l22 = z2 @ all2.t() / temperature - not_self
    l12, l21 = z1 @ all2.t() / temperature, z2 @ all1.t() / temperature
    return 0.5 * (F.cross_entropy(torch.cat([l12, l11], 1), targets)
                  + F.cross_entropy(torch.cat([l21, l22], 1), targets))


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(prediction, target), averaged over the batch; the target carries no gradient."""
    return (2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=-1)).mean()


# ------------------------------------------------------------------------------------------------ config


@dataclass
class ModelConfig:
    arch: Literal["tiny", "micro", "vit_s16", "vit_b16", "vit_l16"] = "tiny"
    freeze_patch_embed: bool = True


@dataclass
class MaskConfig:
    mode: Literal["attentive", "random", "none"] = "attentive"
    ratio: float = 0.5  # fraction of cells removed from each online view
    cell: int = 2  # cells of cell x cell patches are kept or removed together (A-CLIP: 2x2)


@dataclass
class ObjectiveConfig:
    views: int = 2  # online views per image (A-CLIP: 2; the paper's "1x50%" ablation: 1)
    clip_weight: float = 1.0  # on the mean CLIP loss over views (0.5 + 0.5 in the paper)
    simclr_weight: float = 1.0  # needs views == 2
    byol_weight: float = 2.0
    simclr_temperature: float = 0.1
    gather_features: bool = True
    max_logit_scale: float = MAX_LOGIT_SCALE


@dataclass
class EMAConfig:
    momentum: float = 0.996  # start of the cosine schedule to 1.0
    schedule: Literal["cosine", "constant"] = "cosine"  # constant: short runs, where cosine-to-1 freezes the EMA early


@dataclass
class DataConfig(CLIPDataConfig):
    crop_min_scale: float = 0.5  # RandomResizedCrop scale range (min, 1) of the online views
    color_augment: bool = True  # colour jitter, grayscale, blur, solarize on the online views


@dataclass
class EvalConfig(CLIPEvalConfig):
    ema: bool = True  # also evaluate the EMA encoders (metrics prefixed "ema_")


@dataclass
class ACLIPTrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


# ------------------------------------------------------------------------------------------------ task


class ACLIPTask(Task):
    """Online encoders + SSL heads trained by the combined loss; an EMA copy chooses tokens and sets BYOL targets.

    A batch is ``((view_1, view_2, ema_view, boxes), tokens)`` as ``data.ACLIPViews`` makes it: boxes
    (B, 3, 4) are the (top, left, height, width) of the three crops in original-image pixels.
    """

    def __init__(self, cfg: ACLIPTrainConfig):
        super().__init__()
        self.cfg = cfg
        obj = cfg.objective
        if obj.views not in (1, 2):
            raise ConfigError(f"objective.views={obj.views}; expected 1 or 2")
        if obj.simclr_weight > 0 and obj.views != 2:
            raise ConfigError("objective.simclr_weight > 0 needs objective.views=2 (SimCLR contrasts the two views)")
        num_kept_cells(1, cfg.mask.ratio)  # validates the ratio early
        self.model: ACLIP = create_model("aclip", arch=cfg.model.arch, freeze_patch_embed=cfg.model.freeze_patch_embed)
        arch = self.model.arch
        width = arch.vision.embed_dim
        if self.model.grid_size % cfg.mask.cell:
            raise ConfigError(f"mask.cell={cfg.mask.cell} does not divide the {self.model.grid_size}x"
                              f"{self.model.grid_size} patch grid of arch {cfg.model.arch!r}")
        self.simclr_head = (mlp_head([width, arch.ssl_hidden, arch.ssl_hidden, arch.ssl_dim])
                            if obj.simclr_weight > 0 else None)
        self.byol_projector = mlp_head([width, arch.ssl_hidden, arch.ssl_dim], bias=False) if obj.byol_weight > 0 else None
        self.byol_predictor = mlp_head([arch.ssl_dim, arch.ssl_hidden, arch.ssl_dim]) if obj.byol_weight > 0 else None
        # The EMA branch: a full copy of the encoders (its text tower is only used for EMA evaluation)
        # and of the BYOL projector. Never trained by gradient.
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.byol_projector_ema = copy.deepcopy(self.byol_projector).requires_grad_(False) if self.byol_projector else None

    @property
    def context_length(self) -> int:
        return self.model.arch.text.context_length

    @property
    def image_size(self) -> int:
        return self.model.arch.vision.img_size

    def _ema_pairs(self):
        yield from zip(self.ema.parameters(), self.model.parameters())
        if self.byol_projector_ema is not None:
            yield from zip(self.byol_projector_ema.parameters(), self.byol_projector.parameters())

    def choose_tokens(self, score: torch.Tensor | None, boxes: torch.Tensor, view: int) -> torch.Tensor | None:
        """keep_indices (B, N_keep) for online view ``view`` (0 or 1), or None when nothing is masked."""
        mask = self.cfg.mask
        if mask.mode == "none" or mask.ratio == 0:
            return None
        g = self.model.grid_size
        if mask.mode == "random":
            score = torch.rand(boxes.shape[0], g, g, device=boxes.device)
        else:
            score = map_score_to_crop(score, boxes[:, 2], boxes[:, view], g)
        return select_tokens(score, mask.ratio, mask.cell)

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        (view1, view2, ema_view, boxes), tokens = batch
        obj, model = self.cfg.objective, self.model
        views = [view1, view2][: obj.views]
        score = ema_pooled = None
        if self.cfg.mask.mode == "attentive" or obj.byol_weight > 0:
            self.ema.train(self.training)
            score, ema_pooled = cls_attention_score(self.ema.visual, ema_view)
        txt = model.encode_text(tokens, normalize=True)
        pooled, clip_losses, kept = [], [], 0
        self.last_keep_indices = []  # per view, for mechanism probes (which tokens survived)
        for v, images in enumerate(views):
            keep = self.choose_tokens(score, boxes, v)
            self.last_keep_indices.append(keep)
            kept += keep.shape[1] if keep is not None else model.grid_size**2
            feats = model.image_features(images, keep)  # (B, W)
            pooled.append(feats)
            img = F.normalize(feats @ model.image_projection, dim=-1)
            loss_v, logits = clip_contrastive_loss(img, txt, model.logit_scale, obj.gather_features)
            clip_losses.append(loss_v)
        clip = torch.stack(clip_losses).mean()
        loss = obj.clip_weight * clip
        logs = {"clip_loss": clip.detach(), "logit_scale": model.logit_scale.detach().exp(),
                "online_tokens": float(kept / len(views))}
        if self.simclr_head is not None:
            ssl = simclr_loss(self.simclr_head(pooled[0]), self.simclr_head(pooled[1]), obj.simclr_temperature,
                              obj.gather_features)
            loss = loss + obj.simclr_weight * ssl
            logs["simclr_loss"] = ssl.detach()
        if self.byol_projector is not None:
            with torch.no_grad():
                target = self.byol_projector_ema(ema_pooled)
            byol = torch.stack([byol_loss(self.byol_predictor(self.byol_projector(p)), target) for p in pooled]).mean()
            loss = loss + obj.byol_weight * byol
            logs["byol_loss"] = byol.detach()
        return StepOutput(loss, logs)

    @torch.no_grad()
    def on_after_optimizer_step(self, ctx: StepContext) -> None:
        self.model.logit_scale.clamp_(0, self.cfg.objective.max_logit_scale)
        ema = self.cfg.ema
        m = ema_momentum(ema.momentum, ctx.progress) if ema.schedule == "cosine" else ema.momentum
        ema_params, online = zip(*self._ema_pairs())
        torch._foreach_lerp_(list(ema_params), list(online), 1.0 - m)  # ema <- m ema + (1 - m) online
        for b_ema, b in zip(self.ema.buffers(), self.model.buffers()):
            b_ema.copy_(b)

    # -- evaluation: the CLIP base's retrieval / zero-shot on the unmasked online encoders ----------------
    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        pass  # retrieval needs the whole val set at once: `evaluate` computes it after training

    def export_model(self) -> nn.Module:
        return self.model


class _EMAView:
    """The bits of a task the CLIP base's ``evaluate`` reads, pointing at the EMA encoders."""

    def __init__(self, task: ACLIPTask):
        self.model, self.context_length = task.ema, task.context_length


def evaluate(task: ACLIPTask, datamodule, cfg: ACLIPTrainConfig) -> dict[str, float]:
    """The CLIP base's zero-shot top-1 and retrieval R@K of the online encoders (no masking), and of the
    EMA encoders with ``eval.ema`` (keys prefixed ``ema_``)."""
    out = clip_evaluate(task, datamodule, cfg)
    if cfg.eval.ema:
        was = task.ema.training
        out.update({f"ema_{k}": v for k, v in clip_evaluate(_EMAView(task), datamodule, cfg).items()
                    if k != "zeroshot_chance"})
        task.ema.train(was)
    return out
