"""SIM's new-subject adaptation (``brainkit run sim --preset adaptation``; docs/methods/adaptation.md).

SIM's SiT reads every subject on one common icosphere and scores unseen subjects zero-shot: it has no
subject-specific part. The part adapted here is one we add, a per-vertex input alignment of the new subject
(:class:`brainkit.models.sim.VertexAffine`: ``x * scale + shift`` per patch vertex, the identity at start, in
front of the shared encoder; ``model.alignment="vertex_affine"``).

1. SIM (from random init: no vsMAE pretraining here, ``inits=[scratch]``) is pretrained on every subject but
   ``adaptation.target_subject`` (default: the dataset's last) on the training clips, through the one trainer
   (``pretrain/``), with the recipe's ``training``;
2. for each k of ``adaptation.k`` (samples of the held-out subject on the training clips, (run, clip) pairs;
   ``"all"``: every one) and each seed of ``adaptation.seeds``, the seed draws k of them (nested over k:
   :func:`brainkit.training.subsets.nested_rows`; ``kK_seedS/rows.json``); then
   - ``adapt``: the pretrained SIM with a fresh identity alignment, the alignment trained alone on the k clips;
     every pretrained parameter frozen and the model in eval mode, so they leave bit-identical
     (``kK_seedS/adapt/``);
   - ``scratch``: SIM from random init (seed ``seed``) on the same k clips of the new subject only
     (``kK_seedS/scratch/``);
   both scored on the held-out subject's unseen clips (the held-out halves of the segments, which neither
   pretraining nor the k clips touch) by the recipe's retrieval protocol, fMRI -> video top-1 / top-5 among its
   candidates, soft negatives, the same seeded candidates for every model; chance k / candidates beside;
3. the curve (one row per method and k: mean and 95 % t-interval over seeds, k in clips and in scan-minutes =
   k x ``seconds_per_clip`` / 60), ``curve.csv`` and ``report.html``; the pretrained model's zero-shot score
   (no alignment) in the notes and metrics.

Every training is a :func:`brainkit.training.train_phase` folder (``final/``: safetensors + JSON): ``--resume``
continues an interrupted run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import atomic_write_text
from brainkit.data import movie_samples as ms
from brainkit.errors import ConfigError
from brainkit.evaluation import movie_retrieval as mr
from brainkit.evaluation import sim_retrieval
from brainkit.recipes import RecipeOutput
from brainkit.recipes.sim.split import build_sim, prepare, retrieval_seed
from brainkit.recipes.sim.task import SIMTask
from brainkit.report.adaptation import curve_figure, curve_rows, smallest_k_note, write_curve
from brainkit.training import TrainingConfig, train_phase
from brainkit.training.subsets import check_k_and_seeds, held_out_subject, k_training, nested_rows

ALIGNMENT = "vertex_affine"  # models/sim.py ALIGNMENTS: the subject-specific part adapting trains
SCORES = {"top1": "top1", "top5": "top5"}  # curve column stem -> score key (fMRI -> video, soft negatives)
TABLE = "fMRI -> video top-1 against k"
LABELS = {"adapt": "adapt (pretrained, new subject's alignment only)", "scratch": "scratch (same k clips)"}


def check_adaptation(config: Any) -> None:
    """The adaptation settings that need no data. Raises :class:`ConfigError`."""
    spec = config.adaptation
    check_k_and_seeds(spec.k, spec.seeds, "clips", minimum=2, why=" (a contrastive batch)")
    if tuple(config.inits) != ("scratch",):
        raise ConfigError(
            f"sim adaptation pretrains SIM itself on the other subjects, from random init (no vsMAE); found "
            f"inits={list(config.inits)}: set inits=[scratch]."
        )
    if config.model.get("alignment", "none") != "none":
        raise ConfigError(
            f"sim adaptation adds the new subject's alignment itself; found model.alignment="
            f"{config.model['alignment']!r}: leave it unset (none)."
        )
    if config.training.steps is None:
        raise ConfigError("sim adaptation: training.steps (the pretraining's length) must be set.")


def resolve(config: Any, data, split: dict[str, Any]) -> tuple[int, list[int], list[int]]:
    """(the held-out subject's index, the pretraining subjects' indices, the k values in clips), checked
    against the data."""
    subjects = list(data.subjects)
    n = int(
        split["clips"]["train"].sum()
    )  # a subject's training samples: each (run, clip) of the training clips
    spec = config.adaptation
    name, ks = held_out_subject("sim", subjects, spec.target_subject, lambda s: n, spec.k, "clips")
    target = subjects.index(name)
    return target, [i for i in range(len(subjects)) if i != target], ks


def k_clips(split: dict[str, Any], target: int, k: int, seed: int) -> tuple[np.ndarray, ms.Samples]:
    """(rows, samples): the k of the held-out subject's training samples (subject, run, clip) that seed ``seed``
    draws, nested over k."""
    pool = ms.samples_of(np.array([target]), split["clips"]["train"])
    rows = nested_rows(len(pool), k, seed)
    return rows, pool[rows]


def sampler_of(arrays: ms.MovieArrays, samples: ms.Samples) -> ms.BatchDraw:
    """Batches of distinct contents from exactly ``samples`` (one subject)."""
    mask = np.zeros(arrays.keys.shape, dtype=bool)
    mask[samples.run, samples.clip] = True
    return ms.BatchDraw(arrays.keys, np.unique(samples.subject), mask)


def adapt_model(pretrained, config: Any, split: dict[str, Any], data):
    """The pretrained SIM with a fresh identity alignment (every pretrained parameter and buffer copied)."""
    aligned = dataclasses.replace(config, model={**config.model, "alignment": ALIGNMENT})
    model = build_sim(aligned, split["encoder"], data.video.shape[-1], data.audio.shape[-1])
    missing, unexpected = model.load_state_dict(pretrained.state_dict(), strict=False)
    assert sorted(missing) == ["alignment.scale", "alignment.shift"] and not unexpected, (missing, unexpected)
    return model


class AlignmentTask(SIMTask):
    """:class:`SIMTask` training the subject's alignment alone: every other parameter frozen
    (``requires_grad=False``) and the model kept in eval mode (dropout off), so nothing pretrained changes."""

    def __init__(self, model, arrays, sampler, monitor, lr_scale: float = 1.0) -> None:
        super().__init__(model, arrays, sampler, monitor)
        self.alignment_lr_scale = lr_scale
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith("alignment."))

    def train(self, mode: bool = True) -> AlignmentTask:
        super().train(mode)
        self.model.eval()
        return self

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.alignment.parameters()), "lr_scale": self.alignment_lr_scale}]


def cell_training(config: Any, k: int, seed: int) -> TrainingConfig:
    """An adapt or scratch fit on k clips: ``adaptation.epochs`` passes, at least ``min_steps`` steps, seed
    ``seed``, the recipe's ``training`` otherwise."""
    spec = config.adaptation
    base = dataclasses.replace(config.training, steps=None, epochs=spec.epochs, validate_every=None)
    return k_training(base, k, seed, spec.min_steps)


