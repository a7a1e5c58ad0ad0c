"""The Vis-Dec recipe: reconstruct seen images from fMRI in three phases, scored against baselines.

``brainkit run vis_dec`` on the built-in ``nsd_like`` data (real images, simulated voxels), one subject:

1. phase 1, DC-MAE pretraining on the subject's training trials (:mod:`brainkit.models.dc_mae`);
2. phase 2, cross-modal tuning of the fMRI MAE with an image MAE (:mod:`brainkit.models.cross_modal`);
3. phase 3, latent diffusion conditioned on the fMRI encoder's tokens (:mod:`brainkit.models.ldm`): a small VAE
   and UNet trained here on the training images first (or a real pretrained LDM from ``ldm_dir``), then the UNet
   and the 77-token mapper fine-tuned on (trial, image) pairs;

then ``n_samples`` reconstructions per test fMRI, scored by :mod:`brainkit.evaluation.reconstruction` beside
three baselines: the same reconstructions paired with the wrong images (shuffled), the LDM's samples before
phase 3 from a zero context (no fMRI), and the VAE's own reconstruction of the real image (the ceiling of any
output of this LDM). Writes ``report.html`` (grid, tables, curves), checkpoints and the sampled images.

Every training phase is a task of the one trainer (:func:`brainkit.training.train`):
:mod:`~brainkit.recipes.vis_dec.encoder` (phases 1-2) and :mod:`~brainkit.recipes.vis_dec.diffusion` (phase 3);
:mod:`~brainkit.recipes.vis_dec.arrays` builds the subject's arrays, :mod:`~brainkit.recipes.vis_dec.phases`
runs the phases in their folders, :mod:`~brainkit.recipes.vis_dec.sampling` samples; the scores come from
:mod:`brainkit.evaluation.reconstruction_baselines` and the page from :mod:`brainkit.report.vis_dec`.

Resume and re-evaluate: each trained network is a resumable phase in ``train/<name>/`` (``phase1_dc_mae``,
``phase2_image_mae``, ``phase2_cross_modal``, ``ldm_vae``, ``ldm_unet``, ``phase3_ldm``), and every network is
built right after seeding, so ``brainkit run vis_dec --out DIR --resume`` reloads the finished phases, continues
the interrupted one and ends where the uninterrupted run does. ``brainkit eval DIR`` (:meth:`VisDecRecipe.evaluate`)
reloads ``ldm_finetuned/``, ``fmri_conditioner/`` and ``ldm_pretrained/`` without training and samples with the
run's seeds: the same ``metrics`` (the four rows' scores, the guidance choice), exactly on CPU; no timings or
curves (those are in the tables, ``report.html``, each phase's ``history.jsonl``). ``brainkit import-weights
vis_dec FILE`` starts a run from a released phase-1 or phase-2 checkpoint (:mod:`~brainkit.recipes.vis_dec.imported`).
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.config import from_dict, to_dict
from brainkit.data import dataset_accepts, load_dataset
from brainkit.errors import ConfigError
from brainkit.evaluation.reconstruction_baselines import compare_notes, metric_row, score_with_baselines
from brainkit.evaluation.reconstruction_tables import metrics_table
from brainkit.models import count_parameters
from brainkit.models.ldm import PRESETS as LDM_PRESETS
from brainkit.models.ldm import LDMConfig
from brainkit.recipes import RecipeOutput
from brainkit.recipes.vis_dec import imported, phases, sampling
from brainkit.recipes.vis_dec.arrays import VisDecArrays, prepare_arrays
from brainkit.recipes.vis_dec.config import _FAST, _FAST_MAE, FAST_DATA, SIMULATED, VisDecRecipeConfig
from brainkit.recipes.vis_dec.diffusion import LDM_PAPER_TRAINING
from brainkit.recipes.vis_dec.encoder import CROSS_MODAL_PAPER_TRAINING, DC_MAE_PAPER_TRAINING
from brainkit.recipes.vis_dec.scores import scores as bench_scores
from brainkit.registry import RECIPES
from brainkit.report.labels import column_label
from brainkit.report.vis_dec import guidance_note, guidance_rows, write_vis_dec_report
from brainkit.training import torch_threads

log = logging.getLogger(__name__)


@RECIPES.register("vis_dec", help="Vis-Dec: DC-MAE + cross-modal tuning + fMRI-conditioned latent diffusion.")
class VisDecRecipe:
    Config = VisDecRecipeConfig
    BENCH_SEEDS = (
        "seed",
        "sample_seed",
        "pretrain.seed",
        "image_pretrain.seed",
        "tune.seed",
        "vae_training.seed",
        "unet_training.seed",
        "finetune.seed",
    )  # what `brainkit bench`'s seed sets: every phase's init, masks, noise and batches, and the samples; the test images stay
    scores = staticmethod(bench_scores)  # its tables as `brainkit bench` score rows
    PRESETS = {
        # built-in nsd_like subj01 (3,000 training trials, 3,931 voxels), 32 px LDM, on one CPU thread
        "cpu_small": VisDecRecipeConfig(),
        "testing": VisDecRecipeConfig(
            data=FAST_DATA,
            n_test_images=0,
            dc_mae_preset="testing",
            image_mae_preset="testing",
            cross_modal_preset="testing",
            image_pretrain=_FAST_MAE,
            pretrain=_FAST_MAE,
            tune=_FAST_MAE,
            ldm_preset="testing",
            vae_training=_FAST,
            unet_training=_FAST,
            finetune=_FAST,
            n_samples=2,
            n_steps=2,
            metric_trials=10,
            n_way=(2,),
            feature_layers=("lite0_block1",),
            n_shown=3,
            n_val_images=4,
            guidance_candidates=(1.0, 3.0),
            guidance_layer="lite0_block1",
        ),
        # The paper's sizes and schedule (METHODS.md 4.2-4.4): DC-MAE 1024/24/16 (~151 M) with phase 1's optimiser
        # (encoder.DC_MAE_PAPER_TRAINING: AdamW (0.9, 0.95) lr 2.5e-4, wd 0.05, batch 250, 140 epochs, 40 warmup,
        # clip 0.8, seed 2022); phase 2 as encoder.CROSS_MODAL_PAPER_TRAINING (lr 5.3e-5, 60 epochs) with
        # facebook/vit-mae-base (set image_mae_dir; without it one of its architecture is pretrained here); phase 3 fine-tunes a pretrained 256 px LDM (ldm_dir,
        # required) as diffusion.LDM_PAPER_TRAINING (batch 8, lr 5.3e-5, 700 epochs), the encoder trainable, PLMS
        # 250 steps, 5 samples per fMRI. A GPU job; not run here.
        "paper": VisDecRecipeConfig(
            dc_mae_preset="paper",
            image_mae_preset="vit_mae_base",
            cross_modal_preset="paper",
            pretrain=replace(DC_MAE_PAPER_TRAINING, accelerator="cuda"),
            tune=replace(CROSS_MODAL_PAPER_TRAINING, accelerator="cuda"),
            ldm_preset="paper",
            finetune=replace(LDM_PAPER_TRAINING, accelerator="cuda"),
            train_encoder=True,
            n_samples=5,
            n_steps=250,
            guidance_scale=1.0,
            n_test_images=0,
            metric_trials=1000,
            threads=None,
        ),
        # The real GOD / BOLD5000 downloads (docs/datasets.md), the cpu_small schedule: phase 1 on the subject's
        # training fMRI, phases 2-3 on its (trial, image) pairs, reconstruction of its averaged test images (GOD's 50,
        # BOLD5000's repeated 113). Name the folder: --set data.root=DIR (GOD: data/Kamitani/npz).
        "god": VisDecRecipeConfig(dataset="god", subject="sbj_3", n_test_images=0),  # README: GOD subject 3
        "bold5000": VisDecRecipeConfig(dataset="bold5000", subject="CSI1", n_test_images=0),
    }  # fmt: skip

    resumable = True  # `brainkit run vis_dec --out DIR --resume` continues an interrupted run
    DESIGNS = ("trials",)  # any trial-based dataset with stimulus images (yours: brainkit.run(dataset=))
    DATA_FIELDS = {"name": "dataset", "options": "data", "subject": "subject"}
    # `brainkit import-weights vis_dec FILE`: a released phase-1 or phase-2 checkpoint (vis_dec/imported.py)
    RELEASED_METADATA, IMPORT_OVERRIDES = imported.RELEASED_METADATA, imported.IMPORT_OVERRIDES

    def import_weights(
        self, config: VisDecRecipeConfig, weights: dict, folder: Path, source: dict
    ) -> list[str]:
        """The released phase written as a finished phase of ``folder``, then the rest trained by :meth:`run`."""
        _check(config)
        with torch_threads(config.threads):
            return imported.import_weights(config, weights, folder, source, _inputs, self._run)

    def predictor(self, config: VisDecRecipeConfig, folder: Path):
        """The run, ready to reconstruct images from new recordings (:mod:`brainkit.recipes.vis_dec.predict`)."""
        from brainkit.recipes.vis_dec.predict import VisDecPredictor

        with torch_threads(config.threads):
            return VisDecPredictor(config, folder, _inputs)

    @staticmethod
    def check(config: VisDecRecipeConfig) -> None:
        """Every preset, option and bound of the four networks and the data, before anything is built."""
        _check(config)

    @staticmethod
    def with_dataset(config: VisDecRecipeConfig, name: str, options: dict[str, Any]) -> VisDecRecipeConfig:
        return replace(config, dataset=name, data=options)

    def run(self, config: VisDecRecipeConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        _check(config)
        with torch_threads(config.threads):
            return self._run(config, folder, resume)

    def evaluate(self, config: VisDecRecipeConfig, folder: Path) -> dict[str, Any]:
        """The run's ``metrics`` again from ``folder``'s checkpoints (``ldm_finetuned/``, ``fmri_conditioner/``,
        ``ldm_pretrained/``), without training: the same seeded guidance search, samples and scores, so on CPU
        the result equals the run's ``metrics`` exactly (``metrics`` holds no timings or training curves: those
        are in the tables, ``report.html`` and each phase's ``train/<name>/history.jsonl``)."""
        _check(config)
        with torch_threads(config.threads):
            _, ldm_config, arrays = _inputs(config)
            ldm, conditioner = phases.load_trained(config, ldm_config, arrays.train_voxels.shape[1], folder)
            images, guidance = sampling.sample_run(config, ldm_config, ldm, conditioner, arrays, folder)
            return _scores(config, images, guidance, arrays)[1]

    def _run(self, config: VisDecRecipeConfig, folder: Path, resume: bool) -> RecipeOutput:
        seconds: dict[str, float] = {}
        dataset_name, ldm_config, arrays = _inputs(config)
        encoder, histories, counts = phases.encoder_phases(config, arrays, folder, seconds, resume)

        start = time.perf_counter()
        ldm = phases.latent_diffusion(ldm_config, config.ldm_dir, arrays.train_images, arrays.test_images,
                                      config.vae_training, config.unet_training, folder, resume)  # fmt: skip
        histories |= ldm.histories
        seconds["LDM pretraining: VAE + unconditional UNet"] = time.perf_counter() - start
        start = time.perf_counter()
        torch.manual_seed(config.seed)  # the mapper's initial weights, whatever the phases before left
        conditioner = phases.fmri_conditioner(
            encoder, arrays.train_voxels.shape[1], ldm.unet.config.cross_attention_dim, config.train_encoder
        )
        histories["phase 3: LDM fine-tuning on fMRI"] = phases.finetune_on_fmri(
            ldm, conditioner, arrays, config.finetune, folder, resume, ldm_config.unet_trained
        )
        seconds["phase 3: LDM fine-tuning"] = time.perf_counter() - start
        counts |= {"VAE (frozen in phase 3)": count_parameters(ldm.vae, trainable_only=False),
                   "UNet": count_parameters(ldm.unet, trainable_only=False),
                   "context mapper (Conv1d x 2 + Linear)": count_parameters(conditioner.mapper, trainable_only=False)}  # fmt: skip
        images, guidance = sampling.sample_run(config, ldm_config, ldm, conditioner, arrays, folder, seconds)
        np.savez_compressed(folder / "reconstructions.npz", test_ids=arrays.test_ids, real=images["real"],
                            vis_dec=images["Vis-Dec"], no_fmri=images["no fMRI"], vae=images["VAE ceiling"])  # fmt: skip
        start = time.perf_counter()
        output = _report(
            config, arrays, ldm, images, histories, seconds, counts, folder, dataset_name, guidance
        )
        log.info("vis_dec: scored in %.0f s", time.perf_counter() - start)
        return output


