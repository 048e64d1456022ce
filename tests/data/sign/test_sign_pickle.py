"""The restricted unpickler and the keypoint files that go through it."""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from visionzoo.core.errors import DataError
from visionzoo.data.keypoints import Keypoints, save_keypoint_file
from visionzoo.data.sign import NpzKeypoints, PickleKeypoints, SignSample, load_pickle


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what a malicious pickle does: name a callable and its arguments
        return (os.mkdir, (self.marker,))


@dataclass
class _Plain:
    x: int = 1


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_accepts_numpy_arrays_in_builtin_containers(tmp_path, protocol):
    obj = {"v1": {"keypoints": np.arange(12, dtype=np.float32).reshape(1, 4, 3)}, "ids": [np.int64(3), (1, 2.5)],
           "names": {"a", "b"}}
    path = tmp_path / "k.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    got = load_pickle(path)
    np.testing.assert_array_equal(got["v1"]["keypoints"], obj["v1"]["keypoints"])
    assert got["v1"]["keypoints"].dtype == np.float32
    assert got["ids"] == [3, (1, 2.5)] and got["names"] == {"a", "b"}


def test_reads_gzip_compressed_pickles(tmp_path):
    path = tmp_path / "phoenix.train"
    path.write_bytes(gzip.compress(pickle.dumps([{"name": "x", "gloss": "A B"}])))
    assert load_pickle(path) == [{"name": "x", "gloss": "A B"}]


def test_refuses_a_pickle_that_calls_a_function_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v": _RunsCode(str(marker))}))
    with pytest.raises(DataError) as err:
        load_pickle(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: pickle refers to posix.mkdir; refusing") and "\n" not in msg
    assert not marker.exists()


def test_refuses_a_pickled_class_instance(tmp_path):
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps(_Plain()))
    with pytest.raises(DataError, match=r"obj\.pkl: pickle refers to .*_Plain; refusing"):
        load_pickle(path)


def test_truncated_pickle_is_a_data_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    with pytest.raises(DataError, match=r"cut\.pkl: not a readable pickle"):
        load_pickle(path)


def _sample(name, split="train"):
    return SignSample(name=name, dataset="phoenix2014t", split=split, origin="train.csv", origin_line=2)


@pytest.mark.parametrize("wrapped", [True, False], ids=["twostream", "nla-slr"])
def test_pickle_keypoints_read_both_official_layouts(tmp_path, wrapped):
    arr = np.random.default_rng(0).random((5, 133, 3)).astype(np.float32)
    path = tmp_path / "kps.pkl"
    path.write_bytes(pickle.dumps({"train/v1": {"keypoints": arr} if wrapped else arr}))
    got = PickleKeypoints(path).load(_sample("v1"))  # found under its split-prefixed key
    assert got.dtype == torch.float32 and got.shape == (5, 133, 3)
    torch.testing.assert_close(got, torch.from_numpy(arr))


def test_pickle_keypoints_wrong_shape_names_file_and_sample(tmp_path):
    path = tmp_path / "kps.pkl"
    path.write_bytes(pickle.dumps({"v1": np.zeros((5, 17, 3), np.float32)}))
    with pytest.raises(DataError) as err:
        PickleKeypoints(path).load(_sample("v1"))
    assert str(err.value) == f"{path}: keypoints of 'v1': expected shape (T>=1, 133, 3), got (5, 17, 3)"


def test_pickle_keypoints_missing_sample_names_it(tmp_path):
    path = tmp_path / "kps.pkl"
    path.write_bytes(pickle.dumps({"v1": np.zeros((5, 133, 3), np.float32)}))
    err = PickleKeypoints(path).check(_sample("v2"))
    assert isinstance(err, DataError) and "no keypoints for sample 'v2' (from train.csv:2 (v2))" in str(err)


def test_npz_keypoints_read_our_extractor_files(tmp_path):
    points = np.random.default_rng(1).random((4, 543, 3)).astype(np.float32)
    save_keypoint_file(tmp_path / "train" / "v1.npz", Keypoints(points, layout="holistic", size=(260, 210)))
    source = NpzKeypoints(tmp_path)
    coco = source.load(_sample("v1"))
    assert coco.shape == (4, 133, 3)
    hol = NpzKeypoints(tmp_path, layout="holistic").load(_sample("v1"))
    torch.testing.assert_close(hol, torch.from_numpy(points))
    assert "no keypoint file for sample 'v9'" in str(source.check(_sample("v9")))
