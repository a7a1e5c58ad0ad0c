"""Tiny synthetic data and models for tests (brainkit's and users'): unequal sizes so a swapped axis fails."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainkit.data.schema import BrainSamples, DecodingDataset, Stimuli


def tiny_decoding_dataset(
    n_train_stimuli: int = 40,
    n_test_stimuli: int = 13,
    voxels: dict[str, int] | None = None,
    embedding_dim: int = 11,
    n_repeats: int = 3,
    noise: float = 0.5,
    image_size: int = 9,
    seed: int = 0,
) -> DecodingDataset:
    """A small dataset with a linear ground truth: voxels = embedding @ W_subject + noise.

    Train samples are single trials (``n_repeats`` per stimulus); test samples are averaged over repeats.
    """
    rng = np.random.default_rng(seed)
    voxels = voxels or {"s1": 23, "s2": 19}
    n = n_train_stimuli + n_test_stimuli
    ids = np.array([f"stim{i:04d}" for i in range(n)])
    emb = rng.standard_normal((n, embedding_dim)).astype(np.float32)
    images = rng.integers(0, 256, size=(n, image_size, image_size, 3), dtype=np.uint8)
    stimuli = Stimuli(
        ids=ids, images=images, labels=[f"thing {i}" for i in range(n)], embeddings={"toy": emb}
    )
    train, test = {}, {}
    for subject, n_voxels in voxels.items():
        weights = rng.standard_normal((embedding_dim, n_voxels)).astype(np.float32)
        parts = {}
        for part, rows in (("train", np.arange(n_train_stimuli)), ("test", np.arange(n_train_stimuli, n))):
            shown = np.repeat(rows, n_repeats)
            values = emb[shown] @ weights + noise * rng.standard_normal((len(shown), n_voxels))
            parts[part] = BrainSamples(subject=subject, values=values, stimulus_ids=ids[shown], space="toy")
        train[subject] = parts["train"]
        test[subject] = parts["test"].average_repeats()
    return DecodingDataset(name="tiny", stimuli=stimuli, train=train, test=test, info={"generator": "linear"})


@dataclass(frozen=True)
class TinyConfig:
    n_voxels: int | None = None
    output_shape: tuple[int, ...] | None = None
    hidden: int = 16
    dropout: float = 0.0


class TinyMLP(nn.Module):
    """(batch, n_voxels) -> (batch, *output_shape): a two-layer MLP for training tests."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        out = int(np.prod(config.output_shape))
        self.net = nn.Sequential(
            nn.Linear(config.n_voxels, config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(len(x), *self.config.output_shape)


def distributed_fit_worker(
    fabric, out_dir: str, epochs: int, batch_size: int, model_name: str = "tiny"
) -> None:
    """Run by Fabric in each process of the 2-process tests: trains a model on the supervised task and saves rank
    0's weights. ``model_name``: ``"tiny"`` (TinyMLP + InfoNCE), ``"lite_mind"`` (its testing preset + InfoNCE:
    Lite-Mind's main phase) or ``"linear_encoding"`` (toy targets -> voxels with voxel MSE: the sixth method's)."""
    from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig
    from brainkit.training import Arrays, TrainingConfig, fit

    data = tiny_decoding_dataset()
    train = data.train["s1"]
    target = data.stimuli.embedding("toy")[data.stimuli.positions(train.stimulus_ids)]
    x, y, objective = train.values, target, InfoNCE(InfoNCEConfig(temperature=0.1))
    torch.manual_seed(0)
    if model_name == "tiny":
        model = TinyMLP(TinyConfig(n_voxels=train.n_features, output_shape=(11,)))
    else:
        import dataclasses

        from brainkit.models import build_model
        from brainkit.models.base import example_config

        config = example_config(model_name)
        if model_name == "linear_encoding":
            from brainkit.objectives.regression import VoxelMSE

            x, y, objective = target, train.values, VoxelMSE()
            config = dataclasses.replace(config, n_features=x.shape[1], n_voxels=y.shape[1])
        else:
            config = dataclasses.replace(config, n_voxels=x.shape[1], output_shape=(y.shape[1],))
        model = build_model(model_name, config)
    config = TrainingConfig(epochs=epochs, batch_size=batch_size, lr=1e-2, progress=False, grad_clip=None)
    fit(model, objective, Arrays(x, y), config, fabric=fabric)
    save_rank0(fabric, out_dir, model.state_dict())


def save_rank0(fabric, out_dir: str, state: dict[str, torch.Tensor], history: list | None = None) -> None:
    """What a 2-process test's worker keeps: rank 0's weights (and history) in ``out_dir``."""
    if fabric.global_rank == 0:
        import json

        from brainkit.checkpoint import save_tensors

        save_tensors(Path(out_dir) / "weights.safetensors", state)
        if history is not None:
            (Path(out_dir) / "history.json").write_text(json.dumps(history))


def _spawned(fabric, worker, *args) -> None:
    """One spawned process: ``worker``, then a barrier and the process group torn down before the process exits
    (a gloo group left alive at exit can abort the process: "terminate called without an active exception")."""
    import torch.distributed as dist

    worker(fabric, *args)
    fabric.barrier()
    if dist.is_initialized():
        dist.destroy_process_group()


def one_and_two_processes(worker, folder: Path, *args) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``worker(fabric, out_dir, *args)`` in this process and in 2 gloo processes (``ddp_spawn``); each run
    keeps rank 0's results with :func:`save_rank0`. Returns both runs' ``{"weights", "history"}`` (history ``None``
    when the worker kept none), the 1-process run first: the data of the 1-process == N-process checks."""
    import json

    from lightning.fabric import Fabric

    from brainkit.checkpoint import load_tensors

    runs = []
    for devices in (1, 2):
        out = Path(folder) / f"{devices}-process"
        out.mkdir(parents=True)
        if devices == 1:
            worker(Fabric(accelerator="cpu", devices=1), str(out), *args)
        else:
            Fabric(accelerator="cpu", devices=2, strategy="ddp_spawn").launch(
                _spawned, worker, str(out), *args
            )
        history = out / "history.json"
        runs.append({"weights": load_tensors(out / "weights.safetensors"),
                     "history": json.loads(history.read_text()) if history.is_file() else None})  # fmt: skip
    return runs[0], runs[1]


def photo_crops(n_per_source: int = 12, size: int = 64) -> np.ndarray:
    """Real photos for metric tests and benchmarks: ``n_per_source`` overlapping crops of each of 5 skimage images
    (astronaut, chelsea, coffee, rocket, camera), resized to ``size``: uint8 (5 * n_per_source, size, size, 3)."""
    from skimage import data

    from brainkit.evaluation.pixels import resize_images

    sources = [
        data.astronaut(),
        data.chelsea(),
        data.coffee(),
        data.rocket(),
        np.stack([data.camera()] * 3, -1),
    ]
    crops = []
    for image in sources:
        h, w = image.shape[:2]
        for j in range(n_per_source):
            y, x = (j * 37) % (h // 3), (j * 53) % (w // 3)
            crops.append(resize_images(image[None, y : y + 2 * h // 3, x : x + 2 * w // 3], size)[0])
    return np.stack(crops)


class SimulatedKill(RuntimeError):
    """Raised by :func:`killing_train` where a real run would have been killed."""


def killing_train(match: str, until_step: int = 1, calls: list[str] | None = None):
    """A stand-in for :func:`brainkit.training.loop.train` (patch it into :mod:`brainkit.training.phase`) that
    trains the phase whose name starts with ``match`` for ``until_step`` optimiser steps, writes its resumable
    state and raises :class:`SimulatedKill`; every other phase trains normally. The phase names are appended to
    ``calls``, so a test can tell which phases a resumed run trained again and which it reloaded."""
    from brainkit.training.loop import train

    def killing(task, config, *args, name=None, **kwargs):
        if calls is not None:
            calls.append(name)
        if name is None or not name.startswith(match):
            return train(task, config, *args, name=name, **kwargs)
        train(task, config, *args, name=name, **{**kwargs, "until_step": until_step})
        raise SimulatedKill(f"simulated kill in {name} after step {until_step}")

    return killing


def write_alias_bomb(path: str | Path) -> Path:
    """Write a YAML file of under 600 bytes whose aliases expand to 9**9 (387 million) strings: what a config
    reader must refuse quickly instead of expanding."""
    lol = '["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'
    rows = [f"a: &a {lol}"] + [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")
    ]
    path = Path(path)
    path.write_text("\n".join(rows) + "\n")
    return path


def report_problems(path: str | Path) -> list[str]:
    """What keeps the ``report.html`` at ``path`` from being read by a person (empty when none): a table header
    or cell that is a code key (``snake_case``, ``a/b``), no percentage anywhere in the tables of a report whose
    headers name shares (top-k, N-way, accuracy), no brainkit version or command in the header."""
    import html
    import re

    from brainkit.report.labels import is_share

    text = Path(path).read_text()
    headers = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", text)]
    cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", text)]
    problems = [f"code key as a header: {h!r}" for h in headers if "_" in h or "/" in h]
    problems += [f"code key as a cell: {c!r}" for c in cells if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", c)]
    if any(is_share(h) for h in headers) and not any("%" in c for c in cells):
        problems.append("shares shown as fractions: no percentage in the tables")
    if "by brainkit" not in text or "Command:" not in text:
        problems.append("no brainkit version / command in the header")
    return problems
