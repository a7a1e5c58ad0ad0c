"""A trial-based dataset saved as a folder (safetensors + JSON), and the ``folder`` dataset that reads it back.

:func:`save_dataset` writes a :class:`~brainkit.data.schema.DecodingDataset` (yours from
:func:`brainkit.data.from_arrays`, or any registered one) so that a config can name it
(``data.name=folder``, ``data.options.root=DIR``) and a run folder can carry the data it was trained on (what
``brainkit eval`` and ``brainkit predict`` read again). Layout of ``DIR``:

- ``dataset.json``: format and version, name, design, the subjects with their space and stimulus ids per part,
  the stimulus ids and labels, the JSON part of ``info``, and the SHA-256 and size of every other file;
- ``stimuli.safetensors``: ``images`` (n_stimuli, H, W, 3) uint8 when present, ``embedding.<encoder>`` float32;
- ``<subject>.train.safetensors`` / ``<subject>.test.safetensors``: ``values`` (n_samples, n_features) float32,
  ``session``, ``run``, ``trial``, ``n_repeats`` (n_samples,) int64, ``feature_coords`` (n_features, 3) if any;
- ``info.safetensors``: the array entries of ``info`` (a brain mask, an affine), when there are any.

Every file is checked against its recorded size and checksum when read, so a truncated or altered file is an
error, never silently wrong data. The folder is written under a temporary name and renamed: whole or absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import atomic_folder, atomic_write_text, load_tensors, save_tensors, sha256_file
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import DataError, FileFormatError
from brainkit.registry import DATASETS

FORMAT, VERSION, INDEX = "brainkit-dataset", 1, "dataset.json"
PARTS = ("train", "test")
SAMPLE_ARRAYS = ("values", "session", "run", "trial", "n_repeats")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _split_info(info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``info`` as (its JSON part, its array part); anything else is refused rather than dropped."""
    plain, arrays = {}, {}
    for key, value in info.items():
        if isinstance(value, np.ndarray):
            arrays[key] = torch.from_numpy(np.ascontiguousarray(value))
            continue
        if isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
            for name, array in value.items():  # per-subject arrays (bids: masks, affines) as "key/name"
                arrays[f"{key}/{name}"] = torch.from_numpy(np.ascontiguousarray(array))
            continue
        try:
            json.dumps(value)
        except TypeError:
            raise DataError(
                f"save_dataset: info[{key!r}] is a {type(value).__name__}, which is neither JSON nor an array; "
                "convert it (or remove it) before saving."
            ) from None
        plain[key] = value
    return plain, arrays


def save_dataset(dataset: DecodingDataset, folder: str | Path) -> Path:
    """Write ``dataset`` to ``folder`` (see the module docstring); returns the folder."""
    if not isinstance(dataset, DecodingDataset):
        raise DataError(
            f"save_dataset writes trial-based datasets (DecodingDataset); found {type(dataset).__name__}."
        )
    bad = [s for s in dataset.subjects if not _SAFE.match(s)]
    if bad:
        raise DataError(f"Subject names must be file-name safe (letters, digits, . _ -); found {bad}.")
    plain, arrays = _split_info(dataset.info)
    stimuli = dataset.stimuli
    with atomic_folder(folder) as tmp:
        tensors = {f"embedding.{k}": torch.from_numpy(v) for k, v in stimuli.embeddings.items()}
        if stimuli.images is not None:
            if stimuli.images.dtype != np.uint8:
                raise DataError(f"Stimulus images must be uint8 RGB; found {stimuli.images.dtype}.")
            tensors["images"] = torch.from_numpy(np.ascontiguousarray(stimuli.images))
        files = {"stimuli.safetensors": tensors}
        if arrays:
            files["info.safetensors"] = arrays
        subjects: dict[str, Any] = {}
        for subject in dataset.subjects:
            entry: dict[str, Any] = {}
            for part in PARTS:
                samples: BrainSamples = getattr(dataset, part)[subject]
                part_tensors = {
                    k: torch.from_numpy(np.ascontiguousarray(getattr(samples, k))) for k in SAMPLE_ARRAYS
                }
                if samples.feature_coords is not None:
                    part_tensors["feature_coords"] = torch.from_numpy(samples.feature_coords)
                files[f"{subject}.{part}.safetensors"] = part_tensors
                entry[part] = {"space": samples.space, "stimulus_ids": samples.stimulus_ids.tolist()}
            subjects[subject] = entry
        for name, content in files.items():
            save_tensors(tmp / name, content)
        index = {
            "format": FORMAT,
            "version": VERSION,
            "name": dataset.name,
            "design": dataset.design,
            "stimuli": {
                "ids": stimuli.ids.tolist(),
                "labels": None if stimuli.labels is None else stimuli.labels.tolist(),
            },
            "subjects": subjects,
            "info": plain,
            "files": {n: {"sha256": sha256_file(tmp / n), "bytes": (tmp / n).stat().st_size} for n in files},
        }
        atomic_write_text(tmp / INDEX, json.dumps(index, indent=1))
    return Path(folder)


