"""One battery over every registered model that takes voxels: shapes, gradients, determinism, checkpoints,
input errors, one learning step, and the paper presets' parameter counts (built on the meta device)."""

from __future__ import annotations

import pytest
import torch

from brainkit.errors import DataError
from brainkit.models import build_model, count_parameters, load_model, model_config, register_all, save_model
from brainkit.models.base import fields_of
from brainkit.registry import MODELS

register_all()
# models that map (batch, n_voxels) -> (batch, *output_shape); self-supervised ones (dc_mae) have their own tests
VOXEL_MODELS = [
    n for n in MODELS.names() if {"n_voxels", "output_shape"} <= set(fields_of(MODELS.get(n).Config()))
]
OUTPUT_SHAPES = [(3, 5), (11,)]
N_VOXELS, BATCH = 53, 7

# (model, preset, data-given sizes or None when the preset holds them) -> parameter count.
PAPER_COUNTS = {
    # Lite-Mind paper model, full complex FreMLP, zero-padded voxels; docs/methods/lite_mind.md reconciles it with
    # the released code's 15,657,859 (tests/test_lite_mind.py checks that arithmetic).
    ("lite_mind", "nsd_subj01", None): 15_654_271,
    ("lite_mind", "nsd_subj01_cls", (15724, (768,))): 7_550_874,
    # MindEye high-level backbone without its projector (docs/methods/lite_mind.md).
    ("mindeye_mlp", "mindeye_nsd_subj01", None): 940_225_280,
}


def tiny(name: str, output_shape: tuple[int, ...], seed: int = 0) -> torch.nn.Module:
    """The model's ``testing`` preset at tiny, unequal sizes; closed-form models are fitted on random data."""
    assert "testing" in MODELS.get(name).PRESETS, f"model {name!r} needs a 'testing' preset for the battery"
    torch.manual_seed(seed)
    model = build_model(name, model_config(name, "testing", n_voxels=N_VOXELS, output_shape=output_shape))
    if hasattr(model, "fit_closed_form"):
        model.fit_closed_form(torch.randn(19, N_VOXELS), torch.randn(19, *output_shape))
    return model


def test_battery_sees_models() -> None:
    assert {"lite_mind", "ridge", "mindeye_mlp"} <= set(VOXEL_MODELS)


@pytest.mark.parametrize("shape", OUTPUT_SHAPES, ids=str)
@pytest.mark.parametrize("name", VOXEL_MODELS)
def test_output_shape(name: str, shape: tuple[int, ...]) -> None:
    model = tiny(name, shape).eval()
    assert model(torch.randn(BATCH, N_VOXELS)).shape == (BATCH, *shape)


@pytest.mark.parametrize("name", VOXEL_MODELS)
def test_gradients_finite(name: str) -> None:
    model = tiny(name, (3, 5)).train()
    x = torch.randn(BATCH, N_VOXELS, requires_grad=True)
    model(x).square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", VOXEL_MODELS)
def test_seeded_construction_deterministic(name: str) -> None:
    first, second = tiny(name, (11,), seed=3).state_dict(), tiny(name, (11,), seed=3).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("name", VOXEL_MODELS)
def test_safetensors_round_trip(name: str, tmp_path) -> None:
    model = tiny(name, (3, 5)).eval()
    save_model(tmp_path / "ckpt", model, metadata={"note": "battery"})
    loaded, metadata = load_model(tmp_path / "ckpt")
    x = torch.randn(BATCH, N_VOXELS)
    assert metadata == {"note": "battery"}
    assert torch.equal(model(x), loaded.eval()(x))


@pytest.mark.parametrize("name", VOXEL_MODELS)
def test_wrong_voxel_count_raises(name: str) -> None:
    model = tiny(name, (11,))
    with pytest.raises(DataError, match=r"expects input of shape \(batch, 53\) voxels, found \(7, 52\)"):
        model(torch.randn(BATCH, N_VOXELS - 1))


@pytest.mark.parametrize("name", VOXEL_MODELS)
def test_nan_input_raises(name: str) -> None:
    x = torch.randn(BATCH, N_VOXELS)
    x[2, 4] = float("nan")
    with pytest.raises(DataError, match="NaN or inf"):
        tiny(name, (11,))(x)


@pytest.mark.parametrize("name", VOXEL_MODELS)
def test_one_step_lowers_loss(name: str) -> None:
    torch.manual_seed(1)
    x, y = torch.randn(16, N_VOXELS), torch.randn(16, 3, 5)
    torch.manual_seed(0)
    model = build_model(name, model_config(name, "testing", n_voxels=N_VOXELS, output_shape=(3, 5))).eval()
    if hasattr(model, "fit_closed_form"):
        before = y.square().mean()  # an unfitted ridge predicts zeros
        model.fit_closed_form(x, y)
        assert torch.nn.functional.mse_loss(model(x), y) < before
        return
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        assert torch.nn.functional.mse_loss(model(x), y) < loss


@pytest.mark.parametrize(("name", "preset", "sizes"), list(PAPER_COUNTS), ids=lambda v: str(v))
def test_paper_preset_parameter_count(name: str, preset: str, sizes) -> None:
    n_voxels, output_shape = sizes or (None, None)
    with torch.device("meta"):
        model = build_model(name, model_config(name, preset, n_voxels=n_voxels, output_shape=output_shape))
    assert count_parameters(model) == PAPER_COUNTS[(name, preset, sizes)]


# ------------------------------------------------------------------------------------- baseline specifics
@pytest.mark.parametrize("n_voxels", [5, 20])  # both Gram branches: fewer and more voxels than samples
def test_ridge_leave_one_out_is_exact(n_voxels: int) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(12, n_voxels).double(), torch.randn(12, 3).double()
    model = build_model("ridge", model_config("ridge", "testing", n_voxels=n_voxels, output_shape=(3,)))
    model.fit_closed_form(x, y)
    for alpha, error in model.cv_errors_.items():
        brute = []
        for i in range(12):
            keep = torch.arange(12) != i
            xt, yt = x[keep], y[keep]
            mean, scale = x.mean(0), x.std(0)  # standardisation is learned once on all training rows
            xs = (xt - mean) / scale
            xm = xs.mean(0)
            w = torch.linalg.solve(
                (xs - xm).T @ (xs - xm) + alpha * torch.eye(n_voxels, dtype=x.dtype),
                (xs - xm).T @ (yt - yt.mean(0)),
            )
            prediction = ((x[i] - mean) / scale - xm) @ w + yt.mean(0)
            brute.append((y[i] - prediction).square().mean())
        assert error == pytest.approx(torch.stack(brute).mean().item(), rel=1e-3)
