"""Figures for the BrainMAE report: ROI embeddings by network, the learned attention graph beside real
connectivity, and masked-signal reconstructions against the truth. Each returns a Figure and, where a number
summarises it, a sentence with that number."""

from __future__ import annotations

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
        f"ROI embeddings of {name}: k-means with {len(names)} clusters agrees with the Yeo-7 networks at adjusted "
        f"Rand index {ari:.2f} (0 = chance, 1 = identical)."
    )
    return figure, text


def attention_figure(
    model, networks: list[str], real_fc: np.ndarray, sample: np.ndarray, name: str
) -> tuple[Figure, str]:
    """The attention graph (rows: ROIs attending, ordered by network) beside the real group connectivity."""
    import torch
    from scipy.stats import spearmanr

    attention = model.attention_graph(torch.as_tensor(sample)).numpy()
    order = np.argsort(np.array(networks), kind="stable")
    symmetric = (attention + attention.T) / 2
    rows, cols = np.triu_indices(len(networks), k=1)
    rho = float(spearmanr(symmetric[rows, cols], real_fc[rows, cols])[0])
    figure = Figure(figsize=(11, 5))
    for index, (matrix, title) in enumerate(
        ((attention, f"{name} attention"), (real_fc, "real HCP group FC"))
    ):
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
        f"Attention of {name} (block 1, averaged over heads, symmetrised) correlates with the real HCP group "
        f"connectivity at Spearman rho {rho:.2f} over the {len(rows)} ROI pairs."
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
