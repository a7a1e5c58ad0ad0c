"""The SIM recipe (Dahan et al., ICLR 2025): tri-modal fMRI / video / audio retrieval on the surface.

``brainkit run sim`` on the built-in movie dataset (``movie_surface_like``):
1. vsMAE pretraining on the REAL resting-state run (:mod:`brainkit.recipes.vsmae`, written to ``vsmae/`` with its
   own report), or a SiT from a previous ``brainkit run vsmae`` (``vsmae_checkpoint``); the SIM encoder has the
   vsMAE's encoder config and patch grid, so its weights load;
2. samples, clip halves and subject split (:mod:`brainkit.recipes.sim_samples`);
3. the tri-modal model trained twice, with the same seed, batches and steps: from scratch and from vsMAE;
4. 32-candidate retrieval (soft / hard negatives, fMRI -> video and fMRI -> audio) in the three settings;
5. patch importance by occlusion drawn on the inflated fsaverage5 surface beside the dataset's truth map,
   retrieval examples, training curves: ``report.html``; models under ``checkpoints/sim_<init>``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainkit.config import from_dict, to_dict
from brainkit.errors import ConfigError
from brainkit.evaluation.clip_retrieval import KINDS, summarise
from brainkit.recipes import RecipeOutput
from brainkit.recipes.sim_fit import SIMFitConfig
from brainkit.recipes.vsmae import PRESETS as VSMAE_PRESETS
from brainkit.recipes.vsmae import VSMAERecipeConfig
from brainkit.registry import RECIPES
from brainkit.training import TrainingConfig

log = logging.getLogger(__name__)
INITS = {"scratch": "from scratch", "vsmae": "from vsMAE"}
LABELS = {**INITS, "ridge": "ridge baseline"}  # column labels of the methods in the tables
DIRECTIONS = ("video", "audio")


@dataclass(frozen=True)
class SIMRecipeConfig:
    """Everything the recipe does; ``brainkit run sim --set key=value`` changes any field."""

    data: str = "cpu_small"  # a movie_surface_like preset
    data_options: dict[str, Any] = field(default_factory=dict)  # its MovieSurfaceConfig field changes
    cache_dir: str | None = None
    # The pretraining; its model preset and patch grid (coarse_order) ARE the SIM encoder's. fine_order is set
    # to the movie data's order.
    vsmae: VSMAERecipeConfig = field(default_factory=VSMAERecipeConfig)
    vsmae_checkpoint: str | None = None  # a `brainkit run vsmae` folder (or its sit_encoder): no pretraining
    model: dict[str, Any] = field(default_factory=dict)  # SIMConfig changes (embedding_dim, dropout, ...)
    fit: SIMFitConfig = SIMFitConfig()
    inits: tuple[str, ...] = ("scratch", "vsmae")
    n_test_subjects: int = 4
    gap_clips: int = 5  # training clips dropped before each segment's held-out half (sim_samples)
    n_importance: int = 32  # unseen-subject, unseen-clip samples occluded patch by patch
    # The linear baseline (sim_baseline.py; None: none). Fixed, not tuned: 1e3 to 1e5 moved its unseen-clip
    # top-1 by at most 0.04 (video) on the cpu_small data.
    ridge_alpha: float | None = 1e4
    seed: int = 0
    threads: int | None = 1  # torch threads (one: the machine is shared)


def _vsmae(epochs: int, **changes: Any) -> VSMAERecipeConfig:
    base = VSMAE_PRESETS["cpu_small"]
    return dataclasses.replace(base, training=dataclasses.replace(base.training, epochs=epochs), **changes)


PRESETS = {
    # Minutes on one CPU thread: vsMAE cpu_small (ico5/ico1, 80 patches x 153 vertices, SiT 96 wide x 2 blocks,
    # sphere positions) for 40 epochs (its own preset: 80; 40 already beat interpolation, docs/methods/sim.md),
    # then SIM twice.
    "cpu_small": SIMRecipeConfig(
        vsmae=_vsmae(40),
        fit=SIMFitConfig(steps=400, batch_size=32, lr=1e-3, warmup_steps=20, eval_every=50),
    ),
    # SIM's sizes [config/CLIP-fmri-video-audio/hparams.yml, METHODS.md sec. 1.3-1.4]: SiT-tiny (192/12/3), heads
    # to 384, AdamW lr 3e-4, weight decay 0.01, batch 4, 300 iterations, scheduler off (min_lr = lr, no warmup).
    # Patches: the data are fsaverage5 (ico5), so ico5/ico2 = 320 patches of 45 vertices (SIM: ico6/ico3, 1,280
    # of 45, needs order-6 data). vsMAE: its paper preset. A GPU job (fit.accelerator=cuda); not run here.
    "paper": SIMRecipeConfig(
        vsmae=VSMAE_PRESETS["paper"],
        fit=SIMFitConfig(
            steps=300,
            batch_size=4,
            lr=3e-4,
            min_lr=3e-4,
            weight_decay=0.01,
            warmup_steps=0,
            eval_every=100,
            accelerator="cuda",
        ),  # fmt: skip
        n_importance=64,
        threads=None,
    ),
    # Seconds: the dataset's testing preset (order 3, weight-free encoders) with 4 subjects and 3 segments of
    # 80-84 s (the 32-candidate protocol needs long enough segment halves), the vsMAE testing preset (ico3/ico1).
    "testing": SIMRecipeConfig(
        data="testing",
        data_options={"n_subjects": 4, "n_segments": 3, "segment_seconds": [80, 84]},
        vsmae=dataclasses.replace(
            VSMAE_PRESETS["testing"],
            training=TrainingConfig(epochs=1, batch_size=16, lr=3e-3, progress=False),
        ),  # fmt: skip
        model={"embedding_dim": 16},
        fit=SIMFitConfig(steps=6, batch_size=8, lr=3e-3, warmup_steps=1, eval_every=3, n_monitor=16),
        n_test_subjects=2,
        n_importance=3,
    ),
}


def load_movie_data(config: SIMRecipeConfig):
    """The built-in movie dataset of ``config.data`` with ``config.data_options``."""
    from brainkit.data.builtin import movie_surface_like as movies

    if config.data not in movies.PRESETS:
        raise ConfigError(
            f"movie_surface_like has no preset {config.data!r}; presets: {sorted(movies.PRESETS)}."
        )
    options = to_dict(movies.PRESETS[config.data]) | dict(config.data_options)
    dataset_config = from_dict(movies.MovieSurfaceConfig, options, where="sim data_options")
    return movies.load_movie_surface_like(dataset_config, cache_dir=config.cache_dir)


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


@RECIPES.register("sim", help="SIM: SiT + vsMAE init, tri-modal fMRI/video/audio retrieval on surface movies")
class SIMRecipe:
    Config = SIMRecipeConfig
    PRESETS = PRESETS

    def run(self, config: SIMRecipeConfig, folder: Path) -> RecipeOutput:
        unknown = sorted(set(config.inits) - set(INITS))
        if unknown or not config.inits:
            raise ConfigError(
                f"sim recipe: inits must come from {sorted(INITS)}, found {list(config.inits)}."
            )
        from brainkit.recipes.sim_run import run_sim
        from brainkit.training import torch_threads

        with torch_threads(config.threads):
            return run_sim(config, folder, load_movie_data(config))


def retrieval_rows(scores: dict, methods: list[str]) -> tuple[list[dict], list[dict]]:
    """The main table (top-1 per method, chance, vsMAE - scratch) and the full one (top-1/5/10 per method);
    ``scores[method][(setting, kind, direction)]`` from :func:`brainkit.recipes.sim_eval.retrieval_scores`."""
    from brainkit.recipes.sim_samples import SETTINGS

    main, full = [], []
    for setting, (description, _, _) in SETTINGS.items():
        for kind in KINDS:
            for direction in DIRECTIONS:
                first = scores[methods[0]][(setting, kind, direction)]
                row: dict[str, Any] = {"setting": description, "negatives": kind, "retrieval": f"fMRI->{direction}",
                                       "subjects": len(first["per_subject"]), "targets": first["n_scored"]}  # fmt: skip
                for method in methods:
                    result = scores[method][(setting, kind, direction)]
                    summary = summarise(result["per_subject"]) if result["per_subject"] else {}
                    row[f"top1 {LABELS[method]}_mean"] = summary.get("top1_mean")
                    row[f"top1 {LABELS[method]}_sd"] = summary.get("top1_sd")
                    full.append({"method": LABELS[method], "setting": description, "negatives": kind,
                                 "retrieval": f"fMRI->{direction}", **summary})  # fmt: skip
                row["top1_chance"] = 1 / 32
                ours, theirs = row.get("top1 from vsMAE_mean"), row.get("top1 from scratch_mean")
                if ours is not None and theirs is not None:
                    row["top1 vsMAE - scratch"] = ours - theirs
                main.append(row)
    return main, full


__all__ = [
    "SIMRecipe",
    "SIMRecipeConfig",
    "PRESETS",
    "encoder_checkpoint",
    "load_movie_data",
    "retrieval_rows",
]
