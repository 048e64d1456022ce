"""Image-caption readers for CLIP-style training: a CSV of (image path, caption) and webdataset-style tar shards.

Both return ``(image, token_ids)`` pairs: ``image`` a (3, H, W) float tensor after ``transform``, and
``token_ids`` (context_length,) CLIP BPE ids (``nn.tokenizer.clip_tokenize``). Captions are tokenised
once when the dataset is built, so a training step pays only for image decoding.

Layouts (``data synth image-captions DIR`` writes both):

- **CSV** (open_clip's ``--csv-img-key filepath --csv-caption-key caption``): a header line
  ``filepath,caption``, then one row per pair; relative paths are relative to the CSV's folder.
  Extra columns are allowed and ignored.
- **Tar shards** (webdataset's convention): members grouped by *key*, the member name up to its first
  dot, e.g. ``000123.png`` + ``000123.txt`` (UTF-8 caption). One image (``jpg``/``jpeg``/``png``/``webp``)
  and one ``txt`` per key; other extensions (``json``, ``cls``) are ignored. Shards are indexed once
  (member offsets), then read by seeking: random access without unpacking, so ``make_loader``'s
  resumable shuffle works unchanged.

Every malformed input is a ``DataError`` naming the file and line (CSV) or shard and member (tar).
"""

from __future__ import annotations

import csv
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import lightning as L
import torch
from PIL import Image
from torch.utils.data import Dataset

from visionzoo.core.errors import DataError
from visionzoo.engine.data import make_loader

# OpenAI CLIP's preprocessing statistics (not ImageNet's).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def clip_image_transform(size: int) -> Callable[[Image.Image], torch.Tensor]:
    """CLIP's eval preprocessing: bicubic resize of the short side, centre crop, CLIP normalisation."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.ToImage(),
        v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
        v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(CLIP_MEAN, CLIP_STD),
    ])


def _tokenize(captions: list[str], context_length: int) -> torch.Tensor:
    from visionzoo.nn.tokenizer import clip_tokenize

    if not captions:
        return torch.zeros(0, context_length, dtype=torch.long)
    return clip_tokenize(captions, context_length=context_length)


def _decode(data: bytes, where: str | Path, member: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()  # decode now, so a truncated file fails here and not deep inside a transform
        return img.convert("RGB")
    except Exception as e:  # noqa: BLE001 - PIL raises several types for corrupt data
        raise DataError(where, f"member {member}: not a readable image ({type(e).__name__}: {e})") from None


class _ImageTextBase(Dataset):
    keys: list[str]  # one id per pair (file stem / shard key); labels files refer to these
    captions: list[str]
    tokens: torch.Tensor  # (N, context_length)

    def __init__(self, transform: Callable | None, image_size: int, context_length: int):
        self.transform = transform or clip_image_transform(image_size)
        self.context_length = context_length

    def __len__(self) -> int:
        return len(self.keys)

    def load_image(self, i: int) -> Image.Image:
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        # -> image (3, H, W) float, token ids (context_length,) long
        return self.transform(self.load_image(i)), self.tokens[i]


class CsvImageText(_ImageTextBase):
    """Pairs listed in a CSV with a ``filepath,caption`` header; every row is checked when built."""

    def __init__(self, csv_path: str | Path, transform: Callable | None = None, image_size: int = 224,
                 context_length: int = 77, image_key: str = "filepath", caption_key: str = "caption"):
        super().__init__(transform, image_size, context_length)
        self.path = path = Path(csv_path)
        if not path.is_file():
            raise DataError(path, f"no such file; expected a CSV with a '{image_key},{caption_key}' header")
        self.files: list[Path] = []
        self.captions, self.keys = [], []
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or image_key not in header or caption_key not in header:
                raise DataError(path, f"header {header} lacks '{image_key}' and/or '{caption_key}'", line=1)
            col_img, col_cap = header.index(image_key), header.index(caption_key)
            for row in reader:
                line = reader.line_num
                if not row:
                    continue  # blank lines (e.g. a trailing newline) carry nothing
                if len(row) != len(header):
                    raise DataError(path, f"{len(row)} fields, the header has {len(header)} (quote captions "
                                          "that contain commas)", line=line)
                file, caption = row[col_img].strip(), row[col_cap].strip()
                if not file:
                    raise DataError(path, f"empty '{image_key}'", line=line)
                if not caption:
                    raise DataError(path, f"empty '{caption_key}' for {file}", line=line)
                full = Path(file) if Path(file).is_absolute() else path.parent / file
                if not full.is_file():
                    raise DataError(path, f"image {file} not found (looked at {full})", line=line)
                self.files.append(full)
                self.captions.append(caption)
                self.keys.append(full.stem)
        self.tokens = _tokenize(self.captions, context_length)

    def load_image(self, i: int) -> Image.Image:
        return _decode(self.files[i].read_bytes(), self.files[i], self.files[i].name)


@dataclass
class _Member:
    name: str
    offset: int  # byte offset of the member's data inside the shard
    size: int


def _split_key(name: str) -> tuple[str, str]:
    """webdataset's rule: ``dir/000123.seg.png`` -> key ``dir/000123``, extension ``seg.png``."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower() if dot else ""


