"""Training through Lightning Fabric: the same loop on a CPU, one GPU, or many GPUs/nodes.

The model is a plain ``nn.Module`` and the objective another; this module only drives them: seeded
shuffling, a global batch split across processes (negatives are gathered by the objective), a warmup +
cosine learning-rate schedule, gradient clipping, a progress bar, per-epoch validation, safetensors
checkpoints that resume exactly, and ``history.jsonl`` logs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from brainkit.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from brainkit.config import to_dict
from brainkit.errors import CheckpointError, ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """How to train. ``batch_size`` is the GLOBAL batch, split evenly across ``devices * num_nodes``."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_epochs: float = 1.0
    min_lr: float = 1e-5
    grad_clip: float | None = 1.0
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    checkpoint_every: int = 1
    seed: int = 0
    progress: bool = True
    threads: int | None = None


@dataclass
class Arrays:
    """Paired training arrays: ``x`` (n, n_voxels) float32 and ``y`` (n, *target_shape) float32."""

    x: np.ndarray
    y: np.ndarray
    name: str = "train"

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DataError(f"{self.name}: {len(self.x)} brain samples but {len(self.y)} targets.")
        if len(self.x) == 0:
            raise DataError(f"{self.name}: no samples.")
        for what, array in (("brain data", self.x), ("targets", self.y)):
            if not np.isfinite(array).all():
                raise DataError(f"{self.name}: {what} contain NaN or inf.")


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (``None`` or 0: as they are), then restore the previous count."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)  # leave the process as it was


