"""Freed CPU memory kept in the process for the next training step (glibc's allocator, for the length of a run).

glibc's ``malloc`` serves each block above its mmap threshold (128 KiB, rising to at most 32 MiB) with a fresh
``mmap`` and hands it back to the kernel at ``free``: a training step that allocates its activations anew each time
then pays one page fault per 4 KiB page it writes, every step. On the 2-core machine of docs/benchmarks.md a
fault costs ~4 us, so a convolution writing a 25 MB output spends ~20 ms of its ~100 ms faulting, and the LDM's
step is 1.3x faster without it. :func:`cpu_heap` (``mode="reuse"``) sets ``M_MMAP_MAX = 0`` (blocks come from the
heap) and ``M_TRIM_THRESHOLD = -1`` (the heap is never shrunk; mallopt(3): -1 disables trimming) while a run
trains, so a step reuses the pages the step before freed, as a GPU caching allocator does; on leaving it puts
glibc's defaults back and returns the kept memory with ``malloc_trim(0)``. Peak RSS stays the step's peak live
memory plus what the heap cannot reuse (measured in docs/benchmarks.md).

Nothing is changed where the C library is not glibc (macOS, musl: their allocators decide), where the process
was started with glibc's own ``MALLOC_MMAP_MAX_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TOP_PAD_`` variables (the user's choice wins), or with ``mode="release"``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

MODES = ("reuse", "release")
# mallopt(3) parameters and glibc's defaults (malloc/malloc.c: DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD = 65536, 128 * 1024
USER_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")

_lock = threading.Lock()
_depth = 0  # nested cpu_heap("reuse") blocks: only the outermost sets and restores


def glibc() -> ctypes.CDLL | None:
    """The process's glibc with ``mallopt`` and ``malloc_trim``, or None where the C library is another."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def why_unchanged(mode: str) -> str | None:
    """Why :func:`cpu_heap` leaves the allocator as it is in ``mode`` (None: it changes it)."""
    if mode not in MODES:
        raise ValueError(f"cpu_heap mode {mode!r}: choose from {list(MODES)}")
    if mode == "release":
        return "training.cpu_memory=release"
    if glibc() is None:
        return f"the C library is {platform.libc_ver()[0] or 'not glibc'}, not glibc"
    user = [name for name in USER_VARIABLES if name in os.environ]
    if user:
        return f"the process sets {', '.join(user)} itself"
    return None


@contextlib.contextmanager
def cpu_heap(mode: str = "reuse") -> Iterator[bool]:
    """Keep freed memory in the process inside the block (``mode="reuse"``; see the module docstring); yields
    whether the allocator was changed. On leaving, glibc's default thresholds are back and the kept memory is
    returned to the system (``malloc_trim``)."""
    global _depth
    reason = why_unchanged(mode)
    if reason is not None:
        log.debug("cpu_heap: allocator left as it is: %s", reason)
        yield False
        return
    libc = glibc()
    with _lock:
        if _depth == 0 and not (libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, -1)):
            _restore(libc)
            raise OSError("glibc's mallopt refused M_MMAP_MAX=0 / M_TRIM_THRESHOLD=-1")
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore(libc)


def _restore(libc: ctypes.CDLL) -> None:
    libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
    libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
    libc.malloc_trim(0)
