"""The vsMAE recipe, SIM's pretraining (:mod:`brainkit.recipes.sim` runs it, or starts from its output):
masked-autoencoder pretraining of a SiT on the REAL resting-state run (brainspace, fsaverage5 = ico5, both
hemispheres on the left icosphere), judged on held-out real frames against two simple baselines (visible-patch
mean, neighbour interpolation). Writes the pretrained encoder for SIM to start from.

Training: :class:`VSMAETask` on the one trainer, one phase (:func:`brainkit.training.train_phase`) in
``train/vsmae``; each global batch's patch masks are drawn from the step's seeded generator
(:meth:`VSMAETask.draw`). ``brainkit run vsmae --out DIR --resume`` continues a killed pretraining from its
``state/`` (or reloads it when it had finished) and ends with the uninterrupted run's metrics; ``brainkit eval
DIR`` re-scores ``checkpoints/vsmae`` on the same seeded masks to the run's metrics exactly (they leave out
wall-clock seconds: ``train/vsmae/done.json`` keeps those).

Protocol: each hemisphere's frames are split in time; the first ``train_fraction`` pretrain, the last part
(after ``gap_frames``) is never seen in training. Held-out clips of ``n_frames`` frames lose ``mask_ratio`` of
their patches under ``n_eval_masks`` seeded masks; every method fills the same holes; the error is the MSE over
the hidden patches' cortex vertices of per-frame z-scored data (predicting 0 everywhere scores about 1).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.config import from_dict, to_dict
from brainkit.errors import CheckpointError, ConfigError
from brainkit.recipes import RecipeOutput
from brainkit.recipes.vsmae.config import PRESETS, VSMAERecipeConfig
from brainkit.recipes.vsmae.scores import scores as bench_scores
from brainkit.registry import RECIPES
from brainkit.training import Task
from brainkit.training.phase import load_result, train_phase

log = logging.getLogger(__name__)


def build_vsmae(config: VSMAERecipeConfig, n_patches: int, n_patch_vertices: int):
    """The vsMAE of ``config.model_preset`` for this patch grid (sizes from the data)."""
    from brainkit.models.vsmae import VSMAE

    return VSMAE(vsmae_config(config, n_patches, n_patch_vertices))


def vsmae_config(config: VSMAERecipeConfig, n_patches: int, n_patch_vertices: int):
    """The vsMAE config of ``config``: its model preset, the patch grid's sizes, then the options."""
    from brainkit.models.vsmae import PRESETS as MODEL_PRESETS
    from brainkit.models.vsmae import VSMAEConfig

    presets = {**MODEL_PRESETS, "sim_ico5": MODEL_PRESETS["sim"]}
    if config.model_preset not in presets:
        raise ConfigError(f"vsmae has no model preset {config.model_preset!r}; presets: {sorted(presets)}.")
    data = to_dict(presets[config.model_preset])
    data["encoder"].update(n_patches=n_patches, n_patch_vertices=n_patch_vertices, n_frames=config.n_frames,
                           patch_order=config.coarse_order, patches=config.patches,
                           **config.encoder_options)  # fmt: skip
    data.update(config.model_options)
    if config.mask_ratio is not None:
        data["mask_ratio"] = config.mask_ratio
    return from_dict(VSMAEConfig, data, where="vsmae model config")


def triangle_grid_sizes(fine_order: int, coarse_order: int) -> tuple[int, int]:
    """(n_patches, n_patch_vertices) of the icosphere's triangle patches: 20 * 4**coarse triangles, each holding
    (s + 1)(s + 2) / 2 vertices of the fine sphere, s = 2**(fine - coarse) (ico6/ico3: 1,280 of 45)."""
    side = 2 ** (fine_order - coarse_order)
    return 20 * 4**coarse_order, (side + 1) * (side + 2) // 2


def check_vsmae(config: VSMAERecipeConfig):
    """The model config of ``config`` built with the icosphere grid's sizes (a table from a file is read only
    by the run): :class:`ConfigError` for a preset, option or bound the run would meet later."""
    return vsmae_config(config, *triangle_grid_sizes(config.fine_order, config.coarse_order))


def surface_runs(config: VSMAERecipeConfig):
    """The :class:`~brainkit.data.surface_frames.SurfaceFrames` of ``config.data`` (a clear error for another
    container, or an icosphere below ``fine_order``)."""
    from brainkit.data import load_dataset
    from brainkit.data.surface_frames import SurfaceFrames

    data = load_dataset(config.data, **config.data_options)
    if not isinstance(data, SurfaceFrames):
        raise ConfigError(
            f"vsmae reads surface runs on an icosphere (rest_surface, bids_surface: brainkit.data.surface_frames); "
            f"{config.data!r} gives a {type(data).__name__}."
        )
    if config.fine_order > data.order:
        raise ConfigError(
            f"vsmae fine_order={config.fine_order} is above the data's icosphere order {data.order} "
            f"({config.data}); set fine_order to {data.order} or below."
        )
    return data


