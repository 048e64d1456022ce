"""Lightning CheckpointIO that writes atomically and loads without unpickling arbitrary objects."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from visionzoo.core.errors import CheckpointError
from visionzoo.core.io import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save via temp file + fsync + rename; load with ``weights_only=True`` and clear errors."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options=None) -> None:
        with atomic_write(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: str | os.PathLike, map_location=None, weights_only: bool | None = None) -> dict:
        return load_training_checkpoint(path, map_location=map_location)


def load_training_checkpoint(path: str | os.PathLike, map_location=None) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, pickle.UnpicklingError) and "weights_only" in str(e):
            raise CheckpointError(f"{path}: refuses to load: the checkpoint holds pickled objects beyond tensors "
                                  f"and plain containers ({first})") from None
        raise CheckpointError(f"{path}: not a complete checkpoint (truncated or corrupt): {first}") from None
