"""Your own arrays -> the trial-based data contract (:class:`~brainkit.data.schema.DecodingDataset`).

:func:`from_arrays` takes per-subject brain arrays (voxels, vertices or ROIs: one row per trial) with the stimulus
id of each row, and optionally the stimuli's images, labels and embeddings; it checks every shape and id and
returns the dataset every trial-based recipe reads. ``brainkit.run(METHOD, dataset=...)`` saves it inside the run
folder (:func:`brainkit.data.readers.saved.save_dataset`), so that ``brainkit eval`` and ``brainkit predict`` work
on the run later; ``save_dataset(dataset, DIR)`` and ``--set data.name=folder --set data.options.root=DIR`` name it
from the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import DataError


def _per_subject(name: str, value: Any, subjects: list[str]) -> dict[str, Any]:
    """``value`` given per subject (a mapping with exactly ``subjects``) or once for all of them."""
    if isinstance(value, Mapping):
        if sorted(value) != sorted(subjects):
            raise DataError(
                f"from_arrays: {name} is given for subjects {sorted(value)}, the brain data for {sorted(subjects)}."
            )
        return dict(value)
    return {s: value for s in subjects}


def _first_seen(parts: list[np.ndarray]) -> np.ndarray:
    ids = np.concatenate([np.asarray(p, dtype=str) for p in parts])
    _, first = np.unique(ids, return_index=True)
    return ids[np.sort(first)]


def from_arrays(
    train: Mapping[str, np.ndarray],
    train_stimuli: Mapping[str, Any] | Any,
    test: Mapping[str, np.ndarray],
    test_stimuli: Mapping[str, Any] | Any,
    *,
    space: Mapping[str, str] | str,
    stimulus_ids: Any = None,
    images: np.ndarray | None = None,
    labels: Any = None,
    embeddings: Mapping[str, np.ndarray] | None = None,
    average_test_repeats: bool = True,
    name: str = "my_data",
    info: dict[str, Any] | None = None,
) -> DecodingDataset:
    """A :class:`DecodingDataset` from arrays.

    Parameters
    ----------
    train, test : dict subject -> float array (n_trials, n_features)
        One row per trial: voxels, vertices or ROI values (betas, or frames for continuous designs). A subject's
        train and test arrays have the same features. Values are float32 after conversion; NaN/inf are refused.
    train_stimuli, test_stimuli : dict subject -> array of str (n_trials,), or one array for every subject
        The stimulus id shown on each row.
    space : str or dict subject -> str
        Where the features live ("nsdgeneral", "fsaverage5", "MNI152NLin2009cAsym", "native", ...); a trained
        run checks it when it predicts.
    stimulus_ids : array of str (n_stimuli,), optional
        The stimulus set, in the order of ``images`` / ``labels`` / ``embeddings`` rows. Default: every id the
        brain data name, in first-seen order (then ``images`` etc. must follow that order).
    images : uint8 array (n_stimuli, height, width, 3), optional
        The stimuli, for image targets (the run embeds them with its encoder) and retrieval figures.
    labels : array of str (n_stimuli,), optional
    embeddings : dict encoder -> float array (n_stimuli, ...), optional
        Precomputed targets (e.g. your own CLIP embeddings): name one as ``data.target``.
    average_test_repeats : bool
        Average the test rows of each stimulus into one (as NSD's test set is used).

    Every test stimulus must appear in ``stimulus_ids``; nothing is dropped or cast silently.
    """
    subjects = sorted(train)
    if not subjects:
        raise DataError("from_arrays: train holds no subject.")
    if sorted(test) != subjects:
        raise DataError(f"from_arrays: train has subjects {subjects}, test has {sorted(test)}.")
    if images is not None:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise DataError(
                f"from_arrays: images must be uint8 RGB in 0-255, found {images.dtype}; for floats in [0, 1] "
                "pass (images * 255).round().astype('uint8')."
            )
    spaces = _per_subject("space", space, subjects)
    ids = {"train": _per_subject("train_stimuli", train_stimuli, subjects),
           "test": _per_subject("test_stimuli", test_stimuli, subjects)}  # fmt: skip
    arrays = {"train": dict(train), "test": dict(test)}
    if stimulus_ids is None:
        stimulus_ids = _first_seen([ids[p][s] for p in ("train", "test") for s in subjects])
    stimuli = Stimuli(ids=stimulus_ids, images=images, labels=labels, embeddings=dict(embeddings or {}))
    parts: dict[str, dict[str, BrainSamples]] = {"train": {}, "test": {}}
    for part in ("train", "test"):
        for subject in subjects:
            values = np.asarray(arrays[part][subject])
            if not np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_:
                raise DataError(
                    f"from_arrays: {part}[{subject!r}] has dtype {values.dtype}; expected numbers."
                )
            samples = BrainSamples(
                subject=subject, values=values, stimulus_ids=ids[part][subject], space=spaces[subject]
            )
            parts[part][subject] = (
                samples.average_repeats() if part == "test" and average_test_repeats else samples
            )
    return DecodingDataset(name, stimuli, parts["train"], parts["test"], dict(info or {}))


__all__ = ["from_arrays"]
