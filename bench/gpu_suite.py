"""The GPU suite: every model's paper-preset training step on one GPU, in fp32, bf16 autocast, and bf16 autocast
with ``torch.compile``, flash attention forced where a model calls ``scaled_dot_product_attention``; then (``--e2e``)
one short end-to-end run of each method through ``brainkit run`` on the GPU.

    python bench/gpu_suite.py [--models a,b] [--batch 32] [--rounds 10] [--modes fp32,bf16,bf16_compile]
    python bench/gpu_suite.py --e2e [--recipes lite_mind,sim] [--e2e-steps 50]
    python bench/gpu_suite.py --cpu-check      # the same code on the CPU at the testing presets: no GPU figures

Without a CUDA GPU it refuses (exit 2) and says so, unless ``--cpu-check`` asks for the code-path check (what
tests/test_bench_models.py runs). Per model and mode one line:

    MODEL preset=P mode=M batch=B step_s=S samples_s=N peak_mem_gb=G tflops=T mfu_nominal=X mfu_probe=Y sdpa=...

- the model and its input are those of bench/bench_models.py (``cls.example`` at the paper preset: the sizes of
  tests/test_models.py's paper counts), forward + the model's loss (else MSE of its outputs to zeros) + backward +
  AdamW (``fused=True`` on CUDA), the median of ``--rounds`` steps after warm-up (compiling steps excluded and
  their time reported as ``compile_s``), timed with ``torch.cuda.synchronize``;
- FLOPs: ``torch.utils.flop_counter`` over one fp32 eager step (matmuls and convolutions; the count is the same
  for every mode), so ``mfu`` = counted FLOPs / step time / peak: ``mfu_nominal`` against the datasheet's dense
  bf16 peak of the GPU (table ``NOMINAL_BF16_TFLOPS``; "n/a" for a GPU not in it), ``mfu_probe`` against a bf16
  8192^3 matmul measured in the same process;
- ``sdpa``: how many ``scaled_dot_product_attention`` calls one step makes, and whether the flash kernel took them
  (``flash``) or the model's inputs needed another kernel (``fallback: reason``; fp32 never uses flash);
- peak GPU memory: ``torch.cuda.max_memory_allocated`` over the timed steps.

``--e2e`` runs ``brainkit run RECIPE --preset P`` for each method on its built-in data with every training config
of the recipe moved to the GPU (``accelerator=gpu``, ``precision=bf16-mixed``, ``steps=--e2e-steps``; the paths are
found in the recipe's config, :func:`training_overrides`), and prints wall time and exit status per recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_models  # noqa: E402  (the models' paper presets and example configs, shared with the CPU bench)

MODES = ("fp32", "bf16", "bf16_compile")
# Dense bf16 tensor-core peaks from the vendors' datasheets (TFLOP/s, without sparsity).
NOMINAL_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
                       "L40S": 362.0, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.0}  # fmt: skip
# The preset of each method's short end-to-end run on its built-in data (the paper presets of lite_mind and
# clip_mused read the real NSD / HCP downloads, which a lent machine does not hold).
E2E_PRESETS = {"lite_mind": "cpu_small", "vis_dec": "paper", "clip_mused": "cpu_small", "sim": "paper",
               "vsmae": "paper", "brain_mae": "paper"}  # fmt: skip


def _figures(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant figures: a tiny testing model's utilisation (1e-5 on a CPU) is not 0."""
    return float(f"{value:.{digits}g}")


def nominal_peak(device_name: str) -> float | None:
    """The datasheet bf16 peak (TFLOP/s) of the GPU named ``device_name`` (longest matching key), or None."""
    matches = [key for key in NOMINAL_BF16_TFLOPS if key.lower() in device_name.lower()]
    return NOMINAL_BF16_TFLOPS[max(matches, key=len)] if matches else None


