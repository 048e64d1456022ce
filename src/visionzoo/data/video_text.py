"""Text-video retrieval datasets in the layouts CLIP4Clip / CenterCLIP read: MSR-VTT, MSVD, ActivityNet Captions.

Every reader returns a :class:`VideoTextIndex`: the split's videos (id + file) and its captions, each
caption pointing at its video, so one video may carry many captions (the multi-caption protocol).

Layouts (``root`` is the dataset folder; ``videos`` a folder of ``{video_id}.{mp4,avi,webm,...}``):

- **MSR-VTT** (``data synth video-captions DIR`` writes it):
  ``MSRVTT_train.9k.csv`` / ``MSRVTT_train.7k.csv`` (header ``video_id``; the training videos),
  ``MSRVTT_data.json`` (``{"sentences": [{"video_id", "caption"}, ...]}``; training uses every caption
  of a training video, 20 per video in the real data), ``MSRVTT_JSFUSION_test.csv`` (the 1k-A test:
  columns ``video_id`` and ``sentence``, one caption per video; extra columns such as ``key`` are ignored).
- **MSVD**: ``{train,val,test}_list.txt`` (one video id a line), ``raw-captions.pkl`` (``{video_id:
  [[token, ...], ...]}``, read with the restricted unpickler of ``data.sign.safe_pickle``; each token
  list is joined by spaces into a caption). Every caption is used, also at test time.
- **ActivityNet Captions**: ``train.json`` / ``val_1.json`` (``{video_id: {"sentences": [...], ...}}``);
  a video's sentences are concatenated into one paragraph (paragraph-to-video retrieval). Files may be
  named with or without the ``v_`` prefix of the ids.

Malformed annotations raise a one-line :class:`DataError` naming the file and line or key and what was
expected. Missing videos are reported (count, first file) when the index is built; corrupt videos when
they are decoded, or up front with ``check_videos="decode"``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from torch.utils.data import Dataset

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.data.sign.sample import load_json
from visionzoo.data.video import VIDEO_SUFFIXES, FrameSampling, read_video, video_info
from visionzoo.engine.data import make_loader

# OpenAI CLIP's preprocessing statistics.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

VideoCheck = Literal["exists", "decode", "none"]
DATASETS = ("msrvtt", "msvd", "activitynet")


@dataclass
class VideoTextIndex:
    """One split: ``videos[i]`` is read from ``paths[i]``; caption ``j`` describes video ``caption_video[j]``."""

    name: str
    videos: list[str]
    paths: list[Path]
    captions: list[str]
    caption_video: list[int]

    def __post_init__(self) -> None:
        if len(self.videos) != len(self.paths) or len(self.captions) != len(self.caption_video):
            raise ValueError("VideoTextIndex: videos/paths and captions/caption_video must have equal lengths")

    def __len__(self) -> int:
        return len(self.captions)

    def captions_of(self, video: int) -> list[str]:
        return [c for c, v in zip(self.captions, self.caption_video) if v == video]


# ---------------------------------------------------------------------------------------------- video files


def _video_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(folder, "video folder not found; expected a folder of {video_id}.mp4/.avi files")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES}


def _resolve_videos(name: str, folder: Path, ids: list[str], check: VideoCheck, strip_prefix: str = "") -> list[Path]:
    """Paths of ``ids`` in ``folder``; every missing (or, with ``check='decode'``, unreadable) video is counted."""
    if check not in ("exists", "decode", "none"):
        raise ConfigError(f"check_videos: expected 'exists', 'decode' or 'none', got {check!r}")
    if check == "none":
        return [folder / f"{v}.mp4" for v in ids]
    files = _video_files(folder)
    paths, missing = [], []
    for v in ids:
        path = files.get(v)
        if path is None and strip_prefix and v.startswith(strip_prefix):
            path = files.get(v[len(strip_prefix):])
        if path is None:
            missing.append(v)
        paths.append(path)
    if missing:
        raise DataError(folder, f"{name}: {len(missing)} of {len(ids)} videos missing (first: {missing[0]!r}); "
                                f"expected {folder}/{{video_id}}{{{','.join(VIDEO_SUFFIXES)}}}")
    if check == "decode":
        bad = []
        for path in paths:
            try:
                if video_info(path).num_frames < 1:
                    bad.append(f"{path.name} (no frames)")
            except DataError as e:
                bad.append(f"{path.name} ({e.problem})")
        if bad:
            raise DataError(folder, f"{name}: {len(bad)} of {len(paths)} videos unreadable (first: {bad[0]})")
    return paths


# ---------------------------------------------------------------------------------------------- MSR-VTT


def _read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise DataError(path, f"missing; expected a CSV with column(s) {', '.join(required)}")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        absent = [c for c in required if c not in header]
        if absent:
            raise DataError(path, f"header {header} lacks column(s) {absent}; expected {', '.join(required)}", line=1)
        rows = []
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # blank line
            for c in required:
                if not (row.get(c) or "").strip():
                    raise DataError(path, f"empty {c!r}; expected a non-empty value", line=reader.line_num)
            rows.append((reader.line_num, row))
    if not rows:
        raise DataError(path, "has no rows; expected at least one")
    return rows


def read_msrvtt_sentences(path: Path) -> dict[str, list[str]]:
    """``MSRVTT_data.json`` -> {video_id: [caption, ...]} in file order."""
    data = load_json(path, 'MSR-VTT annotations {"sentences": [{"video_id", "caption"}, ...]}')
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise DataError(path, 'key "sentences": expected a list of {"video_id", "caption"} objects')
    out: dict[str, list[str]] = {}
    for i, s in enumerate(data["sentences"]):
        if not isinstance(s, dict):
            raise DataError(path, f"sentences[{i}]: expected an object with video_id and caption, got {type(s).__name__}")
        for key in ("video_id", "caption"):
            if not isinstance(s.get(key), str) or not s[key].strip():
                raise DataError(path, f"sentences[{i}].{key}: expected a non-empty string, got {s.get(key)!r}")
        out.setdefault(s["video_id"], []).append(s["caption"].strip())
    return out


def read_msrvtt(root: str | Path, split: str = "train", *, train_csv: str = "MSRVTT_train.9k.csv",
                test_csv: str = "MSRVTT_JSFUSION_test.csv", data_json: str = "MSRVTT_data.json",
                videos: str = "videos", check_videos: VideoCheck = "exists") -> VideoTextIndex:
    """MSR-VTT in CLIP4Clip's layout. ``split='train'``: every caption of the ``train_csv`` videos (9k or
    7k); ``'test'`` / ``'val'``: the ``test_csv`` pairs (1k-A, one caption per video)."""
    root = Path(root)
    if split == "train":
        rows = _read_csv(root / train_csv, ("video_id",))
        sentences = read_msrvtt_sentences(root / data_json)
        ids, captions, caption_video = [], [], []
        seen: set[str] = set()
        for line, row in rows:
            v = row["video_id"].strip()
            if v not in sentences:
                raise DataError(root / train_csv, f"video {v!r} has no caption in {data_json}; expected at least one",
                                line=line)
            if v in seen:
                raise DataError(root / train_csv, f"video {v!r} listed twice; expected each video once", line=line)
            for c in sentences[v]:
                captions.append(c)
                caption_video.append(len(ids))
            ids.append(v)
            seen.add(v)
    elif split in ("test", "val"):
        rows = _read_csv(root / test_csv, ("video_id", "sentence"))
        ids, captions, caption_video = [], [], []
        position: dict[str, int] = {}
        for _, row in rows:
            v = row["video_id"].strip()
            if v not in position:
                position[v] = len(ids)
                ids.append(v)
            captions.append(row["sentence"].strip())
            caption_video.append(position[v])
    else:
        raise ConfigError(f"msrvtt split {split!r}: expected 'train', 'val' or 'test'")
    paths = _resolve_videos(f"msrvtt/{split}", root / videos, ids, check_videos)
    return VideoTextIndex(f"msrvtt/{split}", ids, paths, captions, caption_video)


# ---------------------------------------------------------------------------------------------- MSVD


def read_msvd(root: str | Path, split: str = "train", *, captions: str = "raw-captions.pkl",
              videos: str = "videos", check_videos: VideoCheck = "exists") -> VideoTextIndex:
    """MSVD in CLIP4Clip's layout: ``{split}_list.txt`` video ids, ``raw-captions.pkl`` token lists."""
    from visionzoo.data.sign.safe_pickle import load_pickle

    if split not in ("train", "val", "test"):
        raise ConfigError(f"msvd split {split!r}: expected 'train', 'val' or 'test'")
    root = Path(root)
    list_path = root / f"{split}_list.txt"
    if not list_path.is_file():
        raise DataError(list_path, "missing; expected one video id per line")
    ids: list[str] = []
    lines: dict[str, int] = {}
    for n, line in enumerate(list_path.read_text(encoding="utf-8").splitlines(), start=1):
        v = line.strip()
        if not v:
            continue
        if v in lines:
            raise DataError(list_path, f"video {v!r} listed twice (first on line {lines[v]}); expected each once", line=n)
        lines[v] = n
        ids.append(v)
    if not ids:
        raise DataError(list_path, "lists no video; expected one video id per line")
    raw = load_pickle(root / captions)
    if not isinstance(raw, dict):
        raise DataError(root / captions, f"holds a {type(raw).__name__}; expected a dict video_id -> list of token lists")
    texts, caption_video = [], []
    for i, v in enumerate(ids):
        if v not in raw:
            raise DataError(list_path, f"video {v!r} has no captions in {captions}; expected a key for it", line=lines[v])
        entry = raw[v]
        if not isinstance(entry, (list, tuple)) or not entry:
            raise DataError(root / captions, f"[{v!r}]: expected a non-empty list of token lists")
        for j, tokens in enumerate(entry):
            if isinstance(tokens, str):
                sentence = tokens.strip()
            elif isinstance(tokens, (list, tuple)) and all(isinstance(t, str) for t in tokens):
                sentence = " ".join(t.strip() for t in tokens if t.strip())
            else:
                raise DataError(root / captions, f"[{v!r}][{j}]: expected a list of string tokens, got {tokens!r:.60}")
            if not sentence:
                raise DataError(root / captions, f"[{v!r}][{j}]: empty caption; expected at least one token")
            texts.append(sentence)
            caption_video.append(i)
    paths = _resolve_videos(f"msvd/{split}", root / videos, ids, check_videos)
    return VideoTextIndex(f"msvd/{split}", ids, paths, texts, caption_video)


