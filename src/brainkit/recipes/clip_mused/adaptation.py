"""CLIP-MUSED's new-subject adaptation (``brainkit run clip_mused --preset adaptation``; docs/methods/adaptation.md).

1. CLIP-MUSED is pretrained on every subject but ``adaptation.target_subject`` (default: the dataset's last)
   through the one trainer (``pretrain/``), with the recipe's loss and ``training``;
2. for each k of ``adaptation.k`` (samples of the held-out subject's training data; ``"all"``: every one) and each
   seed of ``adaptation.seeds``, the seed draws k samples (nested over k: :func:`brainkit.training.subsets.
   nested_rows`), z-scored on those k samples alone (``kK_seedS/preprocess.safetensors``, ``rows.json``); then
   - ``adapt``: the pretrained network with ONE subject, the new one, whose subject tokens (its low- and
     high-level tokens: the model's only per-subject parameter) are drawn afresh from the seed and trained alone on
     the k samples; every shared parameter frozen and the network in eval mode (BatchNorm statistics and dropout
     fixed), so the shared weights leave bit-identical (``kK_seedS/adapt/``);
   - ``scratch``: the same architecture for that one subject from random init on the same k samples
     (``kK_seedS/scratch/``);
   both scored on the subject's whole test set (mAP, AUC, Hamming; the label-frequency chance of its training
   labels beside, as the recipe scores);
3. the curve (one row per method and k: mean and 95 % t-interval over seeds, k in samples and in scan-minutes =
   k x ``seconds_per_sample`` / 60), ``curve.csv`` and ``report.html``.

Every training is a :func:`brainkit.training.train_phase` folder (``final/``: safetensors + JSON): ``--resume``
continues an interrupted run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.checkpoint import atomic_write_text
from brainkit.config import from_dict, to_dict
from brainkit.data.roi_patches import PatchGrid
from brainkit.data.semantic import SampleArrays, SemanticSamples, stack_subjects
from brainkit.data.transforms import Standardizer
from brainkit.errors import ConfigError
from brainkit.evaluation.multilabel import label_frequency_scores, multilabel_metrics
from brainkit.models import model_config
from brainkit.models.clip_mused import CLIPMUSED
from brainkit.objectives.semantic import SemanticLoss, SemanticLossConfig
from brainkit.recipes import RecipeOutput
from brainkit.recipes.clip_mused.settings import METHODS, CLIPMUSEDRecipeConfig
from brainkit.recipes.clip_mused.task import SemanticTask, build_network, predict
from brainkit.report.adaptation import curve_figure, curve_rows, smallest_k_note, write_curve
from brainkit.training import TrainingConfig, train_phase
from brainkit.training.subsets import check_k_and_seeds, held_out_subject, k_training, nested_rows

SUBJECT_PARAMETERS = ("tokens",)  # CLIP-MUSED's per-subject parameters: [high, low] token pair per subject
SCORES = {"mAP": "mAP", "AUC": "AUC", "hamming": "hamming"}  # curve column stem -> multilabel_metrics key
TABLE = "mAP against k"
LABELS = {"adapt": "adapt (pretrained, new subject's tokens only)", "scratch": "scratch (same k samples)"}


def check_adaptation(config: CLIPMUSEDRecipeConfig) -> None:
    """The adaptation settings that need no data. Raises :class:`ConfigError`."""
    spec = config.adaptation
    check_k_and_seeds(spec.k, spec.seeds, "samples")
    model = model_config("clip_mused", config.model_preset, dict(config.model), where="model")
    if not model.subject_tokens or model.readout != "tokens":
        raise ConfigError(
            "clip_mused adaptation adapts the new subject's tokens; the model has none (model.subject_tokens="
            f"{model.subject_tokens}, model.readout={model.readout!r}): use subject_tokens=true, readout=tokens."
        )


def resolve(config: CLIPMUSEDRecipeConfig, samples: SemanticSamples) -> tuple[str, list[str], list[int]]:
    """(the held-out subject, the pretraining subjects, the k values in samples), checked against the data."""
    spec = config.adaptation
    subjects = list(samples.subjects)
    target, ks = held_out_subject("clip_mused", subjects, spec.target_subject,
                                  lambda s: len(samples.train[s].values), spec.k, "samples")  # fmt: skip
    return target, [s for s in subjects if s != target], ks


@dataclass
class HeldOut:
    """The held-out subject's k samples of one seed (rows of its training samples), as one-subject arrays
    (subject index 0) z-scored by ``standardizer`` (fitted on those k samples), and its test set scaled alike."""

    rows: np.ndarray
    train: SampleArrays
    test: SampleArrays
    standardizer: Standardizer


def held_out(dataset: Any, samples: SemanticSamples, grid, subject: str, k: int, seed: int) -> HeldOut:
    """The k samples seed ``seed`` draws of ``subject``, re-standardised on themselves from the raw voxels (the
    recipe's samples are standardised on all of the subject's training data, which adapting may not see)."""
    train, test = samples.train[subject], samples.test[subject]
    rows = nested_rows(len(train.values), k, seed)
    raw_train, raw_test = dataset.train[subject].values, dataset.test[subject].values
    standardizer = Standardizer().fit(raw_train[rows])

    def scaled(values: np.ndarray) -> np.ndarray:
        values = standardizer.transform(values)
        return grid.patches(values, subject) if isinstance(grid, PatchGrid) else values

    chosen = train.select(rows)
    return HeldOut(
        rows,
        replace(chosen, values=scaled(raw_train[rows])).with_subject(0),
        replace(test, values=scaled(raw_test)).with_subject(0),
        standardizer,
    )


def adapt_network(pretrained: CLIPMUSED | None, config, grid, n_classes: int, seed: int) -> CLIPMUSED:
    """A one-subject CLIP-MUSED: its subject tokens freshly drawn from ``seed``, everything else the pretrained
    network's (all but :data:`SUBJECT_PARAMETERS`, buffers included)."""
    model = build_network("clip_mused", config, grid, n_classes, 1, seed)
    if pretrained is not None:
        shared = {k: v for k, v in pretrained.state_dict().items() if k not in SUBJECT_PARAMETERS}
        missing, unexpected = model.load_state_dict(shared, strict=False)
        assert sorted(missing) == sorted(SUBJECT_PARAMETERS) and not unexpected, (missing, unexpected)
    return model


