"""Pixel-level image comparison for the reconstruction metrics: resizing, pixel correlation, SSIM, MSE.

SSIM is scikit-image's ``structural_similarity`` with ``data_range=255`` and ``channel_axis=-1`` on the uint8
RGB images, as Vis-Dec's ``eval_metrics.py`` calls it (METHODS.md 4.5): 7 x 7 uniform windows, the SSIM of each
channel averaged.
"""

from __future__ import annotations

import numpy as np


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (n, h, w, 3) -> uint8 (n, size, size, 3): bilinear with antialiasing, rounded."""
    if images.shape[1:3] == (size, size):
        return images
    import torch

    from brainkit.stimuli.encoders import _resize_batch

    resized = _resize_batch(images, size).round().clamp(0, 255).to(torch.uint8)
    return resized.permute(0, 2, 3, 1).numpy()


def pixel_metrics(real: np.ndarray, recon: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pair pixel correlation, SSIM and MSE: real uint8 (n, H, W, 3), recon uint8 (n, k, H, W, 3) -> (n, k) each."""
    from skimage.metrics import structural_similarity

    n, k = recon.shape[:2]
    x = real.reshape(n, 1, -1).astype(np.float64) / 255.0
    y = recon.reshape(n, k, -1).astype(np.float64) / 255.0
    xc, yc = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    denominator = np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))
    numerator = (xc * yc).sum(-1)
    corr = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 1e-12)
    mse = ((x - y) ** 2).mean(-1)
    ssim = np.empty((n, k))
    for i in range(n):
        for s in range(k):
            ssim[i, s] = structural_similarity(real[i], recon[i, s], data_range=255, channel_axis=-1)
    return {"pixel_corr": corr, "ssim": ssim, "mse": mse}