# ---------------------------------------------------------------------------------------------- ActivityNet


def read_activitynet(root: str | Path, split: str = "train", *, videos: str = "videos",
                     check_videos: VideoCheck = "exists") -> VideoTextIndex:
    """ActivityNet Captions for paragraph-to-video retrieval: ``train.json`` or ``val_1.json`` (split 'val'/'test')."""
    files = {"train": "train.json", "val": "val_1.json", "test": "val_1.json"}
    if split not in files:
        raise ConfigError(f"activitynet split {split!r}: expected 'train', 'val' or 'test'")
    root = Path(root)
    path = root / files[split]
    data = load_json(path, 'ActivityNet captions {video_id: {"sentences": [...], "timestamps": [...]}}')
    if not isinstance(data, dict) or not data:
        raise DataError(path, "expected a non-empty object mapping video ids to {\"sentences\": [...]}")
    ids, paragraphs = [], []
    for v, entry in data.items():
        sentences = entry.get("sentences") if isinstance(entry, dict) else None
        if not isinstance(sentences, list) or not sentences:
            raise DataError(path, f"[{v!r}].sentences: expected a non-empty list of strings")
        bad = [i for i, s in enumerate(sentences) if not isinstance(s, str)]
        if bad:
            raise DataError(path, f"[{v!r}].sentences[{bad[0]}]: expected a string, got {sentences[bad[0]]!r:.60}")
        paragraph = " ".join(s.strip() for s in sentences if s.strip())
        if not paragraph:
            raise DataError(path, f"[{v!r}].sentences: all sentences are empty; expected some text")
        ids.append(v)
        paragraphs.append(paragraph)
    paths = _resolve_videos(f"activitynet/{split}", root / videos, ids, check_videos, strip_prefix="v_")
    return VideoTextIndex(f"activitynet/{split}", ids, paths, paragraphs, list(range(len(ids))))


