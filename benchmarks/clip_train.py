"""CLIP training step (forward + symmetric InfoNCE + backward + AdamW step): ours vs open_clip.

Both models start from identical weights (open_clip's state dict loaded into ours with
``load_openai_state_dict``), see the same batch and use the same AdamW settings, in the same process.
Ours: ``nn.clip.CLIP`` + ``methods.vl.clip.clip_contrastive_loss``; peer: ``open_clip.CLIP`` +
``open_clip.ClipLoss``. Before timing, the two losses on the same weights and batch must agree, and so
must both models' losses after one optimiser step each (same gradients -> same update); a mismatch
raises. Ratio > 1: we are faster. Our text tower skips the padding after the batch's last end-of-text
token by default (same embeddings, see ``CLIPTextTower.forward``); the ``no trim`` row runs all positions.

Run: ``python benchmarks/clip_train.py [--quick]`` (quick: the tiny config only, < 60 s).
"""

from __future__ import annotations

import sys

import torch

from visionzoo.core.bench import BenchResult, compare, format_table, write_results

CAPTIONS = [
    "a photo of a cat sitting on a wooden chair.", "a red car parked next to a tall tree.",
    "two dogs playing with a ball in the park.", "a diagram of a transformer block.",
    "a bowl of soup on a kitchen table.", "a small boat on a calm lake at sunset.",
    "a bird perched on a power line.", "an old lamp in a dark room.",
]


def _pair(name: str):
    """(ours, peer, image_size, context_length) with identical weights."""
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    from visionzoo.nn.clip import CLIP, clip_tiny, load_openai_state_dict

    torch.manual_seed(0)
    if name == "tiny":
        cfg = clip_tiny()
        v, t = cfg.vision, cfg.text
        peer = open_clip.CLIP(
            cfg.embed_dim,
            CLIPVisionCfg(layers=v.layers, width=v.width, head_width=v.width // v.heads, patch_size=v.patch_size,
                          image_size=v.image_size),
            CLIPTextCfg(context_length=t.context_length, vocab_size=t.vocab_size, width=t.width, heads=t.heads,
                        layers=t.layers),
            quick_gelu=True)
        ours = load_openai_state_dict(peer.state_dict(), model=CLIP(cfg))
        return ours, peer, v.image_size, t.context_length
    peer = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None)
    ours = load_openai_state_dict(peer.state_dict())
    return ours, peer, 224, 77


def _steps(ours, peer, images, text, trim: bool):
    import open_clip

    from visionzoo.methods.vl.clip.model import clip_contrastive_loss

    peer_loss_fn = open_clip.ClipLoss()
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    opt_peer = torch.optim.AdamW(peer.parameters(), lr=1e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)

    def ours_loss():
        img = ours.encode_image(images, normalize=True)
        txt = ours.encode_text(text, normalize=True, trim_padding=trim)
        return clip_contrastive_loss(img, txt, ours.logit_scale, gather=False)[0]

    def peer_loss():
        img, txt, scale = peer(images, text)  # normalised features, exp(logit_scale)
        return peer_loss_fn(img, txt, scale)

    def step(loss_fn, opt):
        def call():
            loss = loss_fn()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.detach()

        return call

    return ours_loss, peer_loss, step(ours_loss, opt_ours), step(peer_loss, opt_peer)


def _check_agreement(ours_loss, peer_loss, ours_step, peer_step, where: str) -> str:
    with torch.no_grad():
        a, b = ours_loss().item(), peer_loss().item()
    if abs(a - b) > 1e-4 * max(1.0, abs(b)):
        raise AssertionError(f"{where}: losses differ on the same weights and batch: ours {a:.6f}, open_clip {b:.6f}")
    ours_step(), peer_step()
    with torch.no_grad():
        a2, b2 = ours_loss().item(), peer_loss().item()
    if abs(a2 - b2) > 1e-3 * max(1.0, abs(b2)):
        raise AssertionError(f"{where}: after one AdamW step the losses differ: ours {a2:.6f}, open_clip {b2:.6f}")
    return f"loss ours {a:.5f} / open_clip {b:.5f}; after 1 step {a2:.5f} / {b2:.5f}"


def run(quick: bool = False) -> list[BenchResult]:
    import open_clip

    from visionzoo.nn.tokenizer import clip_tokenize

    configs = [("tiny", 32)] if quick else [("tiny", 64), ("vit_b32", 8)]
    warmup, repeats = (1, 3) if quick else (2, 8)
    results = []
    for name, batch in configs:
        for trim in (True, False) if not quick else (True,):
            ours, peer, size, context = _pair(name)  # every row starts from the same weights
            ours.train(), peer.train()
            g = torch.Generator().manual_seed(0)
            images = torch.randn(batch, 3, size, size, generator=g)
            text = clip_tokenize([CAPTIONS[i % len(CAPTIONS)] for i in range(batch)], context_length=context)
            ours_loss, peer_loss, ours_step, peer_step = _steps(ours, peer, images, text, trim)
            agreement = _check_agreement(ours_loss, peer_loss, ours_step, peer_step, name)
            label = f"clip_{name}.train_step b{batch}" + ("" if trim else " (no trim)")
            note = (f"{name}, batch {batch}, fp32, AdamW, open_clip {open_clip.__version__}, "
                    f"threads={torch.get_num_threads()}; {agreement}")
            results.append(compare(label, ours_step, peer_step, warmup=warmup, repeats=repeats, target=1.0,
                                   items_per_call=batch, note=note))
    return results


if __name__ == "__main__":
    results = run(quick="--quick" in sys.argv)
    print(format_table(results))
    for r in results:
        print(r.name, "|", r.note)
    write_results(results, "benchmarks/results", "clip_train")
