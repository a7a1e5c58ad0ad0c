"""The CLIP-MUSED recipe's methods as trained, reloaded and scored networks: each network variant (CLIP-MUSED, its
ablations, the pooled model, one per-subject model per subject) a resumable phase saved under
``checkpoints/<name>``, the SRM + logistic baseline, and the scored rows of the run's table
(:class:`Scored`: test probabilities per subject (n_test, n_classes))."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.config import from_dict, to_dict
from brainkit.data.semantic import (
    SemanticSamples,
    VolumeGrid,
    aligned_training_data,
    stack_subjects,
)
from brainkit.errors import CheckpointError, ConfigError
from brainkit.evaluation.multilabel import (
    label_frequency_scores,
    score_subjects,
)
from brainkit.models import count_parameters, load_model, save_model
from brainkit.models.clip_mused import CLIPMUSED
from brainkit.models.srm import SRMClassifier
from brainkit.objectives.semantic import SemanticLoss, SemanticLossConfig
from brainkit.recipes.clip_mused.settings import (
    METHODS,
    CLIPMUSEDRecipeConfig,
)
from brainkit.recipes.clip_mused.task import SemanticTask, build_network, predict
from brainkit.training import TrainingConfig, train_phase


@dataclass
class Scored:
    """One method's test probabilities per subject (n_test, n_classes), its size and how it was trained:
    ``seconds`` of training (a reloaded phase: its recorded seconds), the trainer's ``history`` and, for the
    networks, ``extras``: the test predictions per subject (:func:`predict`) and the model's ``token_shape``."""

    scores: dict[str, np.ndarray]
    n_params: int
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


def check_methods(config: CLIPMUSEDRecipeConfig) -> None:
    unknown = sorted(set(config.methods) - set(METHODS))
    if unknown or "clip_mused" not in config.methods:
        raise ConfigError(
            f"clip_mused recipe: methods must include 'clip_mused' and come from {list(METHODS)}; found {unknown or list(config.methods)}."
        )


def scored_rows(
    results: dict[str, Scored], samples: SemanticSamples, undefined: str = "exclude"
) -> list[dict[str, Any]]:
    """One row per method (in ``results``' order), then the label-frequency chance row: ``method``, ``what``,
    mAP / AUC / Hamming means, ``mAP/<subject>`` ..., ``params``."""
    labels = {s: samples.test[s].labels for s in samples.subjects}
    chance = {s: label_frequency_scores(samples.train[s].labels, len(labels[s])) for s in samples.subjects}
    rows = [(m, METHODS[m][0], r.scores, r.n_params) for m, r in results.items()]
    rows.append(("label_frequency", "chance: every class at its training frequency", chance, 0))
    return [
        {"method": method, "what": what} | score_subjects(scores, labels, undefined) | {"params": n_params}
        for method, what, scores, n_params in rows
    ]


def run_metrics(rows: list[dict[str, Any]], dataset: Any) -> dict[str, Any]:
    """A run's ``metrics``: the scored rows (no seconds) and the category names."""
    return {"rows": rows, "categories": dataset.info["categories"]}


def network_groups(method: str, samples: SemanticSamples) -> list[tuple[str, list[str]]]:
    """(phase and checkpoint name, subjects) of each network of ``method``: one for all subjects (named
    ``method``), or one per subject (``<method>_<subject>``) for the per-subject baseline."""
    if METHODS[method][3]:
        return [(f"{method}_{s}", [s]) for s in samples.subjects]
    return [(method, list(samples.subjects))]


def method_training(method: str, config: CLIPMUSEDRecipeConfig, n_groups: int) -> TrainingConfig:
    """``config.training``; per-subject models get as many optimiser steps as the multi-subject model:
    n_subjects x the epochs (and decay period)."""
    training = config.training
    if not METHODS[method][3]:
        return training
    return replace(
        training,
        epochs=training.epochs * n_groups,
        lr_step_epochs=training.lr_step_epochs * n_groups,
        steps=None if training.steps is None else training.steps * n_groups,
    )


