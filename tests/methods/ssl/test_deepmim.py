"""DeepMIM: decoders on intermediate blocks, per-level targets and weights, official layout, recipes."""

import pytest
import torch

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import create_model, get_method, load_recipe
from visionzoo.methods.ssl.deepmim.model import DeepMIM, FrozenTeacher, feature_cosine_loss
from visionzoo.methods.ssl.mae.model import MaskedAutoencoderViT, convert_official_mae_pretrain

ARCH = dict(img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4, decoder_embed_dim=32, decoder_depth=1,
            decoder_num_heads=4)


def _deepmim(blocks=(2, 3, 4), weights=None, targets=None, **kw):
    torch.manual_seed(0)
    n = len(blocks)
    return DeepMIM(**ARCH, supervised_blocks=list(blocks), loss_weights=weights or [1.0] * n,
                   level_targets=targets or ["pixel"] * n, **kw).eval()


def _x(n=2):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_supervising_only_the_last_block_is_exactly_mae():
    deep = _deepmim(blocks=(4,))
    mae = MaskedAutoencoderViT(**ARCH).eval()
    state = {k.replace("decoders.0.", "decoder."): v for k, v in deep.state_dict().items()}
    mae.load_state_dict(state, strict=True)
    x, noise = _x(), torch.rand(2, 64)
    torch.testing.assert_close(deep(x, 0.75, noise).loss, mae(x, 0.75, noise).loss)


def test_total_loss_is_the_weighted_sum_of_the_branch_losses():
    model = _deepmim(weights=[0.5, 2.0, 1.0])
    out = model(_x(), 0.75, torch.rand(2, 64))
    assert set(out.losses) == {2, 3, 4}
    torch.testing.assert_close(out.loss, 0.5 * out.losses[2] + 2.0 * out.losses[3] + out.losses[4])


def test_intermediate_taps_are_raw_and_only_the_last_block_is_normed():
    model = _deepmim()
    keep = torch.arange(16).expand(2, -1)
    states = model.supervised_states(_x(), keep)
    ref = model.encoder.forward_features(_x(), keep_indices=keep, return_taps=[2, 4])
    torch.testing.assert_close(states[2], ref.taps[2])
    torch.testing.assert_close(states[4], ref.tokens)
    normed = _deepmim(norm_intermediate=True).supervised_states(_x(), keep)
    torch.testing.assert_close(normed[2], model.encoder.norm(ref.taps[2]))


def test_a_shallow_branch_loss_trains_only_the_blocks_below_it():
    model = _deepmim().train()
    model(_x(), 0.75).losses[2].backward()
    assert model.encoder.blocks[1].mlp.fc2.weight.grad.abs().sum() > 0
    assert model.encoder.blocks[2].mlp.fc2.weight.grad is None and model.decoders[1].pred.weight.grad is None


