"""Multi-label decoding metrics (CLIP-MUSED's): mAP, AUC and Hamming loss, per subject and averaged.

Computed by torchmetrics (``multilabel_average_precision``, ``multilabel_auroc``,
``multilabel_hamming_distance``). Averaging is over classes (macro). A class with no positive test sample has
no defined average precision or AUC (a class with no negative has no AUC either). Two conventions
(``undefined=``):

- ``"exclude"`` (default): such classes are left out of the mean; ``n_classes_without_positive`` and
  ``n_classes_without_negative`` count them and ``n_classes_excluded`` is every class left out of the AUC (both
  kinds), ``n_classes_scored`` the classes in the mAP.
- ``"released"``: what CLIP-MUSED's released ``test()`` (decoding_HCP_MS.py) computes: sklearn's per-class
  average precision, which is 0 for a class with no positive, and AUC 1 for every class whose AUC is undefined
  (its ``np.ones_like`` start value, kept when sklearn raises); every class enters both means. The released code
  saves the per-class arrays; the averaging behind the paper's table is not released, so which convention the
  table used cannot be read from the code (the per-class arrays it saves include the zeros and ones).

Hamming loss uses every class with a sample counted positive when its probability is ``>= threshold`` (0.5), as
the released ``pred_prob.ge(0.5)``.

Chance reference: :func:`label_frequency_scores` predicts every test sample as the training frequency of each
class; its mAP is about each class's test frequency and its AUC exactly 0.5.
"""

from __future__ import annotations

import numpy as np
import torch

from brainkit.errors import DataError


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    scores, labels = np.asarray(scores, dtype=np.float32), np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise DataError(
            f"multilabel metrics: scores {scores.shape} and labels {labels.shape} must both be "
            "(n_samples, n_classes)."
        )
    if not np.isin(labels, (0, 1)).all():
        raise DataError("multilabel metrics: labels must be 0 or 1 (one column per class).")
    if not np.isfinite(scores).all():
        raise DataError("multilabel metrics: scores contain NaN or inf.")
    if scores.min() < 0 or scores.max() > 1:
        raise DataError("multilabel metrics: scores must be probabilities in [0, 1]; apply a sigmoid first.")
    return torch.from_numpy(scores), torch.from_numpy(labels.astype(np.int64))


UNDEFINED = ("exclude", "released")


def multilabel_metrics(
    scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5, undefined: str = "exclude"
) -> dict[str, float]:
    """mAP, AUC and Hamming loss of probabilities ``scores`` against 0/1 ``labels``, both (n_samples, n_classes).

    Returns
    -------
    dict
        ``mAP`` and ``AUC`` (macro means; classes without positives / negatives as ``undefined`` says, see the
        module docstring), ``hamming`` (fraction of wrong 0/1 decisions, positive at ``>= threshold``),
        ``n_classes_scored``, ``n_classes_excluded``, ``n_classes_without_positive``,
        ``n_classes_without_negative``.
    """
    if undefined not in UNDEFINED:
        raise DataError(f"multilabel metrics: undefined={undefined!r} is not one of {UNDEFINED}.")
    p, y = _check(scores, labels)
    positives, negatives = y.sum(0), (1 - y).sum(0)
    scored = torch.nonzero(positives > 0).flatten()
    both = torch.nonzero((positives > 0) & (negatives > 0)).flatten()
    if len(scored) == 0:
        raise DataError("multilabel metrics: no class has a positive sample; mAP is undefined.")
    # imported here: torchmetrics takes ~2 s to import, which a config check or `brainkit --help` should not pay
    from torchmetrics.functional.classification import (
        binary_auroc,
        binary_average_precision,
        multilabel_auroc,
        multilabel_average_precision,
    )

    n_classes = y.shape[1]
    average_precision = _macro(
        multilabel_average_precision, binary_average_precision, p[:, scored], y[:, scored]
    )
    auc = _macro(multilabel_auroc, binary_auroc, p[:, both], y[:, both])
    if (
        undefined == "released"
    ):  # AP 0 for no-positive classes, AUC 1 where undefined; every class in the mean
        average_precision = average_precision * len(scored) / n_classes
        auc = (torch.nan_to_num(auc) * len(both) + (n_classes - len(both))) / n_classes
    hamming = ((p >= threshold).to(torch.int64) != y).to(torch.float64).mean()
    return {
        "mAP": float(average_precision),
        "AUC": float(auc),
        "hamming": float(hamming),
        "n_classes_scored": int(len(scored)),
        "n_classes_excluded": int(n_classes - len(both)),
        "n_classes_without_positive": int((positives == 0).sum()),
        "n_classes_without_negative": int((negatives == 0).sum()),
    }


def _macro(multilabel, binary, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Macro mean over the columns (torchmetrics' multilabel functions need at least 2 labels)."""
    if p.shape[1] == 0:
        return torch.tensor(float("nan"))
    if p.shape[1] == 1:
        return binary(p[:, 0], y[:, 0])
    return multilabel(p, y, num_labels=p.shape[1], average="macro")


def label_frequency_scores(train_labels: np.ndarray, n_samples: int) -> np.ndarray:
    """The chance predictor: every one of ``n_samples`` rows is the training frequency of each class."""
    train_labels = np.asarray(train_labels)
    if train_labels.ndim != 2 or len(train_labels) == 0:
        raise DataError(
            f"label_frequency_scores: train_labels must be (n_train, n_classes), found {train_labels.shape}."
        )
    return np.tile(train_labels.mean(axis=0, dtype=np.float64).astype(np.float32), (n_samples, 1))


def per_subject_table(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Flatten ``{subject: metrics}`` to ``{"mAP/subj": ..., "mAP": mean over subjects, ...}``."""
    if not results:
        raise DataError("per_subject_table: no subjects given.")
    out: dict[str, float] = {}
    for name in ("mAP", "AUC", "hamming"):
        values = [metrics[name] for metrics in results.values()]
        out[name] = float(np.mean(values))
        out |= {f"{name}/{subject}": metrics[name] for subject, metrics in results.items()}
    return out


def score_subjects(
    scores: dict[str, np.ndarray], labels: dict[str, np.ndarray], undefined: str = "exclude"
) -> dict[str, float]:
    """mAP / AUC / Hamming of each subject's probabilities against its labels, flattened by
    :func:`per_subject_table` (means over subjects, then ``"mAP/<subject>"`` ...). Subjects: ``labels``' keys."""
    missing = sorted(set(labels) - set(scores))
    if missing:
        raise DataError(f"score_subjects: no scores for subjects {missing}.")
    return per_subject_table(
        {s: multilabel_metrics(scores[s], labels[s], undefined=undefined) for s in labels}
    )
