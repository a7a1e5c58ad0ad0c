"""Downstream metrics and cross-validation, and the simple fills masked reconstruction is judged against."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from brainkit.errors import DataError
from brainkit.evaluation.downstream import (
    classification_metrics,
    cross_validate,
    masked_reconstruction_scores,
    reconstruction_error,
    regression_metrics,
    roi_mean_fill,
    temporal_interpolation_fill,
    token_mse,
)


def test_metrics_known_answers() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(y, y + 1)
    assert m["mae"] == pytest.approx(1.0) and m["r"] == pytest.approx(1.0)
    assert regression_metrics(y, -y)["r"] == pytest.approx(-1.0)
    classes = np.array(["a", "b", "c"])
    labels = np.array(["a", "b", "c", "a"])
    perfect = np.eye(3)[[0, 1, 2, 0]]
    assert classification_metrics(labels, perfect, classes) == {"accuracy": 1.0, "auroc": 1.0}
    assert classification_metrics(labels, (1 - perfect) / 2, classes)["accuracy"] == 0.0
    with pytest.raises(DataError, match=r"probabilities \(4, 2\), expected \(4, 3\)"):
        classification_metrics(labels, perfect[:, :2], classes)


def test_cross_validation_recovers_a_linear_truth() -> None:
    rng = np.random.default_rng(0)
    n_subjects, per = 30, 3
    groups = np.repeat([f"s{i}" for i in range(n_subjects)], per)
    x = rng.standard_normal((n_subjects * per, 13))
    y = x @ rng.standard_normal(13) + 0.1 * rng.standard_normal(len(x))
    good = cross_validate(x, y, groups, "regression")
    assert good["r"] > 0.95 and good["mae"] < good["mae_chance"]
    shuffled = cross_validate(x, rng.permutation(y), groups, "regression")
    assert shuffled["r"] < 0.5
    labels = np.where(x[:, 0] > 0, "task", "rest")
    cls = cross_validate(x, labels, groups, "classification")
    assert cls["accuracy"] > 0.85 and cls["auroc"] > 0.9 and cls["auroc_chance"] == 0.5
    with pytest.raises(DataError, match="cannot fill 5 folds"):
        cross_validate(x[:9], y[:9], groups[:9], "regression")
    with pytest.raises(DataError, match="task must be 'regression' or 'classification'"):
        cross_validate(x, y, groups, "ranking")


def test_fills_known_answers() -> None:
    frames = 4
    ramp = np.tile(np.arange(12, dtype=np.float32)[None, :, None], (1, 1, 2))  # (1, 12, 2) linear in time
    mask = torch.zeros(1, 3, 2, dtype=torch.bool)
    mask[0, 1, 0] = True  # the middle segment of ROI 0
    np.testing.assert_allclose(temporal_interpolation_fill(ramp, mask, frames), ramp, atol=1e-6)
    constant = np.ones((1, 12, 2), dtype=np.float32) * np.array([3.0, -2.0])
    np.testing.assert_allclose(roi_mean_fill(constant, mask, frames), constant)
    zeros = np.zeros_like(ramp)
    assert token_mse(zeros, ramp, mask, frames) == pytest.approx(np.mean(np.arange(4, 8) ** 2))


class _Copy(torch.nn.Module):
    """A 'model' that reconstructs a hidden token as ``scale`` x the truth (1: perfect)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.config = SimpleNamespace(n_rois=2, segment_frames=4)
        self.scale = torch.nn.Parameter(torch.tensor(scale))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = mask.repeat_interleave(4, dim=1)
        return torch.where(hidden, self.scale * x, x)


def test_reconstruction_scores_known_answers() -> None:
    ramp = np.tile(np.arange(12, dtype=np.float32)[None, :, None], (3, 1, 2))  # (3, 12, 2) linear in time
    mask = torch.zeros(3, 3, 2, dtype=torch.bool)
    mask[:, 1, 0] = True
    errors = reconstruction_error(_Copy(0.0), ramp, mask)  # hidden frames 4..7 filled with 0
    assert errors == {"masked_mse": pytest.approx(np.mean(np.arange(4, 8) ** 2)), "visible_mse": 0.0}
    rows, example = masked_reconstruction_scores({"perfect": _Copy(1.0)}, ramp, 4, 3, 0.5, 0, "ramp")
    by_method = {row["method"]: row for row in rows}
    assert set(by_method) == {"perfect", "ROI mean", "temporal interpolation"}
    assert by_method["perfect"]["masked_mse_mean"] == 0.0 and by_method["ROI mean"]["masked_mse_mean"] > 0
    assert example["truth"].shape == (12, 2) and example["mask"].shape == (3, 2) and example["frames"] == 4
