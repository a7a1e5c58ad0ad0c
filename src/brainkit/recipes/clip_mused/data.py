"""The CLIP-MUSED recipe's data: the dataset read from its options, its samples with stimulus targets, and the
model's input (the volume grid of the hcp variant, the ROI patches of the nsd variant)."""

from __future__ import annotations

from typing import Any

from brainkit.data import dataset_accepts, load_dataset
from brainkit.data.roi_patches import PatchGrid, ROIPatches
from brainkit.data.semantic import SemanticSamples, VolumeGrid, semantic_mask, semantic_samples
from brainkit.errors import ConfigError
from brainkit.models import model_config
from brainkit.recipes.clip_mused.settings import CLIPMUSEDRecipeConfig

# dataset -> options CLIP-MUSED needs although the dataset does not (nsd: its labels come from COCO's files)
NEEDS = {"nsd": ("coco_annotations",)}


def dataset_options(config: CLIPMUSEDRecipeConfig) -> dict[str, Any]:
    """The dataset factory's options of ``config`` (its ``data``, and the cache folder)."""
    cache = config.cache_dir and dataset_accepts(config.dataset, "cache_dir")  # a saved folder takes none
    return dict(config.data) | ({"cache_dir": config.cache_dir} if cache else {})


def prepare(config: CLIPMUSEDRecipeConfig) -> tuple[Any, SemanticSamples, VolumeGrid | PatchGrid]:
    """(the dataset, its samples with stimulus targets, the model's input grid: the volume grid of its mask (hcp
    variant), or its ROI patches (nsd variant, :mod:`brainkit.data.roi_patches`)): deterministic in ``config``."""
    dataset = load_dataset(config.dataset, **dataset_options(config))
    patches = roi_patches(config, dataset)
    samples = semantic_samples(
        dataset,
        config.high_dim,
        config.feature_clip,
        config.clip_model_dir,
        config.cache_dir,
        config.features,
        patches,
    )
    return dataset, samples, VolumeGrid(semantic_mask(dataset)) if patches is None else PatchGrid(patches)


def roi_patches(config: CLIPMUSEDRecipeConfig, dataset: Any) -> ROIPatches | None:
    """The nsd variant's ROI patching of ``dataset`` (its ``info["roi_names"]`` / ``["roi_members"]``, the model's ``roi_size``, the rest
    patch when ``config.roi_rest``); None for the hcp variant."""
    model = model_config("clip_mused", config.model_preset, dict(config.model), where="model")
    if model.variant != "nsd":
        return None
    return ROIPatches.from_info(dataset.info, dataset.subjects, model.roi_size, config.roi_rest)


def check_required(config: CLIPMUSEDRecipeConfig) -> None:
    """A ConfigError for each option the dataset factory needs and ``config.data`` lacks (``hcp_movie``'s and
    ``nsd``'s root), and each option CLIP-MUSED needs of that dataset (:data:`NEEDS`: ``nsd``'s
    ``coco_annotations``, where its labels come from)."""
    import inspect

    from brainkit.registry import DATASETS

    parameters = inspect.signature(DATASETS.get(config.dataset)).parameters.values()
    missing = [p.name for p in parameters if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    missing += [name for name in NEEDS.get(config.dataset, ()) if config.data.get(name) is None]
    missing = [name for name in missing if config.data.get(name) is None]
    if missing:
        example = " ".join(f"--set data.{name}=..." for name in missing)
        raise ConfigError(
            f"clip_mused: dataset {config.dataset!r} needs data.{', data.'.join(missing)} (e.g. {example}; "
            "hcp_movie: the folder of the HCP download; nsd: root = the folder holding nsddata/, "
            "coco_annotations = the folder of COCO's instances_train2017.json and instances_val2017.json)."
        )
