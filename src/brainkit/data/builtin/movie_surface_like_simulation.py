"""The generative model of ``movie_surface_like``: surface responses to real video/audio features.

Per subject s, vertex v of the icosphere (left hemisphere, fsaverage numbering), second t of a run::

    f_v(t), f_a(t)  = PCA of the real per-second video / audio embeddings (0 during rest: the stimulus is off)
    W_sg            = sqrt(rho) Z_g + sqrt(1 - rho) U_sg     Z_g, U_sg: spatially smooth Gaussian fields (k_g, V)
    x_s(t, v)       = HRF * [ gain_video(v) f_v(t) . W_sv[:, v] / sqrt(k_v) + gain_audio(v) f_a(t) . W_sa[:, v] / sqrt(k_a) ]
    y_s(t, v)       = snr_s x_s(t, v) / sd(x_s) + noise_s(t, v)

``gain_video`` peaks at the posterior pole of the sphere (where the occipital cortex lies), ``gain_audio`` on
the lateral-inferior side (superior temporal cortex), each a Gaussian bump over a floor, so some cortex prefers
video and some audio. ``noise_s`` is the REAL resting-state run (brainspace, fsaverage5): per run two random
windows, randomly time-reversed and sign-flipped, mixed. Then SIM's preprocessing: per-vertex demeaning and
per-frame z-scoring over the cortex, the real run's medial wall set to 0.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import sparse
from scipy.signal import lfilter

from brainkit.surface import icosphere, n_vertices
from brainkit.surface.readers import normalise_frames

VIDEO_CENTRE = (0.0, -1.0, 0.0)  # posterior pole of the left sphere (occipital)
AUDIO_CENTRE = (-0.8, -0.1, -0.45)  # lateral-inferior (superior temporal)
REGION_WIDTH_DEGREES = 35.0
REGION_FLOOR = 0.1


@functools.cache
def smoothing_operator(order: int) -> sparse.csr_matrix:
    """Row-normalised adjacency (with self-loops) of the order-``order`` icosphere: one step of diffusion."""
    faces = icosphere(order).faces
    rows = np.concatenate([faces[:, [0, 1, 2, 1, 2, 0]].ravel(), np.arange(n_vertices(order))])
    cols = np.concatenate([faces[:, [1, 2, 0, 0, 1, 2]].ravel(), np.arange(n_vertices(order))])
    adjacency = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices(order),) * 2)
    adjacency.data[:] = 1.0  # duplicates summed: back to 0/1
    return sparse.diags(1.0 / np.asarray(adjacency.sum(axis=1)).ravel()) @ adjacency


def smooth_fields(
    rng: np.random.Generator, n_fields: int, order: int, degrees: float, cortex: np.ndarray
) -> np.ndarray:
    """(n_fields, n_vertices) white noise diffused over the mesh to ~``degrees`` of arc, unit variance over
    the cortex, 0 on the medial wall."""
    edge = 63.43 / 2**order  # mean edge of the order-k icosphere, in degrees of arc
    steps = max(1, int(round((degrees / edge) ** 2)))
    operator = smoothing_operator(order)
    x = rng.standard_normal((n_vertices(order), n_fields))
    for _ in range(steps):
        x = operator @ x
    x = x.T
    x -= x[:, cortex].mean(axis=1, keepdims=True)
    x /= x[:, cortex].std(axis=1, keepdims=True)
    x[:, ~cortex] = 0.0
    return x


def region_gains(order: int, cortex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(video gain, audio gain), each (n_vertices,) in [floor, 1]: Gaussian bumps in angle on the sphere."""
    points = icosphere(order).unit_vertices()
    out = []
    for centre in (VIDEO_CENTRE, AUDIO_CENTRE):
        c = np.asarray(centre) / np.linalg.norm(centre)
        angle = np.degrees(np.arccos(np.clip(points @ c, -1.0, 1.0)))
        gain = REGION_FLOOR + (1 - REGION_FLOOR) * np.exp(-0.5 * (angle / REGION_WIDTH_DEGREES) ** 2)
        out.append(np.where(cortex, gain, 0.0))
    return out[0], out[1]


def rest_noise(rest: np.ndarray, n_frames: int, rng: np.random.Generator, n_mixed: int = 2) -> np.ndarray:
    """(n_frames, n_vertices) structured noise from the real run ``rest`` (n_rest, n_vertices): ``n_mixed``
    random windows (the run is extended by its time-reverse when it is too short), each reversed in time and
    sign-flipped at random, mixed with random weights and scaled to unit variance."""
    series = rest
    while len(series) < n_frames:
        series = np.concatenate([series, series[::-1]])
    mix = np.zeros((n_frames, rest.shape[1]), dtype=np.float64)
    for weight in rng.uniform(0.5, 1.0, n_mixed):
        start = int(rng.integers(len(series) - n_frames + 1))
        window = series[start : start + n_frames]
        if rng.random() < 0.5:
            window = window[::-1]
        mix += weight * (1.0 if rng.random() < 0.5 else -1.0) * window
    return mix / mix.std()


