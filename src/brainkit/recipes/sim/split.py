"""The parts of the ``sim`` recipe that its comparison of inits and its new-subject adaptation
(recipes/sim/adaptation.py) share: the SIM of a config (:func:`build_sim`), the data's patches, clip halves,
subject groups and arrays (:func:`prepare`), the retrieval candidates' seed (:func:`retrieval_seed`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from brainkit.config import from_dict, to_dict
from brainkit.data import movie_samples as ms
from brainkit.recipes.vsmae import build_vsmae


def build_sim(config: Any, encoder, video_dim: int, audio_dim: int):
    from brainkit.models.sim import SIM, SIMConfig

    options = {"encoder": to_dict(encoder), "video_dim": video_dim, "audio_dim": audio_dim, **config.model}
    return SIM(from_dict(SIMConfig, options, where="sim model"))


def prepare(config: Any, data) -> dict[str, Any]:
    """Patches, the encoder config, clip halves, subject groups, arrays and the fixed sample sets."""
    from brainkit.surface.patch_grid import patch_grid

    ms.check_dataset(data)
    n_subjects, _, n_frames_total, _ = data.fmri.shape
    vsmae = dataclasses.replace(config.vsmae, fine_order=int(data.order), seed=config.seed)
    # The data are in brainkit's vertex order; a SIM table ("sim:DIR") is renumbered onto it (docs/surface.md).
    patches = np.asarray(patch_grid(vsmae.patches, vsmae.fine_order, vsmae.coarse_order).in_brainkit_order())
    encoder = build_vsmae(vsmae, *patches.shape).config.encoder
    usable = ms.usable_clips(data.segment_of, n_frames_total, data.lag, encoder.n_frames)
    for run, n in enumerate(data.info.get("run_frames", ())):  # real runs of unequal lengths, padded
        usable[run] &= np.arange(usable.shape[1]) + data.lag + encoder.n_frames <= n
    clips = ms.split_clips(data.segment_of, usable, config.gap_clips)
    groups = ms.choose_subjects(n_subjects, config.n_test_subjects, config.seed)
    arrays = ms.MovieArrays(data.fmri, patches, ms.standardise_features(data.video, clips["train"]),
                            ms.standardise_features(data.audio, clips["train"]), ms.content_keys(data.retest),
                            int(data.lag), encoder.n_frames)  # fmt: skip
    settings = {
        name: ms.samples_of(groups[who], clips[which]) for name, (_, who, which) in ms.SETTINGS.items()
    }
    monitor = ms.monitoring_set(
        settings["unseen_subjects"], arrays.keys, config.fit.n_monitor, config.seed + 3
    )
    importance = ms.monitoring_set(settings["unseen_both"], arrays.keys, config.n_importance, config.seed + 5)
    return {"vsmae": vsmae, "patches": patches, "encoder": encoder, "clips": clips, "groups": groups,
            "arrays": arrays, "settings": settings, "monitor": monitor, "importance": importance}  # fmt: skip


def retrieval_seed(config: Any) -> int:
    """The seed of the retrieval candidates (every model and the ridge baseline meet the same ones)."""
    return config.seed + 17


__all__ = ["build_sim", "prepare", "retrieval_seed"]
