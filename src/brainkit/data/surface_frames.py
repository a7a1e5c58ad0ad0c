"""The container of surface fMRI runs on an icosphere (design ``"frames"``), and the step that puts a
hemisphere pair on it.

fsaverage's spheres *are* icospheres (fsaverage5 = order 5, fsaverage6 = order 6, fsaverage = order 7) and a
lower order's vertices are the first ones of a higher order (:mod:`brainkit.surface.icosphere`), so a left
hemisphere needs no resampling; the right one is mirrored onto the left (SIM's symmetrisation) by barycentric
resampling (:func:`brainkit.surface.resample.hemisphere_to_icosphere`). Each hemisphere is then demeaned per
vertex and z-scored per frame over its cortex (SIM's preprocessing,
:func:`brainkit.surface.readers.normalise_frames`); vertices without signal (the medial wall) are masked and 0.

Shapes: ``SurfaceFrames.runs[i].hemispheres["left" | "right"].frames`` (n_frames, n_vertices(order)) float32,
``.mask`` (n_vertices(order),) bool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from brainkit.data.contract import Dataset
from brainkit.errors import DataError
from brainkit.surface.readers import HemisphereFrames, normalise_frames

FSAVERAGE_ORDERS = {"fsaverage3": 3, "fsaverage4": 4, "fsaverage5": 5, "fsaverage6": 6, "fsaverage": 7}


@dataclass(frozen=True)
class SurfaceRun:
    """One run of one subject: ``hemispheres["left" | "right"]`` on the icosphere (right mirrored)."""

    subject: str
    label: str
    hemispheres: dict[str, HemisphereFrames]


@dataclass
class SurfaceFrames(Dataset):
    """Surface runs on the order-``order`` icosphere (design ``"frames"`` of :mod:`brainkit.data.contract`),
    every run's hemispheres of one length; ``subjects`` in the order of their first run."""

    design: ClassVar[str] = "frames"
    runs: list[SurfaceRun]
    subjects: list[str]
    order: int
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.runs:
            raise DataError("SurfaceFrames: no runs.")
        from brainkit.surface import n_vertices

        for run in self.runs:
            for hemi in ("left", "right"):
                frames = run.hemispheres[hemi].frames
                if frames.shape[1] != n_vertices(self.order):
                    raise DataError(
                        f"SurfaceFrames: {run.subject} {run.label} {hemi} has {frames.shape[1]} vertices, expected "
                        f"{n_vertices(self.order)} (the order-{self.order} icosphere)."
                    )


def frames_on_icosphere(
    left: np.ndarray, right: np.ndarray, order: int, cache_dir: str | None = None, source: str = "run"
) -> dict[str, HemisphereFrames]:
    """A hemisphere pair on fsaverage of ``order`` ((n_frames, n_vertices(order)) each) -> ``{"left", "right"}``
    frames on the icosphere (right mirrored), masked (vertices that vary) and normalised (module docstring)."""
    from brainkit.surface import icosphere, n_vertices
    from brainkit.surface.resample import hemisphere_to_icosphere

    n = n_vertices(order)
    if left.shape[1] != n or right.shape[1] != n or len(left) != len(right):
        raise DataError(
            f"{source}: hemispheres of shapes {left.shape} and {right.shape}; fsaverage of order {order} has {n} "
            "vertices per hemisphere and both must have the same frames."
        )
    right = hemisphere_to_icosphere(right, icosphere(order), "right", order=order, method="barycentric",
                                    cache_dir=cache_dir)  # fmt: skip
    out = {}
    for hemi, frames in (("left", left), ("right", right)):
        if not np.isfinite(frames).all():
            raise DataError(f"{source}: the {hemi} hemisphere has NaN or inf values.")
        mask = frames.std(axis=0) > 1e-3 * frames.std()
        if not mask.any():
            raise DataError(f"{source}: no vertex of the {hemi} hemisphere varies over time.")
        out[hemi] = HemisphereFrames(normalise_frames(frames, mask), mask, tr=None)
    return out


__all__ = ["FSAVERAGE_ORDERS", "SurfaceFrames", "SurfaceRun", "frames_on_icosphere"]
