"""TinyMIM task behaviour: relations against timm, the frozen teacher, which weights learn, teachers from
folders and official checkpoints, the paper students, the two views, and one end-to-end run."""

import json

import pytest
import torch

from visionzoo.core.errors import ConfigError
from visionzoo.core.hub import from_pretrained, save_pretrained
from visionzoo.core.registry import create_model, get_method, load_recipe
from visionzoo.engine.task import StepContext
from visionzoo.methods.ssl.tinymim.model import (TeacherConfig, TinyMIM, TinyMIMConfig, load_teacher,
                                                 student_vit_config)
from visionzoo.methods.ssl.tinymim.views import TeacherStudentCollate
from visionzoo.nn.vit import VisionTransformer


def _teacher(**kw) -> VisionTransformer:
    torch.manual_seed(1)
    cfg = dict(img_size=16, patch_size=4, embed_dim=64, depth=3, num_heads=8, num_classes=0, pos_embed="sincos")
    return create_model("tinymim_vit", **{**cfg, **kw})


def _task(teacher_model=None, **sections) -> TinyMIM:
    cfg = TinyMIMConfig()
    for section, values in sections.items():
        for k, v in values.items():
            setattr(getattr(cfg, section), k, v)
    torch.manual_seed(0)
    return TinyMIM(cfg, teacher=teacher_model if teacher_model is not None else _teacher())


def _batch(n=4):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(n, 3, 16, 16, generator=g), torch.randn(n, 3, 16, 16, generator=g)), torch.zeros(n)


# ------------------------------------------------------------------------------------------------ relations
def test_teacher_qk_relation_matches_timm_attention_with_the_same_weights():
    timm = pytest.importorskip("timm")
    ours = _teacher().eval()
    peer = timm.models.vision_transformer.VisionTransformer(
        img_size=16, patch_size=4, embed_dim=64, depth=3, num_heads=8, num_classes=0).eval()
    peer.load_state_dict(ours.state_dict())
    captured = {}
    attn = peer.blocks[1].attn
    attn.fused_attn = False  # timm then materialises the softmax and passes it through attn_drop
    attn.attn_drop.register_forward_hook(lambda m, inp, out: captured.setdefault("attn", inp[0]))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        peer(x)
        qkv = ours.forward_qkv(x, block=2)
    from visionzoo.methods.ssl.tinymim.loss import relation_logits

    torch.testing.assert_close(relation_logits(qkv.q, qkv.k).softmax(-1), captured["attn"], atol=1e-5, rtol=1e-4)


def test_forward_blocks_returns_the_hidden_state_after_that_block():
    vit, x = _teacher().eval(), torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(vit.forward_blocks(x, 2), vit.forward_features(x, return_taps=[2]).taps[2])


def test_forward_qkv_never_runs_later_blocks():
    vit, ran = _teacher(), []
    for i, block in enumerate(vit.blocks, start=1):
        block.register_forward_hook(lambda m, inp, out, i=i: ran.append(i))
    vit.forward_qkv(torch.randn(1, 3, 16, 16), block=2)
    assert ran == [1]


# ------------------------------------------------------------------------------------------------ task
def test_student_relation_block_uses_the_teachers_head_count_by_default():
    task = _task()
    assert task.relation_heads == 8 and task.student.config.num_heads == 4
    assert _task(model={"relation_heads": 2}).relation_heads == 2


def test_relation_heads_that_do_not_divide_the_student_width_are_rejected():
    with pytest.raises(ConfigError, match="relation_heads=8"):
        _task(model={"embed_dim": 36, "num_heads": 4})


def test_student_and_teacher_must_see_the_same_tokens():
    with pytest.raises(ConfigError, match="patches"):
        _task(model={"patch_size": 8})


def test_teacher_block_out_of_range_is_rejected():
    with pytest.raises(ConfigError, match="teacher.block=4"):
        _task(teacher={"block": 4})


def test_relation_loss_trains_only_the_students_path_to_its_last_qkv():
    task = _task()
    task.train()
    out = task.training_step(_batch(), StepContext(0, 10, 0))
    out.loss.backward()
    last = task.student.blocks[-1]
    assert last.attn.qkv.weight.grad is not None and task.student.blocks[0].mlp.fc1.weight.grad is not None
    # as in the official code: the relation block's proj, MLP, norm2 and the final norm never enter the loss
    assert last.attn.proj.weight.grad is None and last.mlp.fc1.weight.grad is None
    assert task.student.norm.weight.grad is None
    assert all(p.grad is None for p in task.teacher.parameters())
    assert set(out.logs) == {"kl_qk", "kl_vv"}


def test_teacher_stays_frozen_in_eval_mode_and_out_of_the_optimizer():
    task = _task()
    task.train()
    assert not task.teacher.training and task.student.training
    optimised = {id(p) for g in task.param_groups(0.05) for p in g["params"]}
    assert optimised.isdisjoint(id(p) for p in task.teacher.parameters())
    assert optimised == {id(p) for p in task.student.parameters() if p.requires_grad}


@pytest.mark.parametrize("target", ["feature", "cls"])
def test_feature_and_cls_ablations_regress_teacher_tokens_through_a_projection_not_exported(target):
    task = _task(objective={"target": target})
    out = task.training_step(_batch(), StepContext(0, 10, 0))
    out.loss.backward()
    assert task.proj.weight.grad is not None and task.proj.out_features == 64
    assert task.export_model() is task.student and f"{target}_l1" in out.logs


