"""Text-video readers (MSR-VTT, MSVD, ActivityNet Captions) and the `video-captions` generator."""

import json
import pickle
import shutil

import pytest
import torch

from visionzoo.core.errors import DataError
from visionzoo.data.synth.video_captions import write_video_captions
from visionzoo.data.video_text import (VideoCaptionPairs, VideoClips, CaptionTokens, read_activitynet, read_msrvtt,
                                       read_msvd, read_video_text)


@pytest.fixture(scope="module")
def msrvtt(tmp_path_factory):
    root = tmp_path_factory.mktemp("msrvtt")
    summary = write_video_captions(root, n_videos=6, frames=4, size=16, seed=0, test_fraction=0.34)
    return root, summary


def test_generator_writes_the_msrvtt_layout_deterministically(msrvtt, tmp_path):
    root, summary = msrvtt
    assert summary["train"] == 4 and summary["test"] == 2 and summary["captions"] == 6 * 4
    again = write_video_captions(tmp_path, n_videos=6, frames=4, size=16, seed=0, test_fraction=0.34)
    assert again["captions"] == summary["captions"]
    assert (tmp_path / "MSRVTT_data.json").read_text() == (root / "MSRVTT_data.json").read_text()
    assert (tmp_path / "MSRVTT_JSFUSION_test.csv").read_text() == (root / "MSRVTT_JSFUSION_test.csv").read_text()


def test_msrvtt_train_uses_every_caption_and_test_one_per_video(msrvtt):
    root, _ = msrvtt
    train = read_msrvtt(root, "train")
    assert train.videos == ["video0", "video1", "video2", "video3"]
    assert len(train.captions) == 16 and train.caption_video.count(0) == 4
    test = read_msrvtt(root, "test")
    assert test.videos == ["video4", "video5"] and test.caption_video == [0, 1]
    assert all(p.is_file() for p in test.paths)


def test_clips_and_pairs_have_the_model_layout(msrvtt):
    root, _ = msrvtt
    index = read_msrvtt(root, "train")
    clips = VideoClips(index, num_frames=6, image_size=16)  # more frames than the video: repeated
    pairs = VideoCaptionPairs(clips, CaptionTokens(index, 16))
    video, tokens = pairs[5]
    assert video.shape == (6, 3, 16, 16) and video.dtype == torch.float32
    assert tokens.shape == (16,) and tokens[0] == 49406  # start-of-text
    torch.testing.assert_close(video, clips[index.caption_video[5]])


def test_generated_clip_shows_the_captioned_colour(msrvtt):
    from visionzoo.data.synth.video_captions import COLOURS
    from visionzoo.data.video import read_video

    root, _ = msrvtt
    index = read_msrvtt(root, "test")
    colour = next(c for c in COLOURS if index.captions[0].split().count(c))
    frames = read_video(index.paths[0]).float()  # (T, H, W, 3)
    distance = (frames - torch.tensor(COLOURS[colour], dtype=torch.float)).norm(dim=-1)
    assert (distance < 60).any()


