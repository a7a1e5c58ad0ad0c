"""Rows on disk read on demand (brainkit.data.disk_rows) and NSD's streamed subjects (load_nsd(store=...)): the same
values, statistics and training as the in-memory path, bit for bit."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from nsd_fixture import write_nsd_fixture

from brainkit.data.disk_rows import DiskRows, RowWriter, Standardized, row_blocks, stored_rows
from brainkit.data.readers.nsd import load_nsd
from brainkit.data.schema import BrainSamples
from brainkit.data.transforms import Standardizer
from brainkit.errors import DataError, FileFormatError


def _write(path, values):
    with RowWriter(path, *values.shape) as writer:
        for start in range(0, len(values), 7):
            writer.write(start, values[start : start + 7])
    return DiskRows(path)


def test_disk_rows_read_what_was_written(tmp_path):
    values = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    rows = _write(tmp_path / "x.npy", values)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), values)  # a plain .npy
    assert rows.shape == (40, 5) and len(rows) == 40 and rows.ndim == 2
    np.testing.assert_array_equal(rows[3], values[3])
    np.testing.assert_array_equal(rows[5:17], values[5:17])
    picked = np.array([39, 0, 1, 2, 20, 21, 5, -1])  # unsorted, runs and a negative index
    np.testing.assert_array_equal(rows[picked], values[picked])
    mask = values[:, 0] > 0
    np.testing.assert_array_equal(rows[mask], values[mask])
    subset = rows.select(mask)  # lazy, then indexed again
    np.testing.assert_array_equal(subset[[2, 0]], values[mask][[2, 0]])
    np.testing.assert_array_equal(np.asarray(subset), values[mask])
    with pytest.raises(IndexError):
        rows[np.array([40])]
    with pytest.raises(DataError, match="rows only"):
        rows[1, 2]


def test_writer_refuses_bad_rows_and_leaves_nothing(tmp_path):
    path = tmp_path / "x.npy"
    with pytest.raises(DataError, match="NaN or inf"), RowWriter(path, 4, 2) as writer:
        writer.write(0, np.array([[1, 2], [np.nan, 0]], np.float32))
    with pytest.raises(DataError, match="never written"), RowWriter(path, 4, 2) as writer:
        writer.write(0, np.ones((2, 2), np.float32))
    with pytest.raises(RuntimeError), RowWriter(path, 4, 2) as writer:
        writer.write(0, np.ones((4, 2), np.float32))
        raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []
    _write(path, np.ones((4, 2), np.float32))
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 4)
    with pytest.raises(FileFormatError, match="truncated"):
        DiskRows(path)


def test_standardizer_and_averages_are_the_same_on_disk_and_in_memory(tmp_path):
    rng = np.random.default_rng(1)
    values = (rng.normal(size=(2500, 6)) * [1, 2, 3, 0, 5, 1e-3] + 7).astype(np.float32)  # three blocks
    rows = _write(tmp_path / "x.npy", values)
    assert [start for start, _ in row_blocks(rows)] == [0, 1024, 2048]
    memory, disk = Standardizer().fit(values), Standardizer().fit(rows)
    np.testing.assert_array_equal(memory.mean_, disk.mean_)
    np.testing.assert_array_equal(memory.scale_, disk.scale_)
    np.testing.assert_allclose(memory.mean_, values.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(memory.scale_[[0, 1, 2, 4]], values.std(0)[[0, 1, 2, 4]], rtol=1e-5)
    assert memory.scale_[3] == 1.0  # constant: scale 1, never NaN
    lazy = disk.transform(rows)
    assert isinstance(lazy, Standardized) and lazy.shape == values.shape
    np.testing.assert_array_equal(lazy[[9, 3]], memory.transform(values)[[9, 3]])

    ids = np.array([f"s{i % 300}" for i in range(2500)])
    in_memory = BrainSamples("a", values, ids, "v").average_repeats()
    on_disk = BrainSamples("a", rows, ids, "v")
    assert isinstance(on_disk.select(ids != "s1").values, DiskRows)
    np.testing.assert_array_equal(on_disk.average_repeats().values, in_memory.values)


def test_stored_rows_are_reused_until_their_key_changes(tmp_path):
    calls = []

    def fill(writer):
        calls.append(1)
        writer.write(0, np.full((3, 2), len(calls), np.float32))
        return {"note": len(calls)}

    rows, kept = stored_rows(tmp_path, "a", {"file": "x", "size": 1}, (3, 2), fill)
    again, kept_again = stored_rows(tmp_path, "a", {"file": "x", "size": 1}, (3, 2), fill)
    assert calls == [1] and kept == kept_again == {"note": 1} and again[0].tolist() == [1, 1]
    changed, kept = stored_rows(tmp_path, "a", {"file": "x", "size": 2}, (3, 2), fill)
    assert calls == [1, 1] and kept == {"note": 2} and changed[0].tolist() == [2, 2]
    assert json.loads((tmp_path / "a.json").read_text())["key"] == {"file": "x", "size": 2}


def test_nsd_streamed_from_disk_equals_in_memory(tmp_path):
    write_nsd_fixture(tmp_path / "nsd", subjects=(1, 2))
    options = dict(subjects=["subj01", "subj02"], image_size=None)
    memory = load_nsd(tmp_path / "nsd", **options)
    streamed = load_nsd(tmp_path / "nsd", **options, store=tmp_path / "store")
    for subject in ("subj01", "subj02"):
        assert isinstance(streamed.train[subject].values, DiskRows)
        np.testing.assert_array_equal(
            np.asarray(streamed.train[subject].values), memory.train[subject].values
        )
        np.testing.assert_array_equal(streamed.test[subject].values, memory.test[subject].values)
        assert streamed.train[subject].stimulus_ids.tolist() == memory.train[subject].stimulus_ids.tolist()
    assert streamed.info["invalid_values"] == memory.info["invalid_values"]
    files = sorted(p.name for p in (tmp_path / "store").iterdir())
    assert len(files) == 4 and all(f.startswith("nsd-subj0") for f in files)
    stamp = [(tmp_path / "store" / f).stat().st_mtime_ns for f in files]
    load_nsd(tmp_path / "nsd", **options, store=tmp_path / "store")  # reused, not rebuilt
    assert [(tmp_path / "store" / f).stat().st_mtime_ns for f in files] == stamp
    raw = load_nsd(
        tmp_path / "nsd", **options, zscore=False, store=tmp_path / "store"
    )  # other options: new files
    assert len(list((tmp_path / "store").iterdir())) == 8
    np.testing.assert_array_equal(
        np.asarray(raw.train["subj01"].values),
        load_nsd(tmp_path / "nsd", **options, zscore=False).train["subj01"].values,
    )


def test_precomputed_embeddings_become_targets(tmp_path):
    write_nsd_fixture(tmp_path / "nsd")
    table = np.random.default_rng(2).normal(size=(73000, 3)).astype(np.float32)
    np.save(tmp_path / "clip.npy", table)
    data = load_nsd(tmp_path / "nsd", image_size=None, embeddings={"clip": tmp_path / "clip.npy"})
    np.testing.assert_array_equal(data.stimuli.embedding("clip"), table[data.info["nsd_id"]])
    np.save(tmp_path / "short.npy", table[:5])
    with pytest.raises(DataError, match="one row per NSD image"):
        load_nsd(tmp_path / "nsd", image_size=None, embeddings={"clip": tmp_path / "short.npy"})


def test_lite_mind_trains_the_same_streamed_or_in_memory(tmp_path):
    """One Lite-Mind run on NSD's layout with the betas in memory, one streamed from disk: the same history,
    metrics and decoded test embeddings, bit for bit."""
    from brainkit import load
    from brainkit.recipes import run_recipe
    from brainkit.training import read_history

    write_nsd_fixture(tmp_path / "nsd")
    root = tmp_path / "nsd"
    test_rows = load_nsd(root, image_size=None).test["subj01"].values
    results = {}
    for name, store in (("memory", "null"), ("disk", str(tmp_path / "store"))):
        overrides = ["data.name=nsd", f"data.options={{root: {root}, image_size: 16, store: {store}}}",
                     "data.subject=subj01", "data.val_fraction=0", "data.encoder_options={dim: 6, grid: 2}",
                     "training.batch_size=3", "training.epochs=2", "evaluation.n_way=2",
                     "evaluation.top_k=[1, 2]"]  # fmt: skip
        run = run_recipe("lite_mind", preset="testing", overrides=overrides, folder=tmp_path / name)
        history = [
            {k: v for k, v in r.items() if k != "seconds"}
            for r in read_history(tmp_path / name / "lite_mind")
        ]
        results[name] = (run.metrics, history, load(tmp_path / name).predict(test_rows))
    assert len(results["memory"][1]) > 0
    assert results["memory"][1] == results["disk"][1]
    assert results["memory"][0] == results["disk"][0]
    np.testing.assert_array_equal(results["memory"][2], results["disk"][2])
