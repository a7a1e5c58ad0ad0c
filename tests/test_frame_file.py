"""SIM's frames streamed from disk (brainkit.data.frame_file): the run-by-run build of fmri.npy, windows read
from the file equal to the in-memory array's, and a short SIM fit with identical losses either way, with the
file's pages never mapped into the process."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch
from sim_fixture import synthetic_movie_data

from brainkit.data import movie_samples as ms
from brainkit.data.frame_file import ArrayFrames, FrameFile, FrameWriter, frame_source
from brainkit.errors import DataError


@pytest.fixture(scope="module")
def movie():
    return synthetic_movie_data(n_subjects=4, n_runs=2)


@pytest.fixture(scope="module")
def on_disk(movie, tmp_path_factory):
    """The movie's fmri written run by run with FrameWriter (subjects in reverse order), then memory-mapped."""
    path = tmp_path_factory.mktemp("frames") / "fmri.npy"
    writer = FrameWriter(path, movie.fmri.shape, np.float32)
    for s in reversed(range(movie.fmri.shape[0])):
        for r in range(movie.fmri.shape[1]):
            writer.write(s, r, movie.fmri[s, r])
    return np.load(path, mmap_mode="r")


def _resident_kib(path) -> int | None:
    """Resident memory (KiB) of this process's mappings of ``path`` (/proc/self/smaps); None off Linux."""
    try:
        lines = open("/proc/self/smaps").read().splitlines()
    except OSError:
        return None
    total, inside = 0, False
    for line in lines:
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            inside = line.endswith(str(path))
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_writer_builds_the_file_run_by_run_with_padding(tmp_path) -> None:
    shape = (3, 2, 7, 5)  # unequal sizes: a swapped axis cannot pass
    rng = np.random.default_rng(0)
    expected = np.zeros(shape, dtype=np.float32)
    writer = FrameWriter(tmp_path / "fmri.npy", shape)
    for s, r, n in ((2, 1, 7), (0, 0, 4), (1, 1, 7), (0, 1, 6)):  # any order; short runs padded with 0
        frames = rng.standard_normal((n, 5)).astype(np.float32)
        writer.write(s, r, frames)
        expected[s, r, :n] = frames
    loaded = np.load(tmp_path / "fmri.npy")
    assert loaded.dtype == np.float32 and loaded.shape == shape
    np.testing.assert_array_equal(loaded, expected)
    with pytest.raises(DataError, match=r"frames of shape \(8, 5\) for a run of at most \(7, 5\)"):
        writer.write(0, 0, np.zeros((8, 5)))
    with pytest.raises(DataError, match=r"\(subject 3, run 0\) outside \(3, 2\)"):
        writer.write(3, 0, np.zeros((7, 5)))


def test_file_windows_equal_the_array_windows(movie, on_disk) -> None:
    source = frame_source(on_disk)
    assert isinstance(source, FrameFile) and source.shape == movie.fmri.shape
    assert isinstance(frame_source(movie.fmri), ArrayFrames)
    assert isinstance(frame_source(on_disk[:2]), ArrayFrames)  # a view of the map: not the whole file
    subject, run, first = np.array([3, 0, 1, 3]), np.array([1, 0, 1, 0]), np.array([0, 17, 240, 9])
    read = source.windows(subject, run, first, 3)
    assert read.shape == (4, 3, movie.fmri.shape[3]) and not isinstance(read, np.memmap)
    frames = first[:, None] + np.arange(3)
    np.testing.assert_array_equal(read, movie.fmri[subject[:, None], run[:, None], frames])
    n_total = movie.fmri.shape[2]
    with pytest.raises(DataError, match=f"frame window 1 .*frames {n_total - 2}..{n_total}.* lies outside"):
        source.windows([0, 1], [0, 0], [0, n_total - 2], 3)
    with pytest.raises(DataError, match="subject 4, run 0"):
        ArrayFrames(movie.fmri).windows([4], [0], [0], 3)


