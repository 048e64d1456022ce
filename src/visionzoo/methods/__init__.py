"""Method packages; importing this module registers every implemented method and its models.

Each paper lives in ``methods/<area>/<method>/`` and registers itself on import; the packages are found
by walking the areas, so adding a method never means editing a shared list.
"""

import importlib
import pkgutil

AREAS = ("ssl", "vl", "sign", "video", "pose")


def _import_all() -> None:
    for area in AREAS:
        try:
            pkg = importlib.import_module(f"{__name__}.{area}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{area}":
                continue
            raise
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if info.ispkg:
                importlib.import_module(f"{pkg.__name__}.{info.name}")


_import_all()
