"""Lite-Mind specifics: the frequency blocks against direct formulas, parameter counts against the released
code, configuration errors, a short run that learns; and the `lite_mind` recipe: its presets, the CLI run, the
run/eval round trip, and resuming an interrupted run exactly."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
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


def _frequency_blocks(n: int):
    """Each block whose forward runs a hand-written backward, in float64, with the composition it replaces."""
    yield GlobalFilter(dim=5, n_patches=n, n_filters=2, spectrum="power").double()
    yield GlobalFilter(dim=5, n_patches=n, n_filters=2, spectrum="complex_square").double()
    yield FrequencyMLP(dim=5, n_patches=n, mode="diagonal", threshold=0.01).double()


@pytest.mark.parametrize("n", [8, 9])  # even and odd patch counts (Nyquist term)
def test_frequency_blocks_hand_written_backward_is_the_composition_gradient(n: int) -> None:
    """GlobalFilter (both spectra) and the diagonal FreMLP: output, input and parameter gradients equal to
    autograd's on the composition of torch ops, and to finite differences (gradcheck)."""
    torch.manual_seed(0)
    for block in _frequency_blocks(n):
        params = list(block.parameters())
        with torch.no_grad():  # biases away from zero: ReLU's kink off the sampled points
            for p in params:
                p.add_(0.3 * torch.randn_like(p))
        x = torch.randn(n, 3, 5, dtype=torch.float64, requires_grad=True)
        grad = torch.randn(n, 3, 5, dtype=torch.float64)
        results = []
        for forward in (block, block.composed):
            out = forward(x)
            results.append([out, *torch.autograd.grad(out, [x, *params], grad)])
        for ours, composed in zip(*results):
            torch.testing.assert_close(ours, composed, rtol=1e-10, atol=1e-12)
        assert torch.autograd.gradcheck(lambda x, *_, block=block: block(x), (x, *params))


