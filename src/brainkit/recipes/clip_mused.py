"""The CLIP-MUSED recipe: one multi-subject semantic decoder vs per-subject, pooled and SRM baselines.

``brainkit run clip_mused`` builds the simulated volumetric data (``hcp_movie_like``), the stimulus targets
(low-level and high-level features), trains CLIP-MUSED and its ablations, the per-subject and pooled models
and SRM + logistic regression, scores mAP / AUC / Hamming per subject against the label-frequency baseline,
and writes ``report.html`` (tables, token embeddings, token attention over the brain) and safetensors
checkpoints under ``checkpoints/<method>``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.config import from_dict, to_dict
from brainkit.data import load_dataset
from brainkit.data.schema import DecodingDataset
from brainkit.data.transforms import Standardizer
from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.multilabel import label_frequency_scores, multilabel_metrics, per_subject_table
from brainkit.models import build_model, count_parameters, model_config, save_model
from brainkit.models.srm import SRMClassifier
from brainkit.objectives.semantic import SemanticLoss, SemanticLossConfig
from brainkit.recipes import RecipeOutput
from brainkit.recipes.clip_mused_fit import FitSettings, SampleArrays, VolumeGrid, fit, predict
from brainkit.registry import RECIPES
from brainkit.report.clip_mused_figures import attention_figure, attention_volume, token_embedding_figure
from brainkit.report.html import write_report
from brainkit.stimuli.cache import embed_stimuli
from brainkit.stimuli.semantic_features import semantic_targets

log = logging.getLogger(__name__)

# method -> (what it is, model changes, loss weights, one model per subject)
NO_RSM = {"rsm_high": 0.0, "rsm_low": 0.0}
METHODS: dict[str, tuple[str, dict[str, Any], dict[str, float], bool]] = {
    "clip_mused": ("one model, subject tokens, BCE + RSM + orthogonality", {}, {}, False),
    "no_rsm": ("ablation: without the two RSM losses", {}, NO_RSM, False),
    "no_orthogonality": ("ablation: without the orthogonality loss", {}, {"orthogonality": 0.0}, False),
    "no_subject_tokens": (
        "ablation: one token pair shared by all subjects",
        {"subject_tokens": False},
        {},
        False,
    ),
    "per_subject": ("baseline: one CLIP-MUSED model per subject, as many steps", {}, {}, True),
    "pooled": (
        "baseline: one plain model on pooled subjects, mean-token readout, BCE only",
        {"readout": "mean"},
        {**NO_RSM, "orthogonality": 0.0},
        False,
    ),
    "srm": ("baseline: shared response model + one-vs-rest logistic regression", {}, {}, False),
}


@dataclass(frozen=True)
class CLIPMUSEDRecipeConfig:
    dataset: str = "hcp_movie_like"
    data: dict[str, Any] = field(default_factory=dict)  # options of the dataset factory
    cache_dir: str | None = None
    model_preset: str = "cpu_small"
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the model preset
    fit: FitSettings = FitSettings()
    loss: SemanticLossConfig = SemanticLossConfig()  # the paper's HCP weights
    high_dim: int = (
        64  # common PCA dimension of image and text features (not used with clip_model_dir: CLIP's)
    )
    feature_clip: float = 1.5  # released -thres=1.5
    clip_model_dir: str | None = (
        None  # a local CLIP folder: its image and text embeddings replace EfficientNet/MiniLM
    )
    srm_components: int = 32
    srm_c: float = 0.1
    methods: tuple[str, ...] = tuple(METHODS)
    threads: int | None = None


# seconds: 12 mm brain, 2 subjects, weight-free low/image/text encoders (the labels still come from the real
# EfficientNet-Lite0 ImageNet classifier)
FAST_TEST_DATA = {
    "snr": [1.2, 0.5],
    "n_train_stimuli": 32,
    "n_test_stimuli": 8,
    "image_size": 64,
    "resolution_mm": 12,
    "grid": [12, 16, 12],
    "min_label_fraction": 0.1,
    "features": {
        "low": ["pixel_projection", {"dim": 13}],
        "image": ["pixel_projection", {"dim": 17}],
        "text": ["hashed_words", {"dim": 11}],
    },
    "n_components": {"low": 4, "image": 5, "text": 3},
}


@RECIPES.register(
    "clip_mused", help="CLIP-MUSED multi-subject decoding + ablations + per-subject/pooled/SRM."
)
class CLIPMUSEDRecipe:
    Config = CLIPMUSEDRecipeConfig
    PRESETS = {
        # built-in 6 mm data, 4 subjects x 240 training volumes. One torch thread: on the shared 2-core machine two
        # threads ran 4x SLOWER than one (measured under load); set threads=2 on an idle machine.
        "cpu_small": CLIPMUSEDRecipeConfig(
            fit=FitSettings(epochs=10, batch_size=32, lr=2e-3, lr_step_epochs=4), threads=1
        ),
        "testing": CLIPMUSEDRecipeConfig(
            data=FAST_TEST_DATA,
            model_preset="testing",
            fit=FitSettings(epochs=2, batch_size=8, progress=False),
            high_dim=8,
            srm_components=4,
            threads=1,
        ),
        # The paper's model and schedule (README + decoding_HCP_MS.py): hcp preset (65.8 M), Adam lr 1e-3 x0.7 every
        # 25 epochs, 500 epochs, batch 64, loss weights 1 / 1e-3 / 1e-3 / 0.1, 112x128x112 input (built-in data
        # at 2 mm padded to the paper's grid; the paper's HCP volumes are 1.6 mm). A GPU job (fit.device cuda).
        "hcp": CLIPMUSEDRecipeConfig(
            data={"resolution_mm": 2, "grid": [112, 128, 112]},
            model_preset="hcp",
            fit=FitSettings(epochs=500, batch_size=64, lr=1e-3, lr_step_epochs=25, device="cuda"),
        ),
    }

    def run(self, config: CLIPMUSEDRecipeConfig, folder: Path) -> RecipeOutput:
        unknown = sorted(set(config.methods) - set(METHODS))
        if unknown or "clip_mused" not in config.methods:
            raise ConfigError(
                f"clip_mused recipe: methods must include 'clip_mused' and come from {list(METHODS)}; found {unknown or list(config.methods)}."
            )
        from brainkit.training import torch_threads

        with torch_threads(config.threads):
            return self._run(config, folder)

    def _run(self, config: CLIPMUSEDRecipeConfig, folder: Path) -> RecipeOutput:
        options = dict(config.data) | ({"cache_dir": config.cache_dir} if config.cache_dir else {})
        dataset = load_dataset(config.dataset, **options)
        prepared = prepare(dataset, config)
        grid = VolumeGrid(dataset.info["mask"])
        rows, per_subject, histories, extras = [], [], {}, {}
        for method in config.methods:
            start = time.perf_counter()
            if method == "srm":
                scores, n_params = run_srm(prepared, config)
            else:
                scores, n_params, histories[method], extras[method] = run_network(
                    method, prepared, grid, config, folder
                )
            rows.append(
                score_row(method, METHODS[method][0], scores, prepared, n_params, time.perf_counter() - start)
            )
        rows.append(
            score_row(
                "label_frequency",
                "chance: every class at its training frequency",
                {
                    s: label_frequency_scores(prepared["train"][s].labels, len(prepared["test"][s].labels))
                    for s in prepared["subjects"]
                },
                prepared,
                0,
                0.0,
            )
        )
        per_subject = [
            {"method": r["method"], **{s: r[f"mAP/{s}"] for s in prepared["subjects"]}} for r in rows
        ]
        table = [{k: v for k, v in r.items() if "/" not in k} for r in rows]
        notes = compare(table, per_subject, dataset, prepared)
        notes.append(token_similarity_note(extras["clip_mused"], prepared["subjects"]))
        figures = make_figures(extras["clip_mused"], prepared, dataset)
        tables = {
            "CLIP-MUSED vs baselines and ablations (test mAP / AUC / Hamming, mean over subjects)": table,
            "mAP per subject": per_subject,
        }
        write_report(
            folder / "report.html",
            "CLIP-MUSED on " + dataset.name,
            table,
            histories,
            {},
            notes,
            figures=figures,
            tables={"mAP per subject": per_subject},
        )
        return RecipeOutput(tables, notes, {"rows": rows, "categories": dataset.info["categories"]})


def prepare(dataset: DecodingDataset, config: CLIPMUSEDRecipeConfig) -> dict[str, Any]:
    """Per subject: standardised voxels (training statistics), labels and stimulus targets, as SampleArrays."""
    stimuli, labels = dataset.stimuli, dataset.info["labels"]
    features = {role: spec[0] for role, spec in dataset.info["parameters"]["features"].items()}
    subjects = dataset.subjects
    train_ids = dataset.train[subjects[0]].stimulus_ids
    train_rows = stimuli.positions(np.unique(train_ids))
    image, text = stimuli.embedding(features["image"]), stimuli.embedding(features["text"])
    if config.clip_model_dir:  # both towers of the local CLIP: image and label text in CLIP's joint space
        image, text = (
            embed_stimuli(stimuli, encoder, cache_dir=config.cache_dir, model_dir=config.clip_model_dir)
            for encoder in ("clip_vit_l14_pooled", "clip_text")
        )
    low, high = semantic_targets(
        stimuli.embedding(features["low"]),
        image,
        text,
        train_rows,
        config.high_dim,
        config.feature_clip,
        joint_space=bool(config.clip_model_dir),
    )
    out: dict[str, Any] = {
        "subjects": subjects,
        "train": {},
        "test": {},
        "n_classes": labels.shape[1],
        "ids": {},
    }
    for index, subject in enumerate(subjects):
        scaler = Standardizer().fit(dataset.train[subject].values)
        for part, samples in (("train", dataset.train[subject]), ("test", dataset.test[subject])):
            rows = stimuli.positions(samples.stimulus_ids)
            out["ids"][(part, subject)] = samples.stimulus_ids
            out[part][subject] = SampleArrays(
                scaler.transform(samples.values),
                np.full(len(rows), index),
                labels[rows].astype(np.float32),
                high[rows],
                low[rows],
            )
    return out


def _stack(parts: list[SampleArrays]) -> SampleArrays:
    return SampleArrays(
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("values", "subject", "labels", "high", "low")
        )
    )


def run_network(method: str, prepared: dict, grid: VolumeGrid, config: CLIPMUSEDRecipeConfig, folder: Path):
    """Train the network variant ``method``; returns (test scores per subject, params, history, extras)."""
    _, model_changes, loss_changes, separate = METHODS[method]
    loss = SemanticLoss(from_dict(SemanticLossConfig, to_dict(config.loss) | loss_changes))
    groups = [[s] for s in prepared["subjects"]] if separate else [prepared["subjects"]]
    scores, histories, extras, n_params = {}, [], {}, 0
    for group in groups:
        options = (
            dict(config.model)
            | model_changes
            | {"grid": list(grid.shape), "n_classes": prepared["n_classes"], "n_subjects": len(group)}
        )
        torch.manual_seed(config.fit.seed)
        model = build_model("clip_mused", model_config("clip_mused", config.model_preset, options))
        train = _stack([_reindex(prepared["train"][s], i) for i, s in enumerate(group)])
        name = method if not separate else f"{method}:{group[0]}"
        settings = config.fit
        if separate:  # same number of optimiser steps as the multi-subject model: n_subjects x the epochs
            k = len(groups)
            settings = replace(
                settings, epochs=settings.epochs * k, lr_step_epochs=settings.lr_step_epochs * k
            )
        histories = fit(model, train, grid, loss, settings, name)
        n_params += count_parameters(model)
        save_model(
            folder / "checkpoints" / name.replace(":", "_"),
            model,
            {"method": method, "subjects": ",".join(group)},
        )
        for i, subject in enumerate(group):
            result = predict(model, _reindex(prepared["test"][subject], i), grid)
            scores[subject] = result["scores"]
            extras[subject] = result
    extras["token_shape"] = model.token_shape
    return scores, n_params, histories, extras


def _reindex(arrays: SampleArrays, index: int) -> SampleArrays:
    return SampleArrays(
        arrays.values, np.full(len(arrays.values), index), arrays.labels, arrays.high, arrays.low
    )


def run_srm(prepared: dict, config: CLIPMUSEDRecipeConfig) -> dict[str, np.ndarray]:
    """SRM on the time-aligned training data (every subject saw the same training stimuli), then logistic.

    Returns (test probabilities per subject, parameters: the subjects' bases + the classifier's weights)."""
    subjects = prepared["subjects"]
    data, reference = [], None
    for subject in subjects:
        ids = prepared["ids"][("train", subject)]
        order = np.argsort(ids, kind="stable")
        if reference is not None and not np.array_equal(ids[order], reference):
            raise DataError(
                f"srm: {subject} did not see the same training stimuli as {subjects[0]}, so the subjects' "
                "responses cannot be aligned in time; use a dataset where every subject sees every training stimulus."
            )
        reference = ids[order] if reference is None else reference
        data.append(prepared["train"][subject].values[order])
        labels = prepared["train"][subject].labels[order]
    model = SRMClassifier(config.srm_components, c=config.srm_c, seed=config.fit.seed).fit(data, labels)
    n_params = sum(w.size for w in model.srm.bases_) + (config.srm_components + 1) * len(model.trainable_)
    return {s: model.predict_proba(prepared["test"][s].values, i) for i, s in enumerate(subjects)}, n_params


def score_row(method, description, scores, prepared, n_params, seconds) -> dict[str, Any]:
    per = {s: multilabel_metrics(scores[s], prepared["test"][s].labels) for s in prepared["subjects"]}
    row = {"method": method, "what": description} | per_subject_table(per)  # means, then "mAP/sub01"...
    return row | {"params": n_params, "train_s": round(seconds, 1)}


def compare(
    table: list[dict], per_subject: list[dict], dataset: DecodingDataset, prepared: dict
) -> list[str]:
    """Plain statements, with the run's numbers, of what beat what."""
    by = {row["method"]: row for row in table}
    ours = by["clip_mused"]["mAP"]
    notes = [
        f"{len(prepared['subjects'])} subjects, {int(dataset.info['mask'].sum())} brain voxels, "
        f"{prepared['n_classes']} categories; test mAP is the mean over subjects of the per-class average "
        f"precision; chance (label frequency) mAP {by['label_frequency']['mAP']:.3f}. One seed."
    ]
    for baseline in ("per_subject", "pooled", "srm", "no_subject_tokens"):
        if baseline not in by:
            continue
        theirs = by[baseline]["mAP"]
        verdict = "beats" if ours > theirs else "does NOT beat"
        gains = {r["method"]: r for r in per_subject}
        better = [s for s in prepared["subjects"] if gains["clip_mused"][s] > gains[baseline][s]]
        notes.append(
            f"CLIP-MUSED (mAP {ours:.3f}) {verdict} {baseline} (mAP {theirs:.3f}, difference "
            f"{ours - theirs:+.3f}); better on {len(better)} of {len(prepared['subjects'])} subjects "
            f"({', '.join(better) or 'none'})."
        )
    for ablation in ("no_rsm", "no_orthogonality"):
        if ablation in by:
            notes.append(f"Removing {ablation[3:]} changes mAP by {by[ablation]['mAP'] - ours:+.3f}.")
    return notes


