"""The BrainMAE report: ROI embeddings by network, the learned attention graph beside real connectivity,
masked-signal reconstructions against the truth (each figure with a sentence giving its number), plain-sentence
comparisons with the simple fills and the connectivity baseline, and the HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

NETWORK_COLOURS = {
    "Visual": "#781286",
    "Somatomotor": "#4682b4",
    "Dorsal Attention": "#00760e",
    "Ventral Attention": "#c43afa",
    "Limbic": "#dcf8a4",
    "Frontoparietal": "#e69422",
    "Default": "#cd3e4e",
}


def embedding_figure(model, networks: list[str], name: str) -> tuple[Figure, str]:
    """PCA of the learned ROI embeddings coloured by network; k-means clusters compared with the networks (ARI)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score

    embedding = model.encoder.roi_embedding.detach().numpy()
    points = PCA(n_components=2, random_state=0).fit_transform(embedding)
    names = sorted(set(networks))
    clusters = KMeans(n_clusters=len(names), n_init=10, random_state=0).fit_predict(embedding)
    ari = adjusted_rand_score(networks, clusters)
    figure = Figure(figsize=(6.5, 5))
    axis = figure.add_subplot()
    for network in names:
        rows = np.array([n == network for n in networks])
        axis.scatter(
            points[rows, 0],
            points[rows, 1],
            s=28,
            label=network,
            c=NETWORK_COLOURS.get(network, "#777"),
            edgecolors="k",
            linewidths=0.3,
        )
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.set_title(f"{name}: ROI embeddings (k-means vs networks: ARI {ari:.2f})")
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    text = (
        f"ROI embeddings of {name}: k-means with {len(names)} clusters agrees with the ROIs' networks at adjusted "
        f"Rand index {ari:.2f} (0 = chance, 1 = identical)."
    )
    return figure, text


def attention_figure(
    model, networks: list[str], real_fc: np.ndarray, sample: np.ndarray, name: str,
    reference: str = "real HCP group FC",
) -> tuple[Figure, str]:  # fmt: skip
    """The attention graph (rows: ROIs attending, ordered by network) beside a group connectivity
    (``reference``: what it is)."""
    import torch
    from scipy.stats import spearmanr

    attention = model.attention_graph(torch.as_tensor(sample)).numpy()
    order = np.argsort(np.array(networks), kind="stable")
    symmetric = (attention + attention.T) / 2
    rows, cols = np.triu_indices(len(networks), k=1)
    rho = float(spearmanr(symmetric[rows, cols], real_fc[rows, cols])[0])
    figure = Figure(figsize=(11, 5))
    for index, (matrix, title) in enumerate(((attention, f"{name} attention"), (real_fc, reference))):
        axis = figure.add_subplot(1, 2, index + 1)
        shown = matrix[np.ix_(order, order)].copy()
        np.fill_diagonal(shown, np.nan)
        image = axis.imshow(shown, cmap="viridis" if index == 0 else "RdBu_r", interpolation="nearest")
        figure.colorbar(image, ax=axis, fraction=0.046)
        ticks, labels = [], []
        sorted_networks = np.array(networks)[order]
        for network in dict.fromkeys(sorted_networks):
            where = np.nonzero(sorted_networks == network)[0]
            ticks.append(where.mean())
            labels.append(network)
        axis.set_yticks(ticks, labels, fontsize=7)
        axis.set_xticks([])
        axis.set_title(title)
    figure.tight_layout()
    text = (
        f"Attention of {name} (block 1, averaged over heads, symmetrised) correlates with the {reference} at "
        f"Spearman rho {rho:.2f} over the {len(rows)} ROI pairs."
    )
    return figure, text


