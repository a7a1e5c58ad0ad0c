"""SIM's evaluation: 32-candidate clip retrieval per setting (per subject, pooled over runs), retrieval
examples, and patch importance by occlusion.

Retrieval (:mod:`brainkit.evaluation.clip_retrieval`): in each run of each subject, every clip of the setting
is a target; its 31 negatives come from the same run's clips of the setting (soft: other segments, hard: the
same segment; never within 3 s). A target whose pool is too small for 31 negatives of a kind (e.g. the short
test-retest segment's unseen half, for hard negatives) is left out of that kind, and counted. A subject's top-k
pools its runs' targets; the table gives mean and sd over subjects. Candidates are drawn from seeds fixed per
(subject, run), so every model and both directions meet the same candidates: differences are paired.

Occlusion: a patch is set to 0 (the per-frame cortex mean of z-scored data) in all frames of a sample; its
importance is the drop of the cosine similarity between the sample's fMRI embedding and its own clip's video
embedding, averaged over samples.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from brainkit.evaluation.clip_retrieval import clip_retrieval, draw_candidates
from brainkit.recipes.sim_samples import Samples
from brainkit.report.plots import RetrievalGrid

N_CANDIDATES, EXCLUSION, KS = 32, 3, (1, 5, 10)


def eligible_targets(segments: np.ndarray, kind: str) -> np.ndarray:
    """(n_clips,) bool for one run: clips of the pool with at least 31 negatives of ``kind``."""
    clips = np.arange(len(segments))
    valid = segments >= 0
    far = np.abs(clips[:, None] - clips[None]) > EXCLUSION
    same = segments[:, None] == segments[None]
    pool = valid[None] & far & (same if kind == "hard" else ~same)
    return valid & (pool.sum(axis=1) >= N_CANDIDATES - 1)


def retrieval_scores(
    fmri: np.ndarray,
    samples: Samples,
    stimulus: np.ndarray,
    segments: np.ndarray,
    kind: str,
    seed: int,
) -> tuple[list[dict[str, float]], int, int]:
    """Per-subject top-k of one setting: ``fmri`` (len(samples), d) embeddings of the setting's samples,
    ``stimulus`` (n_runs, n_clips, d), ``segments`` (n_runs, n_clips) with -1 outside the setting.

    Returns (one dict per subject, in sorted subject order; targets scored; targets left out)."""
    per_subject, n_scored, n_left = [], 0, 0
    for subject in np.unique(samples.subject):
        hits: dict[str, float] = {}
        total = 0
        for run in np.unique(samples.run[samples.subject == subject]):
            rows = np.flatnonzero((samples.subject == subject) & (samples.run == run))
            full = np.zeros((segments.shape[1], fmri.shape[1]))
            full[samples.clip[rows]] = fmri[rows]
            ok = eligible_targets(segments[run], kind)
            targets = np.intersect1d(samples.clip[rows], np.flatnonzero(ok))
            n_left += len(rows) - len(targets)
            if not len(targets):
                continue
            scores = clip_retrieval(full, stimulus[run], segments[run], targets, kind,
                                    seed=seed + 1000 * int(subject) + int(run), ks=KS)  # fmt: skip
            for k in KS:
                hits[f"top{k}"] = hits.get(f"top{k}", 0.0) + scores[f"top{k}"] * len(targets)
            total += len(targets)
        if total:
            row = {f"top{k}": hits[f"top{k}"] / total for k in KS}
            per_subject.append(row | {f"top{k}_chance": k / N_CANDIDATES for k in KS})
            n_scored += total
    return per_subject, n_scored, n_left


def retrieval_grid(
    fmri: np.ndarray,
    samples: Samples,
    stimulus: np.ndarray,
    segments: np.ndarray,
    thumbnails: np.ndarray,
    n_queries: int = 4,
    k: int = 5,
    seed: int = 0,
) -> RetrievalGrid | None:
    """Examples from the first subject and run of ``samples``: the target clip's thumbnail, then the ``k``
    best of its 32 soft candidates by cosine similarity (green = the target); None when none is eligible."""
    subject, run = samples.subject[0], samples.run[0]
    rows = np.flatnonzero((samples.subject == subject) & (samples.run == run))
    ok = eligible_targets(segments[run], "soft")
    rows = rows[ok[samples.clip[rows]]]
    if not len(rows):
        return None
    rng = np.random.default_rng(seed)
    chosen = rows[np.linspace(0, len(rows) - 1, min(n_queries, len(rows))).round().astype(int)]
    unit = stimulus[run] / np.maximum(np.linalg.norm(stimulus[run], axis=1, keepdims=True), 1e-12)
    retrieved, correct = [], []
    for row in chosen:
        target = int(samples.clip[row])
        candidates = draw_candidates(target, segments[run], "soft", rng, N_CANDIDATES, EXCLUSION)
        best = candidates[np.argsort(-(unit[candidates] @ fmri[row]), kind="stable")[:k]]
        retrieved.append(thumbnails[run, best])
        correct.append(best == target)
    return RetrievalGrid(thumbnails[run, samples.clip[chosen]], np.stack(retrieved), np.array(correct))


@torch.no_grad()
def occlusion_importance(model, clips: torch.Tensor, video: torch.Tensor) -> np.ndarray:
    """(n_patches,) mean drop of cos(fMRI embedding, own video embedding) when each patch is zeroed.

    ``clips`` (n, n_frames, n_patches, n_patch_vertices); ``video`` (n, video_dim) standardised features."""
    model.eval()
    n_patches = clips.shape[2]
    target = nn.functional.normalize(model.embed_video(video), dim=1)  # (n, d)
    base = (nn.functional.normalize(model(clips), dim=1) * target).sum(dim=1)  # (n,)
    index = torch.arange(n_patches)
    drops = torch.zeros(n_patches, dtype=torch.float64)
    for i in range(len(clips)):
        occluded = clips[i].expand(n_patches, -1, -1, -1).clone()  # (n_patches, c, n_patches, v)
        occluded[index, :, index] = 0.0
        similarity = nn.functional.normalize(model(occluded), dim=1) @ target[i]
        drops += (base[i] - similarity).double()
    return (drops / max(1, len(clips))).numpy()


def patches_to_vertices(values: np.ndarray, patches: np.ndarray, n_vertices: int) -> np.ndarray:
    """Per-patch values -> per-vertex (n_vertices,): the mean over the patches holding each vertex."""
    flat = patches.ravel()
    total = np.bincount(flat, weights=np.repeat(values, patches.shape[1]), minlength=n_vertices)
    count = np.bincount(flat, minlength=n_vertices)
    return total / np.maximum(count, 1)


def patch_means(values: np.ndarray, patches: np.ndarray, cortex: np.ndarray) -> np.ndarray:
    """Per-vertex values -> per-patch means over the patch's cortex vertices (NaN for a patch without any)."""
    weight = cortex[patches].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (values[patches] * weight).sum(axis=1) / weight.sum(axis=1)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the entries finite in both (NaN when fewer than 3 or one is constant)."""
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


__all__ = ["correlation", "eligible_targets", "occlusion_importance", "patch_means", "patches_to_vertices",
           "retrieval_grid", "retrieval_scores"]  # fmt: skip
