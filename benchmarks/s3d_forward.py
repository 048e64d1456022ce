"""S3D forward, ours vs torchvision.models.video.s3d: same random weights, same clip, eval mode, no grad.

Run: ``python benchmarks/s3d_forward.py`` (writes benchmarks/results/s3d_forward.{json,md}).
"""

from __future__ import annotations

import torch

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.nn.s3d import S3D, S3DConfig, convert_torchvision_s3d


def _pair(channels_last: bool) -> tuple[S3D, torch.nn.Module]:
    from torchvision.models.video import s3d

    torch.manual_seed(0)
    peer = s3d(weights=None).eval()
    ours = S3D(S3DConfig(channels_last=channels_last)).eval()
    ours.load_state_dict(convert_torchvision_s3d(peer.state_dict()))
    return ours, peer


def run(quick: bool = False) -> list[BenchResult]:
    results = []
    # 112 px is the keypoint-heatmap stream's input in TwoStream-SLR; the peer's fixed (2, 7, 7) head pool
    # cannot run below 224 px, so at 112 px both sides run the backbone only (``features``).
    cases = [("1x3x16x112x112 backbone", (1, 3, 16, 112, 112), True, 1.0)]
    if not quick:
        cases += [
            ("1x3x16x112x112 backbone, ours NCDHW", (1, 3, 16, 112, 112), False, None),
            ("1x3x16x224x224 full (logits)", (1, 3, 16, 224, 224), True, 1.0),
        ]
    for name, shape, channels_last, target in cases:
        ours, peer = _pair(channels_last)
        x = torch.randn(shape)
        backbone_only = shape[-1] < 224

        @torch.no_grad()
        def ours_fn():
            out = ours(x)
            return out.features if backbone_only else out.logits

        @torch.no_grad()
        def peer_fn():
            return peer.features(x) if backbone_only else peer(x)

        results.append(
            compare(
                f"s3d forward {name}", ours_fn, peer_fn, warmup=1, repeats=3 if quick else 7, target=target,
                note=f"channels_last={channels_last}; peer=torchvision.models.video.s3d",
            )
        )
    return results


if __name__ == "__main__":
    results = run()
    print(format_table(results))
    write_results(results, "benchmarks/results", "s3d_forward")
