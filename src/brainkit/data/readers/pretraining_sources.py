"""Phase-1 pretraining voxels by source name: ``god``, ``bold5000``, ``hcp`` and ``nitime``, read and gathered.

Above the readers (:mod:`~brainkit.data.readers.god`, :mod:`~brainkit.data.readers.bold5000`,
:mod:`~brainkit.data.readers.hcp_visual`, :mod:`~brainkit.data.readers.nitime_bold`), which share the matrix
helpers of :mod:`brainkit.data.readers.pretraining_voxels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data.readers.pretraining_voxels import (
    HCP_WINDOW_FRAMES,
    gather_pretraining_voxels,
    pad_to_multiple,
)
from brainkit.errors import ConfigError, FileFormatError


def _hcp_source(
    paths: Sequence[str | Path] = (), folder: str | Path | None = None, window: int = HCP_WINDOW_FRAMES
) -> dict[str, np.ndarray]:
    from brainkit.data.readers import hcp_visual

    paths = list(paths)
    if folder is not None:  # Vis-Dec's layout: npz/<subject>/HCP_visual_voxel.npz
        paths += sorted(Path(folder).glob(f"*/{hcp_visual.NPZ_NAME}"))
        if not paths:
            raise FileFormatError(
                f"No */{hcp_visual.NPZ_NAME} under {folder}; write them with write_hcp_visual_voxels."
            )
    if not paths:
        raise ConfigError("The 'hcp' source needs paths=[...] (npz or dtseries files) or folder=<npz root>.")
    out = {}
    for path in map(Path, paths):
        if path.name.endswith(".dtseries.nii"):
            areas = hcp_visual.read_visual_voxels(path)
        else:
            areas = hcp_visual.read_hcp_visual_voxels(path)
        out[str(path)] = hcp_visual.hcp_visual_samples(areas, window)
    return out


def _nitime_source() -> dict[str, np.ndarray]:
    from brainkit.data.readers.nitime_bold import nitime_bold_voxels

    return {"nitime": pad_to_multiple(nitime_bold_voxels())}


def read_pretraining_source(kind: str, **options: Any) -> dict[str, np.ndarray]:
    """The normalised (n_samples, n_voxels) matrices of one source kind, by subject or run.

    ``god``: ``folder``, ``subjects`` (1-5), ``roi`` ("VC") -> ``god.god_pretraining_voxels``.
    ``bold5000``: ``root``, ``subjects`` (1-4), ``trials`` ("train") -> ``bold5000.bold5000_pretraining_voxels``.
    ``hcp``: ``paths`` (HCP_visual_voxel.npz or *.dtseries.nii files, one per subject) and / or ``folder``
    (``folder/<subject>/HCP_visual_voxel.npz``, Vis-Dec's layout), ``window`` (10)
    -> ``hcp_visual.hcp_visual_samples`` of each. ``nitime``: no options -> ``nitime_bold.nitime_bold_voxels``.
    """
    return pretraining_reader(kind, options)(**options)


def pretraining_reader(kind: str, options: dict[str, Any]) -> Any:
    """The reader of source ``kind`` after checking that it takes ``options`` (:class:`ConfigError` if not);
    reads nothing, so a recipe can check its sources before any data are built."""
    import inspect

    from brainkit.data.readers import bold5000, god

    readers = {
        "god": god.god_pretraining_voxels,
        "bold5000": bold5000.bold5000_pretraining_voxels,
        "hcp": _hcp_source,
        "nitime": _nitime_source,
    }
    if kind not in readers:
        raise ConfigError(f"Unknown pretraining source {kind!r}; choose from {list(readers)}.")
    try:
        inspect.signature(readers[kind]).bind(**options)
    except TypeError as err:
        raise ConfigError(
            f"Pretraining source {kind!r}: bad options {sorted(options)} ({err}); see read_pretraining_source."
        ) from None
    return readers[kind]


def load_pretraining_voxels(
    sources: dict[str, dict], *, length: int | None = None, truncate: bool = False
) -> np.ndarray:
    """Read several source kinds and gather them: e.g. ``{"nitime": {}, "god": {"folder": ...}}`` ->
    float32 (n_samples, length) by :func:`gather_pretraining_voxels` (keys "kind/subject" keep the provenance)."""
    matrices = {}
    for kind, options in sources.items():
        for name, values in read_pretraining_source(kind, **dict(options)).items():
            matrices[f"{kind}/{name}"] = values
    return gather_pretraining_voxels(matrices, length=length, truncate=truncate)