class TarShardImageText(_ImageTextBase):
    """Pairs from webdataset-style tar shards: ``{key}.jpg|png`` + ``{key}.txt`` per sample."""

    def __init__(self, shards: Sequence[str | Path], transform: Callable | None = None, image_size: int = 224,
                 context_length: int = 77):
        super().__init__(transform, image_size, context_length)
        self.shards = [Path(s) for s in shards]
        if not self.shards:
            raise DataError("<shards>", "no tar shards given; expected e.g. shards/train-000000.tar")
        self.index: list[tuple[int, _Member]] = []  # (shard number, image member) per sample
        self.captions, self.keys = [], []
        for s, shard in enumerate(self.shards):
            for key, image, text in self._index_shard(shard):
                self.index.append((s, image))
                self.captions.append(text)
                self.keys.append(key)
        self.tokens = _tokenize(self.captions, context_length)

    @staticmethod
    def _index_shard(shard: Path) -> list[tuple[str, _Member, str]]:
        if not shard.is_file():
            raise DataError(shard, "tar shard not found")
        groups: dict[str, dict[str, tarfile.TarInfo]] = {}
        try:
            with tarfile.open(shard, "r:") as tar:  # plain tar only: compressed shards cannot be seeked
                for info in tar:
                    if not info.isfile():
                        continue
                    key, ext = _split_key(info.name)
                    groups.setdefault(key, {})[ext] = info
                texts = {}
                for key, members in groups.items():
                    if "txt" in members:
                        raw = tar.extractfile(members["txt"]).read()
                        try:
                            texts[key] = raw.decode("utf-8").strip()
                        except UnicodeDecodeError:
                            raise DataError(shard, f"member {members['txt'].name}: caption is not UTF-8") from None
        except tarfile.TarError as e:
            raise DataError(shard, f"not a readable (uncompressed) tar shard ({e})") from None
        out = []
        for key, members in groups.items():
            images = [members[e] for e in IMAGE_EXTENSIONS if e in members]
            if not images:
                member = members.get("txt") or next(iter(members.values()))
                raise DataError(shard, f"member {member.name}: key {key!r} has no image "
                                       f"({'/'.join(IMAGE_EXTENSIONS)}) beside it")
            if "txt" not in members:
                raise DataError(shard, f"member {images[0].name}: key {key!r} has no caption ({key}.txt) beside it")
            if not texts[key]:
                raise DataError(shard, f"member {members['txt'].name}: empty caption")
            out.append((key, _Member(images[0].name, images[0].offset_data, images[0].size), texts[key]))
        return out

    def load_image(self, i: int) -> Image.Image:
        s, member = self.index[i]
        with self.shards[s].open("rb") as f:
            f.seek(member.offset)
            data = f.read(member.size)
        return _decode(data, self.shards[s], member.name)


def read_labels(path: str | Path) -> tuple[list[str], dict[str, int]]:
    """Zero-shot labels: ``classes.txt`` (one class name a line) beside ``path``, a ``key,label`` CSV.

    Returns (class names, {key: class index}); a label that is not a class name is an error.
    """
    path = Path(path)
    classes_path = path.parent / "classes.txt"
    if not classes_path.is_file():
        raise DataError(classes_path, "missing; expected one class name per line")
    classes = [c.strip() for c in classes_path.read_text(encoding="utf-8").splitlines() if c.strip()]
    index = {c: i for i, c in enumerate(classes)}
    if not path.is_file():
        raise DataError(path, "missing; expected a CSV with a 'key,label' header")
    labels: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        if next(reader, None) != ["key", "label"]:
            raise DataError(path, "expected the header 'key,label'", line=1)
        for row in reader:
            if not row:
                continue
            if len(row) != 2 or row[1] not in index:
                raise DataError(path, f"expected 'key,label' with label one of {classes_path.name}, got {row}",
                                line=reader.line_num)
            labels[row[0]] = index[row[1]]
    return classes, labels


class ImageTextDataModule(L.LightningDataModule):
    """Train / val image-caption pairs from ``root`` in either layout, plus optional zero-shot labels.

    ``format="csv"`` reads ``root/{split}.csv``; ``format="tar"`` reads ``root/shards/{split}-*.tar``.
    Loaders come from ``engine.data.make_loader`` (exact resume).
    """

    def __init__(self, root: str | Path, batch_size: int, *, format: str = "csv", image_size: int = 224,
                 context_length: int = 77, train_split: str = "train", val_split: str = "val",
                 labels: str = "val_labels.csv", train_transform: Callable | None = None,
                 eval_transform: Callable | None = None, seed: int = 0, num_workers: int = 0,
                 eval_batch_size: int = 256):
        super().__init__()
        self.root = Path(root)
        if format not in ("csv", "tar"):
            raise DataError(self.root, f"unknown image-text format {format!r}; expected 'csv' or 'tar'")

        def split(name: str, transform):
            kw = dict(transform=transform, image_size=image_size, context_length=context_length)
            if format == "csv":
                return CsvImageText(self.root / f"{name}.csv", **kw)
            shards = sorted((self.root / "shards").glob(f"{name}-*.tar"))
            if not shards:
                raise DataError(self.root / "shards", f"no {name}-*.tar shards (write some with "
                                                      "`visionzoo data synth image-captions DIR`)")
            return TarShardImageText(shards, **kw)

        self.train = split(train_split, train_transform)
        self.val = split(val_split, eval_transform)
        self.classes: list[str] = []
        self.labels: dict[str, int] = {}
        self.labels_path = self.root / labels if labels else None
        if self.labels_path is not None:
            self.classes, self.labels = read_labels(self.labels_path)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers

    def train_dataloader(self):
        return make_loader(self.train, self.batch_size, shuffle=True, seed=self.seed, drop_last=True,
                           num_workers=self.num_workers)

    def eval_loader(self):
        return make_loader(self.val, self.eval_batch_size, shuffle=False, num_workers=self.num_workers)

    def val_dataloader(self):
        return self.eval_loader()