def reconstruction_figure(examples: dict[str, dict], n_rois: int = 3) -> Figure:
    """For each data source: a few ROIs' signals, hidden segments shaded, truth vs BrainMAE vs interpolation."""
    figure = Figure(figsize=(12, 2.2 * n_rois * len(examples)))
    panel = 0
    for source, example in examples.items():
        truth, mask, frames = example["truth"], example["mask"], example["frames"]
        fills = example["fills"]
        model_name = next(k for k in fills if k not in ("ROI mean", "temporal interpolation"))
        hidden_counts = mask.sum(axis=0)
        for roi in np.argsort(-hidden_counts)[:n_rois]:
            panel += 1
            axis = figure.add_subplot(n_rois * len(examples), 1, panel)
            for segment in np.nonzero(mask[:, roi])[0]:
                axis.axvspan(segment * frames, (segment + 1) * frames, color="#eee")
            axis.plot(truth[:, roi], color="k", lw=1.2, label="truth")
            axis.plot(fills[model_name][:, roi], color="#d7301f", lw=1.0, label=model_name)
            axis.plot(
                fills["temporal interpolation"][:, roi],
                color="#3182bd",
                lw=0.8,
                ls="--",
                label="temporal interpolation",
            )
            axis.set_ylabel(f"ROI {roi}", fontsize=8)
            axis.set_title(f"{source}: hidden segments shaded", fontsize=9, loc="left")
            if panel == 1:
                axis.legend(fontsize=7, loc="upper right", ncol=3)
    axis.set_xlabel("frame")
    figure.tight_layout()
    return figure


def comparison_notes(config: Any, reconstruction: list[dict], table: list[dict]) -> list[str]:
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
        keys = [f"{n} r" for n in config.regression_targets] + [
            f"{n} AUROC" for n in config.classification_targets
        ]
        for key in keys + (["state accuracy"] if config.states else []):
            diff = row[key] - baseline[key]
            parts.append(f"{key} {row[key]:.3f} ({'+' if diff >= 0 else ''}{diff:.3f} vs FC)")
        notes.append(f"{row['method']}: " + ", ".join(parts) + ".")
    return notes


def report(
    config: Any,
    folder: Path,
    cohort: Any,
    models: dict,
    histories: dict,
    reconstruction: list[dict],
    table: list[dict],
    examples: dict,
) -> list[str]:
    """Write ``folder/report.html`` (tables, curves, the three figures) and return its notes."""
    from brainkit.data.readers.roi_timeseries import hcp_connectomes
    from brainkit.data.timeseries import connectivity, windows
    from brainkit.report.html import write_report

    notes = comparison_notes(config, reconstruction, table)
    figures = {}
    base = "SG-BrainMAE" if "SG-BrainMAE" in models else next(iter(models))
    if cohort.networks is not None:
        figure, text = embedding_figure(models[base], cohort.networks, base)
        figures[f"ROI embeddings of {base} (PCA), coloured by network"] = figure
        notes.append(text)
    rest = cohort.runs_of("rest")
    frames = models[base].config.segment_frames * min(4, config.n_segments)
    sample = windows(next(r for r in rest if r.n_times >= frames).values, frames, 10**9)
    if config.data == "hcp_cohort":
        group, reference = hcp_connectomes(100)["group"], "real HCP group FC"
    else:  # your cohort: its own group connectivity (the mean over its rest runs)
        group, reference = (
            np.mean([connectivity(r.values) for r in rest], axis=0),
            f"mean rest FC of {config.data}",
        )
    networks = cohort.networks or ["(no network labels)"] * len(cohort.roi_names)
    figure, text = attention_figure(models[base], networks, group, sample, base, reference)
    figures[f"Learned attention of {base} (block 1) beside the {reference}"] = figure
    notes.append(text)
    figures["Masked-signal reconstruction on held-out data"] = reconstruction_figure(examples)
    notes.append(
        f"Data: {cohort.info['summary']}; the first {config.n_pretrain_subjects} subjects pretrain, the other "
        f"{len(cohort.subjects) - config.n_pretrain_subjects} are only used downstream. Real runs: "
        + (
            ", ".join(config.real_sources)
            + f" (pretrained on the first {round(100 * config.real_train_fraction)}% of frames)."
            if config.real_sources
            else "none (real_sources=[])."
        )
    )
    write_report(
        folder / "report.html",
        title="brainkit: BrainMAE on real ROI time series and the built-in HCP-like cohort"
        if config.data == "hcp_cohort"
        else f"brainkit: BrainMAE on your ROI time series ({config.data})",
        table=table,
        curves={
            name: [{k: v for k, v in r.items() if k not in ("step", "seconds")} for r in history]
            for name, history in histories.items()
        },  # fmt: skip
        retrieval={},
        notes=notes,
        figures=figures,
        tables={"Masked reconstruction on held-out data (MSE of hidden tokens)": reconstruction},
    )
    return notes
