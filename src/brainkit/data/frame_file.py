"""Surface movie frames on disk, written and read in pieces: SIM's ``fmri.npy`` (float32 (n_subjects, n_runs,
n_frames, n_vertices)) at HCP scale (174 subjects x 4 runs x ~900 frames x 40,962 vertices: ~100 GB) never fits
in memory, so neither its build nor a training batch holds more than the piece it needs.

- :class:`FrameWriter` creates the ``.npy`` file (header, then the full size as a sparse file: unwritten frames
  read back as 0, the padding of shorter runs) and writes one (subject, run) at a time at its byte offset with
  plain file writes, no memory map: what it wrote does not stay in the process's memory.
- :class:`FrameFile` reads windows of consecutive frames of one (subject, run) -- a sample's frames, contiguous
  in the file -- into fresh arrays, opening the file for each call (safe across forked processes, nothing kept
  mapped). A memory map would give the same values, but every page it touches stays counted in the process's
  resident memory while the map is open, so a long training run over many subjects would climb towards the
  file's size.
- :func:`frame_source` turns ``data.fmri`` into what training reads: a :class:`FrameFile` for a memory map of a
  whole ``.npy`` file (what the readers' ``_load`` returns), else :class:`ArrayFrames` over the array in memory.
  Both return the same values for the same samples.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from brainkit.errors import DataError


def _window_starts(shape: tuple[int, ...], subject, run, first, n_frames: int) -> np.ndarray:
    """Flat frame index of each window's first frame; checks that every window lies inside its run."""
    subject, run, first = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (subject, run, first))
    n_subjects, n_runs, n_total = shape[:3]
    bad = (subject < 0) | (subject >= n_subjects) | (run < 0) | (run >= n_runs)
    bad |= (first < 0) | (first + n_frames > n_total)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"frame window {i} (subject {subject[i]}, run {run[i]}, frames {first[i]}.."
                        f"{first[i] + n_frames - 1}) lies outside the fmri array {shape}.")  # fmt: skip
    return (subject * n_runs + run) * n_total + first


class ArrayFrames:
    """Windows of an fmri array in memory (n_subjects, n_runs, n_frames, n_vertices), by fancy indexing."""

    def __init__(self, fmri: np.ndarray) -> None:
        self.fmri = fmri
        self.shape, self.dtype = tuple(fmri.shape), fmri.dtype

    def windows(self, subject, run, first, n_frames: int) -> np.ndarray:
        """(n, n_frames, n_vertices): frames ``first[i] .. first[i] + n_frames - 1`` of (subject[i], run[i])."""
        _window_starts(self.shape, subject, run, first, n_frames)
        frames = np.asarray(first)[:, None] + np.arange(n_frames)
        return self.fmri[np.asarray(subject)[:, None], np.asarray(run)[:, None], frames]


class FrameFile:
    """Windows of a C-ordered 4-d ``.npy`` file (n_subjects, n_runs, n_frames, n_vertices), read from disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise DataError(
                    f"{self.path}: .npy format version {version}; expected 1.0 or 2.0 (np.save's)."
                )
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        if fortran or len(shape) != 4 or dtype.hasobject:
            raise DataError(f"{self.path}: expected a C-ordered 4-d numeric array (n_subjects, n_runs, n_frames, "
                            f"n_vertices), found shape {shape}, dtype {dtype}, fortran_order={fortran}.")  # fmt: skip
        self.shape, self.dtype = tuple(shape), dtype

    def windows(self, subject, run, first, n_frames: int) -> np.ndarray:
        """(n, n_frames, n_vertices) fresh array: frames ``first[i] .. first[i] + n_frames - 1`` of
        (subject[i], run[i]), one read per window."""
        starts = _window_starts(self.shape, subject, run, first, n_frames)
        frame_bytes = self.shape[3] * self.dtype.itemsize
        out = np.empty((len(starts), n_frames, self.shape[3]), dtype=self.dtype)
        with open(self.path, "rb", buffering=0) as f:
            for i, start in enumerate(starts):
                f.seek(self.offset + int(start) * frame_bytes)
                view, done = memoryview(out[i]).cast("B"), 0
                while done < len(view):
                    n = f.readinto(view[done:])
                    if not n:
                        raise DataError(f"{self.path} ends before frame {start} + {n_frames} (truncated?).")
                    done += n
        return out


class FrameWriter:
    """A new ``.npy`` file of ``shape`` (n_subjects, n_runs, n_frames, n_vertices) and ``dtype``, all 0, written
    run by run with :meth:`write` (no memory map)."""

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype=np.float32) -> None:
        self.path, self.shape, self.dtype = Path(path), tuple(int(n) for n in shape), np.dtype(dtype)
        if len(self.shape) != 4:
            raise DataError(
                f"FrameWriter: expected (n_subjects, n_runs, n_frames, n_vertices), found {shape}."
            )
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        with open(self.path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            self.offset = f.tell()
            f.truncate(self.offset + int(np.prod(self.shape)) * self.dtype.itemsize)  # sparse: reads as 0

    def write(self, subject: int, run: int, frames: np.ndarray) -> None:
        """Frames 0 .. len(frames) - 1 of (``subject``, ``run``): ``frames`` (n <= n_frames, n_vertices)."""
        frames = np.ascontiguousarray(frames, dtype=self.dtype)
        n_subjects, n_runs, n_total, n_vertices = self.shape
        if frames.ndim != 2 or frames.shape[1] != n_vertices or len(frames) > n_total:
            raise DataError(f"FrameWriter {self.path}: frames of shape {frames.shape} for a run of at most "
                            f"({n_total}, {n_vertices}).")  # fmt: skip
        if not (0 <= subject < n_subjects and 0 <= run < n_runs):
            raise DataError(
                f"FrameWriter {self.path}: (subject {subject}, run {run}) outside {self.shape[:2]}."
            )
        with open(self.path, "r+b") as f:
            f.seek(self.offset + (subject * n_runs + run) * n_total * n_vertices * self.dtype.itemsize)
            f.write(memoryview(frames).cast("B"))


def is_whole_file(fmri) -> bool:
    """Whether ``fmri`` is a memory map of a whole ``.npy`` file (``np.load(..., mmap_mode="r")``), not a view."""
    return (
        isinstance(fmri, np.memmap)
        and isinstance(fmri.base, mmap.mmap)
        and fmri.filename is not None
        and fmri.flags.c_contiguous
        and fmri.ndim == 4
    )


def frame_source(fmri) -> ArrayFrames | FrameFile:
    """What SIM's batches read ``fmri`` through (module doc): a :class:`FrameFile` for a whole-file memory map
    (checked against the file's header), else :class:`ArrayFrames`."""
    if isinstance(fmri, ArrayFrames | FrameFile):
        return fmri
    if is_whole_file(fmri):
        source = FrameFile(fmri.filename)
        if source.shape == tuple(fmri.shape) and source.dtype == fmri.dtype and source.offset == fmri.offset:
            return source
    return ArrayFrames(np.asarray(fmri) if not isinstance(fmri, np.ndarray) else fmri)


__all__ = ["ArrayFrames", "FrameFile", "FrameWriter", "frame_source", "is_whole_file"]
