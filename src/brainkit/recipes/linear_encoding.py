"""The linear encoding recipe: predict every voxel's response from a stimulus encoder's features.

``brainkit run linear_encoding`` on the built-in ``nsd_like`` data, per subject:
1. the stimuli embedded by a registered encoder (cached), z-scored on the training stimuli; the voxels z-scored on
   the training trials; ``val_fraction`` of the training stimuli held out (their trials averaged) for validation;
2. :class:`~brainkit.models.linear_encoding.LinearEncoding` trained by the one trainer (MSE, AdamW), the best
   epoch by the validation median voxel correlation kept;
3. the closed-form reference: scikit-learn ridge with an alpha per voxel chosen on the same validation stimuli;
4. both scored on the averaged test responses: voxel-wise Pearson r and the share of each voxel's noise ceiling
   explained (:mod:`brainkit.evaluation.encoding`); tables, curves and figures in ``report.html``.

Each subject's model trains as a resumable phase (:func:`brainkit.training.train_phase`) in
``train/linear_encoding_SUBJECT/`` (``state/`` while it trains; ``best/``, ``final/``, ``done.json`` and
``history.jsonl`` when done); its best epoch is saved as ``SUBJECT/checkpoint``. ``brainkit run linear_encoding
--out DIR --resume`` reloads the finished subjects and continues the interrupted one; ``brainkit eval DIR``
(:meth:`LinearEncodingRecipe.evaluate`) reloads each checkpoint and refits the ridge reference (closed form and
deterministic, so it is refitted rather than saved) and returns the run's ``metrics`` again: one row per subject
and method, the table's rows without their timing (``train_s``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.config import Checked, bounded
from brainkit.data import dataset_accepts, load_dataset
from brainkit.data.builtin.nsd_like import testing_options
from brainkit.data.reliability import noise_ceiling, trials_by_stimulus
from brainkit.data.transforms import Standardizer
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.evaluation.encoding import encoding_scores, voxel_correlations
from brainkit.models import build_model, count_parameters, load_model, model_config, save_model
from brainkit.objectives.regression import VoxelMSE
from brainkit.recipes import RecipeOutput
from brainkit.registry import RECIPES
from brainkit.report.linear_encoding import write_encoding_report
from brainkit.stimuli.cache import embed_stimuli
from brainkit.training import Arrays, SupervisedTask, TrainingConfig, predict, torch_threads, train_phase
from brainkit.training.state import load_weights

log = logging.getLogger(__name__)
METHODS = ("linear_encoding", "ridge")
TABLE = "Linear encoding vs ridge (test, per subject)"
CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class LinearEncodingRecipeConfig(Checked):
    """Everything the recipe does; ``brainkit run linear_encoding --set key=value`` changes any field."""

    # a trial-based dataset with single test trials: raw_test_trials in info (nsd_like, nsd, bold5000), or a test
    # set of unaveraged repeats (averaged here)
    data: str = "nsd_like"
    data_options: dict[str, Any] = field(default_factory=dict)
    subjects: tuple[str, ...] = ("subj01", "subj02", "subj05", "subj07")  # () = every subject of the data
    features: str = "efficientnet_lite0"  # the stimulus encoder whose features predict the voxels
    encoder_options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None
    val_fraction: float = bounded(0.1, gt=0, lt=1)
    training: TrainingConfig = TrainingConfig(
        epochs=30,
        batch_size=128,
        lr=1e-3,
        weight_decay=0.1,
        warmup_epochs=1,
        monitor="val_median_r",
        progress=False,
        checkpoint_every=10,  # the resumable state (~60 MB at 4k voxels) every 10 epochs; best on improvement
    )
    ridge_alphas: tuple[float, ...] = bounded(
        (1e1, 1e2, 1e3, 1e4, 1e5), gt=0
    )  # the reference's per-voxel grid
    # voxels with a lower noise ceiling (percent) are left out of the share of ceiling
    min_ceiling: float = bounded(1.0, ge=0, le=100, fix="a noise ceiling in percent")
    seed: int = bounded(0, ge=0)
    threads: int | None = bounded(
        1, ge=0, le=4096, fix="torch threads; 0 or null: as they are"
    )  # torch threads (one: the machine is shared)


TESTING_DATA = testing_options({"subj01": 41, "subj05": 29}, median_snr=1.5)
PRESETS = {
    # The built-in NSD imitation, its four subjects; the features are the encoder behind its "high" feature space
    # (the responses are not linear in them alone: low-level and semantic spaces and noise also drive them).
    "cpu_small": LinearEncodingRecipeConfig(),
    "testing": LinearEncodingRecipeConfig(
        data_options=TESTING_DATA,
        subjects=("subj01", "subj05"),
        features="pixel_projection",
        encoder_options={"dim": 24, "grid": 4},
        training=TrainingConfig(epochs=4, batch_size=32, lr=1e-2, monitor="val_median_r", progress=False),
        ridge_alphas=(1e0, 1e2),
    ),  # fmt: skip
}


class EncodingTask(SupervisedTask):
    """Stimulus features -> voxels with MSE (the supervised task); validation adds the median voxel r."""

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        prediction = predict(self.model, self.val.x)
        r = voxel_correlations(prediction, self.val.y)
        return {
            "val_median_r": float(np.median(r)),
            "val_mse": float(np.mean((prediction - self.val.y) ** 2)),
        }


@dataclass
class SubjectData:
    """One subject's standardised arrays: features -> voxels for train / val / test, and the test ceiling."""

    train: Arrays
    val: Arrays
    test: Arrays
    ceiling: np.ndarray


