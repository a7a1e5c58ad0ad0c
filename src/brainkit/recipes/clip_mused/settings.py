"""CLIP-MUSED's recipe settings: the methods it compares, the released schedule, the config and its test data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brainkit.config import Checked, bounded, choice
from brainkit.evaluation.multilabel import UNDEFINED
from brainkit.objectives.semantic import SemanticLossConfig
from brainkit.training import TrainingConfig

# method -> (what it is, model changes, loss weights, one model per subject)
NO_RSM = {"rsm_high": 0.0, "rsm_low": 0.0}
METHODS: dict[str, tuple[str, dict[str, Any], dict[str, float], bool]] = {
    "clip_mused": ("one model, subject tokens, BCE + RSM + orthogonality", {}, {}, False),
    "no_rsm": ("ablation: without the two RSM losses", {}, NO_RSM, False),
    "no_orthogonality": ("ablation: without the orthogonality loss", {}, {"orthogonality": 0.0}, False),
    "no_subject_tokens": (
        "ablation: one token pair shared by all subjects",
        {"subject_tokens": False},
        {},
        False,
    ),
    "per_subject": ("baseline: one CLIP-MUSED model per subject, as many steps", {}, {}, True),
    "pooled": (
        "baseline: one plain model on pooled subjects, mean-token readout, BCE only",
        {"readout": "mean"},
        {**NO_RSM, "orthogonality": 0.0},
        False,
    ),
    "srm": ("baseline: shared response model + one-vs-rest logistic regression", {}, {}, False),
}

# The released schedule (decoding_HCP_MS.py): Adam, no weight decay, no warmup, no clipping, lr x0.7 every 25
# epochs (StepLR); the attention parameters at 0.1 x the rate (SemanticTask.parameter_groups).
RELEASED_TRAINING = TrainingConfig(
    epochs=12,
    batch_size=32,
    lr=1e-3,
    optimizer="adam",
    schedule="step",
    lr_step_epochs=25,
    lr_decay=0.7,
    warmup_epochs=0,
    grad_clip=None,
    weight_decay=0,
)
ATTENTION_LR_SCALE = 0.1  # released: the token-attention blocks train at 0.1 x the learning rate


@dataclass(frozen=True)
class AdaptationSettings(Checked):
    """New-subject adaptation (recipes/clip_mused/adaptation.py; off unless ``enabled``): pretrain CLIP-MUSED on
    every subject but ``target_subject`` (null: the dataset's last), then for each k (samples of that subject's
    training data, or ``"all"``) and seed: its subject tokens alone trained on k samples (``adapt``) vs the same
    network from random init on those k samples (``scratch``). Both train ``training.epochs`` passes over the k
    samples, at least ``min_steps`` steps."""

    enabled: bool = False
    target_subject: str | None = None
    k: tuple[int | str, ...] = (30, 60, 120, "all")
    seeds: tuple[int, ...] = bounded((0, 1, 2), ge=0)
    seconds_per_sample: float = bounded(1.0, gt=0, fix="scan time of one sample (hcp_movie_like: TR 1 s)")
    min_steps: int = bounded(40, ge=1, fix="the fewest optimiser steps of an adapt or scratch training")
    # the learning rate of the adapted subject tokens; null: training.lr
    adapt_lr: float | None = bounded(None, gt=0, fix="the subject tokens' learning rate when adapting")


@dataclass(frozen=True)
class CLIPMUSEDRecipeConfig(Checked):
    """Everything the recipe does; bounds are checked when the config is built, ``check`` the methods, dataset
    options and every network's model config before any data."""

    dataset: str = "hcp_movie_like"
    data: dict[str, Any] = field(default_factory=dict)  # options of the dataset factory
    cache_dir: str | None = None
    model_preset: str = "cpu_small"
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the model preset
    training: TrainingConfig = RELEASED_TRAINING
    loss: SemanticLossConfig = SemanticLossConfig()  # the paper's HCP weights
    # classes with no positive / no negative test sample: "exclude" them from mAP / AUC, or score them as the
    # released test() does ("released": AP 0, AUC 1); see brainkit.evaluation.multilabel
    undefined_classes: str = choice("exclude", UNDEFINED)
    # common PCA dimension of image and text features (not used with clip_model_dir: CLIP's)
    high_dim: int = bounded(64, ge=1, le=100_000)
    feature_clip: float = bounded(1.5, gt=0, le=1000)  # released -thres=1.5
    clip_model_dir: str | None = (
        None  # a local CLIP folder: its image and text embeddings replace EfficientNet/MiniLM
    )
    # role (low / image / text) -> [encoder, options] for a dataset that names none (yours: from_arrays, folder,
    # bids): computed on its images and labels, or embeddings it carries under those names. None: EfficientNet-
    # Lite0 early / pooled and MiniLM, as the built-in data.
    features: dict[str, Any] | None = None
    # The released model's subject order (its dataset/subject_IDs_train.txt): row r of a released checkpoint's
    # subject tokens is this list's subject r, matched to the data's subjects by name on import-weights. None: the
    # data's own subject order.
    released_subjects: tuple[str, ...] | None = None
    # nsd variant: a last ROI patch "rest" of the voxels in none of the dataset's ROIs (brainkit.data.roi_patches);
    # False: those voxels are not read by the model
    roi_rest: bool = True
    srm_components: int = bounded(32, ge=1, le=100_000)
    srm_c: float = bounded(0.1, gt=0, fix="the inverse regularisation of the SRM logistic regression")
    methods: tuple[str, ...] = choice(tuple(METHODS), tuple(METHODS))
    threads: int | None = bounded(None, ge=0, le=4096, fix="torch threads; 0 or null: as they are")
    # new-subject adaptation instead of the method comparison (off by default; presets adaptation, testing_adaptation)
    adaptation: AdaptationSettings = AdaptationSettings()


# seconds: 12 mm brain, 2 subjects, weight-free low/image/text encoders (the labels still come from the real
# EfficientNet-Lite0 ImageNet classifier)
FAST_TEST_DATA = {
    "snr": [1.2, 0.5],
    "n_train_stimuli": 32,
    "n_test_stimuli": 8,
    "image_size": 64,
    "resolution_mm": 12,
    "grid": [12, 16, 12],
    "min_label_fraction": 0.1,
    "features": {
        "low": ["pixel_projection", {"dim": 13}],
        "image": ["pixel_projection", {"dim": 17}],
        "text": ["hashed_words", {"dim": 11}],
    },
    "n_components": {"low": 4, "image": 5, "text": 3},
}
# seconds: the tiny HCP folder of brainkit.testing_hcp (every labelled second, the runs' own grid)
FAST_HCP_DATA = {
    "clips": "all",
    "grid": "run",
    "image_size": 32,
    "features": FAST_TEST_DATA["features"],
}
# NSD's visual ROI files: prf-visualrois (V1v, V1d, V2v, V2d, V3v, V3d, hV4) + the four floc files (faces 5,
# bodies 4, places 3, words 5 ROIs) = 24 ROIs, the "24" beside the 512 of the paper's NSD settings as we read it
NSD_PATCH_ROIS = ["prf-visualrois", "floc-faces", "floc-bodies", "floc-places", "floc-words"]
# seconds: the tiny NSD folder of tests/nsd_fixture.py (two subjects, its two ROI files, 8 px images)
FAST_NSD_DATA = {
    "subjects": "present",  # the fixture's subj01 and subj02
    "image_size": 32,
    "patch_rois": ["prf-visualrois", "floc-faces"],
}
