"""Build movie_surface_like and measure how much stimulus signal it holds: build time (cold / cached), the
test-retest reliability over the repeated segment, and a ridge-regression baseline under SIM's protocol.

    python bench/bench_movie_surface_like.py                  # cpu_small (first build embeds: a few minutes)
    python bench/bench_movie_surface_like.py --preset testing

Baseline: the fMRI sample at frame t (frames t, t+1, t+2 averaged over time, at the cortical vertices of the
order-4 icosphere, the first 2,562) is mapped by ridge regression (alpha picked on one held-out training
subject, one eigendecomposition for all alphas) to the standardised features of
clip t - 6; fitted on the first 3/4 of the subjects, tested on the others (unseen subjects), both runs; the
retrieval among 32 candidates (soft and hard negatives, SIM's protocol) uses brainkit.evaluation.clip_retrieval.
A trained SIM model should do better than this linear baseline; chance is 1/32 = 3.1 %.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from brainkit.data.builtin.movie_surface_like import load_movie_surface_like
from brainkit.errors import DataError
from brainkit.evaluation.clip_retrieval import clip_retrieval, summarise
from brainkit.surface import n_vertices


def samples(data, subject: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (n, n_features), clip index (n,), run (n,)) of every fMRI sample paired with a movie clip."""
    xs, clips, runs = [], [], []
    n_frames = data.fmri.shape[2]
    keep = data.cortex[: n_vertices(min(data.order, 4))]
    for r in range(len(data.runs)):
        frames = data.fmri[subject, r][:, : len(keep)][:, keep]
        for t in range(data.lag, n_frames - 2):
            c = t - data.lag
            if data.segment_of[r, c] >= 0:
                xs.append(frames[t : t + 3].mean(axis=0))
                clips.append(c)
                runs.append(r)
    return np.array(xs), np.array(clips), np.array(runs)


def ridge_path(x: np.ndarray, y: np.ndarray, alphas) -> tuple[list[np.ndarray], np.ndarray]:
    """Primal ridge weights (n_features, d) for every alpha from one eigendecomposition of X^T X."""
    mean = x.mean(axis=0)
    xc = x - mean
    values, vectors = np.linalg.eigh(xc.T @ xc)
    projected = vectors.T @ (xc.T @ y)
    return [vectors @ (projected / (values + alpha)[:, None]) for alpha in alphas], mean


def stack(data, subjects, features) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for s in subjects:
        x, clips, runs = samples(data, s)
        xs.append(x)
        ys.append(features[runs, clips])
    return np.concatenate(xs), np.concatenate(ys)


def retrieval(data, subjects, weights, mean, features, kind: str) -> dict:
    rows = []
    for s in subjects:
        x, clips, runs = samples(data, s)
        for r in range(len(data.runs)):
            keep = runs == r
            predicted = np.zeros((data.segment_of.shape[1], features.shape[-1]))
            predicted[clips[keep]] = (x[keep] - mean) @ weights
            targets = clips[keep]
            rows.append(clip_retrieval(predicted, features[r], data.segment_of[r], targets, kind, seed=s))
    return summarise(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="cpu_small")
    parser.add_argument("--cache-dir", default=None, help="default: $BRAINKIT_CACHE or ~/.cache/brainkit")
    parser.add_argument("--cold", action="store_true", help="rebuild in a fresh cache (embeds everything)")
    args = parser.parse_args()
    cache = tempfile.mkdtemp() if args.cold else args.cache_dir
    start = time.perf_counter()
    data = load_movie_surface_like(args.preset, cache_dir=cache, rebuild=True)
    built = time.perf_counter() - start
    start = time.perf_counter()
    data = load_movie_surface_like(args.preset, cache_dir=cache)
    reread = time.perf_counter() - start
    print(
        f"preset {args.preset}: fmri {data.fmri.shape}, build {built:.1f} s (encoders cached unless --cold), read back {reread:.2f} s"
    )
    print("test-retest:", {k: round(v, 3) for k, v in data.info["test_retest"].items()})
    print("snr:", {k: round(v, 2) for k, v in data.info["snr"].items()})
    n = len(data.subjects)
    train, test = list(range(max(1, 3 * n // 4))), list(range(max(1, 3 * n // 4), n))
    for role in ("video", "audio"):
        features = getattr(data, role)
        movie = features[data.segment_of >= 0]
        features = (features - movie.mean(axis=0)) / (movie.std(axis=0) + 1e-8)
        fit, held = train[:-1] if len(train) > 1 else train, train[-1:]
        alphas = (1e1, 1e2, 1e3, 1e4, 1e5)
        path, mean = ridge_path(*stack(data, fit, features), alphas)
        scores = [retrieval(data, held, w, mean, features, "soft")["top1_mean"] for w in path]
        alpha = alphas[int(np.argmax(scores))]
        (weights,), mean = ridge_path(*stack(data, train, features), (alpha,))
        for kind in ("soft", "hard"):
            try:
                result = retrieval(data, test, weights, mean, features, kind)
            except DataError as err:  # the testing preset's segments are too short for 31 hard negatives
                print(f"ridge fMRI->{role} ({kind} negatives): not possible here ({err})")
                continue
            print(
                f"ridge fMRI->{role} ({kind} negatives, unseen subjects, alpha {alpha:g}): top-1 "
                f"{100 * result['top1_mean']:.1f} +- {100 * result['top1_sd']:.1f} %, top-5 "
                f"{100 * result['top5_mean']:.1f} %, top-10 {100 * result['top10_mean']:.1f} % (chance 3.1 / 15.6 / 31.2)"
            )


if __name__ == "__main__":
    main()
