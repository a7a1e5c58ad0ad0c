"""training.heap: freed CPU memory kept for reuse while training (glibc), given back afterwards."""

from __future__ import annotations

import ctypes
import resource
import subprocess
import sys

import pytest
import torch

from brainkit.errors import ConfigError
from brainkit.training import heap
from brainkit.training.config import TrainingConfig
from brainkit.training.heap import cpu_heap, why_unchanged

CYCLES = 10
BLOCK = 64 * 2**20  # 64 MiB: above glibc's largest mmap threshold (32 MiB), so served by mmap by default
needs_glibc = pytest.mark.skipif(
    heap.glibc() is None, reason="the allocator setting is glibc's (Linux); this C library is another"
)


@pytest.fixture(autouse=True)
def _no_user_variables(monkeypatch):
    for name in heap.USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def blocks_faulted(cycles: int = CYCLES) -> float:
    """Minor page faults over ``cycles`` allocate-write-free cycles of a 64 MiB block (a training step's pattern:
    the same sizes each step), in blocks' worth of pages. glibc's default maps every block afresh: ~``cycles``.
    Reusing the heap, the first cycles may take new memory (an aligned block freed below a small allocation made
    meanwhile is not merged into the heap's top, and the next request, a few bytes larger with its alignment,
    does not fit in it; seen with mallinfo2 under pytest: 2-4 blocks' worth in the first ten cycles), then the
    free blocks take turns (0 in the next forty)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(cycles):
        block = torch.empty(BLOCK // 4)
        block.fill_(1.0)
        del block
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (BLOCK // resource.getpagesize())


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]  # fmt: skip


def mmapped_bytes() -> int:
    """glibc's mallinfo2().hblkhd: the bytes of the blocks it serves with their own mmap."""
    libc = heap.glibc()
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc before 2.33 has no mallinfo2")
    libc.mallinfo2.restype = _Mallinfo2
    return libc.mallinfo2().hblkhd


@needs_glibc
def test_reuse_keeps_freed_pages_for_the_next_allocation():
    with cpu_heap("reuse") as changed:
        assert changed
        before = mmapped_bytes()
        block = torch.empty(BLOCK // 4)
        assert mmapped_bytes() == before  # from the heap, not a fresh mmap
        del block
        blocks_faulted()  # the heap settles: it holds two to four blocks after these cycles
        assert blocks_faulted() < 1  # then the pages freed blocks left serve every cycle


DEFAULTS_BACK = """
import ctypes, torch
from brainkit.training.heap import cpu_heap
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
with cpu_heap("reuse"):
    block = torch.empty(2**26)  # 256 MiB from the heap
    assert libc.mallinfo2().hblkhd < 2**28
    del block
before = libc.mallinfo2().hblkhd
block = torch.empty(2**26)
print(libc.mallinfo2().hblkhd - before)
"""


@needs_glibc
def test_leaving_puts_glibcs_defaults_back():
    """In a fresh process (a heap with no free 256 MiB block left over): after the block, such a block is a fresh
    mmap again, as under glibc's defaults."""
    mmapped_bytes()  # skips without mallinfo2
    done = subprocess.run([sys.executable, "-c", DEFAULTS_BACK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 2**28


@needs_glibc
def test_leaving_gives_the_kept_memory_back():
    with cpu_heap("reuse"):
        block = torch.empty(BLOCK // 4)
        block.fill_(1.0)
        held = rss_bytes()
        del block
        assert rss_bytes() > held - BLOCK // 2  # freed, but kept in the process
    assert rss_bytes() < held - BLOCK // 2  # malloc_trim handed it back


@needs_glibc
def test_nested_blocks_restore_only_at_the_outermost():
    with cpu_heap("reuse"):
        with cpu_heap("reuse") as inner:
            assert inner
        blocks_faulted()
        assert blocks_faulted() < 1  # still reusing after the inner block ended
    assert heap._depth == 0


def test_release_and_foreign_settings_leave_the_allocator_alone(monkeypatch):
    assert why_unchanged("release") == "training.cpu_memory=release"
    with cpu_heap("release") as changed:
        assert not changed
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    if heap.glibc() is not None:
        assert "MALLOC_TRIM_THRESHOLD_" in why_unchanged("reuse")
    with cpu_heap("reuse") as changed:
        assert not changed  # the user's own glibc settings win
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setattr(heap.platform, "libc_ver", lambda *a, **k: ("musl", "1.2"))
    assert "not glibc" in why_unchanged("reuse")
    with cpu_heap("reuse") as changed:
        assert not changed
    with pytest.raises(ValueError, match="choose from"):
        why_unchanged("keep")


def test_training_config_checks_the_mode():
    assert TrainingConfig().cpu_memory == "reuse"
    with pytest.raises(ConfigError, match="cpu_memory"):
        TrainingConfig(cpu_memory="keep")
