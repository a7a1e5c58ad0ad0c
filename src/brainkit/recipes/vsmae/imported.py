"""A released vsMAE as a run folder: ``brainkit import-weights vsmae FILE --out RUN``.

The released pretraining (metrics-lab/surface-masked-autoencoders ``tools/pretraining_fmri.py``) saves two files
per checkpoint, each ``{"model_state_dict": ..., "optimizer_state_dict": ..., "epoch", "loss"}``:
``encoder-decoder-{best,final}.pt`` (the whole vsMAE: what is imported here) and ``encoder-{best,final}.pt``
(the SiT alone, what SIM's ``init_weights: ssl_svmae`` copies its matching names and shapes from; without the
decoder it is not a vsMAE, so it is refused, by name). The run's config is the ``vsmae`` recipe's with
``model_preset=sim_released`` (``IMPORT_OVERRIDES``); the sizes must be the checkpoint's (``encoder_options``,
``model_options``, the patch grid and ``n_frames``): both fixed tables are checked, so a file from another grid
or frame count is refused. :func:`brainkit.models.vsmae.load_released` maps the keys.

Written like a trained run: ``checkpoints/vsmae`` and ``checkpoints/sit_encoder`` and ``train/vsmae`` (a finished
phase with no steps), so ``brainkit eval RUN`` and ``--resume`` read it; ``evaluate`` scores it on the held-out
frames of the config's data against the baselines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brainkit.errors import CheckpointError, ConfigError


def write_released(
    task: Any, training: Any, weights: dict, folder: Path, source: dict, data: str
) -> list[str]:
    """Load ``weights`` into ``task.model`` (a vsMAE built for the run's data), then write the run's checkpoints
    and its imported phase ``train/vsmae``; returns the notes for the run's summary."""
    from brainkit.models import save_model
    from brainkit.models.vsmae import load_released
    from brainkit.training.phase import write_imported_phase

    model = task.model
    if not model.config.released:
        raise ConfigError(
            "vsmae import-weights needs model_preset=sim_released (or a preset with released=True): the "
            "released vsMAE's tokens, tables and norms."
        )
    if not any(k.startswith(("decoder.", "mask_token", "to_pixels.")) for k in weights):
        raise CheckpointError(
            f"{source['file']} holds no decoder (decoder.*, mask_token, to_pixels.*): it is the released "
            "encoder-*.pt (the SiT alone); import encoder-decoder-*.pt, the whole vsMAE."
        )
    load_released(model, weights, source["file"])
    write_imported_phase(task, training, folder / "train" / "vsmae", "vsMAE released", source)
    save_model(folder / "checkpoints" / "vsmae", model, metadata={"data": data, "imported": source["sha256"]})
    save_model(folder / "checkpoints" / "sit_encoder", model.encoder,
               metadata={"pretrained": "vsmae", "imported": source["sha256"]})  # fmt: skip
    e = model.config.encoder
    return [
        f"vsMAE imported from {Path(source['file']).name}: the released computation (released=True), "
        f"{e.n_frames} frames x {e.n_patches} patches of {e.n_patch_vertices} vertices as one-frame tokens. "
        "Its sit_encoder is that one-frame SiT without a cls token: SIM's model does not take it."
    ]


__all__ = ["write_released"]
