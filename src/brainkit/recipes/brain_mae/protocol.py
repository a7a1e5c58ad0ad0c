"""The BrainMAE protocol on a cohort: the real reference runs, the cohort cut into pretraining windows and
downstream subjects (:func:`cohort_data`, with its checks: targets in the phenotype table, runs long enough), the
variants pretrained, the downstream methods and their scores.

Data: the cohort named by ``config.data`` (the built-in ``hcp_cohort`` or your ``roi_tables``). The first
``n_pretrain_subjects`` subjects' rest runs pretrain every variant; downstream cross-validation uses only the
other subjects (not seen in pretraining): each subject's rest runs give its features (a subject with several rest
runs: its windows of all of them), its phenotype columns the targets, its task runs the transient-state windows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from torch import nn

from brainkit.data.roi_windows import (
    HRF_DELAY_SECONDS,
    StateWindows,
    fc_window_features,
    run_windows,
    transient_windows,
)
from brainkit.data.timeseries import (
    RoiTimeSeries,
    connectivity,
    fisher_z,
    segment_frames,
    upper_triangle,
    windows,
)
from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.downstream import (
    downstream_rows,
    masked_reconstruction_scores,
    readout,
    ridge_head,
    subject_features,
)
from brainkit.recipes.brain_mae.settings import (
    BrainMAERecipeConfig,
    build_variant,
    real_variant,
    variant_slug,
)
from brainkit.recipes.brain_mae.tasks import FinetuneHead, MaskedPretraining, Phases

log = logging.getLogger(__name__)


def _real_series(name: str):
    from brainkit.data.readers import roi_timeseries as real

    return {"brainspace_dk": real.brainspace_rest_dk, "nitime": real.nitime_rest}[name]()


def real_reconstruction(config: BrainMAERecipeConfig, phases: Phases) -> tuple[list[dict], dict, dict]:
    """A model pretrained on each REAL run's first frames (the phase ``real-<source>``), judged on its last ones:
    the score rows, the example reconstructions and source -> model."""
    base = real_variant(config)
    training = replace(config.training, epochs=config.real_epochs)
    rows, examples, models = [], {}, {}
    for source in config.real_sources:
        series = _real_series(source)
        frames = segment_frames(series.tr, config.segment_seconds)
        n_train = int(config.real_train_fraction * series.n_times)
        train_windows = windows(series.values[:n_train], frames * config.real_segments, max(1, frames // 2))
        test = series.values[n_train:]
        test = test[: len(test) // frames * frames][None]
        model, masking = build_variant(base, config, series.n_rois, frames)
        task = MaskedPretraining(model, train_windows, masking, seed=training.seed)
        result = phases.fit(task, training, f"real-{source}")
        log.info(
            "%s on %s: pretrained in %.0f s on %d windows", base, source, result.seconds, len(train_windows)
        )
        held_out = f"{source} (real, last {100 - round(100 * config.real_train_fraction)}% of frames)"
        source_rows, examples[source] = masked_reconstruction_scores(
            {base: model},
            test,
            frames,
            config.n_eval_masks,
            config.masking.eval_mask_ratio,
            config.seed,
            held_out,
        )
        rows += source_rows
        models[source] = model
    return rows, examples, models


@dataclass
class CohortData:
    """The cohort cut for the protocol: pretraining windows (n, frames * pretrain_segments, n_rois) of the first
    subjects' rest runs; for the other (downstream) subjects their rest runs (one list per subject), held-out
    windows (n, n_frames, n_rois), transient task-state windows (or None: ``states=False``) and the targets:
    name -> (values (n_downstream,), "regression" | "classification")."""

    cohort: Any
    downstream: list[str]
    rest: list[list[RoiTimeSeries]]
    frames: int  # per segment
    n_frames: int  # per evaluation window
    train_windows: np.ndarray
    held_out: np.ndarray
    states: StateWindows | None
    targets: dict[str, tuple[np.ndarray, str]]


def _where(run: RoiTimeSeries) -> str:
    return run.info.get("source", f"{run.subject}/{run.run}")


def check_lengths(runs: list[RoiTimeSeries], n_frames: int, what: str, config: BrainMAERecipeConfig) -> None:
    """A DataError naming the first run shorter than ``n_frames`` (what ``what`` needs)."""
    for run in runs:
        if run.n_times < n_frames:
            raise DataError(
                f"brain_mae: {_where(run)} has {run.n_times} frames ({run.n_times * run.tr:.0f} s); {what} needs "
                f"{n_frames} ({n_frames * run.tr:.0f} s: n_segments={config.n_segments} x segment_seconds="
                f"{config.segment_seconds}). Use fewer or shorter segments, or leave that subject out."
            )


def targets_of(
    cohort: Any, subjects: list[str], config: BrainMAERecipeConfig
) -> dict[str, tuple[np.ndarray, str]]:
    """The downstream targets of ``subjects``: each named phenotype column, checked to exist and fit its task."""
    kinds = cohort.info.get("phenotypes", {})
    columns = [k for k in cohort.phenotypes if k != "subject"]
    out = {}
    for task, names, option in (("regression", config.regression_targets, "regression_targets"),
                                ("classification", config.classification_targets, "classification_targets")):  # fmt: skip
        for name in names:
            if name not in cohort.phenotypes or name == "subject":
                raise ConfigError(
                    f"brain_mae: {option} names {name!r}, which {config.data} has no column for; its phenotypes: "
                    f"{columns}. Set {option}=[...] to columns it has (or [] for none)."
                )
            values = cohort.phenotype(name, subjects)
            if task == "regression" and (kinds.get(name) == "categorical" or values.dtype.kind not in "fiu"):
                raise ConfigError(
                    f"brain_mae: phenotype {name!r} of {config.data} is categorical (e.g. {values[:3].tolist()}); "
                    "list it in classification_targets instead of regression_targets."
                )
            if task == "classification" and len(np.unique(values)) < 2:
                raise DataError(
                    f"brain_mae: phenotype {name!r} has one value ({values[0]!r}) among the {len(subjects)} "
                    "downstream subjects; there is nothing to classify."
                )
            out[name] = (values, task)
    return out


def cohort_data(config: BrainMAERecipeConfig) -> CohortData:
    """The cohort of ``config`` split and windowed as the module docstring says."""
    from brainkit.data import dataset_accepts, load_dataset

    seed = {"seed": config.seed} if dataset_accepts(config.data, "seed") else {}
    cohort = load_dataset(config.data, **{**seed, **config.data_options})
    if not 0 < config.n_pretrain_subjects <= len(cohort.subjects) - config.n_folds:
        raise ConfigError(
            f"n_pretrain_subjects {config.n_pretrain_subjects} must leave at least n_folds={config.n_folds} "
            f"of the cohort's {len(cohort.subjects)} subjects for downstream evaluation."
        )
    pretrain_subjects = cohort.subjects[: config.n_pretrain_subjects]
    downstream = cohort.subjects[config.n_pretrain_subjects :]
    rest = [cohort.runs_of("rest", [s]) for s in downstream]
    without = [s for s, runs in zip(downstream, rest, strict=True) if not runs]
    if without:
        raise DataError(
            f"brain_mae: subjects {without[:5]} of {config.data} have no rest run; every downstream subject's "
            "features come from its rest runs (roi_tables: list its rest task in rest_tasks)."
        )
    frames = segment_frames(cohort.tr, config.segment_seconds)
    n_frames = frames * config.n_segments
    check_lengths([r for runs in rest for r in runs], n_frames, "an evaluation window", config)
    pretraining = cohort.runs_of("rest", pretrain_subjects)
    check_lengths(pretraining, frames * config.pretrain_segments, "a pretraining window", config)
    step = max(1, int(round(config.window_step_seconds / cohort.tr)))
    train_windows = run_windows(pretraining, frames * config.pretrain_segments, step)
    held_out = run_windows([r for runs in rest for r in runs], n_frames, n_frames)
    log.info("%s: %d pretraining windows of %d frames; %d held-out", config.data, len(train_windows),
             train_windows.shape[1], len(held_out))  # fmt: skip
    states = None
    if config.states:
        tasks = cohort.runs_of("task", downstream)
        if not tasks:
            raise DataError(
                f"brain_mae: {config.data} has no task runs among the downstream subjects, so there are no task "
                "states to classify; add task runs (roi_tables: with their events.tsv) or set states=false."
            )
        width = max(2, int(round(config.transient_seconds / cohort.tr)))
        check_lengths(
            tasks, int(round(HRF_DELAY_SECONDS / cohort.tr)) + width, "a transient-state window", config
        )
        states = transient_windows(cohort, downstream, frames, config.transient_seconds)
    targets = targets_of(cohort, downstream, config)
    return CohortData(cohort, downstream, rest, frames, n_frames, train_windows, held_out, states, targets)


def pretrain_variants(config: BrainMAERecipeConfig, data: CohortData, phases: Phases) -> tuple[dict, dict]:
    """Each variant pretrained on the cohort's pretraining windows (the phase ``pretrain-<slug>``), validated on
    ``2 * n_folds`` held-out windows: name -> model, name -> history."""
    models, histories = {}, {}
    val = data.held_out[: 2 * config.n_folds]
    for name in config.variants:
        model, masking = build_variant(name, config, len(data.cohort.roi_names), data.frames)
        task = MaskedPretraining(model, data.train_windows, masking, val, seed=config.training.seed)
        result = phases.fit(task, config.training, f"pretrain-{variant_slug(name)}")
        models[name], histories[name] = model, result.history
        log.info("%s pretrained in %.0f s", name, result.seconds)
    return models, histories


def static_fc(runs: list[RoiTimeSeries]) -> np.ndarray:
    """A subject's static connectivity feature: the mean over its runs of the Fisher-z correlation edges."""
    return np.mean(np.stack([upper_triangle(fisher_z(connectivity(r.values))) for r in runs]), axis=0)


