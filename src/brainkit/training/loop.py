"""THE training loop: every phase of every method runs through :func:`train` (Lightning Fabric underneath).

One loop for a CPU, one GPU or many GPUs / nodes: a global batch split across processes (the task's objective
gathers negatives; BatchNorm layers share statistics: :mod:`~brainkit.training.batchnorm`), seeded batch order and
random draws, AdamW or Adam with warmup + cosine / step schedules, gradient accumulation and clipping, mixed
precision, validation every epoch or every ``validate_every`` steps, the best checkpoint by a named metric beside
the last, ``until_epoch`` / ``until_step`` limits for cluster time slots, and resumption that continues bit for
bit.

Randomness: the batch order of epoch ``e`` comes from a generator seeded with ``(seed, e)``; the random draws of
optimiser step ``s`` (masks, noise: :meth:`Task.draw`) from one seeded with ``(seed, s)``, and the global torch
generator (dropout, in-model noise) is re-seeded with ``(seed, s, rank)`` at every step. So a run resumed from any
checkpoint continues exactly, with no generator state to save.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from brainkit.checkpoint import atomic_write_text, recover_folder, tidy_folder
from brainkit.config import to_dict
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.training.batchnorm import synced_batchnorm
from brainkit.training.config import RESUMABLE_CHANGES, TrainingConfig
from brainkit.training.heap import cpu_heap
from brainkit.training.processes import primary_path
from brainkit.training.schedule import learning_rate, total_steps
from brainkit.training.state import load_state, load_weights, save_state, save_weights
from brainkit.training.task import Task, take

log = logging.getLogger(__name__)
STATE, BEST, HISTORY = "state", "best", "history.jsonl"


@dataclass
class FitResult:
    """Per-period history (one record per epoch or ``validate_every`` steps), seconds, and the best record."""

    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    best: dict[str, Any] | None = None
    steps: int = 0
    stopped_early: bool = False
    # settings changed when the run was resumed (allowing_changes): [{"step", "changes": {field: [old, new]}}]
    changes: list[dict[str, Any]] = field(default_factory=list)


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


def make_fabric(config: TrainingConfig):
    """A Lightning Fabric for ``config``'s accelerator, devices, nodes, strategy and precision."""
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


def _optimizer(task: Task, config: TrainingConfig) -> torch.optim.Optimizer:
    groups = task.parameter_groups()
    for group in groups:
        group["params"] = list(group["params"])
        group.setdefault("lr_scale", 1.0)
        group.setdefault("frozen_steps", 0)
    if not any(group["params"] for group in groups):
        raise ConfigError(f"{type(task).__name__}: nothing to train (every parameter is frozen).")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    params = [p for group in groups for p in group["params"]]
    return cls(
        groups,
        lr=config.lr,
        betas=tuple(config.betas),
        weight_decay=config.weight_decay,
        fused=fused_ok(params),
    )


