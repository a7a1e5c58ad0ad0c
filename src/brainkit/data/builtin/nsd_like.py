"""``nsd_like``: a simulated dataset shaped like the Natural Scenes Dataset (NSD), built from real parts.

What is real: the stimulus images (photos, faces, digits installed with scikit-image and scikit-learn), their
embeddings by pretrained networks (EfficientNet-Lite0, MiniLM), the cortical geometry (fsaverage5 vertices from
nilearn) and the structured noise (frames of a real resting-state fMRI run on fsaverage5, from brainspace).
What is simulated: each voxel's tuning to those embeddings and each trial's noise mix. docs/datasets.md explains
the generative model for a scientist; ``dataset.info["generative_model"]`` documents every parameter.

Generative model, per subject s, voxel v (a posterior fsaverage5 vertex), stimulus i, trial t::

    f_g(i)   = PCA_g(embedding_g(i)), fitted on training stimuli      g in {low, high, semantic}
    w_gv     = sqrt(rho) * S(z_shared)_gv + sqrt(1 - rho) * S(z_s)_gv   S = Gaussian smoothing on the cortex
    x_v(i)   = sum_g gain_g(v) * f_g(i) . w_gv / sqrt(k_g), scaled to unit variance over training stimuli
    y_vt     = snr_v * x_v(i_t) + sqrt(1 - phi) * white_vt + sqrt(phi) * rest_vt,   then z-scored per session

with gains low = 1 - a_v, high = 0.2 + 0.6 a_v, semantic = 0.8 a_v (a_v = 0 most posterior, 1 most anterior)
and log snr_v = log(median_snr) + snr_spread * S(z'_s)_v + 0.3 (0.5 - a_v). That is ``generative="linear"``,
the default. ``generative="realistic"`` replaces x_v by non-linear responses to EfficientNet-Lite0 feature maps
that the decoding target does not contain (receptive fields, tuning, rectification, divisive normalisation;
``nsd_like_realistic``) and sets the median SNR from a target noise ceiling (30 % by default).
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data.builtin import nsd_like_realistic as realistic
from brainkit.data.builtin import nsd_like_simulation as sim
from brainkit.data.builtin.build_cache import cached_build, encoder_fingerprints
from brainkit.data.builtin.nsd_like_store import load as _load
from brainkit.data.builtin.nsd_like_store import save as _save
from brainkit.data.reliability import noise_ceiling, trials_by_stimulus
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import ConfigError
from brainkit.registry import DATASETS
from brainkit.stimuli.cache import embed_stimuli
from brainkit.stimuli.images import real_images

logger = logging.getLogger(__name__)

BUILD_VERSION = 2  # 2: noiseless responses saved, generative options. Bump when the generative model changes: old cached builds are then ignored

# nsdgeneral voxel counts at 1.8 mm (the numbers MindEye and Lite-Mind use), divided by 4 and rounded half up.
NSDGENERAL_VOXELS = {
    "subj01": 15724,
    "subj02": 14278,
    "subj03": 15226,
    "subj04": 13153,
    "subj05": 13039,
    "subj06": 17907,
    "subj07": 12682,
    "subj08": 14386,
}
VOXELS = {subject: int(count / 4 + 0.5) for subject, count in NSDGENERAL_VOXELS.items()}
REGION_PER_HEMI = 2600  # posterior candidate vertices per hemisphere (~28 % of a hemisphere's cortex)
ROLES = ("low", "high", "semantic")
GENERATIVE = (
    "linear",
    "realistic",
)  # linear: the model below; realistic: nsd_like_realistic (non-linear maps)


def testing_options(n_voxels: dict[str, int], n_test_stimuli: int = 14, **changes: Any) -> dict[str, Any]:
    """Options of a seconds-long build for the recipes' testing presets: 40 training and ``n_test_stimuli`` test
    images at 64 px, weight-free features (pixel projections, hashed words), the subjects of ``n_voxels`` with
    those voxel counts; ``changes`` add or replace options. A fresh dict on every call."""
    return {
        "subjects": list(n_voxels),
        "n_train_stimuli": 40,
        "n_test_stimuli": n_test_stimuli,
        "image_size": 64,
        "features": {
            "low": ["pixel_projection", {"dim": 24, "grid": 4}],
            "high": ["pixel_projection", {"dim": 24, "grid": 4}],
            "semantic": ["hashed_words", {"dim": 16}],
        },
        "n_components": {"low": 4, "high": 6, "semantic": 3},
        "n_voxels": dict(n_voxels),
        **changes,
    }


def default_features(image_size: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The encoders behind the three feature spaces (image encoders run at the stimulus size)."""
    return {
        "low": ("efficientnet_lite0_early", {"image_size": image_size}),
        "high": ("efficientnet_lite0", {"image_size": image_size}),
        "semantic": ("minilm", {}),
    }


