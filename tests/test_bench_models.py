"""bench/bench_models.py --quick: one line per model with the ratio field, % of peak and peak RSS."""

import subprocess
import sys
from pathlib import Path

from brainkit.training import heap

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_models.py"


# a released-style reference each, and its parameters minus ours at the testing preset: Lite-Mind's stored, unread
# FreMLP.embeddings (12 + 3); CLIP-MUSED's released blocks (no qkv bias, -36; channel MLP and BN1d, +37)
RATIO_MODELS = {"lite_mind": 15, "sit": 0, "sim": 0, "dc_mae": 0, "clip_mused": 1, "mindeye_mlp": 0, "ldm": 0,
                "shared_subject": 0}  # fmt: skip


def test_quick_bench_prints_a_line_per_model_with_the_ratio_against_the_released_style_reference():
    names = ",".join((*RATIO_MODELS, "ridge"))
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--threads", "1", "--models", names],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    assert sorted(line.split()[0] for line in lines) == sorted(names.split(","))
    by_model = {line.split()[0]: line for line in lines}
    for name in RATIO_MODELS:
        line = by_model[name]
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        assert {"ratio_vs_released", "pct_of_peak", "rss_gb", "step_s", "gflop"} <= set(fields)
        assert line.split()[-3:] == [
            f"{k}={fields[k]}" for k in ("ratio_vs_released", "pct_of_peak", "rss_gb")
        ]
        assert float(fields["step_s"]) > 0 and 0 < float(fields["rss_gb"]) < 8
        assert 0 <= float(fields["pct_of_peak"]) <= 100
        # a number: the reference's median step / ours, both timed in the same rounds
        assert float(fields["ratio_vs_released"]) > 0 and float(fields["ref_step_s"]) > 0
        assert float(fields["ratio_at_peak"]) > 0  # the ratio at the machine's fp32 limit
        low, high = map(float, fields["ratio_quartiles"].split(".."))  # the per-round ratios' Q1..Q3
        assert 0 < low <= high
        assert fields["reference"] and int(fields["ref_params_diff"]) == RATIO_MODELS[name]
        # the trainer's default allocator setting, for both sides (training.heap; as is where glibc is not)
        assert fields["cpu_memory"] == ("reuse" if heap.why_unchanged("reuse") is None else
                                        "as_is:" + heap.why_unchanged("reuse").replace(" ", "_"))  # fmt: skip
    assert "closed-form fit, no optimiser step" in by_model["ridge"]


def _quick_line(model: str, *flags: str) -> dict[str, str]:
    """The fields of the one line ``bench_models.py --quick --threads 1 --models MODEL FLAGS`` prints."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--threads", "1", "--models", model, *flags],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    (line,) = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    return dict(part.split("=", 1) for part in line.split()[1:])


def test_vs_aten_times_ours_with_f_linear_in_the_same_rounds():
    """--vs-aten: ours (oneDNN linears) and ours through F.linear in the same rounds, and their ratio."""
    fields = _quick_line("dc_mae", "--vs-aten")
    assert fields["linear"] == "onednn" and float(fields["aten_step_s"]) > 0
    ratio = float(fields["aten_step_s"]) / float(fields["step_s"])
    assert abs(float(fields["linear_gain"]) - ratio) <= 0.05 * ratio  # both steps rounded to 0.1 ms


def test_vs_bf16_times_ours_under_bf16_autocast_in_the_same_rounds():
    """--vs-bf16: ours in fp32 and ours under bf16 autocast in the same rounds, their ratio, the fp32 reference
    against the bf16 step and the bf16 probe's rate."""
    fields = _quick_line("sit", "--vs-bf16")
    bf16, fp32, reference = (float(fields[k]) for k in ("bf16_step_s", "step_s", "ref_step_s"))
    assert bf16 > 0 and float(fields["bf16_peak"]) > 0 and 0 < float(fields["bf16_pct_of_peak"]) < 100
    assert abs(float(fields["bf16_gain"]) - fp32 / bf16) <= 0.05 * fp32 / bf16  # steps rounded to 0.1 ms
    assert abs(float(fields["bf16_vs_released"]) - reference / bf16) <= 0.05 * reference / bf16 + 0.01
    assert "aten_step_s" not in fields


