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

On ``nsd`` runs (the nsd variant) the input is one subject's nsdgeneral betas: an array (n, n_voxels) as the
dataset gives them (z-scored per session), or a NIfTI beta file as NSD stores it (``betas_sessionNN.nii.gz``, int16
(X, Y, Z, n) on the subject's grid), masked with that subject's mask, divided by 300 and z-scored per voxel over
its trials (``info["beta_files"]``: give a whole session, as the dataset z-scores over all its trials). Then the
subject's training z-scoring and the run's ROI patching (``predictor/``: :class:`~brainkit.data.roi_patches.ROIPatches`).
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
from brainkit.data.roi_patches import PatchGrid, ROIPatches
from brainkit.data.semantic import SampleArrays, VolumeGrid, semantic_mask
from brainkit.data.transforms import Standardizer
from brainkit.errors import CheckpointError, ConfigError, DataError

STATE = (
    "predictor"  # in the run folder: what the predictor reads of the data (inputs.json, arrays.safetensors)
)


class PredictorState:
    """What a run's predictor needs of its data: subjects, their spaces, categories, the volume mask (and, for
    ``hcp_movie``, the run-grid mask and normalisation) and each subject's training z-scoring; for the nsd
    variant each subject's own mask (``mask`` a dict, or None when the data carry none) and the ROI patching
    (``patches``). Saved in the run folder (``predictor/``) when the run ends, so predicting does not rebuild the
    data (the real HCP data take many minutes to read); runs without it rebuild it from their dataset."""

    def __init__(
        self, subjects, spaces, categories, mask, scalers, run=None, patches=None, files=None
    ) -> None:
        self.subjects, self.spaces, self.categories = list(subjects), dict(spaces), list(categories)
        if isinstance(mask, dict):
            mask = {s: np.asarray(m, bool) for s, m in mask.items()}
        elif mask is not None:
            mask = np.asarray(mask, bool)
        self.mask, self.scalers, self.run, self.patches = mask, scalers, run, patches
        self.files = files  # nsd: a beta file's {"scale", "normalisation"} (info["beta_files"])

    def mask_of(self, subject: str) -> np.ndarray | None:
        """The (X, Y, Z) mask NIfTI input of ``subject`` is read with (None: the data carried none)."""
        return self.mask.get(subject) if isinstance(self.mask, dict) else self.mask

    @classmethod
    def from_dataset(cls, dataset: Any, patches: ROIPatches | None = None) -> PredictorState:
        run_mask = dataset.info.get("run_mask")  # hcp_movie: a run file is masked on its own grid, normalised
        norm = dataset.info.get("parameters", {}).get("normalisation", "none")
        if patches is None:
            mask = semantic_mask(dataset)
        else:  # nsd variant: each subject's own voxels (nsd: info["masks"])
            masks = dataset.info.get("masks")
            mask = {s: masks[s] for s in dataset.subjects} if isinstance(masks, dict) else None
        return cls(
            dataset.subjects,
            {s: str(dataset.train[s].space) for s in dataset.subjects},
            dataset.info["categories"],
            mask,
            {s: Standardizer().fit(dataset.train[s].values) for s in dataset.subjects},
            None if run_mask is None else (np.asarray(run_mask, bool), norm),
            patches,
            dataset.info.get("beta_files"),
        )

    def save(self, folder: Path) -> None:
        tensors, rois = {}, None
        if isinstance(self.mask, dict):
            tensors |= {f"mask/{s}": torch.from_numpy(m) for s, m in self.mask.items()}
        elif self.mask is not None:
            tensors["mask"] = torch.from_numpy(self.mask)
        for s, scaler in self.scalers.items():
            tensors[f"mean/{s}"], tensors[f"scale/{s}"] = (
                torch.from_numpy(a) for a in (scaler.mean_, scaler.scale_)
            )
        if self.run is not None:
            tensors["run_mask"] = torch.from_numpy(self.run[0])
        if self.patches is not None:
            patch_tensors, rois = self.patches.state()
            tensors |= patch_tensors
        save_tensors(folder / STATE / "arrays.safetensors", tensors)
        masks = "per_subject" if isinstance(self.mask, dict) else "one" if self.mask is not None else "none"
        meta = {"subjects": self.subjects, "spaces": self.spaces, "categories": self.categories,
                "normalisation": None if self.run is None else self.run[1], "masks": masks,
                "rois": rois, "beta_files": self.files}  # fmt: skip
        atomic_write_text(folder / STATE / "inputs.json", json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> PredictorState:
        meta = json.loads((folder / STATE / "inputs.json").read_text())
        arrays = {k: v.numpy() for k, v in load_tensors(folder / STATE / "arrays.safetensors").items()}
        subjects = meta["subjects"]
        scalers = {}
        for s in subjects:
            scalers[s] = Standardizer()
            scalers[s].mean_, scalers[s].scale_ = arrays[f"mean/{s}"], arrays[f"scale/{s}"]
        run = None if meta["normalisation"] is None else (arrays["run_mask"], meta["normalisation"])
        masks = meta.get("masks", "one")  # runs saved before the nsd variant: one mask
        mask = {"one": lambda: arrays["mask"], "none": lambda: None,
                "per_subject": lambda: {s: arrays[f"mask/{s}"] for s in subjects}}[masks]()  # fmt: skip
        patches = None if meta.get("rois") is None else ROIPatches.from_state(arrays, meta["rois"], subjects)
        files = meta.get("beta_files")
        return cls(subjects, meta["spaces"], meta["categories"], mask, scalers, run, patches, files)


class CLIPMUSEDPredictor:
    """The run in ``folder`` (config ``config``): its data's mask, categories and per-subject z-scoring
    (:class:`PredictorState`), and its networks, loaded when first used."""

    def __init__(self, config: Any, folder: Path, state: PredictorState, methods: dict, predict: Any) -> None:
        """``state``: what the run read of its data; ``methods``: the recipe's METHODS; ``predict``: its scoring
        forward pass (model, SampleArrays, VolumeGrid) -> {"scores": ...} (so these are the evaluation's own)."""
        self.config, self.folder, self._methods, self._predict = config, Path(folder), methods, predict
        self.subjects, self.categories, self.mask = state.subjects, state.categories, state.mask
        self._state, self._patches = state, state.patches
        self.grid = VolumeGrid(self.mask) if self._patches is None else PatchGrid(self._patches)
        self._inputs = {s: {"subject": s, "space": state.spaces[s], "n_voxels": self._n_voxels(s)}
                        for s in self.subjects}  # fmt: skip
        self._scalers, self._run = state.scalers, state.run
        self._models: dict[str, Any] = {}

    def _n_voxels(self, subject: str) -> int:
        if self._patches is not None:
            return self._patches.n_voxels(subject)
        return int(self.mask.sum())

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
        mask = self._run[0] if is_file and self._run is not None else self._state.mask_of(subject)
        values = brain_matrix(x, self._inputs[subject], mask, subject, space)
        if is_file and self._run is not None:
            values = normalise_run(values.copy(), self._run[1])
        elif is_file and self._state.files is not None:  # nsd: one session's betas, as the dataset read them
            files = self._state.files
            values = normalise_run(values / np.float32(files["scale"]), files["normalisation"])
        model, index = self._network(decoder, subject)
        n = len(values)
        values = self._scalers[subject].transform(values)
        if self._patches is not None:  # nsd variant: the subject's voxels -> ROI patches, as in training
            values = self._patches(values, subject)
        arrays = SampleArrays(values, np.full(n, index),
                              np.zeros((n, len(self.categories)), np.float32), np.zeros((n, 0), np.float32),
                              np.zeros((n, 0), np.float32))  # fmt: skip
        return self._predict(model, arrays, self.grid)["scores"].astype(np.float32)

    def retrieve(self, x: Any, gallery: Any, **options: Any) -> Any:
        raise ConfigError(
            "A clip_mused run predicts category probabilities (predict); it does not rank an image gallery."
        )


__all__ = ["CLIPMUSEDPredictor", "PredictorState", "STATE"]
