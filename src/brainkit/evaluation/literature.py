"""The literature's reconstruction columns, computed as MindEye / MindEye2's evaluation computes them.

Most NSD reconstruction papers report PixCorr, SSIM, AlexNet(2), AlexNet(5), Inception, CLIP, EffNet-B and SwAV,
with the definitions of MindEye's ``Reconstruction_Metrics.ipynb`` / MindEye2's ``final_evaluations.ipynb``
(PixCorr and SSIM: :mod:`brainkit.evaluation.pixels`). This module gives the six network columns, by those
names, when the user has the networks' released weights locally (:mod:`brainkit.stimuli.reference_networks`)
and, for CLIP, a local openai/clip-vit-large-patch14 folder:

==============  =============================================  ==============================================
column          features                                       score
==============  =============================================  ==============================================
``AlexNet(2)``  AlexNet ``features.4`` (192 x 31 x 31), 256 px  two-way identification (:func:`two_way_identification`)
``AlexNet(5)``  AlexNet ``features.11`` (256 x 15 x 15)        two-way identification
``Inception``   Inception v3 ``avgpool`` (2048), 342 px        two-way identification
``CLIP``        CLIP ViT-L/14 image embedding (768), 224 px    two-way identification
``EffNet-B``    EfficientNet-B1 ``avgpool`` (1280), 255 px     mean correlation distance (:func:`correlation_distance`)
``SwAV``        SwAV ResNet-50 ``avgpool`` (2048), 224 px      mean correlation distance
==============  =============================================  ==============================================

Two-way identification is higher-is-better (chance 0.5), shown as a percentage; the distances are
lower-is-better (0 for identical features). With k samples per image every sample is scored and the column is
the mean over the n x k pairs (MindEye scores one reconstruction per image); ``_sd`` is the spread over pairs.
The numbers depend on the set of images (identification compares each reconstruction with all the others), so
compare them only between methods scored on the same test set (NSD's shared 982 images in the papers).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.evaluation.identification import correlation_matrix

# column -> (network of brainkit.stimuli.reference_networks.NETWORKS or "clip", tap, score)
COLUMNS = {
    "AlexNet(2)": ("alexnet", "features.4", "identification"),
    "AlexNet(5)": ("alexnet", "features.11", "identification"),
    "Inception": ("inception_v3", "avgpool", "identification"),
    "CLIP": ("clip", "embedding", "identification"),
    "EffNet-B": ("efficientnet_b1", "avgpool", "distance"),
    "SwAV": ("swav_resnet50", "avgpool", "distance"),
}
IDENTIFICATION_COLUMNS = tuple(
    column for column, (_, _, score) in COLUMNS.items() if score == "identification"
)


def _constant_rows(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=-1, keepdims=True)
    return np.linalg.norm(centred, axis=-1) <= 1e-12 * rows.shape[-1]


def two_way_identification(real: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """MindEye's two-way identification, per reconstruction.

    Parameters
    ----------
    real : array, shape (n, d)
        Features of the real images; real image i belongs to reconstruction i.
    recon : array, shape (n, k, d)
        Features of the reconstructions (k samples each).

    Returns
    -------
    float array, shape (n, k)
        For sample s of reconstruction i: the share of the n - 1 other real images j whose Pearson correlation
        with it is strictly lower than real image i's, r(real_j, recon_is) < r(real_i, recon_is). A tie counts
        as a failure; a constant feature vector has an undefined correlation (NaN in ``np.corrcoef``), which
        loses every comparison, as in MindEye's code.
    """
    real, recon = np.asarray(real, dtype=np.float64), np.asarray(recon, dtype=np.float64)
    n, k, d = recon.shape
    if real.shape != (n, d) or n < 2:
        raise ValueError(
            f"two_way_identification takes real (n, d), recon (n, k, d), n >= 2; got {real.shape}, {recon.shape}"
        )
    flat = recon.reshape(n * k, d)
    scores = correlation_matrix(flat, real)  # (n * k, n): scores[(i, s), j] = r(recon_is, real_j)
    scores[_constant_rows(flat), :] = np.nan
    scores[:, _constant_rows(real)] = np.nan
    scores = scores.reshape(n, k, n)
    rows = np.arange(n)
    own = scores[rows, :, rows]  # (n, k)
    with np.errstate(invalid="ignore"):
        lower = scores < own[:, :, None]
    lower[rows, :, rows] = False
    return lower.sum(axis=-1) / (n - 1)


def correlation_distance(real: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """1 - Pearson correlation of each pair: real (n, d), recon (n, k, d) -> (n, k).

    ``scipy.spatial.distance.correlation(real[i], recon[i, s])``, which MindEye averages; NaN where either vector
    is constant (as scipy).
    """
    real, recon = np.asarray(real, dtype=np.float64), np.asarray(recon, dtype=np.float64)
    u = real[:, None, :] - real.mean(axis=-1)[:, None, None]
    v = recon - recon.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - (u * v).sum(-1) / np.sqrt((u * u).sum(-1) * (v * v).sum(-1))


def literature_features(
    real: np.ndarray,
    recon: np.ndarray,
    reference_weights: str | Path | Mapping[str, str | Path] | None,
    clip_model_dir: str | Path | None,
    device: str = "cpu",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{column: (real features (n, d), reconstruction features (m, d))} for every column the weights allow.

    ``reference_weights``: a folder with the released file names, or {network: file}
    (:func:`brainkit.stimuli.reference_networks.resolve_weights`); ``clip_model_dir`` adds ``CLIP``.
    """
    from brainkit.stimuli.reference_networks import ReferenceNetwork, resolve_weights

    weights = resolve_weights(reference_weights) if reference_weights is not None else {}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for network, path in weights.items():
        extractor = ReferenceNetwork(network, path, device=device)
        real_taps, recon_taps = extractor.features(real), extractor.features(recon)
        for column, (name, tap, _) in COLUMNS.items():
            if name == network:
                out[column] = (real_taps[tap], recon_taps[tap])
        del extractor
    if clip_model_dir is not None:
        out["CLIP"] = (_clip_embeddings(real, clip_model_dir), _clip_embeddings(recon, clip_model_dir))
    return {column: out[column] for column in COLUMNS if column in out}


