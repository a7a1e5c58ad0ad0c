"""Linear layers through oneDNN (models/cpu_linear.py): F.linear's values and gradients, its fallbacks, the routing
of built models."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from brainkit.errors import ConfigError
from brainkit.models import cpu_linear
from brainkit.models.base import example_config
from brainkit.models.cpu_linear import CPULinear, linear, route_linears, set_cpu_linear

pytestmark = pytest.mark.skipif(
    cpu_linear.cpu_linear_backend() != "onednn",
    reason="this torch build has no oneDNN linear (F.linear runs)",
)


@pytest.fixture(autouse=True)
def route_tiny_products(monkeypatch):
    """The tests' products are tiny: route them all (the size threshold has its own test)."""
    monkeypatch.setattr(cpu_linear, "MIN_MACS", 0)


def _inputs(shape, out=11, bias=True, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=generator, requires_grad=True)
    w = torch.randn(out, shape[-1], generator=generator, requires_grad=True)
    b = torch.randn(out, generator=generator, requires_grad=True) if bias else None
    return x, w, b


def _values_and_grads(function, x, w, b):
    for t in (x, w, b):
        if t is not None:
            t.grad = None
    y = function(x, w, b)
    y.backward(torch.linspace(-1, 1, y.numel()).reshape(y.shape))
    return [y.detach()] + [t.grad.clone() for t in (x, w, b) if t is not None]


@pytest.mark.parametrize("shape", [(7, 9), (3, 5, 9), (2, 3, 4, 9), (9,)])
@pytest.mark.parametrize("bias", [True, False])
def test_values_and_gradients_are_f_linear_s(shape, bias):
    x, w, b = _inputs(shape, bias=bias)
    ours = _values_and_grads(linear, x, w, b)
    reference = _values_and_grads(F.linear, x, w, b)
    for a, r in zip(ours, reference):
        assert a.shape == r.shape
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


def test_the_kernel_is_onednn_s_not_f_linear_s():
    """The routed call runs mkldnn::_linear_pointwise forward and backward (else the benchmark's gain is not it)."""
    x, w, b = _inputs((6, 9))
    with torch.profiler.profile() as prof:
        linear(x, w, b).sum().backward()
    names = {e.key for e in prof.key_averages()}
    assert "mkldnn::_linear_pointwise" in names
    assert not {"aten::linear", "aten::addmm"} & names


def test_non_contiguous_input_and_frozen_weight():
    x, w, b = _inputs((8, 9))
    x_t = x.detach().t().contiguous().t().requires_grad_()  # the same values, column-major
    w.requires_grad_(False)
    b.requires_grad_(False)
    y = linear(x_t, w, b)
    y.sum().backward()
    torch.testing.assert_close(y, F.linear(x_t, w, b), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x_t.grad, w.sum(0).expand(8, 9), rtol=1e-5, atol=1e-5)
    assert w.grad is None and b.grad is None


def test_no_grad_output_has_no_graph():
    x, w, b = _inputs((4, 9))
    with torch.no_grad():
        y = linear(x, w, b)
    assert y.grad_fn is None
    torch.testing.assert_close(y, F.linear(x, w, b).detach(), rtol=1e-5, atol=1e-5)


def test_fallbacks_run_f_linear_exactly():
    """float64, bf16 autocast, a non-contiguous weight, the 'aten' backend: F.linear itself (bit-identical)."""
    x, w, b = _inputs((5, 9))
    cases = {
        "float64": (x.double(), w.double(), b.double()),
        "transposed weight": (x, w.detach().t().contiguous().t(), b),
    }
    for name, args in cases.items():
        assert torch.equal(linear(*args), F.linear(*args)), name
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear(x, w, b)
        assert out.dtype == torch.bfloat16 and torch.equal(out, F.linear(x, w, b))
    with cpu_linear.cpu_linear("aten"):
        assert cpu_linear.cpu_linear_backend() == "aten"
        assert torch.equal(linear(x, w, b), F.linear(x, w, b))
    assert cpu_linear.cpu_linear_backend() == "onednn"


