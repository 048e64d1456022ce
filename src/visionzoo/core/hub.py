"""``save_pretrained`` / ``from_pretrained``: a directory with ``config.json`` + ``model.safetensors``.

Weights never go through pickle. The config records the registered model name and the keyword
arguments it was built with, so ``from_pretrained`` rebuilds the exact architecture first.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from visionzoo.core.errors import CheckpointError
from visionzoo.core.io import atomic_write

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_pretrained(model: nn.Module, directory: str | Path, extra: dict | None = None) -> Path:
    name = getattr(model, "visionzoo_name", None)
    if name is None:
        raise CheckpointError("save_pretrained needs a model built with visionzoo.create_model (its name is unknown)")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_name": name, "model_kwargs": getattr(model, "visionzoo_kwargs", {}), **(extra or {})}
    # safetensors refuses shared storage; clone so tied weights are saved as independent tensors
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_write(out / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    with atomic_write(out / CONFIG_NAME) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2, sort_keys=True))
    return out


def load_config_json(directory: str | Path) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a pretrained directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or corrupt?): {e}") from None


def load_state_dict_strict(model: nn.Module, state: dict, source: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the first offending keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: state dict does not match the model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointError(f"{source}: {k} has shape {tuple(v.shape)}, the model expects {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=True)


def from_pretrained(directory: str | Path, **overrides) -> nn.Module:
    from visionzoo.core.registry import create_model

    config = load_config_json(directory)
    if "model_name" not in config:
        raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: no 'model_name' key")
    model = create_model(config["model_name"], **{**config.get("model_kwargs", {}), **overrides})
    load_state_dict_strict(model, load_safetensors(Path(directory) / WEIGHTS_NAME), str(Path(directory) / WEIGHTS_NAME))
    model.eval()
    return model