def read_video_text(dataset: str, root: str | Path, split: str, **kwargs) -> VideoTextIndex:
    """Dispatch by dataset name: ``msrvtt``, ``msvd`` or ``activitynet``."""
    readers = {"msrvtt": read_msrvtt, "msvd": read_msvd, "activitynet": read_activitynet}
    if dataset not in readers:
        raise ConfigError(f"data.dataset {dataset!r}: expected one of {DATASETS}")
    return readers[dataset](root, split, **kwargs)


# ---------------------------------------------------------------------------------------------- tensors


def preprocess_clip(clip: torch.Tensor, size: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, size, size) float: CLIP's bicubic short-side resize, centre crop, normalise."""
    import torchvision.transforms.v2.functional as TF

    x = clip.permute(0, 3, 1, 2)
    if min(x.shape[-2:]) != size:
        x = TF.resize(x, size, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    x = TF.center_crop(x, [size, size])
    return TF.normalize(x.float().div_(255), list(CLIP_MEAN), list(CLIP_STD))


class VideoClips(Dataset):
    """Item i: the ``num_frames`` uniformly sampled, preprocessed frames of video i, (T, 3, S, S).

    Short videos repeat frames (no padding, so no frame mask is needed). ``cache`` keeps decoded uint8
    clips in memory (small synthetic sets: each video is decoded once).
    """

    def __init__(self, index: VideoTextIndex, num_frames: int, image_size: int, cache: bool = False):
        self.index, self.image_size, self.cache = index, image_size, cache
        self.sampling = FrameSampling("count", num_frames=num_frames)
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.index.videos)

    def __getitem__(self, i: int) -> torch.Tensor:
        raw = self._cache.get(i)
        if raw is None:
            raw = read_video(self.index.paths[i], self.sampling)
            if self.cache:
                self._cache[i] = raw
        return preprocess_clip(raw, self.image_size)


