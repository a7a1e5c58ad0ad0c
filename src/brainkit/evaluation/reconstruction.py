"""Image-reconstruction metrics: pixel, structural, feature-space identification and semantic classification.

Usable on any pairs of real and reconstructed images, not only brainkit's (``brainkit metrics FOLDER`` reads a
folder, see ``brainkit.evaluation.image_pairs``). Inputs: ``real`` uint8 (n, H, W, 3) and ``recon`` uint8
(n, H, W, 3) or (n, k, H, W, 3) with k samples per fMRI; reconstruction i belongs to real image i.

Keys of the returned dict (all floats; "_sd" is a standard deviation, "_chance" the chance level):

======================================  =====================================================================
key                                     meaning
======================================  =====================================================================
``pixel_corr``, ``_sd``                 PixCorr: Pearson correlation of all pixels and channels of a pair (after
                                        the reference resize to 425 px), mean and sd over the n x k (image,
                                        sample) pairs. A constant image counts as 0.
``ssim``, ``_sd``                       SSIM in the field's reference definition (grayscale, Gaussian window
                                        sigma 1.5, data range 1, at 425 px) or, with ``pixels="vis_dec"``,
                                        Vis-Dec's RGB 7 x 7 SSIM (:mod:`brainkit.evaluation.pixels`), mean, sd
``mse``, ``_sd``                        mean squared error of pixel values scaled to [0, 1], mean, sd over pairs
``<metric>_best_of_k``                  (k > 1 only) per image the best of its k samples (max corr / SSIM, min
                                        MSE), then the mean over images
``<space>_<N>way``, ``_sd``, ``_chance``  N-way identification in a feature space (Pearson correlation of
                                        features; rule in ``brainkit.evaluation.identification``): mean and sd
                                        over ``trials`` trials; chance 1/N. Spaces: the EfficientNet-Lite0 taps
                                        in ``feature_layers`` (``lite0_block1`` ... ``lite0_pooled``, see
                                        ``brainkit.stimuli.lite0_taps``) and ``clip`` (CLIP image embedding)
                                        when ``clip_model_dir`` is given
``semantic_50way_top1``, ``_sd``,       the paper's 50-way top-1 semantic classification (METHODS.md 4.5) with
``_chance``                             EfficientNet-Lite0's ImageNet head: GT class = argmax of the logits on
                                        the real image; a reconstruction succeeds when, in its softmax
                                        probabilities, the GT class ranks first among itself and 49 random
                                        other classes; mean, sd over trials; chance 1/50
``AlexNet(2)``, ``AlexNet(5)``,         the literature's columns, as MindEye's evaluation computes them, when
``Inception``, ``CLIP``, ``EffNet-B``,  ``reference_weights`` (the torchvision / SwAV files) or ``clip_model_dir``
``SwAV`` (+ ``_sd``, ``_chance``)       give their networks (:mod:`brainkit.evaluation.literature`)
``n_images``, ``n_samples``, ``trials``  what the numbers were computed on
======================================  =====================================================================

Samples: every sample of a reconstruction is scored against its real image, and each metric is the mean over
all n x k pairs (identification and semantic trials draw one set of distractors per image for all its samples);
best-of-k is reported separately for the pixel metrics only. Vis-Dec's paper used torchvision's ViT-H/14 as the
classifier (not available offline); EfficientNet-Lite0 is a smaller real ImageNet classifier, so absolute
semantic numbers are not comparable with the paper's, only with each other and with chance.

Sizes: ``real`` and ``recon`` must have the same height and width, or pass ``image_size`` to resize both
(bilinear with antialiasing, aspect ratio not kept) to image_size x image_size first. The networks resize to
their own input size themselves.

``shuffled_baseline`` pairs every reconstruction with a wrong real image (a seeded derangement) and computes the
same table: what the metrics give for reconstructions that carry no information about their own image.
``evaluate_reconstructions`` returns both, computing the network features once.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.identification import correlation_matrix, n_way_trials
from brainkit.evaluation.literature import literature_features, literature_scores
from brainkit.evaluation.pixels import PROTOCOLS as PIXEL_PROTOCOLS
from brainkit.evaluation.pixels import pixel_metrics, resize_images

logger = logging.getLogger(__name__)

DEFAULT_LAYERS = ("lite0_block1", "lite0_block4", "lite0_block10", "lite0_block15", "lite0_pooled")
DEFAULT_N_WAY = (2, 50)
DEFAULT_TRIALS = 1000  # Vis-Dec gen_eval.py: 1,000 trials for 50-way top-1 (METHODS.md 4.5)
SEMANTIC_N_WAY = 50  # the paper's 50-way top-1 semantic classification (METHODS.md 4.5)
PIXEL_METRICS = ("pixel_corr", "ssim", "mse")


class FeatureExtractor(Protocol):
    """What the metrics need from a network: named feature taps and ImageNet ``logits`` for uint8 images."""

    def features(self, images: np.ndarray, taps: Sequence[str]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class _Prepared:
    """Images and their features, computed once; real side (n, ...), reconstruction side (n, k, ...)."""

    real: np.ndarray
    recon: np.ndarray
    real_features: dict[str, np.ndarray]
    recon_features: dict[str, np.ndarray]
    semantic: bool
    literature: dict = field(default_factory=dict)  # {column: (real (n, d), recon (n * k, d))}


def _check_images(real: Any, recon: Any, image_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    real, recon = np.asarray(real), np.asarray(recon)
    for name, array, shapes in (
        ("real", real, "(n, H, W, 3)"),
        ("recon", recon, "(n, H, W, 3) or (n, k, H, W, 3)"),
    ):
        if array.dtype != np.uint8:
            raise DataError(
                f"{name} images must be uint8 in 0..255; found {array.dtype}. Convert floats in [0, 1] with "
                "(images * 255).round().astype(np.uint8)."
            )
        if array.ndim not in ((4,) if name == "real" else (4, 5)) or array.shape[-1] != 3:
            raise DataError(f"{name} images must have shape {shapes} (RGB last); found {array.shape}.")
    if recon.ndim == 4:
        recon = recon[:, None]
    if len(real) != len(recon):
        raise DataError(
            f"real has {len(real)} images but recon has {len(recon)}; reconstruction i must belong to real image i."
        )
    if len(real) < 2:
        raise DataError(f"Reconstruction metrics need at least 2 image pairs; found {len(real)}.")
    if recon.shape[1] < 1:
        raise DataError("recon has 0 samples per image; expected at least one.")
    if image_size is not None:
        if not isinstance(image_size, int) or image_size < 8:
            raise ConfigError(f"image_size must be an integer >= 8, found {image_size!r}.")
        real = resize_images(real, image_size)
        n, k = recon.shape[:2]
        recon = resize_images(recon.reshape(n * k, *recon.shape[2:]), image_size).reshape(
            n, k, image_size, image_size, 3
        )
    elif real.shape[1:3] != recon.shape[2:4]:
        raise DataError(
            f"real images are {real.shape[1]}x{real.shape[2]} but reconstructions are "
            f"{recon.shape[2]}x{recon.shape[3]}; pass image_size=<side> (--image-size) to resize both to one size."
        )
    if real.shape[1] < 7 or real.shape[2] < 7:
        raise DataError(f"Images are {real.shape[1]}x{real.shape[2]}; SSIM needs at least 7x7 pixels.")
    return real, recon


def _check_scoring(
    n: int, n_way: Sequence[int], trials: int, feature_layers: Sequence[str], clip_model_dir: Any
) -> None:
    """Fail before any network runs: each N-way needs N pairs; trials positive; no duplicate spaces."""
    if isinstance(n_way, int) or not all(isinstance(w, int) and w >= 2 for w in n_way):
        raise ConfigError(f"n_way must be a sequence of integers >= 2 (e.g. (2, 50)), found {n_way!r}.")
    too_big = [w for w in n_way if w > n]
    if too_big:
        raise ConfigError(
            f"{too_big[0]}-way identification needs at least {too_big[0]} image pairs; found {n}. Pass fewer ways "
            f"(n_way={tuple(w for w in n_way if w <= n) or (2,)}, --n-way) or evaluate more images."
        )
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a positive integer, found {trials!r}.")
    if isinstance(feature_layers, str):
        raise ConfigError(
            f"feature_layers must be a sequence of tap names, found the string {feature_layers!r}."
        )
    if "clip" in feature_layers or "logits" in feature_layers:
        raise ConfigError(
            "feature_layers takes EfficientNet-Lite0 taps only: 'clip' comes from clip_model_dir and 'logits' "
            "from semantic=True."
        )


def _rng(seed: int, key: str) -> np.random.Generator:
    """One independent stream per metric, so adding a metric does not change the others' numbers."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _prepare(
    real: Any,
    recon: Any,
    *,
    n_way: Sequence[int],
    trials: int,
    feature_layers: Sequence[str],
    clip_model_dir: str | Path | None,
    device: str,
    image_size: int | None,
    semantic: bool,
    extractor: FeatureExtractor | None,
    reference_weights: Any = None,
) -> _Prepared:
    real, recon = _check_images(real, recon, image_size)
    n, k = recon.shape[:2]
    _check_scoring(n, n_way, trials, feature_layers, clip_model_dir)
    flat_recon = recon.reshape(n * k, *recon.shape[2:])
    literature = {}
    if reference_weights is not None or clip_model_dir is not None:
        literature = literature_features(real, flat_recon, reference_weights, clip_model_dir, device)
    taps = list(dict.fromkeys([*feature_layers, *(["logits"] if semantic else [])]))
    real_features: dict[str, np.ndarray] = {}
    recon_features: dict[str, np.ndarray] = {}
    if taps:
        if extractor is None:
            from brainkit.stimuli.lite0_taps import Lite0Taps

            extractor = Lite0Taps(device=device)
        real_features.update(extractor.features(real, taps))
        recon_features.update(extractor.features(flat_recon, taps))
    if clip_model_dir is not None:
        from brainkit.stimuli.encoders import get_encoder

        encoder = get_encoder("clip_vit_l14_pooled", model_dir=clip_model_dir)
        real_features["clip"] = encoder.encode(real)
        recon_features["clip"] = encoder.encode(flat_recon)
    for name, values in recon_features.items():
        if len(values) != n * k or len(real_features[name]) != n:
            raise RuntimeError(f"feature tap {name!r} returned the wrong number of rows.")
        recon_features[name] = values.reshape(n, k, -1)
        real_features[name] = real_features[name].reshape(n, -1)
    return _Prepared(real, recon, real_features, recon_features, semantic, literature)


