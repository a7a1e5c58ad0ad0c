"""ROI patches: each subject's voxels grouped by ROI, each group resampled to one length (CLIP-MUSED's nsd variant).

``ROIPatches(names, members, roi_size)``: ``members[subject]`` is a bool (n_rois, n_voxels) matrix over that
subject's feature columns (``info["roi_members"]``, e.g. from the ``nsd`` dataset's ``patch_rois``); then
``patches(values, subject)`` maps (n, n_voxels) -> (n, n_rois, roi_size) float32. Subjects may have different
voxel counts: the patches have one shape for all, which is what lets one model read every subject.

The rule (the paper says ROI-based patching and no more, METHODS.md 2.2; this is our choice): an ROI's m voxels,
in column order (for volumes: ``numpy.nonzero(mask)`` order), are a vector v[0..m-1], resampled by linear
interpolation to roi_size points spread evenly from the first voxel to the last::

    p_j = j (m - 1) / (roi_size - 1)                      j = 0 .. roi_size - 1   (roi_size = 1: p = (m - 1) / 2)
    patch_j = (1 - (p_j - floor p_j)) v[floor p_j] + (p_j - floor p_j) v[min(floor p_j + 1, m - 1)]

(``numpy.interp`` over the voxel index; ``torch.nn.functional.interpolate(..., "linear", align_corners=True)``).
m = roi_size keeps the voxels as they are; m = 1 repeats the voxel; an ROI with no voxel in a subject is all
zeros (the training mean after z-scoring), logged. ``rest=True`` adds a last patch ``rest`` of the voxels in no
ROI, so no voxel goes unused; an ROI with no voxel in any subject is left out (and logged).

Saved with a run (:meth:`state`, :meth:`from_state`: the members and roi_size; the interpolation is recomputed
from them), so prediction patches new recordings as training did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from brainkit.errors import DataError

logger = logging.getLogger(__name__)

REST = "rest"
CHUNK = 2048  # rows patched at a time


def interpolation(m: int, roi_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower index, upper index, weight of the upper) of each of ``roi_size`` points over ``m`` voxels (m >= 1)."""
    if roi_size == 1:
        positions = np.array([(m - 1) / 2])
    else:
        positions = np.arange(roi_size) * ((m - 1) / (roi_size - 1))
    lower = np.floor(positions).astype(np.int64)
    upper = np.minimum(lower + 1, m - 1)
    return lower, upper, (positions - lower).astype(np.float32)