def fused_ok(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused Adam / AdamW kernel (one pass over each tensor's value, gradient and moments) can
    step ``params``: real floating-point tensors, all on the CPU or all on CUDA. On the CPU it is ~3x faster than
    the default per-tensor loop (docs/benchmarks.md), which matters for the 100 M+ parameter models."""
    devices = {p.device.type for p in params}
    return (
        bool(params)
        and len(devices) == 1
        and devices <= {"cpu", "cuda"}
        and all(p.is_floating_point() and not p.is_complex() for p in params)
    )


def _seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index) % (2**62)


def _split(out: Any, name: str, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    parts = out if isinstance(out, dict) else {"loss": out}
    loss = parts["loss"]
    if not torch.isfinite(loss.detach()).all():
        raise DataError(
            f"{name}: the training loss became {float(loss.detach())} at step {step + 1}; lower training.lr, "
            "set training.grad_clip, or check the inputs for extreme values."
        )
    return loss, parts


# Training settings a resumed run may change because its user asked (``brainkit run --resume --allow-changes``;
# :func:`allowing_changes`): field names or dotted paths ending in one ("training.lr", "lr").
_ALLOWED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("allowed_changes", default=())


@contextlib.contextmanager
def allowing_changes(keys: tuple[str, ...] | list[str]):
    """Within the block, resuming a phase accepts changes of the training settings named in ``keys`` (a field
    name such as ``lr`` or a path ending in one, ``pretrain.lr``); each accepted change is recorded in the
    phase's state (``changes``) and logged. Every other change still refuses to resume."""
    token = _ALLOWED.set(tuple(keys))
    try:
        yield
    finally:
        _ALLOWED.reset(token)


def _check_resume(meta: dict[str, Any], config: TrainingConfig, folder: Path) -> dict[str, list[Any]]:
    """The allowed changes of ``config`` against the saved state's settings, {field: [old, new]}; raises for
    any other change."""
    saved, now = meta.get("training", {}), to_dict(config)
    defaults = to_dict(TrainingConfig())  # a key newer than the saved state had its default then
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != now[k])
    allowed = _ALLOWED.get()
    refused = [k for k in changed if not any(a == k or a.endswith(f".{k}") for a in allowed)]
    if refused:
        detail = ", ".join(f"{k}: {saved.get(k, defaults[k])!r} -> {now[k]!r}" for k in refused)
        raise ConfigError(
            f"Cannot resume {folder} with other settings ({detail}): the run so far used the saved ones. "
            f"Resume with the same settings, continue with these on purpose (--allow-changes {','.join(refused)}), "
            "or start a new run."
        )
    changes = {k: [saved.get(k, defaults[k]), now[k]] for k in changed}
    if changes:
        log.warning("Resuming %s with changed settings %s, as allowed.", folder, changes)
    return changes


def _history_text(history: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in history)


def _improved(config: TrainingConfig, record: dict[str, Any], best: dict[str, Any] | None) -> bool:
    if config.monitor is None:
        return False
    if config.monitor not in record:
        raise ConfigError(
            f"training.monitor={config.monitor!r} is not among the logged values {sorted(record)}; "
            "name one of them, or set it to null."
        )
    if best is None:
        return True
    value, old = record[config.monitor], best[config.monitor]
    if config.monitor_mode == "max":
        return value > old + config.min_delta
    return value < old - config.min_delta


def _stale(history: list[dict[str, Any]], best: dict[str, Any] | None) -> int:
    """Validation periods since the best one (all of them while there is none)."""
    if best is None:
        return len(history)
    return sum(1 for record in history if record["step"] > best["step"])


class _Progress:
    """Plain progress lines for logs (stderr is not a terminal, where tqdm draws no bar): one per validation
    period, at most one per ``every`` seconds, and the last."""

    def __init__(self, name: str, total: int, enabled: bool, every: float = 15.0) -> None:
        self.name, self.total, self.every = name, total, every
        self.enabled = enabled and not sys.stderr.isatty()
        self.last = -every

    def period(self, record: dict[str, Any], force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.every and not force):
            return
        self.last = now
        shown = "  ".join(
            f"{k} {v:.4g}" for k, v in record.items() if k not in ("step", "epoch", "seconds", "lr")
        )
        step = record["step"]
        print(
            f"{self.name}: step {step}/{self.total} ({100 * step / self.total:.0f} %), epoch {record['epoch']}, "
            f"{record['seconds']:.0f} s  {shown}",
            file=sys.stderr,
            flush=True,
        )


def _loggers(config: TrainingConfig, out: Path | None, name: str, history: list[dict[str, Any]]) -> list[Any]:
    """Lightning's CSV / TensorBoard loggers under ``out/logs`` (rewritten from ``history`` when resuming, so
    they hold every record exactly once)."""
    if not config.loggers:
        return []
    if out is None:
        raise ConfigError("training.loggers write into the run's folder; train with an out_dir.")
    from lightning.fabric.loggers import CSVLogger, TensorBoardLogger

    shutil.rmtree(out / "logs", ignore_errors=True)
    made = []
    for kind in config.loggers:
        if kind == "csv":
            made.append(CSVLogger(out / "logs", name="csv", version=0))
            continue
        try:
            made.append(TensorBoardLogger(out / "logs", name="tensorboard", version=0))
        except ModuleNotFoundError:
            raise ConfigError(
                "training.loggers=['tensorboard'] needs tensorboardX or tensorboard: pip install "
                "'brainkit[loggers]' (or drop it from training.loggers)."
            ) from None
    for record in history:
        _log_record(made, record)
    return made


def _log_record(loggers: list[Any], record: dict[str, Any]) -> None:
    values = {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, int | float)}
    for logger in loggers:
        logger.log_metrics(values, step=record["step"])


