"""Slimmable ResNet-50 vs plain torchvision ResNets with the same weights (the cost of slicing).

- width 1.0: ours vs ``torchvision.models.resnet50`` loaded with ``export_width(model, 1.0)``;
- width 0.5: ours (sliced full-size weights) vs a standalone torchvision-block ResNet of that width
  (``narrow_resnet``), i.e. what a user would deploy after ``export_width``.
Inference (eval, no grad) and one training step (forward + backward, train mode) each.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.nn.slimmable import export_width, narrow_resnet, set_width, slim_resnet50


def _pair(width: float) -> tuple[nn.Module, nn.Module]:
    ours = slim_resnet50()
    set_width(ours, width)
    if width == 1.0:
        peer = torchvision.models.resnet50()
        peer.fc = nn.Identity()
    else:
        peer = narrow_resnet(ours.config, width)
    peer.load_state_dict(export_width(ours, width))
    return ours, peer


def _infer(model: nn.Module, x: torch.Tensor):
    def call() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return call


def _train_step(model: nn.Module, x: torch.Tensor):
    def call() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    return call


def run(quick: bool = False) -> list[BenchResult]:
    torch.manual_seed(0)
    # quick: small enough for < 60 s on a shared 2-core CPU; full: a ResNet-50-typical input
    batch, size = (1, 96) if quick else (4, 224)
    repeats, warmup = (3, 1) if quick else (7, 1)
    x = torch.randn(batch, 3, size, size)
    results = []
    for width in (1.0, 0.5):
        ours, peer = _pair(width)
        peer_name = "torchvision resnet50" if width == 1.0 else "torchvision-block narrow resnet"
        ours.eval(), peer.eval()
        results.append(compare(
            f"slim_resnet50 w={width} inference b{batch} {size}px", _infer(ours, x), _infer(peer, x),
            warmup=warmup, repeats=repeats, target=0.95, items_per_call=batch, note=f"peer: {peer_name}",
        ))
        ours.train(), peer.train()
        results.append(compare(
            f"slim_resnet50 w={width} train step b{batch} {size}px", _train_step(ours, x), _train_step(peer, x),
            warmup=warmup, repeats=repeats, target=0.95, items_per_call=batch, note=f"peer: {peer_name}",
        ))
    return results


if __name__ == "__main__":
    import sys

    results = run(quick="--quick" in sys.argv)
    print(format_table(results))
    write_results(results, "benchmarks/results", "slimmable_resnet")
