"""Load the official pickles (keypoints, CSL-Daily labels, SLRT splits) without running their code.

``pickle.load`` executes whatever callable a file names, so a downloaded ``.pkl`` is code. The official
files hold only builtin containers and numpy arrays, so the unpickler below resolves exactly the globals
those need and refuses every other one with a one-line DataError naming the file. Gzip-compressed
pickles (SLRT's split files) are detected by their magic bytes.
"""

from __future__ import annotations

import _compat_pickle
import gzip
import io
import pickle
from pathlib import Path

import numpy as np

from visionzoo.core.errors import DataError


def _numpy_core():
    try:  # numpy >= 2 moved the C core; pickles written by either version name either module
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    return multiarray, numeric


_ma, _numeric = _numpy_core()
_BUILTIN_CONTAINERS = ("dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int",
                       "float", "complex", "bool")

# (module, name) -> object. Array reconstruction only: none of these can run arbitrary code.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    **{(mod, "_reconstruct"): _ma._reconstruct for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(mod, "scalar"): _ma.scalar for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    # protocol 5 rebuilds an array from its out-of-band / in-band buffer
    **{(mod, "_frombuffer"): _numeric._frombuffer for mod in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # protocol-2 pickles store an array's raw bytes as a latin-1 str re-encoded by _codecs.encode
    ("_codecs", "encode"): __import__("codecs").encode,
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    **{("builtins", n): getattr(__import__("builtins"), n) for n in _BUILTIN_CONTAINERS},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only :data:`ALLOWED_GLOBALS`; ``path`` names the file in errors."""

    def __init__(self, file, path: str | Path):
        super().__init__(file)
        self.path = str(path)

    def find_class(self, module: str, name: str):
        # Python 2 era pickles (protocol < 3) name py2 modules (__builtin__); map them as pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        obj = ALLOWED_GLOBALS.get((module, name))
        if obj is None:
            raise DataError(self.path, f"pickle refers to {module}.{name}; refusing to load it (only numpy arrays "
                                       f"and builtin containers are allowed, nothing that runs code)")
        return obj


def load_pickle(path: str | Path):
    """The object of a (possibly gzip-compressed) pickle of builtin containers and numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "pickle file not found")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(path, f"corrupt gzip stream ({e}); expected a gzip-compressed pickle") from None
    try:
        return RestrictedUnpickler(io.BytesIO(raw), path).load()
    except DataError:
        raise
    except Exception as e:  # truncated or not a pickle at all: UnpicklingError, EOFError, ValueError, ...
        raise DataError(path, f"not a readable pickle ({type(e).__name__}: {e})") from None
