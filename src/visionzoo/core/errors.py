"""User-facing errors.

Every error a user can cause (bad config key, malformed annotation line, corrupt file) is raised as a
``VisionZooError`` whose message is one line naming the place (file, line, key) and what was expected.
The CLI prints such errors without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

from pathlib import Path


class VisionZooError(Exception):
    """Base class of errors caused by user input; the message is meant to be read by that user."""


class ConfigError(VisionZooError):
    """A recipe or override is wrong: unknown key, wrong type, missing value."""


class DataError(VisionZooError):
    """External data is malformed, missing or unreadable."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem


class CheckpointError(VisionZooError):
    """A checkpoint or weights file is missing, truncated, corrupt or of the wrong layout."""


class RegistryError(VisionZooError):
    """An unknown method, model or recipe name."""
