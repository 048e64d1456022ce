import os

import pytest
import torch

from visionzoo.core.errors import CheckpointError
from visionzoo.core.io import atomic_write
from visionzoo.engine.checkpoint_io import AtomicCheckpointIO


def test_truncated_checkpoint_gives_a_one_line_error(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "c.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.randn(100, 100)}, "epoch": 1}, path)
    assert io.load_checkpoint(path)["epoch"] == 1
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(CheckpointError, match=r"c\.ckpt: not a complete checkpoint") as err:
        io.load_checkpoint(path)
    assert "\n" not in str(err.value)


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"obj": __import__("collections").OrderedDict.__class__, "f": __import__("fractions").Fraction(1, 3)}, path)  # arbitrary objects: weights_only loading forbids them
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        AtomicCheckpointIO().load_checkpoint(path)


def test_crash_during_save_keeps_the_previous_file_intact(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, path)

    def crash(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_atomic_write_never_exposes_a_partial_file(tmp_path):
    target = tmp_path / "f.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            assert not target.exists()
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
