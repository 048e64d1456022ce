"""The CPU proxy's schedule trains end to end (tiny_proxy recipe, methods/sign/twostream/README.md "CPU proxy").

Stage 1 trains the RGB and keypoint single streams on one-signer SynthSign with complementary cues
(``cue_split``), 120 epochs; stage 2 the full two-stream model from them, 60 epochs. Measured (seeds 0-4;
dev WER of the beam-searched ensemble, untrained = 100): stage-1 RGB 51.3 / 41.2 / 46.2 / 45.4 / 51.3,
stage-1 keypoint 26.1 / 34.5 / 38.7 / 43.7 / 28.6, two-stream 8.4 / 10.1 / 18.5 / 24.4 / 18.5: 17.6, 24.4,
20.2, 19.3 and 10.1 points below the better stage-1 stream. The test asserts, on seed 0, a lead of at
least 5 points (half the smallest measured), and an absolute bound 5.6 points above the worst measured
two-stream WER.
"""

import json
import subprocess
import sys

import pytest

MIN_LEAD_OVER_BETTER_STREAM = 5.0
MAX_TWOSTREAM_DEV_WER = 30.0


@pytest.mark.slow
def test_staged_two_stream_proxy_beats_the_better_single_stream_on_synthsign(tmp_path):
    out = tmp_path / "proxy.json"
    proc = subprocess.run([sys.executable, "-m", "visionzoo.methods.sign.twostream.proxy", "--root",
                           str(tmp_path / "data"), "--seeds", "0", "--arms", "twostream", "--out", str(out)],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["arm"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"rgb_stage1", "keypoint_stage1", "twostream"}, rows
    two = rows["twostream"]["dev_wer_ensemble_beam5"]
    better = min(rows[f"{s}_stage1"]["dev_wer_ensemble_beam5"] for s in ("rgb", "keypoint"))
    assert two <= better - MIN_LEAD_OVER_BETTER_STREAM, rows
    assert two <= MAX_TWOSTREAM_DEV_WER, rows


def test_reuse_stage1_only_takes_a_finished_run_of_the_same_config(tmp_path):
    import yaml

    from visionzoo.engine.proxy import arm_config
    from visionzoo.engine.trainer import finished_run, run_config
    from visionzoo.methods.sign.twostream.proxy import RECIPE, STAGE1

    def config(epochs, seed=0):
        arm = {"rgb_stage1": [*STAGE1["rgb"], f"train.max_epochs={epochs}"]}
        return arm_config(RECIPE, arm, "rgb_stage1", seed, str(tmp_path / "data"))

    spec, cfg = config(120)
    run = tmp_path / "seed0_rgb"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(run_config(spec, cfg), sort_keys=False))
    assert finished_run(run, spec, cfg) is None  # no eval.json / model: unfinished
    (run / "eval.json").write_text(json.dumps({"dev_wer_rgb": 51.3}))
    (run / "model").mkdir()
    assert finished_run(run, spec, cfg) == {"dev_wer_rgb": 51.3}
    assert finished_run(run, *config(40)) is None
    assert finished_run(run, *config(120, seed=1)) is None
