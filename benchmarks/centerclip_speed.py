"""CenterCLIP training step, k-medoids B6-4,49 vs unclustered (CLIP4Clip meanP), on a reduced-width ViT-B/32 video tower.

Run: ``python benchmarks/centerclip_speed.py [--quick]``. Both arms share weights and inputs: 2 videos x 12
frames x (1 + 49) tokens, width 256 (4 heads), 12 blocks, clustering before block 7; a step is the video
forward + symmetric InfoNCE against fixed caption embeddings + backward. Calls alternate (core.bench.compare),
so drifting machine load hits both arms. Target: >= 1.3x; the token-FLOP upper bound is 1.5x, and the
activations kept for backward shrink to 1/3 in blocks 7-12 (reported in the note).
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.core.registry import create_model
from visionzoo.methods.vl.centerclip.efficiency import saved_activation_elements, vision_tower_flops
from visionzoo.methods.vl.clip.model import clip_contrastive_loss

WIDTH, LAYERS, AFTER, FRAMES, SEGMENTS, K, PATCHES = 256, 12, 6, 12, 4, 49, 49


def _model(mode: str):
    torch.manual_seed(0)
    cluster = {"mode": mode, "after_block": AFTER, "segments": SEGMENTS, "k": K}
    return create_model("centerclip", arch="vit_b32", cluster=cluster, vision_width=WIDTH, vision_layers=LAYERS).train()


def _step(model, video: torch.Tensor, text: torch.Tensor):
    def step() -> None:
        loss, _ = clip_contrastive_loss(model.encode_video(video), text, model.logit_scale, gather=False)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def run(quick: bool = False) -> list[BenchResult]:
    batch, repeats, warmup = (2, 3, 1) if quick else (2, 7, 2)
    clustered, baseline = _model("kmedoids"), _model("none")
    baseline.load_state_dict(clustered.state_dict())
    g = torch.Generator().manual_seed(0)
    video = torch.randn(batch, FRAMES, 3, 224, 224, generator=g)
    text = F.normalize(torch.randn(batch, clustered.clip.cfg.embed_dim, generator=g), dim=-1)
    bound = (vision_tower_flops(FRAMES, PATCHES, WIDTH, LAYERS, AFTER, SEGMENTS, K, "none")
             / vision_tower_flops(FRAMES, PATCHES, WIDTH, LAYERS, AFTER, SEGMENTS, K, "kmedoids"))
    saved_c = saved_activation_elements(clustered, video[:1])
    saved_b = saved_activation_elements(baseline, video[:1])
    activation_ratio = sum(saved_c.values()) / sum(saved_b.values())
    result = compare(
        f"centerclip B{AFTER}-{SEGMENTS},{K} train step, w{WIDTH} x{LAYERS}, b{batch} x {FRAMES} frames",
        _step(clustered, video, text),
        _step(baseline, video, text),
        warmup=warmup,
        repeats=repeats,
        target=1.3,
        items_per_call=batch,
        note=(f"peer = unclustered meanP; token-FLOP upper bound {bound:.2f}x; saved-for-backward activations "
              f"{activation_ratio:.2f} of unclustered (blocks {AFTER + 1}-{LAYERS}: "
              f"{saved_c[f'block{AFTER}'] / saved_b[f'block{AFTER}']:.3f}); torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads"),
    )
    return [result]


if __name__ == "__main__":
    results = run(quick="--quick" in sys.argv)
    print(format_table(results))
    for r in results:
        print(r.note)
    write_results(results, "benchmarks/results", "centerclip_speed")
