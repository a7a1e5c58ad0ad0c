"""PixCorr and SSIM: the field's reference definition (MindEye's NSD evaluation) and Vis-Dec's, pinned on
small real photos against scikit-image / numpy computed here with each definition's documented parameters."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity

from brainkit.errors import ConfigError
from brainkit.evaluation.pixels import REFERENCE_SIZE, float_resize, pixel_metrics
from brainkit.evaluation.reconstruction import reconstruction_metrics
from brainkit.testing import photo_crops


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Four real 64 x 64 photos and, as reconstructions, noisy versions of them (uint8)."""
    real = photo_crops(1, 64)[:4]
    noise = np.random.default_rng(0).normal(0, 40, real.shape)
    return real, np.clip(real + noise, 0, 255).astype(np.uint8)[:, None]


def test_reference_ssim_is_gray_gaussian_at_425_px_and_pixcorr_after_the_same_resize(pairs) -> None:
    real, recon = pairs
    got = pixel_metrics(real, recon, protocol="reference")
    big_real, big_recon = float_resize(real, REFERENCE_SIZE), float_resize(recon[:, 0], REFERENCE_SIZE)
    assert big_real.shape == (4, 425, 425, 3) and big_real.dtype == np.float64
    for i in range(4):
        ssim = structural_similarity(
            rgb2gray(big_recon[i]), rgb2gray(big_real[i]), gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0,
        )  # fmt: skip
        assert got["ssim"][i, 0] == pytest.approx(ssim, abs=1e-9)
        corr = np.corrcoef(big_real[i].ravel(), big_recon[i].ravel())[0, 1]
        assert got["pixel_corr"][i, 0] == pytest.approx(corr, abs=1e-9)
    mse = ((real / 255.0 - recon[:, 0] / 255.0) ** 2).reshape(4, -1).mean(1)  # unresized in both protocols
    np.testing.assert_allclose(got["mse"][:, 0], mse)


def test_an_image_of_425_px_is_not_resized() -> None:
    image = photo_crops(1, REFERENCE_SIZE)[:1]
    np.testing.assert_allclose(
        float_resize(image, REFERENCE_SIZE), image / 255.0, atol=1e-7
    )  # float32 like the reference's tensors


def test_vis_dec_protocol_is_rgb_uniform_7x7_at_255_and_differs_from_the_reference(pairs) -> None:
    real, recon = pairs
    vis_dec = pixel_metrics(real, recon, protocol="vis_dec")
    reference = pixel_metrics(real, recon, protocol="reference")
    for i in range(4):
        ssim = structural_similarity(real[i], recon[i, 0], data_range=255, channel_axis=-1)
        assert vis_dec["ssim"][i, 0] == pytest.approx(ssim, abs=1e-12)
        corr = np.corrcoef(real[i].ravel().astype(float), recon[i, 0].ravel().astype(float))[0, 1]
        assert vis_dec["pixel_corr"][i, 0] == pytest.approx(corr, abs=1e-9)
    assert (
        np.abs(vis_dec["ssim"] - reference["ssim"]).min() > 0.01
    )  # the two definitions are not the same number


def test_the_suite_takes_the_protocol_by_name(pairs) -> None:
    real, recon = pairs
    options = dict(n_way=(2,), trials=5, feature_layers=(), semantic=False)
    ours = reconstruction_metrics(real, recon, pixels="vis_dec", **options)
    assert ours["ssim"] == pytest.approx(pixel_metrics(real, recon, protocol="vis_dec")["ssim"].mean())
    default = reconstruction_metrics(real, recon, **options)
    assert default["ssim"] == pytest.approx(pixel_metrics(real, recon)["ssim"].mean())
    with pytest.raises(ConfigError, match="Unknown pixel protocol 'rgb'"):
        reconstruction_metrics(real, recon, pixels="rgb", **options)
