import json
import time

from visionzoo.core.bench import compare, write_results


def test_compare_reports_ratio_of_medians_and_target(tmp_path):
    res = compare("sleep", lambda: time.sleep(0.002), lambda: time.sleep(0.006), warmup=1, repeats=5, target=1.5)
    assert 2.0 < res.ratio < 4.5  # peer sleeps 3x longer
    assert res.met is True and len(res.ours_all) == 5
    path = write_results([res], tmp_path, "x")
    data = json.loads(path.read_text())
    assert data["results"][0]["name"] == "sleep" and data["results"][0]["met"] is True
    assert "| sleep |" in (tmp_path / "x.md").read_text()
