"""CPU proxy: the tiny recipe aligns images and captions, measured by zero-shot colour classification
and retrieval on held-out pairs (thresholds from 3 measured seeds, see the CLIP README)."""

import pytest

# Measured (tiny recipe, 8 epochs, seeds 0/1/2): zero-shot colour top-1 99.7 / 60.7 / 99.0 (chance 16.7),
# i2t R@10 22.7 / 21.3 / 20.3 (chance 3.3). Thresholds sit well below the worst seed, well above chance.
ZERO_SHOT_MIN = 40.0
I2T_R10_MIN = 12.0


@pytest.mark.slow
def test_tiny_recipe_beats_chance_on_zero_shot_and_retrieval(tmp_path):
    from visionzoo.core.registry import load_recipe
    from visionzoo.data.synth import get_synth
    from visionzoo.engine.trainer import fit

    get_synth("image-captions")(tmp_path / "data")
    spec, cfg, _ = load_recipe("clip/tiny", [f"data.root={tmp_path / 'data'}", "train.progress=false",
                                             "train.logger=none"])
    metrics = fit(spec, cfg, tmp_path / "run", recipe_name="tiny").metrics
    assert metrics["zeroshot_chance"] == pytest.approx(100 / 6)
    assert metrics["zeroshot_top1"] > ZERO_SHOT_MIN
    assert metrics["i2t_r10"] > I2T_R10_MIN  # chance: 10 of 300 = 3.3%
