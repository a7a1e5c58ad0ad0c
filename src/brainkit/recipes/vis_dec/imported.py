"""Vis-Dec's released checkpoints as a run folder: ``brainkit import-weights vis_dec FILE --out RUN``.

The released code (soinx0629/vis_dec_neurips, commit eb2e419) distributes two checkpoints, both written by
``sc_mbm/utils.py`` as ``{"model": state_dict, "optimizer", "epoch", "scaler", "config"}`` (``config`` a pickled
``config.Config_MBM_*`` object, read here as an inert record; :data:`RELEASED_METADATA`):

- phase 1 (``phase1_pretrain_contrast.py``): ``model`` is ``MAEforFMRIContrast``: ``patch_embed.proj``,
  ``cls_token``, ``pos_embed``, ``blocks.<i>`` (timm Blocks), ``norm``, ``decoder_embed``, ``mask_token``,
  ``decoder_pos_embed``, ``decoder_blocks.<i>``, ``decoder_norm``, ``decoder_pred`` (+ the optional
  ``nature_img_*`` head);
- phase 2 (``phase2_finetune_cross.py``, ``save_model_merge_conf``): ``model`` is the fMRI side alone,
  ``MAEforFMRICross``: the same keys (its decoder ``fmri_decoder_layers`` deep: 6 in the README run) plus its
  cross-attention: ``cross_map_in`` (Linear dim -> 768), ``cross_blocks.<i>`` (``num_cross_encoder_layers`` = 3
  ViT-MAE layers of the image width, each self-attention ``attention.*``, cross-attention
  ``cross_attention.*``, ``intermediate`` / ``output`` MLP, ``layernorm_before`` / ``_after``) and
  ``cross_map_out`` (Linear 768 -> dim); beside it ``config_merge``, a dict holding the image MAE's
  ``transformers`` ``ViTMAEConfig``. The image MAE (vit-mae-base with its ``layer_cross``, ``cross_map_in`` and
  decoder) is not saved: the script saves ``model_without_ddp``, the fMRI model.

The two are told apart by their keys (:func:`released_phase`). What is mapped: the fMRI MAE, encoder and
decoder, onto brainkit's DC-MAE (:func:`brainkit.models.dc_mae.load_released`; ``released=True``, which
:data:`IMPORT_OVERRIDES` sets) — for phase 2 that is the fMRI side of :class:`~brainkit.models.cross_modal.CrossModalMAE`
(``model.fmri``) — and phase 2's ``cross_map_in``, ``cross_blocks`` and ``cross_map_out`` onto the released layout
of its fMRI-side cross-attention (``model.fmri_cross``, :class:`~brainkit.models.cross_modal_released.FMRICrossReleased`:
``cross_modal_options.released=true`` and ``fmri_cross_layers=3``, also set by :data:`IMPORT_OVERRIDES`; its width,
heads and MLP are the run's image MAE's: ``image_mae_dir`` or ``image_mae_preset``, ``vit_mae_base`` in the
``paper`` preset). Nothing of the fMRI side is dropped. With ``cross_modal_options.released=false`` (brainkit's
own cross-attention, another layout) the cross layers are checked against the fMRI width and dropped, as the
released phase 3 drops them too (``fmri_encoder.load_checkpoint`` keeps the encoder alone). The sizes the file
implies (width, depth, MLP, decoder, voxels) are compared with the run's config first, one error naming them all.

The run folder: a phase-1 file becomes ``train/phase1_dc_mae`` (a finished phase with no steps,
:func:`brainkit.training.write_imported_phase`, and its ``checkpoint/``), then the recipe's own run resumes it
(phase 2 and phase 3 trained on the config's data). A phase-2 file becomes ``train/phase2_cross_modal``: its
``fmri_encoder/`` (the tuned DC-MAE, what phase 3 conditions on) and a ``final/`` holding the fMRI side of the
phase's task (``model.fmri.*`` and, released, ``model.fmri_cross.*``), no whole-model ``checkpoint/`` (the image
MAE is not in the file); :func:`~brainkit.recipes.vis_dec.phases.imported_encoder` hands that encoder to phase 3, the only phase
trained.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brainkit.config import to_dict
from brainkit.errors import CheckpointError, ConfigError
from brainkit.models import build_model, count_parameters, save_model
from brainkit.models.cross_modal import image_mae_config
from brainkit.models.cross_modal_released import FMRICrossReleased, load_released_fmri_cross
from brainkit.models.dc_mae import DCMAE, load_released
from brainkit.models.dc_mae import RELEASED_METADATA as DC_MAE_METADATA
from brainkit.objectives.double_contrastive import loss_weights
from brainkit.recipes.vis_dec.encoder import DCMAETask
from brainkit.recipes.vis_dec.phases import cross_modal_config, dc_mae_config, phase_folder
from brainkit.training import write_imported_phase

# phase 2's config_merge holds the image MAE's config, a transformers ViTMAEConfig: an inert record too
RELEASED_METADATA = (*DC_MAE_METADATA, "transformers.models.vit_mae.configuration_vit_mae.ViTMAEConfig")
# the released [sin | cos] tables, mask count and padding; the released phase-2 cross-attention layout, 3 layers
# (code/config.py Config_MBM_finetune_cross.num_cross_encoder_layers), for a phase-2 file's cross_* and for phase 2
IMPORT_OVERRIDES = (
    "dc_mae.released=true",
    "cross_modal_options.released=true",
    "cross_modal_options.fmri_cross_layers=3",
)
# phase 2's fMRI-side cross-attention (MAEforFMRICross: cross_map_in, cross_blocks = ViTMAELayer(cross), cross_map_out)
CROSS_KEYS = [
    r"cross_map_(in|out)\.(weight|bias)",
    r"cross_blocks\.\d+\.(attention|cross_attention)\.(attention\.(query|key|value)|output\.dense)\.(weight|bias)",
    r"cross_blocks\.\d+\.(intermediate|output)\.dense\.(weight|bias)",
    r"cross_blocks\.\d+\.layernorm_(before|after)\.(weight|bias)",
]


def released_phase(weights: dict[str, torch.Tensor], source: str) -> int:
    """1 or 2: which of Vis-Dec's released checkpoints ``weights`` is (phase 2 has the ``cross_*`` keys).
    Raises :class:`CheckpointError` naming what was found when it is neither."""
    if "patch_embed.proj.weight" in weights and any(k.startswith("blocks.") for k in weights):
        return (
            2
            if any(k.startswith(("cross_blocks.", "cross_map_in.", "cross_map_out.")) for k in weights)
            else 1
        )
    found = sorted({k.split(".")[0] for k in weights})
    raise CheckpointError(
        f"{source} is neither of Vis-Dec's released checkpoints: expected the fMRI MAE's keys (patch_embed.proj.*, "
        "blocks.<i>.*, decoder_blocks.<i>.*; phase 2 adds cross_map_in, cross_blocks, cross_map_out), found "
        f"{len(weights)} tensors under {', '.join(found[:15])}{' ...' if len(found) > 15 else ''}. The phase-3 "
        "LDM was never distributed; pass the phase-1 or phase-2 checkpoint.pth."
    )


def _count(weights: dict[str, torch.Tensor], prefix: str) -> int:
    return len({m.group(1) for k in weights if (m := re.match(rf"{prefix}\.(\d+)\.", k))})


def released_sizes(weights: dict[str, torch.Tensor], source: str) -> dict[str, Any]:
    """The DC-MAE sizes ``weights`` were trained with (``n_voxels`` from ``pos_embed``'s length x the patch);
    the head counts are not in the weights."""
    try:
        patch = weights["patch_embed.proj.weight"]
        sizes = {
            "patch_size": patch.shape[-1],
            "dim": patch.shape[0],
            "depth": _count(weights, "blocks"),
            "mlp_ratio": weights["blocks.0.mlp.fc1.weight"].shape[0] / patch.shape[0],
            "decoder_dim": weights["decoder_embed.weight"].shape[0],
            "decoder_depth": _count(weights, "decoder_blocks"),
        }
        sizes["n_voxels"] = (weights["pos_embed"].shape[1] - 1) * sizes["patch_size"]
    except (KeyError, IndexError) as err:
        raise CheckpointError(
            f"{source} lacks {err} (or it has another shape): not Vis-Dec's fMRI MAE layout."
        ) from None
    return sizes


def check_sizes(config: Any, n_voxels: int, weights: dict[str, torch.Tensor], source: str) -> None:
    """Every DC-MAE size of the run's config (``n_voxels``: its data's, padded) that differs from the file's,
    in one :class:`ConfigError` with the ``--set`` that fixes each."""
    ours = to_dict(dc_mae_config(config, n_voxels))
    differ = []
    for name, value in released_sizes(weights, source).items():
        if name == "n_voxels" and value != n_voxels:
            differ.append(
                f"n_voxels: the file's pos_embed covers {value} voxels, this run's data gives {n_voxels} (--set "
                f"n_voxels={value} wraps the data on or cuts it to that, as the released phase-2 script does)"
            )
        elif name != "n_voxels" and value != ours[name]:
            differ.append(
                f"{name}: the file's {value:g}, the config's {ours[name]:g} (--set dc_mae.{name}={value:g})"
            )
    if differ:
        raise ConfigError(
            f"vis_dec import-weights: {source} does not fit this run's DC-MAE: " + "; ".join(differ) + "."
        )


def load_phase2(
    model: DCMAE, weights: dict[str, torch.Tensor], source: str, cross_stack: FMRICrossReleased | None = None
) -> list[str]:
    """The fMRI MAE of a released phase-2 ``MAEforFMRICross`` state dict into ``model`` and its cross-attention
    (``cross_*``) into ``cross_stack`` (:func:`~brainkit.models.cross_modal_released.load_released_fmri_cross`);
    without one (brainkit's own layout) the cross keys (:data:`CROSS_KEYS`) are checked against the fMRI width and
    dropped. Every problem, of the fMRI MAE (:func:`~brainkit.models.released.map_state`) and of the cross keys,
    in one :class:`CheckpointError`."""
    cross = {k: v for k, v in weights.items() if k.startswith("cross_")}
    problems = [f"{k} (no rule of the released cross-attention layout)" for k in cross
                if not any(re.fullmatch(p, k) for p in CROSS_KEYS)]  # fmt: skip
    dim = model.config.dim
    w_in, w_out = cross.get("cross_map_in.weight"), cross.get("cross_map_out.weight")
    if w_in is None or w_out is None:
        problems.append("cross_map_in.weight / cross_map_out.weight missing")
    elif w_in.ndim != 2 or w_in.shape[1] != dim or tuple(w_out.shape) != (dim, w_in.shape[0]):
        problems.append(
            f"cross_map_in.weight {tuple(w_in.shape)} / cross_map_out.weight {tuple(w_out.shape)}: expected "
            f"(width, {dim}) / ({dim}, width) for this fMRI width {dim}"
        )
    try:
        notes = load_released(model, {k: v for k, v in weights.items() if k not in cross}, source)
    except CheckpointError as err:
        if problems:
            raise CheckpointError(f"{err} | released cross-attention: {'; '.join(problems)}") from None
        raise
    if problems:
        raise CheckpointError(f"{source} does not fit: released cross-attention: {'; '.join(problems)}.")
    width = w_in.shape[0]
    if cross_stack is not None:
        load_released_fmri_cross(cross_stack, cross, source)
        return notes
    return notes + [
        f"not loaded (no counterpart in brainkit's fMRI-side cross-attention, docs/methods/vis_dec.md): "
        f"cross_map_in, {_count(cross, 'cross_blocks')} cross_blocks at width {width}, cross_map_out "
        f"({sum(v.numel() for v in cross.values()):,} parameters)"
    ]


class FMRISide(nn.Module):
    """The fMRI side of phase 2's task state (``model.fmri.*``, released also ``model.fmri_cross.*``, of a
    ``CrossModalTask``): what a released phase-2 checkpoint holds of brainkit's cross-modal model, written as
    that phase's ``final/``."""

    def __init__(self, fmri: DCMAE, cross: nn.Module | None = None) -> None:
        super().__init__()
        self.model = nn.ModuleDict({"fmri": fmri} | ({"fmri_cross": cross} if cross is not None else {}))


