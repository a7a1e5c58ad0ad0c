"""Benchmark the FAISS gallery: build time, memory, query latency and recall of IVF against exact search.

    python bench/bench_gallery.py                      # 1,000,000 x 768, 1,000 + 1,000 queries (~3-5 min, 2 cores)
    python bench/bench_gallery.py --n-items 100000 --dim 128   # a quick run
    python bench/bench_gallery.py --n-items 100000 --dim 128 --hnsw   # + HNSW: one add vs 65,536-row chunks

The gallery is random Gaussian vectors (cosine metric). Two query sets of ``--n-queries`` each:
``noisy`` = a gallery item plus Gaussian noise of the same norm (cosine ~0.71 to its source, so every query has
a true nearest neighbour), and ``random`` = fresh random vectors (no structure: the worst case for IVF). Exact
flat search on the same data in the same run is the ground truth for recall@k. Random high-dimensional data has
no cluster structure, so IVF recall there is a pessimistic bound for real (clustered) CLIP embeddings;
``--n-clusters C`` draws the gallery instead around C random centres (item = centre + noise of the same norm,
so items of one cluster have cosine ~0.5), which is closer to real embeddings.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from datetime import UTC, datetime

import faiss
import numpy as np

from brainkit.evaluation.gallery import Gallery, GalleryConfig


def rss_gib() -> float:
    """Resident memory of this process (Linux /proc), GiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def random_rows(rng: np.random.Generator, n_rows: int, dim: int, chunk: int = 65536) -> np.ndarray:
    """(n_rows, dim) float32 standard normal, filled chunk by chunk (no float64 temporary)."""
    out = np.empty((n_rows, dim), dtype=np.float32)
    for start in range(0, n_rows, chunk):
        out[start : start + chunk] = rng.standard_normal((min(chunk, n_rows - start), dim), dtype=np.float32)
    return out


