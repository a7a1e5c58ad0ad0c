"""A FAISS gallery: nearest-neighbour search of brain-predicted embeddings in a large set of stimulus embeddings.

This is Lite-Mind's "LAION-5B retrieval" step on a gallery the user owns: instead of querying the public
LAION-5B kNN service (clip-retrieval's ClipClient), the user embeds their own image collection once, builds a
:class:`Gallery`, saves it, and searches it with embeddings decoded from brain data.

Similarity is cosine (both sides L2-normalised, then inner product) or raw inner product. Index kinds:

- ``"flat"``: exact search (``IndexFlatIP``); memory n x d x 4 bytes; fine up to a few million items.
- ``"ivf_flat"``: inverted lists (``IndexIVFFlat``): k-means into ``nlist`` cells trained on a sample, a query
  scans its ``nprobe`` nearest cells. Approximate; measure recall against ``"flat"`` (bench/bench_gallery.py).
- ``"hnsw"``: graph search (``IndexHNSWFlat``, ``hnsw_m`` links per node, ``ef_search`` at query time); built
  with one ``add`` of the whole (normalised) gallery, which costs one float32 copy of it while building.

A saved gallery is a folder: ``index.faiss`` (faiss.write_index), ``ids.npy`` (numbers or strings, loaded with
``allow_pickle=False``) and ``config.json``; it is written under a temporary name and renamed, so it is whole or
absent.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from brainkit.checkpoint import atomic_folder, atomic_write_text
from brainkit.errors import ConfigError, DataError, FileFormatError

logger = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf_flat", "hnsw")
METRICS = ("cosine", "inner_product")
INDEX_FILE, IDS_FILE, CONFIG_FILE = "index.faiss", "ids.npy", "config.json"
FORMAT_VERSION = 1
ADD_CHUNK = (
    65536  # rows normalised (and, flat / IVF, added) at a time: flat and IVF never copy the gallery whole
)


@dataclass(frozen=True)
class GalleryConfig:
    """How a gallery is indexed and searched.

    ``nlist`` None picks ``4 * sqrt(n)`` (at most ``n // 39``, faiss's floor of training points per cell);
    ``n_train`` None trains IVF on ``min(n, 64 * nlist)`` rows drawn with ``seed``.
    """

    index_kind: str = "flat"
    metric: str = "cosine"
    nlist: int | None = None
    nprobe: int = 16
    n_train: int | None = None
    hnsw_m: int = 32
    ef_search: int = 64
    seed: int = 0
    dim: int = field(default=0)  # filled from the embeddings at build time

    def __post_init__(self) -> None:
        if self.index_kind not in INDEX_KINDS:
            raise ConfigError(f"Unknown index_kind {self.index_kind!r}; choose one of {INDEX_KINDS}.")
        if self.metric not in METRICS:
            raise ConfigError(f"Unknown metric {self.metric!r}; choose one of {METRICS}.")
        for name in ("nprobe", "hnsw_m", "ef_search"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} is {getattr(self, name)}; expected a positive integer.")
        if self.nlist is not None and self.nlist < 1:
            raise ConfigError(f"nlist is {self.nlist}; expected a positive integer or None (automatic).")


def _check_matrix(values: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2:
        raise DataError(f"{name} has shape {values.shape}; expected a 2-D (n, dim) array.")
    if dim is not None and values.shape[1] != dim:
        raise DataError(
            f"{name} have dimension {values.shape[1]} but the gallery holds {dim}-d embeddings; embed the "
            "queries with the same stimulus encoder (and projection) as the gallery."
        )
    return values


def _prepared(rows: np.ndarray, metric: str, name: str) -> np.ndarray:
    """float32, C-contiguous, finite; L2-normalised for cosine."""
    original = rows
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)[:5].tolist()
        raise DataError(f"{name} contain NaN or inf (rows {bad}...); expected finite embeddings.")
    if metric == "cosine":
        if np.shares_memory(rows, original):
            rows = rows.copy()  # normalise a copy, never the caller's array
        faiss.normalize_L2(rows)
    return rows


class Gallery:
    """A searchable set of stimulus embeddings with their ids.

    Build with :meth:`build`, search with :meth:`search`, persist with :meth:`save` / :meth:`load`.
    Attributes ending in ``_`` are learned state: ``index_`` (the faiss index) and ``ids_`` (n,).
    """

    def __init__(self, config: GalleryConfig, index: Any, ids: np.ndarray) -> None:
        if index.ntotal != len(ids):
            raise DataError(f"The index holds {index.ntotal} vectors but {len(ids)} ids were given.")
        self.config = config
        self.index_ = index
        self.ids_ = ids
        self._apply_search_parameters()

    def __len__(self) -> int:
        return int(self.index_.ntotal)

    def __repr__(self) -> str:
        return f"Gallery(n={len(self)}, dim={self.config.dim}, kind={self.config.index_kind!r})"

    @classmethod
    def build(
        cls, embeddings: np.ndarray, ids: np.ndarray | list | None = None, config: GalleryConfig | None = None
    ) -> Gallery:
        """Index ``embeddings``.

        Parameters
        ----------
        embeddings : np.ndarray, shape (n_items, dim)
            Stimulus embeddings (any float dtype; converted to float32 chunk by chunk).
        ids : array-like, shape (n_items,), optional
            Integer or string id per row (default ``0 .. n_items - 1``); search returns these.
        config : GalleryConfig, optional
            Index kind and its parameters (default exact cosine search).
        """
        embeddings = _check_matrix(embeddings, "embeddings")
        n_items, dim = embeddings.shape
        if n_items < 1 or dim < 1:
            raise DataError(f"embeddings has shape {embeddings.shape}; expected at least one row and column.")
        ids = np.arange(n_items, dtype=np.int64) if ids is None else np.asarray(ids)
        if ids.shape != (n_items,):
            raise DataError(f"ids has shape {ids.shape}; expected ({n_items},), one id per embedding row.")
        if ids.dtype.kind not in "iuU":
            if ids.dtype.kind == "O" and all(isinstance(i, str) for i in ids):
                ids = ids.astype(str)
            else:
                raise DataError(f"ids have dtype {ids.dtype}; expected integers or strings.")
        base = config or GalleryConfig()
        config = GalleryConfig(**{**asdict(base), "dim": dim})
        started = time.perf_counter()
        index = cls._empty_index(config, n_items)
        if config.index_kind == "ivf_flat":
            index, config = cls._train_ivf(index, embeddings, config)
        if config.index_kind == "hnsw":
            # One add call: faiss builds the HNSW graph level by level over the rows of each call, so adding in
            # chunks gives another graph (no consistent recall difference measured: within +-0.02 at 100k and 1M,
            # docs/benchmarks.md); one call is exactly faiss's own build.
            # The cost is one normalised float32 copy of the gallery, filled chunk by chunk.
            prepared = np.empty((n_items, dim), dtype=np.float32)
            for start in range(0, n_items, ADD_CHUNK):
                rows = embeddings[start : start + ADD_CHUNK]
                prepared[start : start + len(rows)] = _prepared(rows, config.metric, "embeddings")
            index.add(prepared)
            del prepared
        else:  # flat and IVF add each row on its own: chunks give the same index, without a whole copy
            for start in range(0, n_items, ADD_CHUNK):
                index.add(_prepared(embeddings[start : start + ADD_CHUNK], config.metric, "embeddings"))
        logger.info("Built %s gallery of %d x %d in %.1f s", config.index_kind, n_items, dim,
                    time.perf_counter() - started)  # fmt: skip
        return cls(config, index, ids)

    @staticmethod
    def _empty_index(config: GalleryConfig, n_items: int) -> Any:
        metric = faiss.METRIC_INNER_PRODUCT
        if config.index_kind == "flat":
            return faiss.IndexFlatIP(config.dim)
        if config.index_kind == "hnsw":
            return faiss.IndexHNSWFlat(config.dim, config.hnsw_m, metric)
        nlist = config.nlist or max(1, min(int(4 * np.sqrt(n_items)), n_items // 39))
        if nlist > n_items:
            raise ConfigError(f"nlist is {nlist} but the gallery has {n_items} items; use nlist <= n_items.")
        quantizer = faiss.IndexFlatIP(config.dim)
        return faiss.IndexIVFFlat(
            quantizer, config.dim, nlist, metric
        )  # faiss keeps a reference to quantizer

    @staticmethod
    def _train_ivf(index: Any, embeddings: np.ndarray, config: GalleryConfig) -> tuple[Any, GalleryConfig]:
        n_items = embeddings.shape[0]
        n_train = min(n_items, config.n_train or 64 * index.nlist)
        rows = np.random.default_rng(config.seed).choice(n_items, size=n_train, replace=False)
        sample = _prepared(embeddings[np.sort(rows)], config.metric, "embeddings")
        index.cp.seed = config.seed
        index.train(sample)
        return index, GalleryConfig(**{**asdict(config), "nlist": int(index.nlist), "n_train": n_train})

    def _apply_search_parameters(self) -> None:
        if self.config.index_kind == "ivf_flat":
            self.index_.nprobe = self.config.nprobe
        elif self.config.index_kind == "hnsw":
            self.index_.hnsw.efSearch = self.config.ef_search

    def set_search_parameters(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the speed/recall trade-off of an approximate index without rebuilding it."""
        changes = {k: v for k, v in (("nprobe", nprobe), ("ef_search", ef_search)) if v is not None}
        self.config = GalleryConfig(**{**asdict(self.config), **changes})
        self._apply_search_parameters()

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar gallery items for each query, best first.

        Parameters
        ----------
        queries : np.ndarray, shape (n_queries, dim)
            Embeddings decoded from brain data (or any embeddings in the gallery's space).
        k : int
            Neighbours per query, 1 <= k <= len(gallery).

        Returns
        -------
        scores : np.ndarray, shape (n_queries, k), float32
            Cosine similarity (or inner product). An approximate index that finds fewer than ``k`` items
            (IVF with a small ``nprobe``) fills the rest with ``-inf``.
        ids : np.ndarray, shape (n_queries, k)
            The gallery ids; unfilled slots hold -1 (integer ids) or "" (string ids).
        """
        queries = _check_matrix(queries, "queries", self.config.dim)
        if not 1 <= k <= len(self):
            raise DataError(
                f"k is {k} but the gallery holds {len(self)} items; expected 1 <= k <= {len(self)}."
            )
        scores, positions = self.index_.search(_prepared(queries, self.config.metric, "queries"), k)
        missing = positions < 0
        ids = self.ids_[np.where(missing, 0, positions)]
        if missing.any():
            scores[missing] = -np.inf
            ids[missing] = "" if self.ids_.dtype.kind == "U" else -1
        return scores, ids

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/{index.faiss, ids.npy, config.json}`` atomically (an existing folder is replaced)."""
        folder = Path(folder)
        with atomic_folder(folder) as tmp:
            faiss.write_index(self.index_, str(tmp / INDEX_FILE))
            with open(tmp / IDS_FILE, "wb") as handle:
                np.save(handle, self.ids_, allow_pickle=False)
            record = {"format_version": FORMAT_VERSION, "n_items": len(self), **asdict(self.config)}
            atomic_write_text(tmp / CONFIG_FILE, json.dumps(record, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Gallery:
        """Read a gallery written by :meth:`save`; missing or truncated files raise :class:`FileFormatError`."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileFormatError(f"Gallery folder {folder} does not exist; build one and call Gallery.save.")
        for name in (CONFIG_FILE, INDEX_FILE, IDS_FILE):
            if not (folder / name).is_file():
                raise FileFormatError(
                    f"Gallery {folder} has no {name}; it is incomplete. Save the gallery again."
                )
        try:
            record = json.loads((folder / CONFIG_FILE).read_text())
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{folder / CONFIG_FILE} is truncated or not JSON ({err}).") from None
        if record.pop("format_version", None) != FORMAT_VERSION:
            raise FileFormatError(
                f"{folder / CONFIG_FILE} is not a brainkit gallery config (format version)."
            )
        n_items = record.pop("n_items", None)
        try:
            config = GalleryConfig(**record)
        except TypeError as err:
            raise FileFormatError(f"{folder / CONFIG_FILE} has unexpected fields ({err}).") from None
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
        except RuntimeError as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise FileFormatError(
                f"{folder / INDEX_FILE} is truncated or not a faiss index ({first_line}). Save the gallery again."
            ) from None
        try:
            ids = np.load(folder / IDS_FILE, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise FileFormatError(f"{folder / IDS_FILE} is truncated or not a .npy array ({err}).") from None
        if index.ntotal != n_items or len(ids) != n_items or index.d != config.dim:
            raise FileFormatError(
                f"Gallery {folder} is inconsistent: config says {n_items} items of dim {config.dim}, the index "
                f"holds {index.ntotal} of dim {index.d}, ids.npy has {len(ids)}. Save the gallery again."
            )
        return cls(config, index, ids)