def _score(
    prepared: _Prepared,
    pairing: np.ndarray,
    *,
    seed: int,
    n_way: Sequence[int],
    trials: int,
    pixels: str = "reference",
) -> dict[str, float]:
    """The metric table with reconstruction i paired with real image ``pairing[i]``."""
    n, k = prepared.recon.shape[:2]
    real = prepared.real[pairing]
    out: dict[str, float] = {}
    per_pair = pixel_metrics(real, prepared.recon, protocol=pixels)
    for name in PIXEL_METRICS:
        out[name] = float(per_pair[name].mean())
        out[f"{name}_sd"] = float(per_pair[name].std())
    if k > 1:
        best = {"pixel_corr": np.max, "ssim": np.max, "mse": np.min}
        for name in PIXEL_METRICS:
            out[f"{name}_best_of_k"] = float(best[name](per_pair[name], axis=1).mean())
    spaces = [name for name in prepared.recon_features if name != "logits"]
    for space in spaces:
        candidates = prepared.real_features[space][
            pairing
        ]  # (n, d): candidate j is the real partner of recon j
        queries = prepared.recon_features[space].reshape(n * k, -1)
        scores = correlation_matrix(queries, candidates).reshape(n, k, n)
        for ways in n_way:
            key = f"{space}_{ways}way"
            accuracy = n_way_trials(scores, np.arange(n), ways, trials, _rng(seed, key))
            out[key], out[f"{key}_sd"], out[f"{key}_chance"] = (
                float(accuracy.mean()),
                float(accuracy.std()),
                1 / ways,
            )
    if prepared.semantic:
        key = f"semantic_{SEMANTIC_N_WAY}way_top1"
        gt_classes = prepared.real_features["logits"][pairing].argmax(axis=1)
        probabilities = _softmax(prepared.recon_features["logits"].astype(np.float64))
        accuracy = n_way_trials(probabilities, gt_classes, SEMANTIC_N_WAY, trials, _rng(seed, key))
        out[key], out[f"{key}_sd"] = float(accuracy.mean()), float(accuracy.std())
        out[f"{key}_chance"] = 1 / SEMANTIC_N_WAY
    out.update(literature_scores(prepared.literature, pairing, k))
    out.update(n_images=float(n), n_samples=float(k), trials=float(trials))
    return out


