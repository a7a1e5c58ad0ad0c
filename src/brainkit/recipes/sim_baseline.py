"""A linear baseline for SIM's retrieval: ridge regression from the fMRI sample to the stimulus features.

Input: a sample's 3 frames averaged, on the cortex vertices (n_cortex,); targets: the clip's standardised video
and audio features (one multi-output fit, ``alpha`` fixed). A test sample's predicted features rank the
candidates' true features by cosine similarity, in the same protocol, with the same candidates, as SIM's
embeddings (:func:`brainkit.recipes.sim_eval.retrieval_scores`). Trained on the same samples as SIM (training
subjects x training clips).
"""

from __future__ import annotations

import numpy as np

from brainkit.recipes.sim_fit import MovieArrays
from brainkit.recipes.sim_samples import Samples


def mean_frames(arrays: MovieArrays, cortex: np.ndarray, samples: Samples, batch: int = 512) -> np.ndarray:
    """(len(samples), n_cortex) float32: the mean of each sample's frames on the cortex vertices."""
    where = np.flatnonzero(cortex)
    out = np.empty((len(samples), len(where)), dtype=np.float32)
    for start in range(0, len(samples), batch):
        part = samples.take(np.arange(start, min(start + batch, len(samples))))
        frames = (part.clip + arrays.lag)[:, None] + np.arange(arrays.n_frames)
        values = arrays.fmri[part.subject[:, None], part.run[:, None], frames][:, :, where]
        out[start : start + len(part)] = values.mean(axis=1)
    return out


class RidgeBaseline:
    """``fit(train samples)``, then ``predict(samples) -> {"video", "audio"}`` feature predictions."""

    def __init__(self, arrays: MovieArrays, cortex: np.ndarray, alpha: float) -> None:
        self.arrays, self.cortex, self.alpha = arrays, cortex, alpha

    def fit(self, samples: Samples) -> RidgeBaseline:
        from sklearn.linear_model import Ridge

        a = self.arrays
        targets = np.concatenate(
            [a.video[samples.run, samples.clip], a.audio[samples.run, samples.clip]], axis=1
        )
        self.model_ = Ridge(alpha=self.alpha).fit(mean_frames(a, self.cortex, samples), targets)
        return self

    def predict(self, samples: Samples) -> dict[str, np.ndarray]:
        predicted = self.model_.predict(mean_frames(self.arrays, self.cortex, samples))
        d_video = self.arrays.video.shape[-1]
        return {"video": predicted[:, :d_video], "audio": predicted[:, d_video:]}


__all__ = ["RidgeBaseline", "mean_frames"]
