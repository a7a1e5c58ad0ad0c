"""The SIM recipe (Dahan et al., ICLR 2025): tri-modal fMRI / video / audio retrieval on the surface.

``brainkit run sim`` on the built-in movie dataset (``movie_surface_like``):
1. vsMAE pretraining on the REAL resting-state run (:mod:`brainkit.recipes.vsmae`, SIM's declared pretraining,
   written to ``vsmae/`` with its own report), or a SiT from a previous ``brainkit run vsmae``
   (``vsmae_checkpoint``); the SIM encoder has the vsMAE's encoder config and patch grid, so its weights load;
2. samples, clip halves and subject split (:mod:`brainkit.data.movie_samples`);
3. the tri-modal model (:class:`SIMTask` on the one trainer) trained twice, with the same seed, batches and
   steps: from scratch and from vsMAE, each a phase (:func:`brainkit.training.train_phase`) in
   ``train/sim_<init>``;
4. retrieval (soft / hard negatives, fMRI -> video / audio) in the three settings by SIM's released protocol
   (33 candidates, 100 targets per subject and run; ``evaluation.protocol="all_targets"``: every clip a target
   among 32), and the ridge baseline on the same candidates (:mod:`brainkit.evaluation.movie_retrieval`);
5. patch importance by occlusion drawn on the inflated fsaverage5 surface beside the dataset's truth map,
   retrieval examples, training curves: ``report.html`` (:mod:`brainkit.report.sim`); models under
   ``checkpoints/sim_<init>``.

Resume and re-evaluate: a killed run keeps its partial folder; ``brainkit run sim --out DIR --resume`` reloads
the finished phases (the vsMAE pretraining in ``vsmae/train/vsmae``, each SIM fit), continues the interrupted
one from its ``state/`` and recomputes everything after, so it ends with the uninterrupted run's metrics.
``brainkit eval DIR`` (:meth:`SIMRecipe.evaluate`) rebuilds the metrics from the checkpoints without training;
they equal the run's, whose curves leave out wall-clock seconds (kept in each phase's ``done.json``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.data import movie_samples as ms
from brainkit.errors import ConfigError
from brainkit.evaluation import movie_retrieval as mr
from brainkit.recipes import RecipeOutput
from brainkit.recipes.sim.check import check_inits, check_sim
from brainkit.recipes.sim.config import (
    INITS,
    PRESETS,
    SIMAdaptationSettings,
    SIMFitOptions,
    SIMRecipeConfig,
)
from brainkit.recipes.sim.datasets import load_movie_data
from brainkit.recipes.sim.imported import RELEASED_FILES, load_released_sim
from brainkit.recipes.sim.scores import scores as bench_scores
from brainkit.recipes.sim.split import build_sim, prepare, retrieval_seed
from brainkit.recipes.sim.state import STATE, SIMState
from brainkit.recipes.sim.task import SIMTask, parameter_groups
from brainkit.recipes.vsmae import (
    encoder_checkpoint,
    pretrained_encoder,
    without_seconds,
)
from brainkit.registry import RECIPES
from brainkit.report import sim as report
from brainkit.training import torch_threads
from brainkit.training.phase import load_result, train_phase

log = logging.getLogger(__name__)


def sim_task(config: SIMRecipeConfig, model, split: dict[str, Any], pretrained: bool) -> SIMTask:
    """The fit of ``model`` on ``split`` (from :func:`prepare`); ``pretrained``: the fit options apply."""
    f = config.fit
    options = (
        (f.pretrained_lr_scale, f.pretrained_layer_decay, f.pretrained_frozen_steps) if pretrained else ()
    )
    sampler = ms.BatchDraw(split["arrays"].keys, split["groups"]["train"], split["clips"]["train"])
    return SIMTask(model, split["arrays"], sampler, split["monitor"], *options)


def evaluate(config: SIMRecipeConfig, model, split: dict[str, Any], data) -> dict[str, Any]:
    """Retrieval scores in every setting, retrieval examples and occlusion importance of a trained SIM."""
    arrays, settings = split["arrays"], split["settings"]
    stimulus = mr.embed_stimuli(model, arrays)

    def predict(samples):  # one fMRI embedding for both directions
        embedding = mr.embed_fmri(model, arrays, samples)
        return {"video": embedding, "audio": embedding}

    scores, predicted = mr.score_settings(predict, stimulus, settings, split["clips"], data.segment_of,
                                          retrieval_seed(config), data.retest, config.evaluation)  # fmt: skip
    sim = config.evaluation.protocol == "sim"  # SIM's pools come from the full runs' layout
    segments = data.segment_of if sim else ms.setting_segments(data.segment_of, split["clips"]["held_out"])
    examples = mr.retrieval_examples(predicted["unseen_both"]["video"], settings["unseen_both"], stimulus["video"],
                                     segments, seed=config.seed, retest=data.retest if sim else None)  # fmt: skip
    importance = split["importance"]
    occlusion = mr.occlusion_importance(model, arrays.clips(importance), arrays.features(importance)[0])
    return {
        "scores": scores,
        "grid": report.retrieval_grid(examples, data.thumbnails),
        "importance": occlusion,
    }


def ridge_scores(config: SIMRecipeConfig, split: dict[str, Any], data) -> dict:
    """The ridge baseline's retrieval (same candidates as SIM's: the same seed)."""
    arrays, clips = split["arrays"], split["clips"]
    baseline = mr.RidgeBaseline(arrays, data.cortex, config.ridge_alpha)
    baseline.fit(ms.samples_of(split["groups"]["train"], clips["train"]))
    stimulus = {"video": arrays.video, "audio": arrays.audio}
    return mr.score_settings(baseline.predict, stimulus, split["settings"], clips, data.segment_of,
                             retrieval_seed(config), data.retest, config.evaluation)[0]  # fmt: skip


def phase_name(init: str) -> str:
    """The tri-modal fit's loop name (its folder is ``train/sim_<init>``)."""
    return f"SIM {init}"


