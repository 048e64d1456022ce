"""A-CLIP: crop geometry of the attentive score, token selection, EMA teacher, combined loss, recipes."""

import math

import pytest
import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import get_method, load_recipe
from visionzoo.engine.task import StepContext
from visionzoo.methods.vl.aclip.data import ACLIPViews, union_zoom_out_box
from visionzoo.methods.vl.aclip.model import (ACLIPTask, byol_loss, cls_attention_score,
                                              ema_momentum, map_score_to_crop, num_kept_cells, select_tokens,
                                              simclr_loss)


def _boxes(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# ------------------------------------------------------------------------------------------------ geometry


def test_score_maps_onto_itself_when_the_crop_is_the_source_view():
    score = torch.rand(2, 7, 7, generator=torch.Generator().manual_seed(0))
    box = _boxes([3, 5, 70, 91], [0, 0, 224, 224])
    torch.testing.assert_close(map_score_to_crop(score, box, box), score, rtol=0, atol=1e-6)


def test_patch_aligned_crop_copies_the_source_cells_exactly():
    # source view: 64x64 px at (10, 20) of the image, an 8x8 grid of 8-px patches; the crop is the 4x4
    # block of those patches starting at patch row 2, column 3, read at the same scale (out_grid 4)
    score = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 8, 8)
    src = _boxes([10, 20, 64, 64], [10, 20, 64, 64])
    crop = _boxes([10 + 16, 20 + 24, 32, 32], [10 + 16, 20 + 24, 32, 32])
    out = map_score_to_crop(score, src, crop, out_grid=4)
    assert torch.equal(out, score[:, 2:6, 3:7])