class CaptionTokens(Dataset):
    """Item j: the CLIP BPE ids of caption j, (context_length,), tokenised once up front."""

    def __init__(self, index: VideoTextIndex, context_length: int):
        from visionzoo.nn.tokenizer import clip_tokenize

        self.tokens = clip_tokenize(index.captions, context_length)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, j: int) -> torch.Tensor:
        return self.tokens[j]


class VideoCaptionPairs(Dataset):
    """Training pairs, one per caption: (frames (T, 3, S, S), token ids (L,))."""

    def __init__(self, clips: VideoClips, tokens: CaptionTokens):
        self.clips, self.tokens = clips, tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, j: int):
        return self.clips[self.clips.index.caption_video[j]], self.tokens[j]


class VideoTextDataModule(L.LightningDataModule):
    """Train pairs of ``train_split`` and the videos + captions of ``val_split`` (loaders via ``make_loader``)."""

    def __init__(self, dataset: str, root: str | Path, batch_size: int, *, num_frames: int = 12,
                 image_size: int = 224, context_length: int = 32, train_split: str = "train",
                 val_split: str = "test", seed: int = 0, num_workers: int = 0, eval_batch_size: int = 64,
                 cache: bool = False, check_videos: VideoCheck = "exists", reader_options: dict | None = None):
        super().__init__()
        options = dict(reader_options or {}, check_videos=check_videos)
        self.train_index = read_video_text(dataset, root, train_split, **options)
        self.val_index = read_video_text(dataset, root, val_split, **options)
        self.train = VideoCaptionPairs(VideoClips(self.train_index, num_frames, image_size, cache),
                                       CaptionTokens(self.train_index, context_length))
        self.val_videos = VideoClips(self.val_index, num_frames, image_size, cache)
        self.val_captions = CaptionTokens(self.val_index, context_length)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers

    def train_dataloader(self):
        return make_loader(self.train, self.batch_size, shuffle=True, seed=self.seed, drop_last=True,
                           num_workers=self.num_workers)

    def eval_video_loader(self):
        return make_loader(self.val_videos, self.eval_batch_size, shuffle=False, num_workers=self.num_workers)

    def eval_caption_loader(self):
        return make_loader(self.val_captions, self.eval_batch_size, shuffle=False)
