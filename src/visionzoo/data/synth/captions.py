"""``image-captions``: compositional image-caption pairs in both layouts CLIP training reads.

Each image is a scikit-learn handwritten digit, coloured and pasted on the left or right half of a
dimmed scikit-image photo crop; its caption names the three factors, e.g. "a photo of a red seven on
the left." (a few sentence shapes, so the text tower cannot key on one template). Val uses digit glyphs
that train never saw. The zero-shot labels name one factor (``zero_shot``): the colour by default (6
classes), or the digit (10 classes; its glyph is much harder to learn at CPU scale, see the CLIP README).

Written layout::

    out/train.csv, out/val.csv            filepath,caption (paths relative to out/)
    out/images/{train,val}/000000.png
    out/shards/{train,val}-000000.tar     000000.png + 000000.txt per sample (webdataset style)
    out/classes.txt                       the zero-shot classes (colour names, or zero ... nine)
    out/val_labels.csv                    key,label (label = the image's class name)
"""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from visionzoo.core.errors import ConfigError
from visionzoo.data.synth import register_synth

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COLOURS = {"red": (230, 40, 40), "green": (40, 210, 60), "blue": (50, 90, 255), "yellow": (240, 220, 40),
           "magenta": (220, 50, 220), "cyan": (40, 220, 220)}
POSITIONS = ("left", "right")
CAPTION_SHAPES = ("a photo of a {c} {d} on the {p}.", "a {c} {d} on the {p}", "a {c} {d} on the {p} side.",
                  "the digit {d} in {c}, on the {p}.")


def _backgrounds(size: int, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    from visionzoo.data.synth.images import PHOTOS, _load_photo

    photos = [p for p in (_load_photo(name) for name in PHOTOS[:8]) if p is not None]
    out = []
    for _ in range(n):
        img = photos[int(rng.integers(len(photos)))]
        h, w = img.shape[:2]
        crop = int(rng.integers(size, min(h, w) // 2 + 1))
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        patch = Image.fromarray(img[y : y + crop, x : x + crop]).resize((size, size), Image.BILINEAR)
        out.append((np.asarray(patch, dtype=np.float32) * 0.35))  # dimmed, so the coloured digit stands out
    return out


def _compose(background: np.ndarray, glyph: np.ndarray, colour, position: str, rng) -> np.ndarray:
    """Paste ``glyph`` (g, g) in [0, 1] as an alpha mask of ``colour`` on the left or right half."""
    size, g = background.shape[0], glyph.shape[0]
    half = size // 2
    x0 = int(rng.integers(0, max(1, half - g + 1))) + (half if position == "right" else 0)
    y0 = int(rng.integers(0, size - g + 1))
    out = background.copy()
    alpha = glyph[..., None]
    region = out[y0 : y0 + g, x0 : x0 + g]
    out[y0 : y0 + g, x0 : x0 + g] = (1 - alpha) * region + alpha * np.asarray(colour, dtype=np.float32)
    return out.clip(0, 255).astype(np.uint8)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # deterministic shards
    tar.addfile(info, io.BytesIO(data))


@register_synth("image-captions", "coloured digits on photo crops with compositional captions (CSV + tar shards)")
def write_image_captions(out: str | Path, size: int = 32, n_train: int = 2000, n_val: int = 300,
                         shard_size: int = 1000, val_glyph_fraction: float = 0.2, zero_shot: str = "colour", seed: int = 0) -> dict:
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    out = Path(out)
    digits = load_digits()
    g = size // 2 - 2  # glyph side: fits a half with a little room to move
    glyphs = np.stack([np.asarray(Image.fromarray((im / 16.0 * 255).astype(np.uint8)).resize((g, g), Image.BILINEAR))
                       for im in digits.images]).astype(np.float32) / 255.0
    order = rng.permutation(len(glyphs))
    n_val_glyphs = int(len(glyphs) * val_glyph_fraction)
    glyph_pool = {"val": order[:n_val_glyphs], "train": order[n_val_glyphs:]}
    colour_names = list(COLOURS)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    if zero_shot not in ("colour", "digit"):
        raise ConfigError(f"image-captions: zero_shot must be 'colour' or 'digit', got {zero_shot!r}")
    classes = colour_names if zero_shot == "colour" else list(DIGIT_NAMES)
    (out / "classes.txt").write_text("\n".join(classes) + "\n")
    for split, n in (("train", n_train), ("val", n_val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        backgrounds = _backgrounds(size, rng, n)
        rows, labels = [], []
        tar = None
        for i in range(n):
            if i % shard_size == 0:
                if tar is not None:
                    tar.close()
                tar = tarfile.open(out / "shards" / f"{split}-{i // shard_size:06d}.tar", "w", format=tarfile.USTAR_FORMAT)
            gi = int(rng.choice(glyph_pool[split]))
            digit = DIGIT_NAMES[int(digits.target[gi])]
            colour = colour_names[int(rng.integers(len(colour_names)))]
            position = POSITIONS[int(rng.integers(2))]
            caption = CAPTION_SHAPES[int(rng.integers(len(CAPTION_SHAPES)))].format(c=colour, d=digit, p=position)
            png = _png(_compose(backgrounds[i], glyphs[gi], COLOURS[colour], position, rng))
            key = f"{i:06d}"
            (out / "images" / split / f"{key}.png").write_bytes(png)
            _add(tar, f"{key}.png", png)
            _add(tar, f"{key}.txt", caption.encode("utf-8"))
            rows.append((f"images/{split}/{key}.png", caption))
            labels.append((key, colour if zero_shot == "colour" else digit))
        tar.close()
        with (out / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["filepath", "caption"])
            w.writerows(rows)
        if split == "val":
            with (out / "val_labels.csv").open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["key", "label"])
                w.writerows(labels)
    return {"root": str(out), "train": n_train, "val": n_val, "classes": len(classes), "size": size}
