"""TwoStream-SLR's training objective (spec §1b "Losses and weights").

    L = sum_s [ CTC(main_s) + w_s * sum_i CTC(aux_s,i) ] + CTC(joint) + sum_{h in rgb, kp, joint} KL(p_bar || p_h)

CTC: blank 0, zero_infinity, summed over the batch and divided by B. w_rgb = 0.2, w_kp = 0.5. The
self-distillation teacher p_bar is the normalised sum of the three main heads' per-frame softmaxes (the
"ensemble_last" distribution), detached; each main head is pulled towards it with
``KLDivLoss(reduction="batchmean")`` (summed over frames and vocabulary, divided by B), weight 1.
The auxiliary heads are not distilled. An optional per-sentence weight (B,) scales every term of its
sentence (the cross-lingual joint training down-weights auxiliary sentences); all ones = the paper's loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from visionzoo.methods.sign.twostream.model import MAIN_HEADS, TwoStreamOutput, TwoStreamSLRConfig
from visionzoo.nn.ctc import ctc_loss


def head_weight(name: str, cfg: TwoStreamSLRConfig) -> float:
    """1 for main heads; the stream's auxiliary weight for ``<stream>_aux<i>``."""
    if "_aux" not in name:
        return 1.0
    return cfg.aux_weight_rgb if name.startswith("rgb") else cfg.aux_weight_keypoint


def self_distillation(out: TwoStreamOutput, sample_weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """KL(teacher || head) per main head; the teacher is the detached ensemble_last distribution."""
    teacher = out.ensemble_log_probs.detach().softmax(-1)  # renormalises the summed softmaxes
    losses = {}
    for name in MAIN_HEADS:
        if name in out.heads:
            student = out.heads[name]["logits"].float().log_softmax(-1)
            per_sentence = F.kl_div(student, teacher, reduction="none").flatten(1).sum(1)
            if sample_weight is not None:
                per_sentence = per_sentence * sample_weight.to(per_sentence)
            losses[name] = per_sentence.sum() / per_sentence.shape[0]  # "batchmean"
    return losses


def twostream_loss(out: TwoStreamOutput, targets: torch.Tensor, target_lengths: torch.Tensor,
                   cfg: TwoStreamSLRConfig, sample_weight: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its named terms (``ctc_<head>``, ``kl_<head>``); ``sample_weight``: (B,) or None (the
    CTC terms check its shape)."""
    logs, total = {}, 0.0
    for name, head in out.heads.items():
        log_probs = head["logits"].float().log_softmax(-1)
        loss = ctc_loss(log_probs, targets, head["lengths"], target_lengths, blank=cfg.blank, reduction="batchmean",
                        sample_weight=sample_weight)
        logs[f"ctc_{name}"] = loss.detach()
        total = total + head_weight(name, cfg) * loss
    # distillation needs at least two heads to ensemble; a single stream has nothing to learn from itself
    if cfg.distill and sum(n in out.heads for n in MAIN_HEADS) > 1:
        for name, kl in self_distillation(out, sample_weight).items():
            logs[f"kl_{name}"] = kl.detach()
            total = total + cfg.distill_weight * kl
    return total, logs