@DATASETS.register(
    "nsd_like",
    space="nsdgeneral-like voxels (simulated)",
    needs="nothing: built from packaged real images and a real rest run, cached",
    help="Simulated NSD: 4 subjects, real images, single-trial train, averaged test.",
)
def build_nsd_like(
    cache_dir: str | Path | None = None,
    subjects: tuple[str, ...] | list[str] = ("subj01", "subj02", "subj05", "subj07"),
    n_train_stimuli: int = 1000,
    n_test_stimuli: int = 500,
    n_repeats: int = 3,
    seed: int = 0,
    image_size: int = 192,
    median_snr: float = 0.34,
    snr_spread: float = 0.4,
    structured_noise: float = 0.5,
    shared_tuning: float = 0.6,
    smoothing_mm: float = 6.0,
    n_components: dict[str, int] | None = None,
    features: dict[str, tuple[str, dict[str, Any]]] | None = None,
    n_voxels: dict[str, int] | None = None,
    generative: str = "linear",
    noise_ceiling: float | None = None,
    rebuild: bool = False,
) -> DecodingDataset:
    """Build (or read from the cache) the simulated NSD-like dataset.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Where embeddings and built arrays are cached; default ``$BRAINKIT_CACHE`` or ``~/.cache/brainkit``.
    subjects : sequence of str
        Any of subj01..subj08; each gets nsdgeneral's voxel count / 4 (subj01 3931, subj02 3570, ...).
    n_train_stimuli, n_test_stimuli : int
        Training images (shown ``n_repeats`` times, every trial its own row) and test images (averaged).
    n_repeats : int
        Presentations of every image (NSD: 3); >= 2 so that noise ceilings can be measured.
    seed : int
        Everything random (image crops, tuning, noise); the same seed gives identical arrays.
    image_size : int
        Stimulus side in pixels (a multiple of 32; the default encoders run at this size).
    median_snr, snr_spread : float
        Median and log-spread of the per-voxel signal-to-noise ratio (signal std / noise std of one trial).
    structured_noise : float in [0, 1]
        Share of the noise variance drawn from the real resting-state run (the rest is white).
    shared_tuning : float in [0, 1]
        Share of the tuning variance common to all subjects.
    smoothing_mm : float
        Sigma of the Gaussian that smooths tuning and SNR over the cortical sphere.
    n_components : dict role -> int, optional
        PCA components per feature space; default low 32, high 64, semantic 16.
    features : dict role -> (encoder name, options), optional
        Override the encoders (tests use the weight-free ``pixel_projection`` and ``hashed_words``).
    n_voxels : dict subject -> int, optional
        Override voxel counts (small counts for quick tests).
    generative : {"linear", "realistic"}
        ``linear`` (default, the known answers of docs/datasets.md): voxels linear in the three embeddings above.
        ``realistic``: voxels driven non-linearly by EfficientNet-Lite0 feature maps the decoding target does not
        contain (:mod:`brainkit.data.builtin.nsd_like_realistic`); ``features`` then takes the roles low and
        mid, ``n_components`` does not apply, and the target embedding (``efficientnet_lite0``) is added.
    noise_ceiling : float, optional
        Target median noise ceiling (percent, ``n_repeats``-trial averages): sets the median SNR in place of
        ``median_snr``. Default: none for ``linear`` (``median_snr`` is used), 30 for ``realistic``.
    rebuild : bool
        Ignore a cached build.

    Returns
    -------
    DecodingDataset
        ``train[s]``: single trials (n_train * n_repeats, n_voxels_s); ``test[s]``: averaged (n_test, n_voxels_s);
        ``info["raw_test_trials"][s]``: the test trials before averaging; ``info["noise_ceiling"]``: per subject;
        ``info["noiseless_responses"][s]``: (n_stimuli, n_voxels_s) the model's responses before noise (rows in
        stimulus order), for best-achievable measurements.
    """
    params = _check_params(locals())
    return cached_build(
        "nsd_like",
        [BUILD_VERSION, params, encoder_fingerprints(params["features"])],
        lambda root: _build(params, root),
        _save,
        _load,
        cache_dir,
        rebuild,
    )


