"""TwoStream-SLT as a registered method: recipes parse into the typed config, the stages are wired."""

import pytest

import visionzoo.methods.sign.twostream.slt as slt
from visionzoo.core.config import load_config
from visionzoo.core.errors import ConfigError


@pytest.mark.parametrize("recipe", ["g2t_tiny", "s2t_tiny", "g2t_paper", "s2t_paper"])
def test_recipes_load_into_the_typed_config(recipe):
    cfg = load_config(slt.SPEC.config_cls, slt.SPEC.recipe_path(recipe),
                      data={k: v for k, v in __import__("yaml").safe_load(
                          slt.SPEC.recipe_path(recipe).read_text()).items() if k != "method"})
    assert cfg.stage == recipe.split("_")[0]
    assert cfg.label_smoothing == 0.2
    if recipe.endswith("paper"):
        assert cfg.translator.mbart_dir and cfg.decode.beam_size == 5 and cfg.optim.betas == (0.9, 0.998)


def test_sign2text_param_groups_use_the_paper_learning_rates():
    from visionzoo.methods.sign.twostream.slt.model import Sign2Text, tiny_mbart_config
    from visionzoo.methods.sign.twostream.slt.task import SLTTask
    from visionzoo.methods.sign.twostream.slt.tokenizer import VocabTokenizer

    cfg = load_config(slt.SPEC.config_cls, None, data={"stage": "s2t", "optim": {"lr": 3e-4}})
    tok = VocabTokenizer.build(["there will be rain ."])
    model = Sign2Text(8, "keypoint", tiny_mbart_config(tok.vocab_size, tok, d_model=16, layers=1, heads=2, ffn_dim=32),
                      ["<blank>", "<pad>", "<unk>", "RAIN"], tok.to_config(), head_hidden=16, head_ff=16,
                      mapper_hidden=16)
    groups = SLTTask(cfg, model=model).param_groups(1e-3)
    assert [g["lr"] for g in groups] == [3e-4, 1e-3, 1e-5]
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert ids[0] == {id(p) for p in model.visual_head.parameters()}
    assert id(model.translator.gloss_embedding.weight) not in ids[2]  # frozen


def test_unknown_stage_is_a_config_error():
    with pytest.raises(ConfigError, match="stage"):
        load_config(slt.SPEC.config_cls, None, data={"stage": "sign2gloss"})


def test_method_is_registered_with_evaluate_and_predict():
    assert slt.SPEC.name == "twostream-slt" and slt.SPEC.evaluate is not None and slt.SPEC.predict is not None
    assert "predict_args" in slt.SPEC.extra
