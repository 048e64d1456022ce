"""SlimCLR task behaviour: slow start, re-weighting, EMA key encoder, queue, recipes, end to end."""

import json

import pytest
import torch

from visionzoo.core.registry import get_method, load_recipe
from visionzoo.engine.task import StepContext
from visionzoo.methods.ssl.slimclr.model import SlimCLR, SlimCLRConfig, switchable_linear_probe
from visionzoo.nn.slimmable import count_params_at_width


def _task(**objective):
    cfg = SlimCLRConfig()
    cfg.model.head_dim, cfg.model.base_width = 16, 8
    cfg.objective.queue_size = 64
    for k, v in objective.items():
        setattr(cfg.objective, k, v)
    return SlimCLR(cfg)


def _batch(n=8):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(n, 3, 16, 16, generator=g), torch.randn(n, 3, 16, 16, generator=g)), torch.zeros(n)


def test_slow_start_trains_only_the_full_width_then_all_with_reweighting():
    task = _task(slow_start_fraction=0.5)
    widths, weights, distill = task.trained_widths(StepContext(10, 100, 0))
    assert widths == [1.0] and weights == [1.0] and not distill
    widths, weights, distill = task.trained_widths(StepContext(50, 100, 0))
    assert widths == [1.0, 0.5, 0.25] and weights == [1.75, 1.0, 1.0] and distill


def test_naive_mode_trains_every_width_equally_from_the_start():
    widths, weights, distill = _task(mode="naive").trained_widths(StepContext(0, 100, 0))
    assert widths == [1.0, 0.5, 0.25] and weights == [1.0, 1.0, 1.0] and not distill


def test_sub_width_weights_receive_no_gradient_during_slow_start():
    task = _task()
    out = task.training_step(_batch(), StepContext(0, 100, 0))
    out.loss.backward()
    bn = task.encoder_q.backbone.bn1.bn
    assert bn[0].weight.grad is not None and bn[1].weight.grad is None and bn[2].weight.grad is None
    assert set(out.logs) >= {"nce_w1", "widths_trained"} and "kd_w0.5" not in out.logs


def test_after_slow_start_the_loss_includes_distillation_for_sub_widths():
    task = _task()
    out = task.training_step(_batch(), StepContext(80, 100, 0))
    assert {"nce_w1", "nce_w0.5", "kd_w0.5", "kd_w0.25"} <= set(out.logs)
    out.loss.backward()
    assert task.encoder_q.backbone.bn1.bn[2].weight.grad is not None


def test_key_encoder_is_an_ema_and_queue_advances_after_the_optimizer_step():
    task = _task(momentum=0.9)
    before_k = [p.clone() for p in task.encoder_k.parameters()]
    with torch.no_grad():
        for p in task.encoder_q.parameters():
            p.add_(1.0)
    queue_before = task.queue.clone()
    task.training_step(_batch(8), StepContext(0, 100, 0))
    assert torch.equal(task.queue, queue_before)  # the queue is used by backward: it must not change yet
    task.on_after_optimizer_step(StepContext(1, 100, 0))
    for pk, pk0, pq in zip(task.encoder_k.parameters(), before_k, task.encoder_q.parameters()):
        torch.testing.assert_close(pk, 0.9 * pk0 + 0.1 * pq)
    assert int(task.queue_ptr) == 8 and not torch.equal(task.queue[:8], queue_before[:8])
    torch.testing.assert_close(task.queue[8:], queue_before[8:])


def test_key_encoder_is_not_optimised():
    task = _task()
    ids = {id(p) for g in task.param_groups(1e-4) for p in g["params"]}
    assert not any(id(p) in ids for p in task.encoder_k.parameters())
    assert all(id(p) in ids for p in task.encoder_q.parameters())


def test_paper_recipe_builds_resnet50_with_the_spec_parameter_counts():
    spec, cfg, _ = load_recipe("slimclr/paper")
    assert cfg.model.widths == [1.0, 0.75, 0.5, 0.25] and cfg.objective.queue_size == 65536
    model = torch.device("meta")
    with model:
        task = spec.build_task(cfg)
    backbone = task.encoder_q.backbone
    counts = [round(count_params_at_width(backbone, w) / 1e6, 1) for w in cfg.model.widths]
    assert counts == [23.5, 13.2, 5.9, 1.5]


