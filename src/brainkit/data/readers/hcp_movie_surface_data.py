"""``hcp_movie_surface``: the real HCP 7T movie-watching runs on the cortical surface (SIM's data) as the
:class:`~brainkit.data.builtin.movie_surface_like.MovieSurfaceData` the ``sim`` recipe reads.

What it reads under ``root`` (HCP's own names and places):

- the runs: ``{subject}/MNINonLinear/Results/tfMRI_MOVIE{m}_7T_{AP|PA}/..._Atlas_1.6mm_MSMAll_hp2000_clean
  .dtseries.nii`` (:mod:`brainkit.data.readers.hcp_movie_surface`; CIFTI-2, TR 1 s, 921/918/915/901 frames);
- the spheres their vertices lie on: fsLR 32k from brainspace (packaged) when the CIFTI hemisphere has 32,492
  vertices, else ``{subject}/MNINonLinear/fsaverage_LR59k/{subject}.{L|R}.sphere.59k_fs_LR.surf.gii`` (the 1.6 mm
  data), or ``spheres={"left": FILE, "right": FILE}``;
- the movies: ``Post_20140821_version/7T_MOVIE{m}_*_v2.mp4`` (:mod:`.hcp_movie_surface_stimuli`).

SIM's pipeline: CIFTI -> one hemisphere (``hemisphere``; the right one mirrored onto the left) -> each vertex
demeaned -> resampled to the order-``order`` icosphere (brainkit's sparse adaptive-barycentric resampling) ->
each frame z-scored over the cortex (SIM's ``normalise``). The cortex is the CIFTI's vertices resampled (> 0.5).
Stimulus: per-second video and audio embeddings of the movie by the configured encoders, clip c = the mean of
seconds c..c+2; clip segments from SIM's table (``segments=`` to change it), the last one the test-retest clip.

Memory: one run at a time; the frames are written run by run (:class:`~brainkit.data.frame_file.FrameWriter`,
plain file writes) to a cached ``fmri.npy`` (float32 (n_subjects, n_runs, n_frames, n_vertices), runs shorter
than the longest padded with 0 and their extra clips rest) that is opened memory-mapped; SIM reads its batches
from the file window by window (:func:`~brainkit.data.frame_file.frame_source`), so memory stays flat in the
number of subjects (docs/surface.md, "Streaming"). Subjects without every asked-for movie are left out (named in ``info["left_out"]``) unless
``subjects=`` names them, then their missing run is an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.checkpoint import FILE_MODE, atomic_folder
from brainkit.config import Checked, bounded, choice, from_dict
from brainkit.data.builtin.build_cache import UNREADABLE
from brainkit.data.builtin.movie_surface_like import MovieSurfaceData
from brainkit.data.builtin.movie_surface_like_config import CLIP_SECONDS
from brainkit.data.frame_file import FrameWriter
from brainkit.data.readers import hcp_movie_surface as hcp
from brainkit.data.readers.hcp_movie_surface_stimuli import file_stamp, movie_file, movie_stimulus
from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.registry import DATASETS
from brainkit.stimuli.av_encoders import clip_features
from brainkit.stimuli.cache import default_cache_dir

log = logging.getLogger(__name__)
BUILD_VERSION = 1
FSLR32K = 32492


@dataclass(frozen=True)
class HCPSurfaceOptions(Checked):
    """The options of ``hcp_movie_surface`` (module doc); bounds checked when built."""

    root: str
    subjects: list[str] | None = None  # None: every subject with all `movies`
    movies: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    hemisphere: str = choice("left", ("left", "right"))  # SIM: each hemisphere a sample; one per dataset here
    order: int = bounded(6, ge=1, le=6, fix="SIM resamples to ico6 (40,962 vertices)")
    method: str = choice("adap_bary_area", ("barycentric", "adap_bary_area"))
    spheres: dict[str, str] | None = None  # "left"/"right" -> sphere file the CIFTI vertices lie on
    movies_dir: str | None = None  # default {root}/Post_20140821_version
    fps: int = bounded(4, ge=1, le=60)  # frames per second given to the video encoder
    frame_size: int = bounded(128, ge=8, le=1024)
    thumbnail_size: int = bounded(32, ge=4, le=256)
    video_encoder: str = "video_efficientnet_lite0"
    video_options: dict[str, Any] = field(default_factory=lambda: {"image_size": 128})
    audio_encoder: str = "audio_torchcrepe"
    audio_options: dict[str, Any] = field(default_factory=lambda: {"hop_ms": 40})
    # "1".."4" -> [[first, last], ...] frames of each clip (0-based, inclusive; last = test-retest), and the
    # run's frame count; default SIM's table and HCP's counts (hcp_movie_surface.SEGMENTS / N_FRAMES)
    segments: dict[str, list[list[int]]] | None = None
    n_frames: dict[str, int] | None = None
    # how many seconds the movie file may differ from its run's frame count (HCP's: 0-1)
    max_length_mismatch: int = bounded(2, ge=0, le=60)

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            not self.movies
            or len(set(self.movies)) != len(self.movies)
            or not set(self.movies) <= {1, 2, 3, 4}
        ):
            raise ConfigError(f"hcp_movie_surface movies must be distinct numbers 1-4, found {self.movies}.")
        if self.spheres is not None and set(self.spheres) != {"left", "right"}:
            raise ConfigError(
                f"hcp_movie_surface spheres must map 'left' and 'right' to files, found {self.spheres}."
            )


def _pick_runs(options: HCPSurfaceOptions) -> tuple[list[str], dict[str, dict[int, hcp.MovieRun]], dict]:
    """(subjects, subject -> movie -> run, subjects left out -> their missing movies)."""
    found: dict[str, dict[int, hcp.MovieRun]] = {}
    for run in hcp.find_movie_runs(options.root):
        if run.movie in found.setdefault(run.subject, {}):
            raise DataError(f"{run.subject} has two runs of MOVIE{run.movie} ({found[run.subject][run.movie].path}, "
                            f"{run.path}); keep one.")  # fmt: skip
        found[run.subject][run.movie] = run
    wanted = set(options.movies)
    if options.subjects is not None:
        for subject in options.subjects:
            missing = sorted(wanted - set(found.get(subject, {})))
            if missing:
                raise FileFormatError(f"hcp_movie_surface: subject {subject} has no run of MOVIE{missing} under "
                                      f"{options.root} ({hcp.PATTERN}); drop it from subjects= or the movie from movies=.")  # fmt: skip
        subjects = list(options.subjects)
    else:
        subjects = [s for s in sorted(found) if wanted <= set(found[s])]
    left_out = {s: sorted(wanted - set(runs)) for s, runs in found.items() if s not in subjects}
    if len(subjects) < 2:
        raise DataError(f"hcp_movie_surface: {len(subjects)} subject(s) under {options.root} have runs of every movie "
                        f"in {options.movies}; SIM needs >= 2 (left out, missing movies: {left_out}).")  # fmt: skip
    return subjects, found, left_out


def _sphere(options: HCPSurfaceOptions, subject: str, hemisphere: str, n_vertices: int):
    from brainkit.surface.readers import read_mesh

    code = "L" if hemisphere == "left" else "R"
    if options.spheres is not None:
        path = Path(options.spheres[hemisphere])
    elif n_vertices == FSLR32K:
        from importlib.resources import files

        path = Path(
            str(files("brainspace") / "datasets" / "surfaces" / f"conte69_32k_{code.lower()}h_sphere.gii")
        )
    else:
        path = (
            Path(options.root)
            / subject
            / "MNINonLinear"
            / "fsaverage_LR59k"
            / f"{subject}.{code}.sphere.59k_fs_LR.surf.gii"
        )
        if not path.is_file():
            raise FileFormatError(f"No sphere for {subject}'s {hemisphere} hemisphere ({n_vertices} vertices): expected "
                                  f"{path} (HCP's 59k fs_LR sphere); pass spheres={{'left': FILE, 'right': FILE}}.")  # fmt: skip
    mesh = read_mesh(path)
    if mesh.n_vertices != n_vertices:
        raise FileFormatError(f"The sphere {path} has {mesh.n_vertices} vertices but the CIFTI's {hemisphere} hemisphere "
                              f"has {n_vertices}; pass spheres= the sphere the data were made on.")  # fmt: skip
    return mesh, path


def _on_icosphere(options: HCPSurfaceOptions, run: hcp.MovieRun, segments, n_frames: int, cache_dir: Path):
    """One run: (frames (n_frames, n_ico) float32 normalised, cortex (n_ico,) bool, sphere path)."""
    hemis, _ = hcp.read_movie_run(run, segments, n_frames)
    return hemispheres_on_icosphere(hemis, options, run.subject, cache_dir)


def cifti_on_icosphere(path: str | Path, options: HCPSurfaceOptions, subject: str | None,
                       cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Any CIFTI dense time series of HCP's grayordinates through the dataset's pipeline (module doc), e.g. a new
    recording for a finished sim run: (frames (n_frames, n_ico) float32 normalised, cortex (n_ico,) bool).
    ``subject``: whose 59k sphere under ``options.root`` (not needed for fsLR 32k or with ``options.spheres``)."""
    from brainkit.surface.readers import read_cifti_hemispheres

    hemis = read_cifti_hemispheres(path)
    n_vertices = hemis[options.hemisphere].frames.shape[1]
    if subject is None and options.spheres is None and n_vertices != FSLR32K:
        raise DataError(f"{path} has {n_vertices} vertices per hemisphere (HCP's 59k fs_LR): its sphere is the "
                        f"subject's own; say which subject it is (subject=..., --subject).")  # fmt: skip
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    frames, cortex, _ = hemispheres_on_icosphere(hemis, options, str(subject), cache)
    return frames, cortex


