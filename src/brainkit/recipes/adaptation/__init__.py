"""New-subject adaptation: pretrain a decoder on N-1 subjects behind MindEye2's shared-subject latent, then adapt
it to the held-out subject with k of its trials, against the same decoder trained from scratch on those k trials.

``brainkit run adaptation`` (docs/methods/adaptation.md):

1. every subject but ``adaptation.target_subject`` (default: the dataset's last) is z-scored on its own trials;
   the model ``shared_subject`` (a ``Linear(n_voxels[s] -> d_shared)`` per subject, then the decoder ``model``
   built with ``n_voxels = d_shared``) is pretrained on them through the one trainer, one subject per step
   (``pretrain/``);
2. for each k of ``adaptation.k`` (trials; ``"all"``: every training trial) and each seed of ``adaptation.seeds``,
   the seed draws k of the held-out subject's training trials (nested over k) and z-scores them on themselves
   (``kK_seedS/preprocess.safetensors``); then
   - ``adapt``: a fresh ``Linear(n_voxels -> d_shared)`` for that subject, randomly initialised and trained on the
     k trials with the pretrained backbone frozen (the adapter is the only trainable part: ``kK_seedS/adapt/``);
   - ``scratch``: the decoder alone (``n_voxels`` = the subject's voxels) trained from its random initialisation
     on the same k trials (``kK_seedS/scratch/``);
   both scored on the subject's whole test set (top-1 over all test stimuli and N-way, chance beside each);
3. ``curve.csv`` (one row per method and k: mean and 95 % t-interval over seeds, in trials and in scan-minutes,
   ``k x seconds_per_trial / 60``) and ``report.html`` (the curve).

Each training is a :func:`brainkit.training.train_phase` folder (``final/``: safetensors + JSON), so an interrupted
run resumes (``--resume``) and ``brainkit eval RUN`` reloads every adapted and scratch model and recomputes the
metrics. Training length of adapt and scratch: ``epochs`` passes over the k trials, at least ``min_steps`` steps.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from brainkit.checkpoint import atomic_write_text
from brainkit.config import Checked, bounded
from brainkit.data.builtin.nsd_like import testing_options
from brainkit.data.paired import DataSpec, open_dataset
from brainkit.data.transforms import Standardizer
from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.retrieval import RetrievalSpec, score_predictions
from brainkit.models.spec import ModelSpec
from brainkit.objectives.spec import ObjectiveSpec
from brainkit.recipes import RecipeOutput
from brainkit.recipes.adaptation.tasks import (
    AdaptTask,
    PretrainTask,
    Subject,
    held_out_trials,
    subject_arrays,
)
from brainkit.registry import RECIPES
from brainkit.training import SupervisedTask, TrainingConfig, predict, train_phase
from brainkit.training.state import load_weights
from brainkit.training.subsets import k_training as phase_training

log = logging.getLogger(__name__)
METHODS = ("adapt", "scratch")
TABLE = "Accuracy against k"


@dataclass(frozen=True)
class AdaptationData(Checked):
    """The dataset (``name``, its ``options``) and the target embedding; every subject it has takes part."""

    name: str = "nsd_like"
    target: str = "efficientnet_lite0"
    options: dict[str, Any] = field(default_factory=dict)
    encoder_options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None


@dataclass(frozen=True)
class DecoderSpec(ModelSpec):
    """The decoder behind the shared latent and trained from scratch: a registered model of (batch, n_voxels)
    (``lite_mind``, ``mindeye_mlp``), its preset and option changes."""


@dataclass(frozen=True)
class AdaptationSpec(Checked):
    """The protocol: held-out subject, k values (trials, or ``"all"``), seeds, shared width, scan time per trial."""

    target_subject: str | None = None  # null: the dataset's last subject
    k: tuple[int | str, ...] = (50, 150, 500, "all")
    seeds: tuple[int, ...] = bounded((0, 1, 2), ge=0)
    d_shared: int = bounded(1024, ge=1, le=1_000_000, fix="the shared latent's width (MindEye2: 4096)")
    seconds_per_trial: float = bounded(4.0, gt=0, fix="scan time of one trial (NSD: 3 s image + 1 s gap)")
    min_steps: int = bounded(100, ge=1, fix="the fewest optimiser steps of an adapt or scratch training")


@dataclass(frozen=True)
class AdaptationConfig:
    data: AdaptationData = field(default_factory=AdaptationData)
    model: DecoderSpec = field(default_factory=DecoderSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    adaptation: AdaptationSpec = field(default_factory=AdaptationSpec)
    pretraining: TrainingConfig = field(default_factory=TrainingConfig)
    adapt: TrainingConfig = field(default_factory=TrainingConfig)
    scratch: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: RetrievalSpec = field(default_factory=RetrievalSpec)


# lite_mind's demo loss: one-directional InfoNCE at temperature 0.05 (recipes/lite_mind DEMO_OBJECTIVE)
OBJECTIVE = ObjectiveSpec("infonce", {"temperature": 0.05, "bidirectional": False})
# Sized for 2 shared CPU cores (our choice, not tuned): 6 pretraining epochs (216 one-subject steps of 250), and
# 5 passes over the k trials with at least 60 steps for adapt and scratch (so every k gets 60 steps here).
# Measured 2026-12-04 at load ~5 on 2 shared cores: cpu_small_mlp 1,357 s; cpu_small with k=[50, 150, all], 4
# pretraining epochs and 30-36 steps per fit 1,044 s (docs/benchmarks.md, "New-subject adaptation").
CPU_TRAINING = TrainingConfig(
    epochs=5, batch_size=250, lr=1e-3, weight_decay=0.1, warmup_epochs=1, min_lr=1e-5, grad_clip=1.0,
    progress=False, threads=2,
)  # fmt: skip
PRESETS = {
    # The built-in nsd_like (4 subjects, 3,000 training trials and 500 test stimuli each): pretrain on subj01,
    # subj02 and subj05, adapt to subj07. Lite-Mind cpu_small behind a 512-d latent (11 patches of 48).
    "cpu_small": AdaptationConfig(
        model=DecoderSpec("lite_mind", "cpu_small"),
        objective=OBJECTIVE,
        adaptation=AdaptationSpec(d_shared=512, min_steps=60),
        pretraining=dataclasses.replace(CPU_TRAINING, epochs=6),
        adapt=dataclasses.replace(CPU_TRAINING, weight_decay=0.01),
        scratch=CPU_TRAINING,
        evaluation=RetrievalSpec(n_way=300, n_draws=30),
    ),
    # Seconds: three tiny nsd_like subjects (weight-free targets), the tiny Lite-Mind, for the tests.
    "testing": AdaptationConfig(
        data=AdaptationData(
            target="pixel_projection",
            options=testing_options({"subj01": 41, "subj02": 37, "subj05": 29}, median_snr=1.5),
        ),
        model=DecoderSpec("lite_mind", "testing"),
        objective=ObjectiveSpec("infonce", {"temperature": 0.1}),
        adaptation=AdaptationSpec(k=(10, 30, "all"), seeds=(0, 1), d_shared=16, min_steps=3),
        pretraining=TrainingConfig(epochs=2, batch_size=32, progress=False),
        adapt=TrainingConfig(epochs=1, batch_size=32, progress=False),
        scratch=TrainingConfig(epochs=1, batch_size=32, progress=False),
        evaluation=RetrievalSpec(n_way=10, n_draws=5),
    ),
}
# The same protocol with the MindEye-style MLP (models/baselines.py cpu_small: hidden 512, 2 blocks) as decoder.
PRESETS["cpu_small_mlp"] = dataclasses.replace(
    PRESETS["cpu_small"], model=DecoderSpec("mindeye_mlp", "cpu_small")
)


def data_spec(config: AdaptationConfig, subject: str = "") -> DataSpec:
    spec = config.data
    return DataSpec(spec.name, subject, spec.target, dict(spec.options), dict(spec.encoder_options), 0.0,
                    spec.cache_dir)  # fmt: skip


def check_settings(config: AdaptationConfig) -> None:
    """The settings that need no data: k values, seeds, and (when ``data.options.subjects`` names them) the
    subjects. Raises :class:`ConfigError`."""
    spec = config.adaptation
    bad = [k for k in spec.k if not (k == "all" or (isinstance(k, int) and k >= 1))]
    if not spec.k or bad:
        raise ConfigError(f"adaptation.k={list(spec.k)}: each k must be a number of trials >= 1 or 'all'.")
    if not spec.seeds or len(set(spec.seeds)) < len(spec.seeds):
        raise ConfigError(f"adaptation.seeds={list(spec.seeds)}: give one or more distinct seeds.")
    named = config.data.options.get("subjects")
    if isinstance(named, list | tuple):
        check_subjects(list(named), spec.target_subject, "data.options.subjects")


def check_subjects(subjects: list[str], target: str | None, where: str) -> str:
    """The held-out subject (``target`` or the last of ``subjects``); at least two subjects are needed."""
    if len(subjects) < 2:
        raise ConfigError(
            f"adaptation needs at least 2 subjects (pretraining on the others, adapting to one); {where} has "
            f"{len(subjects)}: {subjects}."
        )
    if target is not None and target not in subjects:
        raise ConfigError(
            f"adaptation.target_subject={target!r} is not a subject of the data; {where}: {subjects}."
        )
    return target if target is not None else subjects[-1]


def resolve_k(config: AdaptationConfig, n_trials: int, subject: str) -> list[int]:
    """Each k in trials (``"all"`` -> ``n_trials``), checked against the held-out subject's trials."""
    ks = [n_trials if k == "all" else int(k) for k in config.adaptation.k]
    over = [k for k in ks if k > n_trials]
    if over:
        raise DataError(
            f"adaptation.k={over} exceeds the {n_trials} training trials of the held-out subject {subject!r}; "
            f"use k <= {n_trials} or 'all'."
        )
    return sorted(set(ks))


