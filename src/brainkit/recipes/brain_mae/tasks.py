"""The BrainMAE recipe's two tasks for the one trainer (:func:`brainkit.training.train`), and where their
networks live: :class:`MaskedPretraining` (a mask per batch, the weighted masked/visible loss, validation on a
fixed mask), :class:`Finetuning` (a linear head on a copy of the encoder) driven per cross-validation fold by
:class:`FinetuneHead`, and :class:`Phases` (one :func:`~brainkit.training.train_phase` folder per network)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.data.roi_windows import check_windows
from brainkit.errors import CheckpointError, DataError
from brainkit.evaluation.downstream import reconstruction_error
from brainkit.models.cpu_linear import CPULinear
from brainkit.objectives.masked import MaskingConfig, draw_mask, masked_reconstruction_loss, random_mask
from brainkit.training import FitResult, Task, TrainingConfig, phase_done, train, train_phase
from brainkit.training.phase import DONE, FINAL


class MaskedPretraining(Task):
    """BrainMAE pretraining on windows (n_windows, n_frames, n_rois): each global batch draws a mask ratio from
    ``masking.mask_ratio_range`` and a mask from the step's generator; the loss weighs hidden tokens by
    ``masking.masked_weight``. Validation: masked / visible MSE of ``val_windows`` on one fixed mask of
    ``eval_mask_ratio`` (seeded by ``seed``). Checkpoint keys: ``model.*``."""

    def __init__(self, model: nn.Module, windows: np.ndarray, masking: MaskingConfig | None = None,
                 val_windows: np.ndarray | None = None, seed: int = 0):  # fmt: skip
        super().__init__()
        self.model, self.masking = model, masking or MaskingConfig()
        frames, n_rois = model.config.segment_frames, model.config.n_rois
        self.x = check_windows(windows, n_rois, "pretraining windows")
        self.n_segments = self.x.shape[1] // frames
        self.val, self.val_mask = None, None
        if val_windows is not None:
            self.val = check_windows(val_windows, n_rois, "validation windows").numpy()
            generator = torch.Generator().manual_seed(seed + 7)
            n_segments = self.val.shape[1] // frames
            ratio = self.masking.eval_mask_ratio
            self.val_mask = random_mask(len(self.val), n_segments, n_rois, ratio, generator)

    def n_samples(self) -> int:
        return len(self.x)

    def draw(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return draw_mask(self.masking, len(rows), self.n_segments, self.x.shape[2], generator)

    def load(self, rows: torch.Tensor, drawn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], drawn

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, mask = batch
        frames = self.model.config.segment_frames
        return masked_reconstruction_loss(self.model(x, mask), x, mask, frames, self.masking.loss_weight)

    def validate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        return {f"val_{k}": v for k, v in reconstruction_error(self.model, self.val, self.val_mask).items()}


class Finetuning(Task):
    """A zero-initialised linear head after a LayerNorm (no affine) on ``encoder.<readout>(x)``, trained with the
    encoder at ``encoder_lr_scale`` x the rate (0: frozen). ``target``: standardised values (regression: MSE) or
    class indices (classification: cross-entropy). Checkpoint keys: ``encoder.*``, ``head.*``."""

    def __init__(self, encoder: nn.Module, x: torch.Tensor, target: torch.Tensor, n_outputs: int,
                 encoder_lr_scale: float = 0.1, readout: str = "features"):  # fmt: skip
        super().__init__()
        self.encoder, self.readout, self.encoder_lr_scale = encoder, readout, encoder_lr_scale
        self.x, self.target = x, target
        with torch.no_grad():
            n_features = getattr(encoder, readout)(x[:1]).shape[1]
        self.norm = nn.LayerNorm(n_features, elementwise_affine=False)
        self.head = CPULinear(n_features, n_outputs)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        encoder.requires_grad_(encoder_lr_scale > 0)

    def n_samples(self) -> int:
        return len(self.x)

    def load(self, rows: torch.Tensor, drawn: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[rows], self.target[rows]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_frames, n_rois) -> (batch, n_outputs)."""
        return self.head(self.norm(getattr(self.encoder, self.readout)(x)))

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, target = batch
        out = self.predict(x)
        if target.dtype == torch.long:
            return nn.functional.cross_entropy(out, target)
        return nn.functional.mse_loss(out[:, 0], target)

    def parameter_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = [{"params": self.head.parameters()}]
        if self.encoder_lr_scale > 0:
            groups.append({"params": self.encoder.parameters(), "lr_scale": self.encoder_lr_scale})
        return groups


