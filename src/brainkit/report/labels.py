"""How every table a person reads names its columns and shows its numbers: the HTML reports and the terminal.

One place, so that ``brainkit run``, ``train``, ``eval``, ``demo`` and every ``report.html`` agree:

- :func:`column_label` turns a metric key into words: ``fmri_to_image/300way_top1_mean`` -> "fMRI → image,
  300-way top-1"; ``lite0_block4_2way_mean`` -> "EffNet-Lite0 block 4 (ours), 2-way"; ``masked_mse_mean`` ->
  "masked MSE"; ``train_s`` -> "training (s)". ``_mean`` is dropped (the ``_sd`` is shown beside the mean).
- :func:`value_label` names a method or setting written as a code key (``no_rsm`` -> "without the RSM losses").
- :func:`is_share` says whether a column holds a share (top-k, N-way identification, accuracy): such values are
  shown as percentages, their chance level and sd too (:func:`format_value`). Columns already in percent (a share
  of the noise ceiling, ``share_r_above_0.1``) are labelled "(%)" and shown as they are.
"""

from __future__ import annotations

import re
from numbers import Integral, Real

# whole keys (after "_mean" is dropped) with a label of their own
KEY_LABELS = {
    "method": "method",
    "params": "parameters",
    "n_parameters": "parameters",
    "train_s": "training (s)",
    "seconds": "seconds",
    "what": "what it is",
    "mse": "MSE",
    "masked_mse": "masked MSE",
    "r": "Pearson r",
    "pixel_corr": "PixCorr",
    "ssim": "SSIM",
    "hamming": "Hamming loss",
    "mean_r": "mean r",
    "median_r": "median r",
    "median_alpha": "median ridge alpha",
    "median_ceiling": "median noise ceiling (%)",
    "median_share_of_ceiling": "median share of the noise ceiling (%)",
    "share_r_above_0.1": "voxels with r > 0.1 (%)",
    "n_voxels": "voxels",
    "best_of_k": "best of k",
    "n_left": "targets left out",
}
# method / setting values written as code keys
VALUE_LABELS = {
    "clip_mused": "CLIP-MUSED",
    "per_subject": "one model per subject",
    "no_rsm": "without the RSM losses",
    "no_orthogonality": "without the orthogonality loss",
    "no_subject_tokens": "without subject tokens",
    "pooled": "pooled (mean token)",
    "srm": "SRM + logistic regression",
    "label_frequency": "label frequency (chance)",
    "linear_encoding": "linear encoding",
    "lite_mind": "Lite-Mind",
    "mindeye_mlp": "MindEye MLP",
    "ridge": "ridge",
}
# pieces of keys: first on the raw key, then (underscores read as spaces) on its words
RAW = [
    (re.compile(r"lite0_block(\d+)"), r"EffNet-Lite0 block \1 (ours)"),
    (re.compile(r"lite0_pooled"), "EffNet-Lite0 pooled (ours)"),
    (re.compile(r"_to_|\s*->\s*"), " → "),
    (re.compile(r"/"), ", "),
    (re.compile(r"_"), " "),
]
WORDS = [
    (re.compile(r"\btop(\d+)\b"), r"top-\1"),
    (re.compile(r"(?<![\w-])(\d+)way\b"), r"\1-way"),
    (re.compile(r"\bfmri\b", re.IGNORECASE), "fMRI"),
    (re.compile(r"\bmse\b"), "MSE"),
    (re.compile(r"\bauroc\b", re.IGNORECASE), "AUROC"),
]
# shares: top-k, N-way, accuracy, and the literature's two-way identification columns (evaluation.literature)
SHARE = re.compile(r"top-?\d+|\d+-?way|accuracy|^AlexNet\(\d\)|^Inception(_|$)|^CLIP(_|$)")
ALREADY_PERCENT = re.compile(r"share_of_ceiling|share_r_above|ceiling|%")


def _stem(key: str) -> str:
    return key[: -len("_mean")] if key.endswith("_mean") else key


def column_label(key: str) -> str:
    """The words a table header shows for the metric key ``key``."""
    stem = _stem(str(key))
    if stem in KEY_LABELS:
        return KEY_LABELS[stem]
    text = stem
    for pattern, words in (*RAW, *WORDS):
        text = pattern.sub(words, text)
    return re.sub(r"\s+", " ", text).strip()


def value_label(value: object) -> object:
    """A method or setting name as words (other values unchanged)."""
    return VALUE_LABELS.get(value, value) if isinstance(value, str) else value


def is_share(key: str) -> bool:
    """Whether column ``key`` holds a share in 0-1 that is shown as a percentage."""
    key = str(key)
    return bool(SHARE.search(key)) and not ALREADY_PERCENT.search(key) and key not in ("train_s",)


def format_value(key: str, value: object) -> str:
    """A cell: shares as percentages (one decimal; two for a chance level), other floats to 4 significant
    digits, ints with thousands separators, None as "-", names through :func:`value_label`."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value_label(value))
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if is_share(key):
        return f"{100 * float(value):.{2 if 'chance' in str(key) else 1}f}%"
    return f"{float(value):.4g}"


__all__ = ["KEY_LABELS", "VALUE_LABELS", "column_label", "format_value", "is_share", "value_label"]