def probe_tflops(device, size: int = 8192) -> float:
    """Measured bf16 matmul rate (TFLOP/s) on ``device``: the best of 3 products of ``size``^3."""
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    best = 0.0
    for _ in range(4):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e12)
    return best


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SdpaProbe:
    """Counts ``F.scaled_dot_product_attention`` calls; with ``flash``, runs each under the flash kernel only and
    records the first reason a call could not use it (then runs it on the default kernels)."""

    def __init__(self, flash: bool) -> None:
        self.flash, self.calls, self.fallback = flash, 0, None

    def __enter__(self) -> SdpaProbe:
        import torch.nn.functional as F

        self._original = F.scaled_dot_product_attention
        probe = self

        def counted(*args, **kwargs):
            probe.calls += 1
            if not probe.flash or probe.fallback is not None:
                return probe._original(*args, **kwargs)
            from torch.nn.attention import SDPBackend, sdpa_kernel

            try:
                with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                    return probe._original(*args, **kwargs)
            except RuntimeError as err:
                probe.fallback = str(err).splitlines()[0][:120]
                return probe._original(*args, **kwargs)

        F.scaled_dot_product_attention = counted
        return self

    def __exit__(self, *exc) -> None:
        import torch.nn.functional as F

        F.scaled_dot_product_attention = self._original

    def summary(self) -> str:
        if not self.calls:
            return "none"
        if not self.flash:
            return f"{self.calls}_calls:default_kernels"
        return f"{self.calls}_calls:" + ("flash" if self.fallback is None else f"fallback({self.fallback})")