class TokenTask(SemanticTask):
    """:class:`SemanticTask` training the new subject's tokens alone: every other parameter frozen
    (``requires_grad=False``) and the network kept in eval mode (BatchNorm statistics, dropout), so nothing shared
    changes."""

    def __init__(self, model: CLIPMUSED, loss: SemanticLoss, data: SampleArrays, grid, lr_scale: float = 1.0):
        super().__init__(model, loss, data, grid)
        self.lr_scale = lr_scale
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name in SUBJECT_PARAMETERS)
        loss.requires_grad_(False)

    def train(self, mode: bool = True) -> TokenTask:
        super().train(mode)
        self.model.eval()
        return self

    def parameter_groups(self) -> list[dict[str, Any]]:
        named = dict(self.model.named_parameters())
        return [{"params": [named[n] for n in SUBJECT_PARAMETERS], "lr_scale": self.lr_scale}]


def semantic_loss(config: CLIPMUSEDRecipeConfig) -> SemanticLoss:
    return SemanticLoss(from_dict(SemanticLossConfig, to_dict(config.loss) | METHODS["clip_mused"][2]))


def cell_training(config: CLIPMUSEDRecipeConfig, k: int, seed: int) -> TrainingConfig:
    return k_training(config.training, k, seed, config.adaptation.min_steps)


def score(model: CLIPMUSED, arrays: SampleArrays, grid, undefined: str, chance: dict[str, float]):
    metrics = multilabel_metrics(predict(model, arrays, grid)["scores"], arrays.labels, undefined=undefined)
    return {key: metrics[key] for key in SCORES.values()} | {
        f"{key}_chance": chance[key] for key in SCORES.values()
    }