def score(model, config: Any, split: dict[str, Any], data, target: int) -> dict[str, float]:
    """fMRI -> video top-1 / top-5 (soft negatives) of the held-out subject's unseen clips, with chance, by the
    recipe's protocol and candidates (:func:`brainkit.recipes.sim.split.retrieval_seed`)."""
    arrays, clips = split["arrays"], split["clips"]
    samples = ms.samples_of(np.array([target]), clips["held_out"])
    stimulus = mr.embed_stimuli(model, arrays)["video"]
    fmri = mr.embed_fmri(model, arrays, samples)
    seed = retrieval_seed(config)
    if config.evaluation.protocol == "sim":
        rows, _, _ = sim_retrieval.sim_retrieval_scores(fmri, samples, stimulus, data.segment_of, data.retest,
                                                        "held_out", "soft", "video", seed,
                                                        config.evaluation.n_targets)  # fmt: skip
    else:
        segments = ms.setting_segments(data.segment_of, clips["held_out"])
        rows, _, _ = mr.retrieval_scores(fmri, samples, stimulus, segments, "soft", seed)
    if not rows:
        raise ConfigError("sim adaptation: no target of the held-out subject's unseen clips could be scored.")
    return {key: float(np.mean([r[key] for r in rows])) for key in SCORES.values()} | {
        f"{key}_chance": rows[0][f"{key}_chance"] for key in SCORES.values()
    }


