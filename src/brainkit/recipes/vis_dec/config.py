"""The Vis-Dec recipe's config (:class:`VisDecRecipeConfig`: data, the three phases' models and training, the
sampling and the metrics) and the seconds-long settings its ``testing`` presets use."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from brainkit.config import Checked, bounded, choice
from brainkit.data.builtin.nsd_like import testing_options
from brainkit.objectives.double_contrastive import LOSS_WEIGHTS
from brainkit.recipes.vis_dec.encoder import BETAS
from brainkit.stimuli.lite0_taps import TAPS
from brainkit.training import TrainingConfig

FEATURE_TAPS = tuple(t for t in TAPS if t != "logits")  # EfficientNet-Lite0 feature spaces of the metrics


@dataclass(frozen=True)
class VisDecRecipeConfig(Checked):
    """Everything the recipe does; ``brainkit run vis_dec --set key=value`` changes any field. Bounds are checked
    when the config is built; ``check`` the presets, their options and the dataset's, before any data."""

    dataset: str = "nsd_like"
    data: dict[str, Any] = field(default_factory=dict)  # options of the dataset factory
    cache_dir: str | None = None
    subject: str = "subj01"
    n_test_images: int = bounded(100, ge=0, le=10_000_000)  # test stimuli reconstructed and scored (0 = all)
    # None: the data's voxels, padded to the patch; a number: then wrapped on or cut to it (arrays.fit_voxels), as the
    # released scripts fit a subject to a checkpoint's voxel count (import-weights: the file's pos_embed length x 16)
    n_voxels: int | None = bounded(None, ge=2, le=10_000_000, fix="a multiple of the DC-MAE's patch size")
    # The defaults are the cpu_small schedule. Measured on the shared 2-core machine (1 thread, under load): 2
    # DC-MAE epochs 345 s, image MAE + 1 cross-modal epoch ~190 s, VAE ~16 s and UNet ~15 s per epoch, phase 3
    # ~45 s per epoch (3,000 trials), sampling 100 x 3 images ~50 s. The validation losses flatten by these epochs.
    # phase 1: DC-MAE
    dc_mae_preset: str = "cpu_small"
    dc_mae: dict[str, Any] = field(default_factory=dict)  # overrides of the DC-MAE preset
    # phase 1's loss weights: "as_described" (the README: contrast 1, self 1, cross 0.5) or "as_run" (what the
    # released script computes: 0.5 / 0.5 / 0.5); objectives.double_contrastive.LOSS_WEIGHTS. The loss takes the
    # released form when the DC-MAE config has released=True (e.g. dc_mae_preset=paper_released), which also
    # pads the voxels the released way (docs/methods/vis_dec.md, "Reference mode").
    dc_mae_loss: str = choice("as_described", tuple(LOSS_WEIGHTS))
    pretrain: TrainingConfig = TrainingConfig(
        epochs=2, batch_size=100, lr=1e-3, betas=BETAS, warmup_epochs=0.5, min_lr=1e-5
    )
    # phase 2: cross-modal tuning
    cross_modal: bool = True  # false: phase 3 conditions on the phase-1 encoder (an ablation)
    # brainkit.models.cross_modal.IMAGE_MAE_PRESETS, when no image_mae_dir
    image_mae_preset: str = "cpu_small"
    # a local ViT-MAE folder (e.g. facebook/vit-mae-base); skips the image MAE's pretraining
    image_mae_dir: str | None = None
    image_pretrain: TrainingConfig = TrainingConfig(
        epochs=6, batch_size=64, lr=1e-3, weight_decay=0.05, betas=BETAS, warmup_epochs=1, min_lr=1e-5
    )
    cross_modal_preset: str = "cpu_small"  # brainkit.models.cross_modal.CROSS_PRESETS
    cross_modal_options: dict[str, Any] = field(default_factory=dict)  # overrides of that preset
    tune: TrainingConfig = TrainingConfig(
        epochs=1, batch_size=32, lr=3e-4, betas=BETAS, warmup_epochs=0.2, min_lr=1e-5
    )
    # phase 3: latent diffusion
    ldm_preset: str = "cpu_small"
    ldm: dict[str, Any] = field(default_factory=dict)  # overrides of the LDM preset
    # a local diffusers folder (unet/, vae/, scheduler/): skips the VAE and UNet pretraining below
    ldm_dir: str | None = None
    vae_training: TrainingConfig = TrainingConfig(
        epochs=10, batch_size=32, lr=2e-3, weight_decay=0.0, warmup_epochs=1, min_lr=1e-4
    )
    unet_training: TrainingConfig = TrainingConfig(
        epochs=20, batch_size=32, lr=2e-3, weight_decay=0.0, warmup_epochs=1, min_lr=1e-4
    )
    finetune: TrainingConfig = TrainingConfig(
        epochs=5, batch_size=32, lr=1e-3, weight_decay=0.0, warmup_epochs=0.5, min_lr=1e-5
    )
    train_encoder: bool = False  # the paper trains the fMRI encoder in phase 3 too ("rest trainable")
    n_samples: int = bounded(3, ge=1, le=1000)  # reconstructions per test fMRI
    n_steps: int = bounded(25, ge=1, le=10_000)  # sampler steps
    # classifier-free guidance against the zero context (1 = none, as the paper). None: chosen among
    # guidance_candidates on n_val_images training images held out of every phase (their trials averaged, like the
    # test set), 1 sample each, by guidance_layer 2-way identification (recipes/vis_dec/sampling.select_guidance);
    # a number fixes it and holds nothing out. (The first cpu_small run's 3 had been picked on the test images.)
    guidance_scale: float | None = bounded(None, ge=1, le=1000, fix="1 = no guidance; None: chosen")
    guidance_candidates: tuple[float, ...] = bounded((1.0, 2.0, 3.0, 5.0), ge=1, le=1000)
    n_val_images: int = bounded(50, ge=0, le=1_000_000)
    guidance_layer: str = choice("lite0_block4", FEATURE_TAPS)
    sample_seed: int = bounded(0, ge=0)
    # evaluation
    metric_trials: int = bounded(200, ge=1, le=1_000_000)
    n_way: tuple[int, ...] = bounded((2, 50), ge=2, le=1_000_000, fix="N-way identification needs N >= 2")
    feature_layers: tuple[str, ...] = choice(("lite0_block4", "lite0_block10", "lite0_pooled"), FEATURE_TAPS)
    clip_model_dir: str | None = None  # a local CLIP folder adds the clip feature space to the metrics
    # a folder with MindEye's evaluation weights (alexnet-owt-7be5be79.pth, ...) adds the literature's columns
    reference_weights: str | None = None
    n_shown: int = bounded(10, ge=1, le=1000)  # rows of the report grid
    seed: int = bounded(0, ge=0)
    threads: int | None = bounded(1, ge=0, le=4096, fix="torch threads; 0 or null: as they are")
    # More phase-1 (DC-MAE) pretraining voxels from other sources, e.g. {"nitime": {}} (the two real 4D BOLD runs
    # that install with nitime) or {"god": {"folder": ...}, "bold5000": {...}, "hcp": {...}}: read by
    # data.readers.pretraining_sources.load_pretraining_voxels, wrap-padded to the built-in data's voxel count and
    # stacked under its training trials. Phase 1 only (phases 2-3 need image pairs). Empty: the built-in data alone.
    extra_pretraining: dict[str, dict[str, Any]] = field(default_factory=dict)


# seconds: 16 px LDM, tiny DC-MAE, weight-free stimulus encoders, 16 test images
SIMULATED = ("nsd_like",)  # built-in datasets whose voxels are simulated (said in the notes)
FAST_DATA = testing_options({"subj01": 45}, n_test_stimuli=12)
_FAST = TrainingConfig(epochs=1, batch_size=16, lr=1e-3, warmup_epochs=0, progress=False)
_FAST_MAE = replace(_FAST, betas=BETAS)