def hrf_convolve(x: np.ndarray, hrf: np.ndarray) -> np.ndarray:
    """Causal convolution of (n_frames, ...) with a kernel along time (same length)."""
    return lfilter(hrf, [1.0], x, axis=0)


def subject_maps(
    rng: np.random.Generator,
    shared: dict[str, np.ndarray],
    rho: float,
    order: int,
    degrees: float,
    cortex: np.ndarray,
) -> dict[str, np.ndarray]:
    """The subject's encoding maps: shared field times sqrt(rho) plus its own field times sqrt(1 - rho)."""
    return {
        g: np.sqrt(rho) * z + np.sqrt(1 - rho) * smooth_fields(rng, len(z), order, degrees, cortex)
        for g, z in shared.items()
    }


def simulate_subject(
    features: dict[str, list[np.ndarray]],
    maps: dict[str, np.ndarray],
    gains: dict[str, np.ndarray],
    hrf: np.ndarray,
    snr: float,
    rest: np.ndarray,
    cortex: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One subject's runs, preprocessed: float32 (n_runs, n_frames, n_vertices), and the per-vertex norm of its
    effective encoding weights (n_vertices,) (snr-scaled; the truth map).

    ``features[g][r]`` is (n_frames, k_g) for run r (0 in rest); ``maps[g]`` (k_g, n_vertices).
    """
    n_runs = len(features["video"])
    signals = []
    for r in range(n_runs):
        drive = sum(
            gains[g] * (features[g][r] @ maps[g]) / np.sqrt(maps[g].shape[0]) for g in ("video", "audio")
        )
        signals.append(hrf_convolve(drive, hrf))
    scale = np.sqrt(np.mean([s[:, cortex].var(axis=0).mean() for s in signals]))
    weights = np.sqrt(sum(((gains[g] * maps[g]) ** 2).mean(axis=0) for g in ("video", "audio")))
    runs = []
    for signal in signals:
        noisy = snr * signal / scale + rest_noise(rest, len(signal), rng)
        runs.append(normalise_frames(noisy, cortex))
    return np.stack(runs).astype(np.float32), (snr * weights / scale).astype(np.float32)


def retest_pairs(
    runs: np.ndarray, retest_frames: list[np.ndarray], cortex: np.ndarray, signal: np.ndarray
) -> list[tuple[float, float, float]]:
    """One subject's runs (n_runs, n_frames, n_vertices): per pair of runs, (r over the cortex, r over
    ``signal``, noise ceiling over ``signal``) of :func:`retest_reliability`."""
    pairs = []
    for a in range(len(runs)):
        for b in range(a + 1, len(runs)):
            x, y = runs[a, retest_frames[a]], runs[b, retest_frames[b]]
            x, y = x - x.mean(axis=0), y - y.mean(axis=0)
            denominator = np.sqrt((x**2).sum(axis=0) * (y**2).sum(axis=0))
            r = np.where(denominator > 0, (x * y).sum(axis=0) / np.maximum(denominator, 1e-12), 0.0)
            pairs.append((r[cortex].mean(), r[signal].mean(), np.sqrt(np.maximum(r[signal], 0.0)).mean()))
    return pairs


def reliability_summary(pairs: list[tuple[float, float, float]]) -> dict[str, float]:
    """The means of :func:`retest_pairs` rows (over subjects and pairs); {} without any."""
    if not pairs:
        return {}
    per_cortex, per_signal, ceiling = zip(*pairs)
    return {
        "r_cortex": float(np.mean(per_cortex)),
        "r_signal": float(np.mean(per_signal)),
        "noise_ceiling_signal": float(np.mean(ceiling)),
    }


def retest_reliability(
    fmri: np.ndarray, retest_frames: list[np.ndarray], cortex: np.ndarray, signal: np.ndarray
) -> dict[str, float]:
    """Test-retest reliability over the repeated segment: per subject and pair of runs, the per-vertex
    correlation between the runs' responses (frames ``retest_frames[r]`` of run r, same length), averaged over
    the cortex (``r_cortex``) and over the vertices where ``signal`` is True (``r_signal``); the noise ceiling
    sqrt(max(r, 0)) (the correlation a perfect model of the signal could reach in one run) over ``signal``.
    ``fmri`` (n_subjects, n_runs, n_frames, n_vertices); one subject at a time: :func:`retest_pairs`."""
    pairs = []
    for s in range(fmri.shape[0]):
        pairs.extend(retest_pairs(fmri[s], retest_frames, cortex, signal))
    return reliability_summary(pairs)
