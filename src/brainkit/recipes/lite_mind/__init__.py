"""The Lite-Mind recipe: fMRI -> image-embedding decoders trained on one subject and scored by retrieval.

``brainkit run lite_mind`` trains ``model`` (Lite-Mind by default, or any registered decoder) and then each of
``baselines`` on the SAME prepared data (:func:`brainkit.data.paired.prepare_data`: one subject, a seeded
validation hold-out of training stimuli, z-scoring on the training trials), scores every decoder's test
predictions by top-k and N-way retrieval (:func:`brainkit.evaluation.retrieval.score_predictions`), and writes
one table, notes and ``report.html`` (:mod:`brainkit.report.lite_mind`). The ``demo`` preset (``brainkit
demo``, ``make demo``) is Lite-Mind beside ridge and a MindEye-style MLP.

Each decoder gets its own folder (``lite_mind/``, ``ridge/``, ``mindeye_mlp/``: the label in lower case) with
``checkpoint/`` (safetensors + JSON), ``config.json`` (that decoder's config alone: a valid ``--config`` file),
``preprocess.safetensors`` (the standardizer), ``history.jsonl`` and ``metrics.json``; while it trains, its
``state/`` makes the run resumable (``brainkit run lite_mind --out DIR --resume``), and ``brainkit eval DIR``
reloads every checkpoint and standardizer and recomputes the metrics (:meth:`LiteMindRecipe.evaluate`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import atomic_write_text, recover_folder, remove_folder, save_tensors
from brainkit.config import from_dict, to_dict
from brainkit.data.paired import PreparedData, prepare_data
from brainkit.data.transforms import Standardizer
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.evaluation.retrieval import cosine_similarity, score_predictions, top_k_indices
from brainkit.recipes import RecipeOutput
from brainkit.recipes.lite_mind.config import (
    PRESETS,
    Baseline,
    LiteMindRecipeConfig,
    ModelSpec,
    ObjectiveSpec,
)
from brainkit.recipes.lite_mind.scores import scores as bench_scores
from brainkit.registry import RECIPES
from brainkit.training import TrainingConfig, fit, predict

log = logging.getLogger(__name__)

# Table names of the registered decoders; any other model is shown under its registry name.
LABELS = {"lite_mind": "Lite-Mind", "ridge": "Ridge", "mindeye_mlp": "MindEye MLP"}
TABLE = "fMRI-to-image retrieval"


@dataclass
class Decoder:
    """One decoder of a run, resolved: its table label, folder name, model and training settings."""

    label: str
    folder: str
    model: ModelSpec
    training: TrainingConfig


@dataclass
class Scored:
    """A trained decoder's test predictions and scores."""

    metrics: dict[str, float]
    n_parameters: int
    train_seconds: float
    history: list[dict[str, Any]]
    predictions: np.ndarray


def decoders(config: LiteMindRecipeConfig) -> list[Decoder]:
    """``model`` then each baseline, with unique labels and folders (the label in lower case)."""
    out = [Decoder(LABELS.get(config.model.name, config.model.name), "", config.model, config.training)]
    for baseline in config.baselines:
        training = from_dict(
            TrainingConfig, {**to_dict(config.training), **baseline.training}, where="baselines[].training"
        )
        label = baseline.label or LABELS.get(baseline.name, baseline.name)
        out.append(Decoder(label, "", ModelSpec(baseline.name, baseline.preset, baseline.options), training))
    for decoder in out:
        decoder.folder = re.sub(r"[^a-z0-9]+", "_", decoder.label.lower()).strip("_") or "decoder"
    for what in ("label", "folder"):
        names = [getattr(d, what) for d in out]
        if len(set(names)) < len(names):
            raise ConfigError(
                f"lite_mind: two decoders share the {what} in {names}; give each its own label."
            )
    return out


def decoder_config(config: LiteMindRecipeConfig, decoder: Decoder) -> LiteMindRecipeConfig:
    """The config of ``decoder`` alone (what its folder's config.json holds)."""
    return dataclasses.replace(config, model=decoder.model, training=decoder.training, baselines=())


def build_for(config: LiteMindRecipeConfig, decoder: Decoder, data: PreparedData):
    """The model of ``decoder`` and the run's objective, sized from ``data``."""
    from brainkit.models import build_model, model_config
    from brainkit.objectives.contrastive import build_objective

    spec = decoder.model
    sizes = {"n_voxels": data.train.x.shape[1], "output_shape": data.train.y.shape[1:]}
    model = build_model(spec.name, model_config(spec.name, spec.preset, spec.options, **sizes))
    return model, build_objective(config.objective.name, config.objective.options)


def n_parameters(model: torch.nn.Module) -> int:
    from brainkit.models import count_parameters

    # a closed-form model (ridge) has no trainable parameters but fitted coefficients: count those
    return count_parameters(model, trainable_only=not hasattr(model, "fit_closed_form"))