def test_streamed_batches_equal_in_memory_batches(movie, on_disk) -> None:
    patches = np.array([[0, 1, 2], [2, 3, 6], [4, 5, 6], [1, 5, 0]])
    keys = ms.content_keys(movie.retest)
    usable = ms.usable_clips(movie.segment_of, movie.fmri.shape[2], 6, 3)
    clips = ms.split_clips(movie.segment_of, usable, 5)
    draw = ms.BatchDraw(keys, np.array([0, 2, 3]), clips["train"])
    memory = ms.MovieArrays(movie.fmri, patches, movie.video, movie.audio, keys, 6, 3)
    disk = ms.MovieArrays(on_disk, patches, movie.video, movie.audio, keys, 6, 3)
    assert isinstance(disk.fmri, FrameFile) and isinstance(memory.fmri, ArrayFrames)
    for batch in draw(torch.Generator().manual_seed(0), 8)[:5]:
        assert torch.equal(memory.clips(batch), disk.clips(batch))
    pool = ms.samples_of(np.array([1]), clips["held_out"])
    np.testing.assert_array_equal(memory.frames(pool), disk.frames(pool))


def _fit(movie, fmri, steps: int = 4):
    from brainkit.models.sit import PRESETS as SIT_PRESETS
    from brainkit.recipes.sim import PRESETS, build_sim, sim_task
    from brainkit.surface import triangle_patches
    from brainkit.training import TrainingConfig, train

    patches = np.asarray(triangle_patches(int(movie.order), 1))
    encoder = dataclasses.replace(
        SIT_PRESETS["testing"], n_patches=len(patches), n_patch_vertices=patches.shape[1]
    )
    usable = ms.usable_clips(movie.segment_of, movie.fmri.shape[2], 6, 3)
    clips = ms.split_clips(movie.segment_of, usable, 5)
    arrays = ms.MovieArrays(fmri, patches, movie.video, movie.audio, ms.content_keys(movie.retest), 6, 3)
    monitor = ms.samples_of(np.array([3]), clips["train"])[::7][:16]
    split = {"arrays": arrays, "groups": {"train": np.array([0, 1, 2])}, "clips": clips, "monitor": monitor}
    torch.manual_seed(0)
    model = build_sim(PRESETS["testing"], encoder, movie.video.shape[-1], movie.audio.shape[-1])
    task = sim_task(PRESETS["testing"], model, split, pretrained=False)
    config = TrainingConfig(
        steps=steps, batch_size=8, lr=3e-3, warmup_steps=1, validate_every=2, progress=False
    )
    result = train(task, config)
    return task, result.history


def test_a_short_fit_on_the_file_equals_the_in_memory_fit(movie, on_disk, tmp_path, one_torch_thread) -> None:
    import shutil

    from brainkit.evaluation.movie_retrieval import RidgeBaseline, embed_fmri

    memory, history = _fit(movie, movie.fmri)
    path = shutil.copy(on_disk.filename, tmp_path / "fmri.npy")  # a map no other test touched
    mapped = np.load(path, mmap_mode="r")
    before = _resident_kib(path)
    disk, streamed = _fit(movie, mapped)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in streamed]
    assert {"train_loss", "monitor_loss"} <= set(strip[-1])
    for key, value in memory.model.state_dict().items():
        assert torch.equal(value, disk.model.state_dict()[key]), key
    samples = disk.monitor
    np.testing.assert_array_equal(embed_fmri(memory.model, memory.arrays, samples),
                                  embed_fmri(disk.model, disk.arrays, samples))  # fmt: skip
    ridge = [
        RidgeBaseline(t.arrays, movie.cortex, 10.0).fit(samples).predict(samples) for t in (memory, disk)
    ]
    np.testing.assert_array_equal(ridge[0]["video"], ridge[1]["video"])
    if sys.platform.startswith("linux"):  # the batches were read from the file, not through the map
        assert before == 0 and _resident_kib(path) == 0