def build_shared(config: AdaptationConfig, n_voxels: dict[str, int], output_shape: tuple[int, ...]):
    from brainkit.models import build_model, model_config

    spec = config.model
    options = {"d_shared": config.adaptation.d_shared, "backbone": spec.name, "backbone_preset": spec.preset,
               "backbone_options": dict(spec.options), "n_voxels": dict(n_voxels)}  # fmt: skip
    return build_model(
        "shared_subject", model_config("shared_subject", None, options, output_shape=output_shape)
    )


def build_decoder(config: AdaptationConfig, n_voxels: int, output_shape: tuple[int, ...]) -> torch.nn.Module:
    from brainkit.models import build_model, model_config

    spec = config.model
    return build_model(spec.name, model_config(spec.name, spec.preset, spec.options, n_voxels, output_shape))


def objective(config: AdaptationConfig) -> torch.nn.Module:
    from brainkit.objectives.contrastive import build_objective

    return build_objective(config.objective.name, config.objective.options)


@dataclass
class Plan:
    """What the data give: the dataset, pretraining subjects, the held-out one, its voxel count, k values."""

    dataset: Any
    sources: list[str]
    target: str
    ks: list[int]
    output_shape: tuple[int, ...]


def plan_for(config: AdaptationConfig) -> Plan:
    dataset = open_dataset(data_spec(config))
    subjects = list(dataset.subjects)
    target = check_subjects(subjects, config.adaptation.target_subject, f"dataset {config.data.name!r}")
    ks = resolve_k(config, len(dataset.train[target].values), target)
    from brainkit.data.paired import targets_for

    probe = targets_for(dataset, data_spec(config), dataset.test[target].stimulus_ids[:1])
    return Plan(dataset, [s for s in subjects if s != target], target, ks, tuple(probe.shape[1:]))


