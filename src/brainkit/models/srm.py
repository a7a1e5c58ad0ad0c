"""The shared response model (SRM; Chen et al., NeurIPS 2015), deterministic, in NumPy, + a linear classifier.

Subjects who watched the same stimuli give ``X_s`` (n_samples, n_voxels_s) with rows aligned in time. SRM finds
one orthonormal basis per subject ``W_s`` (n_voxels_s, k) and a shared response ``S`` (n_samples, k) minimising
``sum_s ||X_s - S W_s^T||_F^2``, by alternating:

    W_s = U V^T  with  U, _, V^T = svd(X_s^T S)       (orthogonal Procrustes)
    S   = mean_s X_s W_s

started from the top-k principal components of the subjects' concatenated data (no random start: the same
data give the same model). A new sample of subject s maps to the shared space as ``x W_s``. CLIP-MUSED compares
against SRM followed by a linear classifier: :class:`SRMClassifier` trains one-vs-rest logistic regression on
the shared responses of every training subject.
"""

from __future__ import annotations

import numpy as np

from brainkit.errors import ConfigError, DataError


class SharedResponseModel:
    """Deterministic SRM. Parameters set in ``__init__``; ``bases_`` and ``shared_`` are learned by ``fit``."""

    def __init__(self, n_components: int = 32, n_iter: int = 10) -> None:
        if n_components < 1 or n_iter < 1:
            raise ConfigError(f"SRM: n_components and n_iter must be >= 1, found {n_components}, {n_iter}.")
        self.n_components, self.n_iter = n_components, n_iter

    def fit(self, data: list[np.ndarray]) -> SharedResponseModel:
        """``data``: per subject (n_samples, n_voxels_s), the same n_samples (time-aligned) for everyone."""
        if not data or len({len(x) for x in data}) != 1:
            raise DataError(
                f"SRM.fit: every subject needs the same number of time-aligned samples, found {[len(x) for x in data]}."
            )
        k = self.n_components
        if k > min(len(data[0]), min(x.shape[1] for x in data)):
            raise ConfigError(f"SRM: n_components {k} exceeds the samples or voxels of a subject.")
        centred = [np.asarray(x, np.float64) - np.asarray(x, np.float64).mean(0) for x in data]
        stacked = np.concatenate(centred, axis=1)  # (n_samples, sum of voxels)
        eigvals, eigvecs = np.linalg.eigh(stacked @ stacked.T)
        shared = eigvecs[:, ::-1][:, :k] * np.sqrt(np.clip(eigvals[::-1][:k], 0, None))
        self.objective_ = []
        for _ in range(self.n_iter):
            bases = [_procrustes(x.T @ shared) for x in centred]
            shared = np.mean([x @ w for x, w in zip(centred, bases)], axis=0)
            self.objective_.append(
                float(sum(((x - shared @ w.T) ** 2).sum() for x, w in zip(centred, bases)))
            )
        self.bases_, self.shared_ = bases, shared
        self.means_ = [np.asarray(x, np.float64).mean(0) for x in data]
        return self

    def transform(self, x: np.ndarray, subject: int) -> np.ndarray:
        """Samples (n, n_voxels_s) of training subject ``subject`` -> shared space (n, k)."""
        if not hasattr(self, "bases_"):
            raise DataError("SRM is not fitted; call fit(per-subject training data) first.")
        if not 0 <= subject < len(self.bases_) or x.ndim != 2 or x.shape[1] != self.bases_[subject].shape[0]:
            raise DataError(
                f"SRM.transform: subject {subject} of {len(self.bases_)} expects (n, "
                f"{self.bases_[min(max(subject, 0), len(self.bases_) - 1)].shape[0]}) samples, found {x.shape}."
            )
        return (np.asarray(x, np.float64) - self.means_[subject]) @ self.bases_[subject]


def _procrustes(cross: np.ndarray) -> np.ndarray:
    """The orthonormal (n_voxels, k) matrix closest to ``cross``: U V^T of its thin SVD."""
    u, _, vt = np.linalg.svd(cross, full_matrices=False)
    return u @ vt


class SRMClassifier:
    """SRM to a shared space, then one-vs-rest logistic regression on the pooled shared responses."""

    def __init__(self, n_components: int = 32, n_iter: int = 10, c: float = 1.0, seed: int = 0) -> None:
        self.srm = SharedResponseModel(n_components, n_iter)
        self.c, self.seed = c, seed

    def fit(self, data: list[np.ndarray], labels: np.ndarray) -> SRMClassifier:
        """``data`` per subject (n_samples, n_voxels_s), time-aligned; ``labels`` (n_samples, n_classes) 0/1."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import StandardScaler

        labels = np.asarray(labels)
        if labels.ndim != 2 or len(labels) != len(data[0]):
            raise DataError(f"SRMClassifier: labels must be (n_samples, n_classes), found {labels.shape}.")
        self.srm.fit(data)
        shared = np.concatenate([self.srm.transform(x, s) for s, x in enumerate(data)])
        self.scaler_ = StandardScaler().fit(shared)
        self.always_ = labels.mean(0)  # a class with one label value in training is predicted at its rate
        self.trainable_ = np.nonzero((self.always_ > 0) & (self.always_ < 1))[0]
        classifier = LogisticRegression(C=self.c, max_iter=500, random_state=self.seed)
        self.classifier_ = OneVsRestClassifier(classifier).fit(
            self.scaler_.transform(shared), np.tile(labels[:, self.trainable_], (len(data), 1))
        )
        return self

    def predict_proba(self, x: np.ndarray, subject: int) -> np.ndarray:
        """Probabilities (n, n_classes) for samples of training subject ``subject``."""
        out = np.tile(self.always_, (len(x), 1))
        features = self.scaler_.transform(self.srm.transform(x, subject))
        out[:, self.trainable_] = self.classifier_.predict_proba(features)
        return out.astype(np.float32)