def test_feature_loss_is_two_minus_two_cosine_on_hidden_tokens():
    t = torch.randn(1, 3, 8)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert feature_cosine_loss(3 * t, t, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert feature_cosine_loss(-t, t, mask).item() == pytest.approx(4.0, abs=1e-5)
    pred = t.clone()
    pred[0, 2] = -t[0, 2]  # a visible token: ignored
    assert feature_cosine_loss(pred, t, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_teacher_levels_predict_teacher_tokens_and_require_them():
    model = _deepmim(targets=["teacher", "teacher", "pixel"], teacher_dim=24)
    assert model.decoders[0].pred.out_features == 24 and model.decoders[2].pred.out_features == 48
    with pytest.raises(ValueError, match="teacher_tokens"):
        model(_x(), 0.75)
    out = model(_x(), 0.75, teacher_tokens=torch.randn(2, 64, 24))
    assert out.losses[2].item() <= 4.0 and torch.isfinite(out.loss)


def test_clip_teacher_renormalises_imagenet_input_to_clip_statistics():
    from visionzoo.methods.ssl.deepmim.model import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD

    raw = torch.rand(1, 3, 4, 4)  # pixels in [0, 1]
    imagenet = (raw - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    clip = (raw - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(FrozenTeacher.imagenet_to_clip(imagenet), clip)
    with torch.device("meta"):
        teacher = FrozenTeacher("clip_vit_b16")
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.train().net.training


def test_official_deepmim_layout_with_numbered_branches_loads():
    src = _deepmim()
    names = {"embed": "decoder_embed", "mask_token": "mask_token", "blocks": "decoder_blocks", "norm": "decoder_norm",
             "pred": "decoder_pred"}
    official = {}
    for k, v in src.state_dict().items():
        if k.startswith("encoder."):
            official[k[len("encoder."):]] = v
        elif ".pos_embed" in k:
            official["decoder_pos_embed"] = v  # one table shared by all branches
        else:
            _, i, head, *rest = k.split(".")
            official[f"{names[head]}{int(i) + 1}" + "".join(f".{r}" for r in rest)] = v
    assert {"decoder_embed1.weight", "mask_token3", "decoder_blocks2.0.attn.qkv.weight"} <= set(official)
    dst = DeepMIM(**ARCH, supervised_blocks=[2, 3, 4], loss_weights=[1.0] * 3, level_targets=["pixel"] * 3).eval()
    dst.load_state_dict(convert_official_mae_pretrain({"model": official}), strict=True)
    x, noise = _x(), torch.rand(2, 64)
    torch.testing.assert_close(dst(x, 0.75, noise).loss, src(x, 0.75, noise).loss)


def test_mismatched_level_lists_are_a_config_error():
    with pytest.raises(ConfigError, match="same length"):
        DeepMIM(**ARCH, supervised_blocks=[2, 4], loss_weights=[1.0], level_targets=["pixel", "pixel"])
    with pytest.raises(ConfigError, match="1..4"):
        DeepMIM(**ARCH, supervised_blocks=[2, 5], loss_weights=[1.0, 1.0], level_targets=["pixel", "pixel"])


def test_paper_recipe_is_deepmim_clip_vit_b16_with_four_4_block_decoders():
    spec, cfg, _ = load_recipe("deepmim/paper")
    with torch.device("meta"):
        task = spec.build_task(cfg)
    model = task.model
    assert sum(p.numel() for p in model.encoder.parameters()) == 85_798_656
    assert len(model.decoders) == 4 and all(len(d.blocks) == 4 for d in model.decoders)
    assert all(d.pred.out_features == 512 and d.embed.in_features == 768 for d in model.decoders)
    assert model.arch.supervised_blocks == [6, 8, 10, 12] and cfg.model.teacher == "clip_vit_b16"
    assert not any(n.startswith("_teacher") for n, _ in task.named_parameters())  # teacher is not trained/saved
    _, ft, _ = load_recipe("deepmim/finetune_paper", ["finetune.init="])
    with torch.device("meta"):
        classifier = spec.build_task(ft).export_model()
    assert sum(p.numel() for p in classifier.parameters()) == 86_567_656  # released fine-tune log
    assert ft.finetune.layer_decay == 0.6


def test_pretrain_then_fine_tune_from_the_deepmim_folder(tmp_path):
    from visionzoo.core.hub import save_pretrained

    model = create_model("deepmim_vit", **ARCH, supervised_blocks=[2, 4], loss_weights=[1.0, 1.0],
                         level_targets=["pixel", "pixel"])
    save_pretrained(model, tmp_path / "model")
    spec, cfg, _ = load_recipe("deepmim/finetune_paper", [
        f"finetune.init={tmp_path / 'model'}", "model.img_size=32", "model.patch_size=4", "model.embed_dim=64",
        "model.depth=4", "model.num_heads=4", "model.supervised_blocks=[4]", "model.loss_weights=[1.0]",
        "model.level_targets=[pixel]", "data.image_size=32", "data.num_classes=10"])
    classifier = spec.build_task(cfg).export_model()
    torch.testing.assert_close(classifier.blocks[3].attn.qkv.weight, model.encoder.blocks[3].attn.qkv.weight)
    assert classifier(_x()).shape == (2, 10)


def test_method_is_registered_with_its_recipes():
    assert {"tiny", "paper", "finetune_paper"} <= set(get_method("deepmim").recipes())


def test_proxy_arms_differ_only_in_the_supervised_blocks():
    from visionzoo.core.config import to_dict
    from visionzoo.methods.ssl.deepmim.proxy import ARMS

    cfgs = {arm: load_recipe("deepmim/tiny", overrides)[1] for arm, overrides in ARMS.items()}
    assert cfgs["mae"].model.supervised_blocks == [6] and cfgs["deepmim"].model.supervised_blocks == [3, 4, 5, 6]
    a, b = to_dict(cfgs["mae"]), to_dict(cfgs["deepmim"])
    for d in (a, b):
        for k in ("supervised_blocks", "loss_weights", "level_targets"):
            d["model"].pop(k)
    assert a == b