def train_sim(config: SIMRecipeConfig, split: dict[str, Any], data, init: str, checkpoint: Path | None,
              folder: Path, resume: bool) -> tuple[nn.Module, list[dict[str, Any]]]:  # fmt: skip
    """One SIM (``init``: scratch or vsmae, from the SiT in ``checkpoint``) trained in ``folder/train/sim_<init>``
    (``resume``: reloaded when finished, continued when interrupted); returns (model, history)."""
    torch.manual_seed(config.seed)  # the same heads for both inits, and for a resumed run
    model = build_sim(config, split["encoder"], data.video.shape[-1], data.audio.shape[-1])
    if init == "vsmae":
        model.init_encoder(checkpoint)
    task = sim_task(config, model, split, pretrained=init == "vsmae")
    training = dataclasses.replace(config.training, seed=config.seed)
    fitted = train_phase(task, training, folder / "train" / f"sim_{init}", resume, name=phase_name(init))
    log.info("SIM %s: trained in %.0f s", init, fitted.seconds)
    return model, fitted.history


def score_models(config: SIMRecipeConfig, split: dict[str, Any], data, models: dict[str, nn.Module]) -> dict:
    """Everything measured on the trained ``models`` (init -> SIM) and the ridge baseline: per-init results
    (:func:`evaluate`), scores per method, the main and full tables, importance maps and their correlations."""
    results = {init: evaluate(config, model, split, data) for init, model in models.items()}
    scores = {init: result["scores"] for init, result in results.items()}
    if config.ridge_alpha is not None:
        scores["ridge"] = ridge_scores(config, split, data)
    main, full = mr.retrieval_rows(scores, {method: report.LABELS[method] for method in scores})
    importance = {init: result["importance"] for init, result in results.items()}
    if data.truth_map is None:  # real data: the maps, nothing to correlate them with
        n_vertices = len(data.cortex)
        vertex_maps = {
            k: mr.patches_to_vertices(v, split["patches"], n_vertices) for k, v in importance.items()
        }
        correlations = {}
    else:
        vertex_maps, correlations = mr.importance_maps(
            importance, split["patches"], data.truth_map, data.cortex
        )
    return {"results": results, "scores": scores, "main": main, "full": full, "vertex_maps": vertex_maps,
            "correlations": correlations}  # fmt: skip


def sim_metrics(scored: dict, histories: dict[str, list], split: dict[str, Any], data, reconstruction: list,
                n_parameters: int) -> dict[str, Any]:  # fmt: skip
    """The run's metrics (what :meth:`SIMRecipe.evaluate` recomputes): tables, curves without wall-clock
    seconds, importance correlations, the split, the vsMAE reconstruction rows, the parameter count."""
    groups, clips = split["groups"], split["clips"]
    return {"main": scored["main"], "full": scored["full"],
            "histories": {f"SIM {INITS[init]}": without_seconds(h) for init, h in histories.items()},
            "importance_correlation": scored["correlations"],
            "subjects": {k: [data.subjects[i] for i in v] for k, v in groups.items()},
            "n_clips": {k: int(v.sum()) for k, v in clips.items()}, "vsmae_reconstruction": reconstruction,
            "n_parameters": n_parameters}  # fmt: skip


