"""The BrainMAE recipe: pretrain on real and built-in ROI time series, judge masked reconstruction against simple
baselines on held-out data, then predict phenotypes and task states with linear heads (subject-level 5-fold CV)
for BrainMAE, its ablations and the static-connectivity baseline. One report.

Data:
- real: nitime's resting-state ROI run and brainspace's fsaverage5 run in Desikan-Killiany ROIs; each model is
  pretrained on the first ``real_train_fraction`` of the frames and judged on the rest (never seen);
- built-in: ``hcp_cohort`` (Schaefer-100 on real HCP connectivity). The first ``n_pretrain_subjects`` subjects'
  rest runs pretrain every variant; downstream CV uses only the other subjects (not seen in pretraining).

Two tasks for the one trainer (:func:`brainkit.training.train`): :class:`MaskedPretraining` (a mask per batch,
the weighted masked/visible loss, validation on a fixed mask) and :class:`Finetuning` (a linear head on a copy of
the encoder, per CV fold, through :class:`FinetuneHead`).

Resume and re-evaluate: every network is one :func:`~brainkit.training.train_phase` folder under the run folder's
``train/``: ``pretrain-<variant>`` (e.g. ``pretrain-sg-brainmae``), ``real-<source>``, and one per fine-tuning fold,
``finetune-subjects-NN`` (age, behaviour, sex: ``n_folds`` each, in that order) and ``finetune-states-NN``.
``brainkit run brain_mae --out DIR --resume`` continues an interrupted run: finished phases are reloaded, the
interrupted one continues from its ``state/``, the rest train, so it ends where the uninterrupted run does.
``brainkit eval DIR`` (:meth:`BrainMAERecipe.evaluate`) reloads every phase's ``final/`` weights, trains nothing and
recomputes the run's whole ``metrics`` (they hold no timings). ``checkpoints/`` holds the pretrained models
(:func:`~brainkit.models.save_model`) for use outside the recipe.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.config import bounded, check_bounds
from brainkit.data.roi_windows import check_windows, fc_window_features, run_windows, transient_windows
from brainkit.data.timeseries import connectivity, fisher_z, segment_frames, upper_triangle, windows
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.evaluation.downstream import (
    downstream_rows,
    masked_reconstruction_scores,
    readout,
    reconstruction_error,
    ridge_head,
    subject_features,
)
from brainkit.objectives.masked import MaskingConfig, draw_mask, masked_reconstruction_loss, random_mask
from brainkit.recipes import RecipeOutput
from brainkit.registry import RECIPES
from brainkit.training import FitResult, Task, TrainingConfig, phase_done, train, train_phase
from brainkit.training.phase import DONE, FINAL

log = logging.getLogger(__name__)

# Variant name -> BrainMAE config changes (and masking changes) from the SG-BrainMAE base: the paper's ablations.
VARIANTS: dict[str, dict[str, Any]] = {
    "SG-BrainMAE": {},
    "AG-BrainMAE": {"attention": "adaptive", "n_blocks": 2},
    "vanilla-BrainMAE": {"attention": "content"},
    "BrainAE (no masking)": {"masking": False},
    "PosSG-BrainMAE": {"roi_embedding": "fixed"},
    "SG(SL)-BrainMAE": {"self_loops": True},
}
REAL_SOURCES = ("brainspace_dk", "nitime")


@dataclass(frozen=True)
class BrainMAERecipeConfig:
    """Everything the recipe does; ``brainkit run brain_mae --set key=value`` changes any field."""

    cohort: dict[str, Any] = field(default_factory=dict)  # options of the hcp_cohort dataset
    n_pretrain_subjects: int = bounded(40, ge=1)
    segment_seconds: float = bounded(15.0, gt=0)  # tau (the paper)
    n_segments: int = bounded(
        20, ge=1
    )  # 20 x 15 s = 300 s windows (the paper): evaluation and downstream features
    # Segments are encoded independently, so pretraining may cut runs into shorter windows: more optimiser steps
    # for the same compute (measured: 4-segment windows, 270 steps -> attention-FC rho 0.41 vs 0.07 at 60 steps).
    pretrain_segments: int = bounded(4, ge=1)
    window_step_seconds: float = bounded(
        60.0, gt=0
    )  # pretraining windows start every this many s (60: no overlap)
    model_preset: str = "cpu_small"
    model_options: dict[str, Any] = field(default_factory=dict)
    variants: tuple[str, ...] = tuple(VARIANTS)
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(
            epochs=15, batch_size=16, lr=2e-3, weight_decay=0.05, progress=False
        )
    )
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    real_sources: tuple[str, ...] = REAL_SOURCES
    real_train_fraction: float = bounded(0.7, gt=0, lt=1)
    real_segments: int = bounded(4, ge=1)  # real pretraining windows: 4 segments (the runs are short)
    real_epochs: int = bounded(25, ge=1)
    n_eval_masks: int = bounded(5, ge=1)  # masks drawn per held-out evaluation (mean +- sd)
    n_folds: int = bounded(5, ge=2, fix="cross-validation folds")
    transient_seconds: float = bounded(10.0, ge=0)
    finetune_epochs: int = bounded(
        3, ge=0
    )  # > 0: also fine-tune `finetune_variant` with each linear head (0: frozen only)
    finetune_variant: str = "SG-BrainMAE"
    finetune_lr: float = bounded(1e-3, gt=0)
    seed: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self, "brain_mae")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"brain_mae.variants: unknown {unknown}; choose from {list(VARIANTS)}.")
        if self.finetune_epochs and self.finetune_variant not in self.variants:
            raise ConfigError(
                f"brain_mae.finetune_variant={self.finetune_variant!r} is not among the variants trained "
                f"({list(self.variants)}); add it or set finetune_epochs=0."
            )


PRESETS = {
    "cpu_small": BrainMAERecipeConfig(),
    # The paper's protocol sizes (1000 pretraining epochs, 300 s windows); the model sizes are our choice.
    "paper": BrainMAERecipeConfig(
        model_preset="sg_paper",
        training=TrainingConfig(epochs=1000, batch_size=64, lr=1e-3, weight_decay=0.05),
        real_epochs=200,
        cohort={"n_subjects": 400},
        n_pretrain_subjects=200,
    ),
    "testing": BrainMAERecipeConfig(
        cohort={"n_subjects": 14, "rest_seconds": 120.0, "task_seconds": 90.0},
        n_pretrain_subjects=4,
        n_segments=4,
        pretrain_segments=2,
        window_step_seconds=30.0,
        model_preset="testing",
        variants=("SG-BrainMAE", "BrainAE (no masking)"),
        training=TrainingConfig(epochs=2, batch_size=8, lr=2e-3, progress=False),
        real_sources=("nitime",),
        real_epochs=2,
        n_eval_masks=2,
        n_folds=3,
        finetune_epochs=1,
    ),
}


class MaskedPretraining(Task):
    """BrainMAE pretraining on windows (n_windows, n_frames, n_rois): each global batch draws a mask ratio from
    ``masking.mask_ratio_range`` and a mask from the step's generator; the loss weighs hidden tokens by
    ``masking.masked_weight``. Validation: masked / visible MSE of ``val_windows`` on one fixed mask of
    ``eval_mask_ratio`` (seeded by ``seed``). Checkpoint keys: ``model.*``."""

    def __init__(self, model: nn.Module, windows: np.ndarray, masking: MaskingConfig | None = None,
                 val_windows: np.ndarray | None = None, seed: int = 0):  # fmt: skip
        super().__init__()
        self.model, self.masking = model, masking or MaskingConfig()
        frames, n_rois = model.config.segment_frames, model.config.n_rois
        self.x = check_windows(windows, n_rois, "pretraining windows")
        self.n_segments = self.x.shape[1] // frames
        self.val, self.val_mask = None, None
        if val_windows is not None:
            self.val = check_windows(val_windows, n_rois, "validation windows").numpy()
            generator = torch.Generator().manual_seed(seed + 7)
            n_segments = self.val.shape[1] // frames
            ratio = self.masking.eval_mask_ratio
            self.val_mask = random_mask(len(self.val), n_segments, n_rois, ratio, generator)

    def n_samples(self) -> int:
        return len(self.x)

    def draw(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return draw_mask(self.masking, len(rows), self.n_segments, self.x.shape[2], generator)

    def load(self, rows: torch.Tensor, drawn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], drawn

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, mask = batch
        frames = self.model.config.segment_frames
        return masked_reconstruction_loss(self.model(x, mask), x, mask, frames, self.masking.loss_weight)

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        return {f"val_{k}": v for k, v in reconstruction_error(self.model, self.val, self.val_mask).items()}


class Finetuning(Task):
    """A zero-initialised linear head after a LayerNorm (no affine) on ``encoder.<readout>(x)``, trained with the
    encoder at ``encoder_lr_scale`` x the rate (0: frozen). ``target``: standardised values (regression: MSE) or
    class indices (classification: cross-entropy). Checkpoint keys: ``encoder.*``, ``head.*``."""

    def __init__(self, encoder: nn.Module, x: torch.Tensor, target: torch.Tensor, n_outputs: int,
                 encoder_lr_scale: float = 0.1, readout: str = "features"):  # fmt: skip
        super().__init__()
        self.encoder, self.readout, self.encoder_lr_scale = encoder, readout, encoder_lr_scale
        self.x, self.target = x, target
        with torch.no_grad():
            n_features = getattr(encoder, readout)(x[:1]).shape[1]
        self.norm = nn.LayerNorm(n_features, elementwise_affine=False)
        self.head = nn.Linear(n_features, n_outputs)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        encoder.requires_grad_(encoder_lr_scale > 0)

    def n_samples(self) -> int:
        return len(self.x)

    def load(self, rows: torch.Tensor, drawn: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], self.target[rows]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_frames, n_rois) -> (batch, n_outputs)."""
        return self.head(self.norm(getattr(self.encoder, self.readout)(x)))

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, target = batch
        out = self.predict(x)
        if target.dtype == torch.long:
            return nn.functional.cross_entropy(out, target)
        return nn.functional.mse_loss(out[:, 0], target)

    def parameter_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = [{"params": self.head.parameters()}]
        if self.encoder_lr_scale > 0:
            groups.append({"params": self.encoder.parameters(), "lr_scale": self.encoder_lr_scale})
        return groups