def hemispheres_on_icosphere(hemis: dict, options: HCPSurfaceOptions, subject: str, cache_dir: Path):
    """A run's CIFTI hemispheres (``read_cifti_hemispheres``) -> (frames (n_frames, n_ico) float32 normalised,
    cortex (n_ico,) bool, sphere path): the ``options.hemisphere`` demeaned, resampled, z-scored per frame."""
    from brainkit.surface.readers import normalise_frames
    from brainkit.surface.resample import hemisphere_to_icosphere

    data = hemis[options.hemisphere]
    sphere, path = _sphere(options, subject, options.hemisphere, data.frames.shape[1])
    demeaned = normalise_frames(data.frames, data.mask, demean=True, per_frame=False)
    both = np.concatenate(
        [demeaned, data.mask[None].astype(np.float32)]
    )  # the mask resampled with the frames
    args = (sphere, options.hemisphere, options.order, options.method)
    on_ico = hemisphere_to_icosphere(both, *args, cache_dir=cache_dir)
    cortex = on_ico[-1] > 0.5
    return normalise_frames(on_ico[:-1], cortex, demean=False, per_frame=True), cortex, path


def _clip_layout(options: HCPSurfaceOptions) -> tuple[dict[int, tuple], dict[int, int]]:
    """movie -> its segments ((first, last), ...), movie -> its run's frame count."""
    segments = {m: hcp.SEGMENTS[m] for m in options.movies}
    counts = {m: hcp.N_FRAMES[m] for m in options.movies}
    for m, value in (options.segments or {}).items():
        if not m.isdigit() or int(m) not in segments:
            raise ConfigError(
                f"hcp_movie_surface segments: key {m!r} is not one of the movies {options.movies}."
            )
        segments[int(m)] = tuple(tuple(pair) for pair in value)
        if any(len(pair) != 2 for pair in segments[int(m)]):
            raise ConfigError(
                f"hcp_movie_surface segments[{m!r}] must be [[first, last], ...], found {value}."
            )
    for m, value in (options.n_frames or {}).items():
        if not m.isdigit() or int(m) not in counts:
            raise ConfigError(
                f"hcp_movie_surface n_frames: key {m!r} is not one of the movies {options.movies}."
            )
        counts[int(m)] = int(value)
    return segments, counts