def test_teacher_block_choice_changes_the_relation_target():
    a = _task().training_step(_batch(), StepContext(0, 10, 0)).loss
    b = _task(teacher={"block": 1}).training_step(_batch(), StepContext(0, 10, 0)).loss
    assert not torch.allclose(a, b)


# ------------------------------------------------------------------------------------------------ teachers
def test_teacher_from_our_mae_run_folder_is_its_encoder(tmp_path):
    mae = create_model("mae_vit", img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=4,
                       decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2)
    save_pretrained(mae, tmp_path / "mae")
    teacher = load_teacher(TeacherConfig(pretrained=str(tmp_path / "mae")))
    assert isinstance(teacher, VisionTransformer) and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    torch.testing.assert_close(teacher.blocks[0].attn.qkv.weight, mae.encoder.blocks[0].attn.qkv.weight)


def test_teacher_from_an_official_mae_checkpoint(tmp_path, monkeypatch):
    import dataclasses

    from visionzoo.nn import vit as vit_module

    small = dataclasses.replace(vit_module.VIT_CONFIGS["vit_tiny_patch16_224"], img_size=32, depth=2)
    monkeypatch.setitem(vit_module.VIT_CONFIGS, "vit_tiny_patch16_224", small)
    source = VisionTransformer(small, num_classes=0, pos_embed="sincos")
    official = {"model": {**source.state_dict(), "mask_token": torch.zeros(1, 1, 512),
                          "decoder_embed.weight": torch.zeros(512, 192)}, "epoch": 799}
    torch.save(official, tmp_path / "mae_pretrain.pth")
    teacher = load_teacher(TeacherConfig(mae_checkpoint=str(tmp_path / "mae_pretrain.pth"),
                                         arch="vit_tiny_patch16_224"))
    torch.testing.assert_close(teacher.norm.weight, source.norm.weight)
    torch.testing.assert_close(teacher.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)


def test_teacher_needs_exactly_one_source(tmp_path):
    with pytest.raises(ConfigError, match="exactly one"):
        load_teacher(TeacherConfig())
    with pytest.raises(ConfigError, match="exactly one"):
        load_teacher(TeacherConfig(pretrained="a", mae_checkpoint="b"))
    with pytest.raises(ConfigError, match="folder not found"):
        load_teacher(TeacherConfig(pretrained=str(tmp_path / "missing")))


# ------------------------------------------------------------------------------------------------ paper students
@pytest.mark.parametrize("size, params_m, heads, relation_heads",
                         [("vit_tiny", 5.7, 6, 12), ("vit_small", 22.1, 6, 12), ("vit_base", 86.6, 12, 16)])
def test_paper_students_have_the_published_parameter_counts(size, params_m, heads, relation_heads):
    spec, cfg, _ = load_recipe("tinymim/paper", [f"model.size={size}"])
    vit, rel = student_vit_config(cfg.model)
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = VisionTransformer(vit, num_classes=1000)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == params_m
    assert (vit.num_heads, rel, vit.img_size, vit.patch_size) == (heads, relation_heads, 224, 16)


def test_paper_recipe_distils_vit_b_from_mae_vit_l_block_18():
    _, cfg, _ = load_recipe("tinymim/paper")
    assert (cfg.model.size, cfg.teacher.arch, cfg.teacher.block) == ("vit_base", "vit_large_patch16_224", 18)
    assert cfg.optim.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert cfg.train.batch_size * int(cfg.train.devices) * cfg.train.num_nodes == 4096


# ------------------------------------------------------------------------------------------------ data
def test_views_share_the_crop_and_differ_by_the_students_colour_jitter():
    samples = [(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8), i) for i in range(6)]
    torch.manual_seed(0)
    (t0, s0), labels = TeacherStudentCollate(jitter=0.0)(samples)
    torch.manual_seed(0)
    (t1, s1), _ = TeacherStudentCollate(jitter=0.4)(samples)
    torch.testing.assert_close(t0, s0)  # no jitter: identical views
    torch.testing.assert_close(t0, t1)  # same draws: same crop for the teacher
    assert not torch.allclose(t1, s1) and labels.tolist() == list(range(6))


# ------------------------------------------------------------------------------------------------ end to end
def _tiny_image_folder(root, per_class=(16, 4)):
    """root/{train,val}/<class>/<png>: two classes of 16 px images (dark vs bright), enough for every metric."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val"), per_class):
        for c in range(2):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 128, (16, 16, 3)) + 127 * c
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / f"c{c}" / f"{i}.png")


def test_tiny_recipe_trains_evaluates_and_exports_a_plain_vit(tmp_path):
    from visionzoo.engine.trainer import fit

    _tiny_image_folder(tmp_path / "digits")
    save_pretrained(_teacher(), tmp_path / "teacher")
    spec, cfg, _ = load_recipe("tinymim/tiny", [
        f"data.root={tmp_path / 'digits'}", f"teacher.pretrained={tmp_path / 'teacher'}", "train.max_steps=3",
        "train.batch_size=8", "train.progress=false", "train.logger=none", "eval.linear_probe_epochs=2", "eval.few_label_epochs=1"])
    assert get_method("tinymim") is spec
    result = fit(spec, cfg, tmp_path / "run")
    assert set(result.metrics) == {"knn", "linear", "fewlabel_ft"}
    assert json.loads((tmp_path / "run" / "eval.json").read_text()) == result.metrics
    student = from_pretrained(tmp_path / "run" / "model")
    assert isinstance(student, VisionTransformer) and student.config.embed_dim == 32
    torch.testing.assert_close(student.blocks[0].attn.qkv.weight, result.task.student.blocks[0].attn.qkv.weight)
