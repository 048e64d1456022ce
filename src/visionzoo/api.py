"""The Python API, timm / transformers style.

    import visionzoo
    model = visionzoo.create_model("slimclr_tiny")
    model.save_pretrained("out")  # or visionzoo.save_pretrained(model, "out")
    model = visionzoo.from_pretrained("out")
    result = visionzoo.train("slimclr/tiny", ["train.max_epochs=5"], run_dir="runs/x")
"""

from __future__ import annotations

from pathlib import Path

from visionzoo.core.hub import from_pretrained, save_pretrained
from visionzoo.core.registry import create_model, get_method, list_methods, list_models, load_recipe


def train(recipe: str, overrides: list[str] = (), run_dir: str | Path | None = None, resume: str | Path | None = None):
    """Train a recipe (``"slimclr/tiny"`` or a YAML path) with ``key=value`` overrides; returns a RunResult."""
    from visionzoo.engine.trainer import default_run_dir, fit

    spec, cfg, name = load_recipe(recipe, list(overrides))
    return fit(spec, cfg, Path(run_dir) if run_dir else default_run_dir(spec, name), resume=resume, recipe_name=name)


__all__ = ["create_model", "from_pretrained", "save_pretrained", "train", "load_recipe", "list_models",
           "list_methods", "get_method"]