def test_each_reference_computes_what_ours_computes_with_the_same_weights():
    """The references are other layouts of the same function: ours, built with ``released=True``, loads the
    reference's weights through brainkit's released-weights import and gives the same output."""
    import torch

    sys.path.insert(0, str(BENCH.parent))
    import released_clip_mused
    import released_dc_mae
    import released_sit

    from brainkit.models import build_model, clip_mused_released, dc_mae, model_config, sit

    torch.manual_seed(0)
    sizes = {"n_patches": 5, "n_patch_vertices": 7, "released": True}
    ours = build_model("sit", model_config("sit", "testing", sizes)).eval()
    reference, forward, _, _ = released_sit.sit_reference(ours, ours.config)
    weights = {(k if k == "cls_token" else f"encoder.{k}"): v for k, v in reference.state_dict().items()}
    sit.load_released(ours, weights | {"encoder.pos_embedding": reference.pos_embedding}, "reference")
    x = torch.randn(2, 3, 5, 7)
    torch.testing.assert_close(forward.eval()(x), ours(x), atol=1e-5, rtol=1e-4)

    ours = build_model("dc_mae", model_config("dc_mae", "testing", {"released": True, "n_voxels": 52})).eval()
    reference, forward, _, _ = released_dc_mae.dc_mae_reference(ours, ours.config)
    dc_mae.load_released(ours, reference.state_dict(), "reference")
    x, mask = torch.randn(3, 52), ours.random_mask(3)
    torch.testing.assert_close(forward.eval()(x, mask), ours(x, mask), atol=1e-5, rtol=1e-4)

    options = {"n_subjects": 3, "n_classes": 11, "released": True}
    ours = build_model("clip_mused", model_config("clip_mused", "testing", options)).eval()
    reference, forward, difference, _ = released_clip_mused.clip_mused_reference(ours, ours.config)
    clip_mused_released.load_released(ours, reference.state_dict(), "reference")
    x, subject = torch.randn(2, 9, 8, 7), torch.tensor([2, 0])
    expected = ours(x, subject)
    got = (reference.eval(), forward(x, subject))[1]
    assert difference == 0
    for key in ("logits", "high", "low"):
        torch.testing.assert_close(got[key], getattr(expected, key), atol=1e-5, rtol=1e-4)


def test_the_vsmae_and_mindeye_references_compute_what_ours_computes():
    """vsMAE (released=True): the reference carries the released state dict's names, so brainkit's
    ``vsmae.load_released`` loads its weights and ours gives the same reconstruction; MindEye: the reference runs
    on ours' own parameter tensors (shared, not copied) and gives ours' output."""
    import torch

    sys.path.insert(0, str(BENCH.parent))
    import released_mindeye
    import released_vsmae

    from brainkit.models import build_model, model_config, vsmae

    torch.manual_seed(0)
    config = model_config("vsmae", "testing", {})
    options = {"encoder": {**config.encoder.__dict__, "released": True, "n_patches": 6, "n_patch_vertices": 7,
                           "positions": "index"}, "released": True}  # fmt: skip
    ours = build_model("vsmae", model_config("vsmae", "testing", options)).eval()
    reference, forward, difference, _ = released_vsmae.vsmae_reference(ours, ours.config)
    assert difference == 0
    with torch.no_grad():
        for p in reference.parameters():  # away from the initial values, so that a missed tensor shows
            p.add_(0.1 * torch.randn_like(p))
    vsmae.load_released(ours, reference.state_dict(), "reference")
    x, mask = ours.example(ours.config, 3, torch.Generator().manual_seed(2))
    torch.testing.assert_close(forward.eval()(x, mask), ours(x, mask), atol=1e-5, rtol=1e-4)
    assert isinstance(released_vsmae.vsmae_reference(ours, config), str)  # released=False: no counterpart

    ours = build_model(
        "mindeye_mlp", model_config("mindeye_mlp", "testing", {"n_voxels": 9, "output_shape": (2, 3)})
    )
    reference, forward, difference, _ = released_mindeye.mindeye_reference(ours, ours.config)
    assert difference == 0 and {id(p) for p in reference.parameters()} == {id(p) for p in ours.parameters()}
    x = torch.randn(4, 9)
    torch.testing.assert_close((reference.eval(), forward(x))[1], ours.eval()(x))

    sizes = {"n_voxels": {"a": 9, "b": 5}, "output_shape": (2, 3)}
    ours = build_model("shared_subject", model_config("shared_subject", "testing", sizes)).eval()
    reference, forward, difference, _ = released_mindeye.shared_subject_reference(ours, ours.config)
    assert difference == 0 and {id(p) for p in reference.parameters()} == {id(p) for p in ours.parameters()}
    x = torch.randn(4, 5)
    torch.testing.assert_close(
        (reference.eval(), forward(x, torch.ones(4, dtype=torch.long)))[1], ours(x, "b")
    )


