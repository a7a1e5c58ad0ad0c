"""``movie_surface_like``: a simulated HCP-7T-like movie-watching dataset on the cortical surface (SIM's data).

Every subject watches the same runs; each run is rest, movie segments separated by rest, then the test-retest
segment shown at the end of EVERY run (as in HCP 7T), then rest. TR 1 s. What is real: the movies' images
(photos and faces from scikit-image / scikit-learn, :mod:`brainkit.stimuli.movies`), their speech (real
recordings, :mod:`brainkit.stimuli.speech`), the video/audio features (pretrained EfficientNet-Lite0 and
torchcrepe by default), the icosphere / fsaverage5 mesh, the medial wall and the structured noise (the real
resting-state run that installs with brainspace). What is simulated: the subjects' encoding maps, their SNR and
the haemodynamics (see ``movie_surface_like_simulation``). docs/datasets.md describes it; ``info`` records it.

Shapes (contract with the ``sim`` recipe, /work/notes/sim_contract.md): ``fmri`` (n_subjects, n_runs, n_frames,
n_vertices) float32; clip c = seconds [c, c + 3), n_clips = n_frames - 2; ``segment_of`` / ``retest`` /
``video`` / ``audio`` / ``thumbnails`` per (run, clip). Movie segments have ids unique across runs
(run r, segment j -> r * n_segments + j); the test-retest segment has the id n_runs * n_segments in every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from brainkit.checkpoint import FILE_MODE, atomic_folder
from brainkit.data.builtin import movie_surface_like_simulation as simulation
from brainkit.data.builtin.build_cache import UNREADABLE
from brainkit.data.builtin.movie_surface_like_config import CLIP_SECONDS, LAG, PRESETS, MovieSurfaceConfig
from brainkit.data.builtin.movie_surface_like_stimuli import (
    Design,
    clip_segments,
    pca_series,
    per_second_embeddings,
    render_segments,
    run_design,
    run_series,
    stimulus_key,
    thumbnails,
)
from brainkit.data.contract import Dataset
from brainkit.data.frame_file import FrameFile, FrameWriter
from brainkit.errors import ConfigError
from brainkit.registry import DATASETS
from brainkit.stimuli.av_encoders import clip_features
from brainkit.stimuli.cache import default_cache_dir

logger = logging.getLogger(__name__)

BUILD_VERSION = 1


@dataclass
class MovieSurfaceData(Dataset):
    """The built dataset (design ``"continuous"`` of :mod:`brainkit.data.contract`; shapes in the module
    docstring and /work/notes/sim_contract.md). Also what ``hcp_movie_surface`` returns (real runs: no
    ``truth_map``; ``info["run_frames"]`` the frame count of each run, shorter runs padded with 0)."""

    design: ClassVar[str] = "continuous"
    subjects: list[str]
    runs: list[str]
    order: int
    fmri: np.ndarray  # float32 (n_subjects, n_runs, n_frames, n_vertices)
    cortex: np.ndarray  # bool (n_vertices,)
    segment_of: np.ndarray  # int (n_runs, n_clips); -1 = rest
    retest: np.ndarray  # bool (n_runs, n_clips)
    video: np.ndarray  # float32 (n_runs, n_clips, d_video)
    audio: np.ndarray  # float32 (n_runs, n_clips, d_audio)
    thumbnails: np.ndarray  # uint8 (n_runs, n_clips, h, w, 3)
    truth_map: np.ndarray | None  # float32 (n_vertices,): the simulated encoding strength; None for real data
    info: dict
    tr: float = 1.0
    lag: int = LAG


# ---------------------------------------------------------------------------------------------------------------
# The build


def _build(config: MovieSurfaceConfig, design: Design, root: Path, frames_path: Path) -> MovieSurfaceData:
    """The dataset, its frames written to ``frames_path`` one subject at a time (``fmri`` a memory map of it)."""
    from brainkit.data.builtin.hcp_cohort import glover_hrf
    from brainkit.data.builtin.rest_surface import rest_on_icosphere
    from brainkit.surface import n_vertices

    start = time.perf_counter()
    segments = render_segments(config, design)
    embedded, fingerprints = {}, {}
    for role in ("video", "audio"):
        embedded[role] = per_second_embeddings(role, config, design, segments, root)
        fingerprints[role] = embedded[role][2]
    clips = {
        role: np.stack([clip_features(run, CLIP_SECONDS) for run in run_series(design, per, rest)])
        for role, (per, rest, _) in embedded.items()
    }
    components = {"video": config.n_video_components, "audio": config.n_audio_components}
    features, explained = {}, {}
    for role in ("video", "audio"):
        series, explained[role] = pca_series(embedded[role][0], design, components[role])
        features[role] = list(series)
    n_v = n_vertices(config.order)
    real = rest_on_icosphere()
    cortex = real["left"].mask[:n_v].copy()
    rests = [real[h].frames[:, :n_v].astype(np.float64) for h in ("left", "right")]
    hrf = glover_hrf(1.0)
    rng = np.random.default_rng([config.seed, 2])
    degrees = config.map_smoothing_degrees
    shared = {
        g: simulation.smooth_fields(rng, features[g][0].shape[1], config.order, degrees, cortex)
        for g in features
    }
    gain_video, gain_audio = simulation.region_gains(config.order, cortex)
    gains = {"video": gain_video, "audio": gain_audio}
    n_frames = design.second_segment.shape[1]
    shape = (config.n_subjects, config.n_runs, n_frames, n_v)
    writer = FrameWriter(frames_path, shape, np.float32)  # one subject in memory at a time
    weights, snrs, hemispheres = [], [], []
    for s in range(config.n_subjects):
        rng_s = np.random.default_rng([config.seed, 3, s])
        snr = float(rng_s.uniform(*config.snr))
        hemisphere = int(rng_s.integers(2))  # whose real noise: the left run or the mirrored right one
        maps = simulation.subject_maps(rng_s, shared, config.shared_tuning, config.order, degrees, cortex)
        runs, w = simulation.simulate_subject(
            features, maps, gains, hrf, snr, rests[hemisphere], cortex, rng_s
        )
        for r, frames in enumerate(runs):
            writer.write(s, r, frames)
        del runs
        weights.append(w)
        snrs.append(snr)
        hemispheres.append(("left", "right")[hemisphere])
    truth_map = np.mean(weights, axis=0).astype(np.float32)
    signal = cortex & (truth_map >= np.quantile(truth_map[cortex], 0.9))
    retest_frames = [np.flatnonzero(row == design.retest_id) + LAG for row in design.second_segment]
    frames_file, pairs, per_subject = FrameFile(frames_path), [], []
    for s in range(config.n_subjects):  # read back one subject at a time
        runs = frames_file.windows([s] * config.n_runs, range(config.n_runs), [0] * config.n_runs, n_frames)
        subject_pairs = simulation.retest_pairs(runs, retest_frames, cortex, signal)
        pairs.extend(subject_pairs)
        per_subject.append(simulation.reliability_summary(subject_pairs).get("r_signal"))
    reliability = simulation.reliability_summary(pairs)
    segment_of = clip_segments(design)
    info = {
        "name": "movie_surface_like",
        "config": dataclasses.asdict(config),
        "encoders": {
            role: {
                "name": name,
                "options": opts,
                "fingerprint": fingerprints[role],
                "dim": int(clips[role].shape[-1]),
            }
            for role, name, opts in (
                ("video", config.video_encoder, config.video_options),
                ("audio", config.audio_encoder, config.audio_options),
            )
        },
        "pca_explained_variance": {role: float(np.sum(v)) for role, v in explained.items()},
        "snr": dict(zip([f"sub-{s + 1:02d}" for s in range(config.n_subjects)], snrs)),
        "noise_hemisphere": hemispheres,
        "test_retest": reliability,  # r over the cortex / the top-10 % truth-map vertices; noise ceiling
        "test_retest_r_signal_per_subject": per_subject,
        "segments": {str(seg): n for seg, n in sorted(design.lengths.items())},
        "retest_segment": design.retest_id,
        "n_frames": n_frames,
        "n_vertices": n_v,
        "n_cortex_vertices": int(cortex.sum()),
        "noise": "real resting-state run (brainspace sub-010188 fsaverage5), random windows per subject and run",
        "hrf": "Glover (nilearn), TR 1 s",
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    return MovieSurfaceData(
        subjects=[f"sub-{s + 1:02d}" for s in range(config.n_subjects)],
        runs=[f"MOVIE{r + 1}" for r in range(config.n_runs)],
        order=config.order,
        fmri=np.load(frames_path, mmap_mode="r"),
        cortex=cortex,
        segment_of=segment_of,
        retest=segment_of == design.retest_id,
        video=clips["video"],
        audio=clips["audio"],
        thumbnails=thumbnails(config, design, segments),
        truth_map=truth_map,
        info=json.loads(json.dumps(info)),  # as a cached build reads it back (tuples -> lists)
    )


_ARRAYS = ("cortex", "segment_of", "retest", "video", "audio", "thumbnails", "truth_map")


def _save(tmp: Path, data: MovieSurfaceData) -> None:
    """Everything but ``fmri.npy`` (already written by :func:`_build`) into the build's temporary folder."""
    np.savez(tmp / "arrays.npz", **{name: getattr(data, name) for name in _ARRAYS})
    meta = {"subjects": data.subjects, "runs": data.runs, "order": data.order, "info": data.info}
    (tmp / "info.json").write_text(json.dumps(meta, indent=1))
    for path in tmp.iterdir():
        path.chmod(FILE_MODE)
    tmp.chmod(FILE_MODE | 0o111)


