"""InceptionI3d in the pytorch-i3d / bsl1k layout: endpoint shapes, SAME padding, CiCo window features,
checkpoint conversion and weight-only loading."""

from __future__ import annotations

import pytest
import torch

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.nn.i3d import (
    I3DConfig,
    InceptionI3d,
    _same_pad,
    convert_i3d_state_dict,
    extract_window_features,
    load_i3d,
)


@pytest.fixture(scope="module")
def model() -> InceptionI3d:
    torch.manual_seed(0)
    return InceptionI3d(I3DConfig(num_classes=7)).eval()


@torch.no_grad()
def test_endpoint_shapes_for_a_16_frame_112px_clip(model):
    outs = model.forward_endpoints(torch.randn(1, 3, 16, 112, 112))
    shapes = {k: tuple(v.shape[1:]) for k, v in outs.items()}
    assert list(outs) == [
        "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
        "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f",
        "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c",
    ]
    assert shapes["Conv3d_1a_7x7"] == (64, 8, 56, 56)
    assert shapes["Conv3d_2c_3x3"] == (192, 8, 28, 28)
    assert shapes["Mixed_3c"] == (480, 8, 14, 14)
    assert shapes["Mixed_4f"] == (832, 4, 7, 7)
    assert shapes["Mixed_5c"] == (1024, 2, 4, 4)  # SAME pooling rounds 7 / 2 up


@pytest.mark.parametrize("frames", [16, 64])
def test_224px_clips_give_one_1024d_feature_and_one_prediction_per_clip(frames):
    with torch.device("meta"):  # shapes only, no compute
        model = InceptionI3d(I3DConfig(num_classes=5383))
        x = torch.empty(2, 3, frames, 224, 224)
        assert model.forward_features(x).shape == (2, 1024, frames // 8, 7, 7)
        assert model.extract_features(x).shape == (2, 1024)
        assert model(x).shape == (2, 5383)


@pytest.mark.parametrize("size", range(5, 18))
@pytest.mark.parametrize("kernel,stride", [(7, 2), (3, 2), (2, 2), (3, 1), (1, 1)])
def test_same_padding_gives_ceil_of_size_over_stride(size, kernel, stride):
    front, back = _same_pad((size,), (kernel,), (stride,))
    assert (size + front + back - kernel) // stride + 1 == -(-size // stride)
    assert back - front in (0, 1)  # TF puts the odd pixel at the end


def test_parameter_names_follow_pytorch_i3d():
    keys = InceptionI3d(I3DConfig(num_classes=3)).state_dict().keys()
    for k in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_var",
        "Conv3d_2c_3x3.bn.num_batches_tracked",
        "Mixed_4b.b1b.conv3d.weight",
        "Mixed_5c.b3b.bn.bias",
        "logits.conv3d.weight",
        "logits.conv3d.bias",
    ):
        assert k in keys
    assert not any(k.startswith("logits.bn") for k in keys)