def train_decoder(
    config: LiteMindRecipeConfig, decoder: Decoder, data: PreparedData, folder: Path, resume: bool = False
) -> Scored:
    """Train ``decoder`` into ``folder`` (or, resuming, continue its ``state/``, or reload it when done)."""
    from brainkit.models import save_model

    if resume and (folder / "metrics.json").is_file():
        log.info("%s finished before the interruption; reloading %s", decoder.label, folder)
        return load_decoder(config, folder, data)
    resume = resume and recover_folder(folder / "state")
    if not resume:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(decoder.training.seed)
    model, objective = build_for(config, decoder, data)
    atomic_write_text(folder / "config.json", json.dumps(to_dict(decoder_config(config, decoder)), indent=2))
    data.standardizer.save(folder / "preprocess.safetensors")
    save_inputs(folder, config, data)
    result = fit(model, objective, data.train, decoder.training, val=data.val, out_dir=folder, resume=resume)
    predictions = predict(model, data.test.x)
    metrics = score_predictions(config.evaluation, predictions, data.test.y)
    meta = {
        "subject": config.data.subject,
        "n_parameters": n_parameters(model),
        "train_seconds": result.seconds,
    }
    save_model(folder / "checkpoint", model, metadata=meta)
    atomic_write_text(folder / "history.jsonl", "".join(json.dumps(r) + "\n" for r in result.history))
    # metrics.json marks the decoder finished (a resume reloads it), so the state goes only after it
    atomic_write_text(folder / "metrics.json", json.dumps({**meta, **metrics}, indent=2))
    remove_folder(folder / "state")
    return Scored(metrics, meta["n_parameters"], result.seconds, result.history, predictions)


def save_inputs(folder: Path, config: LiteMindRecipeConfig, data: PreparedData) -> None:
    """What a decoder reads (``inputs.json``: dataset, subject, space, voxel count; ``mask.safetensors``: the
    brain mask when the dataset has one), so that prediction can check new recordings against it, and
    ``target_probe.safetensors``: four stimulus images with their targets, so that gallery retrieval can check
    that its encoder (``data.target`` with ``data.encoder_options``) reproduces the targets the decoder learnt."""
    samples = data.dataset.train[config.data.subject]
    inputs = {
        "dataset": data.dataset.name,
        "subject": config.data.subject,
        "space": samples.space,
        "n_voxels": samples.n_features,
        "target": config.data.target,
        "target_shape": list(data.train.y.shape[1:]),
    }
    stimuli = data.dataset.stimuli
    if stimuli.images is not None and config.data.target in stimuli.embeddings:
        rows = np.arange(
            min(4, len(stimuli))
        )  # a probe: retrieval checks its encoder reproduces these targets
        probe = {"images": stimuli.images[rows], "targets": stimuli.embedding(config.data.target)[rows]}
        save_tensors(folder / "target_probe.safetensors", {k: torch.from_numpy(v) for k, v in probe.items()})
    info = data.dataset.info
    mask = info.get(
        "mask", info.get("masks", {}).get(config.data.subject)
    )  # one for all, or per subject (bids)
    if isinstance(mask, np.ndarray) and mask.dtype == bool and int(mask.sum()) == samples.n_features:
        save_tensors(folder / "mask.safetensors", {"mask": torch.from_numpy(mask)})
    atomic_write_text(folder / "inputs.json", json.dumps(inputs, indent=2))


def load_decoder(config: LiteMindRecipeConfig, folder: Path, data: PreparedData) -> Scored:
    """Reload a finished decoder (checkpoint + standardizer) and score it on ``data``'s test set again (the
    subject of ``config.data``: a checkpoint fits only the voxel set it was trained on)."""
    from brainkit.models import load_model

    for needed in ("checkpoint", "preprocess.safetensors"):
        if not (folder / needed).exists():
            raise CheckpointError(f"{folder} lacks {needed}; it is not a finished lite_mind decoder folder.")
    model, meta = load_model(folder / "checkpoint")
    standardizer = Standardizer.load(folder / "preprocess.safetensors")
    test_x = standardizer.transform(data.dataset.test[config.data.subject].values)
    if model.config.n_voxels != test_x.shape[1]:
        raise DataError(
            f"The checkpoint in {folder} expects {model.config.n_voxels} voxels, the data have {test_x.shape[1]}."
        )
    predictions = predict(model, test_x)
    history_path = folder / "history.jsonl"
    history = (
        [json.loads(line) for line in history_path.read_text().splitlines()] if history_path.is_file() else []
    )
    metrics = score_predictions(config.evaluation, predictions, data.test.y)
    return Scored(metrics, meta.get("n_parameters", 0), meta.get("train_seconds", 0.0), history, predictions)


