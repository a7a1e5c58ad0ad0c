"""NSD's stimulus files: ``nsd_stim_info_merged.csv`` (one row per 73k image) and ``nsd_stimuli.hdf5``
(``imgBrick``, uint8 (73000, 425, 425, 3)), read and checked for :func:`brainkit.data.readers.nsd.load_nsd`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from brainkit.data.readers.nsd_betas import STIM_INFO, STIMULI, require
from brainkit.errors import DataError, FileFormatError


def read_stim_info(root: str | Path) -> pd.DataFrame:
    """Read ``nsd_stim_info_merged.csv``: one row per 73k image, indexed by ``nsdId`` (0-based).

    Columns kept as in the file; ``shared1000`` is made boolean. Needs ``nsdId``, ``cocoId``, ``shared1000``.
    """
    path = require(Path(root), STIM_INFO)
    try:
        table = pd.read_csv(path, index_col=0)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise FileFormatError(f"Cannot read {path}: {error}. Download it again.") from error
    missing = [c for c in ("nsdId", "cocoId", "shared1000") if c not in table.columns]
    if missing:
        raise FileFormatError(f"{path} lacks columns {missing}; found {list(table.columns)[:12]}.")
    if table["nsdId"].duplicated().any():
        raise FileFormatError(f"{path}: nsdId values repeat; expected one row per image.")
    shared = table["shared1000"]
    table["shared1000"] = (
        shared.astype(str).str.lower().isin({"true", "1", "1.0"}) if shared.dtype != bool else shared
    )
    return table.set_index("nsdId", drop=False).sort_index()


def read_images(root: str | Path, nsd_ids: Sequence[int], image_size: int | None = None) -> np.ndarray:
    """Images ``nsd_ids`` (0-based rows of ``imgBrick``), read one by one, optionally resized (bicubic).

    Returns
    -------
    uint8 array, shape (len(nsd_ids), size, size, 3), in the order of ``nsd_ids``
    """
    import h5py
    from PIL import Image

    path = require(Path(root), STIMULI)
    nsd_ids = np.asarray(nsd_ids, dtype=np.int64)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise FileFormatError(
            f"Cannot open {path}: {error}. The file looks truncated: download it again."
        ) from error
    with handle:
        if "imgBrick" not in handle:
            raise FileFormatError(f"{path}: no dataset 'imgBrick' (found {sorted(handle.keys())}).")
        brick = handle["imgBrick"]
        if brick.ndim != 4 or brick.shape[-1] != 3:
            raise FileFormatError(f"{path}: imgBrick has shape {brick.shape}, expected (73000, 425, 425, 3).")
        if brick.dtype != np.uint8:  # NSD's imgBrick is uint8 0-255; a cast would turn 0-1 floats black
            raise FileFormatError(
                f"{path}: imgBrick holds {brick.dtype}, expected uint8 (0-255) as NSD releases it; a float brick "
                "in 0-1 would be cast to black images. Use the released nsd_stimuli.hdf5, or save it as uint8."
            )
        if len(nsd_ids) and (nsd_ids.min() < 0 or nsd_ids.max() >= brick.shape[0]):
            raise DataError(
                f"nsdId out of range 0-{brick.shape[0] - 1} in {path}: {nsd_ids.min()}-{nsd_ids.max()}."
            )
        height, width = (image_size, image_size) if image_size else brick.shape[1:3]
        out = np.empty((len(nsd_ids), height, width, 3), dtype=np.uint8)
        for row, nsd_id in enumerate(tqdm(nsd_ids, desc="NSD images", disable=None, leave=False)):
            try:
                image = np.asarray(brick[int(nsd_id)])
            except OSError as error:
                raise FileFormatError(
                    f"Cannot read image {nsd_id} from {path}: {error}. Download it again."
                ) from error
            if image_size and image.shape[:2] != (height, width):
                image = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))
            out[row] = image
    return out
