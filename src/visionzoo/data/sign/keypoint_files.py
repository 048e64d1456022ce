"""Per-sample keypoints from the two file formats, as ``(T, K, 3)`` float32 tensors (x, y, score).

- :class:`PickleKeypoints`: the official SLRT pickles, one dict for a whole dataset, keyed by video name.
  TwoStream wraps each array (``{name: {'keypoints': (T, 133, 3)}}``), NLA-SLR does not
  (``{name: (T, 133, 3)}``); both are accepted. Read with the restricted unpickler.
- :class:`NpzKeypoints`: our keypoint extractor's ``.npz`` files (``visionzoo.data.keypoints``), one per
  video, at ``<root>/<split>/<name>.npz`` or ``<root>/<name>.npz``; COCO-WholeBody-133 by default.

A missing entry or an array of the wrong shape is a DataError naming the file and the sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.data.keypoints import NUM_COCO_WHOLEBODY, NUM_HOLISTIC, load_keypoint_file
from visionzoo.data.sign.safe_pickle import load_pickle
from visionzoo.data.sign.sample import SignSample


class KeypointSource(Protocol):
    num_points: int

    def load(self, sample: SignSample) -> torch.Tensor:  # (T, K, 3) float32
        ...

    def check(self, sample: SignSample) -> DataError | None:
        ...


def validate_keypoints(array, path: str | Path, name: str, num_points: int) -> torch.Tensor:
    """``array`` as a (T, num_points, 3) float32 tensor, or a DataError naming ``path`` and ``name``."""
    arr = np.asarray(array) if isinstance(array, (np.ndarray, list, tuple)) else None
    if arr is None or arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                                  or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(path, f"keypoints of {name!r}: expected a numeric (T, {num_points}, 3) array, "
                              f"got {type(array).__name__}")
    if arr.ndim != 3 or arr.shape[1:] != (num_points, 3) or arr.shape[0] < 1:
        raise DataError(path, f"keypoints of {name!r}: expected shape (T>=1, {num_points}, 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(path, f"keypoints of {name!r}: contain NaN or inf; expected finite x, y, score")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


class PickleKeypoints:
    """An official keypoint pickle, loaded once; ``load(sample)`` looks up ``name`` then ``split/name``
    (TwoStream's split files prefix names with the split)."""

    def __init__(self, path: str | Path, num_points: int = NUM_COCO_WHOLEBODY):
        self.path = Path(path)
        self.num_points = num_points
        data = load_pickle(self.path)
        if not isinstance(data, dict):
            raise DataError(self.path, f"expected a dict video name -> (T, {num_points}, 3) array, "
                                       f"got {type(data).__name__}")
        self.data = data

    def _entry(self, sample: SignSample):
        for key in (sample.name, f"{sample.split}/{sample.name}"):
            if key in self.data:
                value = self.data[key]
                if isinstance(value, dict):  # TwoStream layout
                    if "keypoints" not in value:
                        raise DataError(self.path, f"entry {key!r}: a dict without 'keypoints'; expected "
                                                   f"{{'keypoints': (T, {self.num_points}, 3)}} or the array")
                    value = value["keypoints"]
                return key, value
        raise DataError(self.path, f"no keypoints for sample {sample.name!r} (from {sample.where}); expected a "
                                   f"key {sample.name!r} or {sample.split + '/' + sample.name!r}")

    def load(self, sample: SignSample) -> torch.Tensor:
        key, value = self._entry(sample)
        return validate_keypoints(value, self.path, key, self.num_points)

    def check(self, sample: SignSample) -> DataError | None:
        try:
            self.load(sample)
        except DataError as e:
            return e
        return None


class NpzKeypoints:
    """A folder of our ``.npz`` keypoint files; ``layout`` picks the COCO-WholeBody-133 or Holistic-543 array."""

    def __init__(self, root: str | Path, layout: Literal["coco133", "holistic"] = "coco133"):
        if layout not in ("coco133", "holistic"):
            raise ConfigError(f"NpzKeypoints layout: expected 'coco133' or 'holistic', got {layout!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "keypoint folder not found; expected a folder of <name>.npz files")
        self.layout = layout
        self.num_points = NUM_COCO_WHOLEBODY if layout == "coco133" else NUM_HOLISTIC

    def path_of(self, sample: SignSample) -> Path:
        cands = (self.root / sample.split / f"{sample.name}.npz", self.root / f"{sample.name}.npz")
        for p in cands:
            if p.is_file():
                return p
        raise DataError(cands[-1], f"no keypoint file for sample {sample.name!r} (from {sample.where}); "
                                   f"expected {cands[0].relative_to(self.root)} or {cands[1].relative_to(self.root)}")

    def load(self, sample: SignSample) -> torch.Tensor:
        path = self.path_of(sample)
        kf = load_keypoint_file(path)  # validates shapes and values
        points = kf.coco133.points if self.layout == "coco133" else kf.holistic.points
        return validate_keypoints(points, path, sample.name, self.num_points)

    def check(self, sample: SignSample) -> DataError | None:
        # Existence only: loading every file up front would decode the whole dataset's keypoints.
        try:
            self.path_of(sample)
        except DataError as e:
            return e
        return None