def import_weights(
    config: Any,
    weights: dict[str, torch.Tensor],
    folder: Path,
    source: dict[str, Any],
    inputs: Callable,
    run: Callable,
) -> list[str]:
    """The recipe's ``import_weights`` hook (module docstring): the released phase written into ``folder``, then
    ``run(config, folder, resume=True)`` (the recipe's run) trains what is left. ``inputs`` is the recipe's
    ``_inputs`` (config -> dataset name, LDM config, arrays). Returns the notes."""
    name = Path(source["file"]).name
    phase = released_phase(weights, source["file"])
    if phase == 2 and not config.cross_modal:
        raise ConfigError(
            f"{name} is Vis-Dec's phase-2 (cross-modal) checkpoint, but cross_modal=false conditions phase 3 on "
            "the phase-1 encoder: drop that setting, or import the phase-1 checkpoint."
        )
    _, _, arrays = inputs(config)
    n_voxels = arrays.train_voxels.shape[1]
    check_sizes(config, n_voxels, weights, source["file"])
    torch.manual_seed(config.seed)
    model = build_model("dc_mae", dc_mae_config(config, n_voxels))
    record = {**source, "released_phase": phase}
    if phase == 1:
        notes = load_released(model, weights, source["file"])
        loss = loss_weights(config.dc_mae_loss, form="released" if model.config.released else "ours")
        task = DCMAETask(model, arrays.train_voxels, loss, arrays.test_voxels, seed=config.pretrain.seed)
        where = phase_folder(folder, "phase1_dc_mae")
        write_imported_phase(task, config.pretrain, where, "phase1_dc_mae", record)
        save_model(where / "checkpoint", model, metadata={"phase": "dc_mae", "imported": source["sha256"]})
        later = "phases 2 and 3" if config.cross_modal else "phase 3 (cross_modal=false)"
        told = f"Vis-Dec phase 1 (DC-MAE, {count_parameters(model):,} parameters) imported from {name}; {later} trained here."
    else:
        cross = None
        if cross_modal_config(config).released:  # the fMRI-side cross stack at the run's image MAE's sizes
            image = image_mae_config(config.image_mae_dir, config.image_mae_preset)
            cross = FMRICrossReleased(model.config.dim, image, cross_modal_config(config).fmri_cross_layers)
        notes = load_phase2(model, weights, source["file"], cross)
        where = phase_folder(folder, "phase2_cross_modal")
        write_imported_phase(FMRISide(model, cross), config.tune, where, "phase2_cross_modal", record)
        save_model(
            where / "fmri_encoder", model, metadata={"phase": "cross_modal", "imported": source["sha256"]}
        )
        held = f" and its cross-attention ({count_parameters(cross):,})" if cross is not None else ""
        told = (
            f"Vis-Dec phase 2 imported from {name}: the cross-modally tuned fMRI MAE ({count_parameters(model):,} "
            f"parameters){held}; the image MAE is not in the released file; phase 3 (LDM) trained here."
        )
    output = run(config, folder, True)
    return [told, *notes, *output.notes]


__all__ = ["CROSS_KEYS", "IMPORT_OVERRIDES", "RELEASED_METADATA", "check_sizes", "import_weights",
           "load_phase2", "released_phase", "released_sizes"]  # fmt: skip