@dataclass(frozen=True)
class Phases:
    """Where a run's trained networks live: one :func:`~brainkit.training.train_phase` folder per network,
    ``folder/<name>``. ``resume``: continue an interrupted phase, reload a finished one; ``reload_only`` (what
    :meth:`BrainMAERecipe.evaluate` uses): load finished phases and never train (a missing one is an error)."""

    folder: Path
    resume: bool = False
    reload_only: bool = False

    def fit(self, task: Task, training: TrainingConfig, name: str) -> FitResult:
        """Train ``task`` as the phase ``name`` (or reload it): its weights end in ``task``."""
        folder = self.folder / name
        if self.reload_only and not phase_done(folder):
            missing = folder / (FINAL if (folder / DONE).is_file() else DONE)
            raise CheckpointError(
                f"{missing} is missing: the run has no finished phase {name!r}, so it cannot be re-evaluated. "
                "Finish an interrupted run with `brainkit run brain_mae --out DIR --resume`, or run it again."
            )
        return train_phase(task, training, folder, self.resume or self.reload_only, name=name)


@dataclass
class FinetuneHead:
    """A head for :func:`~brainkit.evaluation.downstream.cross_validate`: (x_train, y_train, x_test, task, classes)
    -> predictions or class probabilities. Each call fine-tunes a deep copy of ``model`` (left untouched) with
    :class:`Finetuning` through the one trainer, then predicts ``x_test``; seeded, so a fold gives the same numbers.
    With ``phases`` each call is the phase ``<name>-<call number>`` (01, 02, ...: the calls come in the fixed order
    of targets, then folds), so a resumed run reloads the folds it already fine-tuned.
    """

    model: nn.Module
    training: TrainingConfig
    encoder_lr_scale: float = 0.1
    readout: str = "features"  # the model method the head reads, e.g. "token_connectivity"
    phases: Phases | None = None  # None: train in memory only
    name: str = "finetune"
    calls: int = field(default=0, init=False)

    def __call__(self, x_train, y_train, x_test, task: str, classes: np.ndarray | None = None) -> np.ndarray:
        x_train = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
        x_test = torch.as_tensor(np.asarray(x_test, dtype=np.float32))
        if x_train.ndim != 3:
            raise DataError(
                f"FinetuneHead: expected windows (n, n_frames, n_rois), found {tuple(x_train.shape)}."
            )
        if task == "regression":
            mean, std = float(np.mean(y_train)), float(np.std(y_train) or 1.0)
            target, n_outputs = torch.as_tensor((np.asarray(y_train, dtype=np.float32) - mean) / std), 1
        else:
            target = torch.as_tensor(np.searchsorted(classes, y_train), dtype=torch.long)
            n_outputs = len(classes)
        encoder = copy.deepcopy(self.model).train()
        tuned = Finetuning(encoder, x_train, target, n_outputs, self.encoder_lr_scale, self.readout)
        if self.phases is None:
            train(tuned, self.training, name=f"fine-tuning ({self.readout})")
        else:
            self.calls += 1
            self.phases.fit(tuned, self.training, f"{self.name}-{self.calls:02d}")
        tuned.cpu().eval()
        with torch.no_grad():
            out = torch.cat([tuned.predict(x_test[i : i + 64]) for i in range(0, len(x_test), 64)])
        if task == "regression":
            return out[:, 0].numpy() * std + mean
        return out.softmax(dim=1).numpy()


