"""TwoStream-SLR network: heads, pyramid, output lengths, ensemble, losses, sizes (spec §1b)."""

from __future__ import annotations

import pytest
import torch

from visionzoo.core.errors import ConfigError
from visionzoo.methods.sign.twostream.heads import MaskedBatchNorm, VisualHead, sinusoidal_positions
from visionzoo.methods.sign.twostream.loss import self_distillation, twostream_loss
from visionzoo.methods.sign.twostream.model import TwoStreamSLR, TwoStreamSLRConfig

V = 9


def _tiny(**kw) -> TwoStreamSLR:
    cfg = dict(vocab_size=V, width=0.125, head_hidden=16, head_ff=32, keypoint_channels=5, freeze_rgb_block1=False)
    return TwoStreamSLR(TwoStreamSLRConfig(**{**cfg, **kw}))


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    return torch.randn(2, 3, 16, 32, 32), torch.rand(2, 5, 16, 16, 16), torch.tensor([16, 10])


@pytest.fixture(scope="module")
def two_stream_out(batch):
    torch.manual_seed(0)
    model = _tiny().train()
    return model, model(*batch)


def test_visual_head_shapes_and_feature_width():
    head = VisualHead(12, V, hidden=16, ff=32).eval()
    out = head(torch.randn(2, 7, 12), torch.tensor([7, 3]))
    assert out["logits"].shape == (2, 7, V) and out["gloss_feature"].shape == (2, 7, 16)
    assert head.feedforward.pwff_layer[0].kernel_size == (3,) and head.layer_norm.eps == 1e-6


