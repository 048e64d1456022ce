"""ViT-B/16 training step (forward + backward) throughput: ours vs timm, same config, weights and inputs.

Run: ``python benchmarks/vit_train.py [--quick]``. Target: ours at least 1.05x timm's speed.
Both run the same kernels (SDPA, addmm, layer norm); our gain comes from ``VisionTransformer.forward`` computing
only the cls token's output in the last block (the classifier reads nothing else), about 7% of ViT-B's FLOPs.
"""

from __future__ import annotations

import sys

import torch

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.nn.vit import vit_base_patch16_224


def _train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def run(quick: bool = False) -> list[BenchResult]:
    import timm

    batch, repeats, warmup = (2, 2, 1) if quick else (8, 5, 2)
    torch.manual_seed(0)
    ours = vit_base_patch16_224().train()
    # timm's own init is skipped (saves seconds): every tensor is overwritten with our weights
    peer = timm.create_model("vit_base_patch16_224", pretrained=False, weight_init="skip").train()
    peer.load_state_dict(ours.state_dict())
    x = torch.randn(batch, 3, 224, 224)
    y = torch.randint(0, 1000, (batch,))
    result = compare(
        f"vit_base_patch16_224 fwd+bwd b{batch} fp32",
        _train_step(ours, x, y),
        _train_step(peer, x, y),
        warmup=warmup,
        repeats=repeats,
        target=1.05,
        items_per_call=batch,
        note=f"timm {timm.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads",
    )
    return [result]


if __name__ == "__main__":
    results = run(quick="--quick" in sys.argv)
    print(format_table(results))
    write_results(results, "benchmarks/results", "vit_train")