def _stimuli(options: HCPSurfaceOptions, counts: dict[int, int], segments: dict, cache_dir: Path) -> dict:
    """The per-clip arrays of every run (module doc), padded to the longest run's clips."""
    from brainkit.stimuli.encoders import get_encoder

    encoders = {"video": get_encoder(options.video_encoder, **options.video_options),
                "audio": get_encoder(options.audio_encoder, **options.audio_options)}  # fmt: skip
    n_clips = max(counts.values()) - CLIP_SECONDS + 1
    out: dict[str, list] = {"video": [], "audio": [], "thumbnails": [], "segment_of": []}
    offset, retest_id = 0, sum(len(segments[m]) - 1 for m in options.movies)
    seconds = {}
    for m in options.movies:
        path = movie_file(options.root, m, options.movies_dir)
        stimulus = movie_stimulus(
            path, encoders, options.fps, options.frame_size, options.thumbnail_size, cache_dir
        )
        n = len(stimulus["video"])
        seconds[m] = n
        if abs(n - counts[m]) > options.max_length_mismatch:
            raise DataError(f"{path} is {n} whole seconds long but MOVIE{m} runs have {counts[m]} frames (TR 1 s): "
                            f"is it the movie of these runs? (max_length_mismatch={options.max_length_mismatch}).")  # fmt: skip
        usable = min(n, counts[m])
        segment = hcp.segment_of_frames(counts[m], segments[m])
        clip_segment = np.full(n_clips, -1, dtype=np.int64)
        for c in range(usable - CLIP_SECONDS + 1):  # a clip is a segment's when its 3 seconds are
            if segment[c] >= 0 and (segment[c : c + CLIP_SECONDS] == segment[c]).all():
                last = segment[c] == len(segments[m]) - 1
                clip_segment[c] = retest_id if last else offset + segment[c]
        offset += len(segments[m]) - 1
        for role in ("video", "audio"):
            clips = np.zeros((n_clips, stimulus[role].shape[1]), dtype=np.float32)
            clips[: usable - CLIP_SECONDS + 1] = clip_features(stimulus[role][:usable], CLIP_SECONDS)
            out[role].append(clips)
        thumbs = np.zeros((n_clips, *stimulus["thumbnails"].shape[1:]), dtype=np.uint8)
        thumbs[: usable - CLIP_SECONDS + 1] = stimulus["thumbnails"][1 : usable - 1]
        out["thumbnails"].append(thumbs)
        out["segment_of"].append(clip_segment)
    arrays = {name: np.stack(values) for name, values in out.items()}
    arrays["retest"] = arrays["segment_of"] == retest_id
    encoded = {role: {"name": getattr(options, f"{role}_encoder"), "options": getattr(options, f"{role}_options"),
                      "fingerprint": e.fingerprint, "dim": int(arrays[role].shape[-1])} for role, e in encoders.items()}  # fmt: skip
    return {"arrays": arrays, "encoders": encoded, "movie_seconds": seconds, "retest_segment": retest_id}


