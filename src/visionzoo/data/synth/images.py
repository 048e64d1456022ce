"""ImageFolder datasets built from images bundled in scikit-learn and scikit-image wheels (offline).

- ``digits``: scikit-learn's 1,797 handwritten digits (8x8, 10 classes), upsampled, split train/val.
- ``photo-crops``: random crops of scikit-image's sample photographs, labelled by source photo
  (an unlimited unlabelled pool plus an N-way "which photo" probe).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from visionzoo.data.synth import register_synth


def _save(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@register_synth("digits", "scikit-learn digits as ImageFolder train/val (10 classes, upsampled)")
def write_digits(out: str | Path, size: int = 32, val_fraction: float = 0.2, seed: int = 0) -> dict:
    """Write ``out/{train,val}/<digit>/<index>.png``; the split is stratified and seeded."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0 * 255).clip(0, 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    out = Path(out)
    counts = {"train": 0, "val": 0}
    for label in range(10):
        idx = np.flatnonzero(digits.target == label)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        for split, part in (("val", idx[:n_val]), ("train", idx[n_val:])):
            for i in part:
                img = Image.fromarray(images[i]).resize((size, size), Image.BICUBIC)
                _save(np.asarray(img), out / split / str(label) / f"{i:04d}.png")
                counts[split] += 1
    return {"root": str(out), **counts, "classes": 10, "size": size}


PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "coins", "rocket", "horse", "moon", "page", "text",
          "brick", "grass", "gravel", "retina", "hubble_deep_field", "immunohistochemistry", "clock", "logo")


def _load_photo(name: str) -> np.ndarray | None:
    from skimage import data as skdata

    fn = getattr(skdata, name, None)
    if fn is None:
        return None
    img = np.asarray(fn())
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.dtype != np.uint8:
        img = (255 * (img - img.min()) / max(1e-8, float(img.max() - img.min()))).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


@register_synth("photo-crops", "random crops of scikit-image sample photos, labelled by source photo")
def write_photo_crops(out: str | Path, size: int = 32, per_photo: int = 60, val_fraction: float = 0.25,
                      seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = Path(out)
    counts = {"train": 0, "val": 0}
    used = []
    for name in PHOTOS:
        img = _load_photo(name)
        if img is None or min(img.shape[:2]) < 2 * size:
            continue
        used.append(name)
        h, w = img.shape[:2]
        n_val = int(round(per_photo * val_fraction))
        for k in range(per_photo):
            crop = int(rng.integers(size, min(h, w) // 2 + 1))
            y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            patch = Image.fromarray(img[y : y + crop, x : x + crop]).resize((size, size), Image.BILINEAR)
            split = "val" if k < n_val else "train"
            _save(np.asarray(patch), out / split / name / f"{k:04d}.png")
            counts[split] += 1
    return {"root": str(out), **counts, "classes": len(used), "size": size}
