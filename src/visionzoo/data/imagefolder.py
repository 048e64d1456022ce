"""The ImageNet on-disk layout: ``root/<class_name>/<image file>``, one folder per class.

Readers validate eagerly what is cheap (the folder exists, classes hold images) and lazily what is
not (decoding): a file that does not decode raises a one-line ``DataError`` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from visionzoo.core.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def load_image(path: str | Path, mode: str = "RGB") -> Image.Image:
    """Decode an image fully (so truncation is caught here, not later in a transform)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "image file not found")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"cannot decode image ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                              f"expected a readable {'/'.join(x[1:] for x in IMAGE_EXTENSIONS[:4])} file") from None


class ImageFolder(Dataset):
    """``root/<class>/<image>``; classes sorted by name; returns ``(PIL image or transformed, label)``."""

    def __init__(self, root: str | Path, transform: Callable | None = None, classes: list[str] | None = None,
                 mode: str = "RGB"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "image folder not found; expected root/<class_name>/<image files>")
        found = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not found:
            raise DataError(self.root, "no class folders; expected root/<class_name>/<image files>")
        if classes is not None:
            unknown = sorted(set(found) - set(classes))
            if unknown:
                raise DataError(self.root / unknown[0], f"class folder not in the given class list {classes[:5]}...")
        self.classes = list(classes) if classes is not None else found
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = []
        for name in found:
            files = sorted(p for p in (self.root / name).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DataError(self.root / name, f"class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            self.samples += [(f, self.class_to_idx[name]) for f in files]
        self.targets = np.array([t for _, t in self.samples], dtype=np.int64)
        self.transform = transform
        self.mode = mode

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        img = load_image(path, self.mode)
        return (self.transform(img) if self.transform else img), target

    def verify(self) -> int:
        """Decode every image once; raises on the first unreadable file. Returns the count checked."""
        for path, _ in self.samples:
            load_image(path, self.mode)
        return len(self.samples)


class InMemoryImageFolder(Dataset):
    """An :class:`ImageFolder` decoded once into a uint8 tensor (N, C, size, size): for small datasets
    where decoding and per-image transforms would dominate the step time."""

    def __init__(self, root: str | Path, size: int, classes: list[str] | None = None, mode: str = "RGB"):
        folder = ImageFolder(root, classes=classes, mode=mode)
        self.root, self.classes, self.targets = folder.root, folder.classes, folder.targets
        arrays = []
        for path, _ in folder.samples:
            img = load_image(path, mode)
            if img.size != (size, size):
                img = img.resize((size, size), Image.BICUBIC)
            arr = np.asarray(img, dtype=np.uint8)
            arrays.append(arr if arr.ndim == 3 else arr[..., None])
        import torch

        self.images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        self._labels = torch.from_numpy(self.targets)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], int(self._labels[index])