_ARRAYS = ("cortex", "segment_of", "retest", "video", "audio", "thumbnails")


def _build(options: HCPSurfaceOptions, subjects, runs, left_out, folder: Path, cache_dir: Path) -> None:
    from brainkit.surface import n_vertices

    start = time.perf_counter()
    segments, counts = _clip_layout(options)
    stimuli = _stimuli(options, counts, segments, cache_dir)
    shape = (len(subjects), len(options.movies), max(counts.values()), n_vertices(options.order))
    cortex, spheres = None, set()
    with atomic_folder(folder) as tmp:
        fmri = FrameWriter(tmp / "fmri.npy", shape, np.float32)  # plain writes, run by run: nothing mapped
        for s, subject in enumerate(subjects):
            for r, movie in enumerate(options.movies):
                run = runs[subject][movie]
                frames, mask, sphere = _on_icosphere(options, run, segments[movie], counts[movie], cache_dir)
                if cortex is None:
                    cortex = mask
                elif not np.array_equal(mask, cortex):
                    raise FileFormatError(f"{run.path}: its cortex (the CIFTI's {options.hemisphere} vertices) differs "
                                          "from the first run's; all runs must share one grayordinate structure.")  # fmt: skip
                fmri.write(s, r, frames)  # frames past a shorter run's end stay 0
                spheres.add(str(sphere))
                log.info("hcp_movie_surface: %s MOVIE%d on ico%d", subject, movie, options.order)
        np.savez(tmp / "arrays.npz", cortex=cortex, **stimuli["arrays"])
        info = {"name": "hcp_movie_surface", "options": dataclasses.asdict(options), "left_out": left_out,
                "runs": {f"{s}/MOVIE{m}": str(runs[s][m].path) for s in subjects for m in options.movies},
                "run_frames": [counts[m] for m in options.movies], "segments": {str(m): segments[m] for m in options.movies},
                "retest_segment": stimuli["retest_segment"], "encoders": stimuli["encoders"],
                "movie_seconds": {str(m): n for m, n in stimuli["movie_seconds"].items()}, "spheres": sorted(spheres),
                "n_vertices": shape[-1], "n_cortex_vertices": int(cortex.sum()),
                "preprocessing": f"{options.hemisphere} hemisphere{' mirrored' if options.hemisphere == 'right' else ''}, "
                f"demeaned, {options.method} to ico{options.order}, frames z-scored over the cortex",
                "build_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        meta = {"subjects": subjects, "runs": [f"MOVIE{m}" for m in options.movies], "order": options.order,
                "info": info}  # fmt: skip
        (tmp / "info.json").write_text(json.dumps(meta, indent=1))
        for path in tmp.iterdir():
            path.chmod(FILE_MODE)
        tmp.chmod(FILE_MODE | 0o111)