def _derangement(n: int, seed: int) -> np.ndarray:
    """A seeded random permutation with no fixed point (every reconstruction gets a wrong real image)."""
    rng = _rng(seed, "shuffled_baseline")
    while True:
        permutation = rng.permutation(n)
        if not np.any(permutation == np.arange(n)):
            return permutation


def _evaluate(
    real: Any,
    recon: Any,
    seed: int,
    tables: Sequence[str],
    *,
    n_way: Sequence[int] = DEFAULT_N_WAY,
    trials: int = DEFAULT_TRIALS,
    feature_layers: Sequence[str] = DEFAULT_LAYERS,
    clip_model_dir: str | Path | None = None,
    device: str = "cpu",
    image_size: int | None = None,
    semantic: bool = True,
    extractor: FeatureExtractor | None = None,
    pixels: str = "reference",
    reference_weights: Any = None,
) -> list[dict[str, float]]:
    """The ``tables`` ("true" pairs, "shuffled" baseline) from one computation of the network features."""
    prepared = _prepare(
        real,
        recon,
        n_way=n_way,
        trials=trials,
        feature_layers=feature_layers,
        clip_model_dir=clip_model_dir,
        device=device,
        image_size=image_size,
        semantic=semantic,
        extractor=extractor,
        reference_weights=reference_weights,
    )
    n = len(prepared.real)
    pairings = {"true": lambda: np.arange(n), "shuffled": lambda: _derangement(n, seed)}
    if pixels not in PIXEL_PROTOCOLS:
        raise ConfigError(
            f"Unknown pixel protocol {pixels!r}; choose 'reference' (the field's PixCorr / SSIM, as MindEye "
            "evaluates NSD) or 'vis_dec' (Vis-Dec's eval_metrics.py)."
        )
    return [
        _score(prepared, pairings[table](), seed=seed, n_way=n_way, trials=trials, pixels=pixels)
        for table in tables
    ]


