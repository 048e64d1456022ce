"""CLIP training method: symmetric InfoNCE, temperature clamp, gather, evaluation, recipes, pretrained load."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from visionzoo.core.errors import CheckpointError
from visionzoo.core.registry import get_method, load_recipe
from visionzoo.engine.task import StepContext
from visionzoo.methods.vl.clip.model import (CLIPTask, CLIPTrainConfig, clip_contrastive_loss, gather_with_grad)
from visionzoo.metrics.zero_shot import image_text_retrieval, zero_shot_accuracy, zero_shot_classifier
from visionzoo.nn.clip import to_openai_state_dict


def _unit(n, e, seed):
    return F.normalize(torch.randn(n, e, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_loss_equals_a_hand_computed_symmetric_infonce():
    img, txt = _unit(3, 4, 0), _unit(3, 4, 1)
    t = torch.tensor(math.log(10.0))
    loss, logits = clip_contrastive_loss(img, txt, t)
    s = 10.0 * img @ txt.t()
    i2t = -sum(s[i, i] - torch.logsumexp(s[i], 0) for i in range(3)) / 3  # each image picks its caption
    t2i = -sum(s[i, i] - torch.logsumexp(s[:, i], 0) for i in range(3)) / 3  # each caption picks its image
    torch.testing.assert_close(loss, (i2t + t2i) / 2)
    torch.testing.assert_close(logits, s)


def test_loss_is_lower_for_aligned_pairs_and_trains_the_temperature():
    img = _unit(8, 16, 0)
    t = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    aligned, _ = clip_contrastive_loss(img, img, t)
    shuffled, _ = clip_contrastive_loss(img, img.roll(1, 0), t)
    assert aligned < shuffled
    aligned.backward()
    assert t.grad is not None and t.grad < 0  # aligned pairs: a sharper softmax lowers the loss


def test_gather_without_a_process_group_is_the_identity_on_rank_zero():
    x = torch.randn(4, 3)
    gathered, rank = gather_with_grad(x)
    assert gathered is x and rank == 0


def _task():
    cfg = CLIPTrainConfig()
    return CLIPTask(cfg)


def _batch(task, n=6):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, task.image_size, task.image_size, generator=g)
    tokens = torch.zeros(n, task.context_length, dtype=torch.long)
    tokens[:, 0] = 49406
    tokens[:, 1] = torch.arange(n) + 320
    tokens[:, 2] = 49407
    return images, tokens


def test_training_step_gives_gradients_to_both_towers_and_the_temperature():
    task = _task()
    out = task.training_step(_batch(task), StepContext(0, 10, 0))
    out.loss.backward()
    m = task.model
    assert m.visual.conv1.weight.grad is not None and m.text.token_embedding.weight.grad is not None
    assert m.logit_scale.grad is not None
    assert {"logit_scale", "i2t_batch_acc"} <= set(out.logs)


def test_logit_scale_is_clamped_to_100_after_the_optimizer_step():
    task = _task()
    with torch.no_grad():
        task.model.logit_scale.fill_(7.0)
    task.on_after_optimizer_step(StepContext(1, 10, 0))
    assert task.model.logit_scale.item() == pytest.approx(math.log(100))
    with torch.no_grad():
        task.model.logit_scale.fill_(3.0)
    task.on_after_optimizer_step(StepContext(2, 10, 0))
    assert task.model.logit_scale.item() == 3.0


def test_zero_shot_averages_unit_template_embeddings_per_class():
    table = {"a x": [1.0, 0.0], "the x": [3.0, 1.0], "a y": [0.0, 1.0], "the y": [0.0, 2.0]}
    encode = lambda prompts: torch.tensor([table[p] for p in prompts])  # noqa: E731
    cls = zero_shot_classifier(encode, ["x", "y"], ["a {}", "the {}"])
    x_mean = F.normalize(F.normalize(torch.tensor([[1.0, 0.0], [3.0, 1.0]]), dim=-1).mean(0), dim=0)
    torch.testing.assert_close(cls[0], x_mean)
    torch.testing.assert_close(cls[1], torch.tensor([0.0, 1.0]))
    acc = zero_shot_accuracy(torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 0.0]]), cls, torch.tensor([0, 1, 1]))
    assert acc["top1"] == pytest.approx(200 / 3)


def test_retrieval_is_perfect_for_identical_embeddings_and_counts_misses():
    e = _unit(20, 8, 0)
    m = image_text_retrieval(e, e)
    assert m["i2t_r1"] == 100.0 and m["t2i_r1"] == 100.0
    m = image_text_retrieval(e, e.roll(1, 0))  # every caption now belongs to the next image
    assert m["i2t_r1"] == 0.0 and m["t2i_r1"] == 0.0


def test_method_is_registered_with_its_recipes():
    spec = get_method("clip")
    assert spec.area == "vl" and spec.recipes() == ["paper", "tiny"]


def test_paper_recipe_is_vit_b32_with_a_pretrained_path():
    spec, cfg, _ = load_recipe("clip/paper", ["model.pretrained="])
    assert cfg.model.arch == "vit_b32" and tuple(cfg.optim.betas) == (0.9, 0.98) and cfg.train.strategy == "ddp"
    with torch.device("meta"):
        task = spec.build_task(cfg)
    n = sum(p.numel() for p in task.model.parameters())
    assert round(n / 1e6, 1) == 151.3  # open_clip's model_profile: ViT-B/32 151.3M


def test_pretrained_openai_layout_file_is_loaded_for_fine_tuning(tmp_path):
    from safetensors.torch import save_file

    source = _task().model  # random tiny weights, written under OpenAI's key names
    sd = {k: v.clone().half() for k, v in to_openai_state_dict(source).items()}  # OpenAI ships fp16
    save_file(sd, str(tmp_path / "openai.safetensors"))
    cfg = CLIPTrainConfig()
    cfg.model.pretrained = str(tmp_path / "openai.safetensors")
    task = CLIPTask(cfg)
    for k, v in source.state_dict().items():
        torch.testing.assert_close(task.model.state_dict()[k], v.half().float(), msg=k)


def test_pretrained_file_of_another_architecture_is_a_checkpoint_error(tmp_path):
    from safetensors.torch import save_file

    sd = to_openai_state_dict(_task().model)
    sd["visual.proj"] = torch.zeros(64, 7)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "bad.safetensors"))
    cfg = CLIPTrainConfig()
    cfg.model.pretrained = str(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="bad.safetensors: shape mismatch"):
        CLIPTask(cfg)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from visionzoo.data.synth import get_synth
    from visionzoo.engine.trainer import fit

    root = tmp_path_factory.mktemp("captions")
    get_synth("image-captions")(root, n_train=64, n_val=20, shard_size=32)
    spec, cfg, _ = load_recipe("clip/tiny", [f"data.root={root}", "data.format=tar", "train.max_steps=3",
                                             "train.batch_size=16", "train.progress=false"])
    run = tmp_path_factory.mktemp("run")
    return run, fit(spec, cfg, run, recipe_name="tiny")


def test_training_writes_a_run_folder_with_retrieval_and_zero_shot_metrics(tiny_run):
    run, result = tiny_run
    for name in ("model/config.json", "model/model.safetensors", "eval.json", "report.md", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "eval.json").read_text())
    assert {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "zeroshot_top1"} <= set(metrics)
    assert metrics["zeroshot_chance"] == pytest.approx(100 / 6) and all(0 <= v <= 100 for v in metrics.values())


def test_trained_model_reloads_with_from_pretrained(tiny_run):
    from visionzoo.core.hub import from_pretrained

    run, result = tiny_run
    loaded = from_pretrained(run / "model")
    for k, v in result.task.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
