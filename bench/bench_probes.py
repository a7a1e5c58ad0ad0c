"""What bench/bench_models.py measures with: the machine's fp32 peak probe, the FLOP formulas the counter lacks,
a per-operator profile of one step, this process's peak RSS."""

from __future__ import annotations

import math
import time
from pathlib import Path


def peak_gflops(size: int = 2048) -> float:
    """Best fp32 rate (GFLOP/s) of torch.mm and of the same product as a 1x1 convolution, this process."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    cl = torch.channels_last  # oneDNN's fastest layout for a 1x1 convolution here (NCHW was ~0.7x)
    image = a.T.reshape(1, size, 64, size // 64).contiguous(memory_format=cl)
    weight = b.T.reshape(size, size, 1, 1).contiguous(memory_format=cl)
    best = 0.0
    for run in (lambda: torch.mm(a, b), lambda: torch.nn.functional.conv2d(image, weight)):
        run()
        start = time.perf_counter()
        run()
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def bf16_mm_gflops(size: int = 2048) -> float:
    """Best bf16 ``torch.mm`` rate (GFLOP/s) of two products of ``size``^3, this process (oneDNN's bf16 kernel
    where the CPU has bf16 units: ~380-410 GFLOP/s on the 2-core AMD machine of docs/benchmarks.md, 2.2x its fp32
    ``mm``)."""
    import torch

    a, b = torch.randn(size, size, dtype=torch.bfloat16), torch.randn(size, size, dtype=torch.bfloat16)
    torch.mm(a, b)
    best = 0.0
    for _ in range(2):
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def rss_gb() -> float:
    """This process's peak resident memory (VmHWM), GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def flop_formulas() -> dict:
    """``FlopCounterMode`` formulas for the CPU flash-attention kernels, which torch.utils.flop_counter does not
    register (torch 2.13 has the CUDA ones only): without them every ``scaled_dot_product_attention`` on the CPU
    counts 0 FLOPs and an attention-heavy step (SiT's 1,281 tokens) looks half as busy as it is. torch's own
    SDPA formulas (the q k^T and attention x v products; backward: four gradient products and q k^T again). And
    oneDNN's linear (``mkldnn::_linear_pointwise``, which brainkit's CPU linears run: models/cpu_linear.py), counted
    as ``addmm`` is: 2 x rows x in x out."""
    import torch
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    def forward(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_backward_flop_count(grad_out, query, key, value)

    # (..., in) x (out, in)^T, counted as addmm's
    def onednn_linear(x, weight, *args, out_shape=None, **kwargs) -> int:
        return 2 * math.prod(x[:-1]) * x[-1] * weight[0]

    aten = torch.ops.aten
    formulas = {
        aten._scaled_dot_product_flash_attention_for_cpu: forward,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: backward,
    }
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):  # brainkit's CPU linears (models/cpu_linear.py)
        formulas[torch.ops.mkldnn._linear_pointwise] = onednn_linear
    return formulas


def op_profile(step, top: int) -> list[str]:
    """One ``step`` under torch.profiler: the ``top`` operators by own CPU time, each with its share of the step
    and, for matmuls and convolutions (the profiler's FLOP estimate), its GFLOP/s."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    lines = []
    for event in events[:top]:
        rate = f" {event.flops / event.self_cpu_time_total / 1e3:.0f}GFLOP/s" if event.flops else ""
        lines.append(
            f"{event.key} {event.self_cpu_time_total / 1e3:.1f}ms {100 * event.self_cpu_time_total / total:.1f}%"
            f" calls={event.count}{rate}"
        )
    return lines
