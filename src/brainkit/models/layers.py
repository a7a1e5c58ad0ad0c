"""Small blocks shared by several models: dropout, a feed-forward MLP, stochastic depth, a residual MLP block,
``nn.MultiheadAttention``'s parameters computed through ``scaled_dot_product_attention``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from brainkit.errors import ConfigError
from brainkit.models.cpu_linear import CPULinear, linear

_MASK_BITS = 15  # the mask compares 15 random bits with a threshold: keep-probability resolution 1 / 32768


def dropout_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A float32 keep-mask (1.0 kept, 0.0 dropped) for dropout probability ``p`` and the matching inverted-dropout
    scale.

    Two 15-bit draws come from each 32-bit integer of ``random_()`` (about 2x cheaper on CPU than one float
    ``uniform_`` per element). ``p`` is rounded to a multiple of 1/32768 and the scale uses the rounded value,
    so E[mask * scale] = 1 exactly. The mask is made without boolean tensors: on the CPU a comparison, a bool
    to float cast or a ``where`` on a bool mask runs 4-8x slower than float arithmetic on the same elements
    (e.g. 90-140 us against 16-24 us for 286,720 elements, 2 threads), so the draws become floats and
    ``clamp(h - (t - 1), 0, 1)`` is 1 exactly where ``h >= t`` (integers held exactly in float32).
    """
    n = math.prod(shape)
    bits = torch.empty((n + 1) // 2, dtype=torch.int32, device=device).random_()  # 31 uniform bits each
    halves = bits.view(torch.int16)[:n].reshape(shape) & ((1 << _MASK_BITS) - 1)
    threshold = round(p * (1 << _MASK_BITS))
    if threshold >= 1 << _MASK_BITS:  # p within 1/65536 of 1: every element dropped
        return torch.zeros(shape, device=device), 0.0
    mask = halves.to(torch.float32).sub_(threshold - 1).clamp_(0.0, 1.0)
    return mask, (1 << _MASK_BITS) / ((1 << _MASK_BITS) - threshold)


class _DropoutFunction(torch.autograd.Function):
    """Inverted dropout with the mask kept for the backward pass (see :func:`dropout_mask`).

    The distribution of ``nn.Dropout`` (each element kept with probability 1 - p, p on a 1/32768 grid) and its
    arithmetic (``x * mask * scale``: a dropped NaN or inf gives NaN, as there), cheaper on CPU forward + backward: cheap
    random bits instead of ``bernoulli_``, and one float product per direction. For float32 the scale is folded into
    the saved mask (``x * fl32(scale)``, what ``x * scale`` computes in float32); other dtypes multiply by the
    {0, 1} mask in their own dtype, then by the scale, which is again what ``x * scale`` computes.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        mask, scale = dropout_mask(x.shape, p, x.device)
        if x.dtype == torch.float32:
            factor, ctx.scale = mask.mul_(scale), 1.0
        else:
            factor, ctx.scale = mask.to(x.dtype), scale
        ctx.save_for_backward(factor)
        out = x * factor
        return out.mul_(ctx.scale) if ctx.scale != 1.0 else out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (factor,) = ctx.saved_tensors
        out = grad * factor
        return (out.mul_(ctx.scale) if ctx.scale != 1.0 else out), None


class Dropout(nn.Module):
    """``nn.Dropout`` semantics (zero with probability ``p`` while training, scale the rest by 1 / (1 - p))."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        if torch.compiler.is_compiling():  # Dynamo cannot trace random_() (a graph break per call); Inductor
            return F.dropout(x, self.p, True)  # fuses its own dropout into the neighbouring kernels
        return _DropoutFunction.apply(x, self.p)


class FeedForward(nn.Module):
    """Linear -> GELU -> dropout -> Linear -> dropout, as in ViT / GFNet blocks.

    Shapes: (..., dim) -> (..., dim).
    """

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = CPULinear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = CPULinear(hidden_dim, dim)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: zero a whole residual branch per sample with probability ``p`` while training.

    ``batch_dim`` is the axis that indexes samples (0 for (batch, ...), 1 for patch-major (n_patches, batch, ...)).
    """

    def __init__(self, p: float = 0.0, batch_dim: int = 0) -> None:
        super().__init__()
        self.p, self.batch_dim = float(p), batch_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = [1] * x.ndim
        shape[self.batch_dim] = x.shape[self.batch_dim]
        mask = x.new_empty(shape).bernoulli_(keep).div_(keep)  # tiny (one value per sample): scale it, not x
        return x * mask


class Attention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters (``in_proj_weight`` / ``in_proj_bias``,
    ``out_proj``), state-dict keys and initialisation (the same draws in the same order), computed batch-first
    through ``scaled_dot_product_attention`` with every projection through :func:`~brainkit.models.cpu_linear.linear`
    (oneDNN on the CPU; ``nn.MultiheadAttention`` calls ``F.linear`` inside torch, where nothing can route it).

    ``forward(x)``: self-attention, (batch, n, dim) -> (batch, n, dim); ``forward(x, context)``: x's queries attend
    to ``context`` (batch, m, dim), keys and values projected by the last two thirds of ``in_proj_weight`` as
    ``nn.MultiheadAttention`` does. No masks, no attention weights: where a model needs them it keeps
    ``nn.MultiheadAttention``. q / k / v are split by ``rearrange`` views (``nn.MultiheadAttention``'s three
    ``select``s fill a zero (3, n, batch, dim) buffer per call in backward)."""

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % n_heads:
            raise ConfigError(f"attention: width {dim} is not divisible by {n_heads} heads.")
        self.n_heads, self.dropout = n_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = CPULinear(dim, dim)  # drawn before in_proj, as in nn.MultiheadAttention
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if context is None:
            qkv = linear(x, self.in_proj_weight, self.in_proj_bias)
            q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.n_heads)
        else:
            dim = x.shape[-1]
            q = linear(x, self.in_proj_weight[:dim], self.in_proj_bias[:dim])
            q = rearrange(q, "b n (h d) -> b h n d", h=self.n_heads)
            kv = linear(context, self.in_proj_weight[dim:], self.in_proj_bias[dim:])
            k, v = rearrange(kv, "b m (two h d) -> two b h m d", two=2, h=self.n_heads)
        p = self.dropout if self.training else 0.0
        mixed = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.out_proj(rearrange(mixed, "b h n d -> b n (h d)"))