def test_small_products_run_f_linear(monkeypatch):
    """Below MIN_MACS (rows x in x out) the routed call's fixed cost outweighs the kernel: F.linear, bit for bit."""
    monkeypatch.setattr(cpu_linear, "MIN_MACS", 6 * 9 * 11)
    x, w, b = _inputs((5, 9))  # 5 x 9 x 11 multiply-adds: one row short
    with torch.profiler.profile() as prof:
        small = linear(x, w, b)
    assert torch.equal(small, F.linear(x, w, b))
    assert "mkldnn::_linear_pointwise" not in {e.key for e in prof.key_averages()}
    x, w, b = _inputs((6, 9))
    with torch.profiler.profile() as prof:
        linear(x, w, b)
    assert "mkldnn::_linear_pointwise" in {e.key for e in prof.key_averages()}


def test_unknown_backend_is_refused():
    with pytest.raises(ConfigError, match="unknown CPU linear backend 'mkl'.*'onednn', 'aten'"):
        set_cpu_linear("mkl")
    assert cpu_linear.cpu_linear_backend() == "onednn"


def test_double_backward_raises():
    x, w, b = _inputs((3, 9))
    (grad,) = torch.autograd.grad(linear(x, w, b).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|double backward|Function"):
        grad.sum().backward()


def test_route_linears_keeps_objects_parameters_and_keys():
    net = nn.Sequential(nn.Linear(9, 7), nn.ReLU(), nn.Sequential(nn.Linear(7, 5)), nn.Bilinear(3, 3, 2))

    class Own(nn.Linear):  # a subclass with its own forward: left alone
        def forward(self, x):
            return super().forward(x) * 2

    net.append(Own(2, 2))
    first, params, keys = net[0], [id(p) for p in net.parameters()], list(net.state_dict())
    reference = net[2][0](net[1](net[0](torch.ones(2, 9))))
    assert route_linears(net) == 2
    assert net[0] is first and type(net[0]) is CPULinear and type(net[2][0]) is CPULinear
    assert type(net[4]) is Own and type(net[3]) is nn.Bilinear
    assert [id(p) for p in net.parameters()] == params and list(net.state_dict()) == keys
    torch.testing.assert_close(net[2][0](net[1](net[0](torch.ones(2, 9)))), reference, rtol=1e-5, atol=1e-6)
    assert route_linears(net) == 0


def test_every_registered_model_is_routed_however_it_is_built():
    """Each model class builds its linears as CPULinear, library layers included (ViT-MAE's in the cross-modal
    model, diffusers' in the LDM): the class itself, not build_model, so that every way of making a model (the
    class, build_model, load_model, a released import) computes the same numbers."""
    from brainkit.registry import MODELS

    for name in MODELS:
        cls, config = MODELS.get(name), example_config(name)
        model = getattr(cls, "from_config", cls)(config)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        assert not [m for m in linears if type(m) is nn.Linear], name
        if name in ("lite_mind", "dc_mae", "cross_modal", "ldm", "sit", "clip_mused"):
            assert any(type(m) is CPULinear for m in linears), name


def test_compiled_module_matches_eager():
    """The layer runs under torch.compile (traced as F.linear there): the values of the eager layer."""
    layer = CPULinear(9, 4)
    x = torch.randn(3, 9)
    compiled = torch.compile(layer, backend="eager")
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-5, atol=1e-6)


def test_environment_variable_sets_the_starting_backend():
    code = "from brainkit.models.cpu_linear import cpu_linear_backend; print(cpu_linear_backend())"

    def run(value: str) -> subprocess.CompletedProcess:
        environment = os.environ | {"BRAINKIT_CPU_LINEAR": value}
        return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True)

    assert run("aten").stdout.strip() == "aten"
    bad = run("fast")
    assert bad.returncode != 0 and "BRAINKIT_CPU_LINEAR: unknown CPU linear backend 'fast'" in bad.stderr