def token_similarity_note(extras: dict, subjects: list[str]) -> str:
    """How different the high- and low-level tokens came out (the orthogonality loss pushes them apart)."""
    high = np.concatenate([extras[s]["high"] for s in subjects])
    low = np.concatenate([extras[s]["low"] for s in subjects])
    cosine = (high * low).sum(1) / np.maximum(
        np.linalg.norm(high, axis=1) * np.linalg.norm(low, axis=1), 1e-12
    )
    return (
        f"High- vs low-level token of CLIP-MUSED on the test samples: mean cosine {cosine.mean():.3f} "
        f"(1 = the same vector; the orthogonality loss, weight 1e-3, aims at 0)."
    )


def make_figures(extras: dict, prepared: dict, dataset: DecodingDataset) -> dict:
    subjects = prepared["subjects"]
    high = np.concatenate([extras[s]["high"] for s in subjects])
    low = np.concatenate([extras[s]["low"] for s in subjects])
    labels = np.concatenate([prepared["test"][s].labels for s in subjects])
    figures = {
        "CLIP-MUSED high- and low-level tokens of the test samples (PCA), coloured by category": token_embedding_figure(
            high, low, labels, dataset.info["categories"]
        )
    }
    if "attention" in extras[subjects[0]]:
        attention = np.mean([extras[s]["attention"] for s in subjects], axis=0)
        volumes = attention_volume(attention, extras["token_shape"], dataset.info["mask"])
        figures[
            "Attention of the subject tokens over the brain (last block, mean over heads, test samples, subjects)"
        ] = attention_figure(volumes, dataset.info["mask"])
    return figures
