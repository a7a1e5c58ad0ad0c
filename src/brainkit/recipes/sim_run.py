"""The steps of ``brainkit run sim`` (see :mod:`brainkit.recipes.sim`): pretrain or load the encoder, split,
train from scratch and from vsMAE, evaluate the three settings, occlude patches, write the report."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

from brainkit.config import from_dict, to_dict
from brainkit.evaluation.clip_retrieval import KINDS
from brainkit.recipes import RecipeOutput
from brainkit.recipes.sim import DIRECTIONS, INITS, SIMRecipeConfig, encoder_checkpoint, retrieval_rows
from brainkit.recipes.sim_eval import (
    correlation,
    occlusion_importance,
    patch_means,
    patches_to_vertices,
    retrieval_grid,
    retrieval_scores,
)
from brainkit.recipes.sim_fit import (
    BatchDraw,
    MovieArrays,
    embed_fmri,
    embed_stimuli,
    monitoring_set,
    train_sim,
)
from brainkit.recipes.sim_samples import (
    SETTINGS,
    check_dataset,
    choose_subjects,
    content_keys,
    samples_of,
    setting_segments,
    split_clips,
    standardise_features,
    usable_clips,
)

log = logging.getLogger(__name__)


def pretrained_encoder(config: SIMRecipeConfig, vsmae_config, folder: Path) -> tuple[Path, list[dict], str]:
    """(SiT checkpoint folder, vsMAE reconstruction rows or [], where it came from)."""
    if config.vsmae_checkpoint:
        return encoder_checkpoint(config.vsmae_checkpoint), [], f"loaded from {config.vsmae_checkpoint}"
    from brainkit.recipes.vsmae import VSMAERecipe

    out = folder / "vsmae"
    out.mkdir()
    output = VSMAERecipe().run(vsmae_config, out)
    return out / "checkpoints" / "sit_encoder", output.metrics["reconstruction"], "pretrained here (vsmae/)"


def build_sim(config: SIMRecipeConfig, encoder, video_dim: int, audio_dim: int):
    from brainkit.models.sim import SIM, SIMConfig

    options = {"encoder": to_dict(encoder), "video_dim": video_dim, "audio_dim": audio_dim, **config.model}
    return SIM(from_dict(SIMConfig, options, where="sim model"))


def run_sim(config: SIMRecipeConfig, folder: Path, data) -> RecipeOutput:
    from brainkit.models import count_parameters, save_model
    from brainkit.recipes.vsmae import build_vsmae
    from brainkit.surface import triangle_patches

    check_dataset(data)
    n_subjects, n_runs, n_frames_total, n_vertices = data.fmri.shape
    vsmae_config = dataclasses.replace(config.vsmae, fine_order=int(data.order), seed=config.seed)
    patches = np.asarray(triangle_patches(int(data.order), vsmae_config.coarse_order))
    encoder = build_vsmae(vsmae_config, *patches.shape).config.encoder
    n_frames = encoder.n_frames

    usable = usable_clips(data.segment_of, n_frames_total, data.lag, n_frames)
    clips = split_clips(data.segment_of, usable, config.gap_clips)
    groups = choose_subjects(n_subjects, config.n_test_subjects, config.seed)
    arrays = MovieArrays(np.asarray(data.fmri), patches, standardise_features(data.video, clips["train"]),
                         standardise_features(data.audio, clips["train"]), content_keys(data.retest),
                         int(data.lag), n_frames)  # fmt: skip
    draw_pool = samples_of(groups["test"], clips["train"])
    monitor_samples = monitoring_set(draw_pool, arrays.keys, config.fit.n_monitor, config.seed + 3)
    checkpoint, reconstruction, origin = (
        pretrained_encoder(config, vsmae_config, folder) if "vsmae" in config.inits else (None, [], "")
    )

    scores: dict[str, dict] = {}
    histories, importance, grids, n_parameters = {}, {}, {}, 0
    setting_samples = {
        name: samples_of(groups[who], clips[which]) for name, (_, who, which) in SETTINGS.items()
    }
    importance_samples = monitoring_set(
        setting_samples["unseen_both"], arrays.keys, config.n_importance, config.seed + 5
    )
    for init in config.inits:
        torch.manual_seed(config.seed)
        model = build_sim(config, encoder, data.video.shape[-1], data.audio.shape[-1])
        n_parameters = count_parameters(model)
        if init == "vsmae":
            model.init_encoder(checkpoint)
        draw = BatchDraw(arrays, groups["train"], clips["train"], config.seed + 1)
        history, seconds = train_sim(model, arrays, draw, config.fit, config.seed, monitor_samples,
                                     pretrained=init == "vsmae")  # fmt: skip
        histories[f"SIM {INITS[init]}"] = history
        save_model(folder / "checkpoints" / f"sim_{init}", model,
                   metadata={"init": init, "train_subjects": ",".join(data.subjects[i] for i in groups["train"])})  # fmt: skip
        stimulus = embed_stimuli(model, arrays)

        def predict(samples, model=model):  # one fMRI embedding for both directions
            embedding = embed_fmri(model, arrays, samples)
            return {"video": embedding, "audio": embedding}

        scores[init], predicted = score_settings(predict, stimulus, setting_samples, clips, data.segment_of,
                                                 config.seed + 17)  # fmt: skip
        grid = retrieval_grid(predicted["unseen_both"]["video"], setting_samples["unseen_both"], stimulus["video"],
                              setting_segments(data.segment_of, clips["held_out"]), data.thumbnails,
                              seed=config.seed)  # fmt: skip
        if grid is not None:
            grids[f"SIM {INITS[init]}"] = grid
        video = arrays.features(importance_samples)[0]
        importance[init] = occlusion_importance(model, arrays.clips(importance_samples), video)
        log.info("SIM %s: trained in %.0f s", init, seconds)

    methods = list(config.inits)
    if config.ridge_alpha is not None:
        scores["ridge"] = ridge_scores(config, arrays, data, groups, clips, setting_samples)
        methods.append("ridge")
    main, full = retrieval_rows(scores, methods)
    maps, correlations = importance_maps(importance, patches, data, n_vertices)
    context = {"data": data, "groups": groups, "clips": clips, "scores": scores, "origin": origin,
               "reconstruction": reconstruction, "n_parameters": n_parameters, "encoder": encoder,
               "importance_samples": len(importance_samples), "correlations": correlations}  # fmt: skip
    from brainkit.recipes.sim_report import notes_for, write_sim_report

    notes = notes_for(config, main, context)
    write_sim_report(folder, main, full, histories, grids, maps, data.cortex, notes, reconstruction)
    tables = {"SIM retrieval among 32 candidates: top-1 (fraction), mean and sd over subjects": main}
    metrics = {"main": main, "full": full, "histories": histories, "importance_correlation": correlations,
               "subjects": {k: [data.subjects[i] for i in v] for k, v in groups.items()},
               "n_clips": {k: int(v.sum()) for k, v in clips.items()}, "vsmae_reconstruction": reconstruction,
               "n_parameters": n_parameters}  # fmt: skip
    return RecipeOutput(tables, notes, metrics)


def score_settings(predict, stimulus: dict, setting_samples: dict, clips: dict, segment_of, seed: int):
    """Retrieval in every setting, kind and direction: ``predict(samples)`` -> ``{"video", "audio"}`` (n, d)
    compared with ``stimulus[direction]`` (n_runs, n_clips, d). Returns (scores, predictions per setting)."""
    scores, predictions = {}, {}
    for setting, (_, _, which) in SETTINGS.items():
        samples = setting_samples[setting]
        predicted = predictions[setting] = predict(samples)
        segments = setting_segments(segment_of, clips[which])
        for kind in KINDS:
            for direction in DIRECTIONS:
                per_subject, n_scored, n_left = retrieval_scores(
                    predicted[direction], samples, stimulus[direction], segments, kind, seed=seed
                )
                scores[(setting, kind, direction)] = {"per_subject": per_subject, "n_scored": n_scored,
                                                      "n_left": n_left}  # fmt: skip
    return scores, predictions


def ridge_scores(config: SIMRecipeConfig, arrays: MovieArrays, data, groups, clips, setting_samples) -> dict:
    """The ridge baseline's retrieval (same candidates as SIM's: the same seed)."""
    from brainkit.recipes.sim_baseline import RidgeBaseline

    baseline = RidgeBaseline(arrays, data.cortex, config.ridge_alpha)
    baseline.fit(samples_of(groups["train"], clips["train"]))
    stimulus = {"video": arrays.video, "audio": arrays.audio}
    return score_settings(
        baseline.predict, stimulus, setting_samples, clips, data.segment_of, config.seed + 17
    )[0]


def importance_maps(importance: dict[str, np.ndarray], patches: np.ndarray, data, n_vertices: int):
    """Vertex maps (title -> values) of each init's importance and the truth; their correlations."""
    truth = np.asarray(data.truth_map, dtype=float)
    truth_patches = patch_means(truth, patches, data.cortex)
    maps, correlations = {}, {}
    for init, values in importance.items():
        vertex = patches_to_vertices(values, patches, n_vertices)
        maps[f"importance, SIM {INITS[init]}"] = vertex
        correlations[init] = {
            "patches": correlation(values, truth_patches),
            "vertices": correlation(vertex[data.cortex], truth[data.cortex]),
        }
    maps["truth map (encoding strength)"] = truth
    return maps, correlations


__all__ = ["run_sim", "build_sim", "importance_maps", "pretrained_encoder"]