def test_switchable_linear_probe_learns_separable_features():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    feats = {1.0: torch.randn(200, 8, generator=g) + 3 * torch.nn.functional.one_hot(y, 8).float(),
             0.5: torch.randn(200, 4, generator=g) + 3 * torch.nn.functional.one_hot(y, 4).float()}
    acc = switchable_linear_probe(feats, y, feats, y, [1.0, 0.5], epochs=30, lr=0.05)
    assert acc[1.0] > 90 and acc[0.5] > 90


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from visionzoo.data.synth import get_synth
    from visionzoo.engine.trainer import fit

    root = tmp_path_factory.mktemp("digits")
    get_synth("digits")(root, size=16)
    spec, cfg, _ = load_recipe("slimclr/tiny", [f"data.root={root}", "train.max_steps=6", "train.batch_size=32",
                                                "train.val_every_n_epochs=1", "train.progress=false",
                                                "eval.linear_probe_epochs=2", "objective.queue_size=64"])
    run = tmp_path_factory.mktemp("run")
    return root, run, fit(spec, cfg, run, recipe_name="tiny")


def test_training_writes_a_complete_run_folder(tiny_run):
    _, run, result = tiny_run
    for name in ("config.yaml", "metrics.csv", "metrics.json", "curves.png", "report.md", "eval.json",
                 "model/config.json", "model/model.safetensors", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "eval.json").read_text())
    assert set(metrics) == {f"{kind}_w{w:g}" for kind in ("knn", "linear") for w in (1.0, 0.5, 0.25)}
    assert all(0.0 <= v <= 100.0 for v in metrics.values())
    assert "knn_w0.25" in (run / "report.md").read_text()


def test_cli_eval_and_predict_on_the_trained_run(tiny_run, capsys):
    from visionzoo.cli import main

    root, run, result = tiny_run
    assert main(["eval", str(run), f"data.root={root}", "eval.linear_probe_epochs=2"]) == 0
    assert "knn_w0.5" in capsys.readouterr().out
    images = sorted((root / "val" / "7").glob("*.png"))[:2]
    assert main(["predict", "slimclr", *map(str, images), "--model", str(run / "model"),
                 "--bank", str(root / "train")]) == 0
    out = capsys.readouterr().out
    assert images[0].name in out and "width 0.25" in out


def test_resume_from_the_run_checkpoint_continues_the_step_count(tiny_run, tmp_path):
    from visionzoo.engine.trainer import fit

    root, run, _ = tiny_run
    spec, cfg, _ = load_recipe("slimclr/tiny", [f"data.root={root}", "train.max_steps=8", "train.batch_size=32",
                                                "train.progress=false", "eval.linear_probe_epochs=1",
                                                "objective.queue_size=64", "train.val_every_n_epochs=100"])
    result = fit(spec, cfg, tmp_path, resume=run / "checkpoints" / "last.ckpt")
    assert "optimiser steps: 8" in (tmp_path / "report.md").read_text()


def test_method_is_registered_with_its_recipes():
    spec = get_method("slimclr")
    assert spec.recipes() == ["paper", "tiny"] and spec.status == "proxy reproduced"


def test_convert_command_turns_an_official_checkpoint_into_a_pretrained_folder(tmp_path):
    """A synthetic checkpoint in the official MoCo v2 layout (module.encoder_q/k, queue (D, K))."""
    from visionzoo.cli import main
    from visionzoo.core.hub import from_pretrained
    from visionzoo.core.registry import create_model

    with torch.device("cpu"):
        ours = create_model("slimclr_resnet50", widths=(1.0, 0.75, 0.5, 0.25), head_dim=128)
    official = {}
    for k, v in ours.state_dict().items():
        name = k.replace("backbone.", "").replace("head.", "fc.")
        official[f"module.encoder_q.{name}"] = v
        official[f"module.encoder_k.{name}"] = torch.zeros_like(v)
    official["module.queue"] = torch.randn(128, 16)
    official["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    torch.save({"epoch": 200, "arch": "resnet50", "state_dict": official}, tmp_path / "ckpt.pth.tar")
    assert main(["convert", "slimclr", str(tmp_path / "ckpt.pth.tar"), str(tmp_path / "out")]) == 0
    loaded = from_pretrained(tmp_path / "out")
    for k, v in ours.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
