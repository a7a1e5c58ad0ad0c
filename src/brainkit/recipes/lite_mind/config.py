"""The Lite-Mind recipe's config (:class:`LiteMindRecipeConfig`: data, decoder, objective, training, retrieval
scoring, baselines) and its named presets (``cpu_small``, ``demo``, the paper's, ``testing``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from brainkit.data.builtin.nsd_like import testing_options
from brainkit.data.paired import DataSpec
from brainkit.evaluation.retrieval import RetrievalSpec
from brainkit.models.spec import ModelSpec
from brainkit.objectives.spec import ObjectiveSpec
from brainkit.training import TrainingConfig


@dataclass(frozen=True)
class Baseline:
    """A decoder trained beside ``model``: a model as in :class:`ModelSpec`, its table ``label`` (default: the
    model's usual name) and ``training`` changes to the run's ``training`` section for it alone."""

    name: str = "ridge"
    preset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    label: str | None = None


@dataclass(frozen=True)
class LiteMindRecipeConfig:
    """Data, the decoder (``model``), its objective and training, the retrieval scoring, and the baselines
    trained and scored beside it on the same data (same objective; ``training`` plus their own changes)."""

    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: RetrievalSpec = field(default_factory=RetrievalSpec)
    baselines: tuple[Baseline, ...] = ()


# The released code's loss (one-directional InfoNCE, image rows over fMRI columns), at the temperature that suits
# the small built-in demo (our choice, measured with the presets below).
DEMO_OBJECTIVE = ObjectiveSpec("infonce", {"temperature": 0.05, "bidirectional": False})

PRESETS = {
    # Lite-Mind on the built-in nsd_like data (subj01), sized for 2 CPU cores. Target: EfficientNet-Lite0 pooled
    # embedding (CLIP is not installable offline). 50 epochs: 300-way top-1 14.0 % vs 12.0 % at 30 (still rising
    # at 30); ~200 s on 2 cores (measured 2026-11-23).
    "cpu_small": LiteMindRecipeConfig(
        model=ModelSpec("lite_mind", "cpu_small"),
        objective=DEMO_OBJECTIVE,
        training=TrainingConfig(
            epochs=50, batch_size=250, lr=1e-3, weight_decay=0.1, warmup_epochs=2, min_lr=1e-5, grad_clip=1.0
        ),
        evaluation=RetrievalSpec(n_way=300, n_draws=30),
    ),
    # The paper's setting on real NSD subj01 (METHODS.md section 3; released train_litemind.py + README). Needs the
    # NSD files under data.options.root and a local CLIP ViT-L/14 (openai/clip-vit-large-patch14) folder.
    "nsd_subj01": LiteMindRecipeConfig(
        data=DataSpec(
            name="nsd",
            subject="subj01",
            target="clip_vit_l14",  # 257 x 768 tokens after ln_post + proj (MindEye-style target)
            options={"root": "/path/to/nsd", "subjects": ["subj01"]},
            encoder_options={"model_dir": "/path/to/clip-vit-large-patch14"},
            val_fraction=0.0,
        ),
        model=ModelSpec("lite_mind", "nsd_subj01"),
        # fixed logit scale exp(8) = 2981 (temperature 1 / 2981), image->fMRI rows (train_litemind.py)
        objective=ObjectiveSpec("infonce", {"temperature": 3.3546e-4, "bidirectional": False}),
        training=TrainingConfig(
            epochs=1500,  # README
            batch_size=1000,  # README (single V100 32 GB)
            lr=1.171875e-4,  # base lr 1e-4 scaled by 600/512 (train_litemind.py)
            weight_decay=0.1,
            warmup_epochs=5,
            min_lr=1e-5,
            grad_clip=1.0,
            accelerator="auto",
        ),
        evaluation=RetrievalSpec(n_way=300, n_draws=30),
    ),
    # Seconds: a tiny nsd_like build (weight-free pixel-projection targets) and the tiny Lite-Mind, for the tests.
    "testing": LiteMindRecipeConfig(
        data=DataSpec(
            target="pixel_projection",
            options=testing_options({"subj01": 41, "subj05": 29}, median_snr=1.5),
        ),
        model=ModelSpec("lite_mind", "testing"),
        objective=ObjectiveSpec("infonce", {"temperature": 0.1}),
        training=TrainingConfig(epochs=3, batch_size=32, progress=False),
        evaluation=RetrievalSpec(n_way=10, n_draws=5),
    ),
}
# nsd_subj01 with the released computation (model preset nsd_subj01_released: diagonal FreMLP, voxel remainder
# dropped, complex square in the GlobalFilter): the preset `brainkit import-weights lite_mind` loads weights into.
# Its betas are read as stored (zscore=false), as the released fmri2nsd.py saved them.
PRESETS["nsd_subj01_released"] = dataclasses.replace(
    PRESETS["nsd_subj01"],
    data=dataclasses.replace(
        PRESETS["nsd_subj01"].data, options={**PRESETS["nsd_subj01"].data.options, "zscore": False}
    ),
    model=ModelSpec("lite_mind", "nsd_subj01_released"),
)
# `make demo`: Lite-Mind (cpu_small above) beside ridge (alpha by cross-validation on training trials only) and
# a MindEye-style residual MLP small enough for 2 CPU cores, trained with the same InfoNCE (30 epochs at 3e-4:
# our choice for the demo).
PRESETS["demo"] = dataclasses.replace(
    PRESETS["cpu_small"],
    baselines=(
        Baseline("ridge", None, label="Ridge"),
        Baseline("mindeye_mlp", "cpu_small", training={"epochs": 30, "lr": 3e-4}, label="MindEye MLP"),
    ),
)

# The same two on nsd_like's realistic generative option (docs/datasets.md, "The realistic option"): voxels driven
# non-linearly by EfficientNet-Lite0 feature maps that the pooled target does not contain, noise ceiling ~30 %.
REALISTIC_DATA = DataSpec(options={"generative": "realistic"})
PRESETS["cpu_small_realistic"] = dataclasses.replace(PRESETS["cpu_small"], data=REALISTIC_DATA)
PRESETS["demo_realistic"] = dataclasses.replace(PRESETS["demo"], data=REALISTIC_DATA)