def pretrain(model: nn.Module, windows: np.ndarray, training: TrainingConfig, masking: MaskingConfig,
             val_windows: np.ndarray | None = None, **train_options: Any) -> FitResult:  # fmt: skip
    """Pretrain ``model`` (in place) on ``windows`` with :class:`MaskedPretraining`; ``train_options`` go to
    :func:`~brainkit.training.train` (``out_dir``, ``resume``, ``fabric``, ``until_epoch``, ...)."""
    task = MaskedPretraining(model, windows, masking, val_windows, seed=training.seed)
    return train(task, training, name=f"{type(model).__name__} pretraining", **train_options)


def build_variant(name: str, config: BrainMAERecipeConfig, n_rois: int, frames: int):
    """The BrainMAE of variant ``name`` for ``n_rois`` ROIs and ``frames`` frames per segment, and its masking;
    initialised from ``config.seed`` (so variants of one architecture start from the same weights)."""
    from brainkit.models.base import model_config
    from brainkit.models.brain_mae import BrainMAE

    if name not in VARIANTS:
        raise ConfigError(f"Unknown BrainMAE variant {name!r}; variants: {list(VARIANTS)}.")
    changes = dict(VARIANTS[name])
    masking = (
        replace(config.masking, masking=changes.pop("masking")) if "masking" in changes else config.masking
    )
    options = {**config.model_options, **changes, "n_rois": n_rois, "segment_frames": frames}
    torch.manual_seed(config.seed)
    model = BrainMAE(model_config("brain_mae", config.model_preset, options))
    return model, masking


