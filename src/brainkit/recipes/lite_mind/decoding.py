"""Decoding new recordings with a finished Lite-Mind run: what ``brainkit.load(RUN)`` and ``brainkit predict`` use.

Each decoder folder of the run holds ``checkpoint/`` (safetensors + JSON), ``preprocess.safetensors`` (the
z-scoring fitted on the training trials), ``inputs.json`` (dataset, subject, space, voxel count, target) and, when
the data had one, ``mask.safetensors`` (the brain mask, for NIfTI input). :meth:`Decoders.predict` applies the
same preprocessing and the same batched forward pass as evaluation (:func:`brainkit.training.predict`), so its
output for the test rows equals what the run scored, bit for bit on CPU; :meth:`Decoders.retrieve` ranks a
gallery of the user's images (embedded with the run's target encoder, searched with FAISS).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import load_tensors
from brainkit.data.readers.inputs import brain_matrix, read_image_folder
from brainkit.data.schema import Stimuli
from brainkit.data.transforms import Standardizer
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.training import predict


@dataclass
class Decoder:
    """One decoder of a run: its model, preprocessing and what it reads."""

    label: str
    model: torch.nn.Module
    standardizer: Standardizer
    inputs: dict[str, Any]
    mask: np.ndarray | None


def load_decoder_folder(label: str, folder: Path) -> Decoder:
    from brainkit.models import load_model

    for needed in ("checkpoint", "preprocess.safetensors", "inputs.json"):
        if not (folder / needed).exists():
            raise CheckpointError(
                f"{folder} lacks {needed}: it is not a finished decoder folder of a run that can predict "
                "(runs made before brainkit 0.1 saved no inputs.json; run them again)."
            )
    model, _ = load_model(folder / "checkpoint")
    model.eval()
    mask = None
    if (folder / "mask.safetensors").is_file():
        mask = load_tensors(folder / "mask.safetensors")["mask"].numpy()
    inputs = json.loads((folder / "inputs.json").read_text())
    return Decoder(label, model, Standardizer.load(folder / "preprocess.safetensors"), inputs, mask)


class Decoders:
    """The decoders of a finished run (``model`` first, then the baselines), by table label."""

    def __init__(self, config: Any, folder: Path, folders: list[tuple[str, Path]]) -> None:
        self.config, self.folder = config, Path(folder)
        self.decoders = {label: load_decoder_folder(label, path) for label, path in folders}
        self.default, self.default_folder = folders[0][0], folders[0][1].name

    @property
    def labels(self) -> list[str]:
        return list(self.decoders)

    def _decoder(self, decoder: str | None) -> Decoder:
        label = decoder or self.default
        if label not in self.decoders:
            raise ConfigError(f"This run has no decoder {label!r}; it has {self.labels}.")
        return self.decoders[label]

    def inputs(self, decoder: str | None = None) -> dict[str, Any]:
        """What ``decoder`` reads: dataset, subject, space, n_voxels, target, target_shape."""
        return dict(self._decoder(decoder).inputs)

    def brain_matrix(
        self, x: Any, subject: str | None = None, space: str | None = None, decoder: str | None = None
    ) -> np.ndarray:
        """``x`` (an array (n, n_voxels) or (n_voxels,), or a .npy / NIfTI / GIFTI file) checked against what the
        decoder was trained on: subject, space and voxel count; returns the raw (n, n_voxels) float32 matrix."""
        chosen = self._decoder(decoder)
        return brain_matrix(x, chosen.inputs, chosen.mask, subject, space)

    def predict(
        self, x: Any, subject: str | None = None, space: str | None = None, decoder: str | None = None
    ) -> np.ndarray:
        """Decoded embeddings (n, *target_shape) of the raw brain data ``x`` (see :meth:`brain_matrix`)."""
        chosen = self._decoder(decoder)
        values = self.brain_matrix(x, subject, space, decoder)
        return predict(chosen.model, chosen.standardizer.transform(values))

    def embed_gallery(
        self, gallery: Any, ids: Any = None, image_size: int = 256, embeddings: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, images, embeddings) of a gallery: a folder of images or a uint8 array (n, H, W, 3), embedded
        with the run's target encoder, or with ``embeddings`` given (one row per image, in the same order)."""
        from brainkit.registry import ENCODERS
        from brainkit.stimuli.cache import embed_stimuli

        if isinstance(gallery, str | Path):
            ids, images = read_image_folder(gallery, image_size)
        else:
            images = np.asarray(gallery)
            ids = (
                np.array([f"image{i:05d}" for i in range(len(images))])
                if ids is None
                else np.asarray(ids, str)
            )
        if embeddings is not None:
            embeddings = np.asarray(embeddings, dtype=np.float32)
            if len(embeddings) != len(images):
                raise DataError(f"{len(embeddings)} gallery embeddings for {len(images)} gallery images.")
            return ids, images, embeddings
        spec = self.config.data
        if spec.target not in ENCODERS:
            raise DataError(
                f"This run's target {spec.target!r} is an embedding the dataset brought, not a brainkit encoder, "
                "so the gallery cannot be embedded here: embed it with the same model and pass embeddings=..."
            )
        self._check_encoder()
        embeddings = embed_stimuli(
            Stimuli(ids=ids, images=images), spec.target, cache_dir=spec.cache_dir, **spec.encoder_options
        )
        return ids, images, embeddings

    def _check_encoder(self) -> None:
        """The run's encoder must give the targets its decoders learnt (on the probe images saved with them)."""
        from brainkit.stimuli.encoders import get_encoder

        spec = self.config.data
        path = self.folder / self.default_folder / "target_probe.safetensors"
        if not path.is_file():
            return  # the run's targets were computed by this same encoder (its data carried no images)
        probe = {k: v.numpy() for k, v in load_tensors(path).items()}
        encoded = get_encoder(spec.target, **spec.encoder_options).encode(probe["images"])
        if encoded.shape != probe["targets"].shape or not np.allclose(
            encoded, probe["targets"], rtol=1e-3, atol=1e-4
        ):
            raise DataError(
                f"Encoder {spec.target!r} with data.encoder_options={spec.encoder_options} does not reproduce the "
                f"targets this run learnt (its dataset computed them with other settings: {probe['targets'].shape[1:]}"
                f" vs {encoded.shape[1:]}); pass embeddings=... computed the dataset's way, or train with "
                "data.encoder_options matching the dataset's."
            )

    def retrieve(
        self,
        x: Any,
        gallery: Any,
        k: int = 5,
        html: str | Path | None = None,
        ids: Any = None,
        embeddings: np.ndarray | None = None,
        subject: str | None = None,
        space: str | None = None,
        decoder: str | None = None,
    ) -> dict[str, np.ndarray]:
        """The ``k`` gallery images nearest (cosine) to each sample's decoded embedding, best first.

        ``gallery``: a folder of images or a uint8 array (n, H, W, 3) with optional ``ids``; embedded with the run's
        target encoder unless ``embeddings`` (n, ...) are given. Returns ``{"ids": (n, k) gallery ids,
        "scores": (n, k) cosine}``; with ``html`` a page showing them.
        """
        from brainkit.evaluation.gallery import Gallery

        predicted = self.predict(x, subject, space, decoder)
        names, images, embeddings = self.embed_gallery(gallery, ids, embeddings=embeddings)
        if embeddings.shape[1:] != predicted.shape[1:]:
            raise DataError(
                f"The gallery's embeddings are {embeddings.shape[1:]}, the decoded ones {predicted.shape[1:]}."
            )
        index = Gallery.build(embeddings.reshape(len(embeddings), -1), names)
        scores, found = index.search(predicted.reshape(len(predicted), -1), min(k, len(names)))
        if html is not None:
            from brainkit.report.lite_mind import write_gallery_page

            position = {name: i for i, name in enumerate(names)}
            write_gallery_page(
                Path(html), images[np.vectorize(position.get)(found)], found, scores, decoder or self.default
            )
        return {"ids": found, "scores": scores}


__all__ = ["Decoder", "Decoders", "load_decoder_folder"]
