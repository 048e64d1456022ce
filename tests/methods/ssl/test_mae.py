"""MAE: masking, targets, loss, parity with HF ViTMAE, checkpoint layouts, layer decay, recipes, end to end."""

import argparse

import pytest
import torch

from visionzoo.core.registry import create_model, get_method, load_recipe
from visionzoo.methods.ssl.mae.model import (MaskedAutoencoderViT, convert_hf_vitmae_state_dict,
                                             convert_official_mae_pretrain, masked_mse, patchify, pixel_target,
                                             unpatchify)
from visionzoo.methods.ssl.mim_eval import layer_decay_param_groups, save_reconstruction_grid

TINY = dict(img_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=4, decoder_embed_dim=32, decoder_depth=1,
            decoder_num_heads=4)


def _mae(**kw):
    torch.manual_seed(0)
    return create_model("mae_vit", **{**TINY, **kw}).eval()


def _images(n=2, size=32):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_patchify_puts_channels_last_inside_a_patch_and_unpatchify_inverts_it():
    x = _images()
    p = patchify(x, 4)
    assert p.shape == (2, 64, 48)
    torch.testing.assert_close(p[0, 9, :3], x[0, :, 4, 4])  # patch (1, 1), its top-left pixel, all channels
    torch.testing.assert_close(unpatchify(p, 4), x)


def test_same_noise_gives_the_same_mask_and_75_percent_is_hidden():
    model, x = _mae(), _images()
    noise = torch.rand(2, 64, generator=torch.Generator().manual_seed(3))
    a, b = model(x, 0.75, noise), model(x, 0.75, noise)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.loss, b.loss)
    assert a.mask.sum(1).tolist() == [48.0, 48.0]
    hidden = noise.argsort(1)[:, 16:]  # the largest noise values are hidden
    assert bool((a.mask.gather(1, hidden) == 1).all())


def test_encoder_sees_only_the_visible_patches_plus_cls():
    out = _mae()(_images(), 0.75)
    assert out.latent.shape == (2, 1 + 16, 64)


def test_norm_pix_target_standardises_every_patch():
    t = pixel_target(_images(), 4, norm_pix=True)
    torch.testing.assert_close(t.mean(-1), torch.zeros(2, 64), atol=1e-5, rtol=0)
    torch.testing.assert_close(t.var(-1), torch.ones(2, 64), atol=1e-3, rtol=0)


def test_loss_counts_hidden_patches_only():
    pred, target = torch.zeros(1, 4, 3), torch.ones(1, 4, 3)
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    assert masked_mse(pred, target, mask).item() == 1.0
    pred[0, 1] = 100.0  # a visible patch: ignored
    assert masked_mse(pred, target, mask).item() == 1.0