@dataclass(frozen=True)
class Phases:
    """Where a run's trained networks live: one :func:`~brainkit.training.train_phase` folder per network,
    ``folder/<name>``. ``resume``: continue an interrupted phase, reload a finished one; ``reload_only`` (what
    :meth:`BrainMAERecipe.evaluate` uses): load finished phases and never train (a missing one is an error)."""

    folder: Path
    resume: bool = False
    reload_only: bool = False

    def fit(self, task: Task, training: TrainingConfig, name: str) -> FitResult:
        """Train ``task`` as the phase ``name`` (or reload it): its weights end in ``task``."""
        folder = self.folder / name
        if self.reload_only and not phase_done(folder):
            missing = folder / (FINAL if (folder / DONE).is_file() else DONE)
            raise CheckpointError(
                f"{missing} is missing: the run has no finished phase {name!r}, so it cannot be re-evaluated. "
                "Finish an interrupted run with `brainkit run brain_mae --out DIR --resume`, or run it again."
            )
        return train_phase(task, training, folder, self.resume or self.reload_only, name=name)


@dataclass
class FinetuneHead:
    """A head for :func:`~brainkit.evaluation.downstream.cross_validate`: (x_train, y_train, x_test, task, classes)
    -> predictions or class probabilities. Each call fine-tunes a deep copy of ``model`` (left untouched) with
    :class:`Finetuning` through the one trainer, then predicts ``x_test``; seeded, so a fold gives the same numbers.
    With ``phases`` each call is the phase ``<name>-<call number>`` (01, 02, ...: the calls come in the fixed order
    of targets, then folds), so a resumed run reloads the folds it already fine-tuned.
    """

    model: nn.Module
    training: TrainingConfig
    encoder_lr_scale: float = 0.1
    readout: str = "features"  # the model method the head reads, e.g. "token_connectivity"
    phases: Phases | None = None  # None: train in memory only
    name: str = "finetune"
    calls: int = field(default=0, init=False)

    def __call__(self, x_train, y_train, x_test, task: str, classes: np.ndarray | None = None) -> np.ndarray:
        x_train = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
        x_test = torch.as_tensor(np.asarray(x_test, dtype=np.float32))
        if x_train.ndim != 3:
            raise DataError(
                f"FinetuneHead: expected windows (n, n_frames, n_rois), found {tuple(x_train.shape)}."
            )
        if task == "regression":
            mean, std = float(np.mean(y_train)), float(np.std(y_train) or 1.0)
            target, n_outputs = torch.as_tensor((np.asarray(y_train, dtype=np.float32) - mean) / std), 1
        else:
            target = torch.as_tensor(np.searchsorted(classes, y_train), dtype=torch.long)
            n_outputs = len(classes)
        encoder = copy.deepcopy(self.model).train()
        tuned = Finetuning(encoder, x_train, target, n_outputs, self.encoder_lr_scale, self.readout)
        if self.phases is None:
            train(tuned, self.training, name=f"fine-tuning ({self.readout})")
        else:
            self.calls += 1
            self.phases.fit(tuned, self.training, f"{self.name}-{self.calls:02d}")
        tuned.cpu().eval()
        with torch.no_grad():
            out = torch.cat([tuned.predict(x_test[i : i + 64]) for i in range(0, len(x_test), 64)])
        if task == "regression":
            return out[:, 0].numpy() * std + mean
        return out.softmax(dim=1).numpy()


def pretrain(model: nn.Module, windows: np.ndarray, training: TrainingConfig, masking: MaskingConfig,
             val_windows: np.ndarray | None = None, **train_options: Any) -> FitResult:  # fmt: skip
    """Pretrain ``model`` (in place) on ``windows`` with :class:`MaskedPretraining`; ``train_options`` go to
    :func:`~brainkit.training.train` (``out_dir``, ``resume``, ``fabric``, ``until_epoch``, ...)."""
    task = MaskedPretraining(model, windows, masking, val_windows, seed=training.seed)
    return train(task, training, name=f"{type(model).__name__} pretraining", **train_options)


__all__ = ["MaskedPretraining", "Finetuning", "Phases", "FinetuneHead", "pretrain"]
