"""TwoStream-SLR inputs: RGB clips + keypoint heatmaps from a continuous sign dataset (spec §1b, §1c).

A sample is read by ``visionzoo.data.sign`` (Phoenix-2014T / Phoenix-2014 / CSL-Daily layouts, frames + the
official keypoint pickle), then one set of random parameters is drawn per clip (``ClipAugment``): the
length resampling (0.5-1.5x, a multiple of 4), one RandomResizedCrop box and colour jitter (RGB only). The
box is applied to the RGB frames and, rescaled, to the heatmaps, which are rendered straight into the crop
from the 79 TwoStream keypoints (``render_heatmaps``, sigma in raw-frame pixels). Test time keeps all frames
(centre 400-frame window, truncated to a multiple of 4) and resizes the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import Dataset

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.data.heatmaps import render_heatmaps
from visionzoo.data.keypoints import TWOSTREAM_79_INDICES
from visionzoo.data.sign.datasets import SignDataset, pad_sequences, read_sign_dataset
from visionzoo.data.sign.keypoint_files import PickleKeypoints
from visionzoo.data.sign.vocab import Vocabulary, build_gloss_vocab
from visionzoo.data.video import FrameSampling
from visionzoo.data.video_transforms import ClipAugment, ClipAugmentConfig, ClipParams, thwc_to_tchw
from visionzoo.engine.data import make_loader

KEYPOINT_PICKLES = {"phoenix2014t": "phoenix-2014t-keypoints.pkl", "phoenix2014": "phoenix-2014-keypoints.pkl",
                    "csl-daily": "csl-daily-keypoints.pkl"}
SPLIT_NAMES = {"phoenix2014t": ("train", "dev", "test"), "phoenix2014": ("train", "dev", "test"),
               "csl-daily": ("train", "dev", "test")}


@dataclass
class DataConfig:
    root: str = "data/phoenix2014t"
    dataset: str = "phoenix2014t"  # a continuous reader of visionzoo.data.sign (phoenix2014t | phoenix2014 | csl-daily)
    keypoints: str = ""  # keypoint pickle; "" = <root>/<official name>
    synthsign: dict = field(default_factory=dict)  # when non-empty and root is missing: write SynthSign with these
    image_size: int = 224  # RGB crop output (square)
    heatmap_size: int = 112  # must be image_size / 2 (the lateral connections need the exact ratio)
    sigma: float = 8.0  # Gaussian std in raw-frame pixels
    crop_scale: tuple[float, float] = (0.7, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.3)
    color_jitter_p: float = 0.3
    temporal_scale: tuple[float, float] = (0.5, 1.5)
    max_frames: int = 400
    eval_center_crop: float = 1.0  # CSL-Daily: 270 / 320
    bgr: bool = True  # the official S3D (kylemin port, K400) is fed BGR frames
    cache: bool = False  # keep decoded frames and keypoints in memory (small corpora)
    eval_batch_size: int = 8

    def __post_init__(self):
        if self.image_size != 2 * self.heatmap_size:
            raise ConfigError(f"data.heatmap_size: expected image_size / 2 = {self.image_size / 2}, got "
                              f"{self.heatmap_size} (the keypoint stream runs at half the RGB resolution)")
        if self.dataset not in KEYPOINT_PICKLES:
            raise ConfigError(f"data.dataset: expected one of {', '.join(KEYPOINT_PICKLES)}, got {self.dataset!r}")


def clip_augment_config(cfg: DataConfig) -> ClipAugmentConfig:
    return ClipAugmentConfig(size=(cfg.image_size, cfg.image_size), aux_size=None, crop_scale=tuple(cfg.crop_scale),
                             crop_ratio=tuple(cfg.crop_ratio), color_jitter_p=cfg.color_jitter_p,
                             temporal_scale=tuple(cfg.temporal_scale), max_frames=cfg.max_frames,
                             eval_center_crop=cfg.eval_center_crop)


def make_clip(frames: torch.Tensor, keypoints: torch.Tensor, cfg: DataConfig, augment: ClipAugment,
              params: ClipParams) -> tuple[torch.Tensor, torch.Tensor]:
    """frames uint8 (T, H, W, 3), COCO-133 keypoints (T, 133, 3) in frame pixels ->
    rgb (3, T', S, S) in [-1, 1] and heatmaps (79, T', S/2, S/2) normalised as (h - 0.5) / 0.5."""
    if len(frames) != len(keypoints):
        raise ValueError(f"make_clip: {len(frames)} frames but {len(keypoints)} keypoint frames")
    frame_hw = (int(frames.shape[1]), int(frames.shape[2]))
    rgb = augment.apply(params, thwc_to_tchw(frames)).rgb  # (T', 3, S, S)
    if cfg.bgr:
        rgb = rgb.flip(1)
    top, left, h, w = params.box.to_pixels(frame_hw)
    points = keypoints[params.frame_idx][:, TWOSTREAM_79_INDICES]
    heat = render_heatmaps(points, frame_hw, cfg.heatmap_size, cfg.sigma, crop_box=(left, top, left + w, top + h))
    heat = (heat - 0.5) / 0.5  # (T', 79, s, s)
    return rgb.transpose(0, 1).contiguous(), heat.transpose(0, 1).contiguous()


class TwoStreamClips(Dataset):
    """Items: rgb (3, T, S, S), heatmaps (79, T, S/2, S/2), gloss_ids (L,), gloss (list), name."""

    def __init__(self, signs: SignDataset, cfg: DataConfig, train: bool):
        self.signs, self.cfg, self.train = signs, cfg, train
        self.augment = ClipAugment(clip_augment_config(cfg), train=train)
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.signs)

    def _raw(self, index: int) -> dict:
        if index in self._cache:
            return self._cache[index]
        item = self.signs[index]
        if self.cfg.cache:
            self._cache[index] = item
        return item

    def __getitem__(self, index: int) -> dict:
        item = self._raw(index)
        frames, kps = item["frames"], item["keypoints"]
        # augmentation draws from the global RNG, which the engine checkpoints: resumed runs see the same clips
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ()))) if self.train else None
        params = self.augment.sample(len(frames), (int(frames.shape[1]), int(frames.shape[2])), gen)
        rgb, heat = make_clip(frames, kps, self.cfg, self.augment, params)
        return {"rgb": rgb, "heatmaps": heat, "gloss_ids": item["gloss_ids"], "gloss": item["gloss"],
                "name": item["name"]}


def collate_clips(items: list[dict]) -> dict:
    """Pad along time by repeating the last frame (official padding); lengths are the valid frame counts."""
    rgb, lengths = pad_sequences([it["rgb"].transpose(0, 1) for it in items], mode="edge")
    heat, _ = pad_sequences([it["heatmaps"].transpose(0, 1) for it in items], mode="edge")
    gloss_ids, gloss_lengths = pad_sequences([it["gloss_ids"] for it in items], value=0)
    return {"rgb": rgb.transpose(1, 2).contiguous(), "heatmaps": heat.transpose(1, 2).contiguous(),
            "lengths": lengths, "gloss_ids": gloss_ids, "gloss_lengths": gloss_lengths,
            "gloss": [it["gloss"] for it in items], "names": [it["name"] for it in items]}


def ensure_dataset(cfg: DataConfig) -> None:
    """Write the recipe's SynthSign corpus when ``root`` is missing and the recipe asks for one."""
    root = Path(cfg.root)
    if root.exists() or not cfg.synthsign:
        return
    from visionzoo.data.synth.synthsign import write_synthsign

    write_synthsign(root, format=cfg.dataset, **cfg.synthsign)