def test_frequency_blocks_under_autocast_run_the_composition() -> None:
    """Under CPU autocast the blocks run their composition (autocast's casts apply to its ops), forward and
    backward."""
    torch.manual_seed(0)
    for block in _frequency_blocks(8):
        block.float()
        x = torch.randn(8, 2, 5, requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, expected = block(x), block.composed(x)
        assert out.dtype == expected.dtype == torch.bfloat16
        torch.testing.assert_close(out, expected)
        out.float().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


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
        (
            {"fremlp": "dense"},
            (11,),
            r"fremlp='dense' is not allowed: set fremlp to one of \('full', 'diagonal'\)",
        ),
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


def test_dropout_is_x_times_mask_times_scale_in_every_dtype() -> None:
    """The same draws as dropout_mask, nn.Dropout's arithmetic (x * mask * scale: NaN stays NaN), float32 with
    the scale folded in bit-identical to x * scale, bf16 and float64 in their own dtype, gradients likewise."""
    from brainkit.models.layers import Dropout, dropout_mask

    layer = Dropout(0.3)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = torch.randn(37, 41, dtype=dtype)
        x[0, 0] = float("nan")
        x.requires_grad_()
        torch.manual_seed(5)
        mask, scale = dropout_mask(x.shape, 0.3, x.device)
        torch.manual_seed(5)
        out = layer(x)
        assert out.dtype == dtype
        kept = mask.bool()
        assert torch.equal(out[kept], (x * scale)[kept])  # kept elements: exactly x * scale in x's dtype
        assert torch.equal(out[~kept & ~x.isnan()], torch.zeros_like(out[~kept & ~x.isnan()]))
        assert out[0, 0].isnan()  # as nn.Dropout: NaN * 0 is NaN, whether dropped or kept
        grad = torch.randn_like(out)
        out.backward(grad)
        assert torch.equal(x.grad[kept], (grad * scale)[kept]) and not x.grad[~kept].any()


def test_dropout_mask_is_zero_one_and_all_dropped_near_one() -> None:
    from brainkit.models.layers import dropout_mask

    torch.manual_seed(2)
    mask, _ = dropout_mask(torch.Size((64, 64)), 0.5, torch.device("cpu"))
    assert mask.dtype == torch.float32 and set(mask.unique().tolist()) == {0.0, 1.0}
    mask, scale = dropout_mask(torch.Size((8,)), 1 - 1e-6, torch.device("cpu"))  # rounds to p = 1
    assert not mask.any() and scale == 0.0


def test_dropout_traces_without_a_graph_break_under_compile() -> None:
    """Dynamo cannot trace ``random_()``: compiled, the layer is ``F.dropout`` (one graph, not one per dropout);
    the kept elements are still scaled by 1 / (1 - p) and about p of them dropped."""
    from brainkit.models.layers import Dropout

    layer = Dropout(0.25).train()
    explained = torch._dynamo.explain(layer)(torch.randn(4, 8))
    assert explained.graph_count == 1 and explained.graph_break_count == 0
    torch.manual_seed(0)
    out = torch.compile(layer, backend="eager")(torch.ones(200, 200))
    assert set(out.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}
    assert abs((out == 0).float().mean().item() - 0.25) < 0.02


# --- the lite_mind recipe -------------------------------------------------------------------------------------

# The testing preset beside the two baselines at their test sizes (seconds).
WITH_BASELINES = "baselines=[{name: ridge, preset: testing}, {name: mindeye_mlp, preset: testing}]"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("lite_mind_cache"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, cache_dir):
    """One uninterrupted run of the testing preset with both baselines."""
    from brainkit.recipes import run_recipe

    folder = tmp_path_factory.mktemp("lite_mind_runs") / "full"
    overrides = [f"data.cache_dir={cache_dir}", WITH_BASELINES]
    return run_recipe("lite_mind", folder=folder, preset="testing", overrides=overrides)


def test_demo_preset_is_todays_demo() -> None:
    """The demo preset trains what the three demo YAML files did (lite_mind_demo, ridge_demo, mindeye_mlp_demo)."""
    from brainkit.recipes.lite_mind import PRESETS, decoders

    demo = PRESETS["demo"]
    assert (
        demo.data.name == "nsd_like"
        and demo.data.target == "efficientnet_lite0"
        and demo.data.val_fraction == 0.1
    )
    assert demo.objective.options == {"temperature": 0.05, "bidirectional": False}
    assert (demo.evaluation.n_way, demo.evaluation.n_draws) == (300, 30)
    lite, ridge, mlp = decoders(demo)
    assert [(d.label, d.folder) for d in (lite, ridge, mlp)] == [
        ("Lite-Mind", "lite_mind"), ("Ridge", "ridge"), ("MindEye MLP", "mindeye_mlp")
    ]  # fmt: skip
    assert (lite.model.name, lite.model.preset, ridge.model.preset, mlp.model.preset) == (
        "lite_mind", "cpu_small", None, "cpu_small"
    )  # fmt: skip
    for decoder, epochs, lr in ((lite, 50, 1e-3), (mlp, 30, 3e-4)):
        t = decoder.training
        assert (t.epochs, t.lr, t.batch_size, t.weight_decay, t.warmup_epochs, t.min_lr, t.grad_clip) == (
            epochs, lr, 250, 0.1, 2.0, 1e-5, 1.0
        )  # fmt: skip
    assert PRESETS["cpu_small"] == dataclasses.replace(demo, baselines=())
    realistic = dataclasses.replace(demo.data, options={"generative": "realistic"})  # nsd_like's other option
    assert PRESETS["demo_realistic"] == dataclasses.replace(demo, data=realistic)
    assert PRESETS["cpu_small_realistic"] == dataclasses.replace(PRESETS["cpu_small"], data=realistic)
    paper = PRESETS["nsd_subj01"]
    assert (paper.training.epochs, paper.training.batch_size, paper.training.lr) == (1500, 1000, 1.171875e-4)


def test_duplicate_labels_raise() -> None:
    from brainkit.recipes import recipe_config
    from brainkit.recipes.lite_mind import decoders

    config = recipe_config("lite_mind", "testing", ["baselines=[{name: lite_mind, preset: testing}]"])
    with pytest.raises(ConfigError, match="two decoders share the label"):
        decoders(config)


def test_cli_run_testing_preset(tmp_path, cache_dir, capsys) -> None:
    """`brainkit run lite_mind --preset testing`: the table, the run folder, and the numbers the old
    `brainkit train` gave for this config (pipeline.py, before the recipe)."""
    from brainkit.cli import main

    run = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "lite_mind",
                "--preset",
                "testing",
                "--out",
                str(run),
                "--set",
                f"data.cache_dir={cache_dir}",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fMRI-to-image retrieval" in out and "Lite-Mind" in out and "10-way chance" in out
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]["Lite-Mind"]
    decoder = json.loads((run / "lite_mind" / "metrics.json").read_text())
    assert {k: decoder[k] for k in metrics} == metrics and decoder["n_parameters"] == 1644
    assert metrics["fmri_to_image/10way_top1_mean"] == pytest.approx(0.128571, abs=1e-6)
    assert metrics["fmri_to_image/top5"] == pytest.approx(5 / 14)