@torch.no_grad()
def test_window_features_slide_one_frame_at_a_time(model):
    video = torch.randn(3, 10, 32, 32)  # (C, T, H, W): 3 windows of 8 frames at stride 1
    feats = extract_window_features(model, video, window=8, stride=1, batch_size=2)
    assert feats.shape == (3, 1024)
    torch.testing.assert_close(feats[2], model.extract_features(video[None, :, 2:10])[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(feats[0], feats[2])


def test_window_features_reject_a_video_shorter_than_a_window(model):
    with pytest.raises(ValueError, match="12 frames"):
        extract_window_features(model, torch.randn(3, 12, 32, 32), window=16)


def _bsl1k_checkpoint(model: InceptionI3d) -> dict:
    # bsl1k / CiCo save {'epoch', 'state_dict', ...} of a DataParallel model: every key gets 'module.'
    sd = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    return {"epoch": 15, "arch": "InceptionI3d", "state_dict": sd}


def test_converter_unwraps_a_bsl1k_checkpoint(model):
    converted = convert_i3d_state_dict(_bsl1k_checkpoint(model))
    reference = model.state_dict()
    assert converted.keys() == reference.keys()
    assert all(torch.equal(converted[k], reference[k]) for k in reference)


def test_converter_fills_num_batches_tracked_missing_from_old_checkpoints(model):
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    fresh = InceptionI3d(I3DConfig(num_classes=7))
    fresh.load_state_dict(convert_i3d_state_dict(sd))  # strict
    torch.testing.assert_close(fresh.Mixed_4b.b1b.bn.running_var, model.Mixed_4b.b1b.bn.running_var)


def test_converter_reads_class_count_and_can_drop_the_classifier(model):
    ckpt = _bsl1k_checkpoint(model)
    assert convert_i3d_state_dict(ckpt)["logits.conv3d.weight"].shape[0] == 7
    features_only = convert_i3d_state_dict(ckpt, I3DConfig(num_classes=0))
    assert not any(k.startswith("logits.") for k in features_only)


def test_converter_loads_a_full_checkpoint_into_a_truncated_model(model):
    truncated = I3DConfig(final_endpoint="Mixed_4f")
    sd = convert_i3d_state_dict(_bsl1k_checkpoint(model), truncated)
    assert not any(k.startswith(("Mixed_5", "logits")) for k in sd)
    InceptionI3d(truncated).load_state_dict(sd)  # strict


def test_converter_names_a_missing_key(model):
    ckpt = _bsl1k_checkpoint(model)
    del ckpt["state_dict"]["module.Mixed_4d.b2a.conv3d.weight"]
    with pytest.raises(CheckpointError, match="missing key 'Mixed_4d.b2a.conv3d.weight'"):
        convert_i3d_state_dict(ckpt)


def test_converter_names_an_unexpected_key(model):
    ckpt = _bsl1k_checkpoint(model)
    ckpt["state_dict"]["module.Mixed_4d.b4.conv3d.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="unexpected key 'Mixed_4d.b4.conv3d.weight'"):
        convert_i3d_state_dict(ckpt)


def test_converter_names_a_key_whose_shape_mismatches(model):
    ckpt = _bsl1k_checkpoint(model)
    ckpt["state_dict"]["module.Mixed_3b.b0.bn.weight"] = torch.ones(65)
    with pytest.raises(CheckpointError, match=r"'Mixed_3b.b0.bn.weight' has shape \(65,\), expected \(64,\)"):
        convert_i3d_state_dict(ckpt)


def test_load_i3d_reads_torch_and_safetensors_files(model, tmp_path):
    from safetensors.torch import save_file

    torch.save(_bsl1k_checkpoint(model), tmp_path / "bsl5k.pth.tar")
    save_file(model.state_dict(), tmp_path / "i3d.safetensors")
    for name in ("bsl5k.pth.tar", "i3d.safetensors"):
        loaded = load_i3d(tmp_path / name)
        assert loaded.config.num_classes == 7
        torch.testing.assert_close(loaded.Mixed_5c.b0.conv3d.weight, model.Mixed_5c.b0.conv3d.weight)


class _Payload:  # any class in a pickle: unpickling it would run code of the file's choosing
    pass


def test_load_i3d_refuses_a_pickle_that_needs_code(model, tmp_path):
    ckpt = _bsl1k_checkpoint(model) | {"extra": _Payload()}
    torch.save(ckpt, tmp_path / "evil.pth.tar")
    with pytest.raises(CheckpointError, match="evil.pth.tar: cannot read weights"):
        load_i3d(tmp_path / "evil.pth.tar")


def test_load_i3d_names_a_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pth: no such weights file"):
        load_i3d(tmp_path / "nope.pth")


def test_truncated_model_has_no_classifier():
    model = InceptionI3d(I3DConfig(final_endpoint="Mixed_4f"))
    assert model.logits is None and not hasattr(model, "Mixed_5b")
    with pytest.raises(ValueError, match="needs Mixed_5c"):
        model.extract_features(torch.randn(1, 3, 8, 32, 32))


def test_config_rejects_an_unknown_endpoint():
    with pytest.raises(ConfigError, match="final_endpoint"):
        I3DConfig(final_endpoint="Mixed_6a")
