"""Training SIM's tri-modal model on surface movie samples, and embedding samples and clips with it.

The loop (Lightning Fabric: CPU or one GPU): AdamW, linear warmup then cosine decay per step
(:func:`brainkit.training.learning_rate`), gradient clipping, a seeded batch draw. Each batch holds
``batch_size`` DISTINCT clip contents (:func:`brainkit.recipes.sim_samples.content_keys`), each with one of its
runs and a training subject drawn at random, so the contrastive loss never treats a copy of the positive as a
negative (drawing samples uniformly would put the same clip from two subjects in a batch about once per batch
of 32 at 12 subjects). Every ``eval_every`` steps the loss and a 32-way identification top-1 are computed on a
fixed monitoring set (unseen subjects, training clips): curves only, nothing is selected on them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.errors import ConfigError
from brainkit.objectives.trimodal import TriModalLoss
from brainkit.recipes.sim_samples import Samples, gather_clips
from brainkit.training import TrainingConfig, _make_fabric, learning_rate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SIMFitConfig:
    """How the tri-modal model is trained (``steps`` optimiser steps of ``batch_size`` samples)."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.01
    warmup_steps: int = 20
    grad_clip: float | None = 1.0
    eval_every: int = 50
    n_monitor: int = 128  # samples in the monitoring set (curves)
    accelerator: str = "cpu"
    # MAE fine-tuning remedies for the vsMAE-initialised encoder only (1.0: off; the scratch model's encoder always
    # trains at lr): its learning rate x ``pretrained_lr_scale``, and layer-wise decay (BEiT/MAE): block i of
    # depth d at x layer_decay ** (d - i), the patch embedding and cls token at x layer_decay ** (d + 1).
    pretrained_lr_scale: float = 1.0
    pretrained_layer_decay: float = 1.0
    # and linear-probe-then-fine-tune (LP-FT, Kumar et al. 2022): the encoder frozen (lr 0) for the first steps
    pretrained_frozen_steps: int = 0


@dataclass
class MovieArrays:
    """What training and embedding read: fmri (n_subjects, n_runs, n_frames, n_vertices), patches
    (n_patches, n_patch_vertices), video / audio (n_runs, n_clips, d) standardised, keys (n_runs, n_clips)."""

    fmri: np.ndarray
    patches: np.ndarray
    video: np.ndarray
    audio: np.ndarray
    keys: np.ndarray
    lag: int
    n_frames: int

    def clips(self, samples: Samples) -> torch.Tensor:
        return gather_clips(self.fmri, self.patches, samples, self.lag, self.n_frames)

    def features(self, samples: Samples) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(self.video[samples.run, samples.clip]),
                torch.from_numpy(self.audio[samples.run, samples.clip]))  # fmt: skip


class BatchDraw:
    """Batches of distinct clip contents from ``train_subjects`` x the clips in ``clip_mask``."""

    def __init__(self, arrays: MovieArrays, train_subjects: np.ndarray, clip_mask: np.ndarray, seed: int):
        runs, clips = np.nonzero(clip_mask)
        keys = arrays.keys[runs, clips]
        self.unique, inverse = np.unique(keys, return_inverse=True)
        self.instances = [np.flatnonzero(inverse == k) for k in range(len(self.unique))]
        self.runs, self.clips, self.subjects = runs, clips, np.asarray(train_subjects)
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch_size: int) -> Samples:
        chosen = self.rng.choice(len(self.unique), min(batch_size, len(self.unique)), replace=False)
        rows = np.array([self.rng.choice(self.instances[k]) for k in chosen])
        subjects = self.rng.choice(self.subjects, len(rows))
        return Samples(subjects, self.runs[rows], self.clips[rows])


def monitoring_set(draw_samples: Samples, keys: np.ndarray, n: int, seed: int) -> Samples:
    """Up to ``n`` samples with distinct clip contents, drawn once with ``seed``."""
    content = keys[draw_samples.run, draw_samples.clip]
    _, first = np.unique(content, return_index=True)
    rng = np.random.default_rng(seed)
    return draw_samples.take(np.sort(rng.choice(first, min(n, len(first)), replace=False)))


