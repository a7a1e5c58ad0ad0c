"""The BrainMAE recipe's steps: real-data reconstruction, transient-state windows, downstream tables, report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.config import from_dict, to_dict
from brainkit.data.timeseries import connectivity, fisher_z, segment_frames, upper_triangle, windows
from brainkit.errors import ConfigError
from brainkit.evaluation.downstream import (
    cross_validate,
    roi_mean_fill,
    temporal_interpolation_fill,
    token_mse,
)
from brainkit.objectives.masked import random_mask
from brainkit.pretraining import pretrain_masked
from brainkit.training import TrainingConfig

log = logging.getLogger(__name__)
HRF_DELAY_SECONDS = 5.0  # task labels are shifted by this much before windows are labelled


def _reconstruct(model, x: np.ndarray, mask: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(x), mask).numpy()


def evaluate_masked(
    models: dict[str, Any], x: np.ndarray, frames: int, config, source: str
) -> tuple[list[dict], dict]:
    """Hidden-token MSE of each model and of the two simple fills, over ``n_eval_masks`` seeded masks."""
    generator = torch.Generator().manual_seed(config.seed + 99)
    scores: dict[str, list[float]] = {name: [] for name in models} | {
        "ROI mean": [],
        "temporal interpolation": [],
    }
    example = {}
    for draw in range(config.n_eval_masks):
        mask = random_mask(
            len(x), x.shape[1] // frames, x.shape[2], config.masking.eval_mask_ratio, generator
        )
        fills = {name: _reconstruct(model, x, mask) for name, model in models.items()}
        fills["ROI mean"] = roi_mean_fill(x, mask, frames)
        fills["temporal interpolation"] = temporal_interpolation_fill(x, mask, frames)
        for name, filled in fills.items():
            scores[name].append(token_mse(filled, x, mask, frames))
        if draw == 0:
            example = {
                "truth": x[0],
                "mask": mask[0].numpy(),
                "fills": {k: v[0] for k, v in fills.items()},
                "frames": frames,
            }
    for name, values in scores.items():
        log.info("%s: %s hidden-token MSE %.4f +- %.4f", source, name, np.mean(values), np.std(values))
    rows = [
        {
            "data": source,
            "method": name,
            "masked_mse_mean": float(np.mean(v)),
            "masked_mse_sd": float(np.std(v)),
        }
        for name, v in scores.items()
    ]
    return rows, example


def _real_series(name: str):
    from brainkit.data.readers import roi_timeseries as real

    return {"brainspace_dk": real.brainspace_rest_dk, "nitime": real.nitime_rest}[name]()


def real_reconstruction(config, cohort_models: dict, held_out: np.ndarray, frames: int, folder: Path):
    """Masked reconstruction: cohort models on unseen subjects, and a model pretrained on each REAL run's first
    frames judged on its last ones."""
    from brainkit.models import save_model
    from brainkit.recipes.brain_mae import build_variant

    rows, example = evaluate_masked(cohort_models, held_out, frames, config, "hcp_cohort (unseen subjects)")
    examples = {"hcp_cohort": example}
    base = "SG-BrainMAE" if "SG-BrainMAE" in config.variants else config.variants[0]
    training = from_dict(TrainingConfig, {**to_dict(config.training), "epochs": config.real_epochs})
    for source in config.real_sources:
        series = _real_series(source)
        real_frames = segment_frames(series.tr, config.segment_seconds)
        n_train = int(config.real_train_fraction * series.n_times)
        train = windows(series.values[:n_train], real_frames * config.real_segments, max(1, real_frames // 2))
        test = series.values[n_train:]
        test = test[: len(test) // real_frames * real_frames][None]
        model, masking = build_variant(base, config, series.n_rois, real_frames)
        result = pretrain_masked(model, train, training, masking)
        log.info("%s on %s: pretrained in %.0f s on %d windows", base, source, result.seconds, len(train))
        source_rows, examples[source] = evaluate_masked(
            {base: model},
            test,
            real_frames,
            config,
            f"{source} (real, last {100 - round(100 * config.real_train_fraction)}% of frames)",
        )
        rows += source_rows
        save_model(
            folder / "checkpoints" / f"real_{source}", model, metadata={"variant": base, "data": source}
        )
    return rows, examples


@dataclass
class StateWindows:
    padded: np.ndarray  # (n, segment_frames, n_rois): the window centred in one segment, zeros around it
    raw: np.ndarray  # (n, window_frames, n_rois)
    labels: np.ndarray  # (n,) state names
    groups: np.ndarray  # (n,) subjects
    n_dropped: int  # windows that straddle a state change (after the HRF shift), left out


def transient_windows(cohort, subjects: list[str], frames: int, seconds: float) -> StateWindows:
    """Non-overlapping ``seconds`` windows of the task runs, labelled by the state ``HRF_DELAY_SECONDS`` earlier."""
    width = max(2, int(round(seconds / cohort.tr)))
    if width > frames:
        raise ConfigError(
            f"transient_seconds={seconds} gives {width}-frame windows, longer than a {frames}-frame segment; "
            "use a transient_seconds at most segment_seconds."
        )
    delay = int(round(HRF_DELAY_SECONDS / cohort.tr))
    padded, raw, labels, groups, dropped = [], [], [], [], 0
    left = (frames - width) // 2
    for run in cohort.runs_of("task", subjects):
        for start in range(delay, run.n_times - width + 1, width):
            states = set(run.states[start - delay : start - delay + width])
            if len(states) != 1:
                dropped += 1
                continue
            window = run.values[start : start + width]
            block = np.zeros((frames, run.n_rois), dtype=np.float32)
            block[left : left + width] = window
            padded.append(block)
            raw.append(window)
            labels.append(states.pop())
            groups.append(run.subject)
    return StateWindows(np.stack(padded), np.stack(raw), np.array(labels), np.array(groups), dropped)


def _fc_window_features(raw: np.ndarray) -> np.ndarray:
    """The connectivity baseline for a short window: its mean activity and its correlation edges."""
    return np.stack(
        [np.concatenate([w.mean(axis=0), upper_triangle(fisher_z(connectivity(w)))]) for w in raw]
    )


def downstream_tables(
    config,
    cohort,
    subjects,
    features: dict,
    fc: np.ndarray,
    states: StateWindows,
    state_features: dict,
    finetune=None,
) -> list[dict]:
    """One row per method: age and behaviour regression, sex and transient-state classification.

    ``features[name]`` (n_subjects, n_features) and ``state_features[name]`` (n_windows, n_features) are frozen
    features; ``finetune`` = (pretrained model, one window per subject) adds a fine-tuned row.
    """
    from brainkit.evaluation.downstream import ridge_head

    groups = np.array(subjects)
    targets = {name: cohort.phenotype(name, subjects) for name in ("age", "behaviour", "sex")}
    methods = {name: (f, state_features[name], ridge_head, ridge_head) for name, f in features.items()}
    if finetune is not None:
        from brainkit.finetuning import FinetuneHead

        model, subject_windows = finetune
        training = from_dict(
            TrainingConfig,
            {
                **to_dict(config.training),
                "epochs": config.finetune_epochs,
                "lr": config.finetune_lr,
                "warmup_epochs": 0.0,
            },
        )
        methods[f"{config.finetune_variant} (fine-tuned)"] = (
            subject_windows,
            states.padded,
            FinetuneHead(model, training, readout="token_connectivity"),  # the frozen rows' readouts
            FinetuneHead(model, training, readout="features"),
        )
    methods["static FC + linear (baseline)"] = (fc, _fc_window_features(states.raw), ridge_head, ridge_head)
    rows = []
    for method, (subject_x, state_x, head, state_head) in methods.items():
        row: dict[str, Any] = {"method": method, "features": int(np.prod(subject_x.shape[1:]))}
        for name in ("age", "behaviour"):
            m = cross_validate(
                subject_x, targets[name], groups, "regression", config.n_folds, config.seed, head
            )
            row |= {f"{name} MAE": m["mae"], f"{name} MAE_chance": m["mae_chance"], f"{name} r": m["r"]}
        m = cross_validate(
            subject_x, targets["sex"], groups, "classification", config.n_folds, config.seed, head
        )
        row |= {
            "sex accuracy": m["accuracy"],
            "sex accuracy_chance": m["accuracy_chance"],
            "sex AUROC": m["auroc"],
        }
        m = cross_validate(
            state_x, states.labels, states.groups, "classification", config.n_folds, config.seed, state_head
        )
        row |= {
            "state accuracy": m["accuracy"],
            "state accuracy_chance": m["accuracy_chance"],
            "state AUROC": m["auroc"],
        }
        rows.append(row)
        log.info("downstream %s: %s", method, row)
    return rows


def comparison_notes(
    config, reconstruction: list[dict], table: list[dict], states: int | None = None
) -> list[str]:
    """Plain sentences with this run's numbers: reconstruction vs the fills, BrainMAE vs the FC baseline."""
    notes = []
    by_data: dict[str, dict[str, float]] = {}
    for row in reconstruction:
        by_data.setdefault(row["data"], {})[row["method"]] = row["masked_mse_mean"]
    for data, scores in by_data.items():
        fills = {k: scores[k] for k in ("ROI mean", "temporal interpolation")}
        best_fill = min(fills, key=fills.get)
        for name, value in scores.items():
            if name in fills:
                continue
            verdict = "beats" if value < fills[best_fill] else "does NOT beat"
            notes.append(
                f"{data}: {name} hidden-token MSE {value:.3f} {verdict} the best simple fill ({best_fill}, "
                f"{fills[best_fill]:.3f}; the other {max(fills.values()):.3f}), mask ratio {config.masking.eval_mask_ratio}."
            )
    baseline = next(r for r in table if r["method"].startswith("static FC"))
    for row in table:
        if row is baseline:
            continue
        parts = []
        for key in ("age r", "behaviour r", "sex AUROC", "state accuracy"):
            diff = row[key] - baseline[key]
            parts.append(f"{key} {row[key]:.3f} ({'+' if diff >= 0 else ''}{diff:.3f} vs FC)")
        notes.append(f"{row['method']}: " + ", ".join(parts) + ".")
    return notes


