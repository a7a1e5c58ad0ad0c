"""A finished clip_mused run decoding new recordings into category probabilities: ``brainkit.load(RUN).predict(x,
subject=...)`` / ``brainkit predict RUN --input new.npy --subject sub01 --out probabilities.npy``.

The recordings (an array (n, n_voxels), or a .npy / NIfTI / GIFTI file; NIfTI is masked with the dataset's brain
mask) of one of the run's subjects go through what that subject's test data went through. On ``hcp_movie`` runs a
NIfTI file is taken as one whole run on HCP's grid, as the training runs were read: masked with
``info["run_mask"]`` and normalised per voxel over its volumes (the dataset's ``normalisation``); its volumes are
decoded as they are (no delay: pass the volumes you mean, e.g. ``delay`` TRs after the seconds). Then: z-scored with its
training trials' statistics, scattered into the model's volume grid, then the trained network with that subject's
tokens (``decoder``: a network method of the run, default ``clip_mused``; ``per_subject`` uses that subject's own
network) and a sigmoid. Output: float32 (n, n_classes) in the order of :attr:`CLIPMUSEDPredictor.categories`. The
run's own test data give exactly the probabilities the run scored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import atomic_write_text, load_tensors, save_tensors
from brainkit.data.readers.inputs import brain_matrix
from brainkit.data.readers.movie_volumes import normalise_run
from brainkit.data.semantic import SampleArrays, VolumeGrid, semantic_mask
from brainkit.data.transforms import Standardizer
from brainkit.errors import CheckpointError, ConfigError, DataError

STATE = (
    "predictor"  # in the run folder: what the predictor reads of the data (inputs.json, arrays.safetensors)
)


class PredictorState:
    """What a run's predictor needs of its data: subjects, their spaces, categories, the volume mask (and, for
    ``hcp_movie``, the run-grid mask and normalisation) and each subject's training z-scoring. Saved in the run
    folder (``predictor/``) when the run ends, so predicting does not rebuild the data (the real HCP data take
    many minutes to read); runs without it rebuild it from their dataset."""

    def __init__(self, subjects, spaces, categories, mask, scalers, run=None) -> None:
        self.subjects, self.spaces, self.categories = list(subjects), dict(spaces), list(categories)
        self.mask, self.scalers, self.run = np.asarray(mask, bool), scalers, run

    @classmethod
    def from_dataset(cls, dataset: Any) -> PredictorState:
        run_mask = dataset.info.get("run_mask")  # hcp_movie: a run file is masked on its own grid, normalised
        norm = dataset.info.get("parameters", {}).get("normalisation", "none")
        return cls(
            dataset.subjects,
            {s: str(dataset.train[s].space) for s in dataset.subjects},
            dataset.info["categories"],
            semantic_mask(dataset),
            {s: Standardizer().fit(dataset.train[s].values) for s in dataset.subjects},
            None if run_mask is None else (np.asarray(run_mask, bool), norm),
        )

    def save(self, folder: Path) -> None:
        tensors = {"mask": torch.from_numpy(self.mask)}
        for s, scaler in self.scalers.items():
            tensors[f"mean/{s}"], tensors[f"scale/{s}"] = (
                torch.from_numpy(a) for a in (scaler.mean_, scaler.scale_)
            )
        if self.run is not None:
            tensors["run_mask"] = torch.from_numpy(self.run[0])
        save_tensors(folder / STATE / "arrays.safetensors", tensors)
        meta = {"subjects": self.subjects, "spaces": self.spaces, "categories": self.categories,
                "normalisation": None if self.run is None else self.run[1]}  # fmt: skip
        atomic_write_text(folder / STATE / "inputs.json", json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> PredictorState:
        meta = json.loads((folder / STATE / "inputs.json").read_text())
        arrays = {k: v.numpy() for k, v in load_tensors(folder / STATE / "arrays.safetensors").items()}
        scalers = {}
        for s in meta["subjects"]:
            scalers[s] = Standardizer()
            scalers[s].mean_, scalers[s].scale_ = arrays[f"mean/{s}"], arrays[f"scale/{s}"]
        run = None if meta["normalisation"] is None else (arrays["run_mask"], meta["normalisation"])
        return cls(meta["subjects"], meta["spaces"], meta["categories"], arrays["mask"], scalers, run)


class CLIPMUSEDPredictor:
    """The run in ``folder`` (config ``config``): its data's mask, categories and per-subject z-scoring
    (:class:`PredictorState`), and its networks, loaded when first used."""

    def __init__(self, config: Any, folder: Path, state: PredictorState, methods: dict, predict: Any) -> None:
        """``state``: what the run read of its data; ``methods``: the recipe's METHODS; ``predict``: its scoring
        forward pass (model, SampleArrays, VolumeGrid) -> {"scores": ...} (so these are the evaluation's own)."""
        self.config, self.folder, self._methods, self._predict = config, Path(folder), methods, predict
        self.subjects, self.categories, self.mask = state.subjects, state.categories, state.mask
        self.grid = VolumeGrid(self.mask)
        self._inputs = {s: {"subject": s, "space": state.spaces[s], "n_voxels": int(self.mask.sum())}
                        for s in self.subjects}  # fmt: skip
        self._scalers, self._run = state.scalers, state.run
        self._models: dict[str, Any] = {}

    def _network(self, decoder: str | None, subject: str) -> tuple[Any, int]:
        """(the network of ``decoder`` for ``subject``, that subject's index in it)."""
        from brainkit.models import load_model

        method = decoder or "clip_mused"
        networks = [m for m in self.config.methods if m != "srm"]
        if method not in networks:
            raise ConfigError(f"This clip_mused run has no network {method!r}; its networks: {networks}.")
        per_subject = self._methods[method][3]
        name = f"{method}_{subject}" if per_subject else method
        if name not in self._models:
            path = self.folder / "checkpoints" / name
            if not (path / "model.safetensors").is_file():
                raise CheckpointError(f"{path} is missing: {self.folder} is not a finished clip_mused run.")
            model, meta = load_model(path)
            self._models[name] = (model.eval(), meta.get("subjects", "").split(","))
        model, order = self._models[name]
        return model, (0 if per_subject else order.index(subject))

    def predict(self, x: Any, subject: str | None = None, space: str | None = None,
                decoder: str | None = None) -> np.ndarray:  # fmt: skip
        """float32 (n, n_classes): each category's probability for the n recordings of ``x`` from ``subject``."""
        if subject is None:
            if len(self.subjects) > 1:
                raise DataError(
                    f"This clip_mused run decodes the subjects {self.subjects}; say which one the input is from "
                    "(subject=..., --subject)."
                )
            subject = self.subjects[0]
        if subject not in self._inputs:
            raise DataError(
                f"This clip_mused run decodes the subjects {self.subjects}; the input is from subject {subject!r}. "
                "Its tokens are learnt per subject: train a run that includes that subject."
            )
        is_file = isinstance(x, str | Path)
        mask = self._run[0] if is_file and self._run is not None else self.mask
        values = brain_matrix(x, self._inputs[subject], mask, subject, space)
        if is_file and self._run is not None:
            values = normalise_run(values.copy(), self._run[1])
        model, index = self._network(decoder, subject)
        n = len(values)
        arrays = SampleArrays(self._scalers[subject].transform(values), np.full(n, index),
                              np.zeros((n, len(self.categories)), np.float32), np.zeros((n, 0), np.float32),
                              np.zeros((n, 0), np.float32))  # fmt: skip
        return self._predict(model, arrays, self.grid)["scores"].astype(np.float32)

    def retrieve(self, x: Any, gallery: Any, **options: Any) -> Any:
        raise ConfigError(
            "A clip_mused run predicts category probabilities (predict); it does not rank an image gallery."
        )


__all__ = ["CLIPMUSEDPredictor", "PredictorState", "STATE"]
