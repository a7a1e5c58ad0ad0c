"""The BrainMAE recipe's settings: the paper's ablation variants, the config (data, protocol sizes, targets), its
presets and the checks made before any data are read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from brainkit.config import bounded, check_bounds
from brainkit.errors import ConfigError
from brainkit.objectives.masked import MaskingConfig
from brainkit.training import TrainingConfig

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

    # The cohort (design "cohort": ROI runs of many subjects + a phenotype table): the built-in hcp_cohort, or
    # yours (`--set data.name=roi_tables --set data.options.root=DIR`, docs/your_data.md).
    data: str = "hcp_cohort"
    data_options: dict[str, Any] = field(default_factory=dict)
    # What the downstream heads predict: phenotype columns of the cohort's table (regression: MAE and r;
    # classification: accuracy and AUROC), and (states=True) the transient task states of its task runs.
    regression_targets: tuple[str, ...] = ("age", "behaviour")
    classification_targets: tuple[str, ...] = ("sex",)
    states: bool = True
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
        both = set(self.regression_targets) & set(self.classification_targets)
        if both:
            raise ConfigError(
                f"brain_mae: {sorted(both)} listed as regression_targets and classification_targets; choose one."
            )


PRESETS = {
    "cpu_small": BrainMAERecipeConfig(),
    # The paper's protocol sizes (1000 pretraining epochs, 300 s windows); the model sizes are our choice.
    "paper": BrainMAERecipeConfig(
        model_preset="sg_paper",
        training=TrainingConfig(epochs=1000, batch_size=64, lr=1e-3, weight_decay=0.05),
        real_epochs=200,
        data_options={"n_subjects": 400},
        n_pretrain_subjects=200,
    ),
    "testing": BrainMAERecipeConfig(
        data_options={"n_subjects": 14, "rest_seconds": 120.0, "task_seconds": 90.0},
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
    # Your ROI tables (the roi_tables dataset: docs/your_data.md): cpu_small's sizes, your cohort only (no real
    # reference runs), half as many pretraining subjects; give the folder with --set data.options.root=DIR.
    "roi_tables": BrainMAERecipeConfig(data="roi_tables", real_sources=(), n_pretrain_subjects=20),
}


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
    if not (config.regression_targets or config.classification_targets or config.states):
        raise ConfigError(
            "brain_mae: nothing to predict downstream; name phenotype columns in regression_targets / "
            "classification_targets, or set states=true."
        )


def check_data(config: BrainMAERecipeConfig) -> None:
    """The dataset: a registered cohort dataset, its options known and the required ones given (``root``)."""
    import inspect

    from brainkit.data.cohort import Cohort
    from brainkit.data.contract import returns_of
    from brainkit.registry import DATASETS

    DATASETS.check_options(config.data, config.data_options, "data.options")
    factory = DATASETS.get(config.data)
    if returns_of(factory) is not Cohort:
        raise ConfigError(
            f"brain_mae reads cohorts of ROI runs (hcp_cohort, roi_tables); {config.data!r} gives a "
            f"{getattr(returns_of(factory), '__name__', returns_of(factory))}."
        )
    parameters = inspect.signature(factory).parameters.values()
    missing = [p.name for p in parameters if p.default is p.empty and p.name not in config.data_options]
    if missing:
        raise ConfigError(
            f"brain_mae: dataset {config.data!r} needs data.options.{', data.options.'.join(missing)} (e.g. "
            + " ".join(f"--set data.options.{name}=..." for name in missing)
            + "; roi_tables: the folder with participants.tsv and sub-*/, docs/your_data.md)."
        )


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


def real_variant(config: BrainMAERecipeConfig) -> str:
    """The variant pretrained on the real runs: SG-BrainMAE when the run has it, else its first variant."""
    return "SG-BrainMAE" if "SG-BrainMAE" in config.variants else config.variants[0]