def report(
    config,
    folder: Path,
    cohort,
    models: dict,
    histories: dict,
    reconstruction: list[dict],
    table: list[dict],
    examples: dict,
) -> list[str]:
    from brainkit.report.brain_mae_figures import attention_figure, embedding_figure, reconstruction_figure
    from brainkit.report.html import write_report

    notes = comparison_notes(config, reconstruction, table)
    figures = {}
    base = "SG-BrainMAE" if "SG-BrainMAE" in models else next(iter(models))
    figure, text = embedding_figure(models[base], cohort.networks, base)
    figures[f"ROI embeddings of {base} (PCA), coloured by Yeo-7 network"] = figure
    notes.append(text)
    from brainkit.data.readers.roi_timeseries import hcp_connectomes

    sample = windows(cohort.runs_of("rest")[0].values, models[base].config.segment_frames * 4, 10**9)
    figure, text = attention_figure(
        models[base], cohort.networks, hcp_connectomes(100)["group"], sample, base
    )
    figures[f"Learned attention of {base} (block 1) beside the real HCP group connectivity"] = figure
    notes.append(text)
    figures["Masked-signal reconstruction on held-out data"] = reconstruction_figure(examples)
    notes.append(
        f"Data: {cohort.info['summary']}; the first {config.n_pretrain_subjects} subjects pretrain, the other "
        f"{len(cohort.subjects) - config.n_pretrain_subjects} are only used downstream. Real runs: "
        + ", ".join(config.real_sources)
        + f" (pretrained on the first {round(100 * config.real_train_fraction)}% of frames)."
    )
    write_report(
        folder / "report.html",
        title="brainkit: BrainMAE on real ROI time series and the built-in HCP-like cohort",
        table=table,
        curves=histories,
        retrieval={},
        notes=notes,
        figures=figures,
        tables={"Masked reconstruction on held-out data (MSE of hidden tokens)": reconstruction},
    )
    return notes