class ROIPatches:
    """Per subject, ROI voxels -> fixed-length patches: (n, n_voxels) -> (n, n_rois, roi_size)."""

    def __init__(self, names: Sequence[str], members: dict[str, np.ndarray], roi_size: int) -> None:
        if not isinstance(roi_size, int) or roi_size < 1:
            raise DataError(f"ROI patches: roi_size must be an int >= 1, found {roi_size!r}.")
        self.names, self.roi_size = list(names), roi_size
        self.members = {s: np.asarray(m, dtype=bool) for s, m in members.items()}
        self._index: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for subject, rows in self.members.items():
            if rows.ndim != 2 or len(rows) != len(self.names):
                raise DataError(
                    f"ROI patches: {subject}'s ROI members must be bool (n_rois={len(self.names)}, n_voxels), "
                    f"found {rows.shape}."
                )
            lower = np.zeros((len(rows), roi_size), np.int64)
            upper, weight = lower.copy(), np.zeros((len(rows), roi_size), np.float32)
            empty = ~rows.any(axis=1)
            for r, row in enumerate(rows):
                columns = np.flatnonzero(row)
                if len(columns):
                    lo, hi, w = interpolation(len(columns), roi_size)
                    lower[r], upper[r], weight[r] = columns[lo], columns[hi], w
            if empty.any():
                logger.warning(
                    "%s has no voxel in the ROI(s) %s: their patches are zeros.",
                    subject,
                    [self.names[r] for r in np.flatnonzero(empty)],
                )
            self._index[subject] = (lower, upper, weight, empty)

    @property
    def n_rois(self) -> int:
        return len(self.names)

    def n_voxels(self, subject: str) -> int:
        return int(self.members[self._subject(subject)].shape[1])

    def _subject(self, subject: str) -> str:
        if subject not in self.members:
            raise DataError(f"ROI patches are defined for {list(self.members)}, not for subject {subject!r}.")
        return subject

    def __call__(self, values: np.ndarray, subject: str) -> np.ndarray:
        """(n, n_voxels) of ``subject`` -> float32 (n, n_rois, roi_size)."""
        lower, upper, weight, empty = self._index[self._subject(subject)]
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != self.n_voxels(subject):
            raise DataError(
                f"ROI patches of {subject}: expected (n, {self.n_voxels(subject)}) voxel values, found "
                f"{values.shape}."
            )
        out = np.empty((len(values), *lower.shape), np.float32)
        for start in range(0, len(values), CHUNK):  # bounded temporaries on NSD's ~25k trials
            rows = values[start : start + CHUNK]
            out[start : start + CHUNK] = (1 - weight) * rows[:, lower] + weight * rows[:, upper]
        out[:, empty] = 0.0
        return out

    @classmethod
    def from_info(cls, info: dict, subjects: Sequence[str], roi_size: int, rest: bool = True) -> ROIPatches:
        """From a dataset's ``info["roi_names"]`` (n_rois names) and ``info["roi_members"]`` ({subject: bool
        (n_rois, n_voxels)}): ROIs empty in every subject left out, and with ``rest`` a last patch of the voxels in
        no ROI (when any subject has such voxels)."""
        if "roi_names" not in info or not isinstance(info.get("roi_members"), dict):
            raise DataError(
                "ROI patches need info['roi_names'] = [n_rois names] and info['roi_members'] = {subject: bool "
                "(n_rois, n_voxels)} over each subject's columns (the nsd dataset gives them with "
                "patch_rois=[...], e.g. ['prf-visualrois', 'floc-faces'])."
            )
        missing = [s for s in subjects if s not in info["roi_members"]]
        if missing:
            raise DataError(f"info['roi_members'] has no ROI members for subjects {missing}.")
        names = list(info["roi_names"])
        members = {s: np.asarray(info["roi_members"][s], dtype=bool) for s in subjects}
        used = np.any([m.any(axis=1) for m in members.values()], axis=0)
        if not used.all():
            logger.warning(
                "ROI(s) %s have no voxel in any subject's mask: left out.",
                [n for n, u in zip(names, used) if not u],
            )
        names = [n for n, u in zip(names, used) if u]
        members = {s: m[used] for s, m in members.items()}
        if rest and any((~m.any(axis=0)).any() for m in members.values()):
            names.append(REST)
            members = {s: np.vstack([m, ~m.any(axis=0)]) for s, m in members.items()}
        if not names:
            raise DataError("ROI patches: no ROI has a voxel in any subject's mask; choose other ROI files.")
        return cls(names, members, roi_size)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors ``rois/<subject>`` bool (n_rois, n_voxels), JSON meta with ``names`` and ``roi_size``)."""
        tensors = {f"rois/{s}": torch.from_numpy(m) for s, m in self.members.items()}
        return tensors, {"names": self.names, "roi_size": self.roi_size}

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], meta: dict, subjects: Sequence[str]) -> ROIPatches:
        return cls(meta["names"], {s: tensors[f"rois/{s}"] for s in subjects}, int(meta["roi_size"]))


class PatchGrid:
    """The nsd variant's counterpart of :class:`~brainkit.data.semantic.VolumeGrid`: rows already patched
    (n, n_rois, roi_size) -> the model's input tensor, unchanged. ``shape`` = (n_rois, roi_size)."""

    def __init__(self, patches: ROIPatches) -> None:
        self.patches = patches
        self.shape = (patches.n_rois, patches.roi_size)

    def __call__(self, values: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float32)
