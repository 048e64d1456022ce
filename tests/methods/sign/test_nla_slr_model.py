"""VKNet's structure (streams, laterals, heads, ensembles), the paper-size parameter count, and one training step."""

import pytest
import torch

from visionzoo.core.errors import ConfigError
from visionzoo.engine import StepContext
from visionzoo.methods.sign.nla_slr.loss import ema_beta
from visionzoo.methods.sign.nla_slr.model import VKNet, VKNetConfig, ensemble
from visionzoo.methods.sign.nla_slr.task import NLASLR, NLASLRConfig
from visionzoo.nn.s3d import S3D, S3DConfig, block_channels

TINY = dict(width=0.125, frames_high=16, frames_low=8, rgb_size=64, heatmap_size=32, raw_size=64, heatmap_sigma=2.0,
            channels_last=False)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _inputs(b=2, t=16, s=32, k=63, grad=False):
    g = torch.Generator().manual_seed(0)
    x = [torch.randn(b, 3, t, 2 * s, 2 * s, generator=g), torch.randn(b, 3, t // 2, 2 * s, 2 * s, generator=g),
         torch.randn(b, k, t, s, s, generator=g), torch.randn(b, k, t // 2, s, s, generator=g)]
    return [v.requires_grad_(grad) for v in x]


def test_four_stream_vknet_has_seven_heads_of_the_right_widths():
    net = VKNet(VKNetConfig(num_classes=5, emb_dim=12, **TINY)).eval()
    out = net(*_inputs())
    c = block_channels(0.125)[-1]
    assert set(out.logits) == {"rgb_h", "rgb_l", "kp_h", "kp_l", "joint_h", "joint_l", "joint_all"}
    assert all(v.shape == (2, 5) for v in out.logits.values())
    assert out.features["rgb_h"].shape == (2, c)
    assert out.features["joint_h"].shape == (2, 2 * c) and out.features["joint_all"].shape == (2, 4 * c)


def test_laterals_connect_every_stream_to_every_other():
    """KP-32's head sees RGB-64 only through an intra- then an inter-resolution lateral."""
    net = VKNet(VKNetConfig(num_classes=5, emb_dim=12, **TINY))
    rgb_h, rgb_l, kp_h, kp_l = _inputs(grad=True)
    net(rgb_h, rgb_l, kp_h, kp_l).logits["kp_l"].sum().backward()
    assert rgb_h.grad.abs().sum() > 0 and rgb_l.grad.abs().sum() > 0 and kp_h.grad.abs().sum() > 0


def test_keypoint_only_variant_runs_without_rgb_and_has_three_heads():
    net = VKNet(VKNetConfig(num_classes=4, emb_dim=8, modalities="keypoint", **TINY)).eval()
    _, _, kp_h, kp_l = _inputs()
    out = net(None, None, kp_h, kp_l)
    assert set(out.logits) == {"kp_h", "kp_l", "joint_all"}
    assert net.config.joint_heads == ("joint_all",)


def test_ensembles_are_log_sums_of_head_softmaxes():
    logits = {"a": torch.randn(3, 4), "b": torch.randn(3, 4)}
    expected = (logits["a"].softmax(-1) + logits["b"].softmax(-1)).log()
    assert torch.allclose(ensemble(logits, ("a", "b")), expected)


def test_wrong_input_shapes_and_configs_fail_loudly():
    net = VKNet(VKNetConfig(num_classes=4, emb_dim=8, **TINY))
    rgb_h, rgb_l, kp_h, kp_l = _inputs(k=62)
    with pytest.raises(ValueError, match="kp_h must be"):
        net(rgb_h, rgb_l, kp_h, kp_l)
    with pytest.raises(ConfigError, match="twice"):
        VKNetConfig(frames_high=16, frames_low=16)


def _param_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_vknet_parameter_count_matches_its_parts():
    """WLASL-2000: four full S3D streams + 8 intra + 8 inter laterals + seven heads (with the IMM layers)."""
    n, emb = 2000, 300
    with torch.device("meta"):
        net = VKNet(VKNetConfig(num_classes=n, emb_dim=emb))
        s3d_rgb = _param_count(S3D(S3DConfig(in_chans=3, num_classes=0)))
        s3d_kp = _param_count(S3D(S3DConfig(in_chans=63, num_classes=0)))
    ch = (64, 192, 480, 832)
    intra = 2 * sum(2 * c * c * 9 for c in ch)  # two resolutions x (Conv3d + ConvTranspose3d), kernel 1x3x3
    inter = 2 * sum(2 * c * c * 3 for c in ch)  # two modalities x (Conv3d + ConvTranspose3d), kernel 3x1x1
    heads = sum(2 * (d * n + n) + emb * d + d for d in [1024] * 4 + [2048] * 2 + [4096])
    expected = 2 * s3d_rgb + 2 * s3d_kp + intra + inter + heads
    total = _param_count(net)
    assert total == expected
    # four ~8 M S3Ds, 35 M intra + 12 M inter laterals, 53 M of heads (incl. the IMM layers)
    assert 125e6 < total < 137e6, f"{total / 1e6:.1f} M"


def _task(mixup_p=1.0, imm=True):
    cfg = NLASLRConfig()
    for k, v in TINY.items():
        if hasattr(cfg.model, k):
            setattr(cfg.model, k, v)
    cfg.data.video_mixup_p, cfg.objective.imm, cfg.train.max_epochs = mixup_p, imm, 4
    names = ["rain", "shower", "warm", "hot", "monday"]
    emb = torch.randn(5, 12, generator=torch.Generator().manual_seed(1))
    return NLASLR(cfg, names, emb)


def _raw_batch(b=3, t=12, s=64):
    g = torch.Generator().manual_seed(2)
    kps = torch.rand(b, t, 63, 3, generator=g) * torch.tensor([s, s, 1.0])
    return {"frames": torch.randint(0, 256, (b, t, s, s, 3), generator=g, dtype=torch.uint8),
            "frame_lengths": torch.tensor([t, t - 3, 5]), "keypoints": kps,
            "keypoint_lengths": torch.tensor([t, t - 3, 5]), "labels": torch.tensor([0, 3, 4]),
            "index": [0, 1, 2]}


def test_one_training_step_with_mixup_language_smoothing_imm_and_ema():
    torch.manual_seed(0)
    task = _task()
    out = task.training_step(_raw_batch(), StepContext(global_step=0, total_steps=8, epoch=0))
    assert torch.isfinite(out.loss)
    assert out.logs["mixup_lambda"] < 1.0 and out.logs["imm_weight"] == 1.0
    assert all(torch.isfinite(torch.as_tensor(v)) for v in out.logs.values())
    out.loss.backward()
    head = task.net.heads["joint_all"]
    assert head.mixed_classifier.weight.grad.abs().sum() > 0  # W_mix is trained by IMM
    assert head.word_emb_mapper.weight.grad.abs().sum() > 0
    before, w_mix = head.classifier.weight.detach().clone(), head.mixed_classifier.weight.detach().clone()
    task.on_after_optimizer_step(StepContext(global_step=1, total_steps=8, epoch=0))
    beta = ema_beta(1 / 8 * 4, 4)  # step 1 of 8 in a 4-epoch run: epoch 0.5
    assert not torch.equal(head.classifier.weight, before)
    assert torch.allclose(head.classifier.weight, beta * before + (1 - beta) * w_mix, atol=1e-6)


def test_without_imm_the_mixup_layers_get_no_gradient_and_ema_is_off():
    task = _task(mixup_p=0.0, imm=False)
    out = task.training_step(_raw_batch(), StepContext(global_step=0, total_steps=8, epoch=0))
    out.loss.backward()
    head = task.net.heads["rgb_h"]
    assert head.mixed_classifier.weight.grad is None
    before = head.classifier.weight.detach().clone()
    task.on_after_optimizer_step(StepContext(global_step=1, total_steps=8, epoch=0))
    assert torch.equal(head.classifier.weight, before)
