"""A finished vis_dec run decoding new recordings into images: ``brainkit.load(RUN).predict(x)`` /
``brainkit predict RUN --input new.npy --out images.npy``.

The new recordings (an array (n, n_voxels) or a .npy / NIfTI / GIFTI file, the run's subject and voxels; a NIfTI
series (X, Y, Z[, n]) is masked with the run's data's brain mask, ``info["mask"]`` / ``info["masks"][subject]``, or
with ``mask=`` (an (X, Y, Z) array or a NIfTI mask file), voxels in ``numpy.nonzero`` order) go through what the run's test fMRI went through: z-scored with the training trials' statistics, wrap-padded to the
DC-MAE's patch size, mapped by the fine-tuned fMRI conditioner to the LDM's context, then sampled with the run's
sampler, step count and the guidance scale it chose (``metrics.json``). The same rows in the same order with the
same ``seed`` give exactly the run's ``reconstructions.npz`` images. Output: uint8 (n, n_samples, S, S, 3).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data.readers.inputs import brain_matrix
from brainkit.errors import CheckpointError, ConfigError
from brainkit.recipes.vis_dec import phases, sampling
from brainkit.recipes.vis_dec.arrays import fit_voxels


class VisDecPredictor:
    """The run in ``folder`` (config ``config``), loaded once: ``predict`` reconstructs images from voxels."""

    def __init__(self, config: Any, folder: Path, inputs: Any) -> None:
        """``inputs``: the recipe's ``_inputs`` (config -> dataset name, LDM config, the subject's arrays)."""
        self.config, self.folder = config, Path(folder)
        _, ldm_config, arrays = inputs(config)
        self.arrays = arrays
        self.expected = {"subject": config.subject, "space": arrays.space, "n_voxels": arrays.n_raw_voxels}
        dc_mae = phases.dc_mae_config(config)
        self.patch_size, self.released = dc_mae.patch_size, dc_mae.released
        self.ldm, self.conditioner = phases.load_trained(
            config, ldm_config, arrays.train_voxels.shape[1], self.folder
        )
        metrics = self.folder / "metrics.json"
        if not metrics.is_file():
            raise CheckpointError(f"{self.folder} has no metrics.json; it is not a finished vis_dec run.")
        self.guidance_scale = float(json.loads(metrics.read_text())["metrics"]["guidance"]["scale"])

    def voxels(
        self, x: Any, subject: str | None = None, space: str | None = None, mask: Any = None
    ) -> np.ndarray:
        """The model's input for ``x``: checked (NIfTI masked with ``mask`` or the run's data's mask), z-scored with
        the run's training statistics, wrap-padded."""
        if isinstance(mask, str | Path):
            from brainkit.data.readers.volumes import read_volume

            mask = read_volume(mask)[0] != 0
        mask = self.arrays.mask if mask is None else np.asarray(mask, dtype=bool)
        values = brain_matrix(x, self.expected, mask, subject, space)
        values = self.arrays.standardizer.transform(values)
        return fit_voxels(values, self.patch_size, self.released, self.config.n_voxels)

    def predict(
        self,
        x: Any,
        subject: str | None = None,
        space: str | None = None,
        decoder: str | None = None,
        n_samples: int | None = None,
        seed: int | None = None,
        mask: Any = None,
    ) -> np.ndarray:
        """uint8 (n, n_samples, S, S, 3): images reconstructed from the n recordings of ``x`` (``n_samples`` and
        ``seed`` default to the run's ``n_samples`` and ``sample_seed``; ``mask``: see :meth:`voxels`)."""
        if decoder not in (None, "Vis-Dec", "vis_dec"):
            raise ConfigError(f"A vis_dec run has one decoder, Vis-Dec; found decoder={decoder!r}.")
        n = self.config.n_samples if n_samples is None else int(n_samples)
        if n < 1:
            raise ConfigError(f"n_samples must be >= 1, found {n}.")
        seed = self.config.sample_seed if seed is None else int(seed)
        return sampling.reconstruct(self.ldm, self.conditioner, self.voxels(x, subject, space, mask), n,
                                    self.config.n_steps, seed, guidance_scale=self.guidance_scale)  # fmt: skip

    def retrieve(self, x: Any, gallery: Any, **options: Any) -> Any:
        raise ConfigError(
            "A vis_dec run reconstructs images (predict); it does not rank a gallery. Score the reconstructions "
            "against images with `brainkit metrics`."
        )


__all__ = ["VisDecPredictor"]
