"""Slimmable layers, the slimmable ResNet, its export to plain networks and the official-checkpoint converter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.nn.slimmable import (
    SlimmableConv2d,
    SlimmableEncoder,
    SlimmableLinear,
    SlimmableResNet,
    SlimmableResNetConfig,
    SwitchableBatchNorm2d,
    convert_official_slimclr_state_dict,
    count_params_at_width,
    export_width,
    mocov2_head,
    mocov3_head,
    narrow_resnet,
    set_width,
    slim_resnet50,
    slim_resnet_tiny,
    width_index,
)


@torch.no_grad()
def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters, so a wrong BN copy or zero-init cannot hide."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


# ------------------------------------------------------------------------------------------ layers


def test_conv_at_width_uses_leading_weight_slice():
    torch.manual_seed(0)
    conv = SlimmableConv2d(8, 6, 3, padding=1, bias=True, widths=[1.0, 0.5])
    x = torch.randn(2, 4, 5, 5)
    set_width(conv, 0.5)
    expected = F.conv2d(x, conv.weight[:3, :4], conv.bias[:3], padding=1)
    torch.testing.assert_close(conv(x), expected)


def test_conv_with_fixed_input_keeps_all_input_channels():
    conv = SlimmableConv2d(3, 8, 3, widths=[1.0, 0.25], slim_in=False)
    set_width(conv, 0.25)
    assert conv(torch.randn(1, 3, 6, 6)).shape == (1, 2, 4, 4)


def test_linear_with_fixed_output_keeps_output_dim():
    torch.manual_seed(0)
    lin = SlimmableLinear(8, 5, widths=[1.0, 0.5], slim_out=False)
    x = torch.randn(3, 4)
    set_width(lin, 0.5)
    torch.testing.assert_close(lin(x), x @ lin.weight[:, :4].t() + lin.bias)


def test_gradient_reaches_only_the_active_slice():
    conv = SlimmableConv2d(8, 8, 1, widths=[1.0, 0.5])
    set_width(conv, 0.5)
    conv(torch.randn(2, 4, 3, 3)).sum().backward()
    assert conv.weight.grad[:4, :4].abs().sum() > 0
    assert conv.weight.grad[4:].abs().sum() == 0 and conv.weight.grad[:, 4:].abs().sum() == 0


def test_switchable_bn_index_is_position_in_descending_width_list():
    assert [width_index([0.25, 1.0, 0.5], w) for w in (1.0, 0.5, 0.25)] == [0, 1, 2]
    bn = SwitchableBatchNorm2d(16, widths=[0.25, 1.0, 0.5])
    assert [b.num_features for b in bn.bn] == [16, 8, 4]


def test_switchable_bn_training_updates_only_the_active_width_copy():
    bn = SwitchableBatchNorm2d(8, widths=[1.0, 0.5, 0.25]).train()
    set_width(bn, 0.25)
    bn(torch.randn(4, 2, 3, 3) + 3.0)
    assert bn.bn[2].running_mean.abs().sum() > 0
    assert bn.bn[0].running_mean.abs().sum() == 0 and bn.bn[1].running_mean.abs().sum() == 0


def _active_widths(model: nn.Module) -> set[float]:
    return {m.width for m in model.modules() if isinstance(m, (SlimmableConv2d, SwitchableBatchNorm2d))}


def test_set_width_as_context_restores_previous_width():
    model = slim_resnet_tiny()
    with set_width(model, 0.25):
        assert _active_widths(model) == {0.25}
    assert _active_widths(model) == {1.0}


def test_set_width_rejects_an_untrained_width_without_changing_anything():
    model = slim_resnet_tiny(widths=[1.0, 0.5])
    with pytest.raises(ConfigError, match="0.3"):
        set_width(model, 0.3)
    assert model.conv1.width == 1.0


def test_active_width_is_not_part_of_the_state_dict():
    model = slim_resnet_tiny()
    before = set(model.state_dict())
    set_width(model, 0.5)
    assert set(model.state_dict()) == before and not any("width" in k for k in before)


def test_config_rejects_unknown_block():
    with pytest.raises(ConfigError, match="block"):
        SlimmableResNetConfig(block="wide")


# ------------------------------------------------------------------------------------------ ResNet


@pytest.fixture(scope="module")
def resnet50() -> SlimmableResNet:
    """Built once: several tests only read its structure."""
    return slim_resnet50()


def test_pooled_feature_dim_follows_width():
    model = slim_resnet_tiny().eval()
    for w in model.widths:
        assert model(torch.randn(2, 3, 16, 16), width=w).shape == (2, model.feature_dim(w))
    assert [model.feature_dim(w) for w in model.widths] == [128, 64, 32]


def test_last_bn_of_every_block_starts_at_zero_gamma(resnet50):
    for blk in resnet50.features:
        assert all(bn.weight.abs().sum() == 0 for bn in blk.bn3.bn)
        assert all(bn.weight.abs().sum() > 0 for bn in blk.bn1.bn)


def test_state_dict_follows_official_flat_layout(resnet50):
    keys = set(resnet50.state_dict())
    blocks = {int(k.split(".")[1]) for k in keys if k.startswith("features.")}
    assert blocks == set(range(16))
    with_shortcut = {int(k.split(".")[1]) for k in keys if ".shortcut." in k}
    assert with_shortcut == {0, 3, 7, 13}  # first block of each stage
    for key in ("conv1.weight", "bn1.bn.3.num_batches_tracked", "features.15.conv3.weight",
                "features.7.shortcut.0.weight", "features.7.shortcut.1.bn.2.running_var", "features.4.bn2.bn.0.bias"):
        assert key in keys


@pytest.mark.parametrize(
    "config",
    [
        SlimmableResNetConfig(block="bottleneck", layers=[1, 2, 1, 1], base_width=8, stem="imagenet", widths=[1.0, 0.75, 0.5, 0.25]),
        SlimmableResNetConfig(block="basic", layers=[1, 1, 2, 1], base_width=16, stem="cifar", widths=[1.0, 0.5, 0.25]),
    ],
    ids=["bottleneck-imagenet-stem", "basic-cifar-stem"],
)
def test_sliced_network_equals_standalone_narrow_network(config):
    torch.manual_seed(0)
    model = SlimmableResNet(config).eval()
    randomize_batchnorm(model)
    x = torch.randn(2, 3, 32, 32)
    for w in config.widths:
        plain = narrow_resnet(config, w).eval()
        plain.load_state_dict(export_width(model, w), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(model(x, width=w), plain(x), atol=1e-5, rtol=1e-4)


def test_full_width_resnet50_equals_torchvision_resnet50():
    torch.manual_seed(0)
    model = slim_resnet50().eval()
    randomize_batchnorm(model)
    peer = torchvision.models.resnet50().eval()
    peer.fc = nn.Identity()
    peer.load_state_dict(export_width(model, 1.0), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, width=1.0), peer(x), atol=1e-5, rtol=1e-4)


def test_resnet50_params_per_width_match_the_spec_table(resnet50):
    millions = [round(count_params_at_width(resnet50, w) / 1e6, 1) for w in resnet50.widths]
    assert millions == [23.5, 13.2, 5.9, 1.5]


def test_params_at_width_equal_those_of_the_standalone_narrow_network():
    config = SlimmableResNetConfig(layers=[1, 1, 1, 1], base_width=16)
    model = SlimmableResNet(config)
    for w in config.widths:
        assert count_params_at_width(model, w) == sum(p.numel() for p in narrow_resnet(config, w).parameters())


def test_export_takes_leading_channels_and_that_widths_bn_copy():
    model = slim_resnet_tiny(widths=[1.0, 0.5, 0.25])
    randomize_batchnorm(model)
    exported = export_width(model, 0.25)
    block = model.features[1]  # second stage: the one with a projection shortcut and stride 2
    torch.testing.assert_close(exported["layer2.0.conv1.weight"], block.conv1.weight[:8, :4])
    torch.testing.assert_close(exported["layer2.0.downsample.0.weight"], block.shortcut[0].weight[:8, :4])
    torch.testing.assert_close(exported["layer2.0.downsample.1.running_var"], block.shortcut[1].bn[2].running_var)
    torch.testing.assert_close(exported["bn1.weight"], model.bn1.bn[2].weight)


def test_export_rejects_an_untrained_width():
    with pytest.raises(ConfigError):
        export_width(slim_resnet_tiny(widths=[1.0, 0.5]), 0.25)


# ------------------------------------------------------------------------------------------ heads


def test_mocov2_head_slices_input_and_keeps_output_dim():
    torch.manual_seed(0)
    head = mocov2_head([1.0, 0.5], in_dim=16, dim=8)
    x = torch.randn(3, 8)
    fc1, fc2 = head[0], head[2]
    expected = F.linear(F.relu(F.linear(x, fc1.weight[:8, :8], fc1.bias[:8])), fc2.weight[:, :8], fc2.bias)
    torch.testing.assert_close(head(x, width=0.5), expected)


def test_mocov3_head_has_official_indices_and_a_last_bn_without_affine():
    head = mocov3_head([1.0, 0.5], in_dim=16, hidden=32, dim=8)
    assert {k.split(".")[0] for k in head.state_dict()} == {"0", "1", "3", "4"}
    assert all(not bn.affine and bn.num_features == 8 for bn in head[4].bn)
    assert head[0].bias is None and head.train()(torch.randn(4, 8), width=0.5).shape == (4, 8)


# ------------------------------------------------------------------------------------------ converter


def _tiny_encoder(seed: int) -> SlimmableEncoder:
    torch.manual_seed(seed)
    backbone = slim_resnet_tiny(widths=[1.0, 0.5])
    randomize_batchnorm(backbone, seed)
    return SlimmableEncoder(backbone, mocov2_head([1.0, 0.5], in_dim=backbone.num_features, dim=8)).eval()


def _official_mocov2_checkpoint(query: SlimmableEncoder, key: SlimmableEncoder, queue_len: int = 12) -> dict:
    # The released layout (spec 3e): DDP 'module.' + encoder_q/encoder_k around a backbone whose
    # projection head is 'fc.{0,2}', and the queue stored as (dim, K).
    def wrap(prefix: str, enc: SlimmableEncoder) -> dict:
        out = {f"module.{prefix}.{k}": v.clone() for k, v in enc.backbone.state_dict().items()}
        out |= {f"module.{prefix}.fc.{k}": v.clone() for k, v in enc.head.state_dict().items()}
        return out

    state = wrap("encoder_q", query) | wrap("encoder_k", key)
    state |= {"module.queue": F.normalize(torch.randn(8, queue_len), dim=0), "module.queue_ptr": torch.tensor([4])}
    return {"epoch": 200, "arch": "resnet50", "state_dict": state}


def test_converter_loads_the_query_encoder_of_an_official_checkpoint():
    query, key = _tiny_encoder(0), _tiny_encoder(1)
    ckpt = _official_mocov2_checkpoint(query, key)
    converted = convert_official_slimclr_state_dict(ckpt)
    fresh = _tiny_encoder(2)
    fresh.load_state_dict({k: v for k, v in converted.items() if k.startswith(("backbone.", "head."))}, strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        for w in (1.0, 0.5):
            torch.testing.assert_close(fresh(x, width=w), query(x, width=w))


def test_converter_transposes_the_queue_to_keys_by_row():
    ckpt = _official_mocov2_checkpoint(_tiny_encoder(0), _tiny_encoder(1), queue_len=12)
    converted = convert_official_slimclr_state_dict(ckpt)
    assert converted["queue"].shape == (12, 8)
    torch.testing.assert_close(converted["queue"], ckpt["state_dict"]["module.queue"].t())
    assert int(converted["queue_ptr"]) == 4


def test_converter_can_pick_the_momentum_encoder():
    query, key = _tiny_encoder(0), _tiny_encoder(1)
    converted = convert_official_slimclr_state_dict(_official_mocov2_checkpoint(query, key), encoder="key")
    torch.testing.assert_close(converted["backbone.conv1.weight"], key.backbone.conv1.weight)


def test_converter_reads_mocov3_names_and_keeps_the_predictor():
    enc = _tiny_encoder(0)
    state = {f"module.base_encoder.{k}": v for k, v in enc.backbone.state_dict().items()}
    state["module.momentum_encoder.conv1.weight"] = torch.zeros_like(enc.backbone.conv1.weight)
    state["module.predictor.0.weight"] = torch.ones(4, 8)
    converted = convert_official_slimclr_state_dict(state)
    torch.testing.assert_close(converted["backbone.conv1.weight"], enc.backbone.conv1.weight)
    assert "predictor.0.weight" in converted


def test_converter_rejects_an_unknown_key():
    ckpt = _official_mocov2_checkpoint(_tiny_encoder(0), _tiny_encoder(1))
    ckpt["state_dict"]["module.encoder_q.classifier.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="classifier"):
        convert_official_slimclr_state_dict(ckpt)