def reconstruction_metrics(
    real: Any,
    recon: Any,
    *,
    seed: int = 0,
    n_way: Sequence[int] = DEFAULT_N_WAY,
    trials: int = DEFAULT_TRIALS,
    feature_layers: Sequence[str] = DEFAULT_LAYERS,
    clip_model_dir: str | Path | None = None,
    device: str = "cpu",
    image_size: int | None = None,
    semantic: bool = True,
    extractor: FeatureExtractor | None = None,
    pixels: str = "reference",
    reference_weights: str | Path | dict[str, str | Path] | None = None,
) -> dict[str, float]:
    """The metric table (keys in the module docstring) of reconstructions against their real images.

    Parameters
    ----------
    real : uint8 array, shape (n, H, W, 3)
    recon : uint8 array, shape (n, H, W, 3) or (n, k, H, W, 3)
        Reconstruction (sample s of) i belongs to real image i.
    seed : int
        Seeds every distractor draw (one stream per metric).
    n_way : sequence of int
        The identification sizes (each needs at least that many pairs; see :func:`applicable_n_way`).
    trials : int
        Distractor draws per identification and semantic number.
    feature_layers : sequence of str
        EfficientNet-Lite0 taps (``brainkit.stimuli.lite0_taps.TAPS`` minus ``logits``) to identify in;
        () for none.
    clip_model_dir : str or Path, optional
        A local openai/clip-vit-large-patch14 folder: adds the ``clip`` feature space.
    device : str
        Where EfficientNet-Lite0 runs ("cpu", "cuda", ...); CLIP runs on the CPU.
    image_size : int, optional
        Resize real and reconstructed images to image_size x image_size first (needed when their sizes differ).
    semantic : bool
        Compute the 50-way top-1 semantic classification.
    extractor : object with ``features(images, taps)``, optional
        A replacement for EfficientNet-Lite0 (tests; other networks): returns {tap: (m, d)} and ``logits``.
    pixels : str
        ``"reference"`` (the field's PixCorr and SSIM: grayscale Gaussian-window SSIM at 425 px) or ``"vis_dec"``
        (Vis-Dec's RGB 7 x 7 SSIM); see :mod:`brainkit.evaluation.pixels`.
    reference_weights : str, Path or dict, optional
        A folder holding the released files of MindEye's evaluation networks (``alexnet-owt-7be5be79.pth``,
        ``inception_v3_google-0cc3c7bd.pth``, ``efficientnet_b1-c27df63c.pth``, ``swav_800ep_pretrain.pth.tar``;
        any subset), or {network: file}: adds the literature's columns (:mod:`brainkit.evaluation.literature`).
    """
    options = dict(n_way=n_way, trials=trials, feature_layers=feature_layers, clip_model_dir=clip_model_dir)
    options.update(
        device=device, image_size=image_size, semantic=semantic, extractor=extractor, pixels=pixels
    )
    options.update(reference_weights=reference_weights)
    return _evaluate(real, recon, seed, ["true"], **options)[0]