def learning_rate(config: TrainingConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warmup then cosine decay to ``min_lr`` (per optimiser step)."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state into flat tensors (safetensors) and JSON-ready metadata."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_train_state(folder: Path, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> None:
    """Optimiser moments, RNG state and counters, so that a resumed run continues exactly."""
    tensors, meta = _optimizer_tensors(optimizer)
    tensors = {f"optimizer.{k}": v for k, v in tensors.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    save_checkpoint(folder, tensors, {"epoch": epoch, "step": step, "optimizer": meta})


def load_train_state(folder: Path, optimizer: torch.optim.Optimizer) -> tuple[int, int]:
    tensors, meta = load_checkpoint(folder)
    try:
        optim = {k.removeprefix("optimizer."): v for k, v in tensors.items() if k.startswith("optimizer.")}
        optimizer.load_state_dict(_optimizer_state(optim, meta["optimizer"]))
        torch.set_rng_state(tensors["rng.torch"])
        return int(meta["epoch"]), int(meta["step"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"Training state in {folder} does not fit this model/optimiser: {err}"
        ) from None


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Model outputs for ``x`` (n, n_voxels) -> (n, *output_shape), in eval mode, on the model's device."""
    was_training = model.training
    model.eval()
    device = next(iter(model.buffers()), next(iter(model.parameters()), torch.empty(0))).device
    parts = [
        model(torch.as_tensor(x[i : i + batch_size], device=device)).float().cpu().numpy()
        for i in range(0, len(x), batch_size)
    ]
    model.train(was_training)
    return np.concatenate(parts)


def top1_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Fraction of rows whose most similar target (cosine) is their own; quick validation metric."""
    p = pred.reshape(len(pred), -1)
    t = target.reshape(len(target), -1)
    p = p / (np.linalg.norm(p, axis=1, keepdims=True) + 1e-8)
    t = t / (np.linalg.norm(t, axis=1, keepdims=True) + 1e-8)
    return float(np.mean(np.argmax(p @ t.T, axis=1) == np.arange(len(p))))


def _make_fabric(config: TrainingConfig):
    from lightning.fabric import Fabric

    try:
        return Fabric(
            accelerator=config.accelerator,
            devices=config.devices,
            num_nodes=config.num_nodes,
            strategy=config.strategy,
            precision=config.precision,
        )
    except (ValueError, RuntimeError, TypeError) as err:
        raise ConfigError(
            f"Cannot set up training on {config.accelerator} x {config.devices}: {err}"
        ) from None


def fit(
    model: nn.Module,
    objective: nn.Module,
    train: Arrays,
    config: TrainingConfig,
    val: Arrays | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    fabric: Any = None,
    until_epoch: int | None = None,
) -> FitResult:
    """Train ``model`` with ``objective`` on ``train``; returns the per-epoch history.

    With ``out_dir``, writes ``out_dir/checkpoint`` (model, safetensors), ``out_dir/train_state`` (optimiser,
    RNG, counters) every ``checkpoint_every`` epochs, and ``out_dir/history.jsonl``. ``resume=True``
    continues from them. A model with ``fit_closed_form`` (ridge) is fitted in one shot instead.
    Under multi-process strategies, call this from the function Fabric launches, or pass a launched ``fabric``.
    ``until_epoch`` stops after that epoch (the schedule still spans ``config.epochs``), to split a long run
    into jobs that fit a cluster's time limit; the next job passes ``resume=True``.
    """
    start = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(out_dir) if out_dir is not None else None
    if hasattr(model, "fit_closed_form"):
        model.fit_closed_form(torch.as_tensor(train.x), torch.as_tensor(train.y))
        record: dict[str, Any] = {"epoch": 1}
        if val is not None:
            record["val_top1"] = top1_accuracy(predict(model, val.x), val.y)
        return FitResult(history=[record], seconds=time.perf_counter() - start)

    if fabric is None:
        fabric = _make_fabric(config)
        fabric.launch()
    world, rank = fabric.world_size, fabric.global_rank
    if config.batch_size % world:
        raise ConfigError(f"batch_size {config.batch_size} is not divisible by {world} processes.")
    n = len(train.x)
    batch = min(config.batch_size, n - n % world) if n >= world else n
    steps_per_epoch = max(1, n // batch)
    local = batch // world

    optimizer = torch.optim.AdamW(
        [p for p in list(model.parameters()) + list(objective.parameters()) if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    history: list[dict[str, Any]] = []
    first_epoch, step = 0, 0
    if resume:
        if out is None or not (out / "train_state").is_dir():
            raise CheckpointError(f"Cannot resume: {out}/train_state does not exist. Start without --resume.")
        weights, _ = load_checkpoint(out / "checkpoint")
        model.load_state_dict(
            {k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")}
        )
        objective.load_state_dict(
            {k.removeprefix("objective."): v for k, v in weights.items() if k.startswith("objective.")}
        )
        first_epoch, step = load_train_state(out / "train_state", optimizer)
        history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()][
            :first_epoch
        ]
    model, optimizer = fabric.setup(model, optimizer)
    objective = fabric.to_device(objective)
    if not resume:
        torch.manual_seed(config.seed + 1000 * rank)  # dropout/drop-path draws, different per process

    x_all = torch.as_tensor(train.x)
    y_all = torch.as_tensor(train.y)
    bar = tqdm(
        range(first_epoch, min(config.epochs, until_epoch or config.epochs)),
        desc=type(model.module if hasattr(model, "module") else model).__name__,
        disable=not config.progress or rank != 0,
        initial=first_epoch,
        total=config.epochs,
        leave=False,
    )
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        losses = []
        for b in range(steps_per_epoch):
            rows = order[b * batch : (b + 1) * batch][rank * local : (rank + 1) * local]
            xb, yb = fabric.to_device((x_all[rows], y_all[rows]))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step, steps_per_epoch)
            loss = objective(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            if config.grad_clip:
                fabric.clip_gradients(model, optimizer, max_norm=config.grad_clip)
            optimizer.step()
            losses.append(loss.detach())
            step += 1
        mean_loss = float(fabric.all_reduce(torch.stack(losses).mean(), reduce_op="mean"))
        record = {"epoch": epoch + 1, "train_loss": mean_loss, "lr": optimizer.param_groups[0]["lr"]}
        if val is not None:
            pred = predict(model, val.x)
            record["val_top1"] = top1_accuracy(pred, val.y)
            with torch.no_grad():
                record["val_loss"] = float(objective(torch.as_tensor(pred), torch.as_tensor(val.y)))
        history.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
        last = epoch + 1 in (config.epochs, until_epoch)
        if out is not None and rank == 0 and ((epoch + 1) % config.checkpoint_every == 0 or last):
            raw = model.module if hasattr(model, "module") else model
            state = {f"model.{k}": v for k, v in raw.state_dict().items()}
            state.update({f"objective.{k}": v for k, v in objective.state_dict().items()})
            save_checkpoint(out / "checkpoint", state, {"training": to_dict(config), "epoch": epoch + 1})
            save_train_state(out / "train_state", optimizer, epoch + 1, step)
            atomic_write_text(out / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        log.info("epoch %d: %s", epoch + 1, record)
    fabric.barrier()
    return FitResult(history=history, seconds=time.perf_counter() - start)
