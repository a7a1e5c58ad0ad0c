"""SRM recovers a shared response hidden behind per-subject orthonormal maps; the classifier decodes from it."""

from __future__ import annotations

import numpy as np
import pytest

from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.multilabel import multilabel_metrics
from brainkit.models.srm import SharedResponseModel, SRMClassifier


def _subjects(seed: int = 0, n: int = 60, k: int = 3, voxels=(23, 19, 29), noise: float = 0.05):
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n, k))
    data, bases = [], []
    for v in voxels:
        basis, _ = np.linalg.qr(rng.standard_normal((v, k)))
        bases.append(basis)
        data.append(shared @ basis.T + noise * rng.standard_normal((n, v)))
    return shared, data, bases


def test_srm_recovers_shared_space() -> None:
    shared, data, _ = _subjects()
    model = SharedResponseModel(n_components=3, n_iter=8).fit(data)
    assert all(a >= b - 1e-9 for a, b in zip(model.objective_, model.objective_[1:]))  # never increases
    assert all(np.allclose(w.T @ w, np.eye(3), atol=1e-8) for w in model.bases_)
    # every subject maps to (nearly) the same shared response, which spans the true one
    mapped = [model.transform(x, s) for s, x in enumerate(data)]
    assert ((mapped[0] - mapped[2]) ** 2).mean() / (mapped[0] ** 2).mean() < 0.01
    coef, residual, *_ = np.linalg.lstsq(mapped[1], shared - shared.mean(0), rcond=None)
    assert residual.sum() / ((shared - shared.mean(0)) ** 2).sum() < 0.01


def test_srm_is_deterministic_and_checks_inputs() -> None:
    _, data, _ = _subjects(1)
    first = SharedResponseModel(3).fit(data).transform(data[0], 0)
    assert np.array_equal(first, SharedResponseModel(3).fit(data).transform(data[0], 0))
    with pytest.raises(DataError, match="same number of time-aligned samples"):
        SharedResponseModel(3).fit([data[0], data[1][:-1]])
    with pytest.raises(DataError, match=r"subject 1 of 3 expects \(n, 19\) samples"):
        SharedResponseModel(3).fit(data).transform(data[0], 1)
    with pytest.raises(ConfigError, match="exceeds the samples or voxels"):
        SharedResponseModel(40).fit(data)


def test_srm_classifier_decodes_labels_from_other_subjects_space() -> None:
    shared, data, _ = _subjects(2, n=200, noise=0.2)
    labels = np.stack([shared[:, 0] > 0, shared[:, 1] > 0.5, np.zeros(200)], axis=1).astype(int)
    train, test = slice(0, 150), slice(150, 200)
    model = SRMClassifier(n_components=3).fit([x[train] for x in data], labels[train])
    for subject, x in enumerate(data):
        scores = model.predict_proba(x[test], subject)
        assert scores.shape == (50, 3) and (scores[:, 2] == 0).all()  # a never-seen class keeps its rate
        assert multilabel_metrics(scores, labels[test])["AUC"] > 0.9
