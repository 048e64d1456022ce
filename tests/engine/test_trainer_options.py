"""Trainer wiring: loggers, gradient accumulation, run folder contents, precision flags."""

import dataclasses

import pytest

from visionzoo.engine.trainer import fit

from toy import TOY, ToyConfig


def _cfg(**train):
    cfg = ToyConfig()
    cfg.train = dataclasses.replace(cfg.train, **train)
    return cfg


def test_gradient_accumulation_halves_the_optimizer_steps(tmp_path):
    one = fit(TOY, _cfg(max_epochs=1), tmp_path / "a", evaluate=False)
    two = fit(TOY, _cfg(max_epochs=1, accumulate_grad_batches=2), tmp_path / "b", evaluate=False)
    assert "optimiser steps: 12" in (tmp_path / "a" / "report.md").read_text()
    assert "optimiser steps: 6" in (tmp_path / "b" / "report.md").read_text()
    assert one.run_dir != two.run_dir


def test_both_loggers_write_csv_and_tensorboard_events(tmp_path):
    fit(TOY, _cfg(logger="both", log_every_n_steps=2), tmp_path, evaluate=False)
    assert list((tmp_path / "logs").rglob("metrics.csv"))
    assert list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("kind,step,epoch")
    val_rows = [r for r in rows if r.startswith("val,")]
    assert [r.split(",")[1] for r in val_rows] == ["12", "24"]  # one row per validation, at its own step
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_bf16_mixed_precision_runs_on_cpu(tmp_path):
    result = fit(TOY, _cfg(precision="bf16-mixed", max_epochs=1), tmp_path, evaluate=False)
    assert (tmp_path / "model" / "model.safetensors").is_file() and result.task is not None


def test_unknown_precision_fails_before_training(tmp_path):
    with pytest.raises(Exception, match="precision|Precision"):
        fit(TOY, _cfg(precision="7-bit"), tmp_path, evaluate=False)
