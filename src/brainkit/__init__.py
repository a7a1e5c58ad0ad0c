"""brainkit: fMRI brain decoding and brain representation learning.

The public API is a handful of names; everything else lives in its module.
"""

from brainkit.errors import BrainkitError, CheckpointError, ConfigError, DataError, FileFormatError
from brainkit.registry import DATASETS, ENCODERS, MODELS, OBJECTIVES

__version__ = "0.1.0"

__all__ = [
    "BrainkitError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "FileFormatError",
    "DATASETS",
    "ENCODERS",
    "MODELS",
    "OBJECTIVES",
]
