"""``hcp_movie_like``: a simulated multi-subject VOLUMETRIC movie dataset with multi-label categories.

Shaped like the HCP 7T movie data CLIP-MUSED decodes: every subject watches the same stimuli, one brain
volume per stimulus second (already delayed by the haemodynamic lag), on the MNI grid, and each second carries
several category labels. What is real: the MNI152 brain mask (nilearn), the stimulus images (scikit-image,
scikit-learn), their features from pretrained EfficientNet-Lite0 and MiniLM, and the labels, which are what the
pretrained ImageNet classifier sees in each image (its 1,000 classes grouped into categories). What is
simulated: the voxel tuning, the subjects' anatomy (shifted and blurred maps), their SNR and the noise.
docs/datasets.md explains it; ``dataset.info["generative_model"]`` records every parameter.

Generative model, per subject s, voxel v, stimulus i::

    f_g(i)  = PCA_g(embedding_g(i)) (training stimuli)          g in {low, image, text}
    M_sg    = T_s[ gain_g * (sqrt(rho) Z_g + sqrt(1 - rho) U_sg) ]   Z, U smooth Gaussian fields (k_g maps)
    x_v(i)  = sum_g f_g(i) . M_sg[:, v] / sqrt(k_g), scaled to unit variance over visual voxels
    y_v(i)  = snr_s x_v(i) + noise_s                              noise: white, blurred by sigma_s

T_s shifts a map by the subject's displacement d_s (uniform in +-shift_voxels per axis) and blurs it by sigma_s.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.checkpoint import FILE_MODE, atomic_folder
from brainkit.data.builtin import hcp_movie_like_simulation as sim
from brainkit.data.builtin.build_cache import cached_build, encoder_fingerprints, load_stimuli, save_stimuli
from brainkit.data.builtin.nsd_like_simulation import pca_features
from brainkit.data.reliability import noise_ceiling, trials_by_stimulus
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import ConfigError
from brainkit.registry import DATASETS
from brainkit.stimuli.cache import embed_stimuli
from brainkit.stimuli.encoders import get_encoder
from brainkit.stimuli.images import real_images

logger = logging.getLogger(__name__)

BUILD_VERSION = 2
ROLES = ("low", "image", "text")
SPACE = "mni152"


def default_features(image_size: int) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "low": ("efficientnet_lite0_early", {"image_size": image_size}),
        "image": ("efficientnet_lite0", {"image_size": image_size}),
        "text": ("minilm", {}),
    }


@DATASETS.register(
    "hcp_movie_like",
    space="MNI152 6 mm volume grid (masked)",
    needs="nothing: built from packaged real images and atlases, cached",
    help="Simulated HCP-movie-like volumes: 4 subjects, MNI 6 mm, multi-label categories.",
)
def build_hcp_movie_like(
    cache_dir: str | Path | None = None,
    snr: tuple[float, ...] | list[float] = (0.9, 0.7, 0.5, 0.35),
    n_train_stimuli: int = 240,
    n_test_stimuli: int = 80,
    n_test_repeats: int = 2,
    seed: int = 0,
    image_size: int = 160,
    resolution_mm: int = 6,
    grid: tuple[int, int, int] | list[int] = (28, 32, 28),
    shared_tuning: float = 0.7,
    shift_voxels: float = 1.0,
    blur_voxels: tuple[float, float] | list[float] = (0.5, 1.2),
    map_smoothing: float = 1.5,
    n_components: dict[str, int] | None = None,
    n_clusters: int = 64,
    label_threshold: float = 0.05,
    min_label_fraction: float = 0.02,
    features: dict[str, tuple[str, dict[str, Any]]] | None = None,
    rebuild: bool = False,
) -> DecodingDataset:
    """Build (or read from the cache) the simulated volumetric dataset; ``len(snr)`` subjects.

    Parameters
    ----------
    snr : sequence of float
        Each subject's signal-to-noise ratio (signal std / noise std in a voxel of full gain).
    n_train_stimuli, n_test_stimuli, n_test_repeats : int
        Training stimuli (one volume each) and test stimuli (``n_test_repeats`` volumes each, for noise ceilings).
    resolution_mm, grid : the MNI brain mask's resolution and the grid it is cropped/padded to.
    shared_tuning : float in [0, 1]
        Share of the tuning variance common to all subjects.
    shift_voxels, blur_voxels : anatomy: displacement range (+-voxels per axis) and blur sigma range (voxels).
    map_smoothing : float
        Sigma (voxels) of the Gaussian fields the tuning maps are drawn from.
    n_clusters, label_threshold, min_label_fraction : how categories are derived (see docs/datasets.md).
    features : dict role -> (encoder, options), optional
        Encoders for low / image / text (tests use the weight-free ``pixel_projection`` and ``hashed_words``).

    Returns
    -------
    DecodingDataset
        ``train[s]`` (n_train, n_voxels), ``test[s]`` (n_test * n_test_repeats, n_voxels) masked voxels;
        ``info``: ``mask`` (grid bool), ``affine``, ``labels`` (n_stimuli, n_categories) in stimulus order,
        ``categories``, ``noise_ceiling``, ``label_frequency``, ``generative_model``.
    """
    params = _check_params(locals())
    return cached_build(
        "hcp_movie_like",
        [BUILD_VERSION, params, encoder_fingerprints(params["features"])],
        lambda root: _build(params, root),
        _save,
        _load,
        cache_dir,
        rebuild,
    )


def _check_params(args: dict[str, Any]) -> dict[str, Any]:
    snr = [float(v) for v in args["snr"]]
    if not snr or min(snr) <= 0:
        raise ConfigError(f"hcp_movie_like: snr needs one positive value per subject, found {args['snr']!r}.")
    for name in ("n_train_stimuli", "n_test_stimuli", "n_test_repeats"):
        if not isinstance(args[name], int) or args[name] < 2:
            raise ConfigError(f"hcp_movie_like: {name} must be an int >= 2, found {args[name]!r}.")
    if not 0.0 <= args["shared_tuning"] <= 1.0:
        raise ConfigError(
            f"hcp_movie_like: shared_tuning must be in [0, 1], found {args['shared_tuning']!r}."
        )
    blur = [float(v) for v in args["blur_voxels"]]
    if len(blur) != 2 or not 0 <= blur[0] <= blur[1]:
        raise ConfigError(
            f"hcp_movie_like: blur_voxels must be [low, high] >= 0, found {args['blur_voxels']!r}."
        )
    features = dict(args["features"] or default_features(args["image_size"]))
    components = {"low": 16, "image": 24, "text": 8} | dict(args["n_components"] or {})
    if set(features) != set(ROLES) or set(components) != set(ROLES):
        raise ConfigError(
            f"hcp_movie_like: features and n_components take the roles {list(ROLES)}; found {sorted(features)}."
        )
    return {
        "subjects": [f"sub{i + 1:02d}" for i in range(len(snr))],
        "snr": snr,
        **{k: args[k] for k in ("n_train_stimuli", "n_test_stimuli", "n_test_repeats", "image_size")},
        **{k: args[k] for k in ("resolution_mm", "n_clusters")},
        "seed": int(args["seed"]),
        "grid": [int(g) for g in args["grid"]],
        **{k: float(args[k]) for k in ("shared_tuning", "shift_voxels", "map_smoothing")},
        **{k: float(args[k]) for k in ("label_threshold", "min_label_fraction")},
        "blur_voxels": blur,
        "n_components": {role: int(components[role]) for role in ROLES},
        "features": {role: [features[role][0], dict(features[role][1])] for role in ROLES},
    }


def imagenet_probabilities(pooled: np.ndarray, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of the pretrained EfficientNet-Lite0 ImageNet classifier on pooled features, and its weights."""
    model = get_encoder("efficientnet_lite0", image_size=image_size)._model()
    weight, bias = model._fc.weight.detach().numpy(), model._fc.bias.detach().numpy()
    logits = pooled.astype(np.float64) @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    return probabilities / probabilities.sum(axis=1, keepdims=True), weight


