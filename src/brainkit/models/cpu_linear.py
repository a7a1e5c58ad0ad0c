"""``y = x W^T + b`` through oneDNN on the CPU: ``nn.Linear``'s computation on a faster fp32 kernel.

On the 2-core AMD machine of docs/benchmarks.md, ``torch.ops.mkldnn._linear_pointwise`` (oneDNN's inner product,
the kernel torch's own Inductor emits for CPU linears) runs the forward products of a transformer's projections at
~200-213 GFLOP/s, and the input gradient ``dy W`` (the same kernel on ``W^T``, a view) at ~200-218, where
``F.linear`` / ``torch.mm`` (MKL sgemm) reaches ~150-195 on the same shapes; the weight gradient ``dy^T x`` is no
faster through oneDNN there (measured), so it stays on ``torch.mm``. A whole training step
(bench/bench_models.py --vs-aten): Vis-Dec phase 2 in ours' layout 1.13x, the LDM 1.09x, DC-MAE 1.04-1.06x, SiT and
SIM 1.03-1.06x, MindEye 1.16-1.27x, CLIP-MUSED and Lite-Mind ~1.0x
(docs/benchmarks.md, "Linear layers through oneDNN").

What is routed: products of at least :data:`MIN_MACS` multiply-adds (2^25: the routed call's fixed ~0.1 ms per
forward + backward outweighs the faster kernel below that), fp32 CPU tensors, a contiguous 2-D weight, no autocast,
not while ``torch.compile`` traces (Inductor picks its own kernels), the op present in this torch build. Everything
else runs ``F.linear`` unchanged. Outputs differ from ``F.linear``'s by float rounding only (another summation
order: relative ~1e-7 per product).

- :func:`linear`: the function (``F.linear``'s signature);
- :class:`CPULinear`: ``nn.Linear`` whose forward calls it (same parameters, state-dict keys and initialisation);
  brainkit's models build theirs as ``CPULinear``, so every way of making a model (the class, ``build_model``,
  ``load_model``, a released-weights import) computes the same numbers;
- :func:`route_linears`: turns every plain ``nn.Linear`` inside a module into a :class:`CPULinear` in place, for the
  library layers a model holds (transformers' ViT-MAE in the cross-modal model, diffusers' UNet and VAE in the LDM),
  routed in the constructors that hold them (``nn.MultiheadAttention`` calls ``F.linear`` inside torch: brainkit's
  models use :class:`~brainkit.models.layers.Attention`, its parameters through :func:`linear`);
- :func:`set_cpu_linear` / :func:`cpu_linear`: ``"onednn"`` (default) or ``"aten"`` (``F.linear`` everywhere, for
  linear layers bit-identical to ``F.linear``'s), process-wide; the environment variable ``BRAINKIT_CPU_LINEAR`` sets the
  starting value.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from brainkit.errors import ConfigError

BACKENDS = ("onednn", "aten")


def _checked(backend: str, where: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(
            f"{where}: unknown CPU linear backend {backend!r}; expected one of {list(BACKENDS)} "
            "('aten' runs F.linear everywhere)."
        )
    return backend


# Products below this many multiply-adds (rows x in x out) run F.linear: the routed call costs ~0.1 ms more per
# forward + backward (the op's own ~11 us a call, the Python autograd Function's ~15 us a direction), more than
# the faster kernel saves on a small product. Measured, forward + backward, F.linear's time / the routed call's
# (rows x in x out): 64 x 256 x 256 0.77, 168 x 256 x 256 0.95, 256^3 1.09, 128 x 512 x 512 (2^25) 1.07,
# 512^3 1.25, 2048 x 768 x 768 1.17, 8 x 4096 x 4096 1.22 (docs/benchmarks.md, "Linear layers through oneDNN").
MIN_MACS = 1 << 25

_backend = _checked(os.environ.get("BRAINKIT_CPU_LINEAR", "onednn"), "BRAINKIT_CPU_LINEAR")
_OP = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


def set_cpu_linear(backend: str) -> None:
    """Route fp32 CPU linears through ``"onednn"`` or run ``F.linear`` (``"aten"``) from now on, process-wide."""
    global _backend
    _backend = _checked(backend, "set_cpu_linear")


def cpu_linear_backend() -> str:
    """The backend in use: ``"onednn"`` or ``"aten"`` (``"aten"`` too where this torch build lacks the op)."""
    return _backend if _OP is not None else "aten"


@contextlib.contextmanager
def cpu_linear(backend: str) -> Iterator[None]:
    """``set_cpu_linear(backend)`` inside the block, the previous backend after it."""
    previous = _backend
    set_cpu_linear(backend)
    try:
        yield
    finally:
        set_cpu_linear(previous)


def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return _OP(x, weight, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """(..., in) x (out, in) [+ (out,)] -> (..., out); backward: dx = dy W (oneDNN on W^T, a view, no copy),
    dW = dy^T x (torch.mm), db = sum of dy. Once differentiable (a double backward raises)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _product(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        grad_x = _product(grad, weight.t(), None) if need_x else None
        rows = grad.reshape(-1, grad.shape[-1])  # (n, out)
        grad_weight = rows.t() @ x.reshape(-1, x.shape[-1]) if need_weight else None
        grad_bias = rows.sum(0) if ctx.has_bias and need_bias else None
        return grad_x, grad_weight, grad_bias


def _routed(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    return (
        _backend == "onednn"
        and _OP is not None
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and weight.device.type == "cpu"
        and weight.dim() == 2
        and weight.is_contiguous()
        and x.dim() >= 1
        and x.shape[-1] == weight.shape[1]
        and x.numel() * weight.shape[0] >= MIN_MACS  # rows x in x out
        and (bias is None or (bias.dtype == torch.float32 and bias.dim() == 1))
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``: (..., in) x (out, in) [+ (out,)] -> (..., out), through oneDNN where routed
    (see the module docstring), else ``F.linear`` itself."""
    if not _routed(x, weight, bias):
        return F.linear(x, weight, bias)
    tracked = (bias,) if bias is not None else ()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, weight, *tracked)):
        return _OneDNNLinear.apply(x, weight, bias)
    return _product(x, weight, bias)


class CPULinear(nn.Linear):
    """``nn.Linear`` through :func:`linear`: the same parameters, state-dict keys and initialisation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def route_linears(module: nn.Module) -> int:
    """Make every plain ``nn.Linear`` in ``module`` (itself included) a :class:`CPULinear`, in place: the objects,
    their parameters, hooks and every reference to them stay as they are, only ``forward`` changes. Subclasses of
    ``nn.Linear`` (their own forward) are left alone. Returns how many were routed (0 on a second call)."""
    routed = 0
    for child in module.modules():
        if type(child) is nn.Linear:
            child.__class__ = CPULinear
            routed += 1
    return routed
