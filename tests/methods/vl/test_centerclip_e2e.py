"""CenterCLIP end to end on generated videos: train (2 steps), evaluate, `visionzoo eval` and `visionzoo predict`."""

import json

from visionzoo.cli import main
from visionzoo.core.hub import from_pretrained
from visionzoo.core.registry import load_recipe
from visionzoo.data.synth.video_captions import write_video_captions
from visionzoo.engine.trainer import fit


def test_train_eval_and_predict_on_generated_msrvtt(tmp_path, capsys):
    root = tmp_path / "data"
    write_video_captions(root, n_videos=10, frames=4, size=32, seed=1)
    overrides = [f"data.root={root}", "data.num_frames=4", "model.cluster.segments=2", "model.cluster.k=8",
                 "train.max_steps=2", "train.batch_size=4", "train.progress=false", "train.logger=none"]
    spec, cfg, _ = load_recipe("centerclip/tiny", overrides)
    result = fit(spec, cfg, tmp_path / "run")
    m = result.metrics
    for key in ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "t2v_mnr", "v2t_r1", "v2t_medr", "v2t_mnr"):
        assert key in m
    assert 0 <= m["t2v_r1"] <= 100 and 1 <= m["t2v_medr"] <= 2  # 2 test videos
    model = from_pretrained(tmp_path / "run" / "model")
    assert model.cluster.k == 8 and model.cluster.segments == 2

    assert main(["eval", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["t2v_r1"] == m["t2v_r1"]
    capsys.readouterr()
    assert main(["predict", "centerclip", "--model", str(tmp_path / "run"), "--query", "a red square moves left",
                 "--videos", str(root / "videos"), "--frames", "4", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "a red square moves left" in out and out.count("video") >= 3
