"""The CLIP-MUSED recipe: one multi-subject semantic decoder vs per-subject, pooled and SRM baselines.

``brainkit run clip_mused`` builds the simulated volumetric data (``hcp_movie_like``), the stimulus targets
(low-level and high-level features: :mod:`brainkit.data.semantic`), trains CLIP-MUSED and its ablations, the
per-subject and pooled models on the one trainer (:class:`SemanticTask`), fits SRM + logistic regression, scores
mAP / AUC / Hamming per subject against the label-frequency baseline (:mod:`brainkit.evaluation.multilabel`), and
writes ``report.html`` (:mod:`brainkit.report.clip_mused`) and safetensors checkpoints under
``checkpoints/<name>``. The nsd variant (``--preset nsd``: the real NSD with COCO's 80 categories) reads ROI
patches instead of volumes (:mod:`brainkit.data.roi_patches`; docs/methods/clip_mused.md, "NSD variant").

Each network is one resumable phase (:func:`brainkit.training.train_phase`) in ``train/<name>``: ``<name>`` is
the method (``clip_mused``, ``no_rsm``, ... ``pooled``), or ``per_subject_<subject>`` for the per-subject
baseline's one network per subject. ``brainkit run clip_mused --out DIR --resume`` reloads the finished networks,
continues the interrupted one exactly and trains the rest: the result equals the uninterrupted run's. ``brainkit
eval DIR`` (:meth:`CLIPMUSEDRecipe.evaluate`) reloads every network from ``checkpoints/`` without training, fits
SRM again (closed form + seeded logistic regression, from the data: nothing of it is saved) and recomputes the
label-frequency row, giving the run's ``metrics`` exactly. Training seconds are in the tables (``train_s``), not
in ``metrics``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from brainkit.data import load_dataset
from brainkit.data.roi_patches import PatchGrid
from brainkit.data.semantic import (
    semantic_mask,
    stack_subjects,
)
from brainkit.errors import ConfigError
from brainkit.models import model_config, save_model
from brainkit.objectives.semantic import SemanticLoss, SemanticLossConfig
from brainkit.recipes import RecipeOutput
from brainkit.recipes.clip_mused.data import check_required, dataset_options, prepare, roi_patches
from brainkit.recipes.clip_mused.networks import (
    check_methods,
    load_network,
    run_metrics,
    run_srm,
    scored_rows,
    train_network,
)
from brainkit.recipes.clip_mused.scores import scores as bench_scores
from brainkit.recipes.clip_mused.settings import (
    FAST_HCP_DATA,
    FAST_NSD_DATA,
    FAST_TEST_DATA,
    METHODS,
    NSD_PATCH_ROIS,
    RELEASED_TRAINING,
    AdaptationSettings,
    CLIPMUSEDRecipeConfig,
)
from brainkit.recipes.clip_mused.task import SemanticTask, build_network, predict
from brainkit.registry import RECIPES
from brainkit.report import clip_mused as report
from brainkit.training import torch_threads

log = logging.getLogger(__name__)


@RECIPES.register(
    "clip_mused", help="CLIP-MUSED multi-subject decoding + ablations + per-subject/pooled/SRM."
)
class CLIPMUSEDRecipe:
    Config = CLIPMUSEDRecipeConfig
    BENCH_SEEDS = (
        "training.seed",
    )  # what `brainkit bench`'s seed sets: every network's init and batches and SRM's seed; the split stays
    scores = staticmethod(bench_scores)  # its tables as `brainkit bench` score rows
    PRESETS = {
        # built-in 6 mm data, 4 subjects x 240 training volumes. One torch thread: on the shared 2-core machine two
        # threads ran 4x SLOWER than one (measured under load); set threads=2 on an idle machine.
        "cpu_small": CLIPMUSEDRecipeConfig(
            training=replace(RELEASED_TRAINING, epochs=10, batch_size=32, lr=2e-3, lr_step_epochs=4),
            threads=1,
        ),
        "testing": CLIPMUSEDRecipeConfig(
            data=FAST_TEST_DATA,
            model_preset="testing",
            high_dim=8,
            srm_components=4,
            threads=1,
            training=replace(RELEASED_TRAINING, epochs=2, batch_size=8, progress=False),
        ),
        # The paper's model and schedule (README + decoding_HCP_MS.py): hcp preset (65.8 M), Adam lr 1e-3 x0.7 every
        # 25 epochs, 500 epochs, batch 64, loss weights 1 / 1e-3 / 1e-3 / 0.1, 112x128x112 input (built-in data
        # at 2 mm padded to the paper's grid; the paper's HCP volumes are 1.6 mm). A GPU job (training.accelerator).
        "hcp": CLIPMUSEDRecipeConfig(
            data={"resolution_mm": 2, "grid": [112, 128, 112]},
            model_preset="hcp",
            training=replace(
                RELEASED_TRAINING, epochs=500, batch_size=64, lr=1e-3, lr_step_epochs=25, accelerator="cuda"
            ),
            loss=SemanticLossConfig(orthogonality_tokens="raw"),  # the released loss on raw tokens
        ),
    }

    # The released weights' model (`brainkit import-weights clip_mused model.pth --preset hcp_released`): the hcp
    # preset, the CLIP-MUSED network alone, the released subject order (dataset/subject_IDs_train.txt).
    # The paper's settings on the real HCP 7T movie volumes: `brainkit run clip_mused --preset hcp_real --set
    # data.root=/data/HCP` (the hcp_movie dataset: docs/datasets.md, "HCP 7T movie (MNI volumes)").
    PRESETS["hcp_real"] = replace(PRESETS["hcp"], dataset="hcp_movie", data={})
    # seconds: the same dataset on the tiny folder brainkit.testing_hcp writes (`--set data.root=DIR`)
    PRESETS["testing_hcp"] = replace(PRESETS["testing"], dataset="hcp_movie", data=FAST_HCP_DATA)
    # The paper's NSD setting (METHODS.md 2.2 and the paper's notes in shared/seeds: 8 subjects (here: every
    # subject present under data.root, data.subjects=[...] to choose), 80 COCO
    # categories, each subject's own 9k training images and the shared 1k as test; token width 512, 8 heads, batch
    # 64, Adam lr 1e-4, loss weights orthogonality 1e-3 / high 1e-3 / low 1e-4). Epochs and the lr schedule are
    # not given for NSD: the released HCP step schedule, 100 epochs (ours, UNVERIFIED). No SRM: NSD's subjects saw
    # different training images, so their responses cannot be aligned in time. `brainkit run clip_mused --preset
    # nsd --set data.root=/data/nsd --set data.coco_annotations=/data/coco/annotations` (a GPU job).
    PRESETS["nsd"] = CLIPMUSEDRecipeConfig(
        dataset="nsd",
        # the text target: each image's first COCO caption (the paper: CLIP embeddings of image and caption)
        data={
            "subjects": "present",
            "image_size": 224,
            "patch_rois": NSD_PATCH_ROIS,
            "coco_text": "captions",
        },
        model_preset="nsd",
        training=replace(RELEASED_TRAINING, epochs=100, batch_size=64, lr=1e-4, accelerator="cuda"),
        loss=SemanticLossConfig(orthogonality=1e-3, rsm_high=1e-3, rsm_low=1e-4, orthogonality_tokens="raw"),
        methods=tuple(m for m in METHODS if m != "srm"),
    )
    # seconds: the nsd variant on the tiny NSD folder of tests/nsd_fixture.py (`--set data.root=DIR --set
    # data.coco_annotations=DIR/coco`)
    PRESETS["testing_nsd"] = replace(
        PRESETS["testing"],
        dataset="nsd",
        data=FAST_NSD_DATA,
        model_preset="nsd",
        model={"roi_size": 5, "dim": 6, "n_heads": 2, "head_dim": 3, "ff_hidden": [7, 5]},
        features=FAST_TEST_DATA["features"],
        methods=("clip_mused", "pooled"),  # each network costs seconds of trainer set-up
    )
    # New-subject adaptation (recipes/clip_mused/adaptation.py, docs/methods/adaptation.md): the built-in
    # hcp_movie_like (4 subjects x 240 training samples of 1 s), pretrain cpu_small on sub01-sub03 (10 epochs),
    # adapt to sub04 with k = 30, 60, 120, 240 samples (0.5-4 scan-minutes), 3 seeds; adapt and scratch 10 passes
    # over the k samples, at least 40 steps. Sized for 2 shared CPU cores (our choice, not tuned).
    PRESETS["adaptation"] = replace(
        PRESETS["cpu_small"], adaptation=AdaptationSettings(enabled=True, min_steps=40)
    )
    # seconds: three tiny subjects, k = 6, 12 and all, 2 seeds
    PRESETS["testing_adaptation"] = replace(
        PRESETS["testing"],
        data=FAST_TEST_DATA | {"snr": [1.2, 0.8, 0.5]},
        training=replace(PRESETS["testing"].training, epochs=1),
        adaptation=AdaptationSettings(enabled=True, k=(6, 12, "all"), seeds=(0, 1), min_steps=2),
    )
    PRESETS["hcp_released"] = replace(
        PRESETS["hcp"],
        methods=("clip_mused",),
        released_subjects=(
            "233326", "172130", "951457", "191336", "169040", "878776", "169343", "102816", "573249",
        ),
    )  # fmt: skip

    resumable = True  # `brainkit run clip_mused --out DIR --resume` continues an interrupted run
    # any trial-based dataset with multi-label categories and a volume mask: yours through brainkit.run(...,
    # dataset=) (brainkit.data.semantic.check_semantic_dataset says what it lacks)
    DESIGNS = ("trials",)
    # the uniform keys data.name / data.options (brainkit.recipes.data_overrides): config.dataset / config.data;
    # data.<option> (e.g. data.root) sets an option of the dataset directly
    DATA_FIELDS = {"name": "dataset", "options": "data"}

    @staticmethod
    def with_dataset(
        config: CLIPMUSEDRecipeConfig, name: str, options: dict[str, Any]
    ) -> CLIPMUSEDRecipeConfig:
        return replace(config, dataset=name, data=dict(options))

    def import_weights(
        self, config: CLIPMUSEDRecipeConfig, weights: dict[str, torch.Tensor], folder: Path, source: dict
    ) -> list[str]:
        """The released ``model.pth`` (decoding_HCP_MS.py's ``model.state_dict()`` of ``BrainFormer_MS``) as this
        run's ``clip_mused`` network: its phase (``train/clip_mused``, imported) and ``checkpoints/clip_mused``."""
        from brainkit.models.clip_mused_released import load_released
        from brainkit.training.phase import write_imported_phase

        if tuple(config.methods) != ("clip_mused",):
            raise ConfigError(
                'clip_mused import-weights fills the CLIP-MUSED network alone; set methods=["clip_mused"] '
                f"(found {list(config.methods)}; the preset hcp_released has it)."
            )
        check_methods(config)
        with torch_threads(config.threads):
            _, samples, grid = prepare(config)
            subjects = list(samples.subjects)
            rows = None
            if config.released_subjects is not None:
                order = list(config.released_subjects)
                missing = [s for s in subjects if s not in order]
                if missing:
                    raise ConfigError(
                        f"The data's subjects {missing} are not among released_subjects {order}: the released "
                        "tokens hold only those subjects. Choose those subjects in the data."
                    )
                rows = [order.index(s) for s in subjects]
            model = build_network("clip_mused", config, grid, samples.n_classes, len(subjects), 0)
            load_released(model, weights, source["file"], rows)
            loss = SemanticLoss(config.loss)
            task = SemanticTask(model, loss, stack_subjects([samples.train[s] for s in subjects]), grid)
            write_imported_phase(task, config.training, folder / "train" / "clip_mused", "clip_mused", source)
            meta = {"method": "clip_mused", "subjects": ",".join(subjects), "imported": source["sha256"]}
            save_model(folder / "checkpoints" / "clip_mused", model, meta)
        order = "the data's order" if rows is None else f"released rows {rows}"
        return [
            f"CLIP-MUSED network imported for subjects {subjects} ({order}); its {samples.n_classes} classifier "
            "rows are taken in the file's class order, which must be the dataset's.",
        ]

    @staticmethod
    def check(config: CLIPMUSEDRecipeConfig) -> None:
        """What the run would otherwise meet only after building the data: the methods, the dataset's options
        (against its factory's signature), the model preset and options of every network method, and
        ``released_subjects``. Raises :class:`ConfigError`; builds nothing."""
        from brainkit.registry import DATASETS

        check_methods(config)
        if config.adaptation.enabled:
            from brainkit.recipes.clip_mused.adaptation import check_adaptation

            check_adaptation(config)
        DATASETS.check_options(config.dataset, config.data, "data")
        check_required(config)
        for method in config.methods:
            if method != "srm":
                options = dict(config.model) | METHODS[method][1]
                model_config("clip_mused", config.model_preset, options, where=f"model ({method})")
        subjects = config.released_subjects
        if subjects is not None and (not subjects or len(set(subjects)) != len(subjects)):
            raise ConfigError(
                f"released_subjects {list(subjects)} must be distinct subject names, at least one."
            )

    def predictor(self, config: CLIPMUSEDRecipeConfig, folder: Path):
        """The run, ready to decode new recordings into category probabilities (recipes/clip_mused/decode.py)."""
        from brainkit.recipes.clip_mused.decode import STATE, CLIPMUSEDPredictor, PredictorState

        if (Path(folder) / STATE / "inputs.json").is_file():
            state = PredictorState.load(Path(folder))
        else:  # a run from before the state was saved: read the data again
            dataset = load_dataset(config.dataset, **dataset_options(config))
            state = PredictorState.from_dataset(dataset, roi_patches(config, dataset))
        return CLIPMUSEDPredictor(config, folder, state, METHODS, predict)

    def run(self, config: CLIPMUSEDRecipeConfig, folder: Path, resume: bool = False) -> RecipeOutput:
        check_methods(config)
        if config.adaptation.enabled:  # new-subject adaptation instead of the method comparison
            from brainkit.recipes.clip_mused.adaptation import check_adaptation, run_adaptation

            check_adaptation(config)
            with torch_threads(config.threads):
                return run_adaptation(config, folder, resume, prepare(config))
        with torch_threads(config.threads):
            return self._run(config, folder, resume)

    def evaluate(self, config: CLIPMUSEDRecipeConfig, folder: Path) -> dict[str, Any]:
        """The run's ``metrics`` again, without training: each network reloaded from ``checkpoints/<name>`` and
        scored on the rebuilt test data, SRM fitted again from the data (closed form + seeded logistic
        regression: the same numbers; it is not a trained network and nothing of it is saved), the
        label-frequency row recomputed. Equal to the run's ``metrics`` on the same machine and thread count.
        Training seconds are not re-computable; they are in the run's tables (``train_s``), not in ``metrics``."""
        check_methods(config)
        if config.adaptation.enabled:
            raise ConfigError(
                "brainkit eval does not re-score a clip_mused adaptation run yet: its scores are in the run's "
                "metrics.json and curve.csv (each adapted and scratch network is in kK_seedS/<method>/final/)."
            )
        with torch_threads(config.threads):
            dataset, samples, grid = prepare(config)
            results = {
                method: run_srm(samples, config)
                if method == "srm"
                else load_network(method, samples, grid, config, folder)
                for method in config.methods
            }
            return run_metrics(scored_rows(results, samples, config.undefined_classes), dataset)

    def _run(self, config: CLIPMUSEDRecipeConfig, folder: Path, resume: bool) -> RecipeOutput:
        dataset, samples, grid = prepare(config)
        results = {
            method: run_srm(samples, config)
            if method == "srm"
            else train_network(method, samples, grid, config, folder, resume)
            for method in config.methods
        }
        rows = scored_rows(results, samples, config.undefined_classes)
        seconds = {method: round(result.seconds, 1) for method, result in results.items()}
        tables, notes = report.write(
            folder,
            "CLIP-MUSED on " + dataset.name,
            [row | {"train_s": seconds.get(row["method"], 0.0)} for row in rows],
            samples.subjects,
            {method: result.history for method, result in results.items() if method != "srm"},
            results["clip_mused"].extras,
            {s: samples.test[s].labels for s in samples.subjects},
            grid.patches.names if isinstance(grid, PatchGrid) else semantic_mask(dataset),
            dataset.info["categories"],
            dataset.info.get("affine"),  # the grid's MNI affine: the attention drawn on the MNI template
        )
        from brainkit.recipes.clip_mused.decode import PredictorState

        patches = grid.patches if isinstance(grid, PatchGrid) else None
        PredictorState.from_dataset(dataset, patches).save(
            folder
        )  # brainkit.load(run).predict without the data
        return RecipeOutput(tables, notes, run_metrics(rows, dataset))