def variant_slug(name: str) -> str:
    """A filesystem-safe name of a variant: ``"SG(SL)-BrainMAE"`` -> ``"sg_sl-brainmae"``."""
    return name.split(" ")[0].replace("(", "_").replace(")", "").lower()


def _real_series(name: str):
    from brainkit.data.readers import roi_timeseries as real

    return {"brainspace_dk": real.brainspace_rest_dk, "nitime": real.nitime_rest}[name]()


def real_variant(config: BrainMAERecipeConfig) -> str:
    """The variant pretrained on the real runs: SG-BrainMAE when the run has it, else its first variant."""
    return "SG-BrainMAE" if "SG-BrainMAE" in config.variants else config.variants[0]


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


def check_config(config: BrainMAERecipeConfig) -> None:
    """Raise a ConfigError for settings the run would only trip over later."""
    unknown = [v for v in config.variants if v not in VARIANTS]
    if unknown or not config.variants:
        raise ConfigError(f"variants {unknown or '()'} unknown or empty; choose from {list(VARIANTS)}.")
    if config.finetune_epochs > 0 and config.finetune_variant not in config.variants:
        raise ConfigError(
            f"finetune_variant {config.finetune_variant!r} is not among variants {list(config.variants)}."
        )
    if config.transient_seconds > config.segment_seconds:
        raise ConfigError(
            f"transient_seconds={config.transient_seconds} is longer than segment_seconds="
            f"{config.segment_seconds}; a transient window is read as one segment."
        )