def train(
    task: Task,
    config: TrainingConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    fabric: Any = None,
    until_epoch: int | None = None,
    until_step: int | None = None,
    name: str | None = None,
) -> FitResult:
    """Train ``task`` (its submodules, in place) with ``config``; returns the history.

    With ``out_dir``: ``out_dir/state`` (weights, optimiser, counters, history: one atomic folder) every
    ``checkpoint_every`` periods and at the end, ``out_dir/best`` (weights) when ``config.monitor`` improves, and
    ``out_dir/history.jsonl``. ``resume=True`` continues from ``out_dir/state`` (same settings required).
    ``until_epoch`` / ``until_step`` stop early (the schedule still spans the whole run), so a long run can be
    split into jobs that fit a cluster's time limit. Under multi-process strategies, call this from the function
    Fabric launches, or pass a launched ``fabric``.
    """
    name = name or type(task).__name__
    start = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    with torch_threads(config.threads), contextlib.ExitStack() as scope:
        if fabric is None:
            fabric = make_fabric(config)
            fabric.launch()
        scope.enter_context(cpu_heap(config.cpu_memory if fabric.device.type == "cpu" else "release"))
        world, rank = fabric.world_size, fabric.global_rank
        if config.batch_size % world:
            raise ConfigError(
                f"training.batch_size {config.batch_size} is not divisible by {world} processes."
            )
        scope.enter_context(synced_batchnorm(task, config.sync_batchnorm and world > 1, fabric.device.type))

        def epoch_batches(epoch: int) -> list[Any]:
            return task.batches(
                epoch, config.batch_size, torch.Generator().manual_seed(config.seed * 100_003 + epoch)
            )

        first = epoch_batches(0)
        steps_per_epoch = len(first) // config.accumulate
        if steps_per_epoch < 1:
            raise DataError(
                f"{name}: {len(first)} batches per epoch, fewer than training.accumulate={config.accumulate}; "
                "lower the batch size or accumulate, or add data."
            )
        total = total_steps(config, steps_per_epoch)
        stop = min(total, until_step or total, (until_epoch or total) * steps_per_epoch)
        period = config.validate_every or steps_per_epoch
        optimizer = _optimizer(task, config)
        history: list[dict[str, Any]] = []
        step, best, sums = 0, None, {}
        changes: list[
            dict[str, Any]
        ] = []  # settings changed on resumption (allowing_changes), with their step
        if resume:
            source = primary_path(out) if out is not None else None  # a secondary process reads rank 0's
            if source is None or not recover_folder(source / STATE):
                raise CheckpointError(
                    f"Cannot resume: {source}/{STATE} does not exist (no complete checkpoint was written before "
                    "the interruption). Start without --resume."
                )
            meta = load_state(source / STATE, task, optimizer)
            changed = _check_resume(meta, config, source / STATE)
            step, history, best, sums = meta["step"], meta["history"], meta["best"], meta["sums"]
            changes = meta.get("changes", []) + ([{"step": step, "changes": changed}] if changed else [])
            if (
                rank == 0
            ):  # the state's history is the truth: a kill before history.jsonl was written lost a line
                atomic_write_text(out / HISTORY, _history_text(history))
        if config.patience is not None and _stale(history, best) >= config.patience:
            stop = step  # stopped early before the interruption: nothing left to train
        loggers = _loggers(config, out, name, history) if rank == 0 else []
        progress = _Progress(name, total, config.progress and rank == 0)
        best_weights: dict[str, torch.Tensor] | None = None
        module, optimizer = fabric.setup(torch.compile(task) if config.compile else task, optimizer)
        bar = tqdm(total=total, initial=step, desc=name, leave=False,
                   disable=True if (not config.progress or rank) else None)  # fmt: skip
        cache: dict[int, list[Any]] = {0: first}

        def write(state: bool, record_best: bool) -> None:
            """The best weights when ``record_best`` (an improvement between checkpoints writes those alone), the
            resumable state when ``state`` (a checkpoint period, the end, a stop), then the history. Best before
            state: after a kill between them the resumed run trains that step again and rewrites best/, so best/
            never lags behind the state's record of it."""
            if record_best:
                save_weights(out / BEST, task, {"task": name, "step": step, "record": best})
            if state:
                meta = {"training": to_dict(config), "task": name, "step": step, "history": history,
                        "best": best, "sums": sums, "changes": changes}  # fmt: skip
                save_state(out / STATE, task, optimizer, meta)
            atomic_write_text(out / HISTORY, _history_text(history))

        module.train()
        while step < stop:
            epoch, within = divmod(step, steps_per_epoch)
            if epoch not in cache:
                cache = {epoch: epoch_batches(epoch)}
            micro = cache[epoch][within * config.accumulate : (within + 1) * config.accumulate]
            for group in optimizer.param_groups:
                frozen = step < group["frozen_steps"]
                group["lr"] = (
                    0.0 if frozen else learning_rate(config, step, steps_per_epoch) * group["lr_scale"]
                )
            torch.manual_seed(_seed(config.seed, step) + 7919 * (rank + 1))
            generator = torch.Generator().manual_seed(_seed(config.seed, step))
            for i, rows in enumerate(micro):
                drawn = task.draw(rows, generator)
                if len(rows) % world:
                    raise DataError(
                        f"{name}: a batch of {len(rows)} rows does not split over {world} processes."
                    )
                local = slice(rank * (len(rows) // world), (rank + 1) * (len(rows) // world))
                batch = fabric.to_device(task.load(rows[local], take(drawn, local)))
                last = i == len(micro) - 1
                sync = (
                    fabric.no_backward_sync(module, enabled=not last)
                    if world > 1
                    else contextlib.nullcontext()
                )
                with sync:
                    loss, parts = _split(module(batch), name, step)
                    fabric.backward(loss / len(micro))
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach()) / len(micro)
            if config.grad_clip:
                fabric.clip_gradients(module, optimizer, max_norm=config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            sums["_steps"] = sums.get("_steps", 0) + 1
            bar.update(1)
            at_end = step == total
            if step % period and not at_end:
                if step == stop and out is not None and rank == 0:
                    write(
                        True, False
                    )  # stopped by until_*: keep the partial period's sums for the resumed job
                continue
            n = sums.pop("_steps")
            keys = sorted(sums)
            means = fabric.all_reduce(torch.tensor([sums[k] / n for k in keys]), reduce_op="mean")
            record: dict[str, Any] = {"step": step, "epoch": round(step / steps_per_epoch, 4)}
            if record["epoch"] == int(record["epoch"]):
                record["epoch"] = int(record["epoch"])
            record.update(
                {("train_loss" if k == "loss" else f"train_{k}"): float(v) for k, v in zip(keys, means)}
            )
            record["lr"] = optimizer.param_groups[0]["lr"]
            task.eval()
            with torch.no_grad():
                record.update({k: float(v) for k, v in task.validate().items()})
            module.train()
            record["seconds"] = round(time.perf_counter() - start, 3)
            sums = {}
            history.append(record)
            improved = _improved(config, record, best)
            if improved:
                best = dict(record)
                if config.restore_best and out is None:
                    best_weights = {k: v.detach().clone() for k, v in task.state_dict().items()}
            _log_record(loggers, record)
            early = config.patience is not None and _stale(history, best) >= config.patience
            if early:
                log.warning(
                    "%s: %s has not improved for %d validation periods; stopping early at step %d of %d.",
                    name, config.monitor, config.patience, step, total,
                )  # fmt: skip
                stop = step
            progress.period(record, force=step == stop)
            bar.set_postfix(
                {k: round(v, 4) for k, v in record.items() if k not in ("step", "epoch", "seconds")}
            )
            log.info("%s step %d: %s", name, step, record)
            due = -(-step // period) % config.checkpoint_every == 0 or step == stop
            if out is not None and rank == 0 and (due or improved):
                write(due, improved)
        bar.close()
        for logger in loggers:
            logger.finalize("success")
        if out is not None and rank == 0:
            for folder in (out / STATE, out / BEST):
                tidy_folder(folder)  # copies that interrupted writes of an earlier job left beside them
        fabric.barrier()
        if config.restore_best and best is not None:
            if out is not None:
                load_weights(primary_path(out) / BEST, task)  # written by rank 0 before the barrier
            elif best_weights is not None:
                task.load_state_dict(best_weights)
    stopped = config.patience is not None and step < total and _stale(history, best) >= config.patience
    return FitResult(history=history, seconds=time.perf_counter() - start, best=best, steps=step,
                     stopped_early=stopped, changes=changes)  # fmt: skip
