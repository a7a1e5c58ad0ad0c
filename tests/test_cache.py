"""The embedding cache: reuse, content-keyed invalidation, atomic writes, damaged entries, defaults."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from brainkit.data.schema import Stimuli
from brainkit.errors import ConfigError, DataError
from brainkit.stimuli import cache as cache_module
from brainkit.stimuli.cache import default_cache_dir, embed_stimuli
from brainkit.stimuli.encoders import HashedWords, PixelProjection


@pytest.fixture
def calls(monkeypatch):
    """Count the stimuli each weight-free encoder really embeds."""
    counts = {"image": 0, "text": 0}
    image_encode, text_encode = PixelProjection._encode, HashedWords._encode

    def count_images(self, batch):
        counts["image"] += len(batch)
        return image_encode(self, batch)

    def count_texts(self, batch):
        counts["text"] += len(batch)
        return text_encode(self, batch)

    monkeypatch.setattr(PixelProjection, "_encode", count_images)
    monkeypatch.setattr(HashedWords, "_encode", count_texts)
    return counts


def make_stimuli(n: int = 7) -> Stimuli:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 9, 8, 3), dtype=np.uint8)
    labels = [f"label {i % 3}" for i in range(n)]
    return Stimuli(ids=[f"s{i}" for i in range(n)], images=images, labels=labels)


def test_second_call_reads_the_cache(tmp_path, calls):
    stimuli = make_stimuli()
    first = embed_stimuli(stimuli, "pixel_projection", cache_dir=tmp_path, batch_size=3, dim=5)
    assert first.shape == (7, 5) and calls["image"] == 7
    again = embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    assert calls["image"] == 7 and np.array_equal(first, again)
    assert np.array_equal(stimuli.embeddings["pixel_projection"], first)
    assert not list(tmp_path.rglob("*.tmp"))


def test_other_settings_get_other_entries(tmp_path, calls):
    embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5, seed=1)
    assert calls["image"] == 14
    assert len(list((tmp_path / "embeddings").iterdir())) == 2


def test_a_changed_image_is_recomputed_not_served_stale(tmp_path, calls):
    stimuli = make_stimuli()
    before = embed_stimuli(stimuli, "pixel_projection", cache_dir=tmp_path, dim=5)
    changed = make_stimuli()
    changed.images[2] = 255 - changed.images[2]
    after = embed_stimuli(changed, "pixel_projection", cache_dir=tmp_path, dim=5)
    assert calls["image"] == 8  # 7, then only the changed one
    assert np.array_equal(np.delete(before, 2, 0), np.delete(after, 2, 0)) and not np.allclose(
        before[2], after[2]
    )


def test_repeated_labels_are_embedded_once(tmp_path, calls):
    vectors = embed_stimuli(make_stimuli(), "hashed_words", cache_dir=tmp_path, dim=6)
    assert calls["text"] == 3 and np.array_equal(vectors[0], vectors[3])


def test_damaged_entry_is_logged_and_recomputed(tmp_path, calls, caplog):
    first = embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    entries = sorted(tmp_path.rglob("*.npy"))
    data = entries[0].read_bytes()
    entries[0].write_bytes(data[: len(data) // 2])  # truncated
    cache_module._atomic_save_entry(entries[1], np.zeros(3, dtype=np.float32))  # wrong shape, valid digest
    with caplog.at_level(logging.WARNING, logger="brainkit.stimuli.cache"):
        again = embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    assert calls["image"] == 9 and np.array_equal(first, again)
    assert "damaged" in caplog.text and "expected float32 (5,)" in caplog.text


def test_a_changed_value_does_not_match_its_checksum_and_is_recomputed(tmp_path, calls, caplog):
    first = embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    entries = sorted(tmp_path.rglob("*.sum.npy"))
    assert len(entries) == 7
    np.save(entries[0], np.zeros(5, dtype=np.float32))  # a valid-looking all-zero entry over a valid one
    data = bytearray(entries[1].read_bytes())
    data[-32 - 20 : -32] = bytes(20)  # its values zeroed, its header and digest kept
    entries[1].write_bytes(data)
    data = bytearray(entries[2].read_bytes())
    data[-32 - 1] ^= 0x01  # one bit of one value
    entries[2].write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="brainkit.stimuli.cache"):
        again = embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    assert calls["image"] == 10 and np.array_equal(first, again)
    assert caplog.text.count("does not match its checksum") == 3
    assert not (again == 0).all(axis=1).any()


def test_entries_without_a_checksum_are_not_trusted(tmp_path, calls):
    """Entries of the layout before checksums (``<key>.npy``) are recomputed, never read."""
    first = embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    for entry in tmp_path.rglob("*.sum.npy"):
        np.save(entry.with_name(entry.name.replace(".sum.npy", ".npy")), np.zeros(5, dtype=np.float32))
        entry.unlink()
    again = embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    assert calls["image"] == 14 and np.array_equal(first, again)


def test_an_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    def crash(handle, array, allow_pickle=False):
        handle.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module.np, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        embed_stimuli(make_stimuli(), "pixel_projection", cache_dir=tmp_path, dim=5)
    assert not list(tmp_path.rglob("*.npy")) and not list(tmp_path.rglob("*.tmp"))
    assert list(tmp_path.rglob("encoder.json"))  # the run got as far as writing entries


def test_missing_media_and_bad_batch_size_raise(tmp_path):
    no_images = Stimuli(ids=["a", "b"], labels=["x", "y"])
    with pytest.raises(DataError, match="no images, so an image encoder cannot embed them"):
        embed_stimuli(no_images, "pixel_projection", cache_dir=tmp_path)
    with pytest.raises(DataError, match="no labels"):
        embed_stimuli(Stimuli(ids=["a"]), "hashed_words", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="batch_size must be a positive int, found 0"):
        embed_stimuli(no_images, "hashed_words", cache_dir=tmp_path, batch_size=0)
    with pytest.raises(ConfigError, match="Unknown encoder"):
        embed_stimuli(no_images, "no_such_encoder", cache_dir=tmp_path)


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINKIT_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    embed_stimuli(make_stimuli(3), "hashed_words", dim=4)
    assert list((tmp_path / "here" / "embeddings").glob("hashed_words-*/encoder.json"))
    monkeypatch.delenv("BRAINKIT_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "brainkit")