def run_sim(config: SIMRecipeConfig, folder: Path, data, resume: bool = False) -> RecipeOutput:
    """The protocol (module doc) on ``data``, writing under ``folder`` (``resume``: continue an interrupted run)."""
    from brainkit.models import count_parameters, save_model

    split = prepare(config, data)
    checkpoint, reconstruction, origin = (
        pretrained_encoder(split["vsmae"], config.vsmae_checkpoint, folder, resume)
        if "vsmae" in config.inits
        else (None, [], "")
    )
    train_subjects = ",".join(data.subjects[i] for i in split["groups"]["train"])
    models, histories = {}, {}
    for init in config.inits:
        models[init], histories[init] = train_sim(config, split, data, init, checkpoint, folder, resume)
        save_model(folder / "checkpoints" / f"sim_{init}", models[init],
                   metadata={"init": init, "train_subjects": train_subjects})  # fmt: skip
    n_parameters = count_parameters(models[config.inits[-1]])
    scored = score_models(config, split, data, models)
    main, full, scores = scored["main"], scored["full"], scored["scores"]
    maps = {f"importance, SIM {INITS[init]}": m for init, m in scored["vertex_maps"].items()}
    if data.truth_map is not None:
        maps["truth map (encoding strength)"] = np.asarray(data.truth_map, dtype=float)
    grids = {
        f"SIM {INITS[init]}": r["grid"] for init, r in scored["results"].items() if r["grid"] is not None
    }
    context = {"data": data, "groups": split["groups"], "clips": split["clips"], "scores": scores,
               "origin": origin, "reconstruction": reconstruction, "n_parameters": n_parameters,
               "encoder": split["encoder"], "importance_samples": len(split["importance"]),
               "correlations": scored["correlations"]}  # fmt: skip
    notes = report.notes_for(config, main, context)
    curves = {f"SIM {INITS[init]}": history for init, history in histories.items()}
    report.write_sim_report(folder, main, full, curves, grids, maps, data.cortex, notes, reconstruction)
    tables = {report.table_title(config.evaluation): main}
    metrics = sim_metrics(scored, histories, split, data, reconstruction, n_parameters)
    SIMState.from_run(config, split, data, models, retrieval_seed(config)).save(
        folder
    )  # predict without the data
    return RecipeOutput(tables, notes, metrics)


def evaluate_sim(config: SIMRecipeConfig, folder: Path, data) -> dict[str, Any]:
    """The metrics of the finished run in ``folder`` again, nothing trained: every SIM from
    ``checkpoints/sim_<init>`` re-scored (the same seeded candidates), the ridge baseline refitted (closed form),
    the vsMAE reconstruction re-scored from ``vsmae/checkpoints/vsmae`` (when pretrained in the run), the curves
    read from ``train/sim_<init>/done.json``."""
    from brainkit.models import count_parameters
    from brainkit.recipes.vsmae import VSMAERecipe, run_model

    split = prepare(config, data)
    reconstruction = []
    if "vsmae" in config.inits and not config.vsmae_checkpoint:
        reconstruction = VSMAERecipe().evaluate(split["vsmae"], folder / "vsmae")["reconstruction"]
    models = {init: run_model(folder, f"sim_{init}", "sim") for init in config.inits}
    histories = {init: load_result(folder / "train" / f"sim_{init}").history for init in config.inits}
    scored = score_models(config, split, data, models)
    n_parameters = count_parameters(models[config.inits[-1]])
    return sim_metrics(scored, histories, split, data, reconstruction, n_parameters)


