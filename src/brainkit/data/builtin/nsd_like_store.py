"""The on-disk form of an ``nsd_like`` build: ``stimuli.npz``, one ``<subject>.npz``, ``info.json``.

A subject's file holds its training trials, its raw test trials, its voxels' fsaverage5 vertices and the noiseless
responses of the generative model (``noiseless``: (n_stimuli, n_voxels), rows in stimulus order, before noise and
before the per-session z-scoring); the averaged test rows are recomputed on load.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from brainkit.data.builtin.build_cache import load_stimuli, save_stimuli
from brainkit.data.schema import BrainSamples, DecodingDataset

SAMPLE_FIELDS = ("values", "stimulus_ids", "session", "run", "trial", "feature_coords")
PER_SUBJECT = (
    "raw_test_trials",
    "voxel_vertices",
    "noiseless_responses",
)  # info entries kept in <subject>.npz


def save(folder: Path, dataset: DecodingDataset) -> None:
    """Write the build to ``folder`` through a temporary folder and one rename (whole or absent)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        save_stimuli(tmp / "stimuli.npz", dataset.stimuli)
        info = dict(dataset.info)
        for subject in dataset.subjects:
            parts = {"train": dataset.train[subject], "test_trials": info["raw_test_trials"][subject]}
            arrays = {
                f"{part}:{field}": getattr(s, field) for part, s in parts.items() for field in SAMPLE_FIELDS
            }
            np.savez(
                tmp / f"{subject}.npz",
                vertices=info["voxel_vertices"][subject],
                noiseless=info["noiseless_responses"][subject],
                **arrays,
            )
        meta = {k: v for k, v in info.items() if k not in PER_SUBJECT}
        (tmp / "info.json").write_text(json.dumps(meta, indent=1))
        from brainkit.checkpoint import FILE_MODE

        os.chmod(tmp, FILE_MODE | 0o111)  # mkdtemp alone would leave the folder 0700
        if folder.exists():
            shutil.rmtree(folder)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same build first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load(folder: Path) -> DecodingDataset:
    meta = json.loads((folder / "info.json").read_text())
    stimuli = load_stimuli(folder / "stimuli.npz")
    train, test, raw_test, vertices, noiseless = {}, {}, {}, {}, {}
    for subject in meta["parameters"]["subjects"]:
        with np.load(folder / f"{subject}.npz") as data:
            parts = {
                part: BrainSamples(
                    subject=subject, space="nsdgeneral", **{f: data[f"{part}:{f}"] for f in SAMPLE_FIELDS}
                )
                for part in ("train", "test_trials")
            }
            vertices[subject], noiseless[subject] = data["vertices"], data["noiseless"]
        train[subject], raw_test[subject] = parts["train"], parts["test_trials"]
        test[subject] = raw_test[subject].average_repeats()
    info = meta | {"voxel_vertices": vertices, "raw_test_trials": raw_test, "noiseless_responses": noiseless}
    return DecodingDataset(name="nsd_like", stimuli=stimuli, train=train, test=test, info=info)
