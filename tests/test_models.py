"""One battery over every registered model (``MODELS.names()``, no filter): output shapes, gradients,
determinism, safetensors round trips, input errors, one optimiser step, and the paper presets' parameter counts
(built on the meta device). The battery reads only the interface documented in ``brainkit/models/base.py``
(``PRESETS["testing"]``, ``testing_sizes``, ``example``, ``output_shape_for``, ``battery_skips``); a check a
model cannot take is a reported skip with the reason its class gives."""

from __future__ import annotations

import re

import pytest
import torch

from brainkit.errors import DataError
from brainkit.models import build_model, count_parameters, load_model, model_config, save_model
from brainkit.models.base import example_config, output_tensors
from brainkit.registry import MODELS

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NAMES = MODELS.names()
BATCH = 7
CHECKS = (
    "output_shape", "gradients", "bf16_autocast", "deterministic", "round_trip", "bad_input", "one_step",
    "paper_count",
)  # fmt: skip

# (model, preset, data-given sizes) -> trainable parameter count, each with its source.
PAPER_COUNTS = {
    # Lite-Mind paper model, full complex FreMLP, zero-padded voxels; docs/methods/lite_mind.md reconciles it with
    # the released code's 15,657,859 (tests/test_lite_mind.py checks that arithmetic).
    ("lite_mind", "nsd_subj01", ()): 15_654_271,
    # models/lite_mind.py preset comment (METHODS.md sec. 3: CLS-only ~7.55 M).
    ("lite_mind", "nsd_subj01_cls", (("n_voxels", 15724), ("output_shape", (768,)))): 7_550_874,
    # MindEye high-level backbone without its projector (docs/methods/lite_mind.md).
    ("mindeye_mlp", "mindeye_nsd_subj01", ()): 940_225_280,
    # SiT-tiny at ico6/ico3, 3 frames (METHODS.md sec. 1.3: ~5.36 M; tests/test_sit.py).
    ("sit", "sim", ()): 5_358_144,
    # SIM tri-modal, trainable (METHODS.md sec. 1.3: ~6.47 M; tests/test_sim_model.py).
    ("sim", "sim", ()): 6_468_672,
    # vsMAE = SiT-tiny (5,358,144) + our decoder (models/vsmae.py preset comment).
    ("vsmae", "sim", ()): 5_613_159,
    # DC-MAE encoder 151,261,184 + decoder 13,158,416 (METHODS.md sec. 4.2: ~151.3 M + ~13.2 M; test_dc_mae.py).
    ("dc_mae", "paper", ()): 164_419_600,
    # CLIP-MUSED hcp (released blocks), 9 subjects, 859 WordNet classes: 65,811,136 + classifier 880,475 (METHODS.md sec. 2.2:
    # ~65.8 M + 0.88 M; tests/test_clip_mused.py).
    ("clip_mused", "hcp", (("n_subjects", 9), ("n_classes", 859))): 66_691_611,
    # CLIP-MUSED nsd (ours, paper's width 512 and 8 heads), 25 ROI patches, 8 subjects, 80 COCO categories:
    # 8,411,136 + 131,584 per ROI + 1,024 per subject + 1,025 per class (models/clip_mused.py preset comment).
    ("clip_mused", "nsd", (("n_rois", 25), ("n_subjects", 8), ("n_classes", 80))): 11_790_928,
    # BrainMAE at Schaefer-100, 15 s at TR 0.72 s (docs/methods/brain_mae.md; tests/test_brain_mae.py).
    ("brain_mae", "sg_paper", (("n_rois", 100), ("segment_frames", 21))): 631_669,
    ("brain_mae", "ag_paper", (("n_rois", 100), ("segment_frames", 21))): 499_189,
    # Paper DC-MAE + facebook/vit-mae-base + cross stacks 29,142,528 + 17,584,128 (tests/test_cross_modal.py);
    # models/cross_modal.py preset comment.
    ("cross_modal", "paper", ()): 322_801_936,
    # The same with the released cross layout, 3 + 3 layers at 768: 29,137,920 + 29,925,376
    # (tests/test_cross_modal_released.py, by hand there).
    ("cross_modal", "paper_released", ()): 335_138_576,
    # MindEye2's 4,096-d shared latent for NSD subjects 1, 2, 5, 7 (15,724 + 14,278 + 13,039 + 12,682 voxels):
    # (55,723 + 4) x 4,096 = 228,257,792 + the MindEye v1 backbone at 4,096 inputs, 940,225,280 - 11,628 x 4,096
    # (models/shared_subject.py preset comment).
    (
        "shared_subject",
        "mindeye2_nsd",
        (
            ("n_voxels", (("subj01", 15724), ("subj02", 14278), ("subj05", 13039), ("subj07", 12682))),
            ("output_shape", (257, 768)),
        ),
    ): 1_120_854_784,
}


