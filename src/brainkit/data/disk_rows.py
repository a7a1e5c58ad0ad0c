"""Rows of a float32 matrix kept on disk and read on demand: how a subject too big for memory streams into training
(NSD at full size: 30,000 trials x 15,724 voxels, 1.9 GB of float32 per subject).

:class:`DiskRows` is an (n_rows, n_features) float32 matrix stored as a ``.npy`` file. Indexing it (``rows[idx]``,
``rows[a:b]``) reads just those rows with ``os.preadv`` into a fresh array, so the process holds only what a batch
needs: a memory map would leave every page it touched resident, counted in the process's RSS until unmapped.
The file's pages live in the kernel's page cache, which the kernel frees under memory pressure.

- :meth:`DiskRows.select` is a lazy subset (a row index into the file), so ``BrainSamples.select`` of streamed
  samples copies nothing;
- :func:`row_blocks` iterates blocks of rows of a :class:`DiskRows` or of an in-memory array, the same blocks
  for both, so statistics computed block by block (:class:`~brainkit.data.transforms.Standardizer`) are bit for
  bit the same on either;
- ``np.asarray(rows)`` reads the whole matrix (what a path that needs it at once, ridge's closed form, does);
- :class:`Standardized` applies a fitted standardizer to every read;
- :class:`RowWriter` builds such a file block by block, atomically (a temporary name, renamed when complete), and
  refuses non-finite values, so what it wrote never needs a second check.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.errors import DataError, FileFormatError

logger = logging.getLogger(__name__)

BLOCK_ROWS = 1024  # rows per block of :func:`row_blocks`: 64 MB of float32 at NSD's 15,724 voxels
_DTYPE = np.dtype("<f4")


def _read_header(path: Path) -> tuple[tuple[int, ...], int]:
    try:
        with open(path, "rb") as handle:
            major, _ = np.lib.format.read_magic(handle)
            reader = (
                np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = reader(handle)
            offset = handle.tell()
    except (OSError, ValueError) as error:
        raise FileFormatError(f"Cannot read the .npy header of {path}: {error}.") from error
    if dtype != _DTYPE or fortran or len(shape) != 2:
        raise FileFormatError(
            f"{path}: expected a C-order little-endian float32 (n_rows, n_features) .npy, found dtype {dtype}, "
            f"shape {shape}, fortran_order={fortran}. Write it with brainkit.data.disk_rows.RowWriter."
        )
    expected = offset + shape[0] * shape[1] * _DTYPE.itemsize
    if path.stat().st_size != expected:
        raise FileFormatError(
            f"{path}: {path.stat().st_size} bytes, its header says {expected}: the file is truncated or was "
            "written by another program. Delete it so it is built again."
        )
    return shape, offset


class DiskRows:
    """An (n_rows, n_features) float32 ``.npy`` read on demand; ``index`` (file rows) makes it a lazy subset.

    ``rows[key]`` with an int, a slice, an int array or a boolean array (over this object's rows) returns a fresh
    float32 array read from the file; ``len``, ``shape``, ``ndim`` and ``dtype`` work as for an array.
    """

    def __init__(self, path: str | Path, index: np.ndarray | None = None) -> None:
        self.path = Path(path)
        (self._n_file_rows, self.n_features), self._offset = _read_header(self.path)
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        if (
            self.index is not None
            and len(self.index)
            and (self.index.min() < 0 or self.index.max() >= self._n_file_rows)
        ):
            raise DataError(f"{self.path}: row index outside 0..{self._n_file_rows - 1}.")

    dtype = _DTYPE
    ndim = 2

    def __len__(self) -> int:
        return self._n_file_rows if self.index is None else len(self.index)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.n_features)

    def __repr__(self) -> str:
        return f"DiskRows({str(self.path)!r}, shape={self.shape})"

    def _file_rows(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            raise DataError(
                "DiskRows index rows only (rows[i], rows[a:b], rows[array]); select columns after."
            )
        own = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key)
        if own.dtype == bool:
            if own.shape != (len(self),):
                raise DataError(f"A boolean row mask of shape {own.shape} for {len(self)} rows.")
            own = np.nonzero(own)[0]
        own = own.astype(np.int64, copy=False)
        if own.size and (own.min() < -len(self) or own.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        own = np.where(own < 0, own + len(self), own)
        return own if self.index is None else self.index[own]

    def _read(self, file_rows: np.ndarray) -> np.ndarray:
        """The file's rows ``file_rows`` (n,) as a fresh (n, n_features) array; consecutive rows in one read."""
        out = np.empty((len(file_rows), self.n_features), dtype=_DTYPE)
        if not len(file_rows):
            return out
        row_bytes = self.n_features * _DTYPE.itemsize
        breaks = np.nonzero(np.diff(file_rows) != 1)[0] + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(file_rows)]])
        view = memoryview(out).cast("B")
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for start, stop in zip(starts.tolist(), stops.tolist()):
                want = (stop - start) * row_bytes
                got = os.preadv(
                    fd,
                    [view[start * row_bytes : stop * row_bytes]],
                    self._offset + int(file_rows[start]) * row_bytes,
                )
                if got != want:
                    raise FileFormatError(
                        f"{self.path}: read {got} of {want} bytes; the file changed on disk."
                    )
        finally:
            os.close(fd)
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            return self._read(self._file_rows(np.array([key])))[0]
        return self._read(self._file_rows(key))

    def select(self, key: Any) -> DiskRows:
        """The rows ``key`` as a lazy :class:`DiskRows` (nothing is read)."""
        return DiskRows(self.path, self._file_rows(key))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self[:]
        return values if dtype is None else values.astype(dtype)