def _check_params(args: dict[str, Any]) -> dict[str, Any]:
    subjects = list(args["subjects"])
    n_voxels = dict(VOXELS) | dict(args["n_voxels"] or {})
    unknown = [s for s in subjects if s not in n_voxels]
    if not subjects or unknown:
        raise ConfigError(
            f"nsd_like: unknown subject(s) {unknown or subjects}; expected some of {sorted(VOXELS)} "
            "(or give their voxel counts with n_voxels={...})."
        )
    for name in ("n_train_stimuli", "n_test_stimuli"):
        if not isinstance(args[name], int) or args[name] < 2:
            raise ConfigError(f"nsd_like: {name} must be an int >= 2, found {args[name]!r}.")
    if not isinstance(args["n_repeats"], int) or args["n_repeats"] < 2:
        raise ConfigError(
            f"nsd_like: n_repeats must be an int >= 2 (NSD uses 3), found {args['n_repeats']!r}."
        )
    if not isinstance(args["image_size"], int) or args["image_size"] < 64 or args["image_size"] % 32:
        raise ConfigError(
            f"nsd_like: image_size must be a multiple of 32 and >= 64, found {args['image_size']!r}."
        )
    for name in ("structured_noise", "shared_tuning"):
        if not 0.0 <= float(args[name]) <= 1.0:
            raise ConfigError(f"nsd_like: {name} must be between 0 and 1, found {args[name]!r}.")
    for name in ("median_snr", "smoothing_mm"):
        if not float(args[name]) > 0:
            raise ConfigError(f"nsd_like: {name} must be > 0, found {args[name]!r}.")
    generative = args["generative"]
    if generative not in GENERATIVE:
        raise ConfigError(f"nsd_like: generative must be one of {list(GENERATIVE)}, found {generative!r}.")
    noise_ceiling = args["noise_ceiling"]
    if generative == "realistic" and noise_ceiling is None:
        noise_ceiling = 30.0  # NSD nsdgeneral: median ~25-35 % for 3-trial averages
    if noise_ceiling is not None:
        realistic.snr_for_noise_ceiling(float(noise_ceiling), args["n_repeats"])  # checks the range
    if generative == "realistic":
        features, components = _check_realistic_features(args)
    else:
        features = dict(args["features"] or default_features(args["image_size"]))
        components = {"low": 32, "high": 64, "semantic": 16} | dict(args["n_components"] or {})
        if set(features) != set(ROLES) or set(components) != set(ROLES):
            raise ConfigError(
                f"nsd_like: features and n_components take the roles {list(ROLES)}; found {sorted(features)} "
                f"and {sorted(components)}."
            )
        by_name: dict[str, dict] = {}
        for name, opts in features.values():
            if by_name.setdefault(name, dict(opts)) != dict(opts):
                raise ConfigError(
                    f"nsd_like: encoder {name!r} is used twice with different options; use one setting."
                )
    for subject in subjects:
        if not 2 <= n_voxels[subject] <= 2 * REGION_PER_HEMI:
            raise ConfigError(
                f"nsd_like: {subject} cannot have {n_voxels[subject]} voxels; use 2..{2 * REGION_PER_HEMI}."
            )
    return {
        "subjects": subjects,
        "n_voxels": {s: int(n_voxels[s]) for s in subjects},
        "n_train_stimuli": args["n_train_stimuli"],
        "n_test_stimuli": args["n_test_stimuli"],
        "n_repeats": args["n_repeats"],
        "seed": int(args["seed"]),
        "image_size": args["image_size"],
        "median_snr": float(args["median_snr"]),
        "snr_spread": float(args["snr_spread"]),
        "structured_noise": float(args["structured_noise"]),
        "shared_tuning": float(args["shared_tuning"]),
        "smoothing_mm": float(args["smoothing_mm"]),
        "n_components": {role: int(n) for role, n in components.items()},
        "features": {role: [name, dict(opts)] for role, (name, opts) in features.items()},
        "region_per_hemi": REGION_PER_HEMI,
        "generative": generative,
        "noise_ceiling": None if noise_ceiling is None else float(noise_ceiling),
    }


