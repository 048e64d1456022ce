"""NLA-SLR's clip making (temporal windows, one crop for RGB and heatmaps), video mixup and gloss embeddings."""

import pickle

import numpy as np
import pytest
import torch

from visionzoo.core.errors import DataError
from visionzoo.methods.sign.nla_slr.data import (ClipGeometry, DataConfig, load_word_embeddings, make_clips,
                                                 resize_clip, video_mixup, window_indices)

GEO = ClipGeometry(frames_high=16, frames_low=8, rgb_size=64, heatmap_size=32, raw_size=64, heatmap_sigma=2.0)


def test_window_indices_of_long_clips_are_consecutive_and_centred_at_test():
    assert window_indices(30, 16, "central").tolist() == list(range(7, 23))
    assert window_indices(30, 16, "start").tolist() == list(range(0, 16))
    assert window_indices(30, 16, "end").tolist() == list(range(14, 30))
    g = torch.Generator().manual_seed(0)
    starts = {int(window_indices(30, 16, "random", g)[0]) for _ in range(50)}
    assert len(starts) > 5 and min(starts) >= 0 and max(starts) <= 14
    idx = window_indices(30, 16, "random", g)
    assert (idx.diff() == 1).all()


def test_short_clips_are_padded_by_repeating_edge_frames():
    assert window_indices(4, 8, "central").tolist() == [0, 0, 0, 1, 2, 3, 3, 3]
    assert window_indices(4, 8, "start").tolist() == [0, 0, 0, 0, 0, 1, 2, 3]  # padding at the start
    assert window_indices(4, 8, "end").tolist() == [0, 1, 2, 3, 3, 3, 3, 3]  # padding at the end
    g = torch.Generator().manual_seed(1)
    lefts = {int((window_indices(4, 8, "random", g) == 0).sum()) for _ in range(60)}
    assert lefts == {1, 2, 3, 4, 5}  # the 4 padding frames are split randomly between the two ends


def _batch_with_one_bright_point(b=2, t=20):
    """RGB frames with a white dot exactly where keypoint 0 is; every other keypoint undetected."""
    frames = torch.zeros(b, t, 64, 64, 3, dtype=torch.uint8)
    kps = torch.zeros(b, t, 63, 3)
    for i, (x, y) in enumerate([(20, 40), (45, 15)][:b]):
        frames[i, :, y - 1:y + 2, x - 1:x + 2] = 255
        kps[i, :, 0] = torch.tensor([x, y, 1.0])
    lengths = torch.tensor([t] * b)
    return {"frames": frames, "frame_lengths": lengths, "keypoints": kps, "keypoint_lengths": lengths}


def test_train_clips_have_the_four_shapes_and_rgb_in_minus_one_one():
    clips = make_clips(_batch_with_one_bright_point(), GEO, DataConfig(), "train", torch.Generator().manual_seed(0))
    assert clips["rgb_high"].shape == (2, 3, 16, 64, 64) and clips["rgb_low"].shape == (2, 3, 8, 64, 64)
    assert clips["heatmaps_high"].shape == (2, 63, 16, 32, 32) and clips["heatmaps_low"].shape == (2, 63, 8, 32, 32)
    assert clips["rgb_high"].min() >= -1 and clips["rgb_high"].max() <= 1
    assert clips["heatmaps_high"][:, 1:].eq(-1).all()  # undetected points: empty maps, normalised to -1


def test_one_crop_box_is_shared_by_rgb_and_heatmaps():
    cfg = DataConfig(color_jitter_p=0.0, crop_scale=(0.3, 0.5))
    for seed in range(4):
        clips = make_clips(_batch_with_one_bright_point(), GEO, cfg, "train", torch.Generator().manual_seed(seed))
        for i in range(2):
            rgb = clips["rgb_high"][i, :, 0].mean(0)  # (64, 64)
            hm = clips["heatmaps_high"][i, 0, 0]  # (32, 32)
            if hm.max() < 0:  # the dot was cropped out: then the RGB must not show it either
                assert rgb.max() < 0.5
                continue
            ry, rx = divmod(int(rgb.argmax()), 64)
            hy, hx = divmod(int(hm.argmax()), 32)
            assert abs(2 * hx + 0.5 - rx) <= 3 and abs(2 * hy + 0.5 - ry) <= 3, (seed, i, (rx, ry), (hx, hy))


def test_low_rate_clip_is_a_sub_window_of_the_high_rate_clip_at_test():
    batch = _batch_with_one_bright_point()
    batch["keypoints"][0, :, 0, 0] = torch.arange(20).float() + 10  # the point moves: frames differ
    clips = make_clips(batch, GEO, DataConfig(), "central")
    assert torch.equal(clips["heatmaps_low"][0], clips["heatmaps_high"][0, :, 4:12])  # start (16 - 8) / 2


def test_video_mixup_mixes_all_inputs_with_one_lambda_and_permutation():
    b = 6
    value = torch.arange(b).float()
    clips = {k: value.view(b, 1, 1).expand(b, 2, 3).clone() for k in ("rgb_high", "rgb_low", "heatmaps_high")}
    clips["heatmaps_low"] = value.view(b, 1).expand(b, 4).clone()
    labels = torch.arange(b)
    mixed, partner, lam = video_mixup(clips, labels, 1.0, 0.8, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert 0 < lam < 1 and not torch.equal(partner, labels)
    expected = lam * value + (1 - lam) * partner.float()
    for k, v in mixed.items():
        assert torch.allclose(v.reshape(b, -1)[:, 0], expected), k
    same, _, lam1 = video_mixup(clips, labels, 0.0, 0.8, np.random.default_rng(0), torch.Generator())
    assert lam1 == 1.0 and same is clips


def test_resize_clip_keeps_the_63_points_and_scales_them_to_the_raw_frame():
    kps = torch.zeros(3, 133, 3)
    kps[:, 91] = torch.tensor([100.0, 50.0, 0.9])  # the first hand point, the first of the 63
    frames, out = resize_clip(torch.zeros(3, 100, 200, 3, dtype=torch.uint8), kps, (100, 200), 64)
    assert frames.shape == (3, 64, 64, 3) and out.shape == (3, 63, 3)
    assert torch.allclose(out[0, 0], torch.tensor([32.0, 32.0, 0.9]))


def _write(path, obj):
    path.write_bytes(pickle.dumps(obj))
    return path


def test_word_vectors_load_in_class_order(tmp_path):
    table = {"hot": np.ones(4, np.float32), "warm": np.arange(1, 5, dtype=np.float64)}
    emb = load_word_embeddings(_write(tmp_path / "w.pkl", table), ["warm", "hot"])
    assert emb.dtype == torch.float32 and torch.equal(emb[0], torch.arange(1, 5).float())


@pytest.mark.parametrize("table, match", [
    ({"warm": np.ones(4)}, "no vector for gloss 'hot'"),
    ({"warm": np.ones(4), "hot": np.ones(3)}, "3-d, expected 4-d"),
    ({"warm": np.ones(4), "hot": np.full(4, np.nan)}, "finite"),
    ({"warm": np.ones(4), "hot": "a string"}, "1-d numeric"),
    ([1, 2], "expected a dict"),
])
def test_bad_word_vector_files_raise_one_line_data_errors(tmp_path, table, match):
    with pytest.raises(DataError, match=match) as e:
        load_word_embeddings(_write(tmp_path / "w.pkl", table), ["warm", "hot"])
    assert "w.pkl" in str(e.value) and "\n" not in str(e.value)
