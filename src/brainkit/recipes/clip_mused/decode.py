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

from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data.readers.inputs import brain_matrix
from brainkit.data.readers.movie_volumes import normalise_run
from brainkit.data.semantic import SampleArrays, VolumeGrid, semantic_mask
from brainkit.data.transforms import Standardizer
from brainkit.errors import CheckpointError, ConfigError, DataError


class CLIPMUSEDPredictor:
    """The run in ``folder`` (config ``config``): its data's mask, categories and per-subject z-scoring, and
    its networks, loaded when first used."""

    def __init__(self, config: Any, folder: Path, dataset: Any, methods: dict, predict: Any) -> None:
        """``dataset``: the run's data; ``methods``: the recipe's METHODS; ``predict``: its scoring forward pass
        (model, SampleArrays, VolumeGrid) -> {"scores": ...} (so these are the evaluation's own)."""
        self.config, self.folder, self._methods, self._predict = config, Path(folder), methods, predict
        self.subjects = list(dataset.subjects)
        self.categories = list(dataset.info["categories"])
        self.mask = np.asarray(semantic_mask(dataset), dtype=bool)
        self.grid = VolumeGrid(self.mask)
        self._inputs = {s: {"subject": s, "space": str(dataset.train[s].space), "n_voxels": int(self.mask.sum())}
                        for s in self.subjects}  # fmt: skip
        self._scalers = {s: Standardizer().fit(dataset.train[s].values) for s in self.subjects}
        run_mask = dataset.info.get("run_mask")  # hcp_movie: a run file is masked on its own grid, normalised
        self._run = (
            None
            if run_mask is None
            else (np.asarray(run_mask, bool), dataset.info.get("parameters", {}).get("normalisation", "none"))
        )
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


__all__ = ["CLIPMUSEDPredictor"]