def test_the_cross_modal_reference_computes_ours_released_step():
    """Vis-Dec phase 2 (released=True): the reference's fMRI side carries the released phase-2 names, so brainkit's
    DC-MAE and fMRI-cross imports load it; its image side is transformers' ViT-MAE (eager attention) plus the released
    ``layer_cross`` / ``cross_map_in``, mapped with the same rules; with those weights the two losses agree."""
    import torch

    sys.path.insert(0, str(BENCH.parent))
    import released_cross_modal

    from brainkit.models import build_model, dc_mae, model_config
    from brainkit.models.cross_modal import CROSS_PRESETS, CrossModalMAE, small_image_mae
    from brainkit.models.cross_modal_released import FMRI_CROSS_RULES, load_released_fmri_cross
    from brainkit.models.released import map_state

    torch.manual_seed(0)
    fmri = build_model("dc_mae", model_config("dc_mae", "testing", {"released": True, "n_voxels": 52}))
    ours = CrossModalMAE(fmri, small_image_mae("testing"), CROSS_PRESETS["testing_released"]).eval()
    reference, forward, difference, _ = released_cross_modal.cross_modal_reference(ours, ours.config)
    assert difference == 0
    with torch.no_grad():
        for p in reference.parameters():  # away from the initial values, so that a missed tensor shows
            p.add_(0.05 * torch.randn_like(p) if p.requires_grad else 0.0)  # the fixed positions stay
    state = reference.fmri.state_dict()
    dc_mae.load_released(
        ours.fmri, {k: v for k, v in state.items() if not k.startswith("cross_")}, "reference"
    )
    load_released_fmri_cross(ours.fmri_cross, state, "reference")
    ours.image.load_state_dict(reference.image.mae.state_dict())
    image = {k.replace("layer_cross.", "cross_blocks."): v
             for k, v in reference.image.state_dict().items() if not k.startswith("mae.")}  # fmt: skip
    ours.image_cross.load_state_dict(map_state(image, FMRI_CROSS_RULES, ours.image_cross.state_dict()))
    inputs = ours.example(ours.config, 3, torch.Generator().manual_seed(1))
    torch.testing.assert_close(forward.eval()(*inputs)["loss"], ours(*inputs)["loss"], atol=1e-5, rtol=1e-4)
    plain = CrossModalMAE(fmri, small_image_mae("testing"), CROSS_PRESETS["testing"])
    assert isinstance(
        released_cross_modal.cross_modal_reference(plain, plain.config), str
    )  # ours' own layout