def _check(config: VisDecRecipeConfig) -> None:
    """Refuse settings the recipe cannot run with, before any work: the dataset's options, every phase's preset
    and options (DC-MAE, image MAE, cross-modal, LDM), the extra pretraining sources, the guidance search."""
    from brainkit.data.readers.pretraining_sources import pretraining_reader
    from brainkit.models.cross_modal import CROSS_PRESETS, IMAGE_MAE_PRESETS, CrossModalConfig
    from brainkit.registry import DATASETS

    DATASETS.check_options(config.dataset, config.data, "vis_dec data")
    required = [n for n, p in inspect.signature(DATASETS.get(config.dataset)).parameters.items()
                if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in config.data]  # fmt: skip
    if required:
        raise ConfigError(
            f"vis_dec: dataset {config.dataset!r} needs data.{required[0]}; e.g. --set data.{required[0]}=DIR "
            "(the folder you downloaded: docs/datasets.md)."
        )
    dc_mae = phases.dc_mae_config(config)
    if config.n_voxels is not None and config.n_voxels % dc_mae.patch_size:
        raise ConfigError(
            f"vis_dec: n_voxels={config.n_voxels} is not a multiple of the patch size {dc_mae.patch_size}."
        )
    if not config.image_mae_dir and config.image_mae_preset not in IMAGE_MAE_PRESETS:
        raise ConfigError(
            f"vis_dec: image_mae_preset must be one of {sorted(IMAGE_MAE_PRESETS)}, found "
            f"{config.image_mae_preset!r} (or set image_mae_dir to a local ViT-MAE folder)."
        )
    if config.cross_modal_preset not in CROSS_PRESETS:
        raise ConfigError(
            f"vis_dec: cross_modal_preset must be one of {sorted(CROSS_PRESETS)}, found "
            f"{config.cross_modal_preset!r}."
        )
    cross = to_dict(CROSS_PRESETS[config.cross_modal_preset]) | dict(config.cross_modal_options)
    from_dict(CrossModalConfig, cross, "vis_dec cross_modal_options")
    if config.ldm_preset not in LDM_PRESETS:
        raise ConfigError(
            f"vis_dec: ldm_preset must be one of {sorted(LDM_PRESETS)}, found {config.ldm_preset!r}."
        )
    from_dict(LDMConfig, to_dict(LDM_PRESETS[config.ldm_preset]) | dict(config.ldm), where="vis_dec ldm")
    for kind, options in config.extra_pretraining.items():
        pretraining_reader(kind, dict(options))
    if config.ldm_preset == "paper" and not config.ldm_dir:
        raise ConfigError(
            "vis_dec: the paper preset fine-tunes a pretrained 256 px latent diffusion model; set "
            "ldm_dir=/path/to/diffusers/folder (unet/, vae/, scheduler/), or use ldm_preset=cpu_small."
        )
    if config.guidance_scale is None and (
        config.n_val_images < 2 or not config.guidance_candidates or min(config.guidance_candidates) < 1
    ):
        raise ConfigError(
            "vis_dec: choosing the guidance scale (guidance_scale=None) needs n_val_images >= 2 and "
            f"guidance_candidates >= 1, found {config.n_val_images} and {config.guidance_candidates}; or fix "
            "it, e.g. guidance_scale=1."
        )