def test_zoomed_crop_samples_the_score_at_its_patch_centres():
    # An affine score is reproduced exactly by bilinear sampling, so every output cell can be checked
    # against the geometry: crop patch centre -> image pixel -> source-grid coordinate.
    g, G = 14, 14
    rows, cols = torch.meshgrid(torch.arange(g, dtype=torch.float64), torch.arange(g, dtype=torch.float64),
                                indexing="ij")
    score = (0.3 * rows - 0.7 * cols + 2.0)[None]
    src = torch.tensor([[8.0, 4.0, 300.0, 260.0]], dtype=torch.float64)  # (top, left, h, w) in image pixels
    crop = torch.tensor([[60.0, 50.0, 150.0, 120.0]], dtype=torch.float64)  # inside src, other aspect
    out = map_score_to_crop(score, src, crop, out_grid=G)
    centre = torch.arange(G, dtype=torch.float64) + 0.5
    y = crop[0, 0] + centre * crop[0, 2] / G
    x = crop[0, 1] + centre * crop[0, 3] / G
    r = (y - src[0, 0]) / src[0, 2] * g - 0.5  # source grid coordinate, cell centres at integers
    c = (x - src[0, 1]) / src[0, 3] * g - 0.5
    expected = 0.3 * r[:, None] - 0.7 * c[None, :] + 2.0
    torch.testing.assert_close(out[0], expected, rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------------------ selection


def test_keep_count_follows_a_clip_25_of_49_cells():
    assert num_kept_cells(49, 0.5) == 25  # floor(49 * 0.5) + 1 in the official code
    assert num_kept_cells(16, 0.5) == 8 and num_kept_cells(64, 0.75) == 16
    with pytest.raises(ConfigError):
        num_kept_cells(49, 1.0)


def test_top_cells_are_kept_whole_as_sorted_patch_ids():
    score = torch.zeros(1, 14, 14)
    score[0, 4:6, 8:10] = 5.0  # one hot 2x2 cell: row-cell 2, column-cell 4
    keep = select_tokens(score, 0.5, cell=2)
    assert keep.shape == (1, 100)  # 25 cells x 4 patches of 196
    assert torch.equal(keep, keep.sort(dim=1).values) and keep.unique().numel() == 100
    assert {4 * 14 + 8, 4 * 14 + 9, 5 * 14 + 8, 5 * 14 + 9} <= set(keep[0].tolist())
    cells = {(int(i) // 14 // 2, int(i) % 14 // 2) for i in keep[0]}
    assert len(cells) == 25  # whole cells, never split


def test_selection_keeps_the_highest_scoring_patches():
    score = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1))
    keep = select_tokens(score, 0.5, cell=1)
    expected = score.flatten(1).topk(32, dim=1).indices.sort(dim=1).values
    assert torch.equal(keep, expected)


def _tiny_cfg(*overrides):
    _, cfg, _ = load_recipe("aclip/tiny", list(overrides))
    return cfg


def test_cls_attention_score_is_the_layer_and_head_mean_of_cls_to_patch_attention():
    task = ACLIPTask(_tiny_cfg())
    vit = task.ema.visual
    images = torch.randn(2, 3, 32, 32)
    score, pooled = cls_attention_score(vit, images)
    out = vit.forward_features(images, return_attention=True)
    expected = torch.stack([a[:, :, 0, 1:] for a in out.attentions]).mean(dim=(0, 2)).reshape(2, 8, 8)
    torch.testing.assert_close(score, expected)
    torch.testing.assert_close(pooled, out.pooled)


# ------------------------------------------------------------------------------------------------ losses


def test_simclr_loss_matches_a_hand_computed_nt_xent():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    a, b = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    t = 0.1
    total = 0.0
    for x, y in ((a, b), (b, a)):
        for i in range(3):
            negatives = [x[i] @ x[j] / t for j in range(3) if j != i] + [x[i] @ y[j] / t for j in range(3)]
            total += -(x[i] @ y[i] / t - torch.logsumexp(torch.stack(negatives), 0))
    torch.testing.assert_close(simclr_loss(z1, z2, t), total / 6)


def test_byol_loss_is_zero_for_aligned_and_four_for_opposite_vectors():
    p = torch.randn(4, 6)
    assert byol_loss(p, 2 * p).abs().max() < 1e-6
    assert byol_loss(p, -p).item() == pytest.approx(4.0)


# ------------------------------------------------------------------------------------------------ task


def _batch(task, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = task.image_size
    views = [torch.randn(n, 3, s, s, generator=g) for _ in range(3)]
    boxes = torch.tensor([[4.0, 6.0, 40.0, 44.0], [10.0, 2.0, 36.0, 50.0], [0.0, 0.0, 64.0, 64.0]]).expand(n, 3, 4)
    tokens = torch.zeros(n, task.context_length, dtype=torch.long)
    tokens[:, 0], tokens[:, 1], tokens[:, 2] = 49406, torch.arange(n) + 320, 49407
    return (*views, boxes), tokens


def test_training_step_trains_online_towers_and_heads_but_not_the_ema_or_patch_embedding():
    task = ACLIPTask(_tiny_cfg())
    out = task.training_step(_batch(task), StepContext(0, 10, 0))
    out.loss.backward()
    m = task.model
    assert m.visual.blocks[0].attn.qkv.weight.grad is not None and m.text.token_embedding.weight.grad is not None
    assert m.image_projection.grad is not None and m.logit_scale.grad is not None
    assert task.simclr_head[0].weight.grad is not None and task.byol_predictor[0].weight.grad is not None
    assert not m.visual.patch_embed.proj.weight.requires_grad  # frozen, MoCo v3 style
    assert all(p.grad is None for p in task.ema.parameters())
    assert {"clip_loss", "simclr_loss", "byol_loss"} <= set(out.logs)
    assert out.logs["online_tokens"] == 32  # 8 of 16 cells of 2x2 patches


@pytest.mark.parametrize("mode,tokens", [("attentive", 32), ("random", 32), ("none", 64)])
def test_mask_modes_set_the_online_token_budget(mode, tokens):
    task = ACLIPTask(_tiny_cfg(f"mask.mode={mode}", "objective.byol_weight=0", "objective.simclr_weight=0",
                               "objective.views=1"))
    out = task.training_step(_batch(task), StepContext(0, 10, 0))
    assert out.logs["online_tokens"] == tokens and torch.isfinite(out.loss)


def test_attentive_tokens_follow_the_ema_attention_mapped_into_the_view():
    task = ACLIPTask(_tiny_cfg())
    (v1, v2, ema, boxes), _ = _batch(task, n=2)
    score, _ = cls_attention_score(task.ema.visual, ema)
    keep = task.choose_tokens(score, boxes, view=1)
    expected = select_tokens(map_score_to_crop(score, boxes[:, 2], boxes[:, 1], 8), 0.5, 2)
    assert torch.equal(keep, expected)


def test_ema_update_follows_the_cosine_momentum_schedule():
    assert ema_momentum(0.996, 0.0) == pytest.approx(0.996)
    assert ema_momentum(0.996, 0.5) == pytest.approx(0.998)
    assert ema_momentum(0.996, 1.0) == 1.0
    task = ACLIPTask(_tiny_cfg("ema.momentum=0.9"))
    w_online = task.model.image_projection
    w_ema = task.ema.image_projection
    with torch.no_grad():
        w_online.add_(1.0)
    before = w_ema.clone()
    task.on_after_optimizer_step(StepContext(0, 10, 0))  # progress 0: momentum 0.9
    torch.testing.assert_close(w_ema, 0.9 * before + 0.1 * w_online)
    with torch.no_grad():
        task.model.logit_scale.fill_(7.0)
    task.on_after_optimizer_step(StepContext(10, 10, 0))  # progress 1: momentum 1, EMA frozen
    assert task.model.logit_scale.item() == pytest.approx(math.log(100))
    torch.testing.assert_close(w_ema, 0.9 * before + 0.1 * w_online)


def test_simclr_without_two_views_is_a_config_error():
    with pytest.raises(ConfigError, match="views"):
        ACLIPTask(_tiny_cfg("objective.views=1"))


# ------------------------------------------------------------------------------------------------ data


def test_zoom_out_box_covers_both_online_crops_and_stays_in_the_image():
    torch.manual_seed(0)
    for _ in range(50):
        a, b = (10, 30, 40, 20), (25, 5, 30, 30)
        top, left, h, w = union_zoom_out_box([a, b], height=80, width=70)
        assert 0 <= top <= 10 and 0 <= left <= 5 and top + h >= 55 and left + w >= 50
        assert top + h <= 80 and left + w <= 70


def test_views_transform_returns_three_views_and_their_boxes():
    from PIL import Image

    torch.manual_seed(0)
    img = Image.new("RGB", (48, 40), (120, 30, 200))
    v1, v2, ema, boxes = ACLIPViews(32, color_augment=True)(img)
    assert v1.shape == v2.shape == ema.shape == (3, 32, 32) and boxes.shape == (3, 4)
    (t1, l1, h1, w1), (t2, l2, h2, w2), (te, le, he, we) = boxes.tolist()
    assert te <= min(t1, t2) and le <= min(l1, l2)
    assert te + he >= max(t1 + h1, t2 + h2) and le + we >= max(l1 + w1, l2 + w2)
    assert te + he <= 40 and le + we <= 48


# ------------------------------------------------------------------------------------------------ recipes


def test_method_is_registered_with_its_recipes():
    spec = get_method("aclip")
    assert spec.area == "vl" and {"paper", "tiny"} <= set(spec.recipes())


def test_paper_recipe_is_vit_b16_with_the_spec_sizes():
    spec, cfg, _ = load_recipe("aclip/paper", [])
    assert cfg.model.arch == "vit_b16" and cfg.optim.weight_decay == 0.5 and tuple(cfg.optim.betas) == (0.9, 0.98)
    assert cfg.mask.ratio == 0.5 and cfg.mask.cell == 2 and cfg.ema.momentum == 0.996
    with torch.device("meta"):
        task = spec.build_task(cfg)
    m = task.model
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    assert round(count(m.visual) / 1e6, 1) == 85.8  # timm vit_base_patch16_224, num_classes=0
    assert round(count(m.text) / 1e6, 1) == 63.4  # OpenAI CLIP's 12-layer 512-wide text transformer
    assert round(count(m) / 1e6, 1) == 149.6
    assert [l.out_features for l in task.simclr_head if hasattr(l, "out_features")] == [4096, 4096, 256]
    assert [l.out_features for l in task.byol_projector if hasattr(l, "out_features")] == [4096, 256]
    assert task.byol_projector[0].bias is None
    assert [l.out_features for l in task.byol_predictor if hasattr(l, "out_features")] == [4096, 256]
    assert num_kept_cells((m.grid_size // 2) ** 2, cfg.mask.ratio) * 4 == 100


def test_tiny_recipe_trains_and_evaluates_end_to_end(tmp_path):
    from visionzoo.core.hub import from_pretrained
    from visionzoo.data.synth import get_synth
    from visionzoo.engine.trainer import fit

    get_synth("image-captions")(tmp_path / "data", n_train=64, n_val=32)
    spec, cfg, _ = load_recipe("aclip/tiny", [f"data.root={tmp_path / 'data'}", "train.progress=false",
                                              "train.logger=none", "train.max_steps=3", "train.batch_size=16"])
    result = fit(spec, cfg, tmp_path / "run", recipe_name="tiny")
    m = result.metrics
    assert {"zeroshot_top1", "i2t_r1", "t2i_r10", "ema_zeroshot_top1", "ema_i2t_r1"} <= set(m)
    model = from_pretrained(tmp_path / "run" / "model")
    torch.testing.assert_close(model.image_projection, result.task.model.image_projection)


def test_constant_ema_schedule_keeps_the_momentum_for_short_runs():
    task = ACLIPTask(_tiny_cfg("ema.momentum=0.9", "ema.schedule=constant"))
    with torch.no_grad():
        task.model.image_projection.add_(1.0)
    before = task.ema.image_projection.clone()
    task.on_after_optimizer_step(StepContext(10, 10, 0))  # progress 1: cosine would give momentum 1
    torch.testing.assert_close(task.ema.image_projection, 0.9 * before + 0.1 * task.model.image_projection)