def latency(gallery: Gallery, queries: np.ndarray, k: int, n_single: int) -> tuple[float, float]:
    """(batch ms/query, median single-query ms)."""
    started = time.perf_counter()
    gallery.search(queries, k)
    batch = (time.perf_counter() - started) * 1000 / len(queries)
    singles = []
    for row in queries[:n_single]:
        started = time.perf_counter()
        gallery.search(row[None], k)
        singles.append((time.perf_counter() - started) * 1000)
    return batch, float(np.median(singles))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the exact top-k that the approximate search also returned."""
    k = truth.shape[1]
    return float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(found, truth)]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--n-queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--n-train", type=int, default=None, help="IVF training sample (default 64 * nlist)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--n-single", type=int, default=100, help="queries timed one at a time")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-clusters", type=int, default=0, help="0: isotropic Gaussian gallery")
    parser.add_argument(
        "--hnsw", action="store_true", help="also HNSW: the gallery's one add vs chunked adds"
    )
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--no-ivf", action="store_true")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    run_started = time.perf_counter()

    print(
        f"# bench_gallery {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}"
    )
    print(f"# faiss {faiss.__version__}, {args.threads} threads, os.cpu_count()={os.cpu_count()}, "
          f"loadavg at start {os.getloadavg()}")  # fmt: skip
    started = time.perf_counter()
    items = random_rows(rng, args.n_items, args.dim)
    if args.n_clusters:
        centres = random_rows(rng, args.n_clusters, args.dim)
        assignment = rng.integers(args.n_clusters, size=args.n_items)
        for start in range(0, args.n_items, 65536):
            items[start : start + 65536] += centres[assignment[start : start + 65536]]
    sources = rng.choice(args.n_items, size=args.n_queries, replace=False)
    picked = items[sources] / np.linalg.norm(items[sources], axis=1, keepdims=True)
    noise = rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(args.dim, dtype=np.float32)
    query_sets = {"noisy": picked + noise, "random": random_rows(rng, args.n_queries, args.dim)}
    kind = f"{args.n_clusters:,} clusters" if args.n_clusters else "isotropic"
    print(f"data: {args.n_items:,} x {args.dim} float32, {kind} ({items.nbytes / 2**30:.2f} GiB) in "
          f"{time.perf_counter() - started:.1f} s; RSS {rss_gib():.2f} GiB")  # fmt: skip

    rows = []
    base_rss = rss_gib()
    started = time.perf_counter()
    flat = Gallery.build(items)
    flat_build = time.perf_counter() - started
    flat_mem = rss_gib() - base_rss
    truth = {}
    for name, queries in query_sets.items():
        _, truth[name] = flat.search(queries, args.k)
    batch_ms, single_ms = latency(flat, query_sets["noisy"], args.k, max(1, args.n_single // 10))
    source_found = float(np.mean(truth["noisy"][:, 0] == sources))
    rows.append(("flat (exact)", "-", flat_build, flat_mem, batch_ms, single_ms, 1.0, 1.0, source_found))
    del flat

    if args.hnsw:
        rows += hnsw_rows(items, query_sets, truth, sources, args)
    if not args.no_ivf:
        rows += ivf_rows(items, query_sets, truth, sources, args)
    print_table(rows, args.k)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\n# loadavg at end {os.getloadavg()}; peak RSS {peak:.2f} GiB; total wall "
          f"{time.perf_counter() - run_started:.0f} s")  # fmt: skip


def hnsw_rows(items, query_sets, truth, sources, args) -> list[tuple]:
    """The gallery's HNSW (one add of the whole normalised gallery) and, in the same run, the same index built
    by adding ``ADD_CHUNK``-row chunks (what the gallery did before), at each ``--ef-search``."""
    from brainkit.evaluation.gallery import ADD_CHUNK

    rows = []
    base_rss = rss_gib()
    started = time.perf_counter()
    one = Gallery.build(items, config=GalleryConfig(index_kind="hnsw", hnsw_m=args.hnsw_m))
    one_build, one_mem = time.perf_counter() - started, rss_gib() - base_rss
    started = time.perf_counter()
    chunked = faiss.IndexHNSWFlat(args.dim, args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    for start in range(0, len(items), ADD_CHUNK):
        part = np.ascontiguousarray(items[start : start + ADD_CHUNK], dtype=np.float32).copy()
        faiss.normalize_L2(part)
        chunked.add(part)
    chunked_build = time.perf_counter() - started
    chunked_gallery = Gallery(one.config, chunked, one.ids_)
    print(f"hnsw M={args.hnsw_m}: one add {one_build:.1f} s, {ADD_CHUNK:,}-row chunks {chunked_build:.1f} s")
    for ef in args.ef_search:
        for name, gallery, build, mem in (("hnsw one add", one, one_build, one_mem),
                                          (f"hnsw {ADD_CHUNK}-row chunks", chunked_gallery, chunked_build, float("nan"))):  # fmt: skip
            gallery.set_search_parameters(ef_search=ef)
            found = {key: gallery.search(queries, args.k)[1] for key, queries in query_sets.items()}
            batch_ms, single_ms = latency(gallery, query_sets["noisy"], args.k, args.n_single)
            rows.append((
                f"{name} M={args.hnsw_m}", f"ef={ef}", build, mem, batch_ms, single_ms,
                recall(found["noisy"], truth["noisy"]), recall(found["random"], truth["random"]),
                float(np.mean(found["noisy"][:, 0] == sources)),
            ))  # fmt: skip
    return rows


def ivf_rows(items, query_sets, truth, sources, args) -> list[tuple]:
    """IVF at each ``--nprobe``."""
    rows = []
    base_rss = rss_gib()
    config = GalleryConfig(index_kind="ivf_flat", nlist=args.nlist, n_train=args.n_train, seed=args.seed)
    started = time.perf_counter()
    ivf = Gallery.build(items, config=config)
    ivf_build = time.perf_counter() - started
    ivf_mem = rss_gib() - base_rss
    print(
        f"ivf_flat: nlist {ivf.config.nlist}, trained on {ivf.config.n_train:,} rows, built in {ivf_build:.1f} s"
    )
    for nprobe in args.nprobe:
        ivf.set_search_parameters(nprobe=nprobe)
        found = {name: ivf.search(queries, args.k)[1] for name, queries in query_sets.items()}
        batch_ms, single_ms = latency(ivf, query_sets["noisy"], args.k, args.n_single)
        rows.append((
            f"ivf_flat nlist={ivf.config.nlist}", nprobe, ivf_build, ivf_mem, batch_ms, single_ms,
            recall(found["noisy"], truth["noisy"]), recall(found["random"], truth["random"]),
            float(np.mean(found["noisy"][:, 0] == sources)),
        ))  # fmt: skip
    return rows


def print_table(rows: list[tuple], k: int) -> None:
    print()
    print(f"| index | nprobe / ef | build s | memory GiB | batch ms/query | single ms/query | recall@{k} noisy "
          f"| recall@{k} random | source found @1 (noisy) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, nprobe, build, mem, batch_ms, single_ms, r_noisy, r_random, found1 in rows:
        print(f"| {name} | {nprobe} | {build:.1f} | {mem:.2f} | {batch_ms:.3f} | {single_ms:.2f} | "
              f"{r_noisy:.3f} | {r_random:.3f} | {found1:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