def saliency_maps(
    config: LiteMindRecipeConfig, data: PreparedData, plan: list[Decoder], folder: Path
) -> dict[str, np.ndarray]:
    """Each trained decoder's gradient x input saliency on the test set (:mod:`brainkit.evaluation.saliency`)
    on fsaverage5 (20484,), when the dataset places its voxels on fsaverage5 vertices
    (``info["voxel_vertices"]``, as nsd_like does); {} otherwise."""
    from brainkit.evaluation.saliency import input_saliency
    from brainkit.models import load_model
    from brainkit.report.brain_maps import on_fsaverage5

    vertices = data.dataset.info.get("voxel_vertices", {}).get(config.data.subject)
    if vertices is None:
        return {}
    values = data.dataset.test[config.data.subject].values
    maps = {}
    for decoder in plan:
        model, _ = load_model(folder / decoder.folder / "checkpoint")
        standardizer = Standardizer.load(folder / decoder.folder / "preprocess.safetensors")
        saliency = input_saliency(model, standardizer.transform(values), data.test.y)
        maps[decoder.label] = on_fsaverage5(saliency, np.asarray(vertices))
    return maps


def released_scale(data: PreparedData) -> float:
    """The factor from the dataset's voxel values to what the released Lite-Mind read. Its fmri2nsd.py saves the
    NSD betas as stored (int16: percent signal change x 300), neither z-scored nor rescaled; brainkit's NSD reader
    gives percent signal change with ``zscore=false`` (x 300 then), and refuses here when it z-scored. Any other
    dataset: 1, its values as given."""
    if data.dataset.name != "nsd":
        return 1.0
    scale = data.dataset.info.get("stored_scale")
    if scale is None:
        raise ConfigError(
            "The released Lite-Mind weights were trained on NSD betas as stored, not z-scored per session; "
            "set data.options.zscore=false."
        )
    return float(scale)


def summarise(
    config: LiteMindRecipeConfig, data: PreparedData, scored: dict[str, Scored]
) -> tuple[list, list]:
    """The table rows and notes of a run."""
    from brainkit.report.lite_mind import comparison_notes, method_row

    n_way = config.evaluation.n_way
    rows = [
        method_row(label, s.metrics, s.n_parameters, s.train_seconds, n_way) for label, s in scored.items()
    ]
    info = data.dataset.info
    notes = comparison_notes(rows, n_way) + [
        f"Data: {data.dataset.name}, subject {config.data.subject}: {len(data.train.x)} training trials, "
        f"{0 if data.val is None else len(data.val.x)} validation stimuli, {len(data.test.x)} test stimuli "
        f"(averaged over their repeats), {data.train.x.shape[1]} voxels; target {config.data.target} "
        f"{tuple(data.train.y.shape[1:])}. {info.get('summary', '')}"
    ]
    return rows, notes


