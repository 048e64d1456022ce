"""The CPU proxy's schedule trains end to end (tiny_proxy recipe, methods/sign/twostream/README.md "CPU proxy").

Stage 1 trains the RGB and keypoint single streams on SynthSign with complementary cues (``cue_split``),
stage 2 the full two-stream model from them. Measured (seeds 0, 1, 2; dev WER of the beam-searched
ensemble, untrained = 100): keypoint stage 1 54.6 / 53.8 / 55.5, two-stream stage 2 57.1 / 56.3 / 52.1.
The paper's ordering (two streams below either single stream) did NOT reproduce here (the README has every
arm), so this test asserts only that both stages learn, with about 10 points of margin over the worst
measured seed.
"""

import json
import subprocess
import sys

import pytest

MAX_STAGE1_KEYPOINT_DEV_WER = 65.0
MAX_TWOSTREAM_DEV_WER = 70.0


@pytest.mark.slow
def test_staged_two_stream_proxy_learns_synthsign(tmp_path):
    out = tmp_path / "proxy.json"
    proc = subprocess.run([sys.executable, "-m", "visionzoo.methods.sign.twostream.proxy", "--root",
                           str(tmp_path / "data"), "--seeds", "0", "--arms", "twostream", "--out", str(out)],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r["arm"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"rgb_stage1", "keypoint_stage1", "twostream"}, rows
    assert rows["keypoint_stage1"]["dev_wer_ensemble_beam5"] <= MAX_STAGE1_KEYPOINT_DEV_WER, rows
    assert rows["twostream"]["dev_wer_ensemble_beam5"] <= MAX_TWOSTREAM_DEV_WER, rows
