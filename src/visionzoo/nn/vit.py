"""Vision Transformer (Dosovitskiy et al., 2021) with what the MIM papers need from it.

One model covers the timm classifier, the MAE encoder and the MAE fine-tune head:
- parameter names follow timm (``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.{i}.*``, ``norm``,
  ``fc_norm``, ``head``), so timm and MAE checkpoints load by name;
- ``forward_features`` can drop patch tokens (MAE masking), return hidden states after chosen blocks
  (DeepMIM deep supervision) and the attention maps of chosen blocks (TinyMIM relations);
- the positional embedding is learned (timm) or fixed 2D sin-cos (MAE).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.nn.transformer import Block

__all__ = [
    "ViTConfig",
    "ViTOutput",
    "VisionTransformer",
    "VIT_CONFIGS",
    "PatchEmbed",
    "sincos_2d_pos_embed",
    "random_masking",
    "BlockQKV",
    "block_qkv",
    "resample_pos_embed",
    "load_timm_state_dict",
    "convert_mae_state_dict",
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "vit_large_patch16_224",
]


@dataclass
class ViTConfig:
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    class_token: bool = True
    global_pool: Literal["token", "avg", "none"] = "token"
    # LayerNorm after pooling instead of on all tokens (MAE fine-tune head); None = on iff global_pool == "avg",
    # the rule timm uses, so ``global_pool="avg"`` alone reproduces MAE's fine-tune model.
    fc_norm: bool | None = None
    num_classes: int = 1000
    norm_eps: float = 1e-6
    drop_path_rate: float = 0.0
    act: str = "gelu"
    pos_embed: Literal["learned", "sincos"] = "learned"  # "sincos": fixed, not trained (MAE, DeepMIM, TinyMIM)

    def __post_init__(self) -> None:
        if self.global_pool not in ("token", "avg", "none"):
            raise ConfigError(f"ViTConfig.global_pool={self.global_pool!r}; expected 'token', 'avg' or 'none'")
        if self.global_pool == "token" and not self.class_token:
            raise ConfigError("ViTConfig.global_pool='token' needs class_token=True")
        if self.pos_embed not in ("learned", "sincos"):
            raise ConfigError(f"ViTConfig.pos_embed={self.pos_embed!r}; expected 'learned' or 'sincos'")
        if self.img_size % self.patch_size:
            raise ConfigError(f"ViTConfig.img_size={self.img_size} is not a multiple of patch_size={self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"ViTConfig.embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def num_prefix_tokens(self) -> int:
        return 1 if self.class_token else 0

    @property
    def use_fc_norm(self) -> bool:
        return self.global_pool == "avg" if self.fc_norm is None else self.fc_norm


VIT_CONFIGS: dict[str, ViTConfig] = {
    "vit_tiny_patch16_224": ViTConfig(embed_dim=192, depth=12, num_heads=3),
    "vit_small_patch16_224": ViTConfig(embed_dim=384, depth=12, num_heads=6),
    "vit_base_patch16_224": ViTConfig(embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch16_224": ViTConfig(embed_dim=1024, depth=24, num_heads=16),
}


@dataclass
class ViTOutput:
    tokens: torch.Tensor  # (B, P + N_kept, C) after the final norm (P prefix tokens: 0 or 1)
    pooled: torch.Tensor | None  # (B, C) after pooling and fc_norm; None for global_pool="none"
    taps: dict[int, torch.Tensor] = field(default_factory=dict)  # 1-based block -> (B, P + N_kept, C), raw
    attentions: list[torch.Tensor] = field(default_factory=list)  # (B, H, N, N) per requested block


# ---------------------------------------------------------------------------------------------------------------
# Positional embeddings and masking


def sincos_2d_pos_embed(embed_dim: int, grid_size: int | tuple[int, int], cls_token: bool = False) -> torch.Tensor:
    """Fixed 2D sin-cos positional embedding as MAE uses it: (H*W, D), or (1 + H*W, D) with a zero row for cls.

    The first half of the channels encodes the column index, the second half the row index (MAE's ordering,
    which its released checkpoints were trained with); each half is [sin(p * w_k), cos(p * w_k)] with
    w_k = 10000^(-k / (D/4)). Patches are enumerated row-major, as the patch embedding flattens them.
    """
    gh, gw = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    if embed_dim % 4:
        raise ConfigError(f"sincos_2d_pos_embed: embed_dim={embed_dim} must be divisible by 4")
    rows, cols = torch.meshgrid(
        torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij"
    )
    quarter = embed_dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)  # (D/4,)

    def encode(pos: torch.Tensor) -> torch.Tensor:  # (H*W,) -> (H*W, D/2)
        angles = pos.reshape(-1, 1) * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    emb = torch.cat([encode(cols), encode(rows)], dim=1)
    if cls_token:
        emb = torch.cat([torch.zeros(1, embed_dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()


def random_masking(
    batch: int,
    num_patches: int,
    mask_ratio: float,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking: keep the ``int(N * (1 - mask_ratio))`` patches with the smallest noise.

    Returns ``keep_indices`` (B, N_keep) long, ``mask`` (B, N) float with 1 = masked (MAE's convention, so a loss
    is ``(err * mask).sum() / mask.sum()``) and ``restore_indices`` (B, N), the inverse permutation that puts
    [kept tokens, mask tokens] back into patch order. Given the same ``noise`` (B, N) the result is the same,
    as with HF ``ViTMAEModel(noise=...)``.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ConfigError(f"random_masking: mask_ratio={mask_ratio}; expected 0 <= mask_ratio < 1")
    if noise is None:
        noise = torch.rand(batch, num_patches, generator=generator, device=device)
    elif noise.shape != (batch, num_patches):
        raise ValueError(f"random_masking: noise has shape {tuple(noise.shape)}; expected ({batch}, {num_patches})")
    num_keep = int(num_patches * (1 - mask_ratio))
    shuffle = noise.argsort(dim=1)  # ascending: small noise is kept
    restore = shuffle.argsort(dim=1)
    keep = shuffle[:, :num_keep]
    mask = torch.ones(batch, num_patches, device=noise.device)
    mask[:, :num_keep] = 0
    mask = mask.gather(1, restore)  # back to patch order
    return keep, mask, restore


def resample_pos_embed(
    pos_embed: torch.Tensor,
    new_grid: tuple[int, int],
    num_prefix_tokens: int = 1,
    old_grid: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Bicubic resampling of the patch part of a (1, P + H*W, C) positional embedding to a new grid.

    Prefix (cls) rows are kept as they are; this is the DeiT/MAE recipe for fine-tuning at another resolution.
    """
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    if old_grid is None:
        side = math.isqrt(grid.shape[1])
        if side * side != grid.shape[1]:
            raise CheckpointError(f"pos_embed has {grid.shape[1]} patch positions, not a square grid; pass old_grid")
        old_grid = (side, side)
    if tuple(old_grid) == tuple(new_grid):
        return pos_embed
    grid = rearrange(grid, "1 (h w) c -> 1 c h w", h=old_grid[0], w=old_grid[1])
    grid = F.interpolate(grid.float(), size=tuple(new_grid), mode="bicubic", align_corners=False).to(pos_embed.dtype)
    return torch.cat([prefix, rearrange(grid, "1 c h w -> 1 (h w) c")], dim=1)


