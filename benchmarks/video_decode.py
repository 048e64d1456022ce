"""visionzoo.data.video.read_video vs a raw PyAV decode loop on the same synthetic 320x240 video.

The peer is the loop everyone writes: threaded decode, ``frame.to_ndarray(format='rgb24')`` per frame,
``np.stack`` at the end. Cases: a full mp4 decode (target >= 0.9x: our checks and bookkeeping must
cost nothing measurable), a webm full decode (no frame count in the header, so our unknown-count path),
and a 16-frame evenly-spaced sample, where the peer decodes and converts everything, then indexes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from visionzoo.core.bench import BenchResult, compare, format_table, write_results
from visionzoo.data.video import FrameSampling, read_video, write_video


def synthetic_video(t: int, h: int = 240, w: int = 320) -> torch.Tensor:
    """(t, h, w, 3) uint8: moving gradients and a moving square, so the codec has real motion to encode."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    frames = torch.empty(t, h, w, 3, dtype=torch.uint8)
    for i in range(t):
        frames[i, ..., 0] = (xx + 3 * i) % 256
        frames[i, ..., 1] = (yy * 2 + i) % 256
        frames[i, ..., 2] = ((xx + yy) // 2 + 5 * i) % 256
        x0 = (7 * i) % (w - 40)
        frames[i, 100:140, x0:x0 + 40] = 255
    return frames


def pyav_decode_all(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])


def run(quick: bool = False) -> list[BenchResult]:
    seconds = 2 if quick else 4
    repeats = 5 if quick else 15
    frames = synthetic_video(25 * seconds)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        mp4 = write_video(Path(tmp) / "bench.mp4", frames, fps=25)
        webm = write_video(Path(tmp) / "bench.webm", frames, fps=25)
        n = frames.shape[0]
        note = f"{n} frames 320x240, PyAV threaded decode, rgb24"
        results.append(compare(
            "read_video mp4 all frames", lambda: read_video(mp4), lambda: pyav_decode_all(mp4),
            warmup=1, repeats=repeats, target=0.9, items_per_call=n, note=note,
        ))
        results.append(compare(
            "read_video webm all frames", lambda: read_video(webm), lambda: pyav_decode_all(webm),
            warmup=1, repeats=repeats, target=0.9, items_per_call=n, note=note + " (no header frame count)",
        ))
        sampling = FrameSampling("count", num_frames=16)
        idx = sampling.indices(n).numpy()
        results.append(compare(
            "read_video mp4 16 sampled frames", lambda: read_video(mp4, sampling),
            lambda: pyav_decode_all(mp4)[idx],
            warmup=1, repeats=repeats, target=0.9, items_per_call=16,
            note="peer converts every frame then indexes; we convert only the 16 kept",
        ))
    return results


if __name__ == "__main__":
    results = run()
    print(format_table(results))
    write_results(results, "benchmarks/results", "video_decode")