def prepare(config: VSMAERecipeConfig) -> dict[str, Any]:
    """Real clips on the icosphere: pretraining and held-out clips of both hemispheres of every run, patches,
    the cortex (vertices with signal in every run)."""
    from brainkit.data.builtin.rest_surface import clips
    from brainkit.surface import icosphere, n_vertices
    from brainkit.surface.patch_grid import patch_grid

    if not 0 <= config.coarse_order <= config.fine_order:
        raise ConfigError(f"need 0 <= coarse_order <= fine_order, found {config}.")
    data = surface_runs(config)
    n = n_vertices(config.fine_order)
    patches = np.asarray(
        patch_grid(config.patches, config.fine_order, config.coarse_order).in_brainkit_order()
    )
    cortex = np.ones(n, dtype=bool)
    train, held_out, n_frames = [], [], 0
    for run in data.runs:
        n_frames += len(run.hemispheres["left"].frames)
        for hemi in ("left", "right"):
            cortex &= run.hemispheres[hemi].mask[:n]
            frames = run.hemispheres[hemi].frames[:, :n]
            cut = int(config.train_fraction * len(frames))
            if len(frames) - cut - config.gap_frames < config.n_frames or cut < config.n_frames:
                raise ConfigError(
                    f"vsmae: {run.subject} {run.label} has {len(frames)} frames, too few to cut "
                    f"{config.train_fraction:.0%} for pretraining and, after {config.gap_frames} gap frames, held-out "
                    f"clips of {config.n_frames} frames; use longer runs or lower n_frames / gap_frames."
                )
            train.append(clips(frames[:cut], patches, config.n_frames, config.train_step))
            held_out.append(
                clips(frames[cut + config.gap_frames :], patches, config.n_frames, config.eval_step)
            )
    source = data.info.get("source", config.data)
    return {
        "train": np.concatenate(train),
        "held_out": np.concatenate(held_out),
        "patches": patches,
        "cortex": cortex,
        "unit": icosphere(config.fine_order).unit_vertices(),
        "n_frames_total": n_frames,
        "description": f"{source}: {len(data.runs)} run(s) of {len(data.subjects)} subject(s), {n_frames} frames",
    }