def run_cell(config: Any, split: dict[str, Any], data, pretrained, target: int, k: int, seed: int,
             folder: Path, resume: bool) -> dict[str, dict[str, float]]:  # fmt: skip
    """Adapt and scratch on the same k clips of seed ``seed``: their scores (and training seconds)."""
    arrays = split["arrays"]
    rows, chosen = k_clips(split, target, k, seed)
    cell = Path(folder) / f"k{k:05d}_seed{seed}"
    cell.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cell / "rows.json", json.dumps({"subject": data.subjects[target], "rows": rows.tolist(),
                                                      "run": chosen.run.tolist(), "clip": chosen.clip.tolist()}))  # fmt: skip
    monitor = ms.monitoring_set(
        chosen, arrays.keys, config.fit.n_monitor, seed + 3
    )  # the k clips: curves only
    training = cell_training(config, k, seed)
    lr_scale = 1.0 if config.adaptation.adapt_lr is None else config.adaptation.adapt_lr / training.lr
    adapted = adapt_model(pretrained, config, split, data)
    task = AlignmentTask(adapted, arrays, sampler_of(arrays, chosen), monitor, lr_scale)
    out = {}
    fit = train_phase(task, training, cell / "adapt", resume, name=f"adapt_k{k}_seed{seed}")
    out["adapt"] = score(adapted, config, split, data, target) | {"train_s": fit.seconds}
    torch.manual_seed(seed)
    scratch = build_sim(config, split["encoder"], data.video.shape[-1], data.audio.shape[-1])
    task = SIMTask(scratch, arrays, sampler_of(arrays, chosen), monitor)
    fit = train_phase(task, training, cell / "scratch", resume, name=f"scratch_k{k}_seed{seed}")
    out["scratch"] = score(scratch, config, split, data, target) | {"train_s": fit.seconds}
    return out


def run_adaptation(config: Any, folder: Path, data, resume: bool = False) -> RecipeOutput:
    """The protocol on ``data`` (module doc), written under ``folder``."""
    spec = config.adaptation
    folder = Path(folder)
    split = prepare(config, data)
    target, sources, ks = resolve(config, data, split)
    arrays, clips = split["arrays"], split["clips"]
    names = [data.subjects[i] for i in sources]
    torch.manual_seed(config.seed)
    pretrained = build_sim(config, split["encoder"], data.video.shape[-1], data.audio.shape[-1])
    monitor = ms.monitoring_set(ms.samples_of(np.array(sources), clips["held_out"]), arrays.keys,
                                config.fit.n_monitor, config.seed + 3)  # fmt: skip
    task = SIMTask(pretrained, arrays, ms.BatchDraw(arrays.keys, np.array(sources), clips["train"]), monitor)
    training = dataclasses.replace(config.training, seed=config.seed)
    pretrain_fit = train_phase(task, training, folder / "pretrain", resume, name="pretrain")
    zero_shot = score(pretrained, config, split, data, target)
    cells = {}
    for k in ks:
        for seed in spec.seeds:
            scored = run_cell(config, split, data, pretrained, target, k, seed, folder, resume)
            cells.update({f"{method}/k={k}/seed={seed}": scores for method, scores in scored.items()})
    rows = curve_rows(cells, ks, spec.seeds, spec.seconds_per_clip, 0, keys=SCORES)
    n_candidates = config.evaluation.n_candidates
    notes = [
        smallest_k_note(rows, "top1", "clips"),
        f"Pretrained SIM (from random init, no vsMAE) on {', '.join(names)} for {config.training.steps} steps "
        f"({pretrain_fit.seconds:.0f} s); adapted to {data.subjects[target]} with k of its {int(clips['train'].sum())} "
        "training clips (a seeded draw per seed, nested over k). adapt trains the new subject's per-vertex input "
        "alignment (x * scale + shift, from the identity) alone in front of the frozen SIM; scratch the whole SIM "
        f"from random init; each {cell_training(config, ks[0], 0).steps}+ steps. scan-minutes = k x "
        f"{spec.seconds_per_clip:g} s / 60 (clips start one frame apart).",
        f"Scored on {data.subjects[target]}'s unseen clips (held-out halves), fMRI -> video, soft negatives, "
        f"{config.evaluation.protocol} protocol: top-1 among {n_candidates} candidates (chance "
        f"{100 * zero_shot['top1_chance']:.1f} %). Zero-shot (the pretrained SIM, no alignment): top-1 "
        f"{100 * zero_shot['top1']:.1f} %, top-5 {100 * zero_shot['top5']:.1f} %.",
    ]
    figure = curve_figure(
        rows, spec.seconds_per_clip, LABELS, lambda stem: f"fMRI → video {stem} (%)", "clips"
    )
    metrics = write_curve(folder, f"SIM new-subject adaptation on {config.data}", TABLE, rows, notes, figure, cells,
                          zero_shot=zero_shot, target_subject=data.subjects[target], pretraining_subjects=names,
                          k=ks)  # fmt: skip
    return RecipeOutput({TABLE: rows}, notes, metrics)


__all__ = [
    "AlignmentTask",
    "adapt_model",
    "cell_training",
    "check_adaptation",
    "k_clips",
    "resolve",
    "run_adaptation",
    "run_cell",
    "score",
]