def measure(name: str, preset: str, mode: str, batch: int, rounds: int, device_name: str) -> dict:
    """One model, one mode, in this process (module docstring)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from brainkit.models import build_model, count_parameters

    device = torch.device(device_name)
    torch.manual_seed(0)
    config, used = bench_models._config(name, preset)
    model = build_model(name, config).to(device)
    row = {"model": name, "preset": used, "mode": mode, "batch": batch, "params": count_parameters(model)}
    if hasattr(model, "fit_closed_form"):
        return row | {"note": "closed-form fit, no optimiser step"}
    inputs = [x.to(device) if torch.is_tensor(x) else x
              for x in type(model).example(config, batch, torch.Generator().manual_seed(1))]  # fmt: skip
    shapes = model.output_shape_for(batch)
    shapes = shapes if isinstance(shapes, dict) else {"output": shapes}
    parameters = [p for p in model.parameters() if p.requires_grad]
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW(parameters, lr=1e-4, **fused)
    model.train()
    bf16 = mode != "fp32"
    forward = torch.compile(model) if mode == "bf16_compile" else model

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = bench_models.step_loss(forward, inputs, shapes)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:  # counted eagerly, in fp32 (the same work in every mode)
        with torch.autocast(device.type, enabled=False):
            bench_models.step_loss(model, inputs, shapes).backward()
    optimizer.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    with SdpaProbe(flash=bf16 and device.type == "cuda") as sdpa:
        _sync(device)
        start = time.perf_counter()
        for _ in range(3 if mode == "bf16_compile" else 1):  # warm-up (and compilation)
            step()
        _sync(device)
        warmup = time.perf_counter() - start
        calls = sdpa.calls
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(rounds):
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - start)
        sdpa.calls = calls // (3 if mode == "bf16_compile" else 1)
    seconds = statistics.median(times)
    peak_mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    probe = probe_tflops(device, 8192 if device.type == "cuda" else 512)
    nominal = nominal_peak(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    rate = flops / seconds / 1e12
    return row | {
        "step_s": round(seconds, 5),
        "samples_s": round(batch / seconds, 1),
        "compile_s": round(warmup, 2) if mode == "bf16_compile" else None,
        "peak_mem_gb": round(peak_mem, 3),
        "tflops": _figures(rate),
        "mfu_nominal": _figures(rate / nominal) if nominal else None,
        "mfu_probe": _figures(rate / probe),
        "probe_tflops": round(probe, 3),
        "sdpa": sdpa.summary(),
    }


def line(row: dict) -> str:
    """The printed line of one measurement (module docstring)."""
    head = f"{row['model']} preset={row['preset']} mode={row['mode']}"
    if "note" in row:
        return f"{head} params={row['params']:,} {row['note']}"
    if "error" in row:
        return f"{head} FAILED: {row['error']}"
    extra = f" compile_s={row['compile_s']}" if row.get("compile_s") is not None else ""
    nominal = row["mfu_nominal"] if row["mfu_nominal"] is not None else "n/a(gpu_not_in_table)"
    return (
        f"{head} batch={row['batch']} params={row['params']:,} step_s={row['step_s']} samples_s={row['samples_s']} "
        f"peak_mem_gb={row['peak_mem_gb']} tflops={row['tflops']} mfu_nominal={nominal} mfu_probe={row['mfu_probe']} "
        f"probe_tflops={row['probe_tflops']} sdpa={row['sdpa']}{extra}"
    )


def training_overrides(recipe: str, preset: str, steps: int, accelerator: str = "gpu",
                       precision: str = "bf16-mixed") -> list[str]:  # fmt: skip
    """``--set`` overrides moving every :class:`TrainingConfig` in recipe ``recipe``'s ``preset`` config (at any
    depth, in lists too) to ``accelerator`` / ``precision`` with ``steps`` optimiser steps."""
    from brainkit.recipes import recipe_config
    from brainkit.training import TrainingConfig

    found: list[str] = []

    def walk(node, path: str) -> None:
        if isinstance(node, TrainingConfig):
            found.append(path)
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            for item in dataclasses.fields(node):
                walk(getattr(node, item.name), f"{path}.{item.name}" if path else item.name)

    walk(recipe_config(recipe, preset), "")
    if not found:
        raise SystemExit(f"{recipe} {preset}: no TrainingConfig in its config; nothing to move to the GPU")
    return [f"{path}.{key}={value}" for path in found
            for key, value in (("accelerator", accelerator), ("precision", precision), ("steps", steps))]  # fmt: skip


def end_to_end(recipes: list[str], steps: int, accelerator: str, precision: str) -> None:
    for recipe in recipes:
        preset = E2E_PRESETS.get(recipe, "testing")
        overrides = training_overrides(recipe, preset, steps, accelerator, precision)
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "brainkit.cli", "run", recipe, "--preset", preset,
                       "--out", str(Path(tmp) / "run")] + [a for o in overrides for a in ("--set", o)]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            wall = time.perf_counter() - start
        status = (
            "ok" if done.returncode == 0 else f"FAILED({(done.stderr.strip().splitlines() or ['?'])[-1]})"
        )
        print(f"e2e {recipe} preset={preset} steps={steps} wall_s={wall:.1f} {status}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated model names (default: every registered model)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--preset", default="paper", choices=("testing", "cpu_small", "paper"))
    parser.add_argument("--e2e", action="store_true", help="also one short end-to-end run per method")
    parser.add_argument("--recipes", default=",".join(E2E_PRESETS))
    parser.add_argument("--e2e-steps", type=int, default=50)
    parser.add_argument("--cpu-check", action="store_true", help="the code path on the CPU, testing presets")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure MODEL:MODE in this process
    args = parser.parse_args()
    import torch

    if args.cpu_check:
        device, preset, batch, rounds = "cpu", "testing", 2, 1
        modes = [m for m in args.modes.split(",") if m != "bf16_compile"]  # compiling on a CPU takes minutes
    elif not torch.cuda.is_available():
        print("gpu_suite needs a CUDA GPU and this machine has none (torch.cuda.is_available() is False); run it "
              "on a GPU machine with a CUDA build of torch, or --cpu-check to check the code path here.",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    else:
        device, preset, batch, rounds, modes = (
            "cuda",
            args.preset,
            args.batch,
            args.rounds,
            args.modes.split(","),
        )
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; choose from {list(MODES)}")
    if args.one:
        name, mode = args.one.split(":")
        print(json.dumps(measure(name, preset, mode, batch, rounds, device)))
        return
    from brainkit.registry import MODELS

    names = args.models.split(",") if args.models else list(MODELS)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (cpu-check)"
    print(f"# gpu_suite {time.strftime('%Y-%m-%d %H:%M')} device {gpu}, torch {torch.__version__}, preset {preset}, "
          f"batch {batch}, {rounds} rounds")  # fmt: skip
    for name in names:
        for mode in modes:
            command = [sys.executable, __file__, "--one", f"{name}:{mode}", "--preset", preset, "--batch",
                       str(batch), "--rounds", str(rounds)] + (["--cpu-check"] if args.cpu_check else [])  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                reason = (done.stderr.strip().splitlines() or [str(done.returncode)])[-1]
                print(line({"model": name, "preset": preset, "mode": mode, "error": reason}), flush=True)
                continue
            print(line(json.loads(done.stdout.strip().splitlines()[-1])), flush=True)
    if args.e2e:
        accelerator, precision = ("cpu", "32-true") if args.cpu_check else ("gpu", "bf16-mixed")
        end_to_end(args.recipes.split(","), 2 if args.cpu_check else args.e2e_steps, accelerator, precision)


if __name__ == "__main__":
    main()