def test_the_ldm_reference_computes_ours_output_and_gradients_on_ours_modules():
    """Vis-Dec phase 3: the CompVis-layout UNet (explicit einsum attention, checkpointed transformer blocks, the
    released skip order) over ours' leaf modules gives ours' predicted noise and parameter gradients, at a UNet
    with cross-attention on some levels only (as the label2img architecture) and a level without."""
    import torch

    sys.path.insert(0, str(BENCH.parent))
    import released_ldm

    from brainkit.config import replace
    from brainkit.models import build_model
    from brainkit.models.ldm import PRESETS

    base = replace(PRESETS["testing"], image_size=32, unet_channels=(16, 32, 32), unet_cross_attention=(0, 1, 1),
                   attention_head_dim=2, n_tokens=6, fmri_dim=5)  # fmt: skip
    for trained in ("all", "cross_attention"):
        torch.manual_seed(0)
        config = replace(base, unet_trained=trained)
        ours = build_model("ldm", config)
        with torch.no_grad():
            for p in ours.unet.parameters():  # diffusers zero-initialises some outputs: every path must count
                p.normal_(0.0, 0.1)
        reference, forward, difference, _ = released_ldm.ldm_reference(ours, config)
        ours_trained = {n for n, p in ours.named_parameters() if p.requires_grad}
        assert difference == 0 and {id(p) for p in reference.parameters() if p.requires_grad} == {
            id(p) for p in ours.parameters() if p.requires_grad
        }
        inputs = type(ours).example(config, 3, torch.Generator().manual_seed(1))
        grads = []
        for run in (ours, forward):
            out = run(*inputs)
            out.square().mean().backward()
            grads.append(
                (out.detach(), {n: p.grad for n, p in ours.named_parameters() if p.grad is not None})
            )
            ours.zero_grad(set_to_none=True)
        (a, ga), (b, gb) = grads
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
        assert set(ga) == ours_trained  # ours: the trained parameters' gradients alone
        # the reference: the released step's, every UNet gradient (train_cond_stage_only still computes them all)
        assert set(gb) == (ours_trained | {f"unet.{n}" for n, _ in ours.unet.named_parameters()})
        assert {n for n, p in ours.named_parameters() if p.requires_grad} == ours_trained  # flags put back
        for name in ga:
            torch.testing.assert_close(gb[name], ga[name], atol=1e-6, rtol=1e-4, msg=name)
    assert {n.split(".")[-2] for n in ours_trained if n.startswith("unet.")} == {
        "norm2",
        "to_q",
        "to_k",
        "to_v",
        "0",
    }


def test_attention_on_the_cpu_is_counted_with_torchs_sdpa_formulas():
    """torch's FlopCounterMode has no formula for the CPU flash kernel (0 FLOPs); the bench adds torch's own."""
    import torch
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(BENCH.parent))
    import bench_models

    q, k, v = (torch.randn(2, 3, 10, 4, requires_grad=True) for _ in range(3))
    with FlopCounterMode(display=False, custom_mapping=bench_models.flop_formulas()) as counter:
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    forward = 2 * (2 * 2 * 3 * 10 * 10 * 4)  # q k^T and attention x v, 2 FLOPs per multiply-add
    assert counter.get_total_flops() == forward + 5 * forward // 2  # backward: four products + q k^T again


def test_models_without_released_code_say_so():
    sys.path.insert(0, str(BENCH.parent))
    import bench_models

    assert bench_models.build_reference("brain_mae", None, None) == "no_released_code"
    assert bench_models.build_reference("linear_encoding", None, None) == "no_released_code_(our_baseline)"
    assert bench_models.build_reference("not_a_model", None, None) == "no_released_style_reference"


def test_the_paper_run_adds_lite_minds_released_computation_row_and_name_at_preset_picks_a_model_preset():
    sys.path.insert(0, str(BENCH.parent))
    import bench_models

    rows = bench_models.with_released_rows(["brain_mae", "cross_modal", "lite_mind", "sit"])
    assert rows == ["brain_mae", "cross_modal", "cross_modal@paper_released", "lite_mind",
                    "lite_mind@nsd_subj01_released", "sit"]  # fmt: skip
    paper, label = bench_models._config("lite_mind", "paper")
    released, released_label = bench_models._config("lite_mind", "paper", "nsd_subj01_released")
    assert (label, released_label) == ("nsd_subj01", "nsd_subj01_released")
    assert (paper.fremlp, released.fremlp) == (
        "full",
        "diagonal",
    )  # the reference's einsum reads the diagonal
    assert released.n_voxels == paper.n_voxels == 15724 and released.output_shape == paper.output_shape


