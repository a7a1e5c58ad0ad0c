"""Pixel-level image comparison for the reconstruction metrics: resizing, pixel correlation, SSIM, MSE.

Two protocols (``pixel_metrics(..., protocol=)``):

- ``"reference"`` (default): the field's reference evaluation, as MindEye's ``Reconstruction_Metrics.py`` and
  MindEye2's ``final_evaluations.ipynb`` compute PixCorr and SSIM on NSD. Both images, as floats in [0, 1], are
  first resized to ``EVAL_SIZE`` x ``EVAL_SIZE`` (256; ``transforms.Resize((256, 256))`` on tensors), then to
  ``REFERENCE_SIZE`` (425, ``transforms.Resize(425, BILINEAR)``): bilinear, ``align_corners=False``, no
  antialiasing (what torchvision's ``Resize`` does to tensors in the versions MindEye pins, 0.15.2 / 0.16.0) and
  not rounded. PixCorr is the Pearson correlation of all RGB values of the resized pair. SSIM is MindEye's call
  ``structural_similarity(rgb2gray(recon), rgb2gray(real), multichannel=True, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1.0)``: on a 2-D grayscale image ``multichannel=True`` (today's
  ``channel_axis=-1``) makes scikit-image treat each of the 425 columns as a channel, so the score is the mean of
  425 one-dimensional Gaussian SSIMs down the columns, not the 2-D SSIM (0.779 vs 0.821 on one noisy pair);
  brainkit computes what that call computes.
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
EVAL_SIZE = 256  # px: MindEye resizes both image sets to 256 x 256 before any metric
REFERENCE_SIZE = 425  # px: NSD's stimulus size, to which MindEye's PixCorr and SSIM then resize both images


def reference_resize(images: np.ndarray) -> np.ndarray:
    """uint8 (n, h, w, 3) -> float64 (n, 425, 425, 3) in [0, 1]: MindEye's two bilinear resizes (to 256 x 256,
    then 425), ``align_corners=False``, no antialiasing, not rounded (float32 arithmetic, as its tensors)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    for size in (EVAL_SIZE, REFERENCE_SIZE):
        if x.shape[-2:] != (size, size):
            x = torch.nn.functional.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=False
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
    big_real = reference_resize(real)
    big_recon = reference_resize(recon.reshape(n * k, *recon.shape[2:])).reshape(
        n, k, REFERENCE_SIZE, REFERENCE_SIZE, 3
    )
    corr = _correlation(big_real.reshape(n, 1, -1), big_recon.reshape(n, k, -1))
    for i in range(n):
        gray = rgb2gray(big_real[i])
        for s in range(k):
            ssim[i, s] = column_ssim(rgb2gray(big_recon[i, s]), gray)
    return {"pixel_corr": corr, "ssim": ssim, "mse": mse}


def column_ssim(recon: np.ndarray, real: np.ndarray, sigma: float = 1.5, truncate: float = 3.5) -> float:
    """MindEye's ``structural_similarity(recon, real, multichannel=True, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1.0)`` on two 2-D grayscale images, vectorised: scikit-image reads
    each column as a channel, so every column gets a 1-D SSIM (Gaussian window, ``mode="reflect"``, the first and
    last ``(win - 1) // 2`` samples cropped, win = 2 * int(truncate * sigma + 0.5) + 1 = 11) and the columns are
    averaged. Equal to scikit-image's loop over the columns to 1e-15 (tests/test_pixel_protocols.py), ~8x faster."""
    from scipy.ndimage import gaussian_filter1d

    x, y = np.asarray(recon, dtype=np.float64), np.asarray(real, dtype=np.float64)
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2  # K1, K2 at data_range 1

    def smooth(a: np.ndarray) -> np.ndarray:
        return gaussian_filter1d(a, sigma, axis=0, mode="reflect", truncate=truncate)

    ux, uy = smooth(x), smooth(y)
    vx, vy, vxy = smooth(x * x) - ux * ux, smooth(y * y) - uy * uy, smooth(x * y) - ux * uy
    s_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = int(truncate * sigma + 0.5)
    return float(s_map[pad:-pad].mean())
