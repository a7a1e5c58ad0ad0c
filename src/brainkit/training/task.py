"""The task protocol: what the one training loop (:func:`brainkit.training.train`) needs of a phase.

A task is an ``nn.Module`` whose submodules are what it trains (a model, an objective with learnable parameters, a
frozen VAE: everything in its ``state_dict`` is checkpointed, so keep data as plain attributes, never as buffers).
Its ``forward(batch)`` returns the training loss, so the distributed wrapper (DDP through Lightning Fabric) sees
every forward pass. A subclass implements:

- ``n_samples()``: rows the default batch order shuffles;
- ``load(rows, drawn) -> batch``: the batch of one process, on the CPU (tensors, tuples or dicts of them);
- ``forward(batch) -> loss``: a scalar tensor, or a dict with ``"loss"`` and other scalar terms to log;

and may override:

- ``batches(epoch, batch_size, generator) -> list[rows]``: the GLOBAL batches of one epoch (default: a seeded
  permutation of ``n_samples()`` rows cut into full batches, the ragged end dropped). ``rows`` is anything sliceable
  with ``len`` (an index tensor; SIM's clip samples);
- ``draw(rows, generator)``: the random choices of one global batch (masks, noise), drawn from the step's seeded
  generator BEFORE the batch is split across processes, so 1 and N processes draw the same. Tensors (or tuples /
  dicts of tensors) whose first axis is the batch; ``None`` by default;
- ``validate() -> dict[str, float]``: validation metrics, called in eval mode under ``no_grad``;
- ``parameter_groups() -> list[dict]``: optimiser groups; each has ``"params"`` and optionally ``"lr_scale"`` (x the
  scheduled rate), ``"frozen_steps"`` (rate 0 for the first steps: linear-probe-then-fine-tune) and
  ``"weight_decay"``. Default: every parameter that requires a gradient, in one group.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Task(nn.Module):
    """Base class of every training phase (see the module docstring for the protocol)."""

    def n_samples(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define n_samples() or override batches().")

    def batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> list[Any]:
        n = self.n_samples()
        batch = min(batch_size, n)
        order = torch.randperm(n, generator=generator)
        return [order[b * batch : (b + 1) * batch] for b in range(n // batch)] if batch else []

    def draw(self, rows: Any, generator: torch.Generator) -> Any:
        return None

    def load(self, rows: Any, drawn: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define load(rows, drawn).")

    def validate(self) -> dict[str, float]:
        return {}

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]


def take(value: Any, part: slice) -> Any:
    """The ``part`` rows of a drawn value: tensors along the first axis, recursively through tuples and dicts."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: take(v, part) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(take(v, part) for v in value)
    return value[part]
