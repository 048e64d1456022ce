"""Small transformer encoder / decoder stacks for method heads (MAE decoders, seq2seq translation heads, ...).

Both are pre-norm stacks on torch SDPA. Padding masks follow torch's convention: ``key_padding_mask`` is a bool
(B, N) tensor with True at padded positions. Sequences are assumed right-padded (at least one real token each).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from visionzoo.nn.transformer import Attention, Block, DropPath, Mlp

__all__ = ["TransformerEncoder", "TransformerDecoder", "DecoderBlock", "CrossAttention", "padding_to_attn_mask"]


def padding_to_attn_mask(
    key_padding_mask: torch.Tensor | None, causal_len: int | None = None, device: torch.device | None = None
) -> torch.Tensor | None:
    """(B, S) bool, True = pad -> SDPA bool mask broadcastable to (B, H, T, S), True = may attend.

    With ``causal_len=T`` (self-attention, T == S) query t may also only attend keys <= t.
    """
    mask = None
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool:
            raise ValueError(f"key_padding_mask must be bool (True = pad); got {key_padding_mask.dtype}")
        mask = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
    if causal_len is not None:
        causal = torch.ones(causal_len, causal_len, dtype=torch.bool, device=device).tril()  # (T, T)
        mask = causal if mask is None else mask & causal
    return mask


class TransformerEncoder(nn.Module):
    """A stack of pre-norm ``Block``s with a final LayerNorm: (B, N, dim) -> (B, N, dim)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        act: str = "gelu",
        norm_eps: float = 1e-6,
        drop: float = 0.0,
        drop_path: float = 0.0,
        final_norm: bool = True,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_ratio, qkv_bias, act, norm_eps, drop=drop, drop_path=drop_path) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, N, dim); key_padding_mask: (B, N) bool, True = pad -> (B, N, dim)
        mask = padding_to_attn_mask(key_padding_mask)
        for block in self.blocks:
            x, _ = block(x, attn_mask=mask)
        return self.norm(x)


class CrossAttention(nn.Module):
    """Multi-head attention of queries x over a memory sequence (separate q and fused kv projections)."""

    def __init__(
        self, dim: int, num_heads: int, memory_dim: int | None = None, qkv_bias: bool = True, drop: float = 0.0
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(memory_dim or dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, dim), memory: (B, S, memory_dim), attn_mask: bool broadcastable to (B, H, T, S) -> (B, T, dim)
        q = rearrange(self.q(x), "b t (h d) -> b h t d", h=self.num_heads)
        B, S, _ = memory.shape
        kv = self.kv(memory).view(B, S, 2, self.num_heads, -1)
        k, v = (t.transpose(1, 2) for t in kv.unbind(2))  # (B, H, S, D) each; one-copy backward, as in Attention
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj_drop(self.proj(rearrange(out, "b h t d -> b t (h d)")))


class DecoderBlock(nn.Module):
    """Pre-norm decoder block: causal self-attention, cross-attention to the memory, MLP; each residual."""

    def __init__(
        self,
        dim: int,
        heads: int,
        memory_dim: int | None = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        act: str = "gelu",
        norm_eps: float = 1e-6,
        drop: float = 0.0,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, heads, qkv_bias=qkv_bias, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.cross_attn = CrossAttention(dim, heads, memory_dim, qkv_bias=qkv_bias, drop=drop)
        self.norm3 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act=act, drop=drop)
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # x: (B, T, dim), memory: (B, S, memory_dim); masks: bool, True = may attend -> (B, T, dim)
        y, _ = self.attn(self.norm1(x), attn_mask=self_mask)
        x = x + self.drop_path(y)
        x = x + self.drop_path(self.cross_attn(self.norm2(x), memory, attn_mask=memory_mask))
        return x + self.drop_path(self.mlp(self.norm3(x)))


class TransformerDecoder(nn.Module):
    """A stack of ``DecoderBlock``s with a final LayerNorm: targets (B, T, dim) x memory (B, S, memory_dim)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        memory_dim: int | None = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        act: str = "gelu",
        norm_eps: float = 1e-6,
        drop: float = 0.0,
        drop_path: float = 0.0,
        final_norm: bool = True,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            DecoderBlock(dim, heads, memory_dim, mlp_ratio, qkv_bias, act, norm_eps, drop, drop_path)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
        causal: bool = True,
    ) -> torch.Tensor:
        # x: (B, T, dim) target embeddings; memory: (B, S, memory_dim); padding masks (B, T) / (B, S) bool,
        # True = pad -> (B, T, dim). causal=True: position t sees targets <= t only (teacher forcing).
        self_mask = padding_to_attn_mask(key_padding_mask, causal_len=x.shape[1] if causal else None, device=x.device)
        memory_mask = padding_to_attn_mask(memory_key_padding_mask)
        for block in self.blocks:
            x = block(x, memory, self_mask, memory_mask)
        return self.norm(x)