class VSMAETask(Task):
    """Masked-patch reconstruction of surface clips (checkpoint keys ``model.*``): ``clips`` (n, n_frames,
    n_patches, n_patch_vertices); each clip hides ``mask_ratio`` of its patches (drawn per step); the loss is the
    MSE over the hidden patches' vertices weighted by ``vertex_weight`` (n_patches, n_patch_vertices; 0 on the
    medial wall)."""

    def __init__(self, model, clips: torch.Tensor, vertex_weight: torch.Tensor) -> None:
        super().__init__()
        self.model, self.clips, self.vertex_weight = model, clips, vertex_weight

    def n_samples(self) -> int:
        return len(self.clips)

    def draw(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from brainkit.models.vsmae import random_patch_mask

        c = self.model.config
        return random_patch_mask(len(rows), self.clips.shape[2], c.mask_ratio, generator, c.released)

    def load(self, rows: torch.Tensor, drawn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.clips[rows], drawn

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        from brainkit.objectives.masked import masked_patch_loss

        x, mask = batch
        # released: the released loss counts every vertex of the hidden patches (its medial-wall mask only
        # zeroes the reconstructions it saves)
        weight = None if self.model.config.released else self.vertex_weight.to(x.device)
        return masked_patch_loss(self.model(x, mask), x, mask, weight)


@torch.no_grad()
def predict(model, clips: np.ndarray, masks: np.ndarray, batch: int = 32) -> np.ndarray:
    model.eval()
    x, m = torch.as_tensor(clips), torch.as_tensor(masks)
    return torch.cat([model(x[i : i + batch], m[i : i + batch]) for i in range(0, len(x), batch)]).numpy()


def evaluate(
    config: VSMAERecipeConfig, model, data: dict[str, Any]
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Masked MSE and r of vsMAE and the baselines over ``n_eval_masks`` masks: rows (mean, sd), one example."""
    from brainkit.evaluation.surface_reconstruction import (
        masked_correlation,
        masked_mse,
        neighbour_interpolation,
        vertex_correlation,
        visible_mean,
    )
    from brainkit.models.vsmae import random_patch_mask

    clips, patches, cortex = data["held_out"], data["patches"], data["cortex"]
    weight = cortex[patches].astype(np.float32)
    scores: dict[str, list[tuple[float, float]]] = {}
    example = {}
    for seed in range(config.n_eval_masks):
        generator = torch.Generator().manual_seed(10_000 + seed)
        masks = random_patch_mask(
            len(clips), patches.shape[0], model.config.mask_ratio, generator, model.config.released
        ).numpy()
        predictions = {
            "vsMAE": predict(model, clips, masks),
            "neighbour interpolation": neighbour_interpolation(
                clips, masks, patches, cortex, data["unit"], config.neighbours
            ),
            "visible-patch mean": visible_mean(clips, masks, patches, cortex),
            "zero (the per-frame mean)": np.zeros_like(clips),
        }
        for name, prediction in predictions.items():
            scores.setdefault(name, []).append(
                (
                    masked_mse(prediction, clips, masks, weight, patches),
                    masked_correlation(prediction, clips, masks, weight, patches),
                )
            )
        if seed == 0:
            example = {"truth": clips[0], "mask": masks[0], **{k: v[0] for k, v in predictions.items()}}
            example["vertex_r"] = {  # per-vertex r over every hidden vertex of this mask draw
                name: vertex_correlation(predictions[name], clips, masks, weight, patches)
                for name in ("vsMAE", "neighbour interpolation")
            }
    rows = []
    for name, values in scores.items():
        mse, r = np.array(values).T
        row = {"method": name, "masked_mse_mean": float(mse.mean()), "masked_mse_sd": float(mse.std())}
        if np.isfinite(r).all():  # undefined for a constant prediction
            row.update(r_mean=float(r.mean()), r_sd=float(r.std()))
        rows.append(row)
    return rows, example


PHASE = "vsmae"  # the pretraining's folder under train/ (its loop name: "vsMAE")


def run_model(folder: Path, name: str, recipe: str):
    """The model a finished run folder saved in ``checkpoints/<name>`` (:func:`brainkit.models.save_model`)."""
    from brainkit.models import load_model

    path = folder / "checkpoints" / name
    if not (path / "model.safetensors").is_file():
        raise CheckpointError(
            f"{path / 'model.safetensors'} does not exist, so {folder} is not a finished `brainkit run {recipe}` "
            f"folder; run it again (`brainkit run {recipe} --out NEW`)."
        )
    return load_model(path)[0]


def without_seconds(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History records without their wall-clock ``seconds``: what the metrics keep (a resumed run's differ)."""
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def vsmae_metrics(rows: list[dict], history: list[dict], data: dict[str, Any]) -> dict[str, Any]:
    """The run's metrics: the reconstruction rows, the training curve (no seconds) and the clip counts."""
    return {"reconstruction": rows, "history": without_seconds(history), "n_train_clips": len(data["train"]),
            "n_held_out_clips": len(data["held_out"])}  # fmt: skip


@RECIPES.register("vsmae", help="vsMAE: SiT masked-autoencoder pretraining on the real fsaverage5 rest run")
class VSMAERecipe:
    Config = VSMAERecipeConfig
    BENCH_SEEDS = (
        "seed",
    )  # what `brainkit bench`'s seed sets: init, masks and batches; the held-out frames stay
    scores = staticmethod(bench_scores)  # its tables as `brainkit bench` score rows
    PRESETS = PRESETS
    resumable = True  # `brainkit run vsmae --out DIR --resume` continues an interrupted pretraining

    IMPORT_OVERRIDES = (
        "model_preset=sim_released",
    )  # brainkit import-weights vsmae (recipes/vsmae/imported.py)
    DESIGNS = ("frames",)  # surface runs on an icosphere (SurfaceFrames): rest_surface, bids_surface
    DATA_FIELDS = {"name": "data", "options": "data_options"}

    @staticmethod
    def with_dataset(config: VSMAERecipeConfig, name: str, options: dict[str, Any]) -> VSMAERecipeConfig:
        return dataclasses.replace(config, data=name, data_options=options)

    @staticmethod
    def check(config: VSMAERecipeConfig) -> None:
        """The dataset's options, the model preset, options and sizes, and (the built-in run) the data's order,
        before the data are read."""
        from brainkit.data.contract import returns_of
        from brainkit.data.surface_frames import SurfaceFrames
        from brainkit.registry import DATASETS

        DATASETS.check_options(config.data, config.data_options, "data_options")
        container = returns_of(DATASETS.get(config.data))
        if container is not SurfaceFrames:
            raise ConfigError(
                f"vsmae reads surface runs on an icosphere (rest_surface, bids_surface: brainkit.data.surface_frames);"
                f" {config.data!r} gives a {getattr(container, '__name__', container)}."
            )
        if config.data == "rest_surface" and config.fine_order > 5:
            raise ConfigError(
                f"vsmae fine_order={config.fine_order}: the built-in rest data are fsaverage5; set fine_order to "
                "5 or below."
            )
        check_vsmae(config)

    def run(self, config: VSMAERecipeConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        from brainkit.models import count_parameters, save_model

        torch.manual_seed(config.seed)
        data = prepare(config)
        n_patches, n_patch_vertices = data["patches"].shape
        model = build_vsmae(config, n_patches, n_patch_vertices)
        weight = torch.as_tensor(data["cortex"][data["patches"]], dtype=torch.float32)
        log.info("vsMAE: %d pretraining clips, %d held-out, %d x %d patches", len(data["train"]),
                 len(data["held_out"]), n_patches, n_patch_vertices)  # fmt: skip
        task = VSMAETask(model, torch.as_tensor(data["train"]), weight)
        training = dataclasses.replace(config.training, seed=config.seed)
        result = train_phase(task, training, folder / "train" / PHASE, resume, name="vsMAE")
        rows, example = evaluate(config, model, data)
        save_model(folder / "checkpoints" / "vsmae", model, metadata={"data": data["description"]})
        save_model(folder / "checkpoints" / "sit_encoder", model.encoder, metadata={"pretrained": "vsmae"})
        from brainkit.report.sim import write_vsmae_report

        notes = write_vsmae_report(
            config, folder, rows, result.history, example, data, count_parameters(model)
        )
        table = {
            f"Masked-patch reconstruction on held-out real frames (mask ratio {model.config.mask_ratio})": rows
        }
        return RecipeOutput(table, notes, vsmae_metrics(rows, result.history, data))

    def import_weights(
        self, config: VSMAERecipeConfig, weights: dict, folder: Path, source: dict
    ) -> list[str]:
        """A released vsMAE (``encoder-decoder-*.pt``) as this run's network (recipes/vsmae/imported.py)."""
        from brainkit.recipes.vsmae.imported import write_released

        torch.manual_seed(config.seed)
        data = prepare(config)
        model = build_vsmae(config, *data["patches"].shape)
        weight = torch.as_tensor(data["cortex"][data["patches"]], dtype=torch.float32)
        task = VSMAETask(model, torch.as_tensor(data["train"]), weight)
        training = dataclasses.replace(config.training, seed=config.seed)
        return write_released(task, training, weights, folder, source, data["description"])

    def evaluate(self, config: VSMAERecipeConfig, folder: Path) -> dict[str, Any]:
        """The run's metrics again: the reconstruction rows re-scored with ``checkpoints/vsmae`` (the same seeded
        masks), the training curve read from ``train/vsmae/done.json``; nothing is trained. Equal to the run's
        ``metrics`` (which leave out wall-clock seconds: they are in ``done.json``)."""
        data = prepare(config)
        rows, _ = evaluate(config, run_model(folder, "vsmae", "vsmae"), data)
        return vsmae_metrics(rows, load_result(folder / "train" / PHASE).history, data)


def encoder_checkpoint(path: str | Path) -> Path:
    """A SiT checkpoint folder: ``path`` itself, or ``path/checkpoints/sit_encoder`` of a vsmae run folder."""
    path = Path(path)
    inside = path / "checkpoints" / "sit_encoder"
    if inside.is_dir():
        return inside
    if (path / "config.json").is_file():
        return path
    raise ConfigError(
        f"vsmae_checkpoint {path} is neither a `brainkit run vsmae` folder (with checkpoints/sit_encoder) nor "
        "a SiT checkpoint folder (with config.json); run `brainkit run vsmae` or leave vsmae_checkpoint empty."
    )


def pretrained_encoder(
    config: VSMAERecipeConfig, checkpoint: str | None, folder: Path, resume: bool = False
) -> tuple[Path, list[dict], str]:
    """SIM's encoder: ``checkpoint`` (a vsmae run or SiT folder) or a vsMAE pretrained here, in ``folder/vsmae``
    (``resume``: its phase reloaded when finished, continued when interrupted). Returns (SiT checkpoint folder,
    vsMAE reconstruction rows or [], where it came from)."""
    if checkpoint:
        return encoder_checkpoint(checkpoint), [], f"loaded from {checkpoint}"
    out = folder / "vsmae"
    out.mkdir(exist_ok=resume)
    output = VSMAERecipe().run(config, out, resume)
    return out / "checkpoints" / "sit_encoder", output.metrics["reconstruction"], "pretrained here (vsmae/)"
