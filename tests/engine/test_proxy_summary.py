import pytest

from visionzoo.engine.proxy import summarize


def test_summary_is_mean_and_sd_per_arm_and_metric_over_seeds():
    rows = [{"arm": "a", "seed": 0, "seconds": 9.0, "acc": 80.0, "note": "x"},
            {"arm": "a", "seed": 1, "seconds": 7.0, "acc": 90.0, "note": "y"},
            {"arm": "b", "seed": 0, "seconds": 5.0, "acc": 50.0},
            {"arm": "teacher", "seed": 0, "acc": 99.0}]
    out = summarize(rows, skip_arms=("teacher",))
    assert list(out) == ["a", "b"] and set(out["a"]) == {"acc"}
    assert out["a"]["acc"][0] == 85.0 and out["a"]["acc"][1] == pytest.approx(7.0710678)
    assert out["b"]["acc"] == (50.0, 0.0)
    assert summarize(rows, metrics=["seconds"])["a"]["seconds"][0] == 8.0