def shuffled_baseline(real: Any, recon: Any, seed: int = 0, **options: Any) -> dict[str, float]:
    """The metric table with reconstruction i paired with real image ``p[i] != i`` (a seeded derangement).

    Takes the keyword options of :func:`reconstruction_metrics`; the chance levels are the same. To get both tables
    without running the networks twice, use :func:`evaluate_reconstructions`.
    """
    return _evaluate(real, recon, seed, ["shuffled"], **options)[0]


def evaluate_reconstructions(
    real: Any, recon: Any, *, seed: int = 0, **options: Any
) -> tuple[dict[str, float], dict[str, float]]:
    """``(reconstruction_metrics(...), shuffled_baseline(...))`` with the network features computed once.

    Takes the keyword options of :func:`reconstruction_metrics`.
    """
    metrics, shuffled = _evaluate(real, recon, seed, ["true", "shuffled"], **options)
    return metrics, shuffled


def applicable_n_way(n: int, n_way: Sequence[int] | None = None) -> tuple[tuple[int, ...], list[str]]:
    """``n_way`` as given (checked later), or the default sizes that ``n`` pairs allow and a note per size left out."""
    if n_way is not None:
        return tuple(n_way), []
    kept = tuple(w for w in DEFAULT_N_WAY if w <= n)
    notes = [
        f"{w}-way identification left out: it needs {w} image pairs, found {n}."
        for w in DEFAULT_N_WAY
        if w > n
    ]
    return kept, notes
