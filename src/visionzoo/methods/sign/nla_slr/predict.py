"""``visionzoo predict nla-slr VIDEO --model RUN``: the top-5 glosses of one isolated sign video.

Keypoints come from MediaPipe Holistic (its models ship inside the wheel), mapped to COCO-WholeBody-133 and
cut to the 63 NLA-SLR points; frames where no person is found keep all-zero keypoints (score 0 -> empty
heatmaps), as the official pipeline zero-fills frames without a detection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from visionzoo.core.errors import DataError
from visionzoo.core.hub import CONFIG_NAME, from_pretrained
from visionzoo.data.keypoints import HolisticExtractor, read_frames, to_coco_wholebody
from visionzoo.methods.sign.nla_slr.data import DataConfig, resize_clip
from visionzoo.methods.sign.nla_slr.model import VKNet
from visionzoo.methods.sign.nla_slr.task import predict_probabilities


def load_model(path: str | Path) -> VKNet:
    """A run folder (its ``model/``) or a pretrained folder."""
    path = Path(path)
    if (path / "model" / CONFIG_NAME).is_file():
        path = path / "model"
    model = from_pretrained(path)
    if not isinstance(model, VKNet):
        raise DataError(path, f"holds a {type(model).__name__}, expected an NLA-SLR model (nla_slr_vknet)")
    if not model.config.class_names:
        raise DataError(path / CONFIG_NAME, "model_kwargs has no class_names; expected the gloss of every class")
    return model


def clip_batch(frames: np.ndarray, coco133: np.ndarray, raw_size: int) -> dict:
    """One video as the raw batch ``make_clips`` reads: frames (1, T, s, s, 3) uint8, keypoints (1, T, 63, 3)."""
    t, h, w, _ = frames.shape
    resized, kps = resize_clip(torch.from_numpy(np.ascontiguousarray(frames)), torch.from_numpy(coco133), (h, w),
                               raw_size)
    lengths = torch.tensor([t])
    return {"frames": resized[None], "frame_lengths": lengths, "keypoints": kps[None], "keypoint_lengths": lengths}


@torch.no_grad()
def classify_video(model: VKNet, video: str | Path, crops: str = "3x_pad", ensemble: str = "ensemble_last",
                   top: int = 5, extractor: HolisticExtractor | None = None) -> list[tuple[str, float]]:
    """[(gloss, probability)] of the ``top`` best classes, best first."""
    frames, fps = read_frames(video)
    keypoints = (extractor or HolisticExtractor()).extract_frames(frames, fps=fps)
    batch = clip_batch(frames, to_coco_wholebody(keypoints), model.config.raw_size)
    probs = predict_probabilities(model, batch, DataConfig(), crops)[ensemble][0]
    values, ids = probs.topk(min(top, len(probs)))
    return [(model.config.class_names[int(i)], float(v)) for v, i in zip(values, ids)]


def run_predict(args) -> None:
    from rich.console import Console
    from rich.table import Table

    model = load_model(args.model)
    ranked = classify_video(model, args.video, args.crops, args.ensemble, args.top)
    table = Table(title=f"NLA-SLR top-{len(ranked)} for {args.video} ({args.ensemble}, {args.crops})")
    table.add_column("rank", justify="right")
    table.add_column("gloss")
    table.add_column("probability", justify="right")
    for i, (gloss, p) in enumerate(ranked, 1):
        table.add_row(str(i), gloss, f"{p:.4f}")
    Console().print(table)