def test_a_reference_whose_parameter_count_is_not_the_stated_one_fails_the_run(monkeypatch):
    """The bench refuses a reference whose parameters differ from ours by other than the stated difference."""
    import pytest

    sys.path.insert(0, str(BENCH.parent))
    import bench_models
    import released_sit

    right = released_sit.sit_reference

    def wrong(model, config):
        reference, forward, _, note = right(model, config)
        return reference, forward, 1, note

    monkeypatch.setattr(released_sit, "sit_reference", wrong)
    with pytest.raises(SystemExit, match=r"sit: the reference has 2,796 parameters, ours 2,796: difference \+0, "
                       r"stated \+1"):  # fmt: skip
        bench_models.measure("sit", "testing", 2, 1)


GPU_SUITE = BENCH.parent / "gpu_suite.py"


def test_gpu_suite_refuses_without_a_gpu_and_checks_its_code_path_on_the_cpu():
    """bench/gpu_suite.py: exit 2 with the reason on a machine without CUDA; --cpu-check runs the same
    measurement (fp32 and bf16 autocast, SDPA calls counted) at the testing presets."""
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal is not what it does")
    refused = subprocess.run([sys.executable, str(GPU_SUITE)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "needs a CUDA GPU" in refused.stderr
    done = subprocess.run(
        [sys.executable, str(GPU_SUITE), "--cpu-check", "--models", "sit"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    assert [(line.split()[0], line.split()[2]) for line in lines] == [
        ("sit", "mode=fp32"),
        ("sit", "mode=bf16"),
    ]
    for line in lines:
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        assert (
            float(fields["step_s"]) > 0
            and float(fields["samples_s"]) > 0
            and 0 < float(fields["mfu_probe"]) < 1
        )
    assert all(
        "sdpa=2_calls:default_kernels" in line for line in lines
    )  # SiT-testing: 2 blocks, no flash on a CPU


def test_gpu_suite_moves_every_training_config_of_a_recipe_and_knows_the_datasheet_peaks():
    sys.path.insert(0, str(BENCH.parent))
    import gpu_suite

    sim = gpu_suite.training_overrides("sim", "testing", 7)
    assert {"vsmae.training.accelerator=gpu", "training.precision=bf16-mixed", "training.steps=7"} <= set(sim)
    assert len(sim) == 6  # the vsMAE phase and the tri-modal phase, three keys each
    assert gpu_suite.nominal_peak("NVIDIA H200") == 989.0
    assert gpu_suite.nominal_peak("NVIDIA H100 PCIe") == 756.0 and gpu_suite.nominal_peak("Tesla T4") is None


def test_min_seconds_adds_rounds_to_a_short_step_up_to_the_cap():
    sys.path.insert(0, str(BENCH.parent))
    import bench_models

    assert bench_models.measure("linear_encoding", "testing", 2, 1, probe=128)["rounds"] == 1
    row = bench_models.measure("linear_encoding", "testing", 2, 1, probe=128, min_seconds=0.02)
    assert 1 < row["rounds"] <= bench_models.MAX_ROUNDS
    assert (
        bench_models.measure("linear_encoding", "testing", 2, 3, probe=128, min_seconds=3600)["rounds"]
        == bench_models.MAX_ROUNDS
    )


def test_quick_bench_compiles_ours_when_asked():
    """--compile: ours' step through torch.compile (training.compile's path), its compilation timed apart."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--threads", "1", "--models", "mindeye_mlp", "--compile"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert "ours through torch.compile" in done.stdout.splitlines()[0]
    (line,) = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    assert float(fields["compile_s"]) > 0 and float(fields["step_s"]) > 0
    assert float(fields["ratio_vs_released"]) > 0


def test_paired_quartiles_are_the_per_round_ratios_quartiles():
    """Q1..Q3 of reference / ours round by round, not of either side's times alone."""
    sys.path.insert(0, str(BENCH.parent))
    from bench_models import paired_quartiles

    ours = [1.0, 2.0, 1.0, 1.0, 4.0]
    reference = [1.5, 3.0, 1.2, 2.0, 4.0]  # ratios 1.5, 1.5, 1.2, 2.0, 1.0
    assert paired_quartiles(reference, ours) == "1.20..1.50"
    assert paired_quartiles([3.0], [2.0]) == "1.50..1.50"
