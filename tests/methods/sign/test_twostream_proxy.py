"""The CPU proxy's full two-stream arm learns SynthSign (tiny_proxy recipe, methods/sign/twostream/README.md).

Measured (seed 0, 110 optimiser steps): dev WER of the beam-searched ensemble 78.2 (untrained: 100). The
paper's ordering (two streams < one stream) did NOT reproduce at this budget (the README has every arm),
so this test asserts only that the whole two-stream model trains: dev WER at most 90, about two standard
deviations of the per-seed spread we measured on the single-stream arms (up to 5.3) above seed 0's value.
"""

import json
import subprocess
import sys

import pytest

MAX_DEV_WER = 90.0


@pytest.mark.slow
def test_two_stream_model_learns_synthsign(tmp_path):
    out = tmp_path / "proxy.json"
    proc = subprocess.run([sys.executable, "-m", "visionzoo.methods.sign.twostream.proxy", "--root",
                           str(tmp_path / "data"), "--seeds", "0", "--arms", "twostream", "--out", str(out)],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    row = json.loads(out.read_text())["rows"][0]
    assert row["dev_wer_ensemble_beam5"] <= MAX_DEV_WER, row
