"""Generators that WRITE real on-disk dataset layouts from data shipped inside installed packages.

``visionzoo data synth NAME DIR`` looks the generator up here. Every generator is deterministic given
its seed and returns a short summary dict (counts, paths) that the CLI prints.
"""

from __future__ import annotations

from typing import Callable

from visionzoo.core.errors import RegistryError

SYNTH: dict[str, tuple[Callable, str]] = {}


def register_synth(name: str, help: str):
    def wrap(fn):
        SYNTH[name] = (fn, help)
        return fn

    return wrap


def _import_generators() -> None:
    """Import every module of this package: each registers its generators with ``@register_synth``."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def get_synth(name: str) -> Callable:
    _import_generators()
    if name not in SYNTH:
        raise RegistryError(f"unknown synthetic dataset {name!r}; available: {', '.join(sorted(SYNTH))}")
    return SYNTH[name][0]


def list_synth() -> dict[str, str]:
    _import_generators()
    return {k: v[1] for k, v in sorted(SYNTH.items())}
