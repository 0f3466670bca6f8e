"""Errors of the training room, in the project's one exception family (the CLI prints them as one line)."""
from __future__ import annotations

from ..errors import DubkitError


class DataError(DubkitError):
    """A manifest, caption file or audio file cannot be used for training; the message names the file and line."""


class ConfigError(DubkitError):
    """The training config is invalid; the message names the file and the key."""
