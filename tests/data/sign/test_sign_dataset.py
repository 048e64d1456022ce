"""SignDataset (lazy frames + keypoints, eager vocabulary/keypoint checks) and the padding collate."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from visionzoo.core.errors import DataError
from visionzoo.data.sign import (
    PickleKeypoints, SignDataset, SignSample, Vocabulary, collate_sign_batch, read_phoenix2014t,
)
from visionzoo.data.video import FrameSampling
from visionzoo.engine.data import make_loader


def make_p14t(root: Path, lengths=(4, 6)) -> Path:
    """Two Phoenix-2014T samples whose frame t is filled with the value 10 * t (so indices are visible)."""
    ann = root / "annotations" / "manual"
    ann.mkdir(parents=True)
    rows = ["name|video|start|end|speaker|orth|translation"]
    for i, n in enumerate(lengths):
        name = f"vid-{i}"
        rows.append(f"{name}|{name}/1/*.png|-1|-1|Signer0{i}|REGEN SONNE{' WIND' * i}|es regnet .")
        folder = root / "features/fullFrame-210x260px/train" / name
        folder.mkdir(parents=True)
        for t in range(n):
            Image.fromarray(np.full((6, 8, 3), 10 * t, np.uint8)).save(folder / f"images{t + 1:04d}.png")
    (ann / "PHOENIX-2014-T.train.corpus.csv").write_text("\n".join(rows) + "\n")
    return root


def keypoint_pickle(path: Path, lengths: dict[str, int]) -> Path:
    """Keypoints whose x of frame t is t, to check they are sampled at the frames' indices."""
    data = {name: {"keypoints": np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, 133, 3)).copy()}
            for name, n in lengths.items()}
    path.write_bytes(pickle.dumps(data))
    return path


def test_items_hold_frames_glosses_and_text_ids(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path), "train")
    gv = Vocabulary.build([s.gloss for s in index])
    tv = Vocabulary.build([s.text.split() for s in index], kind="text")
    item = SignDataset(index, gloss_vocab=gv, text_vocab=tv)[1]
    assert item["frames"].shape == (6, 6, 8, 3) and item["frames"].dtype == torch.uint8
    assert item["frames"][:, 0, 0, 0].tolist() == [0, 10, 20, 30, 40, 50]
    assert gv.decode(item["gloss_ids"]) == ["REGEN", "SONNE", "WIND"]
    assert item["text_ids"].tolist() == [tv.bos_id, *tv.encode(["es", "regnet", "."]), tv.eos_id]
    assert (item["name"], item["signer"], item["label"]) == ("vid-1", "Signer01", None)


def test_frames_and_keypoints_share_the_sampled_indices(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path), "train")
    kps = PickleKeypoints(keypoint_pickle(tmp_path / "k.pkl", {"vid-0": 4, "vid-1": 6}))
    ds = SignDataset(index, keypoints=kps, sampling=FrameSampling("count", num_frames=3, random_offset=True), seed=3)
    item = ds[1]
    frame_t = (item["frames"][:, 0, 0, 0] // 10).tolist()
    assert len(frame_t) == 3
    assert item["keypoints"][:, 0, 0].tolist() == frame_t


def test_random_sampling_is_reproducible_per_item_and_epoch(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path, lengths=(4, 60)), "train")
    ds = SignDataset(index, sampling=FrameSampling("count", num_frames=4, random_offset=True, scale_range=(0.3, 1)))
    first = ds[1]["frames"]
    assert torch.equal(first, ds[1]["frames"])
    draws = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        draws.append(ds[1]["frames"][:, 0, 0, 0].tolist())
    assert len({tuple(d) for d in draws}) > 1


def test_keypoints_only_without_frames(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path), "train", media="ignore")
    kps = PickleKeypoints(keypoint_pickle(tmp_path / "k.pkl", {"vid-0": 4, "vid-1": 6}))
    item = SignDataset(index, load_frames=False, keypoints=kps)[0]
    assert "frames" not in item and item["keypoints"].shape == (4, 133, 3)


def test_keypoints_of_another_length_than_the_video_name_the_sample(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path), "train")
    kps = PickleKeypoints(keypoint_pickle(tmp_path / "k.pkl", {"vid-0": 5, "vid-1": 6}))
    with pytest.raises(DataError, match=r"corpus\.csv:2: sample 'vid-0': keypoints have 5 frames but .* has 4"):
        SignDataset(index, keypoints=kps)[0]