def run_cell(
    config, dataset, samples, grid, pretrained, target: str, k: int, seed: int, folder: Path, resume
):
    """Adapt and scratch on the same k samples of seed ``seed``: their test scores (and training seconds)."""
    held = held_out(dataset, samples, grid, target, k, seed)
    cell = folder / f"k{k:05d}_seed{seed}"
    cell.mkdir(parents=True, exist_ok=True)
    held.standardizer.save(cell / "preprocess.safetensors")
    atomic_write_text(cell / "rows.json", json.dumps({"subject": target, "rows": held.rows.tolist()}))
    undefined = config.undefined_classes
    chance_scores = label_frequency_scores(samples.train[target].labels, len(held.test.values))
    chance = multilabel_metrics(chance_scores, held.test.labels, undefined=undefined)
    training = cell_training(config, k, seed)
    lr_scale = 1.0 if config.adaptation.adapt_lr is None else config.adaptation.adapt_lr / training.lr
    out = {}
    adapted = adapt_network(pretrained, config, grid, samples.n_classes, seed)
    task = TokenTask(adapted, semantic_loss(config), held.train, grid, lr_scale)
    fit = train_phase(task, training, cell / "adapt", resume, name=f"adapt_k{k}_seed{seed}")
    out["adapt"] = score(adapted, held.test, grid, undefined, chance) | {"train_s": fit.seconds}
    scratch = build_network("clip_mused", config, grid, samples.n_classes, 1, seed)
    fit = train_phase(SemanticTask(scratch, semantic_loss(config), held.train, grid), training,
                      cell / "scratch", resume, name=f"scratch_k{k}_seed{seed}")  # fmt: skip
    out["scratch"] = score(scratch, held.test, grid, undefined, chance) | {"train_s": fit.seconds}
    return out


def run_adaptation(config: CLIPMUSEDRecipeConfig, folder: Path, resume: bool, prepared) -> RecipeOutput:
    """The protocol on ``prepared`` (the recipe's (dataset, samples, grid)); see the module's docstring."""
    dataset, samples, grid = prepared
    spec = config.adaptation
    target, sources, ks = resolve(config, samples)
    folder = Path(folder)
    pretrained = build_network(
        "clip_mused", config, grid, samples.n_classes, len(sources), config.training.seed
    )
    task = SemanticTask(
        pretrained, semantic_loss(config), stack_subjects([samples.train[s] for s in sources]), grid
    )
    pretrain_fit = train_phase(task, config.training, folder / "pretrain", resume, name="pretrain")
    cells = {}
    for k in ks:
        for seed in spec.seeds:
            scored = run_cell(config, dataset, samples, grid, pretrained, target, k, seed, folder, resume)
            cells.update({f"{method}/k={k}/seed={seed}": scores for method, scores in scored.items()})
    rows = curve_rows(cells, ks, spec.seeds, spec.seconds_per_sample, 0, keys=SCORES)
    notes = [
        smallest_k_note(rows, "mAP", "samples"),
        f"Pretrained on {', '.join(sources)} ({config.model_preset} CLIP-MUSED, {pretrain_fit.seconds:.0f} s); "
        f"adapted to {target} with k of its {len(samples.train[target].values)} training samples (a seeded draw "
        "per seed, nested over k), z-scored on those k samples; adapt trains the new subject's low/high-level "
        "tokens alone, scratch the whole network from random init, each "
        f"{cell_training(config, ks[0], 0).steps}+ steps. scan-minutes = k x {spec.seconds_per_sample:g} s / 60. "
        "Scored on its whole test set; chance: every class at its training frequency (all training samples).",
    ]
    figure = curve_figure(rows, spec.seconds_per_sample, LABELS, lambda stem: f"test {stem} (%)", "samples")
    metrics = write_curve(folder, f"CLIP-MUSED new-subject adaptation on {dataset.name}", TABLE, rows, notes, figure,
                          cells, target_subject=target, pretraining_subjects=sources, k=ks)  # fmt: skip
    return RecipeOutput({TABLE: rows}, notes, metrics)


__all__ = [
    "HeldOut",
    "TokenTask",
    "adapt_network",
    "check_adaptation",
    "held_out",
    "resolve",
    "run_adaptation",
]