def _load(folder: Path) -> MovieSurfaceData:
    meta = json.loads((folder / "info.json").read_text())
    with np.load(folder / "arrays.npz") as arrays:
        parts = {name: arrays[name] for name in _ARRAYS}
    fmri = np.load(folder / "fmri.npy", mmap_mode="r")  # read window by window by SIM (data/frame_file.py)
    return MovieSurfaceData(meta["subjects"], meta["runs"], meta["order"], fmri, info=meta["info"], **parts)


def resolve_config(config: MovieSurfaceConfig | str) -> MovieSurfaceConfig:
    if isinstance(config, MovieSurfaceConfig):
        return config
    if config not in PRESETS:
        raise ConfigError(f"Unknown movie_surface_like preset {config!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[config]


@DATASETS.register(
    "movie_surface_like",
    space="order-5 icosphere (fsaverage5 mesh), both hemispheres",
    needs="nothing: built from packaged real images, sounds and a real rest run, cached",
    help="Simulated surface movie runs (ico5, SIM's design) with video and audio features.",
)
def load_movie_surface_like(
    config: MovieSurfaceConfig | str = "cpu_small", cache_dir: str | Path | None = None, rebuild: bool = False
) -> MovieSurfaceData:
    """Build (or read back from ``cache_dir``, default ``$BRAINKIT_CACHE`` or ~/.cache/brainkit) the dataset.

    The build is keyed by every config field, the encoders' fingerprints and the speech recordings; the
    per-second embeddings are cached apart, so changing only the simulation does not re-run the encoders.
    """
    from brainkit.stimuli.encoders import get_encoder

    config = resolve_config(config)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    design = run_design(config)
    key_parts = {
        "version": BUILD_VERSION,
        "stimuli": stimulus_key(config, design),
        "config": dataclasses.asdict(config),
        "video": get_encoder(config.video_encoder, **config.video_options).fingerprint,
        "audio": get_encoder(config.audio_encoder, **config.audio_options).fingerprint,
    }
    key = hashlib.sha1(json.dumps(key_parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = root / "movie_surface_like" / "builds" / key
    if folder.is_dir() and not rebuild:
        try:
            return _load(folder)
        except UNREADABLE as err:
            logger.warning(
                "Cached movie_surface_like build %s is unreadable (%s); rebuilding it.", folder, err
            )
    with atomic_folder(folder) as tmp:
        data = _build(config, design, root, tmp / "fmri.npy")
        _save(tmp, data)
    logger.info("Built movie_surface_like in %.1f s (cached in %s).", data.info["build_seconds"], folder)
    del data  # its map of the temporary path: the cached folder is what is returned
    return _load(folder)


__all__ = [
    "MovieSurfaceConfig",
    "MovieSurfaceData",
    "PRESETS",
    "load_movie_surface_like",
    "run_design",
    "LAG",
]
