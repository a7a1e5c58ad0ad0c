"""Downstream evaluation of brain representations: regression and classification metrics, subject-level
cross-validated linear heads (:func:`downstream_rows`: one row per method over phenotypes and states) on a model's
frozen readouts (:func:`readout`, :func:`subject_features`), and masked reconstruction scored against two simple
fills (:func:`masked_reconstruction_scores`, :func:`reconstruction_error`).

Linear heads are scikit-learn's ridge models with the regularisation chosen by efficient leave-one-out on the
training folds: ``RidgeCV`` for regression, ``RidgeClassifierCV`` for classification (its decision values, passed
through a softmax, rank the classes for AUROC). They fit thousands of features in well under a second, where a
searched logistic regression takes minutes on 2 cores. Features are standardised on the training folds only. Folds never split a subject (``StratifiedGroupKFold`` / ``GroupKFold``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import nn

from brainkit.data import timeseries
from brainkit.data.roi_windows import check_windows
from brainkit.errors import DataError
from brainkit.objectives.masked import random_mask

log = logging.getLogger(__name__)

ALPHAS = np.logspace(-2, 5, 15)


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE and Pearson r of predictions."""
    from scipy.stats import pearsonr

    y, predicted = np.asarray(y, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if y.shape != predicted.shape or y.ndim != 1:
        raise DataError(
            f"regression_metrics: y {y.shape} and predictions {predicted.shape} must be equal 1-D shapes."
        )
    r = float(pearsonr(y, predicted)[0]) if np.std(predicted) > 0 else 0.0
    return {"mae": float(np.mean(np.abs(y - predicted))), "r": r}


def classification_metrics(y: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Accuracy and AUROC (one-vs-rest macro average for more than two classes)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(y), len(classes)):
        raise DataError(
            f"classification_metrics: probabilities {probabilities.shape}, expected ({len(y)}, {len(classes)})."
        )
    accuracy = float(np.mean(classes[probabilities.argmax(axis=1)] == y))
    if len(classes) == 2:
        auroc = roc_auc_score(y == classes[1], probabilities[:, 1])
    else:
        auroc = roc_auc_score(y, probabilities, multi_class="ovr", labels=classes)
    return {"accuracy": accuracy, "auroc": float(auroc)}


def ridge_head(x_train, y_train, x_test, task: str, classes: np.ndarray | None = None) -> np.ndarray:
    """The default linear head: standardise on the training rows, then ``RidgeCV`` (regression: predictions) or
    ``RidgeClassifierCV`` (classification: softmax of the decision values, columns in ``classes`` order)."""
    from scipy.special import softmax
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if task == "regression":
        return RidgeCV(alphas=ALPHAS).fit(x_train, y_train).predict(x_test)
    head = RidgeClassifierCV(alphas=ALPHAS).fit(x_train, y_train)
    scores = head.decision_function(x_test)
    scores = np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores
    probabilities = np.zeros((len(x_test), len(classes)))
    probabilities[:, np.searchsorted(classes, head.classes_)] = softmax(scores, axis=1)
    return probabilities


def _folds(splitter, features, target, groups, task: str, n_folds: int) -> list:
    """The splitter's folds; for a class rarer than ``n_folds`` a line in our words instead of scikit-learn's
    UserWarning ("The least populated class in y has only ...": some test folds then lack that class, which the
    out-of-fold metrics allow)."""
    if task == "classification":
        values, counts = np.unique(target, return_counts=True)
        if counts.min() < n_folds:
            log.info("cross_validate: class %r has %d samples, fewer than the %d folds; some test folds have none.",
                     values[counts.argmin()], counts.min(), n_folds)  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class in y", category=UserWarning)
        return list(splitter.split(features, target, groups))


def cross_validate(
    features: np.ndarray,
    target: np.ndarray,
    groups: np.ndarray,
    task: str,
    n_folds: int = 5,
    seed: int = 0,
    head: Callable[..., np.ndarray] = ridge_head,
) -> dict[str, float]:
    """Out-of-fold predictions of ``head``, then the task's metrics (plus the chance-level reference).

    features (n_samples, ...) (2-D for the default ridge head; windows for a fine-tuning head); target
    (n_samples,); groups (n_samples,) the subject of each sample. ``task``: ``"regression"`` (MAE, r; chance =
    predicting the training mean) or ``"classification"`` (accuracy, AUROC; chance = the majority class share,
    AUROC 0.5). ``head(x_train, y_train, x_test, task, classes)`` returns predictions or class probabilities.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    features = np.asarray(features, dtype=np.float32 if head is not ridge_head else np.float64)
    target, groups = np.asarray(target), np.asarray(groups)
    if not (len(features) == len(target) == len(groups)) or (head is ridge_head and features.ndim != 2):
        raise DataError(
            f"cross_validate: features {features.shape}, target {target.shape} and groups {groups.shape} must have "
            "the same number of rows (features 2-D for the ridge head)."
        )
    if not np.isfinite(features).all():
        raise DataError("cross_validate: features contain NaN or inf.")
    if len(np.unique(groups)) < n_folds:
        raise DataError(f"cross_validate: {len(np.unique(groups))} subjects cannot fill {n_folds} folds.")
    if task == "regression":
        splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        predicted, baseline = np.zeros(len(target)), np.zeros(len(target))
        classes = None
    elif task == "classification":
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        classes = np.unique(target)
        probabilities = np.zeros((len(target), len(classes)))
        majority = np.zeros(len(target), dtype=bool)
    else:
        raise DataError(f"cross_validate: task must be 'regression' or 'classification', found {task!r}.")
    for train, test in _folds(splitter, features, target, groups, task, n_folds):
        out = head(features[train], target[train], features[test], task, classes)
        if task == "regression":
            predicted[test], baseline[test] = out, target[train].mean()
        else:
            probabilities[test] = out
            values, counts = np.unique(target[train], return_counts=True)
            majority[test] = target[test] == values[counts.argmax()]
    if task == "regression":
        metrics = regression_metrics(target, predicted)
        metrics["mae_chance"] = float(np.mean(np.abs(target - baseline)))
        metrics["r_chance"] = 0.0
    else:
        metrics = classification_metrics(target, probabilities, classes)
        metrics["accuracy_chance"] = float(majority.mean())
        metrics["auroc_chance"] = 0.5
    return metrics


def downstream_rows(
    methods: dict[str, tuple[np.ndarray, np.ndarray | None, Callable, Callable]],
    targets: dict[str, tuple[np.ndarray, str]],
    groups: np.ndarray,
    states: Any,
    n_folds: int,
    seed: int,
) -> list[dict[str, Any]]:
    """One row per method: each target in order (regression: MAE, its chance level and r; classification:
    accuracy, its chance level and AUROC), then the transient-state classification when ``states`` is given.

    ``methods[name] = (subject_x, state_x, head, state_head)``: per-subject inputs (n_subjects, ...) and per-window
    inputs (n_windows, ...) or None with the heads that read them; ``targets[name] = (values (n_subjects,),
    "regression" | "classification")``, ``groups`` the subjects; ``states`` (or None) has ``labels`` and
    ``groups`` (n_windows,).
    """
    rows = []
    for method, (subject_x, state_x, head, state_head) in methods.items():
        row: dict[str, Any] = {"method": method, "features": int(np.prod(subject_x.shape[1:]))}
        tasks = [(name, subject_x, values, groups, head, task) for name, (values, task) in targets.items()]
        if states is not None:
            tasks.append(("state", state_x, states.labels, states.groups, state_head, "classification"))
        for name, x, y, g, h, task in tasks:
            m = cross_validate(x, y, g, task, n_folds, seed, h)
            if task == "regression":
                row |= {f"{name} MAE": m["mae"], f"{name} MAE_chance": m["mae_chance"], f"{name} r": m["r"]}
            else:
                row |= {f"{name} accuracy": m["accuracy"], f"{name} accuracy_chance": m["accuracy_chance"],
                        f"{name} AUROC": m["auroc"]}  # fmt: skip
        rows.append(row)
        log.info("downstream %s: %s", method, row)
    return rows


@torch.no_grad()
def readout(model: nn.Module, name: str, series: np.ndarray, batch: int = 32) -> torch.Tensor:
    """``model.<name>(series)`` in eval mode, in batches: series (n, n_frames, n_rois) -> (n, n_features)."""
    model.eval()
    x = torch.as_tensor(series)
    return torch.cat([getattr(model, name)(x[i : i + batch]) for i in range(0, len(x), batch)])


def subject_features(model: nn.Module, rest_runs: list[list], n_frames: int) -> np.ndarray:
    """Each subject's frozen features (n_subjects, n_rois (n_rois - 1) / 2): the learned connectivity of its
    tokens (Fisher z), averaged over the ``n_frames`` windows (half-overlapping) of its rest runs
    (``rest_runs[i]``: subject i's runs). (The per-ROI token moments that suit transient states carry no
    phenotype here: measured age r -0.19 with them, 0.56 with this readout.)"""
    rows = []
    for runs in rest_runs:
        series = np.concatenate([timeseries.windows(run.values, n_frames, n_frames // 2) for run in runs])
        rows.append(readout(model, "token_connectivity", series).mean(dim=0).numpy())
    return timeseries.fisher_z(np.stack(rows))


# --- masked reconstruction and its simple references -----------------------------------------------------------------


def _tokens(windows: np.ndarray, segment_frames: int) -> torch.Tensor:
    return rearrange(
        torch.as_tensor(np.asarray(windows, dtype=np.float32)), "b (s t) r -> b s r t", t=segment_frames
    )


def roi_mean_fill(windows: np.ndarray, mask: torch.Tensor, segment_frames: int) -> np.ndarray:
    """Fill each hidden (segment, ROI) token with that ROI's mean over its visible frames in the window."""
    tokens = _tokens(windows, segment_frames)
    visible = (~mask).to(tokens.dtype)[..., None]
    n_visible_frames = visible.sum(dim=(1, 3)) * segment_frames  # (b, r)
    mean = (tokens * visible).sum(dim=(1, 3)) / n_visible_frames.clamp(min=1)
    filled = torch.where(mask[..., None], mean[:, None, :, None].expand_as(tokens), tokens)
    return rearrange(filled, "b s r t -> b (s t) r").numpy()


def temporal_interpolation_fill(windows: np.ndarray, mask: torch.Tensor, segment_frames: int) -> np.ndarray:
    """Fill hidden frames of each ROI by linear interpolation between its nearest visible frames in time
    (constant beyond the first/last visible frame; the ROI's window mean when none is visible)."""
    windows = np.asarray(windows, dtype=np.float32)
    hidden = np.repeat(mask.numpy(), segment_frames, axis=1)  # (b, n_times, r)
    out = windows.copy()
    frames = np.arange(windows.shape[1])
    for b in range(windows.shape[0]):
        for r in range(windows.shape[2]):
            gone = hidden[b, :, r]
            if not gone.any():
                continue
            if gone.all():
                out[b, :, r] = 0.0  # z-scored data: the mean
                continue
            out[b, gone, r] = np.interp(frames[gone], frames[~gone], windows[b, ~gone, r])
    return out


def token_mse(prediction: np.ndarray, target: np.ndarray, mask: torch.Tensor, segment_frames: int) -> float:
    """Mean squared error over the hidden tokens only."""
    error = (_tokens(prediction, segment_frames) - _tokens(target, segment_frames)) ** 2
    return float(error.mean(dim=-1)[mask].mean())


@torch.no_grad()
def reconstruct(
    model: nn.Module, windows: np.ndarray, mask: torch.Tensor, batch_size: int = 64
) -> np.ndarray:
    """``model(windows, mask)`` in eval mode on the model's device, in batches: (n, n_times, n_rois) float32."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = check_windows(windows, model.config.n_rois, "reconstruction")
    parts = [
        model(x[i : i + batch_size].to(device), mask[i : i + batch_size].to(device)).float().cpu()
        for i in range(0, len(x), batch_size)
    ]
    model.train(was_training)
    return torch.cat(parts).numpy()


def reconstruction_error(model: nn.Module, windows: np.ndarray, mask: torch.Tensor) -> dict[str, float]:
    """MSE of the masked and the visible tokens of ``model``'s reconstruction for ``mask`` (n, n_segments, n_rois)."""
    frames = model.config.segment_frames
    filled = reconstruct(model, windows, mask)
    visible = token_mse(filled, windows, ~mask, frames) if (~mask).any() else 0.0
    return {"masked_mse": token_mse(filled, windows, mask, frames), "visible_mse": visible}


def masked_reconstruction_scores(
    models: dict[str, nn.Module],
    x: np.ndarray,
    frames: int,
    n_masks: int,
    ratio: float,
    seed: int,
    source: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Hidden-token MSE of each model and of the two simple fills over ``n_masks`` seeded masks of ``ratio``:
    one row per method (mean and sd over masks), and the first mask's reconstructions of window 0."""
    generator = torch.Generator().manual_seed(seed + 99)
    fills_of = {"ROI mean": roi_mean_fill, "temporal interpolation": temporal_interpolation_fill}
    scores: dict[str, list[float]] = {name: [] for name in [*models, *fills_of]}
    example: dict[str, Any] = {}
    for draw in range(n_masks):
        mask = random_mask(len(x), x.shape[1] // frames, x.shape[2], ratio, generator)
        fills = {name: reconstruct(model, x, mask) for name, model in models.items()}
        fills |= {name: fill(x, mask, frames) for name, fill in fills_of.items()}
        for name, filled in fills.items():
            scores[name].append(token_mse(filled, x, mask, frames))
        if draw == 0:
            example = {"truth": x[0], "mask": mask[0].numpy(), "fills": {k: v[0] for k, v in fills.items()},
                       "frames": frames}  # fmt: skip
    for name, values in scores.items():
        log.info("%s: %s hidden-token MSE %.4f +- %.4f", source, name, np.mean(values), np.std(values))
    rows = [{"data": source, "method": name, "masked_mse_mean": float(np.mean(v)),
             "masked_mse_sd": float(np.std(v))} for name, v in scores.items()]  # fmt: skip
    return rows, example