def test_masked_batchnorm_uses_valid_frames_only_in_training():
    bn = MaskedBatchNorm(4).train()
    x = torch.randn(2, 5, 4)
    x[1, 3:] = 1000.0  # padding with huge values must not move the statistics
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    y = bn(x, mask)
    valid = x[mask]
    expected = (valid - valid.mean(0)) / torch.sqrt(valid.var(0, unbiased=False) + bn.norm.eps)
    torch.testing.assert_close(y[mask], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(y[1, 3:], x[1, 3:])  # padded frames pass through
    torch.testing.assert_close(bn.norm.running_mean, 0.1 * valid.mean(0), atol=1e-4, rtol=1e-4)


def test_sinusoidal_positions_alternate_sin_and_cos():
    table = sinusoidal_positions(5, 8)
    assert torch.allclose(table[:, 0], torch.sin(torch.arange(5.0)))
    assert torch.allclose(table[:, 1], torch.cos(torch.arange(5.0)))


def test_seven_heads_with_pyramid_lengths(two_stream_out):
    model, out = two_stream_out
    assert set(out.heads) == {"rgb", "keypoint", "joint", "rgb_aux1", "rgb_aux2", "keypoint_aux1", "keypoint_aux2"}
    for name, head in out.heads.items():
        t = 4 if "aux" not in name else 8  # main heads T/4, pyramid levels T/2
        assert head["logits"].shape == (2, t, V), name
        # floor(len * T_out / T_in): 10 frames of 16 -> 2 of 4 (main), 5 of 8 (aux)
        assert head["lengths"].tolist() == ([4, 2] if t == 4 else [8, 5]), name
    assert model.heads["joint"].in_dim == 2 * model.heads["rgb"].in_dim


def test_ensemble_is_log_of_summed_main_softmaxes(two_stream_out):
    _, out = two_stream_out
    total = sum(out.heads[n]["logits"].softmax(-1) for n in ("rgb", "keypoint", "joint"))
    torch.testing.assert_close(out.ensemble_log_probs, total.log())


@torch.no_grad()
def test_joint_features_are_keypoint_first_and_feed_slt(batch):
    model = _tiny().eval()
    feats = model.extract_features(*batch)
    c = model.heads["rgb"].in_dim
    assert feats["rgb"].shape == (2, 4, c) and feats["joint"].shape == (2, 4, 2 * c)
    torch.testing.assert_close(feats["joint"][..., :c], feats["keypoint"])
    torch.testing.assert_close(feats["joint"][..., c:], feats["rgb"])
    assert feats["lengths"].tolist() == [4, 2]
    out = model(*batch)
    joint = model.heads["joint"](feats["joint"], feats["lengths"])["logits"]
    torch.testing.assert_close(out.heads["joint"]["logits"], joint)


def test_single_stream_variants_build_one_stream_with_the_two_stream_names(batch):
    rgb = _tiny(streams="rgb", pyramid=False)
    assert set(rgb(batch[0], None, batch[2]).heads) == {"rgb"}
    kp = _tiny(streams="keypoint")
    assert set(kp(None, batch[1], batch[2]).heads) == {"keypoint", "keypoint_aux1", "keypoint_aux2"}
    two = _tiny()
    two_keys = set(two.state_dict())
    assert {k for k in rgb.state_dict()} <= two_keys  # stage 2 loads stage 1 by name
    assert {k for k in kp.state_dict() if not k.startswith("pyramids")} <= two_keys


def test_all_ctc_and_kl_terms_are_finite_and_weighted(batch, two_stream_out):
    model, out = two_stream_out
    targets, target_lengths = torch.tensor([[3, 4], [5, 5]]), torch.tensor([2, 1])
    loss, logs = twostream_loss(out, targets, target_lengths, model.config)
    assert len([k for k in logs if k.startswith("ctc_")]) == 7 and len([k for k in logs if k.startswith("kl_")]) == 3
    assert all(torch.isfinite(v) for v in logs.values())
    expected = sum(logs[f"ctc_{n}"] for n in ("rgb", "keypoint", "joint"))
    expected += 0.2 * (logs["ctc_rgb_aux1"] + logs["ctc_rgb_aux2"])
    expected += 0.5 * (logs["ctc_keypoint_aux1"] + logs["ctc_keypoint_aux2"])
    expected += logs["kl_rgb"] + logs["kl_keypoint"] + logs["kl_joint"]
    torch.testing.assert_close(loss.detach(), expected)
    no_distill = TwoStreamSLRConfig(**{**model.config.__dict__, "distill": False})
    assert not any(k.startswith("kl_") for k in twostream_loss(out, targets, target_lengths, no_distill)[1])


def test_sentence_weights_scale_each_sentences_ctc_and_kl_terms(two_stream_out):
    from visionzoo.core.errors import VisionZooError
    from visionzoo.nn.ctc import ctc_loss

    model, out = two_stream_out
    targets, target_lengths = torch.tensor([[3, 4], [5, 5]]), torch.tensor([2, 1])

    def terms(weight):
        return twostream_loss(out, targets, target_lengths, model.config, weight)

    plain, plain_logs = terms(None)
    ones, ones_logs = terms(torch.ones(2))
    torch.testing.assert_close(ones.detach(), plain.detach())
    first, first_logs = terms(torch.tensor([1.0, 0.0]))
    second, second_logs = terms(torch.tensor([0.0, 1.0]))
    mixed, _ = terms(torch.tensor([0.25, 1.0]))
    torch.testing.assert_close((first + second).detach(), plain.detach())
    torch.testing.assert_close(mixed.detach(), (0.25 * first + second).detach())
    # a term of weight (1, 0) is sentence 0's own loss over the batch size, from an independent per-sentence CTC
    per_sentence = ctc_loss(out.heads["rgb"]["logits"].float().log_softmax(-1), targets, out.heads["rgb"]["lengths"],
                            target_lengths, reduction="none")
    torch.testing.assert_close(first_logs["ctc_rgb"], per_sentence[0].detach() / 2)
    assert 0 < first_logs["kl_joint"] < plain_logs["kl_joint"]
    with pytest.raises(VisionZooError, match="one weight per sentence"):
        terms(torch.ones(3))


def test_distillation_teacher_is_detached():
    logits = {n: torch.randn(2, 3, V, requires_grad=True) for n in ("rgb", "keypoint", "joint")}
    from visionzoo.methods.sign.twostream.model import TwoStreamOutput

    heads = {n: {"logits": x, "lengths": torch.tensor([3, 3])} for n, x in logits.items()}
    ens = sum(x.softmax(-1) for x in logits.values()).log()
    kl = self_distillation(TwoStreamOutput(heads=heads, ensemble_log_probs=ens, lengths=torch.tensor([3, 3])))
    kl["rgb"].backward()
    assert logits["rgb"].grad.abs().sum() > 0
    assert logits["keypoint"].grad is None and logits["joint"].grad is None  # only through the student
    # batchmean: summed over frames and vocabulary, divided by B
    teacher = ens.detach().softmax(-1)
    manual = (teacher * (teacher.log() - logits["rgb"].detach().log_softmax(-1))).sum() / 2
    torch.testing.assert_close(kl["rgb"].detach(), manual)


def test_paper_size_network_matches_the_spec_layout_on_meta():
    tv = pytest.importorskip("torchvision.models.video")
    with torch.device("meta"):
        model = TwoStreamSLR(TwoStreamSLRConfig(vocab_size=1124)).eval()
        out = model(torch.empty(1, 3, 16, 224, 224), torch.empty(1, 79, 16, 112, 112), torch.tensor([16]))
        peer = tv.s3d(weights=None)
    assert [b for b in model.config.s3d("rgb").block_channels] == [64, 192, 480, 832]
    assert out.heads["rgb"]["logits"].shape == (1, 4, 1124) and out.heads["rgb_aux1"]["logits"].shape[1] == 8
    # the RGB stream is torchvision's S3D up to Mixed_4f (features[:13]), parameter for parameter
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.backbone.rgb_stream) == count(peer.features[:13])
    kp_extra = (79 - 3) * 64 * 7 * 7  # only the first (1, 7, 7) conv sees the 79 heatmap channels
    assert count(model.backbone.keypoint_stream) == count(peer.features[:13]) + kp_extra
    assert model.heads["joint"].fc1.in_features == 1664 and model.heads["rgb_aux1"].fc1.in_features == 192
    assert len(model.heads) == 7


