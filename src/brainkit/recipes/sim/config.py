"""The SIM recipe's config (:class:`SIMRecipeConfig`: data, the vsMAE pretraining, the SiT, SIM's fit, the
retrieval, the new-subject adaptation) and its named presets (``cpu_small``, ``demo``, the paper's, ``testing``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from brainkit.config import Checked, bounded
from brainkit.evaluation import movie_retrieval as mr
from brainkit.recipes.vsmae import PRESETS as VSMAE_PRESETS
from brainkit.recipes.vsmae import VSMAERecipeConfig
from brainkit.report import sim as report
from brainkit.training import TrainingConfig

# "released": weights imported with `brainkit import-weights sim DIR` (recipes/sim/imported.py), never trained here
INITS = {
    "scratch": report.LABELS["scratch"],
    "vsmae": report.LABELS["vsmae"],
    "released": report.LABELS["released"],
}


@dataclass(frozen=True)
class SIMFitOptions(Checked):
    """What SIM's fit adds to the trainer's config.

    MAE fine-tuning remedies for the vsMAE-initialised encoder only (1.0 / 0: off; the scratch model's encoder
    always trains at the scheduled rate): its learning rate x ``pretrained_lr_scale``; layer-wise decay
    (BEiT/MAE): block i of depth d at x layer_decay ** (d - i), the patch embedding and cls token at
    x layer_decay ** (d + 1); linear-probe-then-fine-tune (LP-FT, Kumar et al. 2022): the encoder frozen (rate 0)
    for the first ``pretrained_frozen_steps`` steps."""

    # samples in the monitoring set (unseen subjects, training clips): curves only
    n_monitor: int = bounded(128, ge=1, le=1_000_000)
    pretrained_lr_scale: float = bounded(1.0, gt=0, le=1000)
    pretrained_layer_decay: float = bounded(1.0, gt=0, le=1)
    pretrained_frozen_steps: int = bounded(0, ge=0)


@dataclass(frozen=True)
class SIMAdaptationSettings(Checked):
    """New-subject adaptation (recipes/sim/adaptation.py, docs/methods/adaptation.md; off unless ``enabled``):
    SIM pretrained on every subject but ``target_subject`` (null: the dataset's last), then for each k (clips of
    that subject's training clips, or ``"all"``) and seed: a fresh per-vertex input alignment of the subject
    trained alone in front of the frozen pretrained SIM (``adapt``) vs SIM from random init on the same k clips
    (``scratch``). Both train ``epochs`` passes over the k clips, at least ``min_steps`` steps, with the recipe's
    ``training`` otherwise (its ``steps`` is the pretraining's)."""

    enabled: bool = False
    target_subject: str | None = None
    k: tuple[int | str, ...] = (20, 40, 80, "all")
    seeds: tuple[int, ...] = bounded((0, 1, 2), ge=0)
    # what one clip adds to the scan: clips start one frame apart (movie_surface_like: TR 1 s)
    seconds_per_clip: float = bounded(1.0, gt=0, fix="scan time one clip adds (movie_surface_like: TR 1 s)")
    epochs: int = bounded(10, ge=1, le=100_000, fix="passes over the k clips of an adapt or scratch fit")
    min_steps: int = bounded(40, ge=1, fix="the fewest optimiser steps of an adapt or scratch fit")
    # the alignment's learning rate when adapting; null: training.lr
    adapt_lr: float | None = bounded(None, gt=0, fix="the alignment's learning rate when adapting")


# SIM's fit: steps of a global batch of distinct contents, AdamW, warmup then cosine, monitoring every 50 steps
SIM_TRAINING = TrainingConfig(steps=300, batch_size=32, lr=1e-3, min_lr=1e-5, weight_decay=0.01,
                              warmup_steps=20, validate_every=50, grad_clip=1.0, progress=False)  # fmt: skip


@dataclass(frozen=True)
class SIMRecipeConfig(Checked):
    """Everything the recipe does; ``brainkit run sim --set key=value`` changes any field. Bounds are checked
    when the config is built; :meth:`SIMRecipe.check` the data preset and options, the vsMAE and the SIM model
    config, before any data are built."""

    # a movie_surface_like preset, or a registered surface movie dataset (hcp_movie_surface): recipes/sim/datasets.py
    data: str = "cpu_small"
    data_options: dict[str, Any] = field(
        default_factory=dict
    )  # MovieSurfaceConfig changes, or the factory's options
    cache_dir: str | None = None
    # The pretraining; its model preset and patch grid (coarse_order) ARE the SIM encoder's. fine_order is set
    # to the movie data's order.
    vsmae: VSMAERecipeConfig = field(default_factory=VSMAERecipeConfig)
    vsmae_checkpoint: str | None = None  # a `brainkit run vsmae` folder (or its sit_encoder): no pretraining
    model: dict[str, Any] = field(default_factory=dict)  # SIMConfig changes (embedding_dim, dropout, ...)
    training: TrainingConfig = SIM_TRAINING  # the tri-modal fit (its seed is `seed`)
    fit: SIMFitOptions = SIMFitOptions()
    inits: tuple[str, ...] = ("scratch", "vsmae")
    n_test_subjects: int = bounded(4, ge=1, le=100_000, fix="below the data's subject count")
    # training clips dropped before each segment's held-out half (data/movie_samples.py)
    gap_clips: int = bounded(5, ge=0, le=100_000)
    # unseen-subject, unseen-clip samples occluded patch by patch
    n_importance: int = bounded(32, ge=1, le=1_000_000)
    # evaluation.protocol: "sim" (SIM's released one, the default) or "all_targets" (ours)
    evaluation: mr.RetrievalConfig = mr.RetrievalConfig()
    # The linear baseline (None: none). Fixed, not tuned: 1e3 to 1e5 moved its unseen-clip top-1 by at most 0.04
    # (video) on the cpu_small data.
    ridge_alpha: float | None = bounded(1e4, gt=0, fix="None: no ridge baseline")
    seed: int = bounded(0, ge=0)
    # torch threads (one: the machine is shared)
    threads: int | None = bounded(1, ge=0, le=4096, fix="torch threads; 0 or null: as they are")
    # new-subject adaptation instead of the comparison of inits (off by default; presets adaptation,
    # testing_adaptation)
    adaptation: SIMAdaptationSettings = SIMAdaptationSettings()


def _vsmae(epochs: int, **changes: Any) -> VSMAERecipeConfig:
    base = VSMAE_PRESETS["cpu_small"]
    return dataclasses.replace(base, training=dataclasses.replace(base.training, epochs=epochs), **changes)


PRESETS = {
    # Minutes on one CPU thread: vsMAE cpu_small (ico5/ico1, 80 patches x 153 vertices, SiT 96 wide x 2 blocks,
    # sphere positions) for 40 epochs (its own preset: 80; 40 already beat interpolation, docs/methods/sim.md),
    # then SIM twice.
    "cpu_small": SIMRecipeConfig(vsmae=_vsmae(40), training=dataclasses.replace(SIM_TRAINING, steps=400)),
    # SIM's sizes [config/CLIP-fmri-video-audio/hparams.yml, METHODS.md sec. 1.3-1.4]: SiT-tiny (192/12/3), heads
    # to 384, AdamW lr 3e-4, weight decay 0.01, batch 4, 300 iterations, scheduler off (min_lr = lr, no warmup).
    # Patches: the data are fsaverage5 (ico5), so ico5/ico2 = 320 patches of 45 vertices (SIM: ico6/ico3, 1,280
    # of 45, needs order-6 data). vsMAE: its paper preset. A GPU job (training.accelerator=cuda); not run here.
    "paper": SIMRecipeConfig(
        vsmae=VSMAE_PRESETS["paper"],
        training=dataclasses.replace(
            SIM_TRAINING,
            steps=300,
            batch_size=4,
            lr=3e-4,
            min_lr=3e-4,
            warmup_steps=0,
            validate_every=100,
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
        training=dataclasses.replace(
            SIM_TRAINING, steps=6, batch_size=8, lr=3e-3, warmup_steps=1, validate_every=3
        ),
        fit=SIMFitOptions(n_monitor=16),
        n_test_subjects=2,
        n_importance=3,
    ),
}

# New-subject adaptation (recipes/sim/adaptation.py, docs/methods/adaptation.md); no vsMAE pretraining (inits
# scratch: SIM itself is pretrained on the other subjects), one held-out subject (the data's last).
# Minutes on one CPU thread: the built-in data at order 3 (642 vertices, weight-free encoders), 6 subjects, 2 runs
# of 4 segments of 80-90 s; SiT cpu_small (96 wide x 2 blocks) on ico3/ico1 patches (80 of 15 vertices);
# pretraining 300 steps on 5 subjects, then k = 10, 20, 40, 80 and all training clips of the sixth, seeds 0-2.
PRESETS["adaptation"] = SIMRecipeConfig(
    data="testing",
    data_options={"n_subjects": 6, "n_segments": 4, "segment_seconds": [80, 90]},
    vsmae=dataclasses.replace(VSMAE_PRESETS["testing"], model_preset="cpu_small"),
    model={"embedding_dim": 32},
    inits=("scratch",),
    training=dataclasses.replace(SIM_TRAINING, steps=300, batch_size=16, lr=2e-3, warmup_steps=10),
    fit=SIMFitOptions(n_monitor=32),
    n_test_subjects=1,
    ridge_alpha=None,
    adaptation=SIMAdaptationSettings(enabled=True, k=(10, 20, 40, 80, "all"), epochs=10, min_steps=30),
)
# Seconds: the testing preset's data and model, 3 training subjects and the fourth held out, k = 4, 8, all.
PRESETS["testing_adaptation"] = dataclasses.replace(
    PRESETS["testing"],
    inits=("scratch",),
    n_test_subjects=1,
    ridge_alpha=None,
    adaptation=SIMAdaptationSettings(enabled=True, k=(4, 8, "all"), seeds=(0, 1), epochs=1, min_steps=2),
)

# The real HCP 7T movie runs (`--set data_options.root=DIR`, the download's folder): the paper's settings, the
# data on ico5 (the vsMAE pretraining's rest run is fsaverage5; SIM: ico6) with the offline encoders
# (EfficientNet-Lite0, torchcrepe; SIM's VideoMAE / wav2vec2 load from local folders: data_options.*_encoder).
PRESETS["hcp_real"] = dataclasses.replace(
    PRESETS["paper"], data="hcp_movie_surface", data_options={"order": 5}
)
