"""A Lightning DataModule over ImageFolder splits: augmented train loader, and for validation the
un-augmented train set (the k-NN memory bank) followed by the val set.

Two modes: per-image transforms on PIL images (large images, e.g. ImageNet), or ``in_memory_size``,
which decodes every image once into a uint8 tensor and augments whole batches in ``collate``
(small images, where per-image work would dominate the step).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L

from visionzoo.core.errors import DataError
from visionzoo.data.imagefolder import ImageFolder, InMemoryImageFolder
from visionzoo.engine.data import make_loader


class ImageFolderDataModule(L.LightningDataModule):
    def __init__(self, root: str | Path, batch_size: int, *, train_transform=None, eval_transform=None,
                 in_memory_size: int | None = None, train_collate=None, eval_collate=None, seed: int = 0,
                 num_workers: int = 0, train_split: str = "train", val_split: str = "val", eval_batch_size: int = 256):
        super().__init__()
        self.root = Path(root)
        for split in (train_split, val_split):
            if not (self.root / split).is_dir():
                raise DataError(self.root / split, f"split folder missing; expected {self.root}/{{{train_split},{val_split}}}"
                                                   "/<class>/<images> (write one with `visionzoo data synth digits DIR`)")
        if in_memory_size:
            self.train = InMemoryImageFolder(self.root / train_split, in_memory_size)
            self.bank = self.train
            self.val = InMemoryImageFolder(self.root / val_split, in_memory_size, classes=self.train.classes)
        else:
            self.train = ImageFolder(self.root / train_split, transform=train_transform)
            self.bank = ImageFolder(self.root / train_split, transform=eval_transform, classes=self.train.classes)
            self.val = ImageFolder(self.root / val_split, transform=eval_transform, classes=self.train.classes)
        self.train_collate, self.eval_collate = train_collate, eval_collate
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    def train_dataloader(self):
        return make_loader(self.train, self.batch_size, shuffle=True, seed=self.seed, drop_last=True,
                           num_workers=self.num_workers, collate_fn=self.train_collate)

    def val_dataloader(self):
        return [make_loader(ds, self.eval_batch_size, shuffle=False, num_workers=self.num_workers,
                            collate_fn=self.eval_collate) for ds in (self.bank, self.val)]