# ---------------------------------------------------------------------------------------------------------------
# Model


class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches, linearly projected (as a strided conv)."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C_in, H, W) -> (B, H/p * W/p, C)
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"PatchEmbed: input is {tuple(x.shape[-2:])}; the model was built for {self.img_size}")
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, config: ViTConfig | None = None, **overrides):
        super().__init__()
        # always a copy, so a model never shares (and mutates) a VIT_CONFIGS entry
        config = ViTConfig(**overrides) if config is None else replace(config, **overrides)
        self.config = cfg = config
        self.num_prefix_tokens = cfg.num_prefix_tokens

        self.patch_embed = PatchEmbed(cfg.img_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim)) if cfg.class_token else None
        # pos_embed covers the cls token too (timm's and MAE's layout); the sin-cos one is a frozen Parameter, not a
        # buffer, so it is saved under the same key as in MAE checkpoints.
        num_pos = cfg.num_patches + cfg.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.zeros(1, num_pos, cfg.embed_dim), requires_grad=cfg.pos_embed == "learned")
        dpr = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]  # grows with depth
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.act, cfg.norm_eps, drop_path=dpr[i])
            for i in range(cfg.depth)
        )
        self.norm = nn.Identity() if cfg.use_fc_norm else nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.fc_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps) if cfg.use_fc_norm else nn.Identity()
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.init_weights()

    def init_weights(self) -> None:
        cfg = self.config
        self.apply(_init_linear)
        if cfg.pos_embed == "sincos":
            pe = sincos_2d_pos_embed(cfg.embed_dim, cfg.grid_size, cls_token=cfg.class_token)
            self.pos_embed.data.copy_(pe.unsqueeze(0))
        else:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)

    @property
    def num_patches(self) -> int:
        return self.patch_embed.num_patches

    def embed(self, x: torch.Tensor, keep_indices: torch.Tensor | None = None) -> torch.Tensor:
        # (B, C_in, H, W) -> (B, P + N_kept, C): patches + pos-embed, optionally only the kept patches, then cls
        x = self.patch_embed(x)
        P = self.num_prefix_tokens
        x = x + self.pos_embed[:, P:]
        if keep_indices is not None:
            x = x.gather(1, keep_indices.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        if self.cls_token is not None:
            cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
            x = torch.cat([cls, x], dim=1)
        return x

    def forward_features(
        self,
        x: torch.Tensor,
        keep_indices: torch.Tensor | None = None,
        return_taps: Iterable[int] = (),
        return_attention: bool | Sequence[int] = False,
    ) -> ViTOutput:
        """Images (B, C_in, H, W) -> ViTOutput.

        keep_indices: (B, N_keep) patch indices to keep (MAE masking); the others never enter the encoder.
        return_taps: 1-based block numbers whose output hidden states (before the final norm) are returned.
        return_attention: True for every block's attention map, or 1-based block numbers; explicit softmax is
            used only in those blocks, the rest stay on the fused SDPA kernel.
        """
        depth = self.config.depth
        taps_wanted = set(return_taps)
        if return_attention is True:
            attn_wanted = list(range(1, depth + 1))
        elif return_attention is False:
            attn_wanted = []
        else:
            attn_wanted = list(return_attention)
        for i in (*taps_wanted, *attn_wanted):
            if not 1 <= i <= depth:
                raise ValueError(f"block number {i} is out of range; expected 1..{depth} (1-based)")

        h = self.embed(x, keep_indices)
        taps: dict[int, torch.Tensor] = {}
        attn_maps: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks, start=1):
            h, attn = block(h, return_attention=i in attn_wanted)
            if attn is not None:
                attn_maps[i] = attn
            if i in taps_wanted:
                taps[i] = h
        tokens = self.norm(h)
        return ViTOutput(
            tokens=tokens, pooled=self.pool(tokens), taps=taps, attentions=[attn_maps[i] for i in attn_wanted]
        )

    def forward_blocks(
        self, x: torch.Tensor, num_blocks: int, keep_indices: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Images (B, C_in, H, W) -> raw hidden states (B, P + N_kept, C) after block ``num_blocks`` (1-based).

        Later blocks and the final norm never run: a teacher truncated at its distillation layer (TinyMIM's
        ViT-L block 18 of 24) costs only the blocks it uses. ``num_blocks=0`` returns the embedded tokens.
        """
        if not 0 <= num_blocks <= self.config.depth:
            raise ValueError(f"num_blocks={num_blocks} is out of range; expected 0..{self.config.depth}")
        h = self.embed(x, keep_indices)
        for block in self.blocks[:num_blocks]:
            h, _ = block(h)
        return h

    def forward_qkv(
        self,
        x: torch.Tensor,
        block: int,
        num_heads: int | None = None,
        keep_indices: torch.Tensor | None = None,
    ) -> BlockQKV:
        """Images -> the queries, keys and values that block ``block`` (1-based) computes from its input.

        Blocks after ``block`` and the rest of ``block`` itself (proj, MLP) never run. ``num_heads`` splits the
        channels into another head count than the block's own (TinyMIM's student relation block uses the
        teacher's head count); it must divide the width.
        """
        if not 1 <= block <= self.config.depth:
            raise ValueError(f"block number {block} is out of range; expected 1..{self.config.depth} (1-based)")
        h = self.forward_blocks(x, block - 1, keep_indices)
        q, k, v = block_qkv(self.blocks[block - 1], h, num_heads)
        return BlockQKV(q=q, k=k, v=v, hidden=h)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor | None:
        # (B, P + N, C) -> (B, C), then fc_norm (Identity unless the MAE fine-tune head is used)
        mode = self.config.global_pool
        if mode == "none":
            return None
        pooled = tokens[:, 0] if mode == "token" else tokens[:, self.num_prefix_tokens :].mean(dim=1)
        return self.fc_norm(pooled)

    def forward(self, x: torch.Tensor, keep_indices: torch.Tensor | None = None) -> torch.Tensor:
        # (B, C_in, H, W) -> logits (B, num_classes); per-token logits (B, N, num_classes) for global_pool="none"
        if self.config.global_pool == "token":
            # Only the cls token reaches the head, so the last block needs just the cls query, its projection and
            # its MLP (keys/values still see every token): same logits, ~7% fewer FLOPs for ViT-B.
            h = self.embed(x, keep_indices)
            for block in self.blocks[:-1]:
                h, _ = block(h)
            cls = _cls_only_block(self.blocks[-1], h)  # (B, 1, C)
            return self.head(self.fc_norm(self.norm(cls[:, 0])))
        out = self.forward_features(x, keep_indices)
        return self.head(out.pooled if out.pooled is not None else self.fc_norm(out.tokens))


@dataclass
class BlockQKV:
    q: torch.Tensor  # (B, H, N, D)
    k: torch.Tensor  # (B, H, N, D)
    v: torch.Tensor  # (B, H, N, D)
    hidden: torch.Tensor  # (B, N, C), the block's input (before norm1)


def block_qkv(
    block: Block, x: torch.Tensor, num_heads: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Q, K, V (B, H, N, D) of ``block`` for its input x (B, N, C): qkv(norm1(x)), split into heads.

    The fused qkv's output channels are [q | k | v], each laid out as (heads, head_dim), so any head count that
    divides C is a valid split of the same weights; ``None`` keeps the block's own.
    """
    attn = block.attn
    heads = attn.num_heads if num_heads is None else num_heads
    B, N, C = x.shape
    if C % heads:
        raise ConfigError(f"block_qkv: width {C} is not divisible by num_heads={heads}")
    qkv = attn.qkv(block.norm1(x))  # (B, N, 3C)
    q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=heads).unbind(0)
    return q, k, v


