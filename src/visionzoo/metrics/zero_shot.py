"""CLIP evaluation: zero-shot classification with prompt templates, and image<->text retrieval R@K.

Zero-shot (Radford et al. 2021, §3.1.4): each class is embedded once per template ("a photo of a {}."),
the L2-normalised embeddings are averaged and re-normalised; an image is assigned the class of highest
cosine similarity. Retrieval reuses ``metrics.retrieval`` with one caption per image.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from visionzoo.core.errors import VisionZooError
from visionzoo.metrics.retrieval import retrieval_metrics

OPENAI_IMAGENET_TEMPLATES_7 = ("itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
                               "a {} in a video game.", "art of the {}.", "a photo of the small {}.")


@torch.no_grad()
def zero_shot_classifier(encode_text: Callable[[list[str]], torch.Tensor], classnames: Sequence[str],
                         templates: Sequence[str]) -> torch.Tensor:
    """(C, E) unit class embeddings; ``encode_text(list of prompts) -> (P, E)`` embeds raw strings."""
    if not templates or any("{}" not in t for t in templates):
        raise VisionZooError(f"zero-shot templates must each contain '{{}}' for the class name, got {list(templates)}")
    weights = []
    for name in classnames:
        emb = F.normalize(encode_text([t.format(name) for t in templates]).float(), dim=-1)  # (T, E)
        weights.append(F.normalize(emb.mean(0), dim=-1))
    return torch.stack(weights)


def zero_shot_accuracy(image_embeds: torch.Tensor, classifier: torch.Tensor, labels: torch.Tensor,
                       ks: Sequence[int] = (1,)) -> dict[str, float]:
    """Top-k accuracy (percent) of image_embeds (N, E) against class embeddings (C, E), labels (N,)."""
    logits = F.normalize(image_embeds.float(), dim=-1) @ classifier.t()  # (N, C)
    top = logits.topk(max(ks), dim=1).indices
    hit = top == labels[:, None]
    return {f"top{k}": 100.0 * hit[:, :k].any(1).float().mean().item() for k in ks}


def image_text_retrieval(image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                         ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """R@K, MedR, MnR for paired (N, E) embeddings (row i of each is a pair): keys ``i2t_*`` and ``t2i_*``.

    Ties count in the caption's favour (``ties="optimistic"``): synthetic and real caption sets repeat
    sentences, and an identical caption is as correct as the paired one.
    """
    sim = F.normalize(text_embeds.float(), dim=-1) @ F.normalize(image_embeds.float(), dim=-1).t()  # (N_t, N_i)
    m = retrieval_metrics(sim, torch.arange(sim.shape[1]), ks=ks, ties="optimistic")
    # retrieval_metrics names text->visual "t2v" and visual->text "v2t"
    return {k.replace("t2v_", "t2i_").replace("v2t_", "i2t_"): v for k, v in m.items()}
