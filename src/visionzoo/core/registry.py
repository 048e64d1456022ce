"""Registries: models (timm-style ``create_model``) and methods (model + task + recipes + status).

Methods register themselves when their package is imported; ``visionzoo.methods`` imports every
implemented method, so ``list``/``train`` see them. The table of all twenty planned methods lives
in ``catalog.py`` so ``visionzoo list`` can show what is not built yet, honestly labelled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from visionzoo.core.errors import RegistryError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_METHODS: dict[str, "MethodSpec"] = {}


def register_model(name: str | None = None):
    """Decorator registering a model factory ``fn(**cfg) -> nn.Module`` under ``name`` (default: fn name)."""

    def wrap(fn):
        key = name or fn.__name__
        if key in _MODELS and _MODELS[key] is not fn:
            raise RegistryError(f"model {key!r} is registered twice")
        _MODELS[key] = fn
        return fn

    return wrap


def _closest(name: str, options) -> str:
    import difflib

    hits = difflib.get_close_matches(name, list(options), n=3)
    return f"; did you mean {', '.join(hits)}?" if hits else ""


def list_models(pattern: str = "*") -> list[str]:
    import fnmatch

    _import_all()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; the instance remembers ``(name, kwargs)`` for ``save_pretrained``."""
    _import_all()
    if name not in _MODELS:
        raise RegistryError(f"unknown model {name!r}{_closest(name, _MODELS)} (see `visionzoo list --models`)")
    model = _MODELS[name](**kwargs)
    model.visionzoo_name = name
    model.visionzoo_kwargs = dict(kwargs)
    return model


@dataclass
class MethodSpec:
    """Everything the engine and CLI need to know about one method."""

    name: str
    area: str
    paper: str
    config_cls: type  # the recipe dataclass
    build_task: Callable  # (cfg) -> visionzoo.engine.Task
    build_data: Callable  # (cfg) -> lightning DataModule
    recipes_dir: Path
    status: str = "implemented"
    summary: str = ""
    evaluate: Callable | None = None  # (task, datamodule, cfg) -> metrics dict (for `visionzoo eval`)
    predict: Callable | None = None  # (args namespace) -> None
    extra: dict = field(default_factory=dict)

    def recipes(self) -> list[str]:
        return sorted(p.stem for p in self.recipes_dir.glob("*.yaml"))

    def recipe_path(self, recipe: str) -> Path:
        path = self.recipes_dir / f"{recipe}.yaml"
        if not path.is_file():
            raise RegistryError(
                f"method {self.name!r} has no recipe {recipe!r}; available: {', '.join(self.recipes()) or 'none'}"
            )
        return path


def register_method(spec: MethodSpec) -> MethodSpec:
    if spec.name in _METHODS and _METHODS[spec.name] is not spec:
        raise RegistryError(f"method {spec.name!r} is registered twice")
    _METHODS[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    _import_all()
    if name not in _METHODS:
        raise RegistryError(f"unknown method {name!r}{_closest(name, _METHODS)} (see `visionzoo list`)")
    return _METHODS[name]


def list_methods() -> list[MethodSpec]:
    _import_all()
    return [_METHODS[k] for k in sorted(_METHODS)]


def resolve_recipe(ref: str) -> tuple[MethodSpec, Path]:
    """``slimclr/tiny``, ``slimclr`` (= its ``tiny``) or a path to a YAML file with a ``method`` key."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml"):
        from visionzoo.core.config import read_yaml

        data = read_yaml(path)
        if "method" not in data:
            from visionzoo.core.errors import ConfigError

            raise ConfigError(f"{path}: a recipe needs a top-level 'method' key naming the method")
        return get_method(str(data["method"])), path
    name, _, recipe = ref.partition("/")
    spec = get_method(name)
    return spec, spec.recipe_path(recipe or "tiny")


def _import_all() -> None:
    import visionzoo.methods  # noqa: F401  (registers every implemented method and its models)


def replace_spec(spec: MethodSpec, **changes) -> MethodSpec:
    return dataclasses.replace(spec, **changes)


def load_recipe(ref: str, overrides: list[str] = ()) -> tuple[MethodSpec, object, str]:
    """Resolve ``ref`` (see :func:`resolve_recipe`) and load it into the method's typed config.

    Returns ``(spec, config, recipe_name)``.
    """
    from visionzoo.core.config import load_config, read_yaml
    from visionzoo.core.errors import ConfigError

    spec, path = resolve_recipe(ref)
    data = read_yaml(path)
    method = data.pop("method", spec.name)
    if method != spec.name:
        raise ConfigError(f"{path}: recipe is for method {method!r}, not {spec.name!r}")
    return spec, load_config(spec.config_cls, path, overrides, data=data), path.stem