def train_network(
    method: str,
    samples: SemanticSamples,
    grid: VolumeGrid,
    config: CLIPMUSEDRecipeConfig,
    folder: Path,
    resume: bool = False,
) -> Scored:
    """Train the network variant ``method`` (each of its networks a phase in ``folder/train/<name>``: resumed,
    or reloaded when it finished), save each to ``folder/checkpoints/<name>`` and predict its test samples.
    The history is that of the method's last network."""
    loss = SemanticLoss(from_dict(SemanticLossConfig, to_dict(config.loss) | METHODS[method][2]))
    groups = network_groups(method, samples)
    training = method_training(method, config, len(groups))
    result = Scored({}, 0)
    for name, group in groups:
        model = build_network(method, config, grid, samples.n_classes, len(group), training.seed)
        task = SemanticTask(model, loss, stack_subjects([samples.train[s] for s in group]), grid)
        fit = train_phase(task, training, folder / "train" / name, resume, name=name)
        result.history, result.seconds = fit.history, result.seconds + fit.seconds
        save_model(folder / "checkpoints" / name, model, {"method": method, "subjects": ",".join(group)})
        _score(model, group, samples, grid, result)
    return result


def load_network(
    method: str, samples: SemanticSamples, grid: VolumeGrid, config: CLIPMUSEDRecipeConfig, folder: Path
) -> Scored:
    """The networks of ``method`` reloaded from ``folder/checkpoints/<name>`` (no training), scored as
    :func:`train_network` scores them (no history or seconds)."""
    result = Scored({}, 0)
    for name, group in network_groups(method, samples):
        path = folder / "checkpoints" / name
        if not (path / "model.safetensors").is_file():
            raise CheckpointError(
                f"{path / 'model.safetensors'} is missing: the {name} network of this clip_mused run was not "
                "saved (an unfinished or edited run folder). Run the recipe again (brainkit run clip_mused) to "
                "train it; evaluate does not train."
            )
        model, meta = load_model(path)
        if meta.get("subjects") != ",".join(group):
            raise CheckpointError(
                f"{path} holds a network of subjects {meta.get('subjects')!r}, this run's {name} is of "
                f"{','.join(group)!r}; evaluate the run folder it came from."
            )
        _score(model.to(_device(config.training)), group, samples, grid, result)
    return result


def _device(training: TrainingConfig) -> torch.device:
    """Where evaluate predicts: the GPU when the run trained on one (and one is here), else the CPU."""
    gpu = training.accelerator in ("cuda", "gpu", "auto") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def _score(
    model: CLIPMUSED, group: list[str], samples: SemanticSamples, grid: VolumeGrid, result: Scored
) -> None:
    """Add ``model``'s test predictions of the subjects ``group`` (its subject indices, in order) to ``result``."""
    result.n_params += count_parameters(model)
    for index, subject in enumerate(group):
        result.extras[subject] = predict(model, samples.test[subject].with_subject(index), grid)
        result.scores[subject] = result.extras[subject]["scores"]
    result.extras["token_shape"] = model.token_shape


def run_srm(samples: SemanticSamples, config: CLIPMUSEDRecipeConfig) -> Scored:
    """SRM on the time-aligned training data (every subject saw the same training stimuli), then logistic.

    Test probabilities per subject; parameters: the subjects' bases + the classifier's weights."""
    start = time.perf_counter()
    data, labels = aligned_training_data(samples)
    model = SRMClassifier(config.srm_components, c=config.srm_c, seed=config.training.seed).fit(data, labels)
    n_params = sum(w.size for w in model.srm.bases_) + (config.srm_components + 1) * len(model.trainable_)
    tests = {
        s: samples.test[s].values for s in samples.subjects
    }  # nsd variant: patches flattened, as in training
    tests = {s: values.reshape(len(values), -1) for s, values in tests.items()}
    scores = {s: model.predict_proba(tests[s], i) for i, s in enumerate(samples.subjects)}
    return Scored(scores, int(n_params), time.perf_counter() - start)
