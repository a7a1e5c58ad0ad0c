"""brainkit: fMRI brain decoding and brain representation learning.

The public API is a handful of names; everything else lives in its module:

- ``brainkit.run(METHOD, dataset=..., preset=..., overrides=[...], out=...)``: run a recipe, get a :class:`Run`;
- ``brainkit.load(RUN)``: a finished run folder; ``.metrics``, ``.evaluate()``, ``.predict(x)``, ``.retrieve(x, gallery)``;
- ``brainkit.data``: your data in (``from_arrays``, ``save_dataset``, ``load_dataset``);
- ``brainkit.evaluation``: the scoring functions (retrieval, multi-label, reconstruction, encoding).
"""

from brainkit.errors import BrainkitError, CheckpointError, ConfigError, DataError, FileFormatError
from brainkit.registry import DATASETS, ENCODERS, MODELS, OBJECTIVES

__version__ = "0.1.0"


def load(folder):
    """The finished run in ``folder`` (:class:`brainkit.recipes.loaded.Run`)."""
    from brainkit.recipes.loaded import load as _load

    return _load(folder)


def run(method, dataset=None, **options):
    """Run recipe ``method`` and return the finished run (:func:`brainkit.recipes.loaded.run`)."""
    from brainkit.recipes.loaded import run as _run

    return _run(method, dataset, **options)


__all__ = [
    "load",
    "run",
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
