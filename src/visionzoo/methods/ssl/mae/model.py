"""MAE (He et al., CVPR 2022, arXiv 2111.06377): masked autoencoders are scalable vision learners.

The idea in four lines (``MaskedAutoencoderViT.forward``):
1. split the image into patches and hide a random 75% of them (per-sample ``random_masking``, explicit noise
   accepted so tests and peers can share the exact mask);
2. run the ViT encoder on the visible 25% only (plus the cls token);
3. a lightweight decoder gets the encoded visible tokens plus one shared learnable mask token per hidden patch,
   all with fixed sin-cos positions, and predicts every patch's pixels;
4. the loss is the MSE on the hidden patches only, against per-patch normalised pixels (``norm_pix_loss``).

This module is the shared masked-image-modeling base: DeepMIM adds decoders on intermediate blocks and
TinyMIM distils from an encoder pre-trained here. Fine-tuning and linear probing live in ``finetune.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from einops import rearrange
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.nn.transformer import Block
from visionzoo.nn.vit import VisionTransformer, ViTConfig, random_masking, sincos_2d_pos_embed

__all__ = [
    "MAEArch", "MAEOutput", "MAEDecoder", "MaskedAutoencoderViT", "patchify", "unpatchify", "pixel_target",
    "masked_mse", "convert_official_mae_pretrain", "MAEConfig", "MAE", "build_task", "evaluate",
]


# ------------------------------------------------------------------------------------------------ pixels <-> patches
def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    # (B, C, H, W) -> (B, N, p*p*C), channels last inside a patch (MAE's and HF's order)
    return rearrange(images, "b c (h p) (w q) -> b (h w) (p q c)", p=patch_size, q=patch_size)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int = 3) -> torch.Tensor:
    # (B, N, p*p*C) -> (B, C, H, W); N must be a square grid
    side = int(patches.shape[1] ** 0.5)
    return rearrange(patches, "b (h w) (p q c) -> b c (h p) (w q)", h=side, w=side, p=patch_size, q=patch_size,
                     c=channels)


def pixel_target(images: torch.Tensor, patch_size: int, norm_pix: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """The regression target (B, N, p*p*C): patches, each normalised by its own mean and (unbiased) variance when
    ``norm_pix`` (MAE's ``norm_pix_loss``: +0.5 to +1 point fine-tune in the paper's Table 1d)."""
    target = patchify(images, patch_size)
    if norm_pix:
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + eps) ** 0.5
    return target


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over hidden patches of the per-patch MSE; pred/target (B, N, D), mask (B, N) with 1 = hidden."""
    per_patch = (pred - target).pow(2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


# ------------------------------------------------------------------------------------------------ modules
@dataclass
class MAEArch:
    """The architecture (``create_model('mae_vit', **fields)``); defaults are MAE ViT-B/16."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    norm_pix_loss: bool = True
    norm_eps: float = 1e-6

    def vit_config(self, **overrides) -> ViTConfig:
        """The encoder as a ViTConfig: fixed sin-cos positions, cls token, no classifier head."""
        kw = dict(img_size=self.img_size, patch_size=self.patch_size, in_chans=self.in_chans,
                  embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
                  norm_eps=self.norm_eps, pos_embed="sincos", class_token=True, global_pool="token", num_classes=0)
        return ViTConfig(**{**kw, **overrides})


@dataclass
class MAEOutput:
    loss: torch.Tensor  # scalar: MSE on the hidden patches
    pred: torch.Tensor  # (B, N, p*p*C) predicted (normalised) pixels for every patch
    target: torch.Tensor  # (B, N, p*p*C)
    mask: torch.Tensor  # (B, N), 1 = hidden
    latent: torch.Tensor  # (B, 1 + N_keep, C) encoder output after its final norm


class MAEDecoder(nn.Module):
    """MAE's lightweight decoder: embed the encoded visible tokens, put a mask token at every hidden position,
    add fixed sin-cos positions, a few transformer blocks, then a per-token linear predictor.

    Parameter names map one-to-one onto the official ``decoder_*`` keys (``embed`` = ``decoder_embed`` ...).
    """

    def __init__(self, in_dim: int, grid_size: int, out_dim: int, embed_dim: int = 512, depth: int = 8,
                 num_heads: int = 16, mlp_ratio: float = 4.0, norm_eps: float = 1e-6):
        super().__init__()
        self.embed = nn.Linear(in_dim, embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        pos = sincos_2d_pos_embed(embed_dim, grid_size, cls_token=True).unsqueeze(0)
        self.pos_embed = nn.Parameter(pos, requires_grad=False)  # a frozen Parameter: saved like MAE's
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_eps=norm_eps)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.pred = nn.Linear(embed_dim, out_dim)

    def forward(self, latent: torch.Tensor, restore_indices: torch.Tensor) -> torch.Tensor:
        # latent (B, 1 + N_keep, C_enc) [cls first], restore_indices (B, N) -> predictions (B, N, out_dim)
        x = self.embed(latent)
        B, N = restore_indices.shape
        cls, visible = x[:, :1], x[:, 1:]
        masked = self.mask_token.expand(B, N - visible.shape[1], -1)
        # [visible, mask tokens] is in "kept first" order; restore_indices puts every token back at its patch
        x = torch.cat([visible, masked], dim=1).gather(1, restore_indices.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x, _ = block(x)
        return self.pred(self.norm(x))[:, 1:]  # the cls token predicts nothing


class MaskedAutoencoderViT(nn.Module):
    """ViT encoder (``self.encoder``, timm names) + one MAE decoder on its final, normed output."""

    def __init__(self, arch: MAEArch | None = None, **overrides):
        super().__init__()
        self.arch = a = MAEArch(**{**(asdict(arch) if arch else {}), **overrides})
        self.encoder = VisionTransformer(a.vit_config())
        self.decoder = self._make_decoder()
        self.apply(mae_init)
        _mae_init_embeddings(self)

    def _make_decoder(self) -> MAEDecoder:
        a = self.arch
        return MAEDecoder(a.embed_dim, a.img_size // a.patch_size, a.patch_size**2 * a.in_chans, a.decoder_embed_dim,
                          a.decoder_depth, a.decoder_num_heads, a.mlp_ratio, a.norm_eps)

    @property
    def num_patches(self) -> int:
        return self.encoder.num_patches

    def mask(self, batch: int, mask_ratio: float, noise: torch.Tensor | None = None, device=None):
        """(keep_indices (B, N_keep), mask (B, N), restore_indices (B, N)); see ``random_masking``."""
        return random_masking(batch, self.num_patches, mask_ratio, noise=noise, device=device)

    def forward(self, images: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None) -> MAEOutput:
        # images (B, C, H, W), normalised; noise (B, N) fixes the mask (argsort, smallest noise kept)
        keep, mask, restore = self.mask(images.shape[0], mask_ratio, noise, images.device)
        latent = self.encoder.forward_features(images, keep_indices=keep).tokens
        pred = self.decoder(latent, restore)
        target = pixel_target(images, self.arch.patch_size, self.arch.norm_pix_loss)
        return MAEOutput(masked_mse(pred, target, mask), pred, target, mask, latent)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None):
        """(masked input, reconstruction with visible patches pasted back, images) each (B, C, H, W), in the
        input's normalisation; predictions are de-normalised with each patch's own mean/var when norm_pix."""
        out = self(images, mask_ratio, noise)
        p, c = self.arch.patch_size, self.arch.in_chans
        patches = patchify(images, p)
        pred = out.pred
        if self.arch.norm_pix_loss:
            mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
            pred = pred * (var + 1e-6) ** 0.5 + mean
        m = out.mask.unsqueeze(-1)
        masked_input = unpatchify(patches * (1 - m), p, c)
        recon = unpatchify(patches * (1 - m) + pred * m, p, c)
        return masked_input, recon, images


def mae_init(m: nn.Module) -> None:
    """MAE's initialisation: xavier-uniform linears with zero bias, unit LayerNorms (official ``_init_weights``)."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def _mae_init_embeddings(model: nn.Module) -> None:
    # the patch conv as a linear layer (xavier on its flattened weight); cls and mask tokens ~ N(0, 0.02)
    for module in model.modules():
        if isinstance(module, VisionTransformer):
            w = module.patch_embed.proj.weight
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            nn.init.zeros_(module.patch_embed.proj.bias)
            if module.cls_token is not None:
                nn.init.normal_(module.cls_token, std=0.02)
        elif isinstance(module, MAEDecoder):
            nn.init.normal_(module.mask_token, std=0.02)


# ------------------------------------------------------------------------------------------------ checkpoints
_DECODER_KEYS = {"decoder_embed": "embed", "mask_token": "mask_token", "decoder_pos_embed": "pos_embed",
                 "decoder_blocks": "blocks", "decoder_norm": "norm", "decoder_pred": "pred"}


def convert_official_mae_pretrain(checkpoint, source: str = "MAE checkpoint") -> dict[str, torch.Tensor]:
    """Official MAE / DeepMIM pre-training checkpoint (``MaskedAutoencoderViT`` keys, optionally inside the
    training dict's ``model``) -> our state dict: encoder keys get ``encoder.``, ``decoder_*`` keys become
    ``decoder.*``; DeepMIM's numbered branches (``decoder_embed1``.. ``decoder_pred4``, ``mask_token1``..) become
    ``decoders.{k-1}.*``. The shared ``decoder_pos_embed`` of DeepMIM is copied into every branch."""
    import re

    sd = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{source}: expected a state dict or a training dict with a 'model' state dict")
    if "cls_token" not in sd or "patch_embed.proj.weight" not in sd:
        raise CheckpointError(f"{source}: no 'cls_token'/'patch_embed.proj.weight'; not an MAE pre-training checkpoint")
    out: dict[str, torch.Tensor] = {}
    numbered = any(re.match(r"decoder_embed\d+\.", k) for k in sd)
    branches = sorted({int(m.group(1)) for k in sd if (m := re.match(r"decoder_embed(\d+)\.", k))})
    for key, value in sd.items():
        head, _, rest = key.partition(".")
        match = re.fullmatch(r"([a-z_]+?)(\d*)", head)
        base, idx = (match.group(1), match.group(2)) if match else (head, "")
        if base in _DECODER_KEYS:
            name = _DECODER_KEYS[base] + (f".{rest}" if rest else "")
            if base == "decoder_pos_embed" and numbered:
                for b in branches:
                    out[f"decoders.{b - 1}.{name}"] = value
            elif numbered:
                out[f"decoders.{int(idx) - 1}.{name}"] = value
            else:
                out[f"decoder.{name}"] = value
        else:
            out[f"encoder.{key}"] = value
    return out


def convert_hf_vitmae_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF ``ViTMAEForPreTraining`` state dict (``facebook/vit-mae-*`` files) -> ours. Both HF layouts are read:
    transformers 4 (``vit.encoder.layer.i.attention.attention.query`` ...) and 5 (``vit.layers.i.attention.q_proj``
    ...). HF keeps q, k, v separate; we fuse them in that order (the fused layout MAE and timm use)."""
    import re

    top = {
        "vit.embeddings.cls_token": "encoder.cls_token",
        "vit.embeddings.position_embeddings": "encoder.pos_embed",
        "vit.embeddings.patch_embeddings.projection.weight": "encoder.patch_embed.proj.weight",
        "vit.embeddings.patch_embeddings.projection.bias": "encoder.patch_embed.proj.bias",
        "decoder.mask_token": "decoder.mask_token",
        "decoder.decoder_pos_embed": "decoder.pos_embed",
    }
    modules = {"vit.layernorm": "encoder.norm", "decoder.decoder_embed": "decoder.embed",
               "decoder.decoder_norm": "decoder.norm", "decoder.decoder_pred": "decoder.pred"}
    inner = {"layernorm_before": "norm1", "layernorm_after": "norm2", "attention.output.dense": "attn.proj",
             "attention.o_proj": "attn.proj", "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2",
             "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    qkv_names = {"attention.attention.query": "q", "attention.attention.key": "k", "attention.attention.value": "v",
                 "attention.q_proj": "q", "attention.k_proj": "k", "attention.v_proj": "v"}
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        module, _, leaf = key.rpartition(".")
        layer = re.match(r"(vit\.encoder\.layer|vit\.layers|decoder\.decoder_layers)\.(\d+)\.(.+)$", module)
        if key in top:
            out[top[key]] = value
        elif module in modules:
            out[f"{modules[module]}.{leaf}"] = value
        elif layer and layer.group(3) in qkv_names:
            stack = "decoder.blocks" if layer.group(1).startswith("decoder") else "encoder.blocks"
            qkv.setdefault(f"{stack}.{layer.group(2)}.attn.qkv.{leaf}", {})[qkv_names[layer.group(3)]] = value
        elif layer and layer.group(3) in inner:
            stack = "decoder.blocks" if layer.group(1).startswith("decoder") else "encoder.blocks"
            out[f"{stack}.{layer.group(2)}.{inner[layer.group(3)]}.{leaf}"] = value
        else:
            raise CheckpointError(f"HF ViTMAE state dict: unexpected key {key!r}")
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


# ------------------------------------------------------------------------------------------------ model registry
@register_model("mae_vit")
def mae_vit(**arch) -> MaskedAutoencoderViT:
    """Any MAE: keyword arguments are ``MAEArch`` fields (the tiny recipes use this one)."""
    return MaskedAutoencoderViT(MAEArch(**arch))


@register_model("mae_vit_base_patch16")
def mae_vit_base_patch16(**overrides) -> MaskedAutoencoderViT:
    """MAE ViT-B/16 with the paper's decoder (512 wide, 8 blocks, 16 heads): 111.9M parameters, 85.8M encoder."""
    return MaskedAutoencoderViT(MAEArch(), **overrides)


@register_model("mae_vit_large_patch16")
def mae_vit_large_patch16(**overrides) -> MaskedAutoencoderViT:
    return MaskedAutoencoderViT(MAEArch(embed_dim=1024, depth=24, num_heads=16), **overrides)


# ------------------------------------------------------------------------------------------------ recipe config
@dataclass
class ModelConfig(MAEArch):
    name: str = "mae_vit"  # registered factory; "mae_vit" takes every architecture field
    mask_ratio: float = 0.75

    def arch_kwargs(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in MAEArch.__dataclass_fields__}


@dataclass
class DataConfig:
    root: str = "data/digits"
    synth: str = "digits"  # written to root by `visionzoo demo` when root is missing
    image_size: int = 32
    crop_min_scale: float = 0.5  # MAE: RandomResizedCrop(scale=(0.2, 1)); gentler on 32 px crops
    translate: float = 0.05
    hflip: bool = False  # MAE flips; digits must not be mirrored
    in_memory: bool = True  # decode once, augment whole batches (small images); False: per-image PIL pipeline
    num_classes: int = 10  # fine-tune / linear-probe heads only


@dataclass
class EvalConfig:
    pool: Literal["avg", "cls"] = "avg"  # features for k-NN / probes: mean patch token or cls, after the final norm
    knn_k: int = 20
    knn_temperature: float = 0.1
    linear_probe_epochs: int = 100
    linear_probe_lr: float = 0.01
    probe_blocks: list[int] = field(default_factory=list)  # per-layer linear probe on these 1-based blocks
    few_label_fraction: float = 0.0  # > 0: fine-tune the encoder on this fraction of train labels
    few_label_epochs: int = 50
    few_label_lr: float = 1e-3
    few_label_layer_decay: float = 0.75
    few_label_batch_size: int = 32
    visualize: str = ""  # a PNG path: write a masked / reconstruction / target grid of val images there


@dataclass
class FinetuneConfig:
    """Used by ``stage: finetune`` / ``linprobe`` recipes (see finetune.py)."""

    stage: Literal["pretrain", "finetune", "linprobe"] = "pretrain"
    init: str = ""  # a pretrained folder (ours) or an official MAE/DeepMIM .pth; "" = random init
    layer_decay: float = 0.75  # MAE ViT-B fine-tune 0.65, DeepMIM 0.6
    drop_path: float = 0.1
    label_smoothing: float = 0.1
    global_pool: Literal["avg", "token"] = "avg"


@dataclass
class MAEConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


# ------------------------------------------------------------------------------------------------ task
class MAE(Task):
    """MAE pre-training; validation reports the masked-patch loss and a k-NN accuracy of the encoder."""

    def __init__(self, cfg: MAEConfig):
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        if m.img_size != cfg.data.image_size:
            raise ConfigError(f"model.img_size={m.img_size} differs from data.image_size={cfg.data.image_size}")
        self.mae = create_model(m.name, **m.arch_kwargs()) if m.name == "mae_vit" else create_model(m.name)
        self._val: dict = {}

    @property
    def encoder(self) -> VisionTransformer:
        return self.mae.encoder

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        images, _ = batch
        out = self.mae(images, self.cfg.model.mask_ratio)
        return StepOutput(out.loss, {"mse_masked": out.loss.detach()})

    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        from visionzoo.methods.ssl.mim_eval import pooled_features

        images, labels = batch
        store = self._val.setdefault(dataloader_idx, {"feats": [], "labels": [], "loss": []})
        with torch.no_grad():
            store["feats"].append(pooled_features(self.encoder, images, self.cfg.eval.pool))
            if dataloader_idx == 1:
                # a fixed mask per position in the val set, so the number is comparable across epochs
                g = torch.Generator().manual_seed(len(store["loss"]))
                noise = torch.rand(images.shape[0], self.mae.num_patches, generator=g).to(images.device)
                store["loss"].append(self.mae(images, self.cfg.model.mask_ratio, noise).loss)
        store["labels"].append(labels)

    def validation_metrics(self) -> dict[str, float]:
        from visionzoo.metrics.knn import knn_accuracy

        val, self._val = self._val, {}
        if set(val) != {0, 1}:
            return {}
        e = self.cfg.eval
        knn = knn_accuracy(torch.cat(val[0]["feats"]), torch.cat(val[0]["labels"]), torch.cat(val[1]["feats"]),
                           torch.cat(val[1]["labels"]), k=e.knn_k, temperature=e.knn_temperature)
        return {"knn": knn, "mse_masked": torch.stack(val[1]["loss"]).mean().item()}

    def export_model(self) -> nn.Module:
        return self.mae


def build_task(cfg: MAEConfig) -> Task:
    """``finetune.stage`` picks pre-training (MAE), end-to-end fine-tuning or linear probing."""
    if cfg.finetune.stage == "pretrain":
        return MAE(cfg)
    from visionzoo.methods.ssl.mae.finetune import MAEClassifierTask

    return MAEClassifierTask(cfg)


def evaluate(task: Task, datamodule, cfg: MAEConfig) -> dict[str, float]:
    """Pre-training: k-NN, linear probe, per-layer probes, few-label fine-tune (``cfg.eval``); classifier: top-1."""
    from visionzoo.methods.ssl import mim_eval

    if cfg.finetune.stage != "pretrain":
        return {"top1": mim_eval.classifier_accuracy(task.export_model(), datamodule.val_dataloader()[1])}
    return mim_eval.evaluate_encoder(task.encoder, datamodule, cfg.eval, seed=cfg.train.seed,
                                     reconstructor=task.mae, mask_ratio=cfg.model.mask_ratio)
