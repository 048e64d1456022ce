"""The keypoint CTC stand-in for TwoStream-SLR (``cslr.backend: standin``): locality, padding, loss weights,
and the whole registered pipeline run through ``visionzoo train``'s ``fit`` with it."""

from __future__ import annotations

import pytest
import torch

from visionzoo.methods.sign.crosslingual.cslr_standin import (
    KeypointCTC, StandinCSLRBackend, StandinCSLRTask, StandinCSLRConfig, normalise_sequence,
)


def random_keypoints(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    kps = torch.rand(batch, frames, 133, 3, generator=g) * 100
    kps[..., 5, :2] = torch.tensor([60.0, 40.0])  # shoulders fixed: width 20 px
    kps[..., 6, :2] = torch.tensor([40.0, 40.0])
    return kps


def test_normalisation_ignores_padding_and_zeroes_it():
    kps = random_keypoints(1, 20)
    padded = torch.cat([kps, torch.full((1, 12, 133, 3), 7.0)], 1)
    alone = normalise_sequence(kps, torch.tensor([20]))
    within = normalise_sequence(padded, torch.tensor([20]))
    torch.testing.assert_close(within[:, :20], alone)
    assert within[:, 20:].abs().sum() == 0
    # centred on the shoulders' midpoint (50, 40), in shoulder widths (20 px): the right shoulder is at (-0.5, 0)
    from visionzoo.data.keypoints import NLA_SLR_63_INDICES

    col = list(NLA_SLR_63_INDICES).index(6)
    torch.testing.assert_close(alone[0, 0, 2 * col: 2 * col + 2], torch.tensor([-0.5, 0.0]))


def test_an_output_step_sees_only_its_local_window():
    """The reason for the stand-in: a frame changes only the steps whose 15-frame window covers it."""
    torch.manual_seed(0)
    model = KeypointCTC(vocab_size=7, hidden=16, kernel=3).eval()
    kps, lengths = random_keypoints(1, 80), torch.tensor([80])
    changed = kps.clone()
    changed[0, 40, 100, :2] += 50.0  # one hand point of frame 40
    with torch.no_grad():
        a, steps = model(kps, lengths)
        b, _ = model(changed, lengths)
    assert a.shape == (1, 20, 7) and steps.tolist() == [20]
    moved = ((a - b).abs().amax(-1) > 1e-6)[0].nonzero().flatten().tolist()
    assert moved and min(moved) >= 40 // 4 - 2 and max(moved) <= 40 // 4 + 2
    assert torch.allclose(a.exp().sum(-1), torch.ones(1, 20))


def test_sentence_weights_remove_a_sentences_loss():
    torch.manual_seed(0)
    task = StandinCSLRTask(StandinCSLRConfig(), vocab_size=6)
    batch = {"keypoints": random_keypoints(2, 24), "keypoint_lengths": torch.tensor([24, 20]),
             "gloss_ids": torch.tensor([[1, 2, 3], [4, 5, 0]]), "gloss_lengths": torch.tensor([3, 2])}
    relabelled = {**batch, "gloss_ids": torch.tensor([[1, 2, 3], [2, 2, 0]])}

    def loss(b) -> float:
        return float(task.training_step(b, None).loss.detach())

    plain = loss(batch)
    assert plain != pytest.approx(loss(relabelled))
    w = torch.tensor([1.0, 0.0])
    kept = loss({**batch, "sample_weight": w})
    assert kept == pytest.approx(loss({**relabelled, "sample_weight": w}))
    assert 0 < kept < plain


def test_backend_trains_through_fit_and_returns_per_sentence_posteriors(tmp_path):
    from visionzoo.data.synth.synthsign import write_synthsign

    write_synthsign(tmp_path / "c", format="csl-daily", resolution=32, sentences=12, vocab_size=8, num_signers=2,
                    frames_per_sign=4)
    backend = StandinCSLRBackend(["model.hidden=16"])
    trained = backend.train(str(tmp_path / "c"), "csl-daily", tmp_path / "run", seed=0, overrides=["train.max_steps=5"])
    assert trained.config.model.hidden == 16 and trained.config.train.max_steps == 5
    assert (tmp_path / "run" / "config.yaml").is_file()
    vocab = backend.vocabulary(trained)
    posts = backend.posteriors(trained, "train")
    assert len(posts) == len(trained.datamodule.sets["train"])
    for p in posts:
        assert p.log_probs.shape == ((p.num_frames + 3) // 4, len(vocab))
        assert set(p.glosses) <= set(vocab.tokens)
    with pytest.raises(Exception, match="hidden"):
        StandinCSLRBackend(["model.hiden=16"]).load(str(tmp_path / "c"), "csl-daily", 0)


def test_the_registered_pipeline_runs_end_to_end_with_the_standin(tmp_path):
    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.trainer import fit

    torch.set_num_threads(1)
    overrides = [f"data.root={tmp_path}/target", f"data.aux.root={tmp_path}/aux", f"data.work_dir={tmp_path}/work",
                 "data.synthsign.sentences=20", "data.aux.synthsign.sentences=40", "data.synthsign.resolution=32",
                 "data.aux.synthsign.resolution=32", "cslr.language_overrides=[train.max_steps=40]",
                 "islr.standin_epochs=5", "train.max_steps=40", "train.progress=false", "joint.aux_loss_weight=0.5"]
    spec, cfg, recipe = load_recipe("crosslingual/tiny_proxy", overrides)
    assert cfg.cslr.backend == "standin"
    metrics = fit(spec, cfg, tmp_path / "run", recipe_name=recipe).metrics
    assert 0 <= metrics["dev/wer"] <= 100 and 0 <= metrics["test/wer"] <= 100
    assert 0 <= metrics["dict_target/boundary_iou"] <= 1 and metrics["joint/aux_sentences"] > 0
    assert "mapping/precision" in metrics or metrics["mapping/mapped"] == 0
    assert (tmp_path / "work" / "mapping" / "mapping.csv").is_file()


def test_forward_keeps_every_tensor_on_the_input_device():
    """A CPU-made index tensor broke training on CUDA; the meta device catches that on a CPU machine."""
    kps, lengths = torch.rand(2, 24, 133, 3, device="meta"), torch.tensor([24, 20], device="meta")
    log_probs, steps = KeypointCTC(vocab_size=6, hidden=16).to("meta")(kps, lengths)
    assert log_probs.device.type == steps.device.type == "meta" and log_probs.shape == (2, 6, 6)