@dataclass
class CohortData:
    """The built-in cohort cut for the protocol: pretraining windows (n, frames * pretrain_segments, n_rois) of the
    first subjects' rest runs; for the other (downstream) subjects their rest runs, held-out windows
    (n, n_frames, n_rois), transient task-state windows and phenotypes (n_downstream,)."""

    cohort: Any
    downstream: list[str]
    rest: list
    frames: int  # per segment
    n_frames: int  # per evaluation window
    train_windows: np.ndarray
    held_out: np.ndarray
    states: Any
    targets: dict[str, np.ndarray]


def cohort_data(config: BrainMAERecipeConfig) -> CohortData:
    """The ``hcp_cohort`` of ``config`` split and windowed as the module docstring says."""
    from brainkit.data.builtin.hcp_cohort import hcp_cohort

    cohort = hcp_cohort(**{"seed": config.seed, **config.cohort})
    if not 0 < config.n_pretrain_subjects <= len(cohort.subjects) - config.n_folds:
        raise ConfigError(
            f"n_pretrain_subjects {config.n_pretrain_subjects} must leave at least n_folds={config.n_folds} "
            f"of the cohort's {len(cohort.subjects)} subjects for downstream evaluation."
        )
    pretrain_subjects = cohort.subjects[: config.n_pretrain_subjects]
    downstream = cohort.subjects[config.n_pretrain_subjects :]
    rest = cohort.runs_of("rest", downstream)
    frames = segment_frames(cohort.tr, config.segment_seconds)
    n_frames = frames * config.n_segments
    step = max(1, int(round(config.window_step_seconds / cohort.tr)))
    train_windows = run_windows(
        cohort.runs_of("rest", pretrain_subjects), frames * config.pretrain_segments, step
    )
    held_out = run_windows(rest, n_frames, n_frames)
    log.info("hcp_cohort: %d pretraining windows of %d frames; %d held-out", len(train_windows),
             train_windows.shape[1], len(held_out))  # fmt: skip
    states = transient_windows(cohort, downstream, frames, config.transient_seconds)
    targets = {name: cohort.phenotype(name, downstream) for name in ("age", "behaviour", "sex")}
    return CohortData(cohort, downstream, rest, frames, n_frames, train_windows, held_out, states, targets)


def pretrain_variants(config: BrainMAERecipeConfig, data: CohortData, phases: Phases) -> tuple[dict, dict]:
    """Each variant pretrained on the cohort's pretraining windows (the phase ``pretrain-<slug>``), validated on
    ``2 * n_folds`` held-out windows: name -> model, name -> history."""
    models, histories = {}, {}
    val = data.held_out[: 2 * config.n_folds]
    for name in config.variants:
        model, masking = build_variant(name, config, data.cohort.runs[0].n_rois, data.frames)
        task = MaskedPretraining(model, data.train_windows, masking, val, seed=config.training.seed)
        result = phases.fit(task, config.training, f"pretrain-{variant_slug(name)}")
        models[name], histories[name] = model, result.history
        log.info("%s pretrained in %.0f s", name, result.seconds)
    return models, histories


