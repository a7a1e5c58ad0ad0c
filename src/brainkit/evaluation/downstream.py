"""Downstream evaluation of brain representations: regression and classification metrics, subject-level
cross-validated linear heads, and the simple baselines masked reconstruction is judged against.

Linear heads are scikit-learn's: ridge with its regularisation chosen by efficient leave-one-out on the training
folds (``RidgeCV``), and L2 logistic regression with C chosen by an inner 3-fold search; features are standardised
on the training folds only. Folds never split a subject (``StratifiedGroupKFold`` / ``GroupKFold``).
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

from brainkit.errors import DataError

ALPHAS = np.logspace(-2, 5, 15)
CS = np.logspace(-4, 1, 6)


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


def cross_validate(
    features: np.ndarray, target: np.ndarray, groups: np.ndarray, task: str, n_folds: int = 5, seed: int = 0
) -> dict[str, float]:
    """Out-of-fold predictions of a linear head, then the task's metrics (plus the chance-level reference).

    features (n_samples, n_features); target (n_samples,); groups (n_samples,) subject of each sample.
    ``task``: ``"regression"`` (MAE, r; chance = predicting the training mean) or ``"classification"``
    (accuracy, AUROC; chance = the majority class share, AUROC 0.5).
    """
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedGroupKFold
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    target, groups = np.asarray(target), np.asarray(groups)
    if not (len(features) == len(target) == len(groups)) or features.ndim != 2:
        raise DataError(
            f"cross_validate: features {features.shape}, target {target.shape} and groups {groups.shape} must have "
            "the same number of rows (features 2-D)."
        )
    if not np.isfinite(features).all():
        raise DataError("cross_validate: features contain NaN or inf.")
    if len(np.unique(groups)) < n_folds:
        raise DataError(f"cross_validate: {len(np.unique(groups))} subjects cannot fill {n_folds} folds.")
    if task == "regression":
        splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(features, target, groups)
        predicted = np.zeros(len(target))
        baseline = np.zeros(len(target))
    elif task == "classification":
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(features, target, groups)
        classes = np.unique(target)
        probabilities = np.zeros((len(target), len(classes)))
        majority = np.zeros(len(target), dtype=bool)
    else:
        raise DataError(f"cross_validate: task must be 'regression' or 'classification', found {task!r}.")
    for train, test in splits:
        scaler = StandardScaler().fit(features[train])
        x_train, x_test = scaler.transform(features[train]), scaler.transform(features[test])
        if task == "regression":
            predicted[test] = RidgeCV(alphas=ALPHAS).fit(x_train, target[train]).predict(x_test)
            baseline[test] = target[train].mean()
        else:
            search = GridSearchCV(LogisticRegression(max_iter=3000), {"C": CS}, cv=3).fit(
                x_train, target[train]
            )
            probabilities[np.ix_(test, np.searchsorted(classes, search.classes_))] = search.predict_proba(
                x_test
            )
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