@RECIPES.register("sim", help="SIM: SiT + vsMAE init, tri-modal fMRI/video/audio retrieval on surface movies")
class SIMRecipe:
    Config = SIMRecipeConfig
    BENCH_SEEDS = (
        "seed",
    )  # what `brainkit bench`'s seed sets: init, batches, the held-out subjects and the retrieval candidates: a new draw of all
    scores = staticmethod(bench_scores)  # its tables as `brainkit bench` score rows
    PRESETS = PRESETS
    resumable = True  # `brainkit run sim --out DIR --resume` continues an interrupted run, in either phase
    # Surface movie runs (MovieSurfaceData): a movie_surface_like preset or a registered dataset of that container
    # (`--set data.name=hcp_movie_surface --set data.options.root=DIR`).
    DESIGNS = ("continuous",)
    DATA_FIELDS = {"name": "data", "options": "data_options"}
    # `brainkit import-weights sim DIR`: SIM's run folder (its four *-best.pt files) or one whole-model file
    RELEASED_FILES = RELEASED_FILES
    IMPORT_OVERRIDES = ("inits=[released]",)

    def import_weights(self, config: SIMRecipeConfig, weights: dict, folder: Path, source: dict) -> list[str]:
        """SIM's released weights as this run's ``released`` init (recipes/sim/imported.py): its checkpoint, a
        finished phase with no steps, the prediction state."""
        from brainkit.models import save_model
        from brainkit.training.phase import write_imported_phase

        if tuple(config.inits) != ("released",):
            raise ConfigError(
                f"sim import-weights writes the released init alone; found inits={list(config.inits)}."
            )
        with torch_threads(config.threads):
            data = load_movie_data(config)
            split = prepare(config, data)
            torch.manual_seed(config.seed)
            model = build_sim(config, split["encoder"], data.video.shape[-1], data.audio.shape[-1])
            notes = load_released_sim(model, split["encoder"], weights, source)
            task = sim_task(config, model, split, pretrained=False)
            write_imported_phase(
                task, config.training, folder / "train" / "sim_released", "SIM released", source
            )
            save_model(
                folder / "checkpoints" / "sim_released",
                model,
                {"init": "released", "imported": source["sha256"]},
            )
            SIMState.from_run(config, split, data, {"released": model}, retrieval_seed(config)).save(folder)
        return notes

    @staticmethod
    def with_dataset(config: SIMRecipeConfig, name: str, options: dict[str, Any]) -> SIMRecipeConfig:
        return dataclasses.replace(config, data=name, data_options=dict(options))

    @staticmethod
    def check(config: SIMRecipeConfig) -> None:
        """The data preset and options, the vsMAE and SIM model configs, the subject split (recipes/sim/check.py),
        and the adaptation settings when enabled."""
        check_sim(config, INITS)
        if config.adaptation.enabled:
            from brainkit.recipes.sim.adaptation import check_adaptation

            check_adaptation(config)

    def predictor(self, config: SIMRecipeConfig, folder: Path):
        """The run, ready to embed new recordings and rank its test clips (recipes/sim/predict.py); a run from
        before ``predictor/`` was saved rebuilds that state from its data and checkpoints."""
        from brainkit.recipes.sim.predict import SIMPredictor

        folder = Path(folder)
        if not (folder / STATE / "inputs.json").is_file():
            from brainkit.recipes.vsmae import run_model

            with torch_threads(config.threads):
                data = load_movie_data(config)
                models = {init: run_model(folder, f"sim_{init}", "sim") for init in config.inits}
                state = SIMState.from_run(config, prepare(config, data), data, models, retrieval_seed(config))
            return SIMPredictor(config, folder, state)
        return SIMPredictor(config, folder, SIMState.load(folder))

    def run(self, config: SIMRecipeConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        check_inits(config, INITS)
        if "released" in config.inits:
            raise ConfigError(
                "inits=[released] names weights imported with `brainkit import-weights sim DIR --out RUN`; a run "
                "trains inits scratch and/or vsmae."
            )
        if config.adaptation.enabled:  # new-subject adaptation instead of the comparison of inits
            from brainkit.recipes.sim.adaptation import check_adaptation, run_adaptation

            check_adaptation(config)
            with torch_threads(config.threads):
                return run_adaptation(config, folder, load_movie_data(config), resume)
        with torch_threads(config.threads):
            return run_sim(config, folder, load_movie_data(config), resume)

    def evaluate(self, config: SIMRecipeConfig, folder: Path) -> dict[str, Any]:
        """The run's ``metrics`` recomputed from its checkpoints (:func:`evaluate_sim`); equal to them, since
        the metrics leave out wall-clock seconds (the phases' ``done.json`` hold those)."""
        check_inits(config, INITS)
        if config.adaptation.enabled:
            raise ConfigError(
                "brainkit eval does not re-score a sim adaptation run yet: its scores are in the run's metrics.json "
                "and curve.csv (each adapted and scratch SIM is in kK_seedS/<method>/final/)."
            )
        with torch_threads(config.threads):
            return evaluate_sim(config, folder, load_movie_data(config))


__all__ = ["PRESETS", "SIMAdaptationSettings", "SIMFitOptions", "SIMRecipe", "SIMRecipeConfig", "SIMTask", "build_sim",
           "encoder_checkpoint", "evaluate_sim", "load_movie_data", "parameter_groups", "prepare", "retrieval_seed", "run_sim",
           "score_models", "sim_task", "train_sim"]  # fmt: skip
