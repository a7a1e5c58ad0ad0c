"""Exceptions raised at brainkit's public boundary.

Every message says what is wrong, what was expected versus found, and how to fix it.
"""

from __future__ import annotations


class BrainkitError(Exception):
    """Base class of every error brainkit raises on purpose."""


class ConfigError(BrainkitError, ValueError):
    """A configuration value, preset or registry name is wrong."""


class DataError(BrainkitError, ValueError):
    """Input data is malformed: wrong shape, NaN/inf, mismatched ids, unknown subject."""


class FileFormatError(DataError):
    """A file is missing, truncated or not in the expected layout."""


class CheckpointError(BrainkitError, ValueError):
    """A checkpoint is missing, incomplete or does not fit the model or data it is used with."""
