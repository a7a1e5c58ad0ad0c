"""One training step of every registered model: time, FLOP rate, fraction of the machine's fp32 peak, peak memory.

    python bench/bench_models.py [--quick] [--preset cpu_small|paper|testing] [--models a,b] [--rounds 5]
                                 [--min-seconds 10] [--batch N] [--threads N] [--compile]
                                 [--linear onednn|aten] [--vs-aten] [--vs-bf16]

Each model runs in a FRESH subprocess (so its peak RSS, ``VmHWM`` from /proc/self/status, is its own). In that
process, rounds interleave a peak probe and the model's step, so both see the same machine load; at least
``--rounds`` of them, more (up to 100) until ours' timed steps add up to ``--min-seconds`` (a sub-second step on a
shared machine varies by 10-30 % from one step to the next; the line's ``rounds=`` says how many were run):

- peak probe: the best of ``torch.mm`` (MKL sgemm) and the same product as a channels-last 1x1 convolution
  (oneDNN), on 2048^3 fp32: the faster kernel stands for the machine's fp32 limit (measured here 2026-12-02: both
  ~165-170 GFLOP/s on 2 threads; the ~1.7x oneDNN advantage reported on another machine did not show);
- step: the model's example input (``cls.example``, the battery interface of models/base.py) at the preset,
  forward, the model's own loss when its output holds one (else the MSE of each declared output to zeros),
  backward, AdamW step (ours: fused, as brainkit's trainer builds it; the reference: torch's default AdamW).
  FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one step of ours (matmuls, convolutions and
  attention, the CPU flash kernel's by :func:`flop_formulas`; FFTs and elementwise ops are not counted), so
  "pct_of_peak" is counted work / median step time / best probe rate of the same process.

Presets: ``--quick`` = ``testing`` (tiny, for CI), ``cpu_small`` (default; the model's cpu_small preset where it has
one, else its testing preset), ``paper`` (the paper preset and data sizes, as in tests/test_models.py's counts;
several GB for the big ones; plus, after Lite-Mind's and the cross-modal model's paper rows, one at
``nsd_subj01_released`` / ``paper_released``: the released computation at the paper's sizes, the reference's own
work, see PAPER_RELEASED). ``--models NAME@PRESET`` measures a
model preset at the bench preset's data sizes. Closed-form models (ridge) have no optimiser step and are reported as
such.

``ratio_vs_released`` = the released-style reference's median step / ours, timed in the same process and the same
interleaved rounds (probe, ours, reference), with the same input, the same loss and AdamW. The references are
written in the bench files after the released code's layout (none is copied): SiT and SIM's fMRI path on
vit-pytorch's Transformer (bench/released_sit.py), Vis-Dec's MAE on timm 0.5.4 Blocks (released_dc_mae.py),
CLIP-MUSED's ResNet_MS (released_clip_mused.py), Lite-Mind's DFTBackbone (bench_lite_mind.py), the released
vsMAE's tubelet path (released_vsmae.py; vsMAE's paper row is the ``sim_released`` preset), Vis-Dec phase 2's
MAEforFMRICross and cross-layer ViT-MAE (released_cross_modal.py, at ``paper_released``) and MindEye v1's
BrainNetwork backbone (released_mindeye.py, on ours' parameter tensors, stepped by ours' optimiser; behind
MindEye2's RidgeRegression for ``shared_subject``) and Vis-Dec
phase 3's UNetModel with checkpointed SpatialTransformers (released_ldm.py, on ours' leaf modules; the ldm paper
row is the ``label2img`` architecture, randomly initialised). Their parameter
count is checked against ours (``ref_params_diff``: 0, or the stated difference, else the run fails). "n/a" with
the reason where there is no released code or no reference yet. ``rss_gb`` is read before the reference is built.
``ratio_at_peak`` = the reference's step / (ours' counted FLOPs at the probe's peak): the ratio ours would reach
with its counted work at the machine's fp32 limit, so a target above it needs less work, not a faster kernel.
``ratio_quartiles`` = ``Q1..Q3`` of the per-round ratios (reference / ours, the two steps of one round back to
back): how far the rounds behind ``ratio_vs_released`` agree.
Ours' fp32 CPU linears run through oneDNN, as every model brainkit builds does (models/cpu_linear.py; ``--linear
aten``: through F.linear instead); the reference always runs F.linear, as the released code does. ``--vs-aten`` adds
ours with F.linear as a third step of each round: ``linear_gain`` = its median step / ours'. ``--vs-bf16`` adds ours
under CPU bf16 autocast (what ``training.precision=bf16-mixed`` runs; weights, gradients and AdamW in fp32) as one
more step of each round, and a bf16 ``torch.mm`` probe (2048^3) to each round: ``bf16_step_s``, ``bf16_gain`` (ours
fp32 / ours bf16), ``bf16_vs_released`` (the fp32 reference / ours bf16: another precision, not the identical
configuration the fp32 ratio compares) and ``bf16_pct_of_peak`` (ours' counted work at the bf16 step against the
bf16 probe).
``--profile K`` prints, under each line, the K operators with the most own CPU time in one step (ours, then the
reference), with their share of the step and the GFLOP/s of the matmuls and convolutions among them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_probes import bf16_mm_gflops, flop_formulas, op_profile, peak_gflops, rss_gb  # noqa: E402

# (preset, data-given sizes) of the paper setting per model: the rows of tests/test_models.py::PAPER_COUNTS.
PAPER = {
    "lite_mind": ("nsd_subj01", {}),
    "mindeye_mlp": ("mindeye_nsd_subj01", {}),
    "sit": ("sim", {}),
    "sim": ("sim", {}),
    "vsmae": (
        "sim_released",
        {},
    ),  # the released computation at SIM's sizes (vsMAE's training config is unpublished)
    "dc_mae": ("paper", {}),
    "clip_mused": ("hcp", {"n_subjects": 9, "n_classes": 859}),
    "brain_mae": ("sg_paper", {"n_rois": 100, "segment_frames": 21}),
    "cross_modal": ("paper", {}),
    # the architecture of the paper's pretrained label2img LDM (random weights: a step's time does not depend on
    # them), conditioned on the paper DC-MAE's 1 + 291 tokens of 1,024
    "ldm": ("label2img", {"n_tokens": 292, "fmri_dim": 1024}),
    # MindEye2's 4,096-d shared latent for NSD's four 40-session subjects (nsdgeneral voxels), MindEye v1's backbone
    # at its paper size (a step trains one subject's adapter: one subject per batch)
    "shared_subject": (
        "mindeye2_nsd",
        {
            "n_voxels": {"subj01": 15724, "subj02": 14278, "subj05": 13039, "subj07": 12682},
            "output_shape": (257, 768),
        },
    ),
}
# With --preset paper, a second row per model at the preset that runs the released computation at the paper's sizes
# where the paper preset computes more than the released code does (Lite-Mind: the paper's full d x d complex FreMLP
# against the released einsum, which reads the weight's diagonal; ours' released preset does the reference's work)
# or another layout (the cross-modal model: ours' TransformerDecoderLayer stacks against the released ViT-MAE layers).
PAPER_RELEASED = {
    "lite_mind": "nsd_subj01_released",
    "cross_modal": "paper_released",
    "ldm": "label2img_released",  # the released phase 3's trained set: cross-attention and its LayerNorm
}
# Models whose paper setting the bench cannot build, and why (none at present).
PAPER_SKIP: dict[str, str] = {}


class NotRun(Exception):
    """The model is not measured at this preset (the message says why)."""


# Data-given sizes of the cpu_small presets (the built-in data's, as their preset comments give them); models not
# here take the testing sizes, and their testing preset where those do not fit.
CPU_SMALL = {
    "lite_mind": {"n_voxels": 3936, "output_shape": (1280,)},  # ~3,900 voxels -> EfficientNet-lite0's 1,280-d
    "dc_mae": {"n_voxels": 3936},  # 246 patches of 16
    "sit": {"n_patches": 1280, "n_patch_vertices": 45, "patch_order": 3},  # ico6 / ico3, positions="sphere"
    "clip_mused": {"n_subjects": 4, "n_classes": 30},  # the preset's count: 196,974 params
}
# model -> (bench module, function(model, config) -> (reference, forward, params difference, note) or a reason)
REFERENCES = {
    "lite_mind": ("bench_lite_mind", "lite_mind_reference"),
    "sit": ("released_sit", "sit_reference"),
    "sim": ("released_sit", "sim_reference"),
    "dc_mae": ("released_dc_mae", "dc_mae_reference"),
    "clip_mused": ("released_clip_mused", "clip_mused_reference"),
    "vsmae": ("released_vsmae", "vsmae_reference"),
    "mindeye_mlp": ("released_mindeye", "mindeye_reference"),
    "cross_modal": ("released_cross_modal", "cross_modal_reference"),
    "ldm": ("released_ldm", "ldm_reference"),
    "shared_subject": ("released_mindeye", "shared_subject_reference"),
}
NO_REFERENCE = {
    "brain_mae": "no_released_code",
    "linear_encoding": "no_released_code_(our_baseline)",
}


def build_reference(name: str, model, config):
    """The released-style reference of ``name`` at ``config`` (see REFERENCES), or the reason there is none."""
    import importlib

    if name not in REFERENCES:
        return NO_REFERENCE.get(name, "no_released_style_reference")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    module, function = REFERENCES[name]
    return getattr(importlib.import_module(module), function)(model, config)


def with_released_rows(names: list[str]) -> list[str]:
    """``names`` with ``NAME@PRESET`` after each model of PAPER_RELEASED (its released-computation row)."""
    rows = []
    for name in names:
        rows.append(name)
        if name in PAPER_RELEASED:
            rows.append(f"{name}@{PAPER_RELEASED[name]}")
    return rows


def _config(name: str, preset: str, variant: str = ""):
    """(config, preset label) of ``name`` at the bench preset; ``variant``: that model preset instead, at the
    bench preset's data sizes (``--models lite_mind@nsd_subj01_released``)."""
    from brainkit.errors import ConfigError
    from brainkit.models import model_config
    from brainkit.models.base import example_config
    from brainkit.registry import MODELS

    cls = MODELS.get(name)
    if variant:
        sizes = PAPER.get(name, ("", {}))[1] if preset == "paper" else CPU_SMALL.get(name, {})
        return model_config(name, variant, sizes), variant
    if preset == "paper":
        if name in PAPER_SKIP:
            raise NotRun(PAPER_SKIP[name])
        if name not in PAPER:  # a baseline of ours with no paper setting
            return example_config(name), "testing(no_paper_preset)"
        paper, sizes = PAPER[name]
        return model_config(name, paper, sizes), paper
    if preset == "cpu_small" and "cpu_small" in cls.PRESETS:
        testing = example_config(name)  # the testing sizes stand in for the data-given ones
        sizes = CPU_SMALL.get(name) or {
            f: getattr(testing, f)
            for f in ("n_voxels", "output_shape")
            if getattr(testing, f, None) is not None
        }
        try:
            return model_config(name, "cpu_small", sizes), "cpu_small"
        except ConfigError:  # a cpu_small preset whose sizes the testing ones cannot fill
            return example_config(name), "testing(cpu_small needs the data's sizes)"
    return example_config(name), "testing"