def _read_index(root: Path) -> dict[str, Any]:
    path = root / INDEX
    if not path.is_file():
        raise FileFormatError(
            f"{root} is not a saved brainkit dataset (no {INDEX}); write one with brainkit.data.save_dataset."
        )
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FileFormatError(f"{path} is truncated or not JSON ({err}).") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise FileFormatError(f"{path} is not a brainkit dataset index (format {FORMAT!r}).")
    if index.get("version") != VERSION:
        raise FileFormatError(
            f"{path} is format version {index.get('version')}; this brainkit reads version {VERSION}."
        )
    return index


def _tensors(root: Path, index: dict[str, Any], name: str) -> dict[str, np.ndarray]:
    """The arrays of file ``name``, after checking its size and checksum against the index."""
    path, expected = root / name, index["files"].get(name)
    if expected is None:
        raise FileFormatError(f"{root / INDEX} lists no file {name}; the dataset folder is incomplete.")
    if not path.is_file():
        raise FileFormatError(f"{path} is missing; the dataset folder is incomplete. Save the dataset again.")
    size = path.stat().st_size
    if size != expected["bytes"] or sha256_file(path) != expected["sha256"]:
        raise FileFormatError(
            f"{path} does not match the checksum recorded when it was saved ({size} bytes, recorded "
            f"{expected['bytes']}): it is truncated or altered. Save the dataset again."
        )
    return {k: v.numpy() for k, v in load_tensors(path).items()}


@DATASETS.register(
    "folder",
    space="what the saved dataset names (dataset.json)",
    needs="root=: a folder brainkit.data.save_dataset wrote (dataset.json + safetensors files, checksummed)",
    help="Your trial-based data saved with brainkit.data.save_dataset (e.g. from from_arrays): root=DIR with dataset.json",
)
def folder_dataset(root: str) -> DecodingDataset:
    """Read the dataset saved in ``root`` (trial-based design), every file checked against its checksum."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"Dataset folder {root} does not exist (data.options.root).")
    index = _read_index(root)
    stored = _tensors(root, index, "stimuli.safetensors")
    labels = index["stimuli"]["labels"]
    stimuli = Stimuli(
        ids=np.asarray(index["stimuli"]["ids"], dtype=str),
        images=stored.get("images"),
        labels=None if labels is None else np.asarray(labels, dtype=str),
        embeddings={k.removeprefix("embedding."): v for k, v in stored.items() if k.startswith("embedding.")},
    )
    parts: dict[str, dict[str, BrainSamples]] = {part: {} for part in PARTS}
    for subject, entry in index["subjects"].items():
        for part in PARTS:
            arrays = _tensors(root, index, f"{subject}.{part}.safetensors")
            parts[part][subject] = BrainSamples(
                subject=subject,
                stimulus_ids=np.asarray(entry[part]["stimulus_ids"], dtype=str),
                space=entry[part]["space"],
                feature_coords=arrays.get("feature_coords"),
                **{k: arrays[k] for k in SAMPLE_ARRAYS},
            )
    info = dict(index["info"])
    if "info.safetensors" in index["files"]:
        for key, array in _tensors(root, index, "info.safetensors").items():
            if "/" in key:
                outer, inner = key.split("/", 1)
                info.setdefault(outer, {})[inner] = array
            else:
                info[key] = array
    return DecodingDataset(index["name"], stimuli, parts["train"], parts["test"], info)


__all__ = ["folder_dataset", "save_dataset"]
