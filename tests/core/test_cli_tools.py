"""`visionzoo bench` and `visionzoo keypoints extract` end to end through the CLI."""

import json

import numpy as np
import pytest

from visionzoo.cli import main


def test_bench_runs_a_benchmark_file_and_writes_results(tmp_path, monkeypatch, capsys):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "sleepy.py").write_text(
        "import time\n"
        "from visionzoo.core.bench import compare\n"
        "def run(quick=False):\n"
        "    return [compare('sleepy', lambda: time.sleep(0.001), lambda: time.sleep(0.003), repeats=3, target=1.0)]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "sleepy", "--quick", "--out", str(tmp_path / "res")]) == 0
    data = json.loads((tmp_path / "res" / "sleepy.json").read_text())
    assert data["results"][0]["ratio"] > 1.5
    assert "| sleepy |" in capsys.readouterr().out
    assert main(["bench", "nope"]) == 2


def test_keypoints_extract_on_a_real_photo(tmp_path):
    pytest.importorskip("mediapipe")
    from PIL import Image
    from skimage import data

    from visionzoo.data.keypoints import load_keypoint_file

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    assert main(["keypoints", "extract", str(tmp_path / "astronaut.png"), str(tmp_path / "kp.npz"), "--static"]) == 0
    kp = load_keypoint_file(tmp_path / "kp.npz")
    assert kp.coco133.points.shape == (1, 133, 3)
    assert (kp.coco133.points[0, :17, 2] > 0).sum() >= 5  # body points found on a real person
    assert np.all(kp.coco133.points[0, 91:, 2] == 0)  # no hands in the photo: zero score
