"""One decoding run: config -> data -> model -> training -> evaluation, written to a run folder.

A run folder holds ``config.json`` (the whole RunConfig), ``checkpoint/`` (safetensors + JSON),
``preprocess.safetensors`` (the standardizer fitted on training data), ``history.jsonl`` and ``metrics.json``.
It is built under a hidden temporary name and renamed when complete, so it is whole or absent.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.checkpoint import atomic_write_text
from brainkit.config import apply_overrides, from_dict, load_yaml, to_dict
from brainkit.data import DecodingDataset, dataset_accepts, load_dataset
from brainkit.data.transforms import Standardizer
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.training import Arrays, TrainingConfig, fit, predict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    """Which dataset, subject and target embedding. ``options`` go to the dataset (e.g. ``root`` for nsd)."""

    name: str = "nsd_like"
    subject: str = "subj01"
    target: str = "efficientnet_lite0"
    options: dict[str, Any] = field(default_factory=dict)
    encoder_options: dict[str, Any] = field(default_factory=dict)
    val_fraction: float = 0.1
    cache_dir: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str = "lite_mind"
    preset: str | None = "cpu_small"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveSpec:
    name: str = "infonce"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSpec:
    """N-way retrieval settings: ``n_way`` candidates, averaged over ``n_draws`` seeded draws."""

    n_way: int = 300
    n_draws: int = 30
    top_k: tuple[int, ...] = (1, 5)
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvalSpec = field(default_factory=EvalSpec)


def preset_names() -> list[str]:
    """Run presets shipped with brainkit (``src/brainkit/presets/*.yaml``)."""
    folder = resources.files("brainkit") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_run_config(source: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """A RunConfig from a YAML file or a preset name, with ``key=value`` overrides applied."""
    path = Path(source)
    if not path.is_file():
        if str(source) not in preset_names():
            raise ConfigError(
                f"{source!r} is neither a config file nor a preset. Presets: {', '.join(preset_names())}."
            )
        path = Path(str(resources.files("brainkit") / "presets" / f"{source}.yaml"))
    return from_dict(RunConfig, apply_overrides(load_yaml(path), overrides or []), where=str(path))


@dataclass
class PreparedData:
    dataset: DecodingDataset
    standardizer: Standardizer
    train: Arrays
    val: Arrays | None
    test: Arrays
    test_ids: np.ndarray


def _targets(dataset: DecodingDataset, spec: DataSpec, ids: np.ndarray) -> np.ndarray:
    if spec.target not in dataset.stimuli.embeddings:
        from brainkit.stimuli.cache import embed_stimuli

        embed_stimuli(dataset.stimuli, spec.target, cache_dir=spec.cache_dir, **spec.encoder_options)
    return dataset.stimuli.embedding(spec.target)[dataset.stimuli.positions(ids)]


def prepare_data(spec: DataSpec, dataset: DecodingDataset | None = None, seed: int = 0) -> PreparedData:
    """Load the dataset, pick the subject, hold out ``val_fraction`` of TRAINING stimuli, z-score on train."""
    if dataset is None:
        options = dict(spec.options)
        if spec.cache_dir is not None and dataset_accepts(spec.name, "cache_dir"):
            options.setdefault("cache_dir", spec.cache_dir)  # datasets that cache (built-in ones) share it
        dataset = load_dataset(spec.name, **options)
    subject = dataset.check_subject(spec.subject)
    train_samples, test_samples = dataset.train[subject], dataset.test[subject]
    if not 0 <= spec.val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), found {spec.val_fraction}.")
    stimuli = np.unique(train_samples.stimulus_ids)
    rng = np.random.default_rng(seed)
    n_val = int(round(spec.val_fraction * len(stimuli)))
    val_ids = rng.choice(stimuli, size=n_val, replace=False) if n_val else np.array([], dtype=str)
    is_val = np.isin(train_samples.stimulus_ids, val_ids)
    fit_samples = train_samples.select(~is_val)
    standardizer = Standardizer().fit(fit_samples.values)
    train = Arrays(
        standardizer.transform(fit_samples.values), _targets(dataset, spec, fit_samples.stimulus_ids), "train"
    )
    val = None
    if n_val:
        val_samples = train_samples.select(is_val).average_repeats()
        val = Arrays(
            standardizer.transform(val_samples.values),
            _targets(dataset, spec, val_samples.stimulus_ids),
            "val",
        )
    test = Arrays(
        standardizer.transform(test_samples.values),
        _targets(dataset, spec, test_samples.stimulus_ids),
        "test",
    )
    return PreparedData(dataset, standardizer, train, val, test, test_samples.stimulus_ids)


@dataclass
class RunResult:
    folder: Path
    metrics: dict[str, float]
    history: list[dict[str, Any]]
    n_parameters: int
    train_seconds: float
    test_predictions: np.ndarray
    test_ids: np.ndarray


def build_for(config: RunConfig, data: PreparedData):
    """The model and objective of ``config``, sized from ``data``."""
    from brainkit.models import build_model, model_config
    from brainkit.objectives.contrastive import build_objective

    model_cfg = model_config(
        config.model.name,
        config.model.preset,
        config.model.options,
        n_voxels=data.train.x.shape[1],
        output_shape=data.train.y.shape[1:],
    )
    return build_model(config.model.name, model_cfg), build_objective(
        config.objective.name, config.objective.options
    )


def evaluate_predictions(config: RunConfig, predictions: np.ndarray, target: np.ndarray) -> dict[str, float]:
    from brainkit.evaluation.retrieval import retrieval_metrics

    spec = config.evaluation
    n_way = spec.n_way if spec.n_way <= len(target) else None
    if n_way is None:
        log.warning("Only %d test stimuli: %d-way retrieval skipped.", len(target), spec.n_way)
    return retrieval_metrics(predictions, target, spec.top_k, n_way, spec.n_draws, spec.seed)


def train_run(
    config: RunConfig,
    folder: str | Path,
    data: PreparedData | None = None,
    resume: bool = False,
) -> RunResult:
    """Train and evaluate one run; the folder appears only when the run is complete."""
    import torch

    from brainkit.models import count_parameters, save_model

    folder = Path(folder)
    if folder.exists() and not resume:
        raise ConfigError(f"Run folder {folder} already exists; choose another --out or delete it.")
    work = folder.parent / f".{folder.name}.partial"
    if resume:
        if not work.is_dir():
            raise CheckpointError(f"No interrupted run to resume at {work}.")
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    try:
        data = data or prepare_data(config.data, seed=config.training.seed)
        torch.manual_seed(config.training.seed)
        model, objective = build_for(config, data)
        atomic_write_text(work / "config.json", json.dumps(to_dict(config), indent=2))
        data.standardizer.save(work / "preprocess.safetensors")
        result = fit(model, objective, data.train, config.training, val=data.val, out_dir=work, resume=resume)
        predictions = predict(model, data.test.x)
        metrics = evaluate_predictions(config, predictions, data.test.y)
        # a closed-form model (ridge) has no trainable parameters but fitted coefficients: count those
        n_params = count_parameters(model, trainable_only=not hasattr(model, "fit_closed_form"))
        meta = {"subject": config.data.subject, "n_parameters": n_params, "train_seconds": result.seconds}
        shutil.rmtree(work / "state", ignore_errors=True)
        save_model(work / "checkpoint", model, metadata=meta)
        atomic_write_text(work / "history.jsonl", "".join(json.dumps(r) + "\n" for r in result.history))
        atomic_write_text(work / "metrics.json", json.dumps({**meta, **metrics}, indent=2))
    except BaseException:
        if (work / "state").is_dir():
            log.error("Run interrupted; resume it with --resume (partial state kept in %s).", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(work, folder)
    return RunResult(folder, metrics, result.history, n_params, result.seconds, predictions, data.test_ids)


def evaluate_run(folder: str | Path, dataset: DecodingDataset | None = None) -> dict[str, float]:
    """Re-evaluate a finished run folder on its test set (reads config.json and the checkpoint)."""
    from brainkit.models import load_model

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder} is not a brainkit run folder (no config.json).")
    config = from_dict(
        RunConfig, json.loads((folder / "config.json").read_text()), where=f"{folder}/config.json"
    )
    model, _ = load_model(folder / "checkpoint")
    data = prepare_data(config.data, dataset=dataset, seed=config.training.seed)
    standardizer = Standardizer.load(folder / "preprocess.safetensors")
    test_x = standardizer.transform(data.dataset.test[config.data.subject].values)
    if model.config.n_voxels != test_x.shape[1]:
        raise DataError(
            f"The checkpoint in {folder} expects {model.config.n_voxels} voxels, the data have {test_x.shape[1]}."
        )
    return evaluate_predictions(config, predict(model, test_x), data.test.y)
