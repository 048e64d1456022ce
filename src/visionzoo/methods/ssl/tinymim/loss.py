"""TinyMIM's distillation targets (Ren et al., CVPR 2023, §3): token relations, features, class token.

The paper's finding is that *relations* between tokens transfer best from a MIM teacher to a small student:
for each head h of one chosen block, with d that model's head dim,

    R_qk = softmax(Q_h K_hᵀ / √d)     (the attention map)
    R_vv = softmax(V_h V_hᵀ / √d)

and the student minimises KL(R_qk^T ‖ R_qk^S) + KL(R_vv^T ‖ R_vv^S). Relations are (N × N) whatever the width,
so a 192-wide student can match a 1024-wide teacher without a projection; only the head count must agree.
Feature and class-token distillation are the paper's ablations (they need a projection to the teacher width).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError


def relation_logits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Scaled dot products between tokens: (B, H, N, D), (B, H, N, D) -> (B, H, N, N) = a bᵀ / √D.

    √D is each model's own head dim (no extra temperature, as in the official code), so teacher and student
    relations are scaled differently when their head dims differ.
    """
    return (a @ b.transpose(-2, -1)) * a.shape[-1] ** -0.5


def relation_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(teacher) ‖ softmax(student)) over the key axis, averaged over batch, heads and queries.

    (B, H, N, N) each -> scalar. Both sides go through ``log_softmax`` (the official code takes ``log`` of a
    softmax, which is -inf under fp16 for tiny probabilities).
    """
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"relation_kl: teacher relation {tuple(teacher_logits.shape)} vs student {tuple(student_logits.shape)}; "
            "expected equal (B, H, N, N): match the student's relation heads to the teacher's and use equal tokens"
        )
    log_t = teacher_logits.float().log_softmax(-1)
    log_s = student_logits.float().log_softmax(-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1).mean()


def relation_distill_loss(
    teacher_qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    student_qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    qk_weight: float = 1.0,
    vv_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The TinyMIM objective from one teacher block's and the student's last block's (Q, K, V), each (B, H, N, D).

    Returns (loss, logs) with loss = qk_weight * KL_qk + vv_weight * KL_vv (1 : 1 in the paper).
    """
    (qt, kt, vt), (qs, ks, vs) = teacher_qkv, student_qkv
    if qt.shape[1] != qs.shape[1]:
        raise ConfigError(
            f"TinyMIM relations: teacher has {qt.shape[1]} heads, student relation block {qs.shape[1]}; "
            "set model.relation_heads to the teacher's head count"
        )
    with torch.no_grad():
        t_qk, t_vv = relation_logits(qt, kt), relation_logits(vt, vt)
    kl_qk = relation_kl(t_qk, relation_logits(qs, ks))
    kl_vv = relation_kl(t_vv, relation_logits(vs, vs))
    loss = qk_weight * kl_qk + vv_weight * kl_vv
    return loss, {"kl_qk": kl_qk.detach(), "kl_vv": kl_vv.detach()}


def whiten(tokens: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-token LayerNorm without affine parameters: the teacher-feature target of feature distillation."""
    return F.layer_norm(tokens, tokens.shape[-1:], eps=eps)


def feature_distill_loss(student_proj: torch.Tensor, teacher_tokens: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 between projected student tokens and whitened teacher tokens: (B, N, C_t) each -> scalar.

    With only the class token, (B, 1, C_t), this is the class-token distillation ablation.
    """
    if student_proj.shape != teacher_tokens.shape:
        raise ValueError(
            f"feature_distill_loss: student {tuple(student_proj.shape)} vs teacher {tuple(teacher_tokens.shape)}"
        )
    return F.smooth_l1_loss(student_proj.float(), whiten(teacher_tokens.float()))
