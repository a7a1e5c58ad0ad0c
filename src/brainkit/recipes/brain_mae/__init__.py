"""The BrainMAE recipe: pretrain on real and cohort ROI time series, judge masked reconstruction against simple
baselines on held-out data, then predict phenotypes and task states with linear heads (subject-level 5-fold CV)
for BrainMAE, its ablations and the static-connectivity baseline. One report.

Data:
- real: nitime's resting-state ROI run and brainspace's fsaverage5 run in Desikan-Killiany ROIs; each model is
  pretrained on the first ``real_train_fraction`` of the frames and judged on the rest (never seen);
- a cohort (design ``"cohort"``): the built-in ``hcp_cohort`` (Schaefer-100 on real HCP connectivity), or your
  ROI tables (``--set data.name=roi_tables --set data.options.root=DIR``, or ``--preset roi_tables``). The
  first ``n_pretrain_subjects`` subjects' rest runs pretrain every variant; downstream CV uses only the other
  subjects (not seen in pretraining), predicting the phenotype columns ``regression_targets`` /
  ``classification_targets`` and (``states``) the task states (:mod:`.protocol`).

Two tasks for the one trainer (:func:`brainkit.training.train`), in :mod:`.tasks`: :class:`MaskedPretraining`
and :class:`Finetuning` (a linear head on a copy of the encoder, per CV fold, through :class:`FinetuneHead`).

Resume and re-evaluate: every network is one :func:`~brainkit.training.train_phase` folder under the run folder's
``train/``: ``pretrain-<variant>`` (e.g. ``pretrain-sg-brainmae``), ``real-<source>``, and one per fine-tuning fold,
``finetune-subjects-NN`` (the targets in order, regression then classification: ``n_folds`` each) and
``finetune-states-NN``. ``brainkit run brain_mae --out DIR --resume`` continues an interrupted run: finished phases
are reloaded, the interrupted one continues from its ``state/``, the rest train, so it ends where the uninterrupted
run does. ``brainkit eval DIR`` (:meth:`BrainMAERecipe.evaluate`) reloads every phase's ``final/`` weights, trains
nothing and recomputes the run's whole ``metrics`` (they hold no timings). ``checkpoints/`` holds the pretrained
models (:func:`~brainkit.models.save_model`); ``predictor/`` what ``brainkit.load(DIR).predict(series)`` needs
(:mod:`.predict`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from brainkit.recipes import RecipeOutput
from brainkit.recipes.brain_mae.protocol import cohort_data, pretrain_variants, score
from brainkit.recipes.brain_mae.scores import scores as bench_scores
from brainkit.recipes.brain_mae.settings import (
    PRESETS,
    REAL_SOURCES,
    VARIANTS,
    BrainMAERecipeConfig,
    build_variant,
    check_config,
    check_data,
    real_variant,
    variant_slug,
)
from brainkit.recipes.brain_mae.tasks import FinetuneHead, Finetuning, MaskedPretraining, Phases, pretrain
from brainkit.registry import RECIPES


@RECIPES.register(
    "brain_mae",
    help="BrainMAE: pretrain on real + cohort ROI data (yours: roi_tables), reconstruction, phenotypes, states",
)
class BrainMAERecipe:
    Config = BrainMAERecipeConfig
    BENCH_SEEDS = (
        "seed",
        "training.seed",
    )  # what `brainkit bench`'s seed sets: init, masks, batches, the simulated cohort and its CV folds: a new draw of all
    scores = staticmethod(bench_scores)  # its tables as `brainkit bench` score rows
    PRESETS = PRESETS
    resumable = True  # `brainkit run brain_mae --out DIR --resume` continues an interrupted run

    DESIGNS = ("cohort",)  # ROI runs of many subjects + phenotypes (Cohort): hcp_cohort, roi_tables
    DATA_FIELDS = {"name": "data", "options": "data_options"}

    @staticmethod
    def with_dataset(
        config: BrainMAERecipeConfig, name: str, options: dict[str, Any]
    ) -> BrainMAERecipeConfig:
        return dataclasses.replace(config, data=name, data_options=dict(options))

    @staticmethod
    def check(config: BrainMAERecipeConfig) -> None:
        """The settings, the dataset (a cohort, its options, the required ones given) and the model preset and
        options (every variant's), before any data is read."""
        from brainkit.models.base import model_config

        check_config(config)
        check_data(config)
        for name in config.variants:
            changes = {k: v for k, v in VARIANTS[name].items() if k != "masking"}
            model_config("brain_mae", config.model_preset, {**config.model_options, **changes}, where="model")

    def predictor(self, config: BrainMAERecipeConfig, folder: Path):
        """The run, ready to encode new ROI time series (and predict its phenotype targets): :mod:`.predict`."""
        from brainkit.recipes.brain_mae.predict import BrainMAEPredictor

        return BrainMAEPredictor(folder)

    def run(self, config: BrainMAERecipeConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        from brainkit.models import save_model
        from brainkit.recipes.brain_mae.predict import save_state
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
                       metadata={"variant": name, "data": config.data})  # fmt: skip
        save_state(folder, config, data, scores.features)
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


__all__ = ["BrainMAERecipe", "BrainMAERecipeConfig", "PRESETS", "VARIANTS", "REAL_SOURCES", "FinetuneHead",
           "Finetuning", "MaskedPretraining", "Phases", "pretrain", "build_variant", "variant_slug"]  # fmt: skip
