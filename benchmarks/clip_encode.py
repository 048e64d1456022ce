"""CLIP ViT-B/32 encode_image / encode_text: ours vs open_clip with the same (random) weights.

Both models hold identical weights (open_clip's state dict converted by ``load_openai_state_dict``), run in
eval mode under ``torch.inference_mode`` on the same inputs, in the same process. Ratio > 1: we are faster.
The text rows are measured twice: with our default of skipping the padding after the batch's last EOT
(identical embeddings, see ``CLIPTextTower.forward``) and without it, the like-for-like kernel comparison.
"""

from __future__ import annotations

import torch

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.nn.clip import load_openai_state_dict

CAPTIONS = [
    "a photo of a cat sitting on a wooden chair.",
    "a red car parked next to a tall tree.",
    "two dogs playing with a ball in the park.",
    "a diagram of a transformer block.",
    "a bowl of soup on a kitchen table.",
    "a small boat on a calm lake at sunset.",
    "a bird perched on a power line.",
    "an old lamp in a dark room.",
]


def run(quick: bool = False) -> list[BenchResult]:
    import open_clip

    from visionzoo.nn.tokenizer import clip_tokenize

    batch = 2 if quick else 8  # quick must finish in < 60 s on a shared 2-core machine
    warmup, repeats = (1, 3) if quick else (2, 10)
    torch.manual_seed(0)
    peer = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None).eval()
    ours = load_openai_state_dict(peer.state_dict()).eval()
    images = torch.randn(batch, 3, 224, 224)
    text = clip_tokenize(CAPTIONS[:batch])  # (batch, 77), padded

    def inference(fn):
        def call():
            with torch.inference_mode():
                fn()

        return call

    note = f"ViT-B/32 quickgelu, batch {batch}, fp32, eval, inference_mode, threads={torch.get_num_threads()}"
    kw = dict(warmup=warmup, repeats=repeats, target=1.0, items_per_call=batch)
    return [
        compare("clip_b32.encode_image", inference(lambda: ours.encode_image(images)),
                inference(lambda: peer.encode_image(images)), note=note, **kw),
        compare("clip_b32.encode_text", inference(lambda: ours.encode_text(text)),
                inference(lambda: peer.encode_text(text)), note=note + ", padding trimmed (default)", **kw),
        compare("clip_b32.encode_text (no trim)", inference(lambda: ours.encode_text(text, trim_padding=False)),
                inference(lambda: peer.encode_text(text)), note=note + ", all 77 positions", **kw),
    ]  # fmt: skip


if __name__ == "__main__":
    results = run()
    print(format_table(results))
    write_results(results, "benchmarks/results", "clip_encode")