def _clip_embeddings(images: np.ndarray, clip_model_dir: str | Path, batch_size: int = 16) -> np.ndarray:
    """CLIP's final image embedding after MindEye's preprocessing (256 px, then the model's 224, CLIP's mean/sd)."""
    from brainkit.stimuli.encoders import get_encoder
    from brainkit.stimuli.reference_networks import mindeye_pixels

    encoder = get_encoder("clip_vit_l14_pooled", model_dir=clip_model_dir)
    size, mean, std = encoder.pixel_statistics()
    parts = [
        encoder.embed_pixel_values(mindeye_pixels(images[start : start + batch_size], size, mean, std))
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32)


def literature_scores(
    features: Mapping[str, tuple[np.ndarray, np.ndarray]], pairing: np.ndarray, k: int
) -> dict[str, float]:
    """The columns with reconstruction i paired with real image ``pairing[i]``: value, ``_sd``, ``_chance``."""
    out: dict[str, float] = {}
    n = len(pairing)
    for column, (real, recon) in features.items():
        candidates, queries = real[pairing], recon.reshape(n, k, -1)
        if COLUMNS[column][2] == "identification":
            per_pair = two_way_identification(candidates, queries)
        else:
            per_pair = correlation_distance(candidates, queries)
        out[column], out[f"{column}_sd"] = float(per_pair.mean()), float(per_pair.std())
        if column in IDENTIFICATION_COLUMNS:
            out[f"{column}_chance"] = 0.5
    return out


def absent_columns_note(features: Mapping[str, Any]) -> str | None:
    """A sentence naming the literature's columns left out and the files that would add them (None if none)."""
    from brainkit.stimuli.reference_networks import NETWORKS

    absent = [column for column in COLUMNS if column not in features]
    if not absent:
        return None
    needs = []
    for column in absent:
        network = COLUMNS[column][0]
        needs.append(f"{column}: a local openai/clip-vit-large-patch14 folder (--clip-model-dir)" if network == "clip"
                     else f"{column}: {NETWORKS[network].file_name}")  # fmt: skip
    return (
        "The literature's columns (MindEye's evaluation) need local weights; absent here: "
        + "; ".join(dict.fromkeys(needs))
        + ". Put the files in one folder and pass --reference-weights FOLDER (see docs/reconstruction_metrics.md). "
        "The lite0_* columns are brainkit's own offline EfficientNet-Lite0 features, not the literature's."
    )