def cell_folder(folder: Path, k: int, seed: int) -> Path:
    return folder / f"k{k:05d}_seed{seed}"


def pretrain(config: AdaptationConfig, plan: Plan, folder: Path, resume: bool) -> torch.nn.Module:
    arrays = subject_arrays(plan.dataset, data_spec(config), plan.sources)
    torch.manual_seed(config.pretraining.seed)
    model = build_shared(config, {s: arrays[s].x.shape[1] for s in plan.sources}, plan.output_shape)
    train_phase(
        PretrainTask(model, objective(config), arrays), config.pretraining, folder / "pretrain", resume
    )
    return model


def adapt_model(config: AdaptationConfig, plan: Plan, n_voxels: int, pretrained: torch.nn.Module | None):
    """A shared-subject model whose only subject is the held-out one, with the pretrained backbone's weights."""
    model = build_shared(config, {plan.target: n_voxels}, plan.output_shape)
    if pretrained is not None:
        model.backbone.load_state_dict(pretrained.backbone.state_dict())
    return model


def score(config: AdaptationConfig, model: torch.nn.Module, test) -> dict[str, float]:
    return score_predictions(config.evaluation, predict(model, test.x), test.y)


def run_cell(config: AdaptationConfig, plan: Plan, pretrained, folder: Path, k: int, seed: int, resume: bool):
    """Adapt and scratch on the same k trials of seed ``seed``; their test scores."""
    held = held_out_trials(plan.dataset, data_spec(config), plan.target, k, seed)
    cell = cell_folder(folder, k, seed)
    cell.mkdir(parents=True, exist_ok=True)
    held.standardizer.save(cell / "preprocess.safetensors")
    atomic_write_text(cell / "trials.json", json.dumps({"subject": plan.target, "rows": held.rows.tolist()}))
    n_voxels = held.train.x.shape[1]
    min_steps = config.adaptation.min_steps
    torch.manual_seed(seed)
    model = adapt_model(config, plan, n_voxels, pretrained)
    task = AdaptTask(model, objective(config), held.train)
    adapted = train_phase(task, phase_training(config.adapt, k, seed, min_steps), cell / "adapt", resume)
    torch.manual_seed(seed)
    decoder = build_decoder(config, n_voxels, plan.output_shape)
    scratch_task = SupervisedTask(decoder, objective(config), held.train)
    trained = train_phase(
        scratch_task, phase_training(config.scratch, k, seed, min_steps), cell / "scratch", resume
    )
    scores = {
        "adapt": {**score(config, Subject(model, plan.target), held.test), "train_s": adapted.seconds},
        "scratch": {**score(config, decoder, held.test), "train_s": trained.seconds},
    }
    atomic_write_text(cell / "scores.json", json.dumps(scores, indent=1))  # this cell's, readable mid-run
    return scores