def _cls_only_block(block: Block, x: torch.Tensor) -> torch.Tensor:
    """``block(x)[0][:, :1]`` without computing the other tokens' outputs: (B, N, C) -> (B, 1, C).

    Relies on Attention's fused qkv layout: output channels are [q | k | v], each (heads, head_dim).
    """
    attn = block.attn
    B, N, C = x.shape
    y = block.norm1(x)
    w, b = attn.qkv.weight, attn.qkv.bias
    q = F.linear(y[:, :1], w[:C], None if b is None else b[:C])  # (B, 1, C)
    kv = F.linear(y, w[C:], None if b is None else b[C:])  # (B, N, 2C)
    q = rearrange(q, "b n (h d) -> b h n d", h=attn.num_heads)
    # same split as Attention: unbind a view, so backward stacks the grads into kv's layout in one copy
    k, v = (t.transpose(1, 2) for t in kv.view(B, N, 2, attn.num_heads, attn.head_dim).unbind(2))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop if attn.training else 0.0)
    out = attn.proj_drop(attn.proj(rearrange(out, "b h n d -> b n (h d)")))
    cls = x[:, :1] + block.drop_path(out)
    return cls + block.drop_path(block.mlp(block.norm2(cls)))


def _init_linear(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def _factory(name: str):
    def build(**overrides) -> VisionTransformer:
        return VisionTransformer(VIT_CONFIGS[name], **overrides)

    build.__name__ = name
    build.__doc__ = f"{name} with timm's hyper-parameters; keyword arguments override ViTConfig fields."
    return build


vit_tiny_patch16_224 = _factory("vit_tiny_patch16_224")
vit_small_patch16_224 = _factory("vit_small_patch16_224")
vit_base_patch16_224 = _factory("vit_base_patch16_224")
vit_large_patch16_224 = _factory("vit_large_patch16_224")


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint loading


def load_timm_state_dict(
    model: VisionTransformer, state_dict: Mapping[str, torch.Tensor], strict: bool = True, source: str = "state dict"
) -> tuple[list[str], list[str]]:
    """Load a timm-layout ViT state dict into ``model``; returns (missing, unexpected) keys.

    The positional embedding is resampled when the checkpoint's grid differs from the model's. With
    ``strict=True`` any missing or unexpected key, and with either setting any shape mismatch, is a
    ``CheckpointError`` naming ``source`` and the keys.
    """
    sd = dict(state_dict)
    if "pos_embed" in sd:
        P = model.num_prefix_tokens
        new_grid = (model.patch_embed.grid_size,) * 2
        if sd["pos_embed"].shape[1] - P != model.num_patches:
            sd["pos_embed"] = resample_pos_embed(sd["pos_embed"], new_grid, num_prefix_tokens=P)
    own = model.state_dict()
    bad_shapes = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in sd.items() if k in own and v.shape != own[k].shape
    ]
    if bad_shapes:
        raise CheckpointError(f"{source}: shape mismatch for {', '.join(bad_shapes[:4])} (checkpoint vs model)")
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{source}: keys do not match a {type(model).__name__}: missing {missing[:6]}, unexpected {unexpected[:6]}"
        )
    model.load_state_dict(sd, strict=False)
    return missing, unexpected