def _check_realistic_features(args: dict[str, Any]) -> tuple[dict[str, tuple[str, dict]], dict[str, int]]:
    features = dict(args["features"] or realistic.default_features(args["image_size"]))
    if set(features) != set(realistic.ROLES):
        raise ConfigError(
            f"nsd_like: generative='realistic' takes features for the roles {list(realistic.ROLES)} (feature "
            f"maps, e.g. efficientnet_lite0_early with block and grid); found {sorted(features)}."
        )
    if args["n_components"] is not None:
        raise ConfigError(
            "nsd_like: n_components applies to generative='linear' only (the realistic option uses whole "
            "feature maps); leave it unset."
        )
    return {role: features[role] for role in realistic.ROLES}, {}


def _build(params: dict[str, Any], root: Path) -> DecodingDataset:
    n_train, n_test, seed = params["n_train_stimuli"], params["n_test_stimuli"], params["seed"]
    images = real_images(n_train + n_test, size=params["image_size"], seed=seed)
    stimuli = Stimuli(ids=images.ids, images=images.images, labels=images.labels)
    train_rows = np.arange(n_train)  # real_images shuffles, so the first n_train are as random as any

    region = sim.candidate_region(params["region_per_hemi"])
    smoother = sim.CorticalSmoother(region, params["smoothing_mm"])
    position = sim.posterior_position(region)
    model = _linear_model if params["generative"] == "linear" else _realistic_model
    signal_of, explained = model(params, stimuli, train_rows, region, smoother, root)
    coords = sim.fsaverage5()["pial"]

    train, test, raw_test, ceilings, vertices, noiseless = {}, {}, {}, {}, {}, {}
    for subject in params["subjects"]:
        rng = np.random.default_rng([seed, 1, zlib.crc32(subject.encode())])
        voxels = sim.pick_voxels(region, smoother, params["n_voxels"][subject], rng)
        a = position[voxels]
        signal = signal_of(voxels, a, rng)  # (n_stimuli, n_voxels), unit variance over training stimuli
        log_snr = params["snr_spread"] * smoother(rng.standard_normal(len(region)))[voxels] + 0.3 * (0.5 - a)
        if params["noise_ceiling"] is None:
            snr = params["median_snr"] * np.exp(log_snr)
        else:  # the median SNR whose NSD noise ceiling is the one asked for
            target = realistic.snr_for_noise_ceiling(params["noise_ceiling"], params["n_repeats"])
            snr = target * np.exp(log_snr - np.median(log_snr))

        order, session, run, trial = sim.trial_schedule(np.arange(len(stimuli)), params["n_repeats"], rng)
        phi = params["structured_noise"]
        noise = np.sqrt(1 - phi) * rng.standard_normal((len(order), len(voxels)), dtype=np.float32)
        noise += np.sqrt(phi) * sim.structured_noise(region[voxels], len(order), rng)
        values = sim.zscore_within_sessions((snr * signal[order] + noise).astype(np.float32), session)

        samples = BrainSamples(
            subject=subject,
            values=values,
            stimulus_ids=stimuli.ids[order],
            space="nsdgeneral",
            session=session,
            run=run,
            trial=trial,
            feature_coords=coords[region[voxels]],
        )
        is_train = order < n_train
        train[subject] = samples.select(np.nonzero(is_train)[0])
        raw_test[subject] = samples.select(np.nonzero(~is_train)[0])
        test[subject] = raw_test[subject].average_repeats()
        vertices[subject] = region[voxels]
        noiseless[subject] = (snr * signal).astype(np.float32)
        ceilings[subject] = _ceiling_summary(raw_test[subject], params["n_repeats"])
        logger.info(
            "nsd_like %s: %d voxels, median NC %.1f %%", subject, len(voxels), ceilings[subject]["median"]
        )

    info = _info(params, explained, ceilings, vertices, raw_test, images.sources)
    info["noiseless_responses"] = noiseless
    return DecodingDataset(name="nsd_like", stimuli=stimuli, train=train, test=test, info=info)


