"""Downstream evaluation of brain representations: regression and classification metrics, subject-level
cross-validated linear heads, and the simple baselines masked reconstruction is judged against.

Linear heads are scikit-learn's ridge models with the regularisation chosen by efficient leave-one-out on the
training folds: ``RidgeCV`` for regression, ``RidgeClassifierCV`` for classification (its decision values, passed
through a softmax, rank the classes for AUROC). They fit thousands of features in well under a second, where a
searched logistic regression takes minutes on 2 cores. Features are standardised on the training folds only. Folds never split a subject (``StratifiedGroupKFold`` / ``GroupKFold``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from einops import rearrange

from brainkit.errors import DataError

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
    for train, test in splitter.split(features, target, groups):
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


# --- simple references for masked reconstruction -----------------------------------------------------------------


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
