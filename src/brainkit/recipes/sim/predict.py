"""A finished sim run decoding new recordings: ``brainkit.load(RUN).predict(frames)`` -> fMRI embeddings in the
run's tri-modal space, ``.retrieve(frames, "test", run="MOVIE2")`` -> the run's test clips ranked for each
sample (and the run's retrieval accuracy on them); ``brainkit predict RUN --input frames.npy --out emb.npy``.

Input: one recording (a whole run) of one hemisphere -- the run's (``hemisphere`` of its data; the right one is
mirrored onto the left, as the data were) -- on the run's icosphere in brainkit's vertex order:
an array (n_frames, n_vertices), a ``.npy`` file of one, a surface file (``.func.gii`` / ``.mgh`` / ``.mgz``) on
that icosphere, or a GIFTI pair (left, right) on fsaverage of the run's order (:mod:`.frames`).
It goes through what the run's data went through (:func:`brainkit.surface.readers.normalise_frames`): each
vertex demeaned over the recording, each frame z-scored over the run's cortex, the medial wall 0
(``normalised=True``: the frames already are, e.g. a dataset's own ``fmri[subject, run]``, and are only
checked). Samples are the run's windows (:func:`brainkit.data.movie_samples.gather_clips`): sample ``c`` is the
movie clip starting at second ``c`` (seconds c .. c + 2), its fMRI the frames ``c + lag .. c + lag + n_frames -
1`` cut into the run's patches, so a recording of F frames gives F - lag - n_frames + 1 samples. The embeddings are
those of :func:`brainkit.evaluation.movie_retrieval.embed_fmri`: the run's own test frames give the embeddings
its evaluation scored.

``method`` picks the trained network (``scratch`` or ``vsmae``: ``checkpoints/sim_<init>``; default the
vsMAE-initialised one when the run trained it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from brainkit.data import movie_samples as ms
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.evaluation import movie_retrieval as mr
from brainkit.evaluation import sim_retrieval
from brainkit.recipes.sim.frames import is_cifti, read_frames
from brainkit.recipes.sim.state import SIMState
from brainkit.training import torch_threads

TOLERANCE = 1e-3  # normalised=True: each frame's cortex mean within this of 0, its sd of 1


class SIMPredictor:
    """The run in ``folder`` (config ``config``) with its saved :class:`SIMState`; models loaded when first used."""

    def __init__(self, config: Any, folder: Path, state: SIMState) -> None:
        self.config, self.folder, self.state = config, Path(folder), state
        self.meta, self.cortex = state.meta, state.arrays["cortex"]
        self._models: dict[str, Any] = {}

    @property
    def methods(self) -> list[str]:
        """The run's trained networks (its inits)."""
        return list(self.meta["inits"])

    @property
    def space(self) -> str:
        return f"ico{self.meta['order']} {self.meta['hemisphere']} hemisphere"

    def _method(self, method: str | None, decoder: str | None) -> str:
        if method is not None and decoder is not None and method != decoder:
            raise ConfigError(f"method={method!r} and decoder={decoder!r} name two networks; give one.")
        chosen = method or decoder or ("vsmae" if "vsmae" in self.methods else self.methods[0])
        if chosen not in self.methods:
            raise ConfigError(
                f"This sim run has no network {chosen!r}; its networks (method=..., --decoder): {self.methods}."
            )
        return chosen

    def model(self, method: str | None = None) -> Any:
        """The trained SIM of ``method`` (``checkpoints/sim_<method>``), in eval mode."""
        from brainkit.models import load_model

        method = self._method(method, None)
        if method not in self._models:
            path = self.folder / "checkpoints" / f"sim_{method}"
            if not (path / "model.safetensors").is_file():
                raise CheckpointError(
                    f"{path / 'model.safetensors'} is missing: {self.folder} is not a finished sim run."
                )
            self._models[method] = load_model(path)[0].eval()
        return self._models[method]

    def frames(self, x: Any, normalised: bool = False, space: str | None = None,
               subject: str | None = None) -> np.ndarray:  # fmt: skip
        """``x`` (module doc) checked and normalised as the run's data: (n_frames, n_vertices) float32."""
        if space is not None and space not in (f"ico{self.meta['order']}", f"fsaverage{self.meta['order']}"):
            raise DataError(f"The input is in space {space!r}; this sim run reads the {self.space} "
                            f"(ico{self.meta['order']} / fsaverage{self.meta['order']}).")  # fmt: skip
        if is_cifti(x):
            if normalised:
                raise ConfigError(
                    f"{x} is a CIFTI file: it always goes through the dataset's pipeline; drop normalised=True."
                )
            return self._cifti(Path(x), subject)
        frames, source = read_frames(x, self.meta["order"], self.meta["hemisphere"])
        n_vertices = len(self.cortex)
        if frames.shape[1] != n_vertices:
            from brainkit.surface import n_vertices as ico_vertices

            orders = [o for o in range(8) if ico_vertices(o) == frames.shape[1]]
            found = f" (the order-{orders[0]} icosphere)" if orders else ""
            flipped = (
                " It looks transposed: pass (n_frames, n_vertices)." if frames.shape[0] == n_vertices else ""
            )
            raise DataError(f"{source} has {frames.shape[1]} vertices per frame{found}; this sim run's data are the "
                            f"{self.space}: {n_vertices} vertices in brainkit's order. Resample the recording "
                            f"onto it.{flipped}")  # fmt: skip
        bad = ~np.isfinite(frames[:, self.cortex])  # the medial wall is not read (normalised: must be 0)
        if bad.any():
            raise DataError(f"{source} has {int(bad.sum())} NaN or inf values on the run's cortex (first in frame "
                            f"{int(np.argwhere(bad)[0][0])}); fill or drop them first.")  # fmt: skip
        self._enough(frames, source)
        if not normalised:
            from brainkit.surface.readers import normalise_frames

            return normalise_frames(frames, self.cortex)
        self._check_normalised(frames, source)
        return frames

    def _enough(self, frames: np.ndarray, source: str) -> np.ndarray:
        window = self.meta["lag"] + self.meta["n_frames"]
        if len(frames) < window:
            raise DataError(f"{source} has {len(frames)} frames; one sample needs lag + n_frames = "
                            f"{self.meta['lag']} + {self.meta['n_frames']} = {window} (clip 0 reads frames "
                            f"{self.meta['lag']}..{window - 1}): pass a longer recording.")  # fmt: skip
        return frames

    def _cifti(self, path: Path, subject: str | None) -> np.ndarray:
        """A CIFTI recording through the dataset's own pipeline (hcp_movie_surface runs only)."""
        from brainkit.config import from_dict
        from brainkit.data.readers.hcp_movie_surface_data import HCPSurfaceOptions, cifti_on_icosphere

        if self.meta["data"] != "hcp_movie_surface":
            raise DataError(f"{path} is a CIFTI file; this sim run's data ({self.meta['data']}) were not read from CIFTI, "
                            "so there is no pipeline to put it on the run's icosphere: pass the frames on the "
                            f"{self.space} (.npy, or a GIFTI pair on fsaverage{self.meta['order']}).")  # fmt: skip
        options = from_dict(HCPSurfaceOptions, dict(self.config.data_options), where="sim data_options")
        frames, cortex = cifti_on_icosphere(path, options, subject, self.config.cache_dir)
        if not np.array_equal(cortex, self.cortex):
            raise DataError(f"{path}: its cortex on the icosphere ({int(cortex.sum())} vertices) differs from the "
                            f"run's ({int(self.cortex.sum())}): it is not on the grayordinates the run was read on.")  # fmt: skip
        return self._enough(frames, str(path))

    def _check_normalised(self, frames: np.ndarray, source: str) -> None:
        wall = frames[:, ~self.cortex] != 0  # NaN too
        if wall.any():
            raise DataError(f"{source}: normalised=True, but it is not 0 on the run's medial wall "
                            f"({int(wall.any(axis=0).sum())} vertices): is it in another vertex order or mask? "
                            "Pass the raw frames with normalised=False.")  # fmt: skip
        cortex = frames[:, self.cortex].astype(np.float64)
        mean, sd = cortex.mean(axis=1), cortex.std(axis=1)
        off = np.flatnonzero((np.abs(mean) > TOLERANCE) | (np.abs(sd - 1) > TOLERANCE))
        if len(off):
            f = off[0]
            raise DataError(f"{source}: normalised=True, but {len(off)} frames are not z-scored over the run's "
                            f"cortex (frame {f}: mean {mean[f]:.3g}, sd {sd[f]:.3g}); pass the raw frames with "
                            "normalised=False.")  # fmt: skip

    def predict(self, x: Any, subject: str | None = None, space: str | None = None, method: str | None = None,
                decoder: str | None = None, normalised: bool = False) -> np.ndarray:  # fmt: skip
        """float32 (n_samples, embedding_dim): the fMRI embedding of each window of ``x`` (module doc), row ``c``
        the clip starting at second ``c``. ``subject``: SIM has no per-subject parts; it names whose sphere a 59k
        CIFTI needs (and seeds :meth:`retrieve`'s candidates); ``decoder``: another name of ``method``
        (``brainkit predict --decoder``)."""
        values = self.frames(x, normalised, space, subject)
        model = self.model(self._method(method, decoder))
        lag, n_frames = self.meta["lag"], self.meta["n_frames"]
        n_samples = len(values) - lag - n_frames + 1
        empty = np.zeros((1, n_samples, 0), np.float32)
        arrays = ms.MovieArrays(values[None, None], self.state.arrays["patches"], empty, empty,
                                np.zeros((1, n_samples), np.int64), lag, n_frames)  # fmt: skip
        zeros = np.zeros(n_samples, np.int64)
        with torch_threads(self.config.threads):  # the run's thread count (one by default: a shared machine)
            embedded = mr.embed_fmri(model, arrays, ms.Samples(zeros, zeros, np.arange(n_samples)))
        return embedded.astype(np.float32)

    def _gallery_rows(self, run: str | None) -> np.ndarray:
        if run is None:
            return np.arange(len(self.state.arrays["gallery_run"]))
        return np.flatnonzero(self.state.arrays["gallery_run"] == self._run_index(run))

    def _run_index(self, run: str) -> int:
        if run not in self.meta["runs"]:
            raise ConfigError(f"This sim run's movie runs are {self.meta['runs']}; run={run!r} is not one.")
        return self.meta["runs"].index(run)

    def retrieve(self, x: Any, gallery: Any = "test", k: int = 5, html: str | Path | None = None,
                 run: str | None = None, modality: str = "video", ids: Any = None, subject: str | None = None,
                 space: str | None = None, method: str | None = None, decoder: str | None = None,
                 normalised: bool = False) -> dict[str, Any]:  # fmt: skip
        """The ``k`` gallery clips nearest (cosine: FAISS exact inner product on unit vectors) to each sample's
        fMRI embedding, best first.

        ``gallery``: ``"test"``, the run's test clips (``run``: only that movie run's), their ``modality``
        (video / audio) embeddings by ``method``'s heads; or your own clip embeddings in the run's space, an array
        (n, embedding_dim) with ``ids``. Returns ``{"ids": (n_samples, k), "scores": (n_samples, k) cosine,
        "clips": (n_samples,) the clip of each sample}``; with ``run`` (``x`` a recording of that movie run) also
        ``"accuracy"``: the run's retrieval protocol on the recording's test clips (``{"soft" | "hard": {"top1",
        "top5", "top10", "targets"}}``, ``"setting"``), the evaluation's candidates for ``subject`` (one of the
        run's; another is seeded as a new subject). ``html``: a page of the retrieved clips' thumbnails."""
        from brainkit.evaluation.gallery import Gallery

        if modality not in mr.DIRECTIONS:
            raise ConfigError(f"modality must be one of {mr.DIRECTIONS}, found {modality!r}.")
        method = self._method(method, decoder)
        predicted = self.predict(x, subject, space, method, normalised=normalised)
        if isinstance(gallery, str) and gallery == "test":
            rows = self._gallery_rows(run)
            names, embeddings = self.state.gallery_ids(rows), self.state.embeddings[method][modality][rows]
            images = self.state.arrays["thumbnails"][rows]
        elif isinstance(gallery, str | Path):
            raise ConfigError(f"gallery={str(gallery)!r}: a sim run ranks its own test clips (gallery='test') or clip "
                              "embeddings you pass (an array (n, embedding_dim) in the run's space); a folder of "
                              "movie files cannot be embedded here yet.")  # fmt: skip
        else:
            embeddings, images = np.asarray(gallery, dtype=np.float32), None
            if embeddings.ndim != 2 or embeddings.shape[1] != predicted.shape[1]:
                raise DataError(f"The gallery's embeddings are {embeddings.shape}; this run's are (n, "
                                f"{predicted.shape[1]}).")  # fmt: skip
            names = (
                np.array([f"clip{i:05d}" for i in range(len(embeddings))])
                if ids is None
                else np.asarray(ids, str)
            )
            if len(names) != len(embeddings):
                raise DataError(f"{len(names)} ids for {len(embeddings)} gallery embeddings.")
        if not len(names):
            raise DataError("The gallery is empty.")
        scores, found = Gallery.build(embeddings, names).search(predicted, min(k, len(names)))
        out: dict[str, Any] = {"ids": found, "scores": scores, "clips": np.arange(len(predicted))}
        if run is not None:
            out["accuracy"] = self.accuracy(predicted, run, subject, method)
        if html is not None:
            if images is None:
                raise ConfigError(
                    "html= draws the retrieved clips' thumbnails; an embedding gallery has none."
                )
            from brainkit.report.lite_mind import write_gallery_page

            position = {name: i for i, name in enumerate(names)}
            write_gallery_page(Path(html), images[np.vectorize(position.get)(found)], found, scores,
                               f"SIM ({method}) fMRI->{modality}")  # fmt: skip
        return out

    def accuracy(
        self, predicted: np.ndarray, run: str, subject: str | None, method: str | None = None
    ) -> dict:
        """Top-k of the embeddings ``predicted`` (n_samples, d) of a recording of movie ``run`` on its held-out
        clips, by the run's protocol and seeds (:func:`brainkit.evaluation.movie_retrieval.score_settings`):
        ``{"setting", "video" | "audio": {"soft" | "hard": {"top1", "top5", "top10", "top<k>_chance",
        "targets"}}}``."""
        method = self._method(method, None)
        r, meta, arrays = self._run_index(run), self.meta, self.state.arrays
        clips = np.flatnonzero(arrays["held_out"][r])
        if clips.max() >= len(predicted):
            needed = int(clips.max()) + meta["lag"] + meta["n_frames"]
            raise DataError(f"The recording gives {len(predicted)} samples; {run}'s test clips need {needed} frames "
                            f"(the run has {meta['run_frames'][r]}): pass the whole run.")  # fmt: skip
        subjects = meta["subjects"]
        index = subjects.index(subject) if subject in subjects else len(subjects)
        held = subject in subjects and subject not in meta["test_subjects"]
        samples = ms.Samples(np.full(len(clips), index), np.full(len(clips), r), clips)
        out: dict[str, Any] = {"setting": ms.SETTINGS["unseen_clips" if held else "unseen_both"][0]}
        for modality in mr.DIRECTIONS:
            out[modality] = self._scores(predicted[clips], samples, method, modality)
        return out

    def _scores(self, fmri: np.ndarray, samples: ms.Samples, method: str, modality: str) -> dict[str, Any]:
        """Both kinds of negatives for one direction, one (subject, run) row (:meth:`accuracy`)."""
        meta, arrays = self.meta, self.state.arrays
        stimulus = np.zeros((*arrays["segment_of"].shape, fmri.shape[1]), np.float32)  # (n_runs, n_clips, d)
        stimulus[arrays["gallery_run"], arrays["gallery_clip"]] = self.state.embeddings[method][modality]
        out = {}
        for kind in ("soft", "hard"):
            if meta["protocol"] == "sim":
                rows, n_scored, _ = sim_retrieval.sim_retrieval_scores(
                    fmri, samples, stimulus, arrays["segment_of"], arrays["retest"], "held_out", kind,
                    modality, meta["seed"], meta["n_targets"])  # fmt: skip
            else:
                segments = ms.setting_segments(arrays["segment_of"], arrays["held_out"])
                rows, n_scored, _ = mr.retrieval_scores(fmri, samples, stimulus, segments, kind, meta["seed"])
            out[kind] = (dict(rows[0]) if rows else {}) | {"targets": n_scored}
        return out


__all__ = ["SIMPredictor"]
