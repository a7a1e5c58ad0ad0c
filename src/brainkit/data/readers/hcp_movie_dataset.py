"""``hcp_movie``: the real HCP 7T movie volumes (MNI, 1.6 mm) as CLIP-MUSED's data, from the folder HCP gives.

Layout under ``root`` (HCP's own names; docs/datasets.md, "HCP 7T movie (MNI volumes)")::

    <subject>/MNINonLinear/Results/tfMRI_MOVIE1_7T_AP/tfMRI_MOVIE1_7T_AP.nii.gz     (113, 136, 113, ~921), TR 1 s
    <subject>/MNINonLinear/Results/tfMRI_MOVIE{2,3}_7T_PA/..., tfMRI_MOVIE4_7T_AP/...  (variant: _hp2000_clean)
    7T_movie_resources/WordNetFeatures.hdf5      per-second WordNet labels (labels_file: another place)
    Post_20140821_version/7T_MOVIE{1..4}_*_v2.mp4   the movies (stimulus_dir: another place)

What it computes, as CLIP-MUSED's released HCP pipeline (METHODS.md 2.1): one sample per stimulus second ``t``
of the movie clips, the volume ``delay`` TRs later (4), each run min-max normalised per voxel; the labels of
second ``t``; train on movies 1-3, test on movie 4 without its last clip (the test-retest clip shown at the end
of every run). The clips are SIM's segment table (:data:`~brainkit.data.readers.hcp_movie_surface.SEGMENTS`,
metrics-lab/sim), or every labelled second (``clips="all"``). The stimulus image of second ``t`` is the movie's
frame at ``t`` (``frame_offset`` later), read with PyAV; its text is the names of the categories labelled at
``t``. The recipe's encoders embed both, as for ``hcp_movie_like``: the returned container is the same, so the
clip_mused recipe and its report run unchanged.

Mask: nilearn's MNI152 brain mask resampled onto the runs' grid (``mask="template"``, default), or a NIfTI mask
on that grid (``mask=PATH``). One mask for every subject and run (the network reads one grid, and its subject
tokens assume voxel correspondence, which HCP's MNINonLinear registration gives), known before any run is read:
so the memory is known in advance (``max_gb``) and each run is masked as it is read, block by block.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.config import Checked, bounded, choice, from_dict
from brainkit.data.builtin.hcp_movie_like import default_features
from brainkit.data.readers.hcp_movie import (
    MOVIE_RUNS,
    RUN_VARIANTS,
    frequent_classes,
    read_wordnet_labels,
    run_path,
)
from brainkit.data.readers.hcp_movie_frames import movie_file, second_frames
from brainkit.data.readers.hcp_movie_surface import SEGMENTS
from brainkit.data.readers.movie_volumes import GridWindow, masked_run, template_mask
from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli
from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.registry import DATASETS
from brainkit.stimuli.cache import embed_stimuli

logger = logging.getLogger(__name__)
LABELS_FILE = "7T_movie_resources/WordNetFeatures.hdf5"
STIMULUS_DIR = "Post_20140821_version"
SPACE = "MNI152NLin6Asym"  # HCP's MNINonLinear template (FSL's MNI152)
ROLES = ("low", "image", "text")


@dataclass(frozen=True)
class HCPMovieOptions(Checked):
    """The options of :func:`load_hcp_movie` but ``root`` and ``cache_dir``, with their bounds."""

    subjects: tuple[str, ...] | None = None
    train_movies: tuple[int, ...] = bounded((1, 2, 3), ge=1, le=4)
    test_movies: tuple[int, ...] = bounded((4,), ge=1, le=4)
    labels_file: str = LABELS_FILE
    stimulus_dir: str = STIMULUS_DIR
    variant: str = choice("", RUN_VARIANTS, fix="'' minimally preprocessed, '_hp2000_clean' ICA-FIX cleaned")
    clips: str = choice("segments", ("segments", "all"))
    delay: int = bounded(4, ge=0, le=30, fix="haemodynamic delay in TRs")
    normalisation: str = choice("minmax", ("minmax", "zscore", "none"))
    mask: str = "template"
    grid: str | tuple[int, int, int] = "hcp"
    min_label_fraction: float = bounded(
        0.1, ge=0, le=1, fix="keep categories on >= this share of training seconds"
    )
    label_indices: str | None = None
    image_size: int = bounded(160, ge=16, le=1024)
    frame_offset: float = bounded(0.0, ge=0, lt=1, fix="seconds into each second: the frame taken")
    features: dict[str, Any] | None = None
    max_gb: float = bounded(64.0, gt=0, fix="the most memory the samples may take (float32)")


@DATASETS.register(
    "hcp_movie",
    space="MNI152 1.6 mm volumes of HCP's MNINonLinear runs (cut to 112 x 128 x 112), one brain mask",
    needs="root=: HCP 7T movie MNI runs (<subject>/MNINonLinear/Results/tfMRI_MOVIE*_7T_*), "
    "7T_movie_resources/WordNetFeatures.hdf5 and the movies Post_20140821_version/7T_MOVIE*_v2.mp4",
    help="Real HCP 7T movie volumes (MNI): per-second samples 4 TRs later, WordNet labels, movie frames.",
)
def load_hcp_movie(
    root: str,
    subjects: list[str] | None = None,
    train_movies: list[int] = (1, 2, 3),
    test_movies: list[int] = (4,),
    labels_file: str = LABELS_FILE,
    stimulus_dir: str = STIMULUS_DIR,
    variant: str = "",
    clips: str = "segments",
    delay: int = 4,
    normalisation: str = "minmax",
    mask: str = "template",
    grid: str | list[int] = "hcp",
    min_label_fraction: float = 0.1,
    label_indices: str | None = None,
    image_size: int = 160,
    frame_offset: float = 0.0,
    features: dict[str, Any] | None = None,
    max_gb: float = 64.0,
    cache_dir: str | None = None,
) -> DecodingDataset:
    """CLIP-MUSED's samples of the HCP 7T movie runs under ``root`` (layout: module docstring).

    Parameters
    ----------
    subjects : the subject folders to read (default: every folder with ``MNINonLinear/Results``); their order is
        the order of the model's subject tokens.
    train_movies, test_movies : movies 1-4 (the paper: 1-3 and 4).
    labels_file, stimulus_dir : the WordNet file and the movies' folder, relative to ``root`` (or absolute).
    variant : ``""`` (HCP's minimally preprocessed MNI runs) or ``"_hp2000_clean"`` (ICA-FIX cleaned).
    clips : ``"segments"`` (HCP's clip seconds, SIM's table; test movies without the test-retest clip) or
        ``"all"`` (every second with a label row and a delayed volume).
    delay : TRs between a stimulus second and its volume (the paper: 4). normalisation : per voxel over each run.
    mask : ``"template"`` or a NIfTI brain mask on the runs' grid. grid : ``"hcp"``, ``"run"`` or 3 sizes.
    min_label_fraction, label_indices : which categories are kept (share of training seconds, or a .npy of indices).
    image_size, frame_offset : the frames' size and where in each second they are taken.
    features : role (low / image / text) -> [encoder, options]; default EfficientNet-Lite0 early / pooled, MiniLM.
    max_gb : the most memory the samples may take; checked before any run is read.

    Returns
    -------
    DecodingDataset
        ``train[s]`` / ``test[s]``: (n_seconds, n_voxels) float32, one row per stimulus second; ``stimuli``: ids
        ``movie<m>_s<tttt>``, ``images`` (n, image_size, image_size, 3) uint8, ``labels`` (text), the three
        embeddings; ``info``: ``mask`` (grid bool), ``run_mask`` (the same voxels on the runs' grid), ``affine``,
        ``labels`` (n_stimuli, n_categories) uint8,
        ``categories``, ``parameters`` (with ``features``), ``counts``.
    """
    options = {k: v for k, v in locals().items() if k not in ("root", "cache_dir")}
    opts = from_dict(HCPMovieOptions, options, where="hcp_movie options")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileFormatError(f"hcp_movie: root {root} is not a folder (data.root: the HCP download).")
    if set(opts.train_movies) & set(opts.test_movies) or not opts.train_movies or not opts.test_movies:
        raise ConfigError(
            f"hcp_movie: train_movies {list(opts.train_movies)} and test_movies {list(opts.test_movies)} must be "
            "non-empty and disjoint (the paper: 1-3 and 4)."
        )
    movies = sorted(opts.train_movies + opts.test_movies)
    subjects = list(opts.subjects) if opts.subjects else _subjects(root)
    runs = {(s, m): run_path(root, s, m, opts.variant) for s in subjects for m in movies}
    images = {key: _open(path) for key, path in runs.items()}
    first = images[(subjects[0], movies[0])]
    for key, image in images.items():
        if (
            len(image.shape) != 4
            or image.shape[:3] != first.shape[:3]
            or not np.allclose(image.affine, first.affine, atol=1e-3)
        ):
            raise DataError(
                f"hcp_movie: {runs[key]} has shape {image.shape} and affine {np.round(image.affine, 3).tolist()}; "
                f"every run must be a 4-D run on one grid, as {runs[(subjects[0], movies[0])]} "
                f"{first.shape[:3]} (HCP's MNINonLinear runs are)."
            )
    window = GridWindow(first.shape[:3], opts.grid if isinstance(opts.grid, str) else tuple(opts.grid))
    brain = _mask(opts.mask, first, root)
    run_mask = window.run_mask(brain)
    labels_path = root / opts.labels_file
    tables = {m: read_wordnet_labels(labels_path, m) for m in movies}
    names = tables[movies[0]][1]
    seconds = {m: _seconds(m, opts, images, subjects, tables[m][0], labels_path) for m in movies}
    n_rows = len(subjects) * sum(len(s) for s in seconds.values())
    gigabytes = n_rows * int(run_mask.sum()) * 4 / 1e9
    if gigabytes > opts.max_gb:
        raise ConfigError(
            f"hcp_movie: {len(subjects)} subjects x {n_rows // len(subjects)} seconds x {int(run_mask.sum())} "
            f"voxels take {gigabytes:.1f} GB as float32, over max_gb={opts.max_gb}. Use fewer subjects "
            "(data.subjects), a smaller mask (data.mask=PATH) or raise data.max_gb."
        )

    ids = [f"movie{m}_s{t:04d}" for m in movies for t in seconds[m]]
    table = np.concatenate([tables[m][0][seconds[m]] for m in movies])
    frames = np.concatenate(
        [second_frames(movie_file(root / opts.stimulus_dir, m), seconds[m], opts.image_size, opts.frame_offset)
         for m in movies]
    )  # fmt: skip
    texts = [", ".join(_word(names[c]) for c in np.flatnonzero(row)) for row in table]
    stimuli = Stimuli(ids=np.array(ids), images=frames, labels=np.array(texts))
    is_train = np.concatenate([np.full(len(seconds[m]), m in opts.train_movies) for m in movies])
    keep = _classes(table[is_train], opts, len(names))
    features = {
        role: list(spec) for role, spec in (opts.features or default_features(opts.image_size)).items()
    }
    bad = [
        r
        for r, spec in features.items()
        if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], dict)
    ]
    if set(features) != set(ROLES) or bad:
        raise ConfigError(
            f"hcp_movie: features maps the roles {list(ROLES)} to [encoder, options], e.g. low: "
            f"[efficientnet_lite0_early, {{}}]; found {opts.features!r}."
        )
    for name, encoder_options in features.values():
        embed_stimuli(stimuli, name, cache_dir=cache_dir, **encoder_options)

    train, test = {}, {}
    for subject in subjects:
        parts: dict[str, list] = {"train": [], "test": []}
        for m in movies:
            values = masked_run(images[(subject, m)], run_mask, opts.normalisation)[seconds[m] + opts.delay]
            part = "train" if m in opts.train_movies else "test"
            parts[part].append((values, [f"movie{m}_s{t:04d}" for t in seconds[m]]))
        for part, out in (("train", train), ("test", test)):
            out[subject] = BrainSamples(
                subject,
                np.concatenate([v for v, _ in parts[part]]),
                np.concatenate([i for _, i in parts[part]]),
                SPACE,
            )
        logger.info(
            "hcp_movie %s: %d train, %d test seconds", subject, len(train[subject]), len(test[subject])
        )
    info = {
        "description": "HCP 7T movie runs in MNI space (real), per-second WordNet labels, movie frames.",
        "parameters": {"root": str(root), "subjects": subjects, "features": features}
        | {k: getattr(opts, k) for k in ("train_movies", "test_movies", "clips", "delay", "normalisation", "mask", "variant")},
        "mask": window.grid_mask(brain),
        "run_mask": run_mask,  # the same voxels on the runs' own grid: what a new run file is masked with
        "affine": window.affine(first.affine),
        "labels": table[:, keep].astype(np.uint8),
        "categories": [names[c] for c in keep],
        "counts": {"voxels": int(run_mask.sum()), "categories_in_file": len(names), "categories_kept": len(keep),
                   "seconds": {str(m): len(seconds[m]) for m in movies}},
    }  # fmt: skip
    return DecodingDataset(name="hcp_movie", stimuli=stimuli, train=train, test=test, info=info)


def _subjects(root: Path) -> list[str]:
    """Every folder under ``root`` with ``MNINonLinear/Results`` (HCP's subject folders), sorted."""
    found = sorted(p.name for p in root.iterdir() if (p / "MNINonLinear" / "Results").is_dir())
    if not found:
        raise FileFormatError(
            f"hcp_movie: no subject folders under {root} (expected <subject>/MNINonLinear/Results/...; "
            "docs/datasets.md)."
        )
    return found


def _open(path: Path):
    from nibabel.filebasedimages import ImageFileError

    from brainkit.nifti import load_nifti

    try:
        return load_nifti(path, mmap=True, keep_file_open=True)
    except (OSError, EOFError, ValueError, ImageFileError) as err:
        raise FileFormatError(f"Cannot open HCP run {path}: {err}. Download it again.") from err


def _mask(mask: str, image: Any, root: Path) -> np.ndarray:
    if mask == "template":
        return template_mask(image.affine, image.shape[:3])
    path = Path(mask).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise FileFormatError(
            f"hcp_movie: mask file {path} does not exist (data.mask: 'template' or a NIfTI path)."
        )
    mask_image = _open(path)
    if mask_image.shape[:3] != image.shape[:3] or not np.allclose(mask_image.affine, image.affine, atol=1e-3):
        raise DataError(
            f"hcp_movie: mask {path} has shape {mask_image.shape} and affine {np.round(mask_image.affine, 3).tolist()}; "
            f"it must be on the runs' grid {image.shape[:3]} (resample it onto one run first)."
        )
    return np.asarray(mask_image.dataobj).reshape(image.shape[:3]) > 0


def _seconds(movie: int, opts: HCPMovieOptions, images: dict, subjects: list[str], table: np.ndarray,
             labels_path: Path) -> np.ndarray:  # fmt: skip
    """The stimulus seconds of ``movie`` (sorted): its clips (the test movies without the last), each with a
    volume ``delay`` TRs later in every subject's run and a label row."""
    n_volumes = min(images[(s, movie)].shape[3] for s in subjects)
    available = n_volumes - opts.delay
    if opts.clips == "all":
        if len(table) < available:
            raise DataError(
                f"{labels_path}: movie {movie} has {len(table)} label rows, but its runs have {available} seconds "
                f"with a volume {opts.delay} TRs later; the label file does not match the runs."
            )
        return np.arange(available)
    segments = SEGMENTS[movie][:-1] if movie in opts.test_movies else SEGMENTS[movie]
    seconds = np.concatenate([np.arange(a, b + 1) for a, b in segments])
    if seconds[-1] >= available or seconds[-1] >= len(table):
        raise DataError(
            f"hcp_movie: movie {movie}'s clips run to second {seconds[-1]}, but the runs have {available} seconds "
            f"with a volume {opts.delay} TRs later and {labels_path.name} {len(table)} label rows: these are not "
            f"HCP's full {MOVIE_RUNS[movie]} runs. Use data.clips=all for shorter runs."
        )
    return seconds


def _classes(train_labels: np.ndarray, opts: HCPMovieOptions, n_names: int) -> np.ndarray:
    """The kept category indices: ``label_indices`` (a .npy of indices, e.g. the released sel_label_idx) or those
    on at least ``min_label_fraction`` of the training seconds."""
    if opts.label_indices is not None:
        path = Path(opts.label_indices).expanduser()
        if not path.is_file():
            raise FileFormatError(f"hcp_movie: label_indices file {path} does not exist.")
        keep = np.asarray(np.load(path, allow_pickle=False)).ravel()
        if keep.dtype.kind not in "iu" or not len(keep) or keep.min() < 0 or keep.max() >= n_names:
            raise DataError(f"{path}: expected category indices in 0..{n_names - 1}, found {keep[:5]}.")
        return np.unique(keep)
    keep = frequent_classes(train_labels, opts.min_label_fraction)
    if not len(keep) or not (train_labels[:, keep].sum(0) > 0).all():
        raise DataError(
            f"hcp_movie: no category is on {opts.min_label_fraction:.0%} of the training seconds (or some kept one "
            "on none); lower data.min_label_fraction."
        )
    return keep


def _word(synset: str) -> str:
    """``"person.n.01"`` -> ``"person"``, ``"traffic_light.n.01"`` -> ``"traffic light"``."""
    return synset.split(".", 1)[0].replace("_", " ")


__all__ = ["HCPMovieOptions", "LABELS_FILE", "STIMULUS_DIR", "load_hcp_movie"]
