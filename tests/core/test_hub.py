import json

import pytest
import torch

import visionzoo
from visionzoo.core.errors import CheckpointError, RegistryError


def test_save_then_from_pretrained_roundtrips_weights_and_outputs(tmp_path):
    model = visionzoo.create_model("slimclr_tiny", widths=(1.0, 0.5), head_dim=8, base_width=8).eval()
    visionzoo.save_pretrained(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_name"] == "slimclr_tiny" and config["model_kwargs"]["head_dim"] == 8
    loaded = visionzoo.from_pretrained(tmp_path / "m")
    x = torch.randn(2, 3, 16, 16)
    for w in (1.0, 0.5):
        torch.testing.assert_close(loaded(x, width=w), model(x, width=w))


def test_truncated_weights_give_a_clear_error(tmp_path):
    model = visionzoo.create_model("slimclr_tiny", widths=(1.0,), head_dim=8, base_width=8)
    visionzoo.save_pretrained(model, tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors file"):
        visionzoo.from_pretrained(tmp_path / "m")


def test_mismatched_architecture_names_the_keys(tmp_path):
    model = visionzoo.create_model("slimclr_tiny", widths=(1.0,), head_dim=8, base_width=8)
    visionzoo.save_pretrained(model, tmp_path / "m")
    with pytest.raises(CheckpointError, match="head_dim|shape|missing"):
        visionzoo.from_pretrained(tmp_path / "m", head_dim=16)


def test_unknown_model_suggests_close_names():
    with pytest.raises(RegistryError, match="did you mean slimclr_tiny"):
        visionzoo.create_model("slimclr_tiyn")