def downstream_methods(config: BrainMAERecipeConfig, models: dict, data: CohortData, phases: Phases) -> dict:
    """name -> (subject inputs, state-window inputs, head, state head): frozen readouts with ridge heads for each
    variant, ``finetune_variant`` fine-tuned with a linear head (phases ``finetune-subjects-NN`` and
    ``finetune-states-NN``), and the static-connectivity baseline."""
    rest, states = data.rest, data.states
    methods = {name: (subject_features(model, rest, data.n_frames), readout(model, "features", states.padded).numpy(),
                      ridge_head, ridge_head) for name, model in models.items()}  # fmt: skip
    if config.finetune_epochs > 0:
        training = replace(config.training, epochs=config.finetune_epochs, lr=config.finetune_lr,
                           warmup_epochs=0.0)  # fmt: skip
        model = models[config.finetune_variant]
        methods[f"{config.finetune_variant} (fine-tuned)"] = (
            np.stack([r.values[: data.n_frames] for r in rest]),  # one window per subject
            states.padded,
            # the frozen rows' readouts (token_connectivity for subjects, features for states)
            FinetuneHead(
                model, training, readout="token_connectivity", phases=phases, name="finetune-subjects"
            ),
            FinetuneHead(model, training, readout="features", phases=phases, name="finetune-states"),
        )
    fc = np.stack([upper_triangle(fisher_z(connectivity(r.values))) for r in rest])
    methods["static FC + linear (baseline)"] = (fc, fc_window_features(states.raw), ridge_head, ridge_head)
    return methods


@dataclass
class Scores:
    """What the run measures: reconstruction rows (cohort, then real runs), their example reconstructions, the
    downstream table (one row per method) and the real-run models."""

    reconstruction: list[dict[str, Any]]
    examples: dict[str, Any]
    downstream: list[dict[str, Any]]
    real_models: dict[str, nn.Module]

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
        "hcp_cohort (unseen subjects)",
    )  # fmt: skip
    real_rows, real_examples, real_models = real_reconstruction(config, phases)
    methods = downstream_methods(config, models, data, phases)
    groups = np.array(data.downstream)
    table = downstream_rows(methods, data.targets, groups, data.states, config.n_folds, config.seed)
    return Scores(reconstruction + real_rows, {"hcp_cohort": examples} | real_examples, table, real_models)


@RECIPES.register(
    "brain_mae", help="BrainMAE: pretrain on real + built-in ROI data, reconstruction, phenotypes, states"
)
class BrainMAERecipe:
    Config = BrainMAERecipeConfig
    PRESETS = PRESETS
    resumable = True  # `brainkit run brain_mae --out DIR --resume` continues an interrupted run

    @staticmethod
    def check(config: BrainMAERecipeConfig) -> None:
        """The model preset and options (every variant's), before any data is built."""
        from brainkit.models.base import model_config

        for name in config.variants:
            changes = {k: v for k, v in VARIANTS[name].items() if k != "masking"}
            model_config("brain_mae", config.model_preset, {**config.model_options, **changes}, where="model")

    def run(self, config: BrainMAERecipeConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        from brainkit.models import save_model
        from brainkit.report.brain_mae import report

        check_config(config)
        data = cohort_data(config)
        phases = Phases(folder / "train", resume=resume)
        models, histories = pretrain_variants(config, data, phases)
        scores = score(config, data, models, phases)
        for source, model in scores.real_models.items():
            save_model(folder / "checkpoints" / f"real_{source}", model,
                       metadata={"variant": real_variant(config), "data": source})  # fmt: skip
        for name, model in models.items():
            save_model(folder / "checkpoints" / variant_slug(name), model,
                       metadata={"variant": name, "data": "hcp_cohort"})  # fmt: skip
        reconstruction, table = scores.reconstruction, scores.downstream
        notes = report(config, folder, data.cohort, models, histories, reconstruction, table, scores.examples)
        tables = {
            "Masked reconstruction on held-out data (MSE of hidden tokens, z-scored signals)": reconstruction,
            f"Downstream: linear heads, subject-level {config.n_folds}-fold CV on {len(data.downstream)} unseen "
            "subjects": table,
        }
        return RecipeOutput(tables, notes, scores.metrics(data))

    def evaluate(self, config: BrainMAERecipeConfig, folder: Path) -> dict[str, Any]:
        """The run's ``metrics`` again, from the finished phases in ``folder/train`` (pretrained variants, real-run
        models, fine-tuned folds), nothing trained; equal to the run's (its metrics hold no timings)."""
        check_config(config)
        data = cohort_data(config)
        phases = Phases(folder / "train", reload_only=True)
        models, _ = pretrain_variants(config, data, phases)
        return score(config, data, models, phases).metrics(data)