def _build(params: dict[str, Any], root: Path) -> DecodingDataset:
    n_train, n_test, seed = params["n_train_stimuli"], params["n_test_stimuli"], params["seed"]
    images = real_images(n_train + n_test, size=params["image_size"], seed=seed)
    stimuli = Stimuli(ids=images.ids, images=images.images, labels=images.labels)
    train_rows = np.arange(n_train)
    feats = {}
    for role in ROLES:
        name, opts = params["features"][role]
        embedding = embed_stimuli(stimuli, name, cache_dir=root, **opts)
        feats[role], _ = pca_features(embedding, train_rows, params["n_components"][role])
    pooled = embed_stimuli(stimuli, "efficientnet_lite0", cache_dir=root, image_size=params["image_size"])
    probabilities, weight = imagenet_probabilities(pooled, params["image_size"])
    clusters = sim.imagenet_clusters(weight, params["n_clusters"])
    labels, _, categories = sim.category_labels(
        probabilities, clusters, params["label_threshold"], train_rows, params["min_label_fraction"]
    )

    mask, affine = sim.brain_grid(params["resolution_mm"], tuple(params["grid"]))
    gains = sim.gain_volumes(mask)
    rho = params["shared_tuning"]
    shared_rng = np.random.default_rng([seed, 0])
    shared = {
        r: sim.smooth_fields(f.shape[1], mask, params["map_smoothing"], shared_rng) for r, f in feats.items()
    }
    visual = sum(gains.values())[mask] > 0.5
    coords = (np.c_[np.argwhere(mask), np.ones(int(mask.sum()))] @ affine.T)[:, :3]
    test_order = np.repeat(np.arange(n_train, n_train + n_test), params["n_test_repeats"])

    train, test, anatomy, ceilings = {}, {}, {}, {}
    for index, subject in enumerate(params["subjects"]):
        rng = np.random.default_rng([seed, 1, index])
        displacement = rng.uniform(-params["shift_voxels"], params["shift_voxels"], size=3)
        sigma = float(rng.uniform(*params["blur_voxels"]))
        signal = np.zeros((len(stimuli), int(mask.sum())))
        for role in ROLES:
            unique = sim.smooth_fields(feats[role].shape[1], mask, params["map_smoothing"], rng)
            maps = gains[role] * (np.sqrt(rho) * shared[role] + np.sqrt(1 - rho) * unique)
            weights = sim.subject_maps(maps, displacement, sigma, mask)  # (k, n_voxels)
            signal += feats[role] @ weights / np.sqrt(weights.shape[0])
        signal -= signal[train_rows].mean(axis=0)
        signal /= signal[train_rows][:, visual].std()
        order = np.concatenate([rng.permutation(n_train), rng.permutation(test_order)])
        noise = sim.smooth_noise(len(order), mask, sigma, rng)
        values = (params["snr"][index] * signal[order] + noise).astype(np.float32)
        samples = BrainSamples(subject, values, stimuli.ids[order], SPACE, feature_coords=coords)
        train[subject] = samples.select(np.arange(n_train))
        test[subject] = samples.select(np.arange(n_train, len(order)))
        anatomy[subject] = {"displacement_voxels": displacement.round(3).tolist(), "blur_sigma_voxels": sigma}
        nc = noise_ceiling(trials_by_stimulus(test[subject], params["n_test_repeats"]), n_average=1)
        ceilings[subject] = {
            "median_visual": float(np.median(nc[visual])),
            "q90_visual": float(np.percentile(nc[visual], 90)),
        }
        logger.info(
            "hcp_movie_like %s: median visual-voxel NC %.1f %%", subject, ceilings[subject]["median_visual"]
        )

    info = {
        "description": "Simulated HCP-movie-like volumes on the real MNI152 mask; real images, features and "
        "ImageNet-derived labels; simulated tuning, anatomy and noise. See docs/datasets.md.",
        "parameters": params,
        "mask": mask,
        "affine": affine,
        "labels": labels,
        "categories": categories,
        "label_frequency": {
            "train": labels[train_rows].mean(0).round(4).tolist(),
            "mean_labels_per_stimulus": float(labels.sum(1).mean()),
        },
        "anatomy": anatomy,
        "noise_ceiling": ceilings,
        "noise_ceiling_formula": "NSD ncsnr on the test repeats, single-presentation NC (%), visual voxels",
        "generative_model": {
            "gains": sim.GAINS,
            "visual_voxels": int(visual.sum()),
            "n_voxels": int(mask.sum()),
        },
    }
    return DecodingDataset(name="hcp_movie_like", stimuli=stimuli, train=train, test=test, info=info)


