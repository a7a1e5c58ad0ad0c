"""Pixel-level image comparison for the reconstruction metrics: resizing, pixel correlation, SSIM, MSE.

Two protocols (``pixel_metrics(..., protocol=)``):

- ``"reference"`` (default): the field's reference evaluation, as MindEye / MindEye2's final evaluations (and
  Brain-Diffuser before them) compute PixCorr and SSIM on NSD. Both images as floats in [0, 1] are resized to
  ``REFERENCE_SIZE`` (425) px, bilinear with antialiasing and not rounded (torchvision's ``Resize(425)`` on
  tensors); PixCorr is the Pearson correlation of all RGB values of the resized pair; SSIM is scikit-image's
  ``structural_similarity`` of the two grayscale images (``skimage.color.rgb2gray``) with a Gaussian window
  (``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``) at ``data_range=1.0``.
- ``"vis_dec"``: what Vis-Dec's ``eval_metrics.py`` computes (METHODS.md 4.5): no resize, PixCorr of the uint8
  values, SSIM ``structural_similarity(real, recon, data_range=255, channel_axis=-1)`` on uint8 RGB: 7 x 7
  uniform windows, the SSIM of each channel averaged. Its numbers are higher or lower than the reference's on
  the same images (0.263 vs 0.331 on one measured set), so they are comparable only with Vis-Dec's table.

MSE is the same in both: the mean squared difference of the unresized pixel values scaled to [0, 1].
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


PROTOCOLS = ("reference", "vis_dec")
REFERENCE_SIZE = 425  # px: NSD's stimulus size, to which MindEye's evaluation resizes both images


def float_resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (n, h, w, 3) -> float64 (n, size, size, 3) in [0, 1]: bilinear with antialiasing, not rounded
    (``torch.nn.functional.interpolate(..., antialias=True)``, what torchvision's ``Resize`` runs on tensors)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    return x.permute(0, 2, 3, 1).double().numpy()


def _correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation over the last axis of x (n, 1, d) and y (n, k, d) -> (n, k); a constant image counts 0."""
    xc, yc = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    denominator = np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))
    numerator = (xc * yc).sum(-1)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 1e-12)


def pixel_metrics(real: np.ndarray, recon: np.ndarray, protocol: str = "reference") -> dict[str, np.ndarray]:
    """Per-pair pixel correlation, SSIM and MSE: real uint8 (n, H, W, 3), recon uint8 (n, k, H, W, 3) -> (n, k)
    each; ``protocol`` as in the module docstring."""
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    if protocol not in PROTOCOLS:
        raise ValueError(f"pixel protocol {protocol!r} is not one of {PROTOCOLS}")
    n, k = recon.shape[:2]
    x = real.reshape(n, 1, -1).astype(np.float64) / 255.0
    y = recon.reshape(n, k, -1).astype(np.float64) / 255.0
    mse = ((x - y) ** 2).mean(-1)
    ssim = np.empty((n, k))
    if protocol == "vis_dec":
        corr = _correlation(x, y)
        for i in range(n):
            for s in range(k):
                ssim[i, s] = structural_similarity(real[i], recon[i, s], data_range=255, channel_axis=-1)
        return {"pixel_corr": corr, "ssim": ssim, "mse": mse}
    big_real = float_resize(real, REFERENCE_SIZE)
    big_recon = float_resize(recon.reshape(n * k, *recon.shape[2:]), REFERENCE_SIZE).reshape(
        n, k, REFERENCE_SIZE, REFERENCE_SIZE, 3
    )
    corr = _correlation(big_real.reshape(n, 1, -1), big_recon.reshape(n, k, -1))
    for i in range(n):
        gray = rgb2gray(big_real[i])
        for s in range(k):
            ssim[i, s] = structural_similarity(
                rgb2gray(big_recon[i, s]),
                gray,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=1.0,
            )
    return {"pixel_corr": corr, "ssim": ssim, "mse": mse}