def test_matches_hf_vitmae_with_the_same_weights_and_noise():
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    hf_cfg = ViTMAEConfig(image_size=32, patch_size=4, num_channels=3, hidden_size=64, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=256, decoder_hidden_size=32,
                          decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=128,
                          layer_norm_eps=1e-6, norm_pix_loss=True, mask_ratio=0.75, qkv_bias=True,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    hf = ViTMAEForPreTraining(hf_cfg).eval()
    ours = MaskedAutoencoderViT(**TINY).eval()
    ours.load_state_dict(convert_hf_vitmae_state_dict(hf.state_dict()), strict=True)
    x = _images()
    noise = torch.rand(2, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = hf(pixel_values=x, noise=noise)
        out = ours(x, 0.75, noise)
    torch.testing.assert_close(out.mask, ref.mask)
    torch.testing.assert_close(out.pred, ref.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.loss, ref.loss, atol=1e-5, rtol=1e-4)


def _official_layout(model: MaskedAutoencoderViT) -> dict:
    """Our weights under the official facebookresearch/mae MaskedAutoencoderViT key names (spec 1e)."""
    names = {"embed": "decoder_embed", "mask_token": "mask_token", "pos_embed": "decoder_pos_embed",
             "blocks": "decoder_blocks", "norm": "decoder_norm", "pred": "decoder_pred"}
    sd = {}
    for k, v in model.state_dict().items():
        if k.startswith("encoder."):
            sd[k[len("encoder."):]] = v.clone()
        else:
            head, _, rest = k[len("decoder."):].partition(".")
            sd[names[head] + (f".{rest}" if rest else "")] = v.clone()
    return sd


def test_official_pretrain_checkpoint_layout_loads_into_our_mae():
    src = _mae()
    sd = _official_layout(src)
    assert {"cls_token", "decoder_embed.weight", "mask_token", "decoder_blocks.0.attn.qkv.weight",
            "decoder_pred.bias", "blocks.1.mlp.fc2.weight"} <= set(sd)
    checkpoint = {"model": sd, "epoch": 1599, "args": argparse.Namespace(model="mae_vit_base_patch16")}
    dst = MaskedAutoencoderViT(**TINY).eval()
    dst.load_state_dict(convert_official_mae_pretrain(checkpoint), strict=True)
    x, noise = _images(), torch.rand(2, 64)
    torch.testing.assert_close(dst(x, 0.75, noise).pred, src(x, 0.75, noise).pred)


def test_official_checkpoint_file_initialises_the_fine_tune_classifier(tmp_path):
    from visionzoo.methods.ssl.mae.finetune import load_encoder_state

    src = _mae()
    path = tmp_path / "checkpoint-1599.pth"
    torch.save({"model": _official_layout(src), "epoch": 1599, "args": argparse.Namespace(lr=1e-3)}, path)
    state = load_encoder_state(path)
    assert not any(k.startswith(("decoder", "mask_token")) for k in state)
    torch.testing.assert_close(state["blocks.1.attn.qkv.weight"], src.encoder.blocks[1].attn.qkv.weight)


def test_layer_decay_scales_lr_by_depth_and_spares_1d_params_from_weight_decay():
    vit = create_model("mae_vit_classifier", img_size=32, patch_size=4, embed_dim=32, depth=3, num_heads=4,
                       num_classes=5, global_pool="avg")
    groups = layer_decay_param_groups(vit, lr=1.0, weight_decay=0.05, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert lr_of[id(vit.head.weight)] == 1.0 and lr_of[id(vit.fc_norm.weight)] == 1.0
    assert lr_of[id(vit.blocks[2].attn.qkv.weight)] == 0.5 and lr_of[id(vit.blocks[0].mlp.fc1.weight)] == 0.125
    assert lr_of[id(vit.patch_embed.proj.weight)] == 0.0625 and lr_of[id(vit.cls_token)] == 0.0625
    assert wd_of[id(vit.blocks[0].mlp.fc1.weight)] == 0.05 and wd_of[id(vit.blocks[0].mlp.fc1.bias)] == 0.0
    assert wd_of[id(vit.cls_token)] == 0.0
    assert len(lr_of) == sum(p.requires_grad for p in vit.parameters())


def test_paper_recipe_is_mae_vit_b16_with_the_published_parameter_counts():
    spec, cfg, _ = load_recipe("mae/paper")
    with torch.device("meta"):
        task = spec.build_task(cfg)
    encoder = sum(p.numel() for p in task.mae.encoder.parameters())
    assert encoder == 85_798_656  # ViT-B/16 without head: the MAE encoder
    _, ft_cfg, _ = load_recipe("mae/finetune_paper", ["finetune.init="])
    with torch.device("meta"):
        classifier = spec.build_task(ft_cfg).export_model()
    assert sum(p.numel() for p in classifier.parameters()) == 86_567_656  # DeepMIM/MAE fine-tune log
    assert cfg.model.mask_ratio == 0.75 and cfg.model.decoder_depth == 8 and cfg.optim.lr == 0.0024


def test_linear_probe_stage_trains_only_the_batchnorm_head():
    spec, cfg, _ = load_recipe("mae/finetune_tiny", ["finetune.stage=linprobe"])
    task = spec.build_task(cfg)
    trainable = {n for n, p in task.model.named_parameters() if p.requires_grad}
    assert trainable == {"head.1.weight", "head.1.bias"}
    task.train()
    assert not task.model.blocks[0].training and task.model.head[0].training
    assert [p for g in task.param_groups(0.0) for p in g["params"]] == [task.model.head[1].weight,
                                                                        task.model.head[1].bias]


def test_fine_tune_task_groups_carry_the_layer_decayed_lr():
    spec, cfg, _ = load_recipe("mae/finetune_tiny", ["optim.lr=0.01", "finetune.layer_decay=0.5"])
    task = spec.build_task(cfg)
    lrs = sorted({g["lr"] for g in task.param_groups(0.05)})
    assert lrs == [0.01 * 0.5**k for k in range(cfg.model.depth + 1, -1, -1)]


def test_reconstruction_grid_pastes_visible_patches_and_writes_a_png(tmp_path):
    from PIL import Image

    model, x = _mae(), _images(3)
    masked, recon, target = model.reconstruct(x, 0.75)
    visible = masked != 0
    torch.testing.assert_close(recon[visible], x[visible])
    path = save_reconstruction_grid(model, x, tmp_path / "recon.png", upscale=2)
    img = Image.open(path)
    assert img.size == (2 * (3 * 34 + 2), 2 * (3 * 34 + 2))  # 3 panels x 3 rows of 32 px + 2 px gaps


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from visionzoo.data.synth import get_synth
    from visionzoo.engine.trainer import fit

    root = tmp_path_factory.mktemp("digits")
    get_synth("digits")(root, size=16)
    run = tmp_path_factory.mktemp("run")
    spec, cfg, _ = load_recipe("mae/tiny", [
        f"data.root={root}", "data.image_size=16", "model.img_size=16", "model.depth=2", "train.max_steps=3",
        "train.batch_size=32", "train.progress=false", "train.val_every_n_epochs=1", "eval.linear_probe_epochs=2",
        "eval.probe_blocks=[1]", "eval.few_label_epochs=1", f"eval.visualize={run / 'recon.png'}"])
    return root, run, fit(spec, cfg, run, recipe_name="tiny")


def test_pretraining_writes_a_run_with_all_encoder_metrics_and_the_reconstruction_png(tiny_run):
    _, run, result = tiny_run
    assert set(result.metrics) == {"knn", "linear", "linear_block1", "knn_block1", "fewlabel_ft"}
    assert all(0.0 <= v <= 100.0 for v in result.metrics.values())
    assert (run / "recon.png").is_file() and (run / "model" / "model.safetensors").is_file()


def test_fine_tune_stage_starts_from_the_pretrained_folder(tiny_run):
    root, run, result = tiny_run
    spec, cfg, _ = load_recipe("mae/finetune_tiny", [f"finetune.init={run / 'model'}", "data.image_size=16",
                                                     "model.img_size=16", "model.depth=2", f"data.root={root}"])
    task = spec.build_task(cfg)
    torch.testing.assert_close(task.model.blocks[1].mlp.fc1.weight, result.task.encoder.blocks[1].mlp.fc1.weight)
    torch.testing.assert_close(task.model.pos_embed, result.task.encoder.pos_embed)


def test_method_is_registered_with_its_recipes():
    spec = get_method("mae")
    assert {"tiny", "paper", "finetune_paper", "linprobe_paper", "finetune_tiny"} <= set(spec.recipes())
