"""The data contract: what a registered dataset factory returns, one container per design kind.

Every container is a :class:`Dataset`: it declares its ``design`` (a class attribute), names its ``subjects``
(a field or a property: ``list[str]``) and carries an ``info`` dict (JSON-ready: source, generative model, TR).
A factory registered in :data:`brainkit.registry.DATASETS` is annotated with the container it returns
(``-> DecodingDataset``), so the contract can be checked without building the data (tests/test_schema.py).

The design kinds and their containers:

``"trials"`` (:class:`brainkit.data.schema.DecodingDataset`)
    One brain pattern per stimulus presentation: per subject, train and test :class:`BrainSamples` (samples x
    features) paired with one shared :class:`Stimuli` set. NSD betas (``nsd``, ``nsd_like``) and HCP movie
    seconds taken as samples (``hcp_movie_like``).
``"continuous"`` (:class:`brainkit.data.builtin.movie_surface_like.MovieSurfaceData`)
    Time series of frames on a space while a movie plays, the stimulus as per-second features aligned with the
    frames: surface movie runs with video and audio (``movie_surface_like``, ``hcp_movie_surface``).
``"frames"`` (:class:`brainkit.data.surface_frames.SurfaceFrames`)
    Runs of frames on an icosphere and nothing else (no stimulus: rest, or a task whose events are not used),
    for self-supervised pretraining: the real rest run ``rest_surface``, your fMRIPrep surface runs
    ``bids_surface``.
``"cohort"`` (:class:`brainkit.data.cohort.Cohort`)
    Many subjects' ROI time series (rest and task runs) with a phenotype table (``hcp_cohort``, your ``roi_tables``).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, ClassVar

DESIGNS = ("trials", "continuous", "frames", "cohort")


class Dataset:
    """The base of every container a dataset factory returns: ``design``, ``subjects`` and ``info``."""

    design: ClassVar[str]
    subjects: list[str]
    info: dict[str, Any]


def returns_of(factory: Callable[..., Any]) -> Any:
    """The container a dataset factory declares it returns (its return annotation, resolved)."""
    return typing.get_type_hints(factory).get("return")


__all__ = ["DESIGNS", "Dataset", "returns_of"]
