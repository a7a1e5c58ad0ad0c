"""CLIP-MUSED's stimulus targets for the RSM losses: a low-level and a high-level feature per stimulus.

The paper (reviewers' summary; METHODS.md 2.1): high-level = the average of the CLIP ViT-B/16 image embedding
and the caption's CLIP text embedding; low-level = an early layer of the CLIP image encoder; both clipped to
+-1.5 and L2-normalised. CLIP weights are not installable offline, so by default brainkit uses

- low-level: EfficientNet-Lite0 block 4 pooled to 4 x 4 (``efficientnet_lite0_early``, 640 numbers);
- high-level: EfficientNet-Lite0 pooled features (1,280) and the MiniLM embedding of the stimulus label (384).

Image and text live in different spaces of different widths, so they cannot be averaged as CLIP's can. Each is
standardised on the training stimuli, reduced by PCA (training stimuli) to the same ``dim`` components,
whitened (unit variance per component) and L2-normalised, and the two unit vectors are averaged: the RDM of the
average then weighs both modalities equally, which is what averaging two CLIP embeddings of similar norm does.
With a local CLIP folder (CLIP-MUSED's ``clip_model_dir``) the image side is ``clip_vit_l14_pooled`` and the
text side ``clip_text`` (the same model's text tower): both live in CLIP's joint space, so ``joint_space=True``
averages the two L2-normalised embeddings directly, as the paper does, then clips and normalises.
"""

from __future__ import annotations

import numpy as np

from brainkit.errors import DataError


def _standardise(x: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean, std = flat[train_rows].mean(0), flat[train_rows].std(0)
    return (flat - mean) / np.where(std > 1e-8, std, 1.0)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def post_process(x: np.ndarray, train_rows: np.ndarray, clip: float = 1.5) -> np.ndarray:
    """The released code's ``-fea_pp -thres=1.5``: standardise (training stimuli), clip to +-clip, L2-normalise."""
    return _unit(np.clip(_standardise(x, train_rows), -clip, clip)).astype(np.float32)


def pca_whiten(x: np.ndarray, train_rows: np.ndarray, dim: int) -> np.ndarray:
    """Standardise, project on the top ``dim`` principal components of the training rows, unit variance each."""
    z = _standardise(x, train_rows)
    _, singular, vt = np.linalg.svd(z[train_rows], full_matrices=False)
    keep = min(dim, int((singular > singular[0] * 1e-6).sum()))
    scale = singular[:keep] / np.sqrt(len(train_rows))
    return (z @ vt[:keep].T) / scale


def semantic_targets(
    low: np.ndarray,
    image: np.ndarray,
    text: np.ndarray,
    train_rows: np.ndarray,
    dim: int = 64,
    clip: float = 1.5,
    joint_space: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(low-level (n, d_low), high-level (n, dim')) float32 targets, rows L2-normalised.

    ``low``: (n, ...) an early image layer; ``image``: (n, d_image) image embedding; ``text``: (n, d_text)
    label/caption embedding; all fitted on ``train_rows`` only. ``dim'`` = ``dim`` unless a modality has fewer
    independent training components, then the smaller of the two. ``joint_space=True`` (image and text from one
    CLIP model, equal widths): the paper's direct average of the unit embeddings, then ``post_process``.
    """
    n = len(low)
    if len(image) != n or len(text) != n:
        raise DataError(
            f"semantic_targets: low, image and text need one row per stimulus, found {n}, {len(image)}, {len(text)}."
        )
    if joint_space:
        if image.shape[1:] != text.shape[1:]:
            raise DataError(
                f"semantic_targets: joint_space needs image and text embeddings of one width (one CLIP model), "
                f"found {image.shape[1:]} and {text.shape[1:]}."
            )
        high = post_process(
            (_unit(image.astype(np.float64)) + _unit(text.astype(np.float64))) / 2, train_rows, clip
        )
        return post_process(low, train_rows, clip), high
    image_part, text_part = pca_whiten(image, train_rows, dim), pca_whiten(text, train_rows, dim)
    width = min(image_part.shape[1], text_part.shape[1])
    high = (_unit(image_part[:, :width]) + _unit(text_part[:, :width])) / 2
    high = _unit(np.clip(high * np.sqrt(width), -clip, clip))  # the paper's clip, on the per-dimension scale
    return post_process(low, train_rows, clip), high.astype(np.float32)
