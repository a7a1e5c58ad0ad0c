"""SIM's released training output as a run folder: ``brainkit import-weights sim DIR --out RUN``.

SIM's ``tools/train_fmri_clip_ddp.py`` saves a trained tri-modal model as four files in its run folder, each a
``{"model_state_dict": ...}`` of one part (:data:`RELEASED_FILES`): the fMRI encoder (``fMRIEncoder``: the SiT and,
with ``use_class_token_fmri_encoder``, its own cls token) and the fMRI, video and audio ``Wrapper`` heads. A
single file holding the whole ``CLIPfMRIVideoAudio`` state dict works too (the same key prefixes).

What is mapped: the encoder by :func:`brainkit.models.sit.load_released` (a SiT with ``released=True``:
``--set vsmae.encoder_options.released=true``), each ``Wrapper`` (``projection``, ``fc``, ``layer_norm``) onto our
:class:`~brainkit.models.sim.ProjectionHead` (``project``, ``fc``, ``norm``). What is not: ``logit_scale`` (SIM's
loss never reads it: its logit scales are the fixed temperatures of the config) and, in a whole-model file, the
frozen ``video_encoder.`` / ``audio_encoder.`` (VideoMAE, wav2vec2): brainkit embeds the stimuli with the data's
encoders (``data_options.video_encoder`` / ``audio_encoder``), which must be the ones the heads were trained on
(768-d VideoMAE and wav2vec2 features for SIM's) — the heads' input sizes are checked against the data's.

The imported network is the run's ``released`` init: ``checkpoints/sim_released`` and ``train/sim_released``
(a finished phase with no steps), scored by the recipe's evaluation like a trained one, and the prediction state
(``predictor/``), so ``brainkit predict`` / ``brainkit.load(RUN).predict`` embed new recordings with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from brainkit.errors import CheckpointError, ConfigError

RELEASED_FILES = {
    "fmri-encoder-best.pt": "fmri_encoder.",
    "fmri-wrapper-best.pt": "fmri_wrapper.",
    "video-wrapper-best.pt": "video_wrapper.",
    "audio-wrapper-best.pt": "audio_wrapper.",
}
HEAD_RULES = [
    (r"(fmri|video|audio)_wrapper\.projection\.(weight|bias)", r"\1_head.project.\2"),
    (r"(fmri|video|audio)_wrapper\.fc\.(weight|bias)", r"\1_head.fc.\2"),
    (r"(fmri|video|audio)_wrapper\.layer_norm\.(weight|bias)", r"\1_head.norm.\2"),
    (r"logit_scale", None),  # unused by SIM's loss (fixed temperatures)
    (r"(video|audio)_encoder\..*", None),  # the frozen stimulus encoders: the data's encoders stand in
]


def load_released_sim(
    model, encoder_config: Any, weights: dict[str, torch.Tensor], source: dict
) -> list[str]:
    """``weights`` (module docstring) loaded into ``model`` (a SIM built for the run's data, its SiT config
    ``encoder_config``); returns the notes for the run's summary. Raises :class:`ConfigError` for our SiT layout
    and :class:`CheckpointError` listing what does not fit."""
    from brainkit.models.released import map_state
    from brainkit.models.sit import load_released

    if not encoder_config.released:
        raise ConfigError(
            "SIM's released encoder needs a SiT with released=True (its [sin | cos] table, its final LayerNorm): "
            "--set vsmae.encoder_options.released=true."
        )
    encoder = {k: v for k, v in weights.items() if k.startswith("fmri_encoder.")}
    if not encoder:
        raise CheckpointError(f"{source['file']} holds no fmri_encoder.* tensors (SIM's fMRIEncoder).")
    load_released(model.encoder, encoder, source["file"])
    heads = {k: v for k, v in weights.items() if not k.startswith("fmri_encoder.")}
    target = {k: v for k, v in model.state_dict().items() if k.split(".")[0].endswith("_head")}
    model.load_state_dict(map_state(heads, HEAD_RULES, target, source=source["file"]), strict=False)
    config = model.config
    notes = [
        f"SIM imported from {Path(source['file']).name}: the SiT (released layout) and the fMRI, video and audio "
        f"heads ({config.video_dim}-d video, {config.audio_dim}-d audio features from the data's encoders)."
    ]
    skipped = sorted({k.split(".")[0] for k in heads if k.startswith(("video_encoder.", "audio_encoder."))})
    if skipped:
        notes.append(
            f"Not imported: {', '.join(skipped)} (frozen stimulus encoders; the data's encoders embed)."
        )
    return notes


__all__ = ["HEAD_RULES", "RELEASED_FILES", "load_released_sim"]
