"""Keypoint heatmaps: ours (separable, rendered at 112 x 112) vs the official render-crop-resize pipeline.

No maintained library renders these heatmaps, so the peer is the SLRT pipeline itself, as
``render_heatmaps_dense`` reproduces it: one Gaussian per keypoint on the raw 260 x 210 Phoenix frame,
crop, bilinear resize to 112 x 112. Setup: TwoStream's 79 keypoints, sigma 8 raw px, one crop box per
clip. Both must agree to the bilinear error bound 1 / (4 sigma^2); the benchmark raises if they do not.
Ratio > 1: we are faster.
"""

from __future__ import annotations

import torch

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.data.heatmaps import render_heatmaps, render_heatmaps_dense

FRAME_HW = (260, 210)  # Phoenix raw frames
CROP = (12, 20, 198, 250)  # x0, y0, x1, y1: a RandomResizedCrop-like box
SIGMA = 8.0


def run(quick: bool = False) -> list[BenchResult]:
    frames = 4 if quick else 16
    g = torch.Generator().manual_seed(0)
    points = torch.rand(frames, 79, 3, generator=g) * torch.tensor([FRAME_HW[1], FRAME_HW[0], 1.0])
    points[..., 2] = 1.0

    def ours():
        return render_heatmaps(points, FRAME_HW, 112, SIGMA, CROP)

    def peer():
        return render_heatmaps_dense(points, FRAME_HW, 112, SIGMA, CROP)

    err = (ours() - peer()).abs().max().item()
    if err > 1 / (4 * SIGMA**2) + 1e-5:
        raise AssertionError(f"heatmaps differ by {err:.4g}, more than the bilinear bound {1 / (4 * SIGMA**2):.4g}")
    warmup, repeats = (1, 3) if quick else (2, 7)
    note = (
        f"T={frames}, K=79, raw {FRAME_HW[0]}x{FRAME_HW[1]} -> 112x112, sigma {SIGMA}, fp32, "
        f"threads={torch.get_num_threads()}, max |diff| {err:.4f}"
    )
    return [
        compare("heatmaps.render_79x112", ours, peer, warmup=warmup, repeats=repeats, target=1.0,
                items_per_call=frames, note=note),
    ]  # fmt: skip


if __name__ == "__main__":
    results = run()
    print(format_table(results))
    write_results(results, "benchmarks/results", "heatmaps")