class Standardized:
    """``standardizer.transform`` applied to each read of ``source`` (a :class:`DiskRows`), lazily."""

    def __init__(self, source: DiskRows, standardizer: Any) -> None:
        self.source, self.standardizer = source, standardizer

    dtype = _DTYPE
    ndim = 2

    def __len__(self) -> int:
        return len(self.source)

    @property
    def shape(self) -> tuple[int, int]:
        return self.source.shape

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.standardizer.transform(self.source[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self[:]
        return values if dtype is None else values.astype(dtype)


def is_lazy(values: Any) -> bool:
    """Whether ``values`` are rows read on demand (:class:`DiskRows`, :class:`Standardized`), not an array."""
    return isinstance(values, DiskRows | Standardized)


def row_blocks(values: Any, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """``(first_row, block)`` over ``values`` (an array or lazy rows) in blocks of ``block_rows`` rows."""
    for start in range(0, len(values), block_rows):
        yield start, np.asarray(values[start : start + block_rows])


class RowWriter:
    """Write an (n_rows, n_features) float32 ``.npy`` block by block, atomically.

    ``with RowWriter(path, n_rows, n_features) as writer: writer.write(first_row, block)``; the file appears at
    ``path`` only when the block leaves without error and every row was written, else the partial file is
    removed. Non-finite values are refused (:class:`DataError`).
    """

    def __init__(self, path: str | Path, n_rows: int, n_features: int) -> None:
        self.path = Path(path)
        self.shape = (int(n_rows), int(n_features))
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self._written = np.zeros(self.shape[0], dtype=bool)

    def __enter__(self) -> RowWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=_DTYPE, shape=self.shape)
        self._offset = header.offset
        del header  # the header is written and the file sized (sparse); rows are written with pwrite
        self._fd = os.open(self._tmp, os.O_WRONLY)
        return self

    def write(self, first_row: int, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=_DTYPE)
        if block.ndim != 2 or block.shape[1] != self.shape[1] or first_row + len(block) > self.shape[0]:
            raise DataError(
                f"{self.path}: a block of shape {block.shape} at row {first_row} for {self.shape}."
            )
        if not np.isfinite(block).all():
            raise DataError(f"{self.path}: rows {first_row}..{first_row + len(block) - 1} hold NaN or inf.")
        row_bytes = self.shape[1] * _DTYPE.itemsize
        view = memoryview(block).cast("B")
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], self._offset + first_row * row_bytes + done)
        self._written[first_row : first_row + len(block)] = True

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        os.close(self._fd)
        if kind is not None:  # the error propagates; nothing half-written stays
            self._tmp.unlink(missing_ok=True)
            return
        if not self._written.all():
            self._tmp.unlink(missing_ok=True)
            missing = np.nonzero(~self._written)[0]
            raise DataError(
                f"{self.path}: {len(missing)} row(s) never written (first {missing[:5].tolist()})."
            )
        os.replace(self._tmp, self.path)


def stored_rows(
    folder: str | Path,
    name: str,
    key: dict[str, Any],
    shape: tuple[int, int],
    fill: Callable[[RowWriter], dict[str, Any]],
) -> tuple[DiskRows, dict[str, Any]]:
    """Rows built once under ``folder`` and read on demand after: ``<name>.npy`` and ``<name>.json``.

    ``key`` (JSON-ready) says what the rows are made of (source files with sizes and modification times, options);
    when ``<name>.json`` holds the same key and the .npy is whole, the rows are reused, else ``fill(writer)``
    writes every row through a :class:`RowWriter` and returns what to keep beside them (counts, notes), saved in
    ``<name>.json`` and returned with the rows.
    """
    folder = Path(folder)
    rows_path, meta_path = folder / f"{name}.npy", folder / f"{name}.json"
    if meta_path.is_file() and rows_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("key") == key and meta.get("shape") == list(shape):
            try:
                return DiskRows(rows_path), meta.get("kept", {})
            except FileFormatError as error:
                logger.warning("%s; building it again.", error)
        else:
            logger.info("%s was built from other files or options; building it again.", rows_path)
    meta_path.unlink(missing_ok=True)  # no key without its rows, even if the build below fails
    with RowWriter(rows_path, *shape) as writer:
        kept = fill(writer)
    text = json.dumps({"key": key, "shape": list(shape), "kept": kept}, indent=1, default=str)
    tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.partial")
    tmp.write_text(text)
    os.replace(tmp, meta_path)
    return DiskRows(rows_path), json.loads(text)["kept"]


__all__ = ["BLOCK_ROWS", "DiskRows", "RowWriter", "Standardized", "is_lazy", "row_blocks", "stored_rows"]
