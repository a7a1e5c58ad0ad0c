"""The adaptation recipe's data and its two trainer tasks.

- :func:`subject_arrays`: every pretraining subject's training trials, z-scored on that subject's own trials;
- :func:`held_out_trials`: the held-out subject's k trials for one seed (the first k of a seeded permutation of
  its training trials, so a seed's sets are nested: k=50 is inside k=150) with a standardizer fitted on those k
  trials alone, and its test set scaled by that standardizer;
- :class:`PretrainTask`: the shared-subject model on all pretraining subjects, ONE subject per optimiser step (each
  subject's trials are cut into batches, and the batches of all subjects are shuffled together each epoch);
- :class:`AdaptTask`: a new subject's ``Linear(n_voxels -> d_shared)``, the only trainable part; the backbone (and
  the objective) frozen and kept in eval mode.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.data.paired import Arrays, DataSpec, prepare_data, targets_for
from brainkit.data.schema import DecodingDataset
from brainkit.data.transforms import Standardizer
from brainkit.training import Task, predict, top1_accuracy
from brainkit.training.subsets import nested_rows as trial_rows


def subject_arrays(dataset: DecodingDataset, spec: DataSpec, subjects: list[str]) -> dict[str, Arrays]:
    """Each subject's training trials (z-scored on its own trials) paired with their targets."""
    out = {}
    for subject in subjects:
        prepared = prepare_data(dataclasses.replace(spec, subject=subject, val_fraction=0.0), dataset)
        out[subject] = prepared.train
    return out


@dataclass
class HeldOut:
    """The held-out subject's ``k`` trials for one seed: which rows (of its training trials), the scaled arrays,
    the standardizer fitted on those rows, and its whole test set scaled the same way."""

    rows: np.ndarray
    train: Arrays
    test: Arrays
    standardizer: Standardizer


def held_out_trials(dataset: DecodingDataset, spec: DataSpec, subject: str, k: int, seed: int) -> HeldOut:
    """The ``k`` trials of ``subject`` that seed ``seed`` draws (see :func:`trial_rows`), z-scored on themselves."""
    samples = dataset.train[subject]
    rows = trial_rows(len(samples.values), k, seed)
    chosen = samples.select(rows)
    standardizer = Standardizer().fit(chosen.values)
    test = dataset.test[subject]
    return HeldOut(
        rows,
        Arrays(
            standardizer.transform(chosen.values), targets_for(dataset, spec, chosen.stimulus_ids), "k trials"
        ),
        Arrays(standardizer.transform(test.values), targets_for(dataset, spec, test.stimulus_ids), "test"),
        standardizer,
    )


@dataclass
class SubjectRows:
    """One global batch of :class:`PretrainTask`: rows of one subject (by its index in the model)."""

    subject: int
    rows: torch.Tensor

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, part: slice) -> SubjectRows:
        return SubjectRows(self.subject, self.rows[part])


class PretrainTask(Task):
    """``objective(model(x, subject), y)`` over several subjects' arrays, one subject per step. No validation: the
    recipe scores the pretrained backbone on the held-out subject instead."""

    def __init__(self, model: nn.Module, objective: nn.Module, arrays: dict[str, Arrays]) -> None:
        super().__init__()
        self.model, self.objective = model, objective
        self.subjects = list(arrays)
        self.x = [torch.as_tensor(arrays[s].x) for s in self.subjects]
        self.y = [torch.as_tensor(arrays[s].y) for s in self.subjects]

    def batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> list[SubjectRows]:
        out = []
        for index, x in enumerate(self.x):
            n = len(x)
            batch = min(batch_size, n)
            order = torch.randperm(n, generator=generator)
            out += [SubjectRows(index, order[b * batch : (b + 1) * batch]) for b in range(n // batch)]
        return [out[i] for i in torch.randperm(len(out), generator=generator).tolist()]

    def load(self, rows: SubjectRows, drawn: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        subject = torch.full((len(rows),), self.model.subjects.index(self.subjects[rows.subject]))
        return self.x[rows.subject][rows.rows], self.y[rows.subject][rows.rows], subject

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y, subject = batch
        return self.objective(self.model(x, subject), y)


class AdaptTask(Task):
    """A new subject's adapter trained through the frozen backbone: ``objective(backbone(adapter(x)), y)``.
    ``model`` is a shared-subject model whose only subject is the new one; its backbone and the objective are
    frozen (``requires_grad=False``) and stay in eval mode while the task trains. Validation: ``train_top1``,
    the cosine identification of the k trials themselves (a fit check, not a score)."""

    def __init__(self, model: nn.Module, objective: nn.Module, data: Arrays) -> None:
        super().__init__()
        self.model, self.objective = model, objective
        (self.subject,) = model.subjects
        for part in (model.backbone, objective):
            part.requires_grad_(False)
        self.x, self.y = torch.as_tensor(data.x), torch.as_tensor(data.y)
        self.data = data

    def train(self, mode: bool = True) -> AdaptTask:
        super().train(mode)
        self.model.backbone.eval()  # frozen: no dropout, no drop-path
        self.objective.eval()
        return self

    def n_samples(self) -> int:
        return len(self.x)

    def load(self, rows: torch.Tensor, drawn: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], self.y[rows]

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return self.objective(self.model(x, self.subject), y)

    def validate(self) -> dict[str, float]:
        return {
            "train_top1": top1_accuracy(predict(Subject(self.model, self.subject), self.data.x), self.data.y)
        }

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.model.adapters.parameters())}]


class Subject(nn.Module):
    """A shared-subject model bound to one subject: ``(batch, n_voxels) -> (batch, *output_shape)``, what
    :func:`brainkit.training.predict` takes."""

    def __init__(self, model: nn.Module, subject: str) -> None:
        super().__init__()
        self.model, self.subject = model, subject

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.subject)


__all__ = ["AdaptTask", "HeldOut", "PretrainTask", "Subject", "SubjectRows", "held_out_trials", "subject_arrays",
           "trial_rows"]  # fmt: skip