def downstream_methods(config: BrainMAERecipeConfig, models: dict, data: CohortData, phases: Phases) -> dict:
    """name -> (subject inputs, state-window inputs or None, head, state head): frozen readouts with ridge heads
    for each variant, ``finetune_variant`` fine-tuned with a linear head (phases ``finetune-subjects-NN`` and
    ``finetune-states-NN``), and the static-connectivity baseline."""
    rest, states = data.rest, data.states

    def state_x(model):
        return None if states is None else readout(model, "features", states.padded).numpy()

    methods = {name: (subject_features(model, rest, data.n_frames), state_x(model), ridge_head, ridge_head)
               for name, model in models.items()}  # fmt: skip
    if config.finetune_epochs > 0:
        training = replace(config.training, epochs=config.finetune_epochs, lr=config.finetune_lr,
                           warmup_epochs=0.0)  # fmt: skip
        model = models[config.finetune_variant]
        methods[f"{config.finetune_variant} (fine-tuned)"] = (
            np.stack([runs[0].values[: data.n_frames] for runs in rest]),  # one window per subject
            None if states is None else states.padded,
            # the frozen rows' readouts (token_connectivity for subjects, features for states)
            FinetuneHead(
                model, training, readout="token_connectivity", phases=phases, name="finetune-subjects"
            ),
            FinetuneHead(model, training, readout="features", phases=phases, name="finetune-states"),
        )
    fc = np.stack([static_fc(runs) for runs in rest])
    fc_states = None if states is None else fc_window_features(states.raw)
    methods["static FC + linear (baseline)"] = (fc, fc_states, ridge_head, ridge_head)
    return methods