class ResidualMLPBlock(nn.Module):
    """x + dropout(GELU(LayerNorm(Linear(x)))), MindEye's backbone block. Shapes: (batch, dim) -> (batch, dim)."""

    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear = CPULinear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.act(self.norm(self.linear(x))))


def sincos_embedding(n: int, dim: int, layout: str = "interleaved") -> torch.Tensor:
    """Fixed sin-cos embedding of positions 0..n-1: (n, dim), frequencies 10000^(-2i/dim), i < dim / 2.

    ``layout="interleaved"``: sin in the even columns, cos in the odd ones (Vaswani et al.);
    ``layout="concat"``: all the sines, then all the cosines, ``[sin | cos]`` (MAE's get_1d_sincos_pos_embed, used by
    Mind-Vis and Vis-Dec). Same values, other column order."""
    position = torch.arange(n, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    if layout == "concat":
        if dim % 2:
            raise ConfigError(f"sincos_embedding: layout 'concat' needs an even dim, found {dim}.")
        # the frequencies as MAE's numpy code forms them in float32, 1 / 10000 ** (i / (dim / 2)): the same
        # values as above up to rounding, which at a thousand positions reaches 1e-4 in the table
        half = torch.arange(dim // 2, dtype=torch.float32) / (dim / 2)
        angle = position * (1.0 / torch.pow(torch.tensor(10000.0), half))
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
    if layout != "interleaved":
        raise ConfigError(f"sincos_embedding: layout must be 'interleaved' or 'concat', found {layout!r}.")
    table = torch.zeros(n, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    return table
