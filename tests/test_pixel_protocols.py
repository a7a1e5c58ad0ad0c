"""PixCorr and SSIM: the field's reference definition (MindEye's NSD evaluation, src/Reconstruction_Metrics.py of
MedARC-AI/fMRI-reconstruction-NSD) and Vis-Dec's, pinned on small real photos against the steps of each written out
here with torch / scikit-image / numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity

from brainkit.errors import ConfigError
from brainkit.evaluation.pixels import REFERENCE_SIZE, pixel_metrics, reference_resize
from brainkit.evaluation.reconstruction import reconstruction_metrics
from brainkit.testing import photo_crops


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Four real 64 x 64 photos and, as reconstructions, noisy versions of them (uint8)."""
    real = photo_crops(1, 64)[:4]
    noise = np.random.default_rng(0).normal(0, 40, real.shape)
    return real, np.clip(real + noise, 0, 255).astype(np.uint8)[:, None]


def _mindeye_resize(images: np.ndarray) -> np.ndarray:
    """MindEye's two resizes, written here from its Reconstruction_Metrics.py: Resize((256, 256)) then Resize(425),
    bilinear on float tensors in [0, 1] (torchvision <= 0.16: no antialiasing for tensors)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
    x = F.interpolate(x, size=(425, 425), mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).double().numpy()


def test_reference_pixcorr_and_ssim_follow_mindeyes_steps(pairs) -> None:
    real, recon = pairs
    got = pixel_metrics(real, recon, protocol="reference")
    big_real, big_recon = _mindeye_resize(real), _mindeye_resize(recon[:, 0])
    assert big_real.shape == (4, 425, 425, 3)
    for i in range(4):
        gray_real, gray_recon = rgb2gray(big_real[i]), rgb2gray(big_recon[i])
        # MindEye's ssim(rec, im, multichannel=True, ...) on 2-D grayscale images: the columns are the channels,
        # so the score is the mean of one 1-D Gaussian SSIM per column
        columns = [
            structural_similarity(gray_recon[:, c], gray_real[:, c], gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=1.0)
            for c in range(425)
        ]  # fmt: skip
        assert got["ssim"][i, 0] == pytest.approx(np.mean(columns), abs=1e-9)
        two_d = structural_similarity(gray_recon, gray_real, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1.0)  # fmt: skip
        assert abs(got["ssim"][i, 0] - two_d) > 1e-3  # not the 2-D SSIM
        corr = np.corrcoef(big_real[i].ravel(), big_recon[i].ravel())[0, 1]
        assert got["pixel_corr"][i, 0] == pytest.approx(corr, abs=1e-9)
    mse = ((real / 255.0 - recon[:, 0] / 255.0) ** 2).reshape(4, -1).mean(1)  # unresized in both protocols
    np.testing.assert_allclose(got["mse"][:, 0], mse)


def test_images_go_through_256_px_first() -> None:
    """A 425 px image is resized to 256 and back (MindEye's all_images are 256 x 256); a 256 px image only up."""
    image = photo_crops(1, REFERENCE_SIZE)[:1]
    through = reference_resize(image)
    assert not np.allclose(through, image / 255.0, atol=1e-3)  # the 256 step loses detail
    np.testing.assert_allclose(through, _mindeye_resize(image), atol=1e-7)
    small = photo_crops(1, 256)[:1]
    up = F.interpolate(
        torch.from_numpy(small).permute(0, 3, 1, 2).float() / 255, size=(425, 425), mode="bilinear"
    )
    np.testing.assert_allclose(reference_resize(small), up.permute(0, 2, 3, 1).double().numpy(), atol=1e-7)


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
