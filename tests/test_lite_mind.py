"""Lite-Mind specifics: the frequency blocks against direct formulas, parameter counts against the released
code, configuration errors, and a short run that learns."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from brainkit.errors import ConfigError
from brainkit.models import build_model, count_parameters, model_config
from brainkit.models.lite_mind import FrequencyMLP, GlobalFilter

RELEASED_SUBJ01 = 15_657_859  # METHODS.md 3.2, computed from the released src/dft_backbone.py


def paper_model(**options) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model("lite_mind", model_config("lite_mind", "nsd_subj01", options))


def test_paper_preset_counts_against_released_code() -> None:
    full, diagonal = paper_model(), paper_model(fremlp="diagonal")
    assert count_parameters(full) == 15_654_271
    assert count_parameters(diagonal) == 12_710_783
    # Released layout: no padding (34 patches, not 35), and each FreMLP also stores an unused (1, dim) vector.
    released_layout = paper_model(voxel_remainder="drop")
    assert released_layout.n_patches == 34 and full.n_patches == 35
    unused = sum(block.fremlp.bias_real.numel() for stage in released_layout.stages for block in stage)
    assert count_parameters(released_layout) + unused == RELEASED_SUBJ01
    # The diagonal FreMLP stores 2 d instead of 2 d^2 weights per block.
    dims = [block.fremlp.bias_real.numel() for stage in full.stages for block in stage]
    assert count_parameters(full) - count_parameters(diagonal) == sum(2 * d * d - 2 * d for d in dims)


@pytest.mark.parametrize("n", [8, 9])  # even and odd patch counts (Nyquist term)
def test_global_filter_matches_per_filter_loop(n: int) -> None:
    torch.manual_seed(0)
    block, x = GlobalFilter(dim=6, n_patches=n, n_filters=3), torch.randn(4, n, 6)
    spectrum = torch.fft.rfft(x, dim=1, norm="ortho")
    total = 0
    for k in range(3):
        weight = torch.view_as_complex(block.weight[k].contiguous())
        total = total + spectrum * weight * math.cos((2 * k + 1) * math.pi / 6) * spectrum.abs().square()
    expected = torch.fft.irfft(total, n=n, dim=1, norm="ortho")
    torch.testing.assert_close(block(x.transpose(0, 1)).transpose(0, 1), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [8, 9])  # even and odd patch counts (Nyquist term)
def test_fremlp_full_is_a_complex_linear_layer(n: int) -> None:
    torch.manual_seed(0)
    block, x = FrequencyMLP(dim=6, n_patches=n, mode="full", threshold=0.01), torch.randn(4, n, 6)
    spectrum = torch.fft.rfft(x, dim=1, norm="ortho")
    weight = torch.complex(block.weight_real, block.weight_imag)
    z = spectrum @ weight + torch.complex(block.bias_real, block.bias_imag)
    z = torch.complex(*(F.softshrink(F.relu(part), 0.01) for part in (z.real, z.imag)))
    expected = torch.fft.irfft(z, n=n, dim=1, norm="ortho")
    torch.testing.assert_close(block(x.transpose(0, 1)).transpose(0, 1), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [8, 9])  # even and odd patch counts (Nyquist term)
def test_fremlp_diagonal_matches_released_einsum(n: int) -> None:
    torch.manual_seed(0)
    block, x = FrequencyMLP(dim=6, n_patches=n, mode="diagonal", threshold=0.01), torch.randn(4, n, 6)
    r, i = torch.diag(block.weight_real), torch.diag(block.weight_imag)  # the released code's stored matrices
    rb, ib = block.bias_real, block.bias_imag
    spectrum = torch.fft.rfft(x, dim=1, norm="ortho")
    re, im = spectrum.real, spectrum.imag
    real = F.relu(torch.einsum("bjd,dd->bjd", re, r) - torch.einsum("bjd,dd->bjd", im, i) + rb)
    imag = F.relu(torch.einsum("bjd,dd->bjd", im, r) + torch.einsum("bjd,dd->bjd", re, i) + ib)
    real, imag = F.softshrink(real, 0.01), F.softshrink(imag, 0.01)
    expected = torch.fft.irfft(torch.complex(real, imag), n=n, dim=1, norm="ortho")
    torch.testing.assert_close(block(x.transpose(0, 1)).transpose(0, 1), expected, rtol=1e-5, atol=1e-6)


def test_padding_versus_dropping_voxels() -> None:
    sizes = {"n_voxels": 53, "output_shape": (11,)}
    pad = build_model("lite_mind", model_config("lite_mind", "testing", **sizes))
    drop = build_model(
        "lite_mind", model_config("lite_mind", "testing", {"voxel_remainder": "drop"}, **sizes)
    )
    assert (pad.n_patches, drop.n_patches) == (7, 6)


@pytest.mark.parametrize(
    ("options", "shape", "message"),
    [
        (
            {},
            (4, 5),
            r"token head gives dims\[-1\]=3 tokens but output_shape is \(4, 5\); set dims\[-1\] to 4",
        ),
        ({"fremlp": "dense"}, (11,), "fremlp must be 'full' or 'diagonal', found 'dense'"),
        ({"depths": [1]}, (11,), r"dims \(12, 3\) and depths \(1,\) need the same"),
        ({}, (2, 3, 4), r"output_shape must be \(out_dim,\) or \(n_tokens, out_dim\)"),
    ],
)
def test_config_errors(options, shape, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(
            "lite_mind", model_config("lite_mind", "testing", options, n_voxels=53, output_shape=shape)
        )


def test_cpu_small_learns_a_linear_map() -> None:
    torch.manual_seed(0)
    x = torch.randn(96, 300)
    y = x @ torch.randn(300, 24) / 300**0.5
    model = build_model("lite_mind", model_config("lite_mind", "cpu_small", n_voxels=300, output_shape=(24,)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_dropout_keeps_the_expected_fraction_and_scales() -> None:
    from brainkit.models.layers import Dropout

    torch.manual_seed(0)
    layer, x = Dropout(0.25), torch.ones(200, 500, requires_grad=True)
    out = layer(x)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    assert torch.allclose(out[kept], torch.tensor(1 / 0.75))
    out.sum().backward()
    assert torch.equal(x.grad != 0, kept)
    assert torch.equal(layer.eval()(x), x)


def test_dropout_mask_is_unbiased_seeded_and_handles_odd_sizes() -> None:
    from brainkit.models.layers import dropout_mask

    torch.manual_seed(1)
    mask, scale = dropout_mask(torch.Size((301, 333)), 0.1, torch.device("cpu"))  # odd element count
    assert mask.shape == (301, 333)
    assert abs(mask.float().mean().item() - 0.9) < 0.005
    assert abs((mask.float() * scale).mean().item() - 1.0) < 0.005  # inverted dropout keeps the mean
    torch.manual_seed(1)
    again, _ = dropout_mask(torch.Size((301, 333)), 0.1, torch.device("cpu"))
    assert torch.equal(mask, again)
    assert dropout_mask(torch.Size((4, 5)), 0.0, torch.device("cpu"))[0].all()
