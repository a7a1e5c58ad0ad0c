"""The vsMAE recipe's config (:class:`VSMAERecipeConfig`: the rest run on the sphere, the patch grid, the SiT
preset, the masking and training) and its named presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brainkit.config import Checked, bounded
from brainkit.errors import ConfigError
from brainkit.training import TrainingConfig


@dataclass(frozen=True)
class VSMAERecipeConfig(Checked):
    """Everything the recipe does; ``brainkit run vsmae --set key=value`` changes any field. Bounds are checked
    when the config is built; :meth:`VSMAERecipe.check` builds the model config too, before any data."""

    # The surface runs (design "frames", frames on an icosphere: brainkit.data.surface_frames): the real
    # brainspace rest run, or yours (`--set data.name=bids_surface --set data.options.root=DIR ...`).
    data: str = "rest_surface"
    data_options: dict[str, Any] = field(default_factory=dict)
    model_preset: str = "cpu_small"  # a vsmae preset (models/vsmae.py)
    mask_ratio: float | None = bounded(None, gt=0, lt=1, fix="None: the preset's (0.5)")
    encoder_options: dict[str, Any] = field(
        default_factory=dict
    )  # SiT config changes, e.g. {"positions": "sphere"}
    model_options: dict[str, Any] = field(
        default_factory=dict
    )  # vsMAE config changes, e.g. {"decoder_dim": 32}
    # the data's icosphere (5 = fsaverage5 itself; lower orders are its first vertices)
    fine_order: int = bounded(5, ge=1, le=7, fix="at most the data's order (the built-in rest run: 5)")
    # the patch grid: ico5 / ico1 = 80 patches of 153 vertices (ico5 / ico2: 320 of 45)
    coarse_order: int = bounded(1, ge=0, le=5, fix="below fine_order")
    # The patch table (brainkit.surface.patch_grid, docs/surface.md): "icosphere" (ours), "file:PATH" (a CSV in
    # SIM's layout indexing our icosphere's vertices) or "sim:DIR" (SIM's released tables and template sphere).
    patches: str = "icosphere"
    n_frames: int = bounded(3, ge=1, le=100)  # frames per clip, as channels (SIM)
    train_fraction: float = bounded(0.7, gt=0, lt=1, fix="the share of each run used for pretraining")
    gap_frames: int = bounded(5, ge=0, le=10_000)  # frames dropped between the pretraining and held-out parts
    train_step: int = bounded(2, ge=1, le=10_000)  # a pretraining clip starts every this many frames
    eval_step: int = bounded(3, ge=1, le=10_000)  # held-out clips do not overlap
    # A constant learning rate after warmup (min_lr = lr): the hidden-patch loss falls late (after epoch 25).
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(
            epochs=80,
            batch_size=32,
            lr=2e-3,
            min_lr=2e-3,
            weight_decay=0.05,
            warmup_epochs=1.0,
            progress=False,
        )
    )
    n_eval_masks: int = bounded(3, ge=1, le=1000)
    neighbours: int = bounded(6, ge=1, le=1000)  # k of the neighbour-interpolation baseline
    seed: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.coarse_order >= self.fine_order:
            raise ConfigError(
                f"vsmae coarse_order={self.coarse_order} must be below fine_order={self.fine_order}: the patches "
                "are triangles of the coarse icosphere cut from the fine one."
            )


PRESETS = {
    "cpu_small": VSMAERecipeConfig(),
    # SIM's encoder size (SiT-tiny) on the same data; mask ratio and decoder are our choice (docs/methods/sim.md).
    "paper": VSMAERecipeConfig(
        model_preset="sim_ico5",
        coarse_order=2,
        train_step=1,
        training=TrainingConfig(epochs=200, batch_size=64, lr=3e-4, weight_decay=0.01),
    ),
    "testing": VSMAERecipeConfig(
        model_preset="testing",
        fine_order=3,
        coarse_order=1,
        train_step=6,
        eval_step=12,
        training=TrainingConfig(epochs=2, batch_size=16, lr=3e-3, progress=False),
        n_eval_masks=2,
    ),
}
