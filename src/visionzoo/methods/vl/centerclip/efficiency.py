"""What token clustering saves, counted rather than timed: transformer FLOPs and activations kept for backward.

CPU wall times on a shared machine vary by up to 3x, so the efficiency claims are checked as counts:
``vision_tower_flops`` gives the token-FLOP upper bound of the speed-up (clustering itself costs extra),
``saved_activation_elements`` counts the elements autograd keeps for the backward pass, per block, with
``torch.autograd.graph.saved_tensors_hooks`` (what training memory is made of).
"""

from __future__ import annotations

from collections import defaultdict

import torch

from visionzoo.methods.vl.centerclip.clustering import ClusterMode


def block_flops(tokens: int, width: int, mlp_ratio: float = 4.0) -> float:
    """Multiply-adds x2 of one pre-norm block on one sequence: qkv + proj (4 n W^2), MLP (2 r n W^2), attention (2 n^2 W)."""
    n, w = tokens, width
    return 2.0 * (4 * n * w * w + 2 * mlp_ratio * n * w * w + 2 * n * n * w)


def vision_tower_flops(frames: int, patches: int, width: int, layers: int, after_block: int, segments: int, k: int,
                       mode: ClusterMode = "kmedoids", mlp_ratio: float = 4.0) -> float:
    """FLOPs of the tower's blocks for one video of ``frames`` frames (patch embedding and heads excluded)."""
    full = frames * block_flops(1 + patches, width, mlp_ratio)
    if mode == "none":
        return layers * full
    kept = patches if mode == "pooling" else k
    reduced = segments * block_flops(1 + kept, width, mlp_ratio)
    return after_block * full + (layers - after_block) * reduced


def saved_activation_elements(model, video: torch.Tensor) -> dict[str, int]:
    """Elements saved for backward during ``model.encode_video(video)``: per vision block ("block{i}") and "other".

    Parameters saved by autograd (weights) are not activations and are excluded.
    """
    params = {p.data_ptr() for p in model.parameters()}
    counts: dict[str, int] = defaultdict(int)
    current = ["other"]

    def pack(t: torch.Tensor):
        if t.data_ptr() not in params:
            counts[current[0]] += t.numel()
        return t

    handles = []
    for i, block in enumerate(model.clip.visual.blocks):
        handles.append(block.register_forward_pre_hook(lambda m, a, i=i: current.__setitem__(0, f"block{i}")))
        handles.append(block.register_forward_hook(lambda m, a, o: current.__setitem__(0, "other")))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.encode_video(video)
    finally:
        for h in handles:
            h.remove()
    return dict(counts)