def test_msrvtt_errors_name_file_line_and_key(msrvtt, tmp_path):
    root, _ = msrvtt
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    (bad / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo99\n")
    with pytest.raises(DataError, match=r"MSRVTT_train.9k.csv:3: video 'video99' has no caption"):
        read_msrvtt(bad, "train")
    (bad / "MSRVTT_train.9k.csv").write_text("vid\nvideo0\n")
    with pytest.raises(DataError, match=r"MSRVTT_train.9k.csv:1: header"):
        read_msrvtt(bad, "train")
    (bad / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\n")
    data = json.loads((bad / "MSRVTT_data.json").read_text())
    data["sentences"][2]["caption"] = ""
    (bad / "MSRVTT_data.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"sentences\[2\]\.caption: expected a non-empty string"):
        read_msrvtt(bad, "train")
    (bad / "MSRVTT_data.json").write_text('{"sentences": [')
    with pytest.raises(DataError, match=r"MSRVTT_data.json:1: not valid JSON"):
        read_msrvtt(bad, "train")


def test_missing_and_corrupt_videos_are_reported(msrvtt, tmp_path):
    root, _ = msrvtt
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    (bad / "videos" / "video5.mp4").unlink()
    with pytest.raises(DataError, match=r"1 of 2 videos missing \(first: 'video5'\)"):
        read_msrvtt(bad, "test")
    (bad / "videos" / "video5.mp4").write_bytes(b"not a video at all")
    index = read_msrvtt(bad, "test")  # existence check passes; decoding names the file
    with pytest.raises(DataError, match="video5.mp4"):
        VideoClips(index, 4, 16)[1]
    with pytest.raises(DataError, match=r"1 of 2 videos unreadable \(first: video5.mp4"):
        read_msrvtt(bad, "test", check_videos="decode")


def _msvd(root, msrvtt_root):
    (root / "videos").mkdir(parents=True)
    for i, name in enumerate(["vidA_1_5", "vidB_2_9", "vidC_0_3"]):
        shutil.copy(msrvtt_root / "videos" / f"video{i}.mp4", root / "videos" / f"{name}.avi")
    captions = {"vidA_1_5": [["a", "man", "runs"], ["someone", "is", "running"]], "vidB_2_9": [["a", "cat"]],
                "vidC_0_3": [["a", "dog", "barks"], ["dog"], ["the", "dog", "is", "loud"]]}
    (root / "raw-captions.pkl").write_bytes(pickle.dumps(captions))
    (root / "train_list.txt").write_text("vidA_1_5\nvidB_2_9\n")
    (root / "test_list.txt").write_text("vidC_0_3\nvidA_1_5\n")
    return captions


def test_msvd_reads_token_lists_and_keeps_every_test_caption(msrvtt, tmp_path):
    _msvd(tmp_path, msrvtt[0])
    test = read_msvd(tmp_path, "test")
    assert test.videos == ["vidC_0_3", "vidA_1_5"]
    assert test.captions[:3] == ["a dog barks", "dog", "the dog is loud"] and test.caption_video == [0, 0, 0, 1, 1]
    assert test.paths[0].suffix == ".avi"


def test_msvd_errors(msrvtt, tmp_path):
    captions = _msvd(tmp_path, msrvtt[0])
    (tmp_path / "val_list.txt").write_text("vidA_1_5\n\nvidZ\n")
    with pytest.raises(DataError, match=r"val_list.txt:3: video 'vidZ' has no captions"):
        read_msvd(tmp_path, "val")
    captions["vidB_2_9"] = [["a", 3]]
    (tmp_path / "raw-captions.pkl").write_bytes(pickle.dumps(captions))
    with pytest.raises(DataError, match=r"raw-captions.pkl: \['vidB_2_9'\]\[0\]: expected a list of string tokens"):
        read_msvd(tmp_path, "train")


def test_activitynet_concatenates_sentences_and_accepts_v_prefix_free_files(msrvtt, tmp_path):
    (tmp_path / "videos").mkdir()
    shutil.copy(msrvtt[0] / "videos" / "video0.mp4", tmp_path / "videos" / "abc.mp4")
    shutil.copy(msrvtt[0] / "videos" / "video1.mp4", tmp_path / "videos" / "v_def.mp4")
    ann = {"v_abc": {"duration": 10.0, "timestamps": [[0, 2], [2, 5]], "sentences": ["A man sits. ", " He stands up."]},
           "v_def": {"duration": 4.0, "timestamps": [[0, 4]], "sentences": ["A dog."]}}
    (tmp_path / "val_1.json").write_text(json.dumps(ann))
    index = read_video_text("activitynet", tmp_path, "val")
    assert index.captions == ["A man sits. He stands up.", "A dog."]
    assert [p.name for p in index.paths] == ["abc.mp4", "v_def.mp4"]
    ann["v_def"]["sentences"] = []
    (tmp_path / "val_1.json").write_text(json.dumps(ann))
    with pytest.raises(DataError, match=r"\['v_def'\]\.sentences: expected a non-empty list"):
        read_activitynet(tmp_path, "val")