_ARRAYS = ("mask", "affine", "labels")


def _save(folder: Path, dataset: DecodingDataset) -> None:
    """Write the build through a temporary folder and one rename (whole or absent)."""
    with atomic_folder(folder) as tmp:
        save_stimuli(tmp / "stimuli.npz", dataset.stimuli)
        np.savez(tmp / "arrays.npz", **{name: dataset.info[name] for name in _ARRAYS})
        for subject in dataset.subjects:
            parts = {"train": dataset.train[subject], "test": dataset.test[subject]}
            arrays = {f"{p}:{f}": getattr(s, f) for p, s in parts.items() for f in ("values", "stimulus_ids")}
            np.savez(tmp / f"{subject}.npz", coords=parts["train"].feature_coords, **arrays)
        meta = {k: v for k, v in dataset.info.items() if k not in _ARRAYS}
        (tmp / "info.json").write_text(json.dumps(meta, indent=1))
        tmp.chmod(FILE_MODE | 0o111)  # mkdtemp alone would leave the folder 0700


def _load(folder: Path) -> DecodingDataset:
    meta = json.loads((folder / "info.json").read_text())
    stimuli = load_stimuli(folder / "stimuli.npz")
    with np.load(folder / "arrays.npz") as data:
        arrays = {name: data[name] for name in _ARRAYS}
    train, test = {}, {}
    for subject in meta["parameters"]["subjects"]:
        with np.load(folder / f"{subject}.npz") as data:
            for part, out in (("train", train), ("test", test)):
                out[subject] = BrainSamples(
                    subject, data[f"{part}:values"], data[f"{part}:stimulus_ids"], SPACE,
                    feature_coords=data["coords"],
                )  # fmt: skip
    return DecodingDataset("hcp_movie_like", stimuli, train, test, info=meta | arrays)