@dataclass
class Scores:
    """What the run measures: reconstruction rows (cohort, then real runs), their example reconstructions, the
    downstream table (one row per method), the real-run models, and each variant's frozen subject features
    (n_downstream, n_features), what the saved phenotype heads are fitted on."""

    reconstruction: list[dict[str, Any]]
    examples: dict[str, Any]
    downstream: list[dict[str, Any]]
    real_models: dict[str, nn.Module]
    features: dict[str, np.ndarray]

    def metrics(self, data: CohortData) -> dict[str, Any]:
        """The run's ``metrics`` (all re-computable from its trained phases)."""
        return {
            "reconstruction": self.reconstruction,
            "downstream": self.downstream,
            "n_downstream_subjects": len(data.downstream),
        }


def score(config: BrainMAERecipeConfig, data: CohortData, models: dict, phases: Phases) -> Scores:
    """Masked reconstruction of the cohort's held-out windows and the real runs (whose models are pretrained or
    reloaded through ``phases``), then the downstream table (fine-tuning heads through ``phases`` too)."""
    reconstruction, examples = masked_reconstruction_scores(
        models, data.held_out, data.frames, config.n_eval_masks, config.masking.eval_mask_ratio, config.seed,
        f"{config.data} (unseen subjects)",
    )  # fmt: skip
    real_rows, real_examples, real_models = real_reconstruction(config, phases)
    methods = downstream_methods(config, models, data, phases)
    groups = np.array(data.downstream)
    table = downstream_rows(methods, data.targets, groups, data.states, config.n_folds, config.seed)
    features = {name: methods[name][0] for name in models}
    return Scores(
        reconstruction + real_rows, {config.data: examples} | real_examples, table, real_models, features
    )


__all__ = ["CohortData", "cohort_data", "pretrain_variants", "score", "Scores", "real_reconstruction"]