def test_bn_momentum_reaches_every_backbone_and_pyramid_norm_but_not_the_heads():
    default, scratch = _tiny(), _tiny(bn_momentum=0.1)

    def momenta(model, part):
        return {m.momentum for m in getattr(model, part).modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}

    assert momenta(default, "backbone") == momenta(default, "pyramids") == {1e-3}  # S3D's, as the official code
    assert momenta(scratch, "backbone") == momenta(scratch, "pyramids") == {0.1}
    assert momenta(scratch, "heads") == momenta(default, "heads")


def test_config_rejects_an_unknown_stream_choice():
    with pytest.raises(ConfigError, match="streams"):
        TwoStreamSLRConfig(streams="depth")


def test_decoding_names_glosses_and_can_reproduce_the_official_double_collapse():
    from visionzoo.methods.sign.twostream.task import decode

    tokens = ["<blank>", "<pad>", "<unk>", "REGEN", "SONNE"]
    frames = [3, 0, 3, 4, 4]  # REGEN, blank, REGEN, SONNE, SONNE: two genuine REGEN in a row
    log_probs = torch.full((1, 5, 5), -20.0)
    log_probs[0, torch.arange(5), torch.tensor(frames)] = 0.0
    lengths = torch.tensor([5])
    assert decode(log_probs, lengths, tokens) == ["REGEN REGEN SONNE"]
    assert decode(log_probs, lengths, tokens, beam_size=3) == ["REGEN REGEN SONNE"]
    assert decode(log_probs, lengths, tokens, beam_size=3, collapse_twice=True) == ["REGEN SONNE"]


def test_rgb_stream_initialises_from_a_kylemin_kinetics_checkpoint(tmp_path):
    from visionzoo.methods.sign.twostream.task import load_kinetics_s3d
    from visionzoo.nn.s3d import S3D, S3DConfig

    k400 = S3D(S3DConfig(num_classes=4, width=0.125))  # all five blocks + classifier, as the K400 file
    flat = [name for block in k400.blocks for name in block._modules]
    port = {}
    for k, v in k400.state_dict().items():
        if k.startswith("head."):
            port["module.fc." + k[5:]] = v[..., None, None, None] if k.endswith("weight") else v
        else:
            _, _, name, rest = k.split(".", 3)
            port[f"module.base.{flat.index(name)}.{rest}"] = v
    torch.save(port, tmp_path / "S3D_kinetics400.pt")
    model = _tiny(keypoint_channels=5)
    load_kinetics_s3d(model, str(tmp_path / "S3D_kinetics400.pt"))
    ours = model.backbone.rgb_stream.state_dict()
    assert all(torch.equal(v, k400.state_dict()[k]) for k, v in ours.items())