def _load(folder: Path) -> MovieSurfaceData:
    meta = json.loads((folder / "info.json").read_text())
    with np.load(folder / "arrays.npz") as arrays:
        parts = {name: arrays[name] for name in _ARRAYS}
    fmri = np.load(folder / "fmri.npy", mmap_mode="r")
    return MovieSurfaceData(meta["subjects"], meta["runs"], meta["order"], fmri, truth_map=None, info=meta["info"],
                            **parts)  # fmt: skip


@DATASETS.register(
    "hcp_movie_surface",
    space="order-6 icosphere (SIM's ico6; order= to change), one hemisphere (right mirrored onto left)",
    needs="root=: HCP 7T {subject}/MNINonLinear/Results/tfMRI_MOVIE*_7T_*/*_Atlas_1.6mm_MSMAll_hp2000_clean"
    ".dtseries.nii + Post_20140821_version/7T_MOVIE*_v2.mp4 (+ the fs_LR 59k spheres, or spheres=)",
    help="The real HCP 7T movie runs on the surface (SIM's data): CIFTI -> icosphere, mp4 -> video/audio features.",
)
def load_hcp_movie_surface(
    root: str | Path,
    subjects: list[str] | None = None,
    movies: list[int] | None = None,
    hemisphere: str = "left",
    order: int = 6,
    method: str = "adap_bary_area",
    spheres: dict[str, str] | None = None,
    movies_dir: str | None = None,
    fps: int = 4,
    frame_size: int = 128,
    thumbnail_size: int = 32,
    video_encoder: str = "video_efficientnet_lite0",
    video_options: dict[str, Any] | None = None,
    audio_encoder: str = "audio_torchcrepe",
    audio_options: dict[str, Any] | None = None,
    segments: dict[str, list[list[int]]] | None = None,
    n_frames: dict[str, int] | None = None,
    max_length_mismatch: int = 2,
    cache_dir: str | Path | None = None,
    rebuild: bool = False,
) -> MovieSurfaceData:
    """Read (or build once and cache under ``cache_dir``) the HCP 7T movie surface data (module doc); the
    options are the fields of :class:`HCPSurfaceOptions` (None: its default)."""
    given = dict(locals())
    fields = {k: v for k, v in given.items() if k not in ("cache_dir", "rebuild") and v is not None}
    fields["root"] = str(root)
    config = from_dict(HCPSurfaceOptions, fields, where="hcp_movie_surface options")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    subjects, runs, left_out = _pick_runs(config)
    if left_out:
        log.warning(
            "hcp_movie_surface: left out %d subject(s) without every movie: %s", len(left_out), left_out
        )
    stamps = [file_stamp(runs[s][m].path) | {"subject": s} for s in subjects for m in config.movies]
    movie_stamps = [file_stamp(movie_file(config.root, m, config.movies_dir)) for m in config.movies]
    key = {
        "version": BUILD_VERSION,
        "options": dataclasses.asdict(config),
        "runs": stamps,
        "movies": movie_stamps,
    }
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = cache / "hcp_movie_surface" / "builds" / digest
    if folder.is_dir() and not rebuild:
        try:
            return _load(folder)
        except UNREADABLE as err:
            log.warning("Cached hcp_movie_surface build %s is unreadable (%s); rebuilding it.", folder, err)
    _build(config, subjects, runs, left_out, folder, cache)
    return _load(folder)


__all__ = ["HCPSurfaceOptions", "cifti_on_icosphere", "hemispheres_on_icosphere", "load_hcp_movie_surface"]