@RECIPES.register(
    "lite_mind", help="Lite-Mind (+ ridge / MLP baselines): fMRI -> image retrieval, one subject"
)
class LiteMindRecipe:
    Config = LiteMindRecipeConfig
    BENCH_SEEDS = (
        "training.seed",
    )  # what `brainkit bench`'s seed sets: the decoders' init, batches and validation images; the test images stay
    scores = staticmethod(bench_scores)  # its tables as `brainkit bench` score rows
    PRESETS = PRESETS
    resumable = True  # `brainkit run lite_mind --resume` continues an interrupted run
    DESIGNS = ("trials",)  # reads any trial-based dataset: yours through brainkit.run(..., dataset=...)
    DATA_FIELDS = {"name": "data.name", "options": "data.options", "subject": "data.subject"}

    @staticmethod
    def with_dataset(
        config: LiteMindRecipeConfig, name: str, options: dict[str, Any]
    ) -> LiteMindRecipeConfig:
        return dataclasses.replace(config, data=dataclasses.replace(config.data, name=name, options=options))

    def predictor(self, config: LiteMindRecipeConfig, folder: Path):
        """The run's decoders, ready to decode new recordings (:class:`brainkit.recipes.lite_mind.decoding.Decoders`)."""
        from brainkit.recipes.lite_mind.decoding import Decoders

        return Decoders(config, folder, [(d.label, folder / d.folder) for d in decoders(config)])

    @staticmethod
    def check(config: LiteMindRecipeConfig) -> None:
        """Every name and option of ``config`` that the run would otherwise meet only after building the data:
        the dataset's and the target encoder's options (against their factories' signatures), each decoder's
        model name, preset and options, and the objective. Raises :class:`ConfigError`; builds nothing."""
        from brainkit.models import model_config
        from brainkit.objectives.contrastive import build_objective
        from brainkit.registry import DATASETS, ENCODERS

        spec = config.data
        DATASETS.check_options(spec.name, spec.options, "data.options")
        if spec.target in ENCODERS:
            ENCODERS.check_options(spec.target, spec.encoder_options, "data.encoder_options")
        elif spec.encoder_options:
            raise ConfigError(
                f"data.encoder_options {sorted(spec.encoder_options)} are given, but data.target "
                f"{spec.target!r} is not a brainkit encoder (the dataset brings that embedding); remove them."
            )
        places = ["model", *(f"baselines[{i}]" for i in range(len(config.baselines)))]
        for place, decoder in zip(places, decoders(config)):
            model = decoder.model
            model_config(model.name, model.preset, model.options, where=f"{place}.options ({model.name})")
        build_objective(config.objective.name, config.objective.options)

    def import_weights(
        self, config: LiteMindRecipeConfig, weights: dict[str, torch.Tensor], folder: Path, source: dict
    ) -> list[str]:
        """The released ``litemind-<subject>.pth`` (train_litemind.py's ``model.state_dict()``) as the run's
        Lite-Mind decoder folder, ready for ``evaluate`` and ``predict``: checkpoint, config, inputs and the
        preprocessing the released script trained with (no z-scoring; raw NSD betas, see :func:`released_scale`)."""
        from brainkit.models import save_model
        from brainkit.models.lite_mind import load_released

        if config.model.name != "lite_mind" or config.baselines:
            raise ConfigError(
                "lite_mind import-weights fills the Lite-Mind decoder alone: set model.name=lite_mind and no "
                f"baselines (found model {config.model.name!r}, {len(config.baselines)} baselines); the preset "
                "nsd_subj01_released has that."
            )
        (decoder,) = decoders(config)
        data = prepare_data(config.data, seed=config.training.seed)
        model, _ = build_for(config, decoder, data)
        load_released(model, weights, source["file"])
        target = folder / decoder.folder
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            target / "config.json", json.dumps(to_dict(decoder_config(config, decoder)), indent=2)
        )
        scale = released_scale(data)
        identity = Standardizer()
        identity.mean_ = np.zeros(data.train.x.shape[1], np.float32)
        identity.scale_ = np.full(data.train.x.shape[1], 1.0 / scale, np.float32)
        identity.save(target / "preprocess.safetensors")
        save_inputs(target, config, data)
        meta = {"subject": config.data.subject, "n_parameters": n_parameters(model), "train_seconds": 0.0}
        save_model(target / "checkpoint", model, metadata={**meta, "imported": source})
        scored = load_decoder(config, target, data)
        atomic_write_text(target / "metrics.json", json.dumps({**meta, **scored.metrics}, indent=2))
        return [
            f"Lite-Mind decoder imported into {target.name}/: voxels enter as the dataset gives them times "
            f"{scale:g} (no z-scoring), as the released train_litemind.py read its betas.",
            "Each FreMLP r / i matrix kept its diagonal: the only entries the released forward reads.",
        ]

    def run(self, config: LiteMindRecipeConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        from brainkit.report.lite_mind import retrieval_grids, write_lite_mind_report

        plan = decoders(config)
        data = prepare_data(config.data, seed=config.training.seed)
        scored = {}
        for decoder in plan:
            log.info("Training %s", decoder.label)
            scored[decoder.label] = train_decoder(config, decoder, data, folder / decoder.folder, resume)
        rows, notes = summarise(config, data, scored)
        positions = data.dataset.stimuli.positions(data.test_ids)
        queries = np.random.default_rng(0).choice(len(positions), size=min(8, len(positions)), replace=False)
        retrieved = {
            label: top_k_indices(
                cosine_similarity(s.predictions, data.test.y), queries, k=min(5, len(positions))
            )
            for label, s in scored.items()
        }
        grids = retrieval_grids(data.dataset.stimuli.images, positions, queries, retrieved)
        curves = {label: s.history for label, s in scored.items()}
        write_lite_mind_report(
            folder / "report.html", rows, notes, curves, grids, config.data.name, config.data.subject,
            maps=saliency_maps(config, data, plan, folder),
        )  # fmt: skip
        metrics = {d.label: scored[d.label].metrics for d in plan}
        return RecipeOutput({TABLE: rows}, notes, metrics)

    def evaluate(self, config: LiteMindRecipeConfig, folder: Path) -> dict[str, dict[str, float]]:
        """Each decoder's retrieval metrics again, from its checkpoint and standardizer in ``folder``."""
        data = prepare_data(config.data, seed=config.training.seed)
        return {d.label: load_decoder(config, folder / d.folder, data).metrics for d in decoders(config)}


__all__ = ["Baseline", "LiteMindRecipe", "LiteMindRecipeConfig", "ModelSpec", "ObjectiveSpec", "PRESETS"]