def convert_mae_state_dict(
    checkpoint: Mapping[str, object], fc_norm: bool | None = None, source: str = "MAE checkpoint"
) -> dict[str, torch.Tensor]:
    """Official MAE (and DeepMIM / TinyMIM) checkpoint -> our encoder state dict (timm names).

    - unwraps the training dict's ``model`` entry (``optimizer``, ``epoch``, ``scaler``, ``args`` are dropped);
    - drops the pre-training decoder(s): ``decoder_*`` and ``mask_token*`` keys (DeepMIM numbers them 1..4);
    - ``fc_norm``: the head of the model that will receive the weights. True (MAE fine-tune model, norm is
      Identity): a pre-training ``norm.*`` is dropped, as MAE's fine-tuning drops it; ``fc_norm.*`` is kept.
      False: ``norm.*`` is kept; a fine-tuned ``fc_norm.*`` checkpoint has no ``norm`` to give and is an error.
      None: norm keys are passed through unchanged.
    The encoder keys themselves already use timm's names.
    """
    sd = checkpoint.get("model", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{source}: expected a state dict or a dict with a 'model' state dict")
    out = {k: v for k, v in sd.items() if not (k.startswith("decoder_") or k.startswith("mask_token"))}
    has_norm = any(k.startswith("norm.") for k in out)
    has_fc_norm = any(k.startswith("fc_norm.") for k in out)
    if fc_norm is True:
        out = {k: v for k, v in out.items() if not k.startswith("norm.")}
    elif fc_norm is False and has_fc_norm and not has_norm:
        raise CheckpointError(
            f"{source}: is a global-pool fine-tuned checkpoint (fc_norm.*, no norm.*); build the model with "
            "global_pool='avg' (fc_norm=True) to load it"
        )
    elif fc_norm is False:
        out = {k: v for k, v in out.items() if not k.startswith("fc_norm.")}
    if "cls_token" not in out or "pos_embed" not in out:
        raise CheckpointError(f"{source}: no 'cls_token'/'pos_embed' keys; not an MAE ViT encoder checkpoint")
    return out