def subject_data(
    dataset, features: np.ndarray, subject: str, config: LinearEncodingRecipeConfig
) -> SubjectData:
    """Hold out validation stimuli, z-score features (on training stimuli) and voxels (on training trials)."""
    subject = dataset.check_subject(subject)
    train, test = dataset.train[subject], dataset.test[subject]
    raw = dataset.info.get("raw_test_trials", {}).get(subject)
    if raw is None and len(np.unique(test.stimulus_ids)) < len(test) and (test.n_repeats == 1).all():
        raw, test = test, test.average_repeats()  # the test set holds the single trials themselves
    if raw is None:
        raise DataError(
            f"linear_encoding: dataset {dataset.name!r} holds no single test trials for {subject} (its test rows "
            "are averaged and info has no raw_test_trials); the noise ceiling needs them. Use a dataset that keeps "
            "them (nsd_like, nsd, bold5000), or your arrays with from_arrays(..., average_test_repeats=False)."
        )
    if not 0 < config.val_fraction < 1:
        raise ConfigError(f"linear_encoding: val_fraction must lie in (0, 1), found {config.val_fraction}.")
    stimuli = np.unique(train.stimulus_ids)
    rng = np.random.default_rng(config.seed)
    val_ids = rng.choice(stimuli, size=max(2, int(round(config.val_fraction * len(stimuli)))), replace=False)
    is_val = np.isin(train.stimulus_ids, val_ids)
    fit_rows, val_rows = train.select(~is_val), train.select(is_val).average_repeats()
    position = dataset.stimuli.positions
    x_scale = Standardizer().fit(features[position(np.unique(fit_rows.stimulus_ids))])
    y_scale = Standardizer().fit(fit_rows.values)

    def arrays(rows, name: str) -> Arrays:
        return Arrays(
            x_scale.transform(features[position(rows.stimulus_ids)]), y_scale.transform(rows.values), name
        )

    ceiling = noise_ceiling(trials_by_stimulus(raw), n_average=int(np.max(test.n_repeats)))
    return SubjectData(arrays(fit_rows, "train"), arrays(val_rows, "val"), arrays(test, "test"), ceiling)


def fit_ridge(data: SubjectData, alphas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn ridge with one alpha per voxel, chosen by validation r; returns (test prediction, alphas)."""
    from sklearn.linear_model import Ridge

    if not alphas or min(alphas) <= 0:
        raise ConfigError(f"linear_encoding: ridge_alphas must be positive numbers, found {alphas}.")
    val_r = np.stack([voxel_correlations(Ridge(alpha=a).fit(data.train.x, data.train.y).predict(data.val.x),
                                         data.val.y) for a in alphas])  # fmt: skip
    chosen = np.asarray(alphas)[np.argmax(val_r, axis=0)]
    prediction = np.zeros((len(data.test.x), len(chosen)), np.float32)
    for alpha in np.unique(
        chosen
    ):  # one fit per alpha for the voxels that chose it (a fit per voxel is slow)
        voxels = chosen == alpha
        prediction[:, voxels] = (
            Ridge(alpha=alpha).fit(data.train.x, data.train.y[:, voxels]).predict(data.test.x)
        )
    return prediction, chosen


def phase_name(subject: str) -> str:
    """The training phase of ``subject``'s encoding model (its folder under ``train/``): filesystem-safe."""
    return "linear_encoding_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", subject)


