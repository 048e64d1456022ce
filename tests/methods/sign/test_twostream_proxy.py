"""The CPU proxy's schedule trains end to end (tiny_proxy recipe, methods/sign/twostream/README.md "CPU proxy").

Stage 1 trains the RGB and keypoint single streams on one-signer SynthSign with complementary cues
(``cue_split``), stage 2 the full two-stream model from them. Measured (seeds 0-4; dev WER of the
beam-searched ensemble, untrained = 100): stage-1 RGB 58.8 / 45.4 / 51.3 / 58.8 / 68.1, stage-1 keypoint
40.3 / 56.3 / 47.1 / 47.1 / 52.1, two-stream 40.3 / 38.7 / 43.7 / 47.9 / 47.9. Which single stream is better
changes with the seed; the two-stream model ended -6.7 to +0.8 points from the better stage-1 stream (0.0
in seed 0) and 7.6-20.2 ahead of the weaker one. The test asserts the first on seed 0 with 5 points of
margin, and an absolute bound 7 points above the worst measured two-stream WER (47.9).
"""

import json
import subprocess
import sys

import pytest

MAX_BEHIND_BETTER_STREAM = 5.0
MAX_TWOSTREAM_DEV_WER = 55.0


@pytest.mark.slow
def test_staged_two_stream_proxy_matches_the_better_stream_on_synthsign(tmp_path):
    out = tmp_path / "proxy.json"
    proc = subprocess.run([sys.executable, "-m", "visionzoo.methods.sign.twostream.proxy", "--root",
                           str(tmp_path / "data"), "--seeds", "0", "--arms", "twostream", "--out", str(out)],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["arm"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"rgb_stage1", "keypoint_stage1", "twostream"}, rows
    two = rows["twostream"]["dev_wer_ensemble_beam5"]
    better = min(rows[f"{s}_stage1"]["dev_wer_ensemble_beam5"] for s in ("rgb", "keypoint"))
    assert two <= better + MAX_BEHIND_BETTER_STREAM, rows
    assert two <= MAX_TWOSTREAM_DEV_WER, rows