def _inputs(config: VisDecRecipeConfig) -> tuple[str, LDMConfig, VisDecArrays]:
    """(dataset name, the LDM config, the subject's arrays) of ``config``: what ``run`` and ``evaluate`` share."""
    options = dict(config.data)
    if config.cache_dir and dataset_accepts(config.dataset, "cache_dir"):
        options["cache_dir"] = config.cache_dir
    dataset = load_dataset(config.dataset, **options)
    ldm_config = from_dict(LDMConfig, to_dict(LDM_PRESETS[config.ldm_preset]) | dict(config.ldm), where="ldm")
    dc_mae = phases.dc_mae_config(config)
    n_val = config.n_val_images if config.guidance_scale is None else 0
    arrays = prepare_arrays(dataset, config.subject, config.n_test_images, dc_mae.patch_size, n_val=n_val,
                            seed=config.seed, released=dc_mae.released, length=config.n_voxels)  # fmt: skip
    return dataset.name, ldm_config, arrays


def _scores(
    config: VisDecRecipeConfig,
    images: dict[str, np.ndarray],
    guidance: tuple[float, dict[str, float]],
    arrays: VisDecArrays,
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """(Vis-Dec and its baselines on every metric, the run's ``metrics``: those scores and the guidance choice)."""
    options = {"seed": config.seed, "n_way": tuple(config.n_way), "trials": config.metric_trials,
               "feature_layers": tuple(config.feature_layers), "clip_model_dir": config.clip_model_dir,
               "reference_weights": config.reference_weights}  # fmt: skip
    baselines = {"no fMRI": images["no fMRI"], "VAE ceiling": images["VAE ceiling"]}
    raw = score_with_baselines(images["real"], images["Vis-Dec"], baselines, name="Vis-Dec", **options)
    scale, val_scores = guidance
    chosen = {"scale": scale, "validation": val_scores, "metric": f"{config.guidance_layer}_2way",
              "n_val_images": len(arrays.val_images)}  # fmt: skip
    return raw, {"metrics": raw, "guidance": chosen}


def _report(config: VisDecRecipeConfig, arrays: VisDecArrays, ldm: phases.LatentDiffusion,
            images: dict[str, np.ndarray], histories: dict[str, list[dict]], seconds: dict[str, float],
            counts: dict[str, int], folder: Path, dataset_name: str,
            guidance: tuple[float, dict[str, float]]) -> RecipeOutput:  # fmt: skip
    """Vis-Dec and its baselines on every metric; writes ``folder/report.html``; the recipe's tables, notes and
    metrics. ``guidance`` is :func:`~brainkit.recipes.vis_dec.sampling.select_guidance`'s (scale, validation
    scores)."""
    real, recon = images["real"], images["Vis-Dec"]
    raw, metrics = _scores(config, images, guidance, arrays)
    what = {
        "Vis-Dec": f"{config.n_samples} samples per test fMRI, {config.n_steps} {ldm.scheduler.__class__.__name__} "
        f"steps, guidance {guidance[0]:g}",
        "shuffled pairs": "the same reconstructions scored against the wrong real images",
        "no fMRI": "the LDM before phase 3, zero context, same seeds",
        "VAE ceiling": "VAE encode + decode of the real image (no diffusion)",
    }
    table = [metric_row(name, what[name], row) for name, row in raw.items()]
    notes = compare_notes(raw, "Vis-Dec", ("shuffled pairs", "no fMRI"), label=column_label)
    notes.append(
        f"Data: {dataset_name} {config.subject}, {len(arrays.train_voxels)} training trials of "
        f"{len(arrays.train_images)} images, {arrays.n_raw_voxels} voxels (padded to {arrays.train_voxels.shape[1]}); "
        f"{len(real)} test images (fMRI averaged over repeats) at {ldm.image_size} x {ldm.image_size} px."
        + (
            " The voxels are simulated from image features (docs/datasets.md), so the numbers test the pipeline, "
            "not the paper's claims on real fMRI."
            if config.dataset in SIMULATED
            else ""
        )
    )
    notes.append(
        f"LDM: {ldm.source}; fMRI encoder {'trained' if config.train_encoder else 'frozen'} in phase 3. Semantic "
        "and identification numbers use EfficientNet-Lite0 (offline), not the paper's ViT-H/14."
    )
    scale, val_scores = guidance
    chosen_rows = guidance_rows(scale, val_scores, config.guidance_layer)
    notes.append(guidance_note(scale, val_scores, config.guidance_layer, len(arrays.val_images)))
    timing = [{"stage": stage, "seconds": round(value, 1)} for stage, value in seconds.items()]
    params = [{"network": name, "parameters": value} for name, value in counts.items()]
    shown = dict(images) | {"Vis-Dec": recon[:, : min(recon.shape[1], 3)], "no fMRI": images["no fMRI"][:, 0]}
    shown = {key: shown[key] for key in ("real", "VAE ceiling", "Vis-Dec", "no fMRI")}
    write_vis_dec_report(
        folder / "report.html",
        f"Vis-Dec image reconstruction on {dataset_name} ({config.subject})",
        table,
        notes,
        {"Metric suite: Vis-Dec vs shuffled": metrics_table(raw["Vis-Dec"], raw["shuffled pairs"], label=column_label),
         "Guidance scale on the validation split": chosen_rows, "Time per stage": timing, "Parameters": params},
        shown,
        histories,
        n_shown=config.n_shown,
    )  # fmt: skip
    tables = {"Vis-Dec vs baselines": table, "Time per stage (s)": timing, "Parameters": params}
    if chosen_rows:
        tables["Guidance scale on the validation split"] = chosen_rows
    return RecipeOutput(tables, notes, metrics)