def step_loss(forward, inputs: list, shapes: dict):
    """The model's own loss when its output holds one, else the MSE of each declared output to zeros."""
    from brainkit.models.base import output_tensors

    tensors = output_tensors(forward(*inputs))
    loss = tensors.get("loss")
    return (
        loss if loss is not None else sum(tensors[k].float().square().mean() for k in shapes if k in tensors)
    )


MAX_ROUNDS = 100  # the most rounds --min-seconds adds


def measure(
    name: str,
    preset: str,
    batch: int,
    rounds: int,
    probe: int = 2048,
    profile: int = 0,
    min_seconds: float = 0.0,
    compiled: bool = False,
    linear_backend: str = "onednn",
    vs_aten: bool = False,
    vs_bf16: bool = False,
) -> dict:
    """One model in this process: median step seconds, counted GFLOP per step, best probe GFLOP/s, peak RSS.
    At least ``rounds`` rounds, more (up to MAX_ROUNDS) until ours' timed steps add up to ``min_seconds``: a
    short step's median is then taken over enough rounds to damp the machine's noise. ``compiled``: ours' step
    through ``torch.compile`` (training.compile's path; FLOPs counted on the eager step, the compiling steps
    untimed and reported as ``compile_s``). ``linear_backend``: ours' fp32 CPU linears through ``"onednn"``
    (brainkit's default, models/cpu_linear.py) or ``F.linear`` (``"aten"``); the reference always runs F.linear,
    as the released code does (also where it reuses ours' leaf modules). ``vs_aten``: one more step per round, ours
    with F.linear, and ``linear_gain`` = its median / ours' (what the oneDNN linears bring, in the same rounds).
    ``vs_bf16``: one more step per round, ours under CPU bf16 autocast, and a bf16 matmul probe per round."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from brainkit.errors import ConfigError
    from brainkit.models import build_model, count_parameters
    from brainkit.models.base import example_config
    from brainkit.models.cpu_linear import cpu_linear
    from brainkit.training.loop import fused_ok

    torch.manual_seed(0)
    name, _, variant = name.partition("@")
    try:
        config, used = _config(name, preset, variant)
    except NotRun as reason:
        return {"model": name, "preset": preset, "not_run": str(reason)}
    try:
        model = build_model(name, config)
    except ConfigError:  # a cpu_small preset whose data-given sizes the battery's testing sizes do not fill
        if used != "cpu_small":
            raise
        config, used = example_config(name), "testing(cpu_small needs the data's sizes)"
        model = build_model(name, config)
    row = {
        "model": name,
        "preset": used,
        "batch": batch,
        "params": count_parameters(model),
        "linear": linear_backend,
    }
    if hasattr(model, "fit_closed_form"):
        return row | {"note": "closed-form fit, no optimiser step", "rss_gb": round(rss_gb(), 3)}
    inputs = type(model).example(config, batch, torch.Generator().manual_seed(1))
    shapes = model.output_shape_for(batch)
    shapes = shapes if isinstance(shapes, dict) else {"output": shapes}
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trained, lr=1e-4, fused=fused_ok(trained)
    )  # as brainkit's trainer builds it
    model.train()

    ours_ids = {id(p) for p in model.parameters()}

    def make_step(module, forward, backend: str | None = None, bf16: bool = False):
        trained = [p for p in module.parameters() if p.requires_grad]
        if module is model:
            adamw = optimizer
        else:  # the reference: torch's default AdamW (the per-tensor loop on the CPU), as the released code's
            adamw = torch.optim.AdamW(trained, lr=1e-4)
            if all(id(p) in ours_ids for p in trained):  # a reference on ours' tensors: and on ours' moments
                adamw.state = optimizer.state

        if backend is None:
            backend = linear_backend if module is model else "aten"  # the released code runs F.linear

        def step() -> None:
            # bf16: the forward and the loss under autocast, backward outside it, as Fabric's bf16-mixed runs a step
            with cpu_linear(backend), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = step_loss(forward, inputs, shapes)
            loss.backward()
            adamw.step()
            adamw.zero_grad(set_to_none=True)

        return step

    step = make_step(model, model)
    with FlopCounterMode(display=False, custom_mapping=flop_formulas()) as counter:
        step()
    flops = counter.get_total_flops()
    if compiled:
        step, start = make_step(model, torch.compile(model)), time.perf_counter()
        step()
        step()  # a recompilation the second step may need (its gradients now exist) is not timed either
        row["compile_s"] = round(time.perf_counter() - start, 1)
    rss = rss_gb()  # ours alone: before the reference is built
    torch.manual_seed(0)
    built = build_reference(name, model, config)
    steps, reference = [step], None
    if not isinstance(built, str):
        reference, forward, difference, note = built
        reference.train()
        ref_params = count_parameters(reference)
        if ref_params - row["params"] != difference:
            raise SystemExit(
                f"{name}: the reference has {ref_params:,} parameters, ours {row['params']:,}: "
                f"difference {ref_params - row['params']:+,}, stated {difference:+,}"
            )
        steps.append(make_step(reference, forward))
        steps[1]()  # warm-up, as ours' counted step was
        row |= {"reference": note, "ref_params_diff": f"{difference:+d}"}
    extra = {}  # index in steps of the --vs-aten and --vs-bf16 steps
    if vs_aten:  # ours with F.linear
        extra["aten"] = len(steps)
        steps.append(make_step(model, model, "aten"))
        steps[-1]()
    if vs_bf16:  # ours under bf16 autocast (training.precision=bf16-mixed)
        extra["bf16"] = len(steps)
        steps.append(make_step(model, model, bf16=True))
        steps[-1]()
    times, peaks, bf16_peaks = [[] for _ in steps], [], []
    while len(peaks) < rounds or (sum(times[0]) < min_seconds and len(peaks) < MAX_ROUNDS):
        peaks.append(peak_gflops(probe))
        if vs_bf16:
            bf16_peaks.append(bf16_mm_gflops(probe))
        for timed, run in zip(times, steps):
            start = time.perf_counter()
            run()
            timed.append(time.perf_counter() - start)
    seconds, peak = statistics.median(times[0]), max(peaks)
    row["rounds"] = len(peaks)
    rate = flops / seconds / 1e9
    if reference is None:
        row["ratio_vs_released"] = f"n/a:{built}"
    else:
        ref_seconds = statistics.median(times[1])
        row |= {"ref_step_s": round(ref_seconds, 4)}
        # the ratio ours would reach if its counted work ran at the probe's peak: above it, only less work helps
        row["ratio_at_peak"] = round(ref_seconds * peak * 1e9 / flops, 2) if flops else "inf"
        row["ratio_vs_released"] = round(ref_seconds / seconds, 2)
        row["ratio_quartiles"] = paired_quartiles(times[1], times[0])
    if vs_aten:
        row["aten_step_s"] = round(statistics.median(times[extra["aten"]]), 4)
        row["linear_gain"] = round(row["aten_step_s"] / seconds, 3)
    if vs_bf16:
        bf16_seconds = statistics.median(times[extra["bf16"]])
        row |= {"bf16_step_s": round(bf16_seconds, 4), "bf16_gain": round(seconds / bf16_seconds, 3)}
        if reference is not None:
            row["bf16_vs_released"] = round(statistics.median(times[1]) / bf16_seconds, 2)
        row["bf16_peak"] = round(max(bf16_peaks), 1)
        row["bf16_pct_of_peak"] = round(100 * flops / bf16_seconds / 1e9 / max(bf16_peaks), 1)
    if profile:
        row["profile"] = {"ours": op_profile(steps[0], profile)}
        if reference is not None:
            row["profile"]["reference"] = op_profile(steps[1], profile)
    return row | {
        "step_s": round(seconds, 4),
        "gflop": round(flops / 1e9, 3),
        "gflops": round(rate, 1),
        "peak_gflops": round(peak, 1),
        "pct_of_peak": round(100 * rate / peak, 1),
        "rss_gb": round(rss, 3),
    }


def paired_quartiles(reference: list[float], ours: list[float]) -> str:
    """``"Q1..Q3"``: the lower and upper quartiles of the per-round ratios reference / ours. Both steps of a round
    run back to back, so a round that the machine slows slows both; the spread of these ratios is what the rounds
    say about ``ratio_vs_released`` (the ratio of the two medians), which one figure cannot show."""
    ratios = [r / o for r, o in zip(reference, ours, strict=True)]
    low, _, high = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
    return f"{low:.2f}..{high:.2f}"


def _line(row: dict) -> str:
    if "not_run" in row:
        return f"{row['model']} preset={row['preset']} not_run={row['not_run']}"
    if "note" in row:
        return f"{row['model']} preset={row['preset']} params={row['params']:,} {row['note']} rss_gb={row['rss_gb']}"
    reference = "".join(
        f" {key}={row[key]}"
        for key in (
            "compile_s",
            "aten_step_s",
            "linear_gain",
            "bf16_step_s",
            "bf16_gain",
            "bf16_vs_released",
            "bf16_peak",
            "bf16_pct_of_peak",
            "reference",
            "ref_params_diff",
            "ref_step_s",
            "ratio_at_peak",
            "ratio_quartiles",
        )
        if key in row
    )
    return (
        f"{row['model']} preset={row['preset']} batch={row['batch']} rounds={row['rounds']} params={row['params']:,} "
        f"linear={row['linear']} cpu_memory={row.get('cpu_memory')} step_s={row['step_s']} "
        f"gflop={row['gflop']} gflops={row['gflops']} peak={row['peak_gflops']}{reference} "
        f"ratio_vs_released={row['ratio_vs_released']} pct_of_peak={row['pct_of_peak']} rss_gb={row['rss_gb']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="testing presets, 2 rounds, 1024^3 probe (CI-sized)"
    )
    parser.add_argument("--preset", default="cpu_small", choices=("testing", "cpu_small", "paper"))
    parser.add_argument(
        "--models",
        help="comma-separated model names, NAME@PRESET for a model preset at the bench preset's data sizes "
        "(default: every registered model; with --preset paper also the PAPER_RELEASED rows)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="at least this many rounds")
    parser.add_argument(
        "--min-seconds", type=float, default=10.0, metavar="S",
        help=f"add rounds (up to {MAX_ROUNDS}) until ours' timed steps add up to S seconds; --quick: 0",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="K",
        help="after each line, the K operators with the most own CPU time in one step of ours and the reference",
    )  # fmt: skip
    parser.add_argument(
        "--compile",
        action="store_true",
        help="ours through torch.compile (training.compile), compile untimed",
    )
    parser.add_argument(
        "--linear",
        default="onednn",
        choices=("onednn", "aten"),
        help="ours' fp32 CPU linears: through oneDNN (brainkit's default) or F.linear (the reference: always F.linear)",
    )
    parser.add_argument(
        "--vs-aten",
        action="store_true",
        help="also time ours with F.linear in the same rounds: linear_gain = that step / ours' step",
    )
    from brainkit.training.heap import MODES as HEAP_MODES  # stdlib only: torch is not imported here

    parser.add_argument(
        "--cpu-memory",
        default="reuse",
        choices=HEAP_MODES,
        help="the trainer's training.cpu_memory for the process (both sides): reuse (brainkit's default) keeps freed "
        "memory for the next step, release leaves glibc's allocator as it is",
    )
    parser.add_argument(
        "--vs-bf16",
        action="store_true",
        help="also time ours under CPU bf16 autocast (training.precision=bf16-mixed) in the same rounds, with a "
        "bf16 matmul probe",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure this model in this process
    args = parser.parse_args()
    preset, rounds = ("testing", 2) if args.quick else (args.preset, args.rounds)
    min_seconds = 0.0 if args.quick else args.min_seconds
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        from brainkit.training.heap import cpu_heap, why_unchanged

        probe = 1024 if args.quick else 2048
        # as the trainer runs a CPU step, for ours and the reference alike
        with cpu_heap(args.cpu_memory) as changed:
            row = measure(
                args.one,
                preset,
                args.batch,
                rounds,
                probe,
                args.profile,
                min_seconds,
                args.compile,
                args.linear,
                args.vs_aten,
                args.vs_bf16,
            )
        if changed or args.cpu_memory == "release":
            row["cpu_memory"] = args.cpu_memory
        else:  # reuse asked, the allocator left as it is (not glibc, or the user's MALLOC_* variables)
            row["cpu_memory"] = "as_is:" + why_unchanged(args.cpu_memory).replace(" ", "_")
        print(json.dumps(row))
        return
    from brainkit.registry import MODELS

    names = args.models.split(",") if args.models else list(MODELS)
    if preset == "paper" and not args.models:
        names = with_released_rows(names)
    load = os.getloadavg()[0]
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} {os.cpu_count()} CPUs, load {load:.1f}, preset {preset}, {rounds} rounds"
        + (f" or more, until ours' steps add up to {min_seconds:g} s" if min_seconds else "")
        + (", ours through torch.compile" if args.compile else "")
        + f", ours' linears through {args.linear}, cpu_memory {args.cpu_memory}"
    )
    for name in names:
        command = [sys.executable, __file__, "--one", name, "--preset", preset, "--rounds", str(rounds),
                   "--batch", str(args.batch), "--profile", str(args.profile), "--min-seconds", str(min_seconds)]  # fmt: skip
        command += ["--threads", str(args.threads)] if args.threads else []
        command += ["--compile"] if args.compile else []
        command += ["--linear", args.linear] + (["--vs-aten"] if args.vs_aten else [])
        command += ["--vs-bf16"] if args.vs_bf16 else []
        command += ["--cpu-memory", args.cpu_memory]
        if args.quick:
            command.append("--quick")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(
                f"{name} FAILED: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
            )
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(_line(row), flush=True)
        for side, lines in row.get("profile", {}).items():
            print("\n".join(f"#   {side}: {line}" for line in lines), flush=True)


if __name__ == "__main__":
    main()