def fit_encoder(
    data: SubjectData, config: LinearEncodingRecipeConfig, folder: Path, subject: str, resume: bool = False
):
    """Train ``subject``'s encoding model on the one trainer as the phase ``folder/train/<phase_name>``
    (``resume``: reload it when finished, continue its ``state/`` when interrupted); keep the best epoch's weights
    in ``folder/SUBJECT/checkpoint``; returns (model, the loop's result)."""
    model_cfg = model_config("linear_encoding", "default")
    model_cfg = dataclasses.replace(
        model_cfg, n_features=data.train.x.shape[1], n_voxels=data.train.y.shape[1]
    )
    torch.manual_seed(config.seed)
    model = build_model("linear_encoding", model_cfg)
    task = EncodingTask(model, VoxelMSE(), data.train, data.val)
    training = dataclasses.replace(config.training, seed=config.seed)
    phase = folder / "train" / phase_name(subject)
    result = train_phase(task, training, phase, resume, name=phase_name(subject))
    if (phase / "best").is_dir():
        load_weights(phase / "best", task)
    save_model(
        folder / subject / CHECKPOINT, model, metadata={"best": result.best, "seconds": result.seconds}
    )
    return model, result


def load_encoder(folder: Path, subject: str) -> torch.nn.Module:
    """``subject``'s trained encoding model from the finished run in ``folder`` (``SUBJECT/checkpoint``)."""
    path = folder / subject / CHECKPOINT
    if not (path / "model.safetensors").is_file():
        raise CheckpointError(
            f"{path / 'model.safetensors'} is missing: {folder} is not a finished linear_encoding run for "
            f"{subject}. Re-run it with brainkit run linear_encoding (or --resume an interrupted one)."
        )
    return load_model(path)[0]