def test_run_then_eval_gives_the_same_metrics(full_run) -> None:
    from brainkit.recipes import evaluate_run

    assert list(full_run.metrics) == ["Lite-Mind", "Ridge", "MindEye MLP"]
    # what the old pipeline.train_run gave for each of these three configs (before the recipe): same numbers
    for label, top1, way in (
        ("Lite-Mind", 1 / 14, 0.128571),
        ("Ridge", 10 / 14, 0.757143),
        ("MindEye MLP", 2 / 14, 0.185714),
    ):
        assert full_run.metrics[label]["fmri_to_image/top1"] == pytest.approx(top1)
        assert full_run.metrics[label]["fmri_to_image/10way_top1_mean"] == pytest.approx(way, abs=1e-6)
    assert evaluate_run(full_run.folder) == full_run.metrics
    saved = json.loads((full_run.folder / "metrics.json").read_text())
    assert saved["metrics"] == full_run.metrics
    for folder in ("lite_mind", "ridge", "mindeye_mlp"):
        assert not (full_run.folder / folder / "state").exists()


def test_resume_continues_exactly(full_run, tmp_path, cache_dir, monkeypatch, capsys) -> None:
    """Killed in Lite-Mind's second epoch, then in the MLP's: each --resume continues where the run stopped
    (finished decoders are reloaded, not retrained) and the result equals the uninterrupted run's."""
    import brainkit.recipes.lite_mind as recipe
    from brainkit.cli import main
    from brainkit.errors import ConfigError as Refused
    from brainkit.recipes import run_recipe
    from brainkit.training import fit as real_fit

    calls: list[str] = []

    def killed_in(model_class: str):
        def fit(model, *args, **kwargs):
            calls.append(type(model).__name__)
            if type(model).__name__ != model_class:
                return real_fit(model, *args, **kwargs)
            real_fit(model, *args, **kwargs, until_epoch=1)
            raise RuntimeError("simulated kill")

        return fit

    run = tmp_path / "run"
    partial = tmp_path / ".run.partial"
    overrides = [f"data.cache_dir={cache_dir}", WITH_BASELINES]
    monkeypatch.setattr(recipe, "fit", killed_in("LiteMind"))
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_recipe("lite_mind", folder=run, preset="testing", overrides=overrides)
    assert (partial / "lite_mind" / "state").is_dir() and not run.exists()
    with pytest.raises(Refused, match="interrupted run of lite_mind is at .*continue it with --resume"):
        run_recipe("lite_mind", folder=run, preset="testing", overrides=overrides)

    monkeypatch.setattr(recipe, "fit", killed_in("MindEyeMLP"))
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_recipe("lite_mind", folder=run, resume=True)
    assert (partial / "lite_mind" / "metrics.json").is_file() and (partial / "mindeye_mlp" / "state").is_dir()

    monkeypatch.setattr(recipe, "fit", killed_in("nothing"))
    calls.clear()
    assert main(["run", "lite_mind", "--out", str(run), "--resume"]) == 0
    assert calls == ["MindEyeMLP"]  # Lite-Mind and ridge were reloaded
    assert not partial.exists()
    result = json.loads((run / "metrics.json").read_text())["metrics"]
    assert result == full_run.metrics
    for folder in ("lite_mind", "mindeye_mlp"):
        resumed = [json.loads(line) for line in (run / folder / "history.jsonl").read_text().splitlines()]
        full = [
            json.loads(line) for line in (full_run.folder / folder / "history.jsonl").read_text().splitlines()
        ]
        assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed] == [
            {k: v for k, v in r.items() if k != "seconds"} for r in full
        ]
    assert main(["run", "lite_mind", "--out", str(run), "--resume"]) == 2
    assert "is complete; there is nothing to resume" in capsys.readouterr().err