def skip_unless_applies(name: str, check: str) -> None:
    reason = getattr(MODELS.get(name), "battery_skips", {}).get(check)
    if reason:
        pytest.skip(f"{name}: {reason}")


def build(name: str, seed: int = 0) -> tuple[torch.nn.Module, tuple]:
    """The model's testing config with its sizes, built under ``seed``, and its example inputs (seeded too);
    a closed-form model is fitted on examples first."""
    config = example_config(name)
    torch.manual_seed(seed)
    model = build_model(name, config)
    inputs = type(model).example(config, BATCH, torch.Generator().manual_seed(seed + 1))
    if hasattr(model, "fit_closed_form"):
        generator = torch.Generator().manual_seed(seed + 2)
        x = type(model).example(config, 19, generator)[0]
        model.fit_closed_form(x, torch.randn(19, *model.output_shape_for(19)[1:], generator=generator))
    return model, inputs


def targets_for(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    shapes = model.output_shape_for(BATCH)
    shapes = shapes if isinstance(shapes, dict) else {"output": shapes}
    generator = torch.Generator().manual_seed(11)
    return {key: torch.randn(shape, generator=generator) for key, shape in shapes.items()}


def fixed_loss(model: torch.nn.Module, output, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's own loss when its output holds one, else the MSE of each declared output to its target."""
    tensors = output_tensors(output)
    if "loss" in tensors:
        return tensors["loss"]
    return sum(torch.nn.functional.mse_loss(tensors[key], target) for key, target in targets.items())


def test_every_model_declares_the_battery_interface() -> None:
    assert {"lite_mind", "ridge", "mindeye_mlp", "cross_modal", "ldm", "dc_mae", "sim", "vsmae"} <= set(NAMES)
    for name in NAMES:
        cls = MODELS.get(name)
        assert "testing" in cls.PRESETS and callable(cls.example) and callable(cls.output_shape_for), name
        assert set(getattr(cls, "battery_skips", {})) <= set(CHECKS), name
        counted = any(row[0] == name for row in PAPER_COUNTS)
        assert counted != ("paper_count" in getattr(cls, "battery_skips", {})), (
            f"{name}: a count row or a skip"
        )


@pytest.mark.parametrize("name", NAMES)
def test_output_shape(name: str) -> None:
    skip_unless_applies(name, "output_shape")
    model, inputs = build(name)
    with torch.no_grad():
        tensors = output_tensors(model.eval()(*inputs))
    shapes = model.output_shape_for(BATCH)
    for key, shape in (shapes if isinstance(shapes, dict) else {"output": shapes}).items():
        assert tuple(tensors[key].shape) == tuple(shape), f"{name} {key}"


@pytest.mark.parametrize("name", NAMES)
def test_gradients_finite(name: str) -> None:
    skip_unless_applies(name, "gradients")
    model, inputs = build(name)
    inputs = [x.clone().requires_grad_(True) if x.is_floating_point() else x for x in inputs]
    tensors = output_tensors(model.train()(*inputs))
    sum(t.float().square().mean() for t in tensors.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    grads += [x.grad for x in inputs if x.is_floating_point() and x.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_trains_under_bf16_autocast(name: str) -> None:
    """``training.precision=bf16-mixed`` (the GPU suite's bf16 mode, and an option on CPUs with bf16 units): the
    forward under bf16 autocast, as Fabric wraps a step, backward to finite float32 gradients. Catches a module
    that mixes an autocast output with a float32 table where torch needs one dtype (a scatter, an index_put)."""
    skip_unless_applies(name, "bf16_autocast")
    model, inputs = build(name)
    inputs = [x.clone().requires_grad_(True) if x.is_floating_point() else x for x in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tensors = output_tensors(model.train()(*inputs))
        loss = sum(t.float().square().mean() for t in tensors.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    grads += [x.grad for x in inputs if x.is_floating_point() and x.grad is not None]
    assert grads and torch.isfinite(loss)
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_build_and_forward_deterministic(name: str) -> None:
    skip_unless_applies(name, "deterministic")
    (first, first_inputs), (second, second_inputs) = build(name, seed=3), build(name, seed=3)
    state, again = first.state_dict(), second.state_dict()
    assert state.keys() == again.keys() and all(torch.equal(state[k], again[k]) for k in state)
    with torch.no_grad():
        a, b = output_tensors(first.eval()(*first_inputs)), output_tensors(second.eval()(*second_inputs))
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_round_trip(name: str, tmp_path) -> None:
    skip_unless_applies(name, "round_trip")
    model, inputs = build(name)
    save_model(tmp_path / "ckpt", model, metadata={"note": "battery"})
    loaded, metadata = load_model(tmp_path / "ckpt")
    assert metadata == {"note": "battery"} and type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        a, b = output_tensors(model.eval()(*inputs)), output_tensors(loaded.eval()(*inputs))
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_width_raises(name: str) -> None:
    skip_unless_applies(name, "bad_input")
    model, (x, *rest) = build(name)
    narrow = x[..., :-1]
    with pytest.raises(DataError, match=rf"expects .*found {re.escape(str(tuple(narrow.shape)))}"):
        model(narrow, *rest)
    x = x.clone()
    x.view(-1)[5] = float("nan")
    with pytest.raises(DataError, match="NaN or inf"):
        model(x, *rest)


@pytest.mark.parametrize("name", NAMES)
def test_one_step_lowers_the_loss(name: str) -> None:
    skip_unless_applies(name, "one_step")
    model, inputs = build(name)
    model.eval()  # no dropout: the same function before and after the step
    targets = targets_for(model)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0
    )
    loss = fixed_loss(model, model(*inputs), targets)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        assert fixed_loss(model, model(*inputs), targets) < loss


@pytest.mark.parametrize("name", NAMES)
def test_paper_count_rows_or_skip(name: str) -> None:
    """Every model has a row in PAPER_COUNTS (checked below) or declares why it has none."""
    skip_unless_applies(name, "paper_count")
    assert any(row[0] == name for row in PAPER_COUNTS)


@pytest.mark.parametrize(("name", "preset", "sizes"), list(PAPER_COUNTS), ids=lambda v: str(v))
def test_paper_preset_parameter_count(name: str, preset: str, sizes) -> None:
    with torch.device("meta"):
        # per-subject voxel counts are stored as (name, count) pairs (a dict is not hashable)
        options = {k: dict(v) if isinstance(v, tuple) and k == "n_voxels" else v for k, v in sizes}
        model = build_model(name, model_config(name, preset, options))
    assert count_parameters(model) == PAPER_COUNTS[(name, preset, sizes)]


# ------------------------------------------------------------------------------------- baseline specifics
def test_ridge_fit_lowers_the_error_of_predicting_zeros() -> None:
    """Ridge's stand-in for the optimiser step (it is fitted in closed form)."""
    torch.manual_seed(1)
    x, y = torch.randn(16, 53), torch.randn(16, 3, 5)
    model = build_model("ridge", model_config("ridge", "testing", n_voxels=53, output_shape=(3, 5)))
    model.fit_closed_form(x, y)
    assert torch.nn.functional.mse_loss(model(x), y) < y.square().mean()


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