def test_unknown_gloss_fails_at_construction_naming_file_line_and_sample(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path), "train")
    vocab = Vocabulary.build([["REGEN", "SONNE"]])
    with pytest.raises(DataError) as err:
        SignDataset(index, gloss_vocab=vocab)
    assert "corpus.csv:3 (vid-1): gloss 'WIND' is not in the gloss vocabulary" in str(err.value)


def test_skip_bad_counts_unknown_glosses_and_bad_keypoints(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path, lengths=(4, 6, 5)), "train")
    vocab = Vocabulary.build([["REGEN", "SONNE", "WIND"]])
    index.samples[2].gloss.append("HAGEL")  # vid-2: unknown gloss; vid-1: keypoints of the wrong shape
    path = tmp_path / "k.pkl"
    path.write_bytes(pickle.dumps({"vid-0": np.zeros((4, 133, 3), np.float32),
                                   "vid-1": np.zeros((6, 17, 3), np.float32)}))
    ds = SignDataset(index, keypoints=PickleKeypoints(path), gloss_vocab=vocab, skip_bad=True)
    assert [s.name for s in ds.samples] == ["vid-0"]
    assert ds.skipped.counts == {"bad-keypoints": 1, "unknown-gloss": 1}


def test_collate_pads_videos_keypoints_and_ids_and_returns_lengths(tmp_path):
    index = read_phoenix2014t(make_p14t(tmp_path), "train")
    kps = PickleKeypoints(keypoint_pickle(tmp_path / "k.pkl", {"vid-0": 4, "vid-1": 6}))
    vocab = Vocabulary.build([s.gloss for s in index])
    ds = SignDataset(index, keypoints=kps, gloss_vocab=vocab)
    batch = next(iter(make_loader(ds, batch_size=2, shuffle=False, collate_fn=ds.collate)))
    assert batch["frames"].shape == (2, 6, 6, 8, 3) and batch["frame_lengths"].tolist() == [4, 6]
    assert batch["frames"][0, 4:].eq(0).all()
    assert batch["keypoints"].shape == (2, 6, 133, 3) and batch["keypoint_lengths"].tolist() == [4, 6]
    assert batch["gloss_lengths"].tolist() == [2, 3]
    assert batch["gloss_ids"][0, 2].item() == vocab.pad_id
    assert batch["names"] == ["vid-0", "vid-1"] and "labels" not in batch


def test_collate_edge_padding_repeats_the_last_frame_and_stacks_labels():
    items = [{"name": "a", "label": 3, "frames": torch.tensor([[1], [2]])},
             {"name": "b", "label": 0, "frames": torch.tensor([[5], [6], [7], [8]])}]
    batch = collate_sign_batch(items, frame_pad="edge")
    assert batch["frames"][0].flatten().tolist() == [1, 2, 2, 2]
    assert batch["labels"].tolist() == [3, 0]


def test_collate_refuses_frames_of_different_sizes_naming_the_samples():
    items = [{"name": "a", "frames": torch.zeros(2, 4, 4, 3)}, {"name": "b", "frames": torch.zeros(2, 4, 5, 3)}]
    with pytest.raises(DataError, match=r"^a, b: frames: cannot batch sequences of shapes"):
        collate_sign_batch(items)


def test_video_sample_reads_only_its_frame_window(tmp_path):
    pytest.importorskip("av")
    from visionzoo.data.video import write_video

    frames = np.repeat(np.arange(0, 200, 20, dtype=np.uint8)[:, None, None, None], 16, 1).repeat(16, 2).repeat(3, 3)
    path = write_video(tmp_path / "v.mp4", frames, codec="mpeg4")
    s = SignSample(name="v", dataset="wlasl", split="train", gloss=["book"], label=0, media=path,
                   media_kind="video", frame_range=(3, 7), origin="WLASL_v0.3.json")
    item = SignDataset([s])[0]
    assert item["frames"].shape[0] == 4
    got = item["frames"].float().mean(dim=(1, 2, 3))
    torch.testing.assert_close(got, torch.tensor([60.0, 80, 100, 120]), atol=3, rtol=0)
    assert item["label"] == 0


def test_zero_frame_window_names_the_sample(tmp_path):
    pytest.importorskip("av")
    from visionzoo.data.video import write_video

    path = write_video(tmp_path / "v.mp4", np.zeros((4, 16, 16, 3), np.uint8), codec="mpeg4")
    s = SignSample(name="v", dataset="wlasl", split="train", media=path, media_kind="video", frame_range=(10, None),
                   origin="WLASL_v0.3.json")
    with pytest.raises(DataError, match=r"WLASL_v0\.3\.json: sample 'v': frame range \[10, 4\) .* is empty"):
        SignDataset([s])[0]