def test_gallery_retrieval_refuses_an_encoder_that_does_not_give_the_runs_targets(full_run, tmp_path) -> None:
    """nsd_like's testing build embeds its stimuli with pixel_projection(dim=24, grid=4); the run's encoder
    (default options) gives other vectors, so ranking a gallery with it would be meaningless: a clear error."""
    from PIL import Image

    import brainkit
    from brainkit.errors import DataError
    from brainkit.testing import photo_crops

    run = brainkit.load(full_run.folder)
    (tmp_path / "gallery").mkdir()
    Image.fromarray(photo_crops(n_per_source=1, size=32)[0]).save(tmp_path / "gallery" / "a.png")
    with pytest.raises(DataError, match="does not reproduce the targets this run learnt"):
        run.retrieve(np.zeros((1, 41), np.float32), tmp_path / "gallery")


@pytest.mark.parametrize("n", [8, 9])
def test_global_filter_released_mode_multiplies_by_the_complex_square(n: int) -> None:
    torch.manual_seed(0)
    block, x = GlobalFilter(dim=6, n_patches=n, n_filters=2, spectrum="complex_square"), torch.randn(4, n, 6)
    spectrum = torch.fft.rfft(x, dim=1, norm="ortho")
    total = 0
    for k in range(2):
        weight = torch.view_as_complex(block.weight[k].contiguous())
        total = total + spectrum * weight * math.cos((2 * k + 1) * math.pi / 4) * spectrum**2  # X * W * X**2
    expected = torch.fft.irfft(total, n=n, dim=1, norm="ortho")
    torch.testing.assert_close(block(x.transpose(0, 1)).transpose(0, 1), expected, rtol=1e-5, atol=1e-6)


def test_complex_square_and_power_differ_by_hand_on_one_frequency() -> None:
    # X = 1 + 2i: X**2 = -3 + 4i, |X|^2 = 5; with W = 1 the factors X * S are -11 - 2i and 5 + 10i
    x = torch.complex(torch.tensor(1.0), torch.tensor(2.0))
    assert torch.allclose(x * x**2, torch.complex(torch.tensor(-11.0), torch.tensor(-2.0)))
    assert torch.allclose(x * x.abs() ** 2, torch.complex(torch.tensor(5.0), torch.tensor(10.0)))
    from brainkit.models.lite_mind import PRESETS

    released = PRESETS["nsd_subj01_released"]
    assert (released.fremlp, released.voxel_remainder, released.spectrum) == (
        "diagonal",
        "drop",
        "complex_square",
    )
    assert PRESETS["nsd_subj01"].spectrum == "power"


def test_bench_scores_of_a_run(full_run) -> None:
    """`brainkit bench` reads Lite-Mind and both baselines: top-k among all test images and N-way, with chance."""
    from bench_checks import check_scores

    rows = check_scores("lite_mind", full_run.tables, {"Lite-Mind", "Ridge", "MindEye MLP"},
                        {"fMRI->image top-1 (10-way)", "image->fMRI top-1 (10-way)"})  # fmt: skip
    table = full_run.tables["fMRI-to-image retrieval"]
    mine = {(r["method"], r["metric"]): r for r in rows}
    assert mine[("Ridge", "fMRI->image top-1 (10-way)")]["value"] == table[1]["fmri->image 10-way"]
    assert mine[("Ridge", "fMRI->image top-1 (10-way)")]["role"] == "baseline"
    assert mine[("Lite-Mind", "fMRI->image top-1 (10-way)")]["chance"] == 0.1
