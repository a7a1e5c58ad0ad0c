"""Fine-tuning a pretrained encoder with a linear head, as a drop-in head for
:func:`brainkit.evaluation.downstream.cross_validate`.

For each fold a fresh copy of the pretrained model gets a linear head on its ``features`` and both are trained on
the fold's training windows (MSE on the standardised target for regression, cross-entropy for classification),
then predict the fold's test windows. Seeded: the same fold gives the same numbers.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from brainkit.errors import DataError
from brainkit.training import TrainingConfig, learning_rate

log = logging.getLogger(__name__)


@dataclass
class FinetuneHead:
    """Callable head: (x_train, y_train, x_test, task, classes) -> predictions or class probabilities.

    ``model`` is the pretrained encoder (left untouched: each call trains a deep copy); its method ``readout``
    (default ``features``) maps windows to (batch, n_features). ``encoder_lr_scale`` scales the encoder's learning rate (0 freezes it).
    """

    model: nn.Module
    training: TrainingConfig
    encoder_lr_scale: float = 0.1
    readout: str = "features"  # the model method the head reads, e.g. "token_connectivity"

    def __call__(self, x_train, y_train, x_test, task: str, classes: np.ndarray | None = None) -> np.ndarray:
        x_train = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
        x_test = torch.as_tensor(np.asarray(x_test, dtype=np.float32))
        if x_train.ndim != 3:
            raise DataError(
                f"FinetuneHead: expected windows (n, n_frames, n_rois), found {tuple(x_train.shape)}."
            )
        torch.manual_seed(self.training.seed)
        model = copy.deepcopy(self.model).train()
        read = getattr(model, self.readout)
        with torch.no_grad():
            n_features = read(x_train[:1]).shape[1]
        if task == "regression":
            mean, std = float(np.mean(y_train)), float(np.std(y_train) or 1.0)
            target = torch.as_tensor((np.asarray(y_train, dtype=np.float32) - mean) / std)
            head = nn.Linear(n_features, 1)
        else:
            target = torch.as_tensor(np.searchsorted(classes, y_train), dtype=torch.long)
            head = nn.Linear(n_features, len(classes))
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        norm = nn.LayerNorm(n_features, elementwise_affine=False)
        groups = [{"params": head.parameters(), "scale": 1.0}]
        if self.encoder_lr_scale > 0:
            groups.append({"params": model.parameters(), "scale": self.encoder_lr_scale})
        else:
            model.requires_grad_(False)
        optimizer = torch.optim.AdamW(groups, lr=self.training.lr, weight_decay=self.training.weight_decay)
        n = len(x_train)
        batch = min(self.training.batch_size, n)
        steps_per_epoch = max(1, n // batch)
        generator = torch.Generator().manual_seed(self.training.seed)
        step = 0
        for _ in range(self.training.epochs):
            order = torch.randperm(n, generator=generator)
            for b in range(steps_per_epoch):
                rows = order[b * batch : (b + 1) * batch]
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(self.training, step, steps_per_epoch) * group["scale"]
                out = head(norm(read(x_train[rows])))
                if task == "regression":
                    loss = nn.functional.mse_loss(out[:, 0], target[rows])
                else:
                    loss = nn.functional.cross_entropy(out, target[rows])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.training.grad_clip:
                    nn.utils.clip_grad_norm_(
                        list(model.parameters()) + list(head.parameters()), self.training.grad_clip
                    )
                optimizer.step()
                step += 1
        model.eval()
        with torch.no_grad():
            out = torch.cat([head(norm(read(x_test[i : i + 64]))) for i in range(0, len(x_test), 64)])
        if task == "regression":
            return out[:, 0].numpy() * std + mean
        return out.softmax(dim=1).numpy()
