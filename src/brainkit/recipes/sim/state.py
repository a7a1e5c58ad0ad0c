"""What a finished ``sim`` run keeps of its data for prediction (``predictor/`` in the run folder, written when the
run ends): :class:`SIMState`.

``predictor/inputs.json``: the icosphere order and hemisphere, the haemodynamic lag and the window (frames per
sample), the subjects (and which were held out), the movie runs and their frame counts, the models (inits), the
retrieval protocol and its seed. ``predictor/arrays.safetensors``: the cortex mask (n_vertices,) bool, the patches
(n_patches, n_patch_vertices), the runs' layout ``segment_of`` / ``retest`` / ``held_out`` (n_runs, n_clips), and
the gallery of the run's test clips: ``gallery_run`` / ``gallery_clip`` (n_gallery,), their thumbnails
(n_gallery, h, w, 3) uint8 and, per model, their video and audio embeddings ``video/<init>`` / ``audio/<init>``
(n_gallery, embedding_dim) float32, computed by the evaluation's own :func:`~brainkit.evaluation.movie_retrieval
.embed_stimuli`. The gallery is every clip of a held-out half: the run's (``held_out``) and SIM's protocol's
(:func:`~brainkit.evaluation.sim_retrieval.half`, one clip later in odd-length segments), so every candidate of the
evaluation is in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import atomic_write_text, load_tensors, save_tensors
from brainkit.errors import CheckpointError
from brainkit.evaluation import movie_retrieval as mr
from brainkit.evaluation import sim_retrieval

STATE = "predictor"  # the folder in the run
ARRAYS = (
    "cortex",
    "patches",
    "segment_of",
    "retest",
    "held_out",
    "gallery_run",
    "gallery_clip",
    "thumbnails",
)


def protocol_halves(segment_of: np.ndarray, retest: np.ndarray) -> np.ndarray:
    """(n_runs, n_clips) bool: the held-out half of every segment as SIM's protocol cuts it (test-retest too)."""
    out = np.zeros(segment_of.shape, dtype=bool)
    for run in range(segment_of.shape[0]):
        bounds, _ = sim_retrieval.segment_table(segment_of[run], retest[run])
        for first, last in bounds:
            out[run, sim_retrieval.half(int(first), int(last), "held_out")] = True
    return out


@dataclass
class SIMState:
    """What prediction needs of a sim run (module doc); ``meta`` the JSON part, ``arrays`` the tensors."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    embeddings: dict[str, dict[str, np.ndarray]]  # init -> {"video", "audio"} -> (n_gallery, embedding_dim)

    @classmethod
    def from_run(cls, config: Any, split: dict[str, Any], data: Any, models: dict[str, Any],
                 seed: int) -> SIMState:  # fmt: skip
        """The state of a run of ``config`` on ``data`` (``split``: the recipe's ``prepare``; ``models``: init ->
        trained SIM; ``seed``: the retrieval's)."""
        held_out = np.asarray(split["clips"]["held_out"], dtype=bool)
        segment_of, retest = np.asarray(data.segment_of), np.asarray(data.retest, dtype=bool)
        gallery = held_out | (protocol_halves(segment_of, retest) & (segment_of >= 0))
        runs, clips = np.nonzero(gallery)
        embeddings = {}
        for init, model in models.items():
            stimulus = mr.embed_stimuli(
                model, split["arrays"]
            )  # (n_runs, n_clips, d): what the evaluation scored
            embeddings[init] = {role: np.ascontiguousarray(stimulus[role][runs, clips]) for role in stimulus}
        n_frames = data.fmri.shape[2]
        options = data.info.get("options", {}) if isinstance(data.info, dict) else {}
        meta = {
            "data": config.data,
            "order": int(data.order),
            "hemisphere": str(options.get("hemisphere", "left")),
            "lag": int(split["arrays"].lag),
            "n_frames": int(split["arrays"].n_frames),
            "subjects": list(data.subjects),
            "test_subjects": [data.subjects[i] for i in split["groups"]["test"]],
            "runs": list(data.runs),
            "run_frames": [int(n) for n in data.info.get("run_frames", [n_frames] * len(data.runs))],
            "inits": list(models),
            "protocol": config.evaluation.protocol,
            "n_targets": int(config.evaluation.n_targets),
            "seed": int(seed),
        }
        arrays = {"cortex": np.asarray(data.cortex, dtype=bool), "patches": np.asarray(split["patches"], np.int64),
                  "segment_of": segment_of.astype(np.int64), "retest": retest, "held_out": held_out,
                  "gallery_run": runs.astype(np.int64), "gallery_clip": clips.astype(np.int64),
                  "thumbnails": np.ascontiguousarray(np.asarray(data.thumbnails)[runs, clips], np.uint8)}  # fmt: skip
        return cls(meta, arrays, embeddings)

    def save(self, folder: Path) -> None:
        """``folder/predictor/inputs.json`` and ``arrays.safetensors`` (module doc), each written atomically."""
        tensors = {name: torch.from_numpy(np.array(self.arrays[name])) for name in ARRAYS}  # copies: writable
        for init, roles in self.embeddings.items():
            for role, values in roles.items():
                tensors[f"{role}/{init}"] = torch.from_numpy(values)
        save_tensors(Path(folder) / STATE / "arrays.safetensors", tensors)
        atomic_write_text(Path(folder) / STATE / "inputs.json", json.dumps(self.meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> SIMState:
        path = Path(folder) / STATE
        try:
            meta = json.loads((path / "inputs.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CheckpointError(
                f"{path / 'inputs.json'} cannot be read ({err}); run the sim run again."
            ) from None
        tensors = {k: v.numpy() for k, v in load_tensors(path / "arrays.safetensors").items()}
        missing = [name for name in ARRAYS if name not in tensors] + [
            f"{role}/{init}"
            for init in meta["inits"]
            for role in ("video", "audio")
            if f"{role}/{init}" not in tensors
        ]
        if missing:
            raise CheckpointError(f"{path / 'arrays.safetensors'} lacks {missing}; run the sim run again.")
        embeddings = {
            init: {role: tensors[f"{role}/{init}"] for role in ("video", "audio")} for init in meta["inits"]
        }
        return cls(meta, {name: tensors[name] for name in ARRAYS}, embeddings)

    def gallery_ids(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The gallery clips' ids, ``"<run>/clip<c>"`` (clip c = the movie's seconds c .. c + 2)."""
        runs, clips = self.arrays["gallery_run"], self.arrays["gallery_clip"]
        rows = np.arange(len(runs)) if rows is None else rows
        return np.array([f"{self.meta['runs'][runs[i]]}/clip{clips[i]:04d}" for i in rows])


__all__ = ["ARRAYS", "STATE", "SIMState", "protocol_halves"]
