import gc
import json

import numpy as np
import pytest

from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.evaluation.gallery import Gallery, GalleryConfig


def _embeddings(n: int = 437, dim: int = 13, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_flat_search_finds_each_item_first_with_cosine_one():
    embeddings = _embeddings()
    ids = np.array([f"img{i:04d}" for i in range(len(embeddings))])
    gallery = Gallery.build(embeddings * 5.0, ids)  # scale must not matter for cosine
    scores, found = gallery.search(embeddings[[3, 100, 436]], k=4)
    assert scores.shape == (3, 4) and found.shape == (3, 4)
    np.testing.assert_array_equal(found[:, 0], ["img0003", "img0100", "img0436"])
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_flat_matches_numpy_cosine():
    embeddings = _embeddings()
    queries = _embeddings(7, seed=1)
    gallery = Gallery.build(embeddings)
    scores, found = gallery.search(queries, k=5)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    expected = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    np.testing.assert_array_equal(found, np.argsort(-expected, axis=1)[:, :5])
    np.testing.assert_allclose(scores, np.sort(expected, axis=1)[:, ::-1][:, :5], atol=1e-5)


def test_build_does_not_modify_the_callers_arrays():
    embeddings = _embeddings()
    before = embeddings.copy()
    gallery = Gallery.build(embeddings)
    gallery.search(embeddings[:3], k=2)
    np.testing.assert_array_equal(embeddings, before)


def test_ivf_with_all_cells_probed_is_exact_and_survives_gc():
    embeddings = _embeddings(600, 16)
    config = GalleryConfig(index_kind="ivf_flat", nlist=8, nprobe=8, n_train=400)
    gallery = Gallery.build(embeddings, config=config)
    gc.collect()  # the quantizer must stay alive with the index
    exact = Gallery.build(embeddings)
    queries = embeddings[:20] + 0.1 * _embeddings(20, 16, seed=3)
    np.testing.assert_array_equal(gallery.search(queries, 10)[1], exact.search(queries, 10)[1])
    assert gallery.config.nlist == 8 and gallery.config.n_train == 400 and gallery.config.dim == 16
    gallery.set_search_parameters(nprobe=1)
    assert gallery.index_.nprobe == 1


def test_hnsw_finds_exact_copies():
    embeddings = _embeddings(300, 12)
    gallery = Gallery.build(embeddings, config=GalleryConfig(index_kind="hnsw", hnsw_m=8, ef_search=32))
    _, found = gallery.search(embeddings[:10], k=1)
    np.testing.assert_array_equal(found[:, 0], np.arange(10))


def test_hnsw_is_built_by_one_add_even_when_flat_rows_go_in_chunks(monkeypatch):
    """A chunked HNSW add builds another (worse) graph; the gallery must equal one add of the normalised rows."""
    import faiss

    from brainkit.evaluation import gallery as module

    embeddings = _embeddings(900, 12)
    monkeypatch.setattr(module, "ADD_CHUNK", 200)  # 5 chunks of normalisation
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # HNSW construction is deterministic on one thread
    try:
        built = Gallery.build(embeddings, config=GalleryConfig(index_kind="hnsw", hnsw_m=8))
        unit = embeddings.copy()
        faiss.normalize_L2(unit)  # the same rounding as the gallery's normalisation
        one = faiss.IndexHNSWFlat(12, 8, faiss.METRIC_INNER_PRODUCT)
        one.add(unit)
        chunked = faiss.IndexHNSWFlat(12, 8, faiss.METRIC_INNER_PRODUCT)
        for start in range(0, 900, 200):
            chunked.add(unit[start : start + 200])
    finally:
        faiss.omp_set_num_threads(threads)
    one.hnsw.efSearch = chunked.hnsw.efSearch = built.index_.hnsw.efSearch  # a search setting, stored too
    as_bytes = faiss.serialize_index
    assert np.array_equal(as_bytes(one), as_bytes(built.index_))
    assert not np.array_equal(as_bytes(chunked), as_bytes(one))  # the difference the single add avoids


@pytest.mark.parametrize("kind", ["flat", "ivf_flat", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    embeddings = _embeddings(500, 9)
    config = GalleryConfig(index_kind=kind, nlist=4, nprobe=2)
    gallery = Gallery.build(embeddings, ids=np.arange(1000, 1500), config=config)
    folder = gallery.save(tmp_path / "gallery")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery"]  # no temporary folder left
    loaded = Gallery.load(folder)
    assert loaded.config == gallery.config and len(loaded) == 500
    queries = _embeddings(6, 9, seed=5)
    for got, want in zip(loaded.search(queries, 7), gallery.search(queries, 7)):
        np.testing.assert_array_equal(got, want)
    gallery.save(folder)  # overwriting an existing gallery works
    assert Gallery.load(folder).ids_[0] == 1000


def test_dimension_mismatch_nan_and_k_raise():
    gallery = Gallery.build(_embeddings(20, 13))
    with pytest.raises(DataError, match=r"queries have dimension 12 but the gallery holds 13-d"):
        gallery.search(np.zeros((2, 12), dtype=np.float32))
    queries = np.ones((3, 13), dtype=np.float32)
    queries[1, 4] = np.nan
    with pytest.raises(DataError, match=r"queries contain NaN or inf \(rows \[1\]"):
        gallery.search(queries, k=2)
    with pytest.raises(DataError, match=r"k is 21 but the gallery holds 20 items"):
        gallery.search(np.ones((1, 13)), k=21)
    with pytest.raises(DataError, match=r"ids has shape \(3,\); expected \(20,\)"):
        Gallery.build(_embeddings(20, 13), ids=[1, 2, 3])
    with pytest.raises(ConfigError, match=r"Unknown index_kind 'ivf'"):
        GalleryConfig(index_kind="ivf")


def test_missing_and_truncated_files_raise(tmp_path):
    with pytest.raises(FileFormatError, match=r"does not exist"):
        Gallery.load(tmp_path / "nowhere")
    folder = Gallery.build(_embeddings(50, 8)).save(tmp_path / "g")
    index_bytes = (folder / "index.faiss").read_bytes()
    (folder / "index.faiss").write_bytes(index_bytes[: len(index_bytes) // 2])
    with pytest.raises(FileFormatError, match=r"index.faiss is truncated or not a faiss index"):
        Gallery.load(folder)
    (folder / "index.faiss").write_bytes(index_bytes)
    ids_bytes = (folder / "ids.npy").read_bytes()
    (folder / "ids.npy").write_bytes(ids_bytes[:60])
    with pytest.raises(FileFormatError, match=r"ids.npy is truncated"):
        Gallery.load(folder)
    (folder / "ids.npy").write_bytes(ids_bytes)
    record = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**record, "n_items": 49}))
    with pytest.raises(FileFormatError, match=r"inconsistent: config says 49 items"):
        Gallery.load(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileFormatError, match=r"has no config.json"):
        Gallery.load(folder)
