"""Resume must be exact: an interrupted-then-resumed run ends with the same weights as an uninterrupted one."""

import dataclasses

import lightning as L
import pytest
import torch

from visionzoo.engine.trainer import fit

from toy import TOY, ToyConfig


class Interrupt(Exception):
    pass


class InterruptAfter(L.Callback):
    def __init__(self, steps: int):
        self.steps = steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.steps:
            raise Interrupt()


def _cfg(**train):
    cfg = ToyConfig()
    cfg.train = dataclasses.replace(cfg.train, checkpoint_every_n_steps=1, **train)
    return cfg


def _weights(result):
    return {k: v.clone() for k, v in result.task.state_dict().items()}


# 96 samples / batch 8 = 12 steps per epoch, 2 epochs: step 7 is mid-epoch, step 12 the epoch's last batch
@pytest.mark.parametrize("stop_at", [7, 12])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, stop_at):
    full = fit(TOY, _cfg(), tmp_path / "full", evaluate=False)
    with pytest.raises(Interrupt):
        fit(TOY, _cfg(), tmp_path / "part", evaluate=False, callbacks=[InterruptAfter(stop_at)])
    ckpt = tmp_path / "part" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    resumed = fit(TOY, _cfg(), tmp_path / "part", evaluate=False, resume=ckpt)
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs after resume at step {stop_at}")


def test_resume_is_not_trivially_equal_without_rng_restore(tmp_path):
    """Guard that the exactness test can fail: a fresh run with another seed ends elsewhere."""
    a = fit(TOY, _cfg(), tmp_path / "a", evaluate=False)
    b = fit(TOY, _cfg(seed=1), tmp_path / "b", evaluate=False)
    diff = sum((a.task.state_dict()[k] - b.task.state_dict()[k]).abs().sum() for k in a.task.state_dict())
    assert diff > 0
