"""End to end on SynthSign (Phoenix-2014T layout): data -> train -> eval.json -> predict on an mp4 file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from visionzoo.cli import main

pytestmark = pytest.mark.slow  # ~40 s of CPU: synth data, two training steps, eval, MediaPipe

# the smallest corpus/model that still runs every stage; the proxy (proxy.py) measures learning
TINY = ["data.synthsign={resolution: 32, sentences: 12, vocab_size: 5, frames_per_sign: 3, num_signers: 2}",
        "data.image_size=32", "data.heatmap_size=16", "data.sigma=1.0", "data.temporal_scale=[0.9,1.1]",
        "model.width=0.0625", "model.head_hidden=8", "model.head_ff=16", "train.max_steps=2", "train.batch_size=4",
        "decode.beam_size=2", "train.progress=false", "train.logger=none"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("twostream")
    root, run = tmp / "synth", tmp / "run"
    assert main(["train", "--run-dir", str(run), "twostream/tiny", f"data.root={root}", *TINY]) in (0, None)
    return root, run


def test_training_writes_model_config_and_per_head_wer(tiny_run):
    root, run = tiny_run
    assert (root / "phoenix-2014t-keypoints.pkl").is_file()  # the recipe wrote SynthSign on first use
    assert (run / "model" / "model.safetensors").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((run / "eval.json").read_text())
    for split in ("dev", "test"):
        for head in ("rgb", "keypoint", "joint", "rgb_aux1", "keypoint_aux2", "ensemble", "ensemble_beam2"):
            assert 0.0 <= metrics[f"{split}_wer_{head}"], (split, head)
    config = json.loads((run / "model" / "config.json").read_text())
    glosses = config["model_kwargs"]["glosses"]
    assert glosses[0] == "<blank>" and len(glosses) == config["model_kwargs"]["vocab_size"]


def test_cli_eval_rewrites_eval_json(tiny_run):
    root, run = tiny_run
    (run / "eval.json").unlink()
    assert main(["eval", str(run), f"data.root={root}", "decode.splits=[test]", "decode.beam_size=1"]) in (0, None)
    assert set(json.loads((run / "eval.json").read_text())) >= {"test_wer_ensemble", "test_wer_joint"}


def test_predict_prints_glosses_for_a_real_video_file(tiny_run, tmp_path, capsys):
    from visionzoo.data.video import write_video

    _, run = tiny_run
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 48, 40, 3), dtype=np.uint8)  # nobody on camera: zero keypoints
    video = write_video(tmp_path / "clip.mp4", frames)
    assert main(["predict", "twostream", str(video), "--model", str(run), "--beam-size", "3"]) in (0, None)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    path, _, sentence = line.partition("\t")
    assert path == str(video)
    glosses = json.loads((run / "model" / "config.json").read_text())["model_kwargs"]["glosses"]
    assert all(g in glosses[1:] for g in sentence.split())  # never the blank


def test_video_inputs_have_test_time_shapes_and_empty_heatmaps_without_a_person(tiny_run, tmp_path):
    from visionzoo.data.video import write_video
    from visionzoo.methods.sign.twostream.data import DataConfig
    from visionzoo.methods.sign.twostream.predict import load_video_inputs

    frames = np.full((10, 48, 40, 3), 128, dtype=np.uint8)
    video = write_video(tmp_path / "grey.mp4", frames)
    cfg = DataConfig(image_size=32, heatmap_size=16, sigma=6.0)
    zero = np.zeros((10, 133, 3), dtype=np.float32)
    inputs = load_video_inputs(video, cfg, keypoints=zero)
    assert inputs["rgb"].shape == (1, 3, 8, 32, 32)  # 10 frames -> a multiple of 4
    assert inputs["heatmaps"].shape == (1, 79, 8, 16, 16) and inputs["lengths"].tolist() == [8]
    assert torch.all(inputs["heatmaps"] == -1.0)  # zero-filled keypoints draw nothing: (0 - 0.5) / 0.5
    kps = zero.copy()
    kps[:, 100] = (20.0, 24.0, 1.0)  # a right-hand point (COCO 100 is TwoStream channel 16 + 9)
    hm = load_video_inputs(video, cfg, keypoints=kps)["heatmaps"][0]
    peak = hm.amax(dim=(0, 1, 2, 3))
    assert peak > 0.9 and int((hm.amax(dim=(1, 2, 3)) > 0).sum()) == 1


def test_slt_trains_on_the_slr_runs_features_and_translates_a_video(tiny_run, tmp_path, capsys):
    from visionzoo.data.video import write_video

    root, slr_run = tiny_run
    s2t_run = tmp_path / "s2t"
    tiny_translator = ["translator.d_model=16", "translator.layers=1", "translator.heads=2", "translator.ffn_dim=32",
                       "sign.head_hidden=8", "sign.head_ff=16", "sign.mapper_hidden=16"]
    assert main(["train", "--run-dir", str(s2t_run), "twostream-slt/s2t_tiny", f"data.root={root}",
                 f"sign.extractor={slr_run}", f"sign.features={tmp_path / 'features'}", "sign.stream=joint",
                 *tiny_translator, "train.max_steps=2", "train.batch_size=4", "decode.beam_size=2",
                 "decode.max_length=6", "train.progress=false", "train.logger=none"]) in (0, None)
    assert (tmp_path / "features").is_dir() and (s2t_run / "model" / "model.safetensors").is_file()
    assert {"bleu4", "rouge_l", "gloss_wer"} <= set(json.loads((s2t_run / "eval.json").read_text()))

    frames = np.random.default_rng(1).integers(0, 255, (12, 48, 40, 3), dtype=np.uint8)
    video = write_video(tmp_path / "clip.mp4", frames)
    assert main(["predict", "twostream-slt", str(video), "--slr", str(slr_run), "--slt", str(s2t_run),
                 "--beam-size", "2", "--max-length", "6"]) in (0, None)
    path, glosses, translation = capsys.readouterr().out.strip().splitlines()[-1].split("\t")
    assert path == str(video) and glosses.startswith("glosses:") and translation.startswith("translation:")