def _linear_model(params, stimuli, train_rows, region, smoother, root):
    """The default model: x_v = sum_g gain_g(a_v) f_g . w_gv / sqrt(k_g) over PCA-reduced embeddings."""
    feats, explained = {}, {}
    for role in ROLES:
        name, opts = params["features"][role]
        embedding = embed_stimuli(stimuli, name, cache_dir=root, **opts)
        feats[role], ratio = sim.pca_features(embedding, train_rows, params["n_components"][role])
        explained[role] = float(ratio.sum())
    shared_rng = np.random.default_rng([params["seed"], 0])
    shared = {
        role: smoother(shared_rng.standard_normal((len(region), f.shape[1]))) for role, f in feats.items()
    }
    rho = params["shared_tuning"]

    def signal_of(voxels: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gains = sim.feature_gains(a)
        signal = np.zeros((len(stimuli), len(voxels)))
        for role in ROLES:
            unique = smoother(rng.standard_normal(shared[role].shape))
            weights = (np.sqrt(rho) * shared[role] + np.sqrt(1 - rho) * unique)[voxels]  # (n_voxels, k)
            signal += gains[role] * (feats[role] @ weights.T) / np.sqrt(weights.shape[1])
        signal -= signal[train_rows].mean(axis=0)
        return signal / signal[train_rows].std(axis=0)

    return signal_of, explained


def _realistic_model(params, stimuli, train_rows, region, smoother, root):
    """Non-linear voxels on feature maps (nsd_like_realistic); the target embedding is added to the stimuli."""
    maps = {}
    for role in realistic.ROLES:
        name, opts = params["features"][role]
        maps[role] = embed_stimuli(stimuli, name, cache_dir=root, **opts)
        del stimuli.embeddings[name]  # generating maps only: large, and never a decoding target
    embed_stimuli(stimuli, "efficientnet_lite0", cache_dir=root, image_size=params["image_size"])
    retinotopy = sim.CorticalSmoother(region, realistic.RETINOTOPY_MM)
    shared_rng = np.random.default_rng([params["seed"], 0])
    shared: dict[str, np.ndarray] = {}  # drawn on first use, in the same order for every subject
    rho = params["shared_tuning"]

    def signal_of(voxels: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        def draw_field(what: str, n_columns: int) -> np.ndarray:
            smooth = retinotopy if what == "centre" else smoother
            if what not in shared:
                shared[what] = smooth(shared_rng.standard_normal((len(region), n_columns)))
            unique = smooth(rng.standard_normal((len(region), n_columns)))
            return (np.sqrt(rho) * shared[what] + np.sqrt(1 - rho) * unique)[voxels]

        return realistic.voxel_signals(maps, train_rows, a, draw_field)

    return signal_of, {}


def _ceiling_summary(raw: BrainSamples, n_repeats: int) -> dict[str, float]:
    nc = noise_ceiling(trials_by_stimulus(raw, n_repeats), n_average=n_repeats)
    single = noise_ceiling(trials_by_stimulus(raw, n_repeats), n_average=1)
    return {
        "median": float(np.median(nc)),
        "q10": float(np.percentile(nc, 10)),
        "q90": float(np.percentile(nc, 90)),
        "median_single_trial": float(np.median(single)),
    }


def _info(
    params: dict[str, Any],
    explained: dict[str, float],
    ceilings: dict[str, dict[str, float]],
    vertices: dict[str, np.ndarray],
    raw_test: dict[str, BrainSamples],
    sources: list[str],
) -> dict[str, Any]:
    model = {
        "voxels": f"posterior fsaverage5 vertices ({params['region_per_hemi']} per hemisphere, medial wall "
        "excluded); a subject keeps the most posterior ones after a smooth random jitter, half per hemisphere",
        "features": "PCA (fitted on training stimuli) of each embedding, component j scaled by var_j**-0.25",
        "pca_explained_variance": explained,
        "tuning": "w = sqrt(shared_tuning) * shared + sqrt(1 - shared_tuning) * subject-specific; both white "
        "noise smoothed by a Gaussian (sigma smoothing_mm) over distance on the fsaverage sphere",
        "gains": sim.GAINS,
        "snr": "log snr = log(median_snr) + snr_spread * smooth field + 0.3 (0.5 - a)",
        "noise": "sqrt(1 - structured_noise) * white + sqrt(structured_noise) * (random mix of two frames of "
        "the real resting-state run sub-010188 (brainspace 0.3.0), z-scored per vertex)",
        "trials": f"every image shown n_repeats times in random order; {sim.TRIALS_PER_SESSION} trials per "
        f"session, {sim.RUNS_PER_SESSION} runs per session (session, run, trial numbered from 1); each "
        "voxel z-scored within each session",
        "test": "test rows average the n_repeats trials of each test image (raw trials in raw_test_trials)",
    }
    if params["generative"] == "realistic":
        del model["pca_explained_variance"]
        model |= realistic.describe(params["features"])
    if params["noise_ceiling"] is not None:
        model["snr"] = (
            "log snr = log(snr_for_noise_ceiling(noise_ceiling, n_repeats)) + snr_spread * smooth field "
            "+ 0.3 (0.5 - a), centred so its median is the first term"
        )
    return {
        "description": "Simulated NSD-like data: real images, real embeddings, real cortical geometry and real "
        "resting-state noise; simulated voxel tuning. See docs/datasets.md.",
        "parameters": params,
        "target_embedding": "efficientnet_lite0"
        if params["generative"] == "realistic"
        else params["features"]["high"][0],
        "generative_model": model,
        "noise_ceiling": ceilings,
        "noise_ceiling_formula": "NSD (Allen et al. 2022): ncsnr on z-scored raw test trials, NC for n_repeats avg",
        "voxel_vertices": vertices,
        "raw_test_trials": raw_test,
        "stimulus_sources": sources,
    }


def raw_test_trials(dataset: DecodingDataset, subject: str) -> BrainSamples:
    """The single test trials of ``subject`` before averaging (for noise ceilings)."""
    dataset.check_subject(subject)
    return dataset.info["raw_test_trials"][subject]
