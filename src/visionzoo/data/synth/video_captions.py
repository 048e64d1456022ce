"""``video-captions``: short clips of moving coloured shapes with captions, in MSR-VTT's on-disk layout.

Each clip shows a coloured shape crossing the frame in one direction; halfway through, a second shape
appears. Captions name the five factors in a few sentence shapes, e.g. "a red square moves left then a
blue circle appears." Which shape moves and which appears, their colours and the direction are drawn
per video (distinct combinations while there are enough), so retrieval needs the colours and shapes
of both objects; the direction needs the frames' order, which a mean over frames (CLIP4Clip meanP)
cannot see but CenterCLIP's segment clustering (tokens of consecutive frames in one sequence) can.

Written layout (what ``data.video_text.read_msrvtt`` reads)::

    out/videos/video{i}.mp4         frames x size x size, H.264 (mpeg4 where libx264 is absent)
    out/MSRVTT_data.json            {"videos": [...], "sentences": [{"video_id", "caption", "sen_id"}]}
    out/MSRVTT_train.9k.csv         video_id: every training video
    out/MSRVTT_train.7k.csv         video_id: the first 7/9 of them
    out/MSRVTT_JSFUSION_test.csv    key,vid_key,video_id,sentence: one caption per test video
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np

from visionzoo.core.errors import ConfigError
from visionzoo.data.synth import register_synth

COLOURS = {"red": (225, 35, 35), "green": (40, 200, 60), "blue": (55, 90, 255), "yellow": (235, 215, 40),
           "white": (235, 235, 235), "cyan": (40, 215, 215)}
SHAPES = ("square", "circle", "triangle")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
CAPTION_SHAPES = (
    "a {c1} {s1} moves {d} then a {c2} {s2} appears.",
    "the {c1} {s1} goes {d} and a {c2} {s2} shows up",
    "a {c1} {s1} moving {d}, later a {c2} {s2}",
    "{c2} {s2} appears after a {c1} {s1} moved {d}",
)


def _shape_mask(shape: str, size: int) -> np.ndarray:
    """(size, size) bool mask of a shape centred in its box."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if shape == "square":
        return np.ones((size, size), dtype=bool)
    if shape == "circle":
        return (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (size / 2) ** 2
    return np.abs(xx - size / 2) <= yy / 2  # apex up, base on the bottom row


def _paste(frame: np.ndarray, mask: np.ndarray, colour, top: int, left: int) -> None:
    h, w = frame.shape[:2]
    g = mask.shape[0]
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + g), min(w, left + g)
    if y0 >= y1 or x0 >= x1:
        return
    sub = mask[y0 - top : y1 - top, x0 - left : x1 - left]
    frame[y0:y1, x0:x1][sub] = colour


def render_clip(factors: dict, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, size, size, 3) uint8: shape 1 crosses the frame along ``d``, shape 2 appears halfway."""
    g = max(4, size // 4)
    background = np.asarray(rng.integers(20, 60, size=3), dtype=np.uint8)
    clip = np.broadcast_to(background, (frames, size, size, 3)).copy()
    dx, dy = DIRECTIONS[factors["d"]]
    mask1, mask2 = _shape_mask(factors["s1"], g), _shape_mask(factors["s2"], g)
    # the moving shape travels from one margin to the other; its cross-axis position is random
    cross = int(rng.integers(0, size - g + 1))
    start, end = 0, size - g
    if dx < 0 or dy < 0:
        start, end = end, start
    appear_at = frames // 2
    top2, left2 = (int(v) for v in rng.integers(0, size - g + 1, size=2))
    for t in range(frames):
        along = round(start + (end - start) * t / max(1, frames - 1))
        top, left = (cross, along) if dx else (along, cross)
        _paste(clip[t], mask1, COLOURS[factors["c1"]], top, left)
        if t >= appear_at:
            _paste(clip[t], mask2, COLOURS[factors["c2"]], top2, left2)
    return clip


def caption(factors: dict, shape_index: int = 0) -> str:
    return CAPTION_SHAPES[shape_index % len(CAPTION_SHAPES)].format(**factors)


@register_synth("video-captions", "moving coloured shapes with captions, MSR-VTT layout (text-video retrieval)")
def write_video_captions(out: str | Path, n_videos: int = 300, frames: int = 12, size: int = 32, seed: int = 0,
                         test_fraction: float = 0.2, captions_per_video: int = 4, fps: float = 6.0) -> dict:
    """Write ``n_videos`` captioned clips in MSR-VTT's layout to ``out``; deterministic per ``seed``."""
    if size % 2 or size < 16:
        raise ConfigError(f"video-captions size={size}: expected an even number >= 16 (yuv420p video)")
    if frames < 2 or n_videos < 2:
        raise ConfigError(f"video-captions: need frames >= 2 and n_videos >= 2, got {frames} and {n_videos}")
    if not 1 <= captions_per_video <= len(CAPTION_SHAPES):
        raise ConfigError(f"video-captions captions_per_video={captions_per_video}: expected 1..{len(CAPTION_SHAPES)}")
    from visionzoo.data.video import write_video

    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    combos = list(itertools.product(COLOURS, SHAPES, DIRECTIONS, COLOURS, SHAPES))
    combos = [c for c in combos if (c[0], c[1]) != (c[3], c[4])]  # the second shape differs from the first
    order = rng.permutation(len(combos))
    if n_videos > len(combos):
        order = np.concatenate([order, rng.integers(0, len(combos), n_videos - len(combos))])
    n_test = max(1, int(round(n_videos * test_fraction)))
    videos, sentences = [], []
    test_rows = []
    for i in range(n_videos):
        c1, s1, d, c2, s2 = combos[order[i]]
        factors = {"c1": c1, "s1": s1, "d": d, "c2": c2, "s2": s2}
        vid = f"video{i}"
        write_video(out / "videos" / f"{vid}.mp4", render_clip(factors, frames, size, rng), fps=fps)
        is_test = i >= n_videos - n_test
        videos.append({"video_id": vid, "id": i, "split": "test" if is_test else "train", "category": 0,
                       **{"start time": 0.0, "end time": frames / fps}})
        shapes = rng.permutation(len(CAPTION_SHAPES))[:captions_per_video]
        for k in shapes:
            sentences.append({"video_id": vid, "caption": caption(factors, int(k)), "sen_id": len(sentences)})
        if is_test:
            test_rows.append((f"ret{len(test_rows)}", f"msr{i}", vid, caption(factors, int(shapes[0]))))
    train_ids = [v["video_id"] for v in videos if v["split"] == "train"]
    (out / "MSRVTT_data.json").write_text(json.dumps({"info": {"synthetic": True, "seed": seed},
                                                      "videos": videos, "sentences": sentences}))
    for name, ids in (("MSRVTT_train.9k.csv", train_ids), ("MSRVTT_train.7k.csv", train_ids[: len(train_ids) * 7 // 9])):
        with (out / name).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["video_id"])
            w.writerows([v] for v in ids)
    with (out / "MSRVTT_JSFUSION_test.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "vid_key", "video_id", "sentence"])
        w.writerows(test_rows)
    return {"root": str(out), "videos": n_videos, "train": len(train_ids), "test": len(test_rows),
            "captions": len(sentences), "frames": frames, "size": size}