def score_subject(
    subject: str, data: SubjectData, model: torch.nn.Module, config: LinearEncodingRecipeConfig
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The trained model and the ridge reference (fitted here: closed form, deterministic) on ``subject``'s test
    responses: (one row per method, their voxel correlations (n_voxels,) by method)."""
    ridge_prediction, alphas = fit_ridge(data, config.ridge_alphas)
    predictions = {"linear_encoding": predict(model, data.test.x), "ridge": ridge_prediction}
    rows, correlations = [], {}
    for method, prediction in predictions.items():
        r = correlations[method] = voxel_correlations(prediction, data.test.y)
        rows.append({"subject": subject, "method": method, "n_voxels": data.test.y.shape[1],
                     "params": count_parameters(model), **encoding_scores(r, data.ceiling, config.min_ceiling)})  # fmt: skip
    rows[-1]["median_alpha"] = float(np.median(alphas))
    return rows, correlations


def _inputs(config: LinearEncodingRecipeConfig):
    """(dataset, stimulus features (n_stimuli, n_features)) of ``config``: what ``run`` and ``evaluate`` share."""
    options = dict(config.data_options)
    if config.cache_dir is not None and dataset_accepts(config.data, "cache_dir"):
        options.setdefault("cache_dir", config.cache_dir)
    dataset = load_dataset(config.data, **options)
    features = embed_stimuli(dataset.stimuli, config.features, cache_dir=config.cache_dir,
                             **config.encoder_options)  # fmt: skip
    return dataset, features.reshape(len(features), -1)


def _timed(row: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """The table's row: ``row`` with ``train_s`` after ``params`` (timings stay out of the metrics)."""
    items = list(row.items())
    at = list(row).index("params") + 1
    return dict(items[:at] + [("train_s", seconds)] + items[at:])


ENCODING_METRICS = {
    "median_r": ("median voxel r", 0.0),
    "median_share_of_ceiling": ("median % of noise ceiling", 0.0),
}


def bench_scores(tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The per-subject table as benchmark score rows (:mod:`brainkit.evaluation.scores`): each method's median
    voxel r and share of the noise ceiling on the averaged test responses, the mean over subjects (chance 0)."""
    from brainkit.evaluation.scores import score_row, table

    rows = table(tables, "Linear encoding vs ridge")
    out = []
    for method in dict.fromkeys(row["method"] for row in rows):
        mine = [row for row in rows if row["method"] == method]
        role = "method" if method == "linear_encoding" else "baseline"
        for key, (metric, chance) in ENCODING_METRICS.items():
            value = float(np.mean([row[key] for row in mine]))
            out.append(score_row(method, role, "voxel encoding", f"unseen stimuli ({len(mine)} subjects)",
                                 f"{metric} (mean over subjects)", value, chance))  # fmt: skip
    return out


@RECIPES.register(
    "linear_encoding", help="Voxel-wise linear encoding model (one trainer) vs per-voxel ridge."
)
class LinearEncodingRecipe:
    Config = LinearEncodingRecipeConfig
    PRESETS = PRESETS
    BENCH_SEEDS = ("seed",)  # `brainkit bench`: the init, batches and validation stimuli (test split fixed)
    scores = staticmethod(bench_scores)  # its tables as `brainkit bench` score rows
    resumable = True  # `brainkit run linear_encoding --out DIR --resume` continues an interrupted run
    DESIGNS = (
        "trials",
    )  # any trial-based dataset with single test trials: yours through brainkit.run(..., dataset=)
    DATA_FIELDS = {"name": "data", "options": "data_options", "subjects": "subjects"}

    @staticmethod
    def with_dataset(
        config: LinearEncodingRecipeConfig, name: str, options: dict[str, Any]
    ) -> LinearEncodingRecipeConfig:
        """``config`` reading dataset ``name`` (every subject of it) instead."""
        return dataclasses.replace(config, data=name, data_options=dict(options), subjects=())

    def run(self, config: LinearEncodingRecipeConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        with torch_threads(config.threads):
            dataset, features = _inputs(config)
            rows, metric_rows, histories, correlations, ceilings = [], [], {}, {}, {}
            for subject in config.subjects or dataset.subjects:
                data = subject_data(dataset, features, subject, config)
                model, result = fit_encoder(data, config, folder, subject, resume)
                scored, by_method = score_subject(subject, data, model, config)
                histories[subject] = result.history
                ceilings[subject] = data.ceiling
                correlations |= {(subject, method): r for method, r in by_method.items()}
                metric_rows += scored
                rows += [_timed(row, result.seconds if row["method"] != "ridge" else None) for row in scored]
        notes = [
            f"Features: {config.features} ({features.shape[1]}-d), z-scored on the training stimuli; voxels z-scored "
            "on the training trials; test responses average the repeats.",
            "share_of_ceiling: 100 x sign(r) r^2 / noise ceiling (percent), median over voxels whose ceiling is at "
            f"least {config.min_ceiling} %.",
        ]
        vertices = dataset.info.get("voxel_vertices")  # fsaverage5 vertices of the voxels (nsd_like), if any
        write_encoding_report(
            folder / "report.html", rows, histories, correlations, ceilings, notes, vertices
        )
        return RecipeOutput({TABLE: rows}, notes, {"rows": metric_rows})

    def evaluate(self, config: LinearEncodingRecipeConfig, folder: Path) -> dict[str, list[dict[str, Any]]]:
        """The run's ``metrics`` again: each subject's model reloaded from ``SUBJECT/checkpoint`` (no training)
        and the ridge reference refitted (closed form on the same data: the same alphas and predictions), scored
        on the test responses. Equal to the run's ``metrics`` on CPU; these hold no timings (``train_s`` is in the
        table only)."""
        with torch_threads(config.threads):
            dataset, features = _inputs(config)
            rows = []
            for subject in config.subjects or dataset.subjects:
                data = subject_data(dataset, features, subject, config)
                rows += score_subject(subject, data, load_encoder(folder, subject), config)[0]
        return {"rows": rows}