def cell_key(method: str, k: int, seed: int) -> str:
    return f"{method}/k={k}/seed={seed}"


def summary_metrics(
    config: AdaptationConfig, plan: Plan, cells: dict[str, dict[str, float]]
) -> dict[str, Any]:
    from brainkit.report.adaptation import curve_rows

    rows = curve_rows(cells, plan.ks, config.adaptation.seeds, config.adaptation.seconds_per_trial,
                      config.evaluation.n_way)  # fmt: skip
    return {"target_subject": plan.target, "pretraining_subjects": plan.sources, "k": plan.ks,
            "cells": cells, "curve": rows}  # fmt: skip


@RECIPES.register(
    "adaptation", help="New-subject adaptation: shared-subject pretraining, adapt vs scratch over k"
)
class AdaptationRecipe:
    Config = AdaptationConfig
    # not a `brainkit bench` entry: a protocol over k with its own seeds and intervals (curve.csv, report.html)
    BENCH_SKIP = (
        "a protocol, not one number per method: its own curve over k with seeds (brainkit run adaptation)"
    )
    PRESETS = PRESETS
    resumable = True
    DESIGNS = ("trials",)
    DATA_FIELDS = {"name": "data.name", "options": "data.options"}

    @staticmethod
    def with_dataset(config: AdaptationConfig, name: str, options: dict[str, Any]) -> AdaptationConfig:
        return dataclasses.replace(config, data=dataclasses.replace(config.data, name=name, options=options))

    @staticmethod
    def check(config: AdaptationConfig) -> None:
        """The protocol's settings, the dataset's and encoder's options, the decoder's and the wrapped model's
        configs and the objective, before any data are built."""
        from brainkit.models import model_config
        from brainkit.registry import DATASETS, ENCODERS

        check_settings(config)
        DATASETS.check_options(config.data.name, config.data.options, "data.options")
        if config.data.target in ENCODERS:
            ENCODERS.check_options(config.data.target, config.data.encoder_options, "data.encoder_options")
        spec = config.model
        model_config(spec.name, spec.preset, spec.options, where=f"model.options ({spec.name})")
        if spec.name == "shared_subject":
            raise ConfigError(
                "adaptation: model.name is the decoder inside the shared latent; name a decoder."
            )
        objective(config)

    def run(self, config: AdaptationConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        from brainkit.report.adaptation import write_adaptation_report

        plan = plan_for(config)
        log.info("Pretraining on %s; adapting to %s with k = %s", plan.sources, plan.target, plan.ks)
        pretrained = pretrain(config, plan, folder, resume)
        cells = {}
        for k in plan.ks:
            for seed in config.adaptation.seeds:
                scores = run_cell(config, plan, pretrained, folder, k, seed, resume)
                cells.update({cell_key(m, k, seed): scores[m] for m in METHODS})
        metrics = summary_metrics(config, plan, cells)
        tables, notes = write_adaptation_report(folder, config, metrics)
        return RecipeOutput(tables, notes, metrics)

    def evaluate(self, config: AdaptationConfig, folder: Path) -> dict[str, Any]:
        """Every adapted and scratch model reloaded from its ``final/`` (with its cell's standardizer) and scored
        again; the table and curve recomputed from those scores (training times read from ``done.json``)."""
        from brainkit.training.phase import FINAL, load_result

        plan = plan_for(config)
        cells = {}
        for k in plan.ks:
            for seed in config.adaptation.seeds:
                cell = cell_folder(folder, k, seed)
                held = held_out_trials(plan.dataset, data_spec(config), plan.target, k, seed)
                saved = Standardizer.load(cell / "preprocess.safetensors")
                test = dataclasses.replace(
                    held.test, x=saved.transform(plan.dataset.test[plan.target].values)
                )
                n_voxels = test.x.shape[1]
                model = adapt_model(config, plan, n_voxels, None)
                load_weights(cell / "adapt" / FINAL, AdaptTask(model, objective(config), held.train))
                decoder = build_decoder(config, n_voxels, plan.output_shape)
                load_weights(cell / "scratch" / FINAL, SupervisedTask(decoder, objective(config), held.train))
                for method, scored in (("adapt", Subject(model, plan.target)), ("scratch", decoder)):
                    seconds = load_result(cell / method).seconds
                    cells[cell_key(method, k, seed)] = {**score(config, scored, test), "train_s": seconds}
        return summary_metrics(config, plan, cells)


__all__ = ["AdaptationConfig", "AdaptationRecipe", "AdaptationSpec", "PRESETS"]