def keypoint_path(cfg: DataConfig) -> Path:
    path = Path(cfg.keypoints) if cfg.keypoints else Path(cfg.root) / KEYPOINT_PICKLES[cfg.dataset]
    if not path.is_file():
        raise DataError(path, "keypoint pickle not found; expected {name: {'keypoints': (T, 133, 3)}} "
                              "(set data.keypoints=PATH)")
    return path


def gloss_vocabulary(cfg: DataConfig, glosses: tuple[str, ...] = ()) -> Vocabulary:
    """The CTC gloss vocabulary: ``glosses`` when a trained model brings one, else every train-split gloss
    (alphabetical after the specials, so it is the same whenever the train split is). Unknown glosses in
    dev/test map to <unk> (they count as errors in WER)."""
    if glosses:
        return Vocabulary(list(glosses), kind="gloss", unk="map")
    ensure_dataset(cfg)
    train = read_sign_dataset(cfg.dataset, cfg.root, SPLIT_NAMES[cfg.dataset][0], media="ignore")
    return build_gloss_vocab(train, unk="map", order="alphabetical")


class TwoStreamDataModule(L.LightningDataModule):
    """train / dev / test loaders of one continuous sign dataset; the gloss vocabulary comes from train."""

    def __init__(self, cfg: DataConfig, batch_size: int, seed: int = 0, num_workers: int = 0,
                 vocab: Vocabulary | None = None):
        super().__init__()
        ensure_dataset(cfg)
        self.cfg, self.batch_size, self.seed, self.num_workers = cfg, batch_size, seed, num_workers
        keypoints = PickleKeypoints(keypoint_path(cfg))
        train_split, dev_split, test_split = SPLIT_NAMES[cfg.dataset]
        index = {s: read_sign_dataset(cfg.dataset, cfg.root, s) for s in (train_split, dev_split, test_split)}
        # glosses are matched case-insensitively, as the official vocabularies (lower case) and WER (upper)
        self.vocab = vocab or gloss_vocabulary(cfg)

        def clips(split: str, train: bool) -> TwoStreamClips:
            signs = SignDataset(index[split], keypoints=keypoints, gloss_vocab=self.vocab,
                                sampling=FrameSampling())
            return TwoStreamClips(signs, cfg, train=train)

        self.train_set = clips(train_split, True)
        self.dev_set = clips(dev_split, False)
        self.test_set = clips(test_split, False)

    def train_dataloader(self):
        return make_loader(self.train_set, self.batch_size, shuffle=True, seed=self.seed, drop_last=False,
                           num_workers=self.num_workers, collate_fn=collate_clips)

    def val_dataloader(self):
        return self.eval_loader("dev")

    def eval_loader(self, split: str):
        ds = {"dev": self.dev_set, "test": self.test_set, "train": self.train_set}[split]
        return make_loader(ds, self.cfg.eval_batch_size, shuffle=False, num_workers=self.num_workers,
                           collate_fn=collate_clips)