@torch.no_grad()
def monitor(model, arrays: MovieArrays, samples: Samples, group: int = 32) -> dict[str, float]:
    """Tri-modal loss and 32-way fMRI -> video identification top-1 over consecutive groups of the samples."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    losses, hits, n = [], 0, 0
    group = min(group, len(samples))
    if group < 2:
        model.train(was)
        return {}
    for start in range(0, len(samples) - group + 1, group):
        part = samples.take(np.arange(start, start + group))
        video, audio = arrays.features(part)
        x, video, audio = arrays.clips(part).to(device), video.to(device), audio.to(device)
        losses.append(float(TriModalLoss(model.config).to(device).batch(model, x, video, audio)))
        f = nn.functional.normalize(model(x), dim=1)
        v = nn.functional.normalize(model.embed_video(video), dim=1)
        hits += int(((f @ v.T).argmax(dim=1) == torch.arange(group, device=device)).sum())
        n += group
    model.train(was)
    if n < 2:
        return {}
    return {"monitor_loss": float(np.mean(losses)), "monitor_top1": hits / n}


def parameter_groups(model, lr_scale: float = 1.0, layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW groups of a SIM, each with its ``lr_scale`` (a multiplier of the scheduled learning rate): the
    heads (and temperatures) at 1, the encoder's final norm at ``lr_scale``, block i of depth d at
    ``lr_scale * layer_decay ** (d - i)``, the patch embedding and cls token at ``lr_scale * layer_decay ** (d + 1)``."""
    if lr_scale <= 0 or not 0 < layer_decay <= 1:
        raise ConfigError(f"SIM fit: need pretrained_lr_scale > 0 and 0 < pretrained_layer_decay <= 1, found "
                          f"{lr_scale}, {layer_decay}.")  # fmt: skip
    encoder = model.encoder
    depth = len(encoder.blocks)
    groups: dict[float, list[nn.Parameter]] = {}
    inside = set()
    parts = [(encoder.norm, 0), *((block, depth - i) for i, block in enumerate(encoder.blocks)),
             (encoder.patch_embedding, depth + 1)]  # fmt: skip
    for module, power in parts:
        for parameter in module.parameters():
            groups.setdefault(lr_scale * layer_decay**power, []).append(parameter)
            inside.add(id(parameter))
    groups.setdefault(lr_scale * layer_decay ** (depth + 1), []).append(encoder.cls_token)
    inside.add(id(encoder.cls_token))
    rest = [p for p in model.parameters() if id(p) not in inside]
    if len(inside) != sum(1 for _ in encoder.parameters()):
        raise ConfigError(
            "SIM fit: the encoder has parameters outside its norm, blocks, embedding and cls token."
        )
    return [{"params": rest, "lr_scale": 1.0}] + [{"params": v, "lr_scale": k} for k, v in groups.items()]


def train_sim(
    model,
    arrays: MovieArrays,
    draw: BatchDraw,
    config: SIMFitConfig,
    seed: int,
    monitor_samples: Samples,
    pretrained: bool = False,
) -> tuple[list[dict[str, Any]], float]:
    """Train ``model`` (a :class:`brainkit.models.sim.SIM`) in place; returns (history, seconds). ``pretrained``:
    its encoder starts from vsMAE, so ``config.pretrained_lr_scale`` / ``pretrained_layer_decay`` apply."""
    if config.steps < 1 or config.batch_size < 2:
        raise ConfigError(f"SIM training needs steps >= 1 and batch_size >= 2, found {config}.")
    start = time.perf_counter()
    schedule = TrainingConfig(epochs=config.steps, warmup_epochs=config.warmup_steps, lr=config.lr,
                              min_lr=config.min_lr)  # fmt: skip
    fabric = _make_fabric(TrainingConfig(accelerator=config.accelerator, devices=1))
    fabric.launch()
    torch.manual_seed(seed)
    scale, decay = (config.pretrained_lr_scale, config.pretrained_layer_decay) if pretrained else (1.0, 1.0)
    frozen = config.pretrained_frozen_steps if pretrained else 0
    groups = parameter_groups(model, scale, decay)
    for group in groups[1:]:
        group["encoder"] = True
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    model, optimizer = fabric.setup(model, optimizer)
    raw = model.module if hasattr(model, "module") else model
    steps_per_epoch = max(1, len(draw.unique) // config.batch_size)  # one pass over the training contents
    history: list[dict[str, Any]] = []
    losses: list[float] = []
    for step in range(config.steps):
        model.train()
        samples = draw(config.batch_size)
        video, audio = arrays.features(samples)
        x, video, audio = fabric.to_device((arrays.clips(samples), video, audio))
        for group in optimizer.param_groups:
            still = step < frozen and group.get("encoder", False)
            group["lr"] = 0.0 if still else learning_rate(schedule, step, 1) * group["lr_scale"]
        loss = TriModalLoss(raw.config).to(fabric.device).batch(raw, x, video, audio)
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        if config.grad_clip:
            fabric.clip_gradients(model, optimizer, max_norm=config.grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            record = {"epoch": round((step + 1) / steps_per_epoch, 3),  # passes over the training contents
                      "train_loss": float(np.mean(losses)), **monitor(raw, arrays, monitor_samples)}  # fmt: skip
            history.append(record)
            losses = []
            log.info("SIM step %d: %s", step + 1, record)
    return history, time.perf_counter() - start


@torch.no_grad()
def embed_fmri(model, arrays: MovieArrays, samples: Samples, batch: int = 64) -> np.ndarray:
    """fMRI embeddings (len(samples), embedding_dim) in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    parts = [model(arrays.clips(samples.take(np.arange(i, min(i + batch, len(samples))))).to(device)).cpu()
             for i in range(0, len(samples), batch)]  # fmt: skip
    return torch.cat(parts).numpy() if parts else np.zeros((0, model.config.embedding_dim), np.float32)


@torch.no_grad()
def embed_stimuli(model, arrays: MovieArrays) -> dict[str, np.ndarray]:
    """``{"video", "audio"}`` -> (n_runs, n_clips, embedding_dim) embeddings of every clip."""
    model.eval()
    device = next(model.parameters()).device
    out = {}
    for name, features, head in (("video", arrays.video, model.embed_video),
                                 ("audio", arrays.audio, model.embed_audio)):  # fmt: skip
        flat = torch.from_numpy(features.reshape(-1, features.shape[-1])).to(device)
        out[name] = head(flat).cpu().numpy().reshape(*features.shape[:2], -1)
    return out


__all__ = ["BatchDraw", "MovieArrays", "SIMFitConfig", "embed_fmri", "embed_stimuli", "monitor",
           "monitoring_set", "parameter_groups", "train_sim"]  # fmt: skip
