"""Scoring of SIM-style movie retrieval per setting and its tables, retrieval examples, patch importance by
occlusion, embeddings, and the ridge baseline.

Retrieval has two protocols (:class:`RetrievalConfig`, the ``sim`` recipe's ``evaluation``):

- ``"sim"`` (the default): SIM's released protocol (:mod:`brainkit.evaluation.sim_retrieval`): per (subject,
  run) row 100 targets (a movie segment drawn uniformly, then a clip of the setting's half), each among 33
  candidates (32 negatives from held-out halves, the test-retest segment never a target); chance k / 33; mean and
  sd over rows.
- ``"all_targets"`` (ours, :mod:`brainkit.evaluation.clip_retrieval`): in each run of each subject, every clip
  of the setting is a target; its 31 negatives come from the same run's clips of the setting (soft: other
  segments, hard: the same segment; never within 3 s); 32 candidates, chance k / 32. A target whose pool is too
  small for 31 negatives of a kind (e.g. the short test-retest segment's unseen half, for hard negatives) is
  left out of that kind, and counted. A subject's top-k pools its runs' targets; mean and sd over subjects.

Both draw candidates from seeds fixed per (subject, run), so every model and both directions meet the same
candidates: differences are paired.

Occlusion: a patch is set to 0 (the per-frame cortex mean of z-scored data) in all frames of a sample; its
importance is the drop of the cosine similarity between the sample's fMRI embedding and its own clip's video
embedding, averaged over samples.

The ridge baseline (:class:`RidgeBaseline`): a sample's 3 frames averaged on the cortex vertices (n_cortex,) ->
the clip's standardised video and audio features (one multi-output fit, ``alpha`` fixed); its predicted
features rank the candidates' true features by cosine similarity in the same protocol, with the same
candidates, as a model's embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from brainkit.config import Checked, bounded, choice
from brainkit.data.movie_samples import SETTINGS, MovieArrays, Samples, setting_segments
from brainkit.errors import ConfigError
from brainkit.evaluation import sim_retrieval
from brainkit.evaluation.clip_retrieval import KINDS, clip_retrieval, draw_candidates, summarise

N_CANDIDATES, EXCLUSION, KS = 32, 3, (1, 5, 10)
DIRECTIONS = ("video", "audio")
PROTOCOLS = ("sim", "all_targets")


@dataclass(frozen=True)
class RetrievalConfig(Checked):
    """How retrieval is scored (module doc): ``protocol`` "sim" (SIM's released protocol) or "all_targets"."""

    protocol: str = choice("sim", PROTOCOLS, fix="sim: SIM's released protocol; all_targets: ours")
    # per (subject, run) row, protocol "sim" (SIM's nbr_clip_to_test)
    n_targets: int = bounded(sim_retrieval.N_TARGETS, ge=1, le=1_000_000)

    @property
    def n_candidates(self) -> int:
        return sim_retrieval.N_CANDIDATES if self.protocol == "sim" else N_CANDIDATES


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


def retrieval_examples(
    fmri: np.ndarray,
    samples: Samples,
    stimulus: np.ndarray,
    segments: np.ndarray,
    n_queries: int = 4,
    k: int = 5,
    seed: int = 0,
    retest: np.ndarray | None = None,
) -> tuple[int, np.ndarray, np.ndarray] | None:
    """Examples from the first subject and run of ``samples``: (run, query clips (n_queries,), the ``k`` best of
    each query's soft candidates by cosine similarity (n_queries, k)); None when no target is eligible.

    ``retest`` None: ours, 32 candidates from ``segments`` (the setting's); given: SIM's protocol, queries in the
    held-out halves and 33 candidates from its soft video pools, ``segments`` the FULL runs' ``segment_of``."""
    subject, run = samples.subject[0], samples.run[0]
    rows = np.flatnonzero((samples.subject == subject) & (samples.run == run))
    if retest is None:
        rows = rows[eligible_targets(segments[run], "soft")[samples.clip[rows]]]
    else:
        bounds, is_retest = sim_retrieval.segment_table(segments[run], retest[run])
        choices = sim_retrieval.target_choices(bounds, is_retest, "held_out", samples.clip[rows])
        rows = rows[np.isin(samples.clip[rows], np.concatenate([np.zeros(0, int), *choices]))]
    if not len(rows):
        return None
    rng = np.random.default_rng(seed)
    chosen = rows[np.linspace(0, len(rows) - 1, min(n_queries, len(rows))).round().astype(int)]
    unit = stimulus[run] / np.maximum(np.linalg.norm(stimulus[run], axis=1, keepdims=True), 1e-12)
    retrieved = []
    for row in chosen:
        target = int(samples.clip[row])
        if retest is None:
            candidates = draw_candidates(target, segments[run], "soft", rng, N_CANDIDATES, EXCLUSION)
        else:
            pool = sim_retrieval.candidate_pools(bounds, is_retest, [target], "soft", "video")[0]
            negatives = rng.choice(pool, min(len(pool), sim_retrieval.N_NEGATIVES), replace=False)
            candidates = np.concatenate([[target], negatives])
        retrieved.append(candidates[np.argsort(-(unit[candidates] @ fmri[row]), kind="stable")[:k]])
    return int(run), samples.clip[chosen], np.stack(retrieved)


def score_settings(predict, stimulus: dict, setting_samples: dict, clips: dict, segment_of, seed: int,
                   retest: np.ndarray | None = None, evaluation: RetrievalConfig = RetrievalConfig()):  # fmt: skip
    """Retrieval in every setting, kind and direction: ``predict(samples)`` -> ``{"video", "audio"}`` (n, d)
    compared with ``stimulus[direction]`` (n_runs, n_clips, d); ``segment_of`` / ``retest`` (n_runs, n_clips)
    the runs' layout (``retest`` needed by the "sim" protocol). Returns (scores, predictions per setting);
    a score holds ``rows`` (per subject, or per (subject, run) for "sim"), ``n_subjects``, ``n_scored``,
    ``n_left`` (targets left out)."""
    if evaluation.protocol == "sim" and retest is None:
        raise ConfigError("the sim retrieval protocol needs the runs' test-retest mask (retest=).")
    scores, predictions = {}, {}
    for setting, (_, _, which) in SETTINGS.items():
        samples = setting_samples[setting]
        predicted = predictions[setting] = predict(samples)
        segments = setting_segments(segment_of, clips[which])
        for kind in KINDS:
            for direction in DIRECTIONS:
                if evaluation.protocol == "sim":
                    rows, n_scored, n_left = sim_retrieval.sim_retrieval_scores(
                        predicted[direction], samples, stimulus[direction], segment_of, retest, which, kind,
                        direction, seed, evaluation.n_targets)  # fmt: skip
                else:
                    rows, n_scored, n_left = retrieval_scores(
                        predicted[direction], samples, stimulus[direction], segments, kind, seed=seed
                    )
                scores[(setting, kind, direction)] = {"rows": rows, "n_subjects": len(np.unique(samples.subject)),
                                                      "n_scored": n_scored, "n_left": n_left}  # fmt: skip
    return scores, predictions


def retrieval_rows(scores: dict, labels: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """The main table (top-1 per method, chance, vsMAE - scratch) and the full one (top-1/5/10 per method),
    mean and sd over the score's rows (subjects, or (subject, run) rows for the "sim" protocol);
    ``scores[method][(setting, kind, direction)]`` from :func:`score_settings`, ``labels``: method -> column
    label, in column order."""
    methods = list(labels)
    main, full = [], []
    for setting, (description, _, _) in SETTINGS.items():
        for kind in KINDS:
            for direction in DIRECTIONS:
                first = scores[methods[0]][(setting, kind, direction)]
                row: dict = {"setting": description, "negatives": kind, "retrieval": f"fMRI->{direction}",
                             "subjects": first["n_subjects"], "rows": len(first["rows"]),
                             "targets": first["n_scored"]}  # fmt: skip
                for method in methods:
                    result = scores[method][(setting, kind, direction)]
                    summary = summarise(result["rows"]) if result["rows"] else {}
                    row[f"top1 {labels[method]}_mean"] = summary.get("top1_mean")
                    row[f"top1 {labels[method]}_sd"] = summary.get("top1_sd")
                    full.append({"method": labels[method], "setting": description, "negatives": kind,
                                 "retrieval": f"fMRI->{direction}", **summary})  # fmt: skip
                row["top1_chance"] = first["rows"][0]["top1_chance"] if first["rows"] else None
                ours, theirs = row.get("top1 from vsMAE_mean"), row.get("top1 from scratch_mean")
                if ours is not None and theirs is not None:
                    row["top1 vsMAE - scratch"] = ours - theirs
                main.append(row)
    return main, full


@torch.no_grad()
def embed_fmri(model, arrays: MovieArrays, samples: Samples, batch: int = 64) -> np.ndarray:
    """fMRI embeddings (len(samples), embedding_dim) in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    parts = [
        model(arrays.clips(samples[i : i + batch]).to(device)).cpu() for i in range(0, len(samples), batch)
    ]
    return torch.cat(parts).numpy() if parts else np.zeros((0, model.config.embedding_dim), np.float32)


@torch.no_grad()
def embed_stimuli(model, arrays: MovieArrays) -> dict[str, np.ndarray]:
    """``{"video", "audio"}`` -> (n_runs, n_clips, embedding_dim) embeddings of every clip."""
    model.eval()
    device = next(model.parameters()).device
    out = {}
    for name, features, head in (("video", arrays.video, model.embed_video),
                                 ("audio", arrays.audio, model.embed_audio)):  # fmt: skip
        flat = torch.from_numpy(features.reshape(-1, features.shape[-1])).to(device)
        out[name] = head(flat).cpu().numpy().reshape(*features.shape[:2], -1)
    return out


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


def importance_maps(importance: dict[str, np.ndarray], patches: np.ndarray, truth: np.ndarray,
                    cortex: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:  # fmt: skip
    """Per-vertex maps of each model's patch importance (name -> (n_vertices,)) and their correlations with
    the ``truth`` map over patches and over cortex vertices."""
    truth = np.asarray(truth, dtype=float)
    truth_patches = patch_means(truth, patches, cortex)
    maps, correlations = {}, {}
    for name, values in importance.items():
        vertex = patches_to_vertices(values, patches, len(truth))
        maps[name] = vertex
        correlations[name] = {"patches": correlation(values, truth_patches),
                              "vertices": correlation(vertex[cortex], truth[cortex])}  # fmt: skip
    return maps, correlations


def mean_frames(arrays: MovieArrays, cortex: np.ndarray, samples: Samples, batch: int = 512) -> np.ndarray:
    """(len(samples), n_cortex) float32: the mean of each sample's frames on the cortex vertices."""
    where = np.flatnonzero(cortex)
    out = np.empty((len(samples), len(where)), dtype=np.float32)
    for start in range(0, len(samples), batch):
        part = samples[start : start + batch]
        values = arrays.frames(part)[:, :, where]  # read in chunks (a file-backed fmri: from disk)
        out[start : start + len(part)] = values.mean(axis=1)
    return out


class RidgeBaseline:
    """``fit(train samples)``, then ``predict(samples) -> {"video", "audio"}`` feature predictions (module doc)."""

    def __init__(self, arrays: MovieArrays, cortex: np.ndarray, alpha: float) -> None:
        self.arrays, self.cortex, self.alpha = arrays, cortex, alpha

    def fit(self, samples: Samples) -> RidgeBaseline:
        from sklearn.linear_model import Ridge

        a = self.arrays
        targets = np.concatenate(
            [a.video[samples.run, samples.clip], a.audio[samples.run, samples.clip]], axis=1
        )
        self.model_ = Ridge(alpha=self.alpha).fit(mean_frames(a, self.cortex, samples), targets)
        return self

    def predict(self, samples: Samples) -> dict[str, np.ndarray]:
        predicted = self.model_.predict(mean_frames(self.arrays, self.cortex, samples))
        d_video = self.arrays.video.shape[-1]
        return {"video": predicted[:, :d_video], "audio": predicted[:, d_video:]}


__all__ = ["DIRECTIONS", "PROTOCOLS", "RetrievalConfig", "RidgeBaseline", "correlation", "eligible_targets", "embed_fmri", "embed_stimuli",
           "importance_maps", "mean_frames", "occlusion_importance", "patch_means", "patches_to_vertices",
           "retrieval_examples", "retrieval_rows", "retrieval_scores", "score_settings"]  # fmt: skip
