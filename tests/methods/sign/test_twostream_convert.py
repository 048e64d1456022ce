"""Official TwoStream-SLR checkpoint layout -> ours, tested with a synthetic state dict of that layout."""

from __future__ import annotations

import pickle

import pytest
import torch

from visionzoo.core.errors import CheckpointError
from visionzoo.methods.sign.twostream.convert import convert_official_state_dict, infer_model_kwargs
from visionzoo.methods.sign.twostream.model import TwoStreamSLR, TwoStreamSLRConfig
from visionzoo.nn.s3d import LAYER_NAMES

CFG = dict(vocab_size=7, width=0.125, head_hidden=16, head_ff=32, keypoint_channels=5)


def official_layout(model: TwoStreamSLR) -> dict[str, torch.Tensor]:
    """Our state dict renamed into the official recognition_network layout (the inverse map, written out)."""
    flat = {(b, name): i for i, (b, name) in enumerate(LAYER_NAMES)}
    out = {}
    for k, v in model.state_dict().items():
        parts = k.split(".")
        if parts[0] == "backbone" and parts[1] in ("rgb_stream", "keypoint_stream"):
            stream = "rgb" if parts[1] == "rgb_stream" else "pose"
            i = flat[(int(parts[3]), parts[4])]
            key = f"visual_backbone_twostream.{stream}_stream.backbone.base.{i}.{'.'.join(parts[5:])}"
        elif parts[0] == "backbone" and parts[1] == "laterals":
            stream = "rgb" if parts[3] == "keypoint_to_rgb" else "pose"
            key = f"visual_backbone_twostream.{stream}_stream_lateral.{int(parts[2]) - 1}.conv.weight"
        elif parts[0] == "pyramids":
            stream = "rgb" if parts[1] == "rgb" else "pose"
            key = f"visual_backbone_twostream.{stream}_stream.pyramid.{'.'.join(parts[2:])}"
        else:
            name, rest = parts[1], ".".join(parts[2:])
            base = {"rgb": "visual_head", "keypoint": "visual_head_keypoint", "joint": "visual_head_fuse"}
            stream, _, aux = name.partition("_aux")
            key = base[stream] + (f"_remain.{int(aux) - 1}" if aux else "") + "." + rest
        out["recognition_network." + key] = v.clone()
    out["recognition_network.visual_head.pe.pe"] = torch.zeros(1, 100, 16)  # the official PE buffer
    return out


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TwoStreamSLR(TwoStreamSLRConfig(**CFG)).eval()


def test_official_layout_converts_back_to_identical_weights(model):
    official = {"model_state": official_layout(model), "epoch": 3}
    assert "recognition_network.visual_backbone_twostream.rgb_stream.backbone.base.5.branch1.1.conv_s.weight" in \
        official["model_state"]  # Mixed_3b is base[5] in the official S3D
    assert "recognition_network.visual_head_keypoint_remain.1.fc1.weight" in official["model_state"]
    state = convert_official_state_dict(official)
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    kwargs = infer_model_kwargs(state)
    assert kwargs == {"vocab_size": 7, "streams": "both", "laterals": True, "pyramid": True, "joint_head": True,
                      "width": 0.125, "head_hidden": 16, "head_ff": 32, "keypoint_channels": 5}


def test_unknown_key_is_a_one_line_error_naming_it(model):
    sd = official_layout(model)
    sd["recognition_network.visual_head.extra_layer.weight"] = torch.zeros(1)
    sd["recognition_network.visual_backbone_twostream.fuse_conv.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="fuse_conv.weight") as e:
        convert_official_state_dict(sd)
    assert "\n" not in str(e.value)


def test_convert_cli_writes_a_loadable_folder_with_named_glosses(model, tmp_path):
    from visionzoo.cli import main
    from visionzoo.core.hub import from_pretrained

    torch.save({"model_state": official_layout(model), "epoch": 1}, tmp_path / "best.ckpt")
    names = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "regen", "sonne"]
    (tmp_path / "gloss2ids.pkl").write_bytes(pickle.dumps({g: i for i, g in enumerate(names)}))
    assert main(["convert", "twostream", str(tmp_path / "best.ckpt"), str(tmp_path / "out"),
                 "--gloss2ids", str(tmp_path / "gloss2ids.pkl")]) in (0, None)
    loaded = from_pretrained(tmp_path / "out")
    assert list(loaded.config.glosses) == names
    x = (torch.randn(1, 3, 8, 32, 32), torch.rand(1, 5, 8, 16, 16), torch.tensor([8]))
    with torch.no_grad():
        torch.testing.assert_close(loaded(*x).ensemble_log_probs, model(*x).ensemble_log_probs)


def test_single_stream_checkpoint_needs_its_stream_named():
    torch.manual_seed(0)
    rgb = TwoStreamSLR(TwoStreamSLRConfig(**CFG, streams="rgb", pyramid=False))
    sd = {}
    flat = {(b, name): i for i, (b, name) in enumerate(LAYER_NAMES)}
    for k, v in rgb.state_dict().items():
        parts = k.split(".")
        if parts[0] == "backbone":
            sd[f"recognition_network.visual_backbone.backbone.base.{flat[(int(parts[3]), parts[4])]}."
               + ".".join(parts[5:])] = v
        else:
            sd["recognition_network.visual_head." + ".".join(parts[2:])] = v
    with pytest.raises(CheckpointError, match="--stream"):
        convert_official_state_dict(sd)
    state = convert_official_state_dict(sd, stream="rgb")
    assert state.keys() == rgb.state_dict().keys()
    assert infer_model_kwargs(state)["streams"] == "rgb"
