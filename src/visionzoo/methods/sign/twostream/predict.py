"""``visionzoo predict twostream VIDEO --model RUN_OR_DIR``: glosses of a sign video.

The video is decoded (PyAV), keypoints come from MediaPipe Holistic mapped to COCO-WholeBody-133 (the
official pipeline uses HRNet; frames without a person are zero-filled, as the official keypoint files are,
and give empty heatmaps), and the clip is prepared exactly as at test time: all frames (centre 400-frame
window, a multiple of 4), the whole frame resized, heatmaps rendered from the 79 TwoStream keypoints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from visionzoo.core.errors import DataError, VisionZooError
from visionzoo.methods.sign.twostream.data import DataConfig, clip_augment_config, make_clip


def extract_coco_keypoints(frames: np.ndarray, fps: float | None = None) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) -> COCO-WholeBody (T, 133, 3) via MediaPipe Holistic (zeros where nobody is found)."""
    from visionzoo.data.keypoints import HolisticExtractor, to_coco_wholebody

    return to_coco_wholebody(HolisticExtractor().extract_frames(frames, fps=fps))


def load_video_inputs(video_path: str | Path, cfg: DataConfig, keypoints: np.ndarray | None = None,
                      frames: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """A video file -> model inputs rgb (1, 3, T, S, S), heatmaps (1, 79, T, S/2, S/2), lengths (1,).

    ``keypoints`` (T, 133, 3) in frame pixels skips MediaPipe (e.g. from a keypoint file); ``frames``
    (T, H, W, 3) uint8 skips decoding.
    """
    from visionzoo.data.video import read_video
    from visionzoo.data.video_transforms import ClipAugment

    path = Path(video_path)
    if frames is None:
        if not path.is_file():
            raise DataError(path, "video file not found")
        frames = read_video(path)  # (T, H, W, 3) uint8
    frames = torch.as_tensor(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise DataError(path, f"expected RGB frames (T>0, H, W, 3), got shape {tuple(frames.shape)}")
    if keypoints is None:
        keypoints = extract_coco_keypoints(frames.numpy())
    kps = torch.as_tensor(np.asarray(keypoints, dtype=np.float32))
    if kps.shape != (len(frames), 133, 3):
        raise DataError(path, f"keypoints have shape {tuple(kps.shape)}; expected ({len(frames)}, 133, 3)")
    augment = ClipAugment(clip_augment_config(cfg), train=False)
    params = augment.sample(len(frames), (int(frames.shape[1]), int(frames.shape[2])), None)
    rgb, heat = make_clip(frames, kps, cfg, augment, params)
    return {"rgb": rgb[None], "heatmaps": heat[None], "lengths": torch.tensor([rgb.shape[1]])}


def add_predict_args(parser) -> None:
    parser.description = ("Recognise the glosses of sign videos with a trained TwoStream-SLR model: MediaPipe "
                          "keypoints -> heatmaps, RGB frames, ensemble of the three main heads, CTC beam search.")
    parser.add_argument("videos", nargs="+", help="video files (mp4, avi, ...)")
    parser.add_argument("--model", required=True, help="a run folder (RUN, holding model/) or a pretrained folder")
    parser.add_argument("--beam-size", type=int, default=5, dest="beam_size", help="1 = greedy")
    parser.add_argument("--collapse-twice", action="store_true", dest="collapse_twice",
                        help="merge repeated glosses once more after decoding (the official decoder's behaviour)")
    parser.add_argument("--image-size", type=int, default=None, dest="image_size",
                        help="RGB input size (default: the run's config, else 224)")
    parser.add_argument("--sigma", type=float, default=None, help="heatmap sigma in frame pixels (default: run's)")


def _model_dir_and_data(model_arg: str) -> tuple[Path, DataConfig]:
    from visionzoo.core.config import from_dict, read_yaml

    root = Path(model_arg)
    model_dir = root / "model" if (root / "model").is_dir() else root
    if not (model_dir / "config.json").is_file():
        raise VisionZooError(f"{model_arg}: expected a run folder with model/ or a folder holding config.json")
    cfg = DataConfig()
    run_config = root / "config.yaml"
    if run_config.is_file():
        data = read_yaml(run_config).get("data", {})
        cfg = from_dict(DataConfig, data, "data")
    return model_dir, cfg


def run_predict(args) -> None:
    import dataclasses

    from visionzoo.core.hub import from_pretrained
    from visionzoo.methods.sign.twostream.task import decode

    model_dir, cfg = _model_dir_and_data(args.model)
    if args.image_size:
        cfg = dataclasses.replace(cfg, image_size=args.image_size, heatmap_size=args.image_size // 2)
    if args.sigma:
        cfg = dataclasses.replace(cfg, sigma=args.sigma)
    model = from_pretrained(model_dir).eval()
    glosses = list(model.config.glosses) or [str(i) for i in range(model.config.vocab_size)]
    for video in args.videos:
        inputs = load_video_inputs(video, cfg)
        with torch.no_grad():
            out = model(inputs["rgb"], inputs["heatmaps"], inputs["lengths"])
        sentence = decode(out.ensemble_log_probs, out.lengths, glosses, args.beam_size, args.collapse_twice,
                          model.config.blank)[0]
        print(f"{video}\t{sentence}")
