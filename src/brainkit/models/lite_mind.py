"""Lite-Mind (Gong et al., ACM MM 2024): a DFT backbone from fMRI voxels to CLIP image embeddings.

Read top to bottom: the config and its presets, the two frequency blocks (:class:`GlobalFilter`,
:class:`FrequencyMLP`), the block that chains them, then the model.

The voxel vector is cut into patches (``fMRI spectrum compression``); blocks filter the patch sequence in the
Fourier domain, then a frequency projector (FreMLP) maps it towards the image space; linear "token-down" layers
change the width between stages; a head maps the patch axis to the output.

Where the paper and the released code (github.com/gongzix/Lite-Mind, ``src/dft_backbone.py``) differ we follow the
paper and keep the released computation as an option; see ``docs/methods/lite_mind.md``:

- FreMLP: the paper's complex ``d x d`` weight (``fremlp="full"``, default) or the released code's computation,
  which stores ``d x d`` matrices but uses only their diagonals (``fremlp="diagonal"``; stored as vectors here).
- Voxels that do not fill a last patch: zero-padded as in the paper (``voxel_remainder="pad"``) or dropped as the
  released ``Conv1d`` without padding does (``"drop"``).
- The GlobalFilter's spectrum factor: ``spectrum="power"``, ``|X|^2`` (the paper's word "power spectrum",
  default), or ``"complex_square"``, the complex ``X**2`` the released ``GlobalFilter`` multiplies by (its
  ``power_spectrum = x**2`` of the complex rFFT). The ``nsd_subj01_released`` preset selects every
  released computation at once: diagonal FreMLP, voxel remainder dropped, complex square.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.autograd.function import once_differentiable

from brainkit.config import Checked, bounded, choice
from brainkit.errors import ConfigError
from brainkit.models.base import VoxelModel, check_input
from brainkit.models.cpu_linear import CPULinear
from brainkit.models.layers import Dropout, DropPath, FeedForward
from brainkit.registry import MODELS


@dataclass(frozen=True)
class LiteMindConfig(Checked):
    """Lite-Mind DFT backbone.

    ``dims`` and ``depths`` are the released code's ``num_tokens`` (feature width per stage) and ``depth``.
    A 2-D ``output_shape`` (n_out_tokens, out_dim) needs ``dims[-1] == n_out_tokens`` (token head); a 1-D one
    (out_dim,) uses the CLS-only head (mean over patches, then Linear(dims[-1] -> out_dim)).
    """

    n_voxels: int | None = bounded(
        None, le=10_000_000, gt=0, fix="set by the data; more than 10 million voxels is not a brain recording"
    )
    output_shape: tuple[int, ...] | None = bounded(None, ge=1)
    patch_size: int = bounded(450, ge=1, fix="voxels per patch")
    dims: tuple[int, ...] = bounded((512, 256, 128, 257), ge=1, fix="the width of each stage")
    depths: tuple[int, ...] = bounded((2, 10, 2, 4), ge=0, fix="blocks per stage")
    mlp_ratio: float = bounded(4.0, gt=0)
    n_filters: int = bounded(2, ge=1)
    fremlp: str = choice(
        "full", ("full", "diagonal"), fix="full: the paper; diagonal: the released computation"
    )
    voxel_remainder: str = choice("pad", ("pad", "drop"), fix="pad: the paper; drop: the released Conv1d")
    spectrum: str = choice(
        "power", ("power", "complex_square"), fix="power: |X|^2, the paper; complex_square: the released X**2"
    )
    sparsity_threshold: float = bounded(0.01, ge=0)
    dropout: float = bounded(0.0, ge=0, lt=1)
    drop_path: float = bounded(0.0, ge=0, lt=1)


PRESETS: dict[str, LiteMindConfig] = {
    # The paper's NSD subject 1 model. Sizes: nsdgeneral voxels 15,724 (paper sec. 4.1) and CLIP ViT-L/14's
    # 257 x 768 hidden tokens (released img2feat.py). Hyperparameters: released train_litemind.py / dft_backbone.py
    # (patch 450, num_tokens [512,256,128,257], depth [2,10,2,4], mlp_ratio 4, num_filters 2, drop 0.1,
    # drop-path 0.15). Parameters: 15,654,271 (full FreMLP), 12,710,783 (diagonal); released code 15,657,859.
    "nsd_subj01": LiteMindConfig(
        n_voxels=15724,
        output_shape=(257, 768),
        patch_size=450,
        dims=(512, 256, 128, 257),
        depths=(2, 10, 2, 4),
        mlp_ratio=4.0,
        n_filters=2,
        dropout=0.1,
        drop_path=0.15,
    ),
    # CLS-only variant (released --cls_only: num_tokens [512,256,128,50], depth [2,2,2,2], 768-d CLS target).
    # Parameters with 15,724 voxels: 7,550,874 (full FreMLP); released code 7,552,254 (METHODS.md: ~7.55 M).
    "nsd_subj01_cls": LiteMindConfig(
        patch_size=450, dims=(512, 256, 128, 50), depths=(2, 2, 2, 2), dropout=0.1, drop_path=0.15
    ),
    # Ours, for the built-in demo (~3,900 voxels -> 1,280-d EfficientNet-lite0 embedding): patch 48 gives ~82
    # patches; narrow stages so one epoch of ~3,000 samples takes seconds on 2 CPU cores. 339,328 parameters there.
    # Dropout/drop-path 0.1 (paper: 0.1/0.15): on nsd_like subj01, 300-way top-1 12.1 % with them vs 9.0 % without
    # and 8.9 % at 0.2/0.2 (30 epochs, measured 2026-11-23).
    "cpu_small": LiteMindConfig(
        patch_size=48, dims=(64, 128), depths=(1, 1), mlp_ratio=2.0, n_filters=2, dropout=0.1, drop_path=0.1
    ),
    # Tiny, for the test battery.
    "testing": LiteMindConfig(patch_size=8, dims=(12, 3), depths=(1, 1), mlp_ratio=2.0, n_filters=2),
}
# The released computation (dft_backbone.py) in every place where it departs from the paper: FreMLP with the
# diagonal of its d x d complex weight (the einsum 'bijd,dd->bijd' reads only the diagonal, so 12,710,783 trained
# parameters against the released module's 15,657,859 stored ones), the voxel remainder dropped (Conv1d without
# padding) and the complex square X**2 in the GlobalFilter.
PRESETS["nsd_subj01_released"] = replace(
    PRESETS["nsd_subj01"], fremlp="diagonal", voxel_remainder="drop", spectrum="complex_square"
)


def n_patches_for(config: LiteMindConfig) -> int:
    """Number of voxel patches: ceil(V / P) with zero padding (paper), floor(V / P) when dropping the rest."""
    if config.voxel_remainder == "pad":
        return -(-config.n_voxels // config.patch_size)
    return config.n_voxels // config.patch_size


def real_dft_matrices(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The orthonormal rFFT and irFFT of length ``n`` as real matrices.

    Returns ``forward`` (2 n_freq, n): rows are the real parts of the n_freq = n // 2 + 1 frequencies, then the
    imaginary parts; and ``inverse`` (n, 2 n_freq), which ignores the imaginary parts of the zero (and, for even
    ``n``, the Nyquist) frequency exactly as ``torch.fft.irfft`` does. For the few dozen patches of an fMRI
    vector these matmuls are faster than FFT calls and keep every tensor real and contiguous.
    """
    n_freq = n // 2 + 1
    angle = 2 * math.pi * torch.outer(torch.arange(n_freq), torch.arange(n)).double().remainder(n) / n
    forward = torch.cat((torch.cos(angle), -torch.sin(angle))) / math.sqrt(n)
    weight = torch.full((n_freq, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    sine = torch.sin(angle) * weight
    sine[0] = 0.0
    if n % 2 == 0:
        sine[-1] = 0.0
    inverse = torch.cat((torch.cos(angle) * weight, -sine)).T / math.sqrt(n)
    return forward.float(), inverse.float().contiguous()


class GlobalFilter(nn.Module):
    """Learnable filters on the spectrum of the patch sequence.

    ``irFFT( X * S * sum_k cos((2k+1) pi / 2K) W_k )`` with ``X = rFFT(x)`` along patches and ``S = |X|^2``
    (``spectrum="power"``) or the complex square ``X**2`` (``"complex_square"``, the released code). The K filters
    are summed into one before use (the same arithmetic as filtering K times and summing, without a Python loop).
    Shapes (patch-major, see :class:`LiteMind`): (n_patches, batch, dim) -> (n_patches, batch, dim).
    """

    def __init__(self, dim: int, n_patches: int, n_filters: int, spectrum: str = "power") -> None:
        super().__init__()
        self.spectrum = spectrum
        self.n_freq = n_patches // 2 + 1
        # (n_filters, n_freq, dim, real/imag), the released code's layout and initial scale.
        self.weight = nn.Parameter(0.02 * torch.randn(n_filters, self.n_freq, dim, 2))
        k = torch.arange(n_filters, dtype=torch.float32)
        self.register_buffer("cosine", torch.cos((2 * k + 1) * math.pi / (2 * n_filters)), persistent=False)
        forward, inverse = real_dft_matrices(n_patches)
        self.register_buffer("dft", forward, persistent=False)
        self.register_buffer("idft", inverse, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _hand_written_backward(x):
            return self.composed(x)
        return _GlobalFilterFunction.apply(
            x, self.weight, self.cosine, self.dft, self.idft, self.spectrum == "power"
        )

    def composed(self, x: torch.Tensor) -> torch.Tensor:
        """The same filter as a composition of torch ops, differentiated by autograd (under ``torch.compile`` or
        autocast; the tests' reference for :class:`_GlobalFilterFunction`)."""
        n, batch, dim = x.shape
        spectrum = (self.dft @ x.reshape(n, -1)).view(2, self.n_freq, batch, dim)
        real, imag = spectrum[0], spectrum[1]  # (n_freq, batch, dim) each
        weight = torch.einsum("k,kfdc->cfd", self.cosine, self.weight).unsqueeze(2)  # (2, n_freq, 1, dim)
        p, q = real * weight[0] - imag * weight[1], real * weight[1] + imag * weight[0]  # X * W
        if self.spectrum == "power":
            power = real.square() + imag.square()  # |X|^2
            filtered = torch.cat((p * power, q * power))
        else:  # the complex square X**2 = (a^2 - b^2) + i 2ab
            sr, si = real.square() - imag.square(), 2 * real * imag
            filtered = torch.cat((p * sr - q * si, p * si + q * sr))
        return (self.idft @ filtered.view(2 * self.n_freq, -1)).view(n, batch, dim)


class FrequencyMLP(nn.Module):
    """FreMLP: ``irFFT( softshrink(ReLU(X W + B)) )`` with ``X = rFFT(x)`` along patches and complex W, B.

    ReLU acts on real and imaginary parts; ``softshrink(ReLU(z), l) == ReLU(z - l)``, so the threshold is folded
    into the bias. ``mode="full"``: W is a complex ``dim x dim`` matrix (the paper). As W acts on features and the
    DFT on patches, ``rFFT(x) W == rFFT(x W)``: we multiply by W's real and imaginary parts first (two products,
    stacked) and then apply the DFT and the complex combination as one real (2 n_freq, 2 n_patches) matrix.
    ``mode="diagonal"``: W is a complex vector (what the released einsum ``'bijd,dd->bijd'`` computes from its
    stored matrices). Shapes: (n_patches, batch, dim) -> (n_patches, batch, dim).
    """

    def __init__(self, dim: int, n_patches: int, mode: str, threshold: float) -> None:
        super().__init__()
        self.n_freq, self.mode, self.threshold = n_patches // 2 + 1, mode, threshold
        shape = (dim, dim) if mode == "full" else (dim,)
        self.weight_real = nn.Parameter(0.02 * torch.randn(shape))
        self.weight_imag = nn.Parameter(0.02 * torch.randn(shape))
        self.bias_real = nn.Parameter(0.02 * torch.randn(dim))
        self.bias_imag = nn.Parameter(0.02 * torch.randn(dim))
        forward, inverse = real_dft_matrices(n_patches)
        cos, sin = forward[: self.n_freq], forward[self.n_freq :]
        # mix[(real|imag out, f), (real|imag part of W, n)]: the DFT of x Wr and x Wi combined into X W.
        self.register_buffer("mix", torch.cat((torch.cat((cos, -sin), 1), torch.cat((sin, cos), 1))), False)
        self.register_buffer("dft", forward, persistent=False)
        self.register_buffer("idft", inverse, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "diagonal" and _hand_written_backward(x):
            return _DiagonalFreMLPFunction.apply(
                x, self.weight_real, self.weight_imag, self.bias_real, self.bias_imag, self.dft, self.idft,
                self.threshold,
            )  # fmt: skip
        return self.composed(x)

    def composed(self, x: torch.Tensor) -> torch.Tensor:
        """FreMLP as a composition of torch ops, differentiated by autograd (the full mode; the diagonal mode under
        ``torch.compile`` or autocast; the tests' reference for :class:`_DiagonalFreMLPFunction`)."""
        n, batch, dim = x.shape
        bias = torch.stack((self.bias_real, self.bias_imag)).unsqueeze(1) - self.threshold  # (2, 1, dim)
        if self.mode == "full":
            rows = x.reshape(n * batch, dim)
            # (2, n * batch, dim): x Wr, x Wi. Two products and a stack: 14 % faster forward + backward than one
            # broadcast matmul on the stacked weights, whose backward copies x per weight (measured at 35 x 8 x 256).
            parts = torch.stack((rows @ self.weight_real, rows @ self.weight_imag))
            out = (self.mix @ parts.view(2 * n, -1)).view(2, self.n_freq, batch, dim)
        else:
            spectrum = (self.dft @ x.reshape(n, -1)).view(2, self.n_freq, batch, dim)
            real, imag = spectrum[0], spectrum[1]
            wr, wi = self.weight_real, self.weight_imag
            out = torch.stack((real * wr - imag * wi, real * wi + imag * wr))
        out = F.relu(out + bias.unsqueeze(1))
        return (self.idft @ out.view(2 * self.n_freq, -1)).view(n, batch, dim)


def _hand_written_backward(x: torch.Tensor) -> bool:
    """Whether the frequency blocks run their autograd Functions: not while ``torch.compile`` traces (Inductor fuses
    the composition itself) and not under autocast (whose casts belong to the composition's ops)."""
    return not torch.compiler.is_compiling() and not torch.is_autocast_enabled(x.device.type)


class _GlobalFilterFunction(torch.autograd.Function):
    """:class:`GlobalFilter` with a hand-written backward: about half the operator calls of autograd's on the
    composition (each a few microseconds at Lite-Mind's (34, 8, 256) activations, 18 blocks).

    With X = a + ib the spectrum (both (n_freq, batch, dim)) and W the summed filter: the output spectrum is
    W Z, Z = X^3 (``complex_square``: X * X**2) or X |X|^2 (``power``). Backward, with G the gradient of the output
    spectrum (dL/dRe + i dL/dIm): dW = sum over the batch of conj(Z) G, G_Z = conj(W) G, and G_X = 3 conj(X)^2 G_Z
    (Z = X^3 is holomorphic) or, for X |X|^2, G_a = (3a^2 + b^2) G_Zr + 2ab G_Zi, G_b = 2ab G_Zr + (a^2 + 3b^2) G_Zi.
    Shapes: x (n_patches, batch, dim), weight (n_filters, n_freq, dim, 2) -> (n_patches, batch, dim).
    """

    @staticmethod
    def forward(ctx, x, weight, cosine, dft, idft, power: bool):
        n, batch, dim = x.shape
        n_freq = dft.shape[0] // 2
        spectrum = (dft @ x.reshape(n, -1)).view(2, n_freq, batch, dim)
        a, b = spectrum[0], spectrum[1]
        w = torch.einsum("k,kfdc->cfd", cosine, weight).unsqueeze(2)  # (2, n_freq, 1, dim)
        a2, b2 = a * a, b * b
        if power:  # X |X|^2
            modulus = a2 + b2
            zr, zi = a * modulus, b * modulus
        else:  # X^3 = a (a^2 - 3 b^2) + i b (3 a^2 - b^2)
            zr = torch.add(a2, b2, alpha=-3).mul_(a)
            zi = torch.mul(a2, 3).sub_(b2).mul_(b)
        out = torch.empty_like(spectrum)
        torch.mul(zr, w[0], out=out[0]).addcmul_(zi, w[1], value=-1)
        torch.mul(zi, w[0], out=out[1]).addcmul_(zr, w[1])
        ctx.save_for_backward(spectrum, zr, zi, w, cosine, dft, idft)
        ctx.power = power
        return (idft @ out.view(2 * n_freq, -1)).view(n, batch, dim)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        spectrum, zr, zi, w, cosine, dft, idft = ctx.saved_tensors
        n, batch, dim = grad.shape
        n_freq = spectrum.shape[1]
        g = (idft.T @ grad.reshape(n, -1)).view(2, n_freq, batch, dim)
        gr, gi = g[0], g[1]
        wr, wi = w[0], w[1]
        grad_weight = None
        if ctx.needs_input_grad[1]:
            real = (gr * zr).addcmul_(gi, zi).sum(1)  # conj(Z) G, summed over the batch
            imag = (gi * zr).addcmul_(gr, zi, value=-1).sum(1)
            grad_weight = cosine.view(-1, 1, 1, 1) * torch.stack((real, imag), -1)
        if not ctx.needs_input_grad[0]:
            return None, grad_weight, None, None, None, None
        gzr = (gr * wr).addcmul_(gi, wi)  # conj(W) G
        gzi = (gi * wr).addcmul_(gr, wi, value=-1)
        a, b = spectrum[0], spectrum[1]
        gs = torch.empty_like(spectrum)
        if ctx.power:
            a2, b2, ab2 = a * a, b * b, torch.mul(a, b).mul_(2)
            torch.mul(gzr, torch.add(b2, a2, alpha=3), out=gs[0]).addcmul_(gzi, ab2)
            torch.mul(gzi, torch.add(a2, b2, alpha=3), out=gs[1]).addcmul_(gzr, ab2)
        else:  # 3 conj(X)^2 G_Z, conj(X)^2 = (a^2 - b^2) - i 2ab
            cr = (a * a).sub_(b * b).mul_(3)
            ci = torch.mul(a, b).mul_(6)
            torch.mul(cr, gzr, out=gs[0]).addcmul_(ci, gzi)
            torch.mul(cr, gzi, out=gs[1]).addcmul_(ci, gzr, value=-1)
        grad_x = (dft.T @ gs.view(2 * n_freq, -1)).view(n, batch, dim)
        return grad_x, grad_weight, None, None, None, None


class _DiagonalFreMLPFunction(torch.autograd.Function):
    """The diagonal :class:`FrequencyMLP` with a hand-written backward (fewer operator calls, as above).

    Forward: H = ReLU(X W + B - threshold) with X = a + ib the spectrum and W, B complex vectors over the features.
    Backward, with G the ReLU-masked gradient of H: dW = sum of conj(X) G over frequencies and batch, dB = sum of
    G, G_X = conj(W) G. Shapes: x (n_patches, batch, dim), weights and biases (dim,) -> (n_patches, batch, dim).
    """

    @staticmethod
    def forward(ctx, x, weight_real, weight_imag, bias_real, bias_imag, dft, idft, threshold: float):
        n, batch, dim = x.shape
        n_freq = dft.shape[0] // 2
        spectrum = (dft @ x.reshape(n, -1)).view(2, n_freq, batch, dim)
        a, b = spectrum[0], spectrum[1]
        h = torch.empty_like(spectrum)
        torch.mul(a, weight_real, out=h[0]).addcmul_(b, weight_imag, value=-1).add_(
            bias_real - threshold
        ).relu_()
        torch.mul(a, weight_imag, out=h[1]).addcmul_(b, weight_real).add_(bias_imag - threshold).relu_()
        ctx.save_for_backward(spectrum, h, weight_real, weight_imag, dft, idft)
        return (idft @ h.view(2 * n_freq, -1)).view(n, batch, dim)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        spectrum, h, weight_real, weight_imag, dft, idft = ctx.saved_tensors
        n, batch, dim = grad.shape
        n_freq = spectrum.shape[1]
        g = torch.ops.aten.threshold_backward(
            (idft.T @ grad.reshape(n, -1)).view(2, n_freq, batch, dim), h, 0
        )
        g0, g1 = g[0], g[1]
        a, b = spectrum[0], spectrum[1]
        grad_bias = g.sum((1, 2))  # (2, dim)
        grad_wr = (g0 * a).addcmul_(g1, b).sum((0, 1))
        grad_wi = (g1 * a).addcmul_(g0, b, value=-1).sum((0, 1))
        grad_x = None
        if ctx.needs_input_grad[0]:
            gs = torch.empty_like(spectrum)
            torch.mul(g0, weight_real, out=gs[0]).addcmul_(g1, weight_imag)
            torch.mul(g1, weight_real, out=gs[1]).addcmul_(g0, weight_imag, value=-1)
            grad_x = (dft.T @ gs.view(2 * n_freq, -1)).view(n, batch, dim)
        return grad_x, grad_wr, grad_wi, grad_bias[0], grad_bias[1], None, None, None


class DFTBlock(nn.Module):
    """x + DropPath(FreMLP(LN(MLP(LN(GlobalFilter(LN(x))))))). Shapes: (n_patches, batch, dim) -> same."""

    def __init__(self, dim: int, n_patches: int, config: LiteMindConfig, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.filter = GlobalFilter(dim, n_patches, config.n_filters, config.spectrum)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = FeedForward(dim, int(dim * config.mlp_ratio), config.dropout)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)
        self.fremlp = FrequencyMLP(dim, n_patches, config.fremlp, config.sparsity_threshold)
        self.drop_path = DropPath(drop_path, batch_dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.mlp(self.norm2(self.filter(self.norm1(x))))
        return x + self.drop_path(self.fremlp(self.norm3(branch)))


def _check_config(config: LiteMindConfig) -> None:
    where = "lite_mind config"
    if len(config.dims) != len(config.depths) or not config.dims:
        raise ConfigError(
            f"{where}: dims {config.dims} and depths {config.depths} need the same, nonzero length."
        )
    if config.n_voxels < config.patch_size and config.voxel_remainder == "drop":
        raise ConfigError(
            f"{where}: {config.n_voxels} voxels fill no patch of {config.patch_size}; use 'pad'."
        )
    shape = tuple(config.output_shape)
    if len(shape) not in (1, 2):
        raise ConfigError(f"{where}: output_shape must be (out_dim,) or (n_tokens, out_dim), found {shape}.")
    if len(shape) == 2 and shape[0] != config.dims[-1]:
        raise ConfigError(
            f"{where}: the token head gives dims[-1]={config.dims[-1]} tokens but output_shape is {shape}; "
            f"set dims[-1] to {shape[0]}."
        )


@MODELS.register(
    "lite_mind", help="Lite-Mind DFT backbone (Gong et al., ACM MM 2024): voxels -> CLIP tokens."
)
class LiteMind(nn.Module, VoxelModel):
    """Lite-Mind's DFT backbone.

    ``forward``: (batch, n_voxels) -> (batch, *output_shape), either (batch, n_out_tokens, out_dim) from the
    token head or (batch, out_dim) from the CLS-only head. Inside, activations are patch-major
    (n_patches, batch, dim), so that the DFT along patches is one matmul over a contiguous (n_patches, batch * dim)
    matrix; Linear and LayerNorm act on the last axis and do not mind the order of the others.
    """

    Config = LiteMindConfig
    PRESETS = PRESETS

    def __init__(self, config: LiteMindConfig) -> None:
        super().__init__()
        _check_config(config)
        self.config = config
        self.n_patches = n_patches_for(config)
        self.output_shape = tuple(config.output_shape)
        dims = config.dims
        # Linear on non-overlapping patches: the released Conv1d(1, d, kernel=stride=patch), same parameters.
        self.patch_embed = CPULinear(config.patch_size, dims[0])
        self.pos_embed = nn.Parameter(torch.zeros(self.n_patches, 1, dims[0]))
        self.pos_drop = Dropout(config.dropout)
        n_blocks = sum(config.depths)  # stochastic depth rate rises linearly over the blocks
        rates = [config.drop_path * i / max(n_blocks - 1, 1) for i in range(n_blocks)]
        self.stages = nn.ModuleList()
        for stage, (dim, depth) in enumerate(zip(dims, config.depths)):
            first = sum(config.depths[:stage])
            blocks = [DFTBlock(dim, self.n_patches, config, rates[first + j]) for j in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
        self.tokens_down = nn.ModuleList(CPULinear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.cls_only = len(self.output_shape) == 1
        self.head = CPULinear(dims[-1] if self.cls_only else self.n_patches, self.output_shape[-1])
        self._init_weights()

    def _init_weights(self) -> None:
        """The released initialisation: truncated normal (std 0.02) Linear weights, zero biases."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear) and module is not self.patch_embed:
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_voxels) -> (batch, *output_shape)."""
        check_input(self, x)
        n_used = self.n_patches * self.config.patch_size
        x = F.pad(x, (0, n_used - x.shape[1])) if n_used > x.shape[1] else x[:, :n_used]
        tokens = self.patch_embed(rearrange(x, "b (n p) -> n b p", p=self.config.patch_size))
        tokens = self.pos_drop(tokens + self.pos_embed)  # (n_patches, batch, dims[0])
        for stage, blocks in enumerate(self.stages):
            tokens = blocks(tokens)
            if stage < len(self.tokens_down):
                tokens = self.tokens_down[stage](tokens)
        tokens = self.norm(tokens)  # (n_patches, batch, dims[-1])
        if self.cls_only:
            return self.head(tokens.mean(0))  # (batch, out_dim)
        # Head over the patch axis: (batch * n_out_tokens, n_patches) @ (n_patches, out_dim), no transpose copy.
        out = torch.addmm(self.head.bias, tokens.reshape(self.n_patches, -1).mT, self.head.weight.T)
        return out.view(x.shape[0], *self.output_shape)  # (batch, n_out_tokens, out_dim)


# The released DFTBackbone's state-dict keys (gongzix/Lite-Mind src/dft_backbone.py; train_litemind.py saves
# ``model.state_dict()``) -> ours. ``blocks.S.J`` is stage S's block J (an nn.Sequential per stage).
RELEASED_RULES = [
    (r"patch_embed\.proj\.(weight|bias)", r"patch_embed.\1"),
    (r"pos_embed", "pos_embed"),
    (r"blocks\.(\d+)\.(\d+)\.(norm[123])\.(weight|bias)", r"stages.\1.\2.\3.\4"),
    (r"blocks\.(\d+)\.(\d+)\.filter\.complex_weight", r"stages.\1.\2.filter.weight"),
    (r"blocks\.(\d+)\.(\d+)\.mlp\.(fc[12])\.(weight|bias)", r"stages.\1.\2.mlp.\3.\4"),
    (r"blocks\.(\d+)\.(\d+)\.fremlp\.r", r"stages.\1.\2.fremlp.weight_real"),
    (r"blocks\.(\d+)\.(\d+)\.fremlp\.i", r"stages.\1.\2.fremlp.weight_imag"),
    (r"blocks\.(\d+)\.(\d+)\.fremlp\.rb", r"stages.\1.\2.fremlp.bias_real"),
    (r"blocks\.(\d+)\.(\d+)\.fremlp\.ib", r"stages.\1.\2.fremlp.bias_imag"),
    # FreMLP.embeddings (1, dim) is created by the released module and never read by its forward
    (r"blocks\.(\d+)\.(\d+)\.fremlp\.embeddings", None),
    (r"tokens_down\.(\d+)\.(weight|bias)", r"tokens_down.\1.\2"),
    (r"(norm|head)\.(weight|bias)", r"\1.\2"),
]
# What the released forward computes, field by field: import needs these (the nsd_subj01_released preset).
RELEASED_SETTINGS = {"fremlp": "diagonal", "voxel_remainder": "drop", "spectrum": "complex_square"}


def _diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The diagonal of a released (d, d) FreMLP weight: the einsum 'bijd,dd->bijd' reads W[k, k] only."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        return matrix  # left as is: map_state reports the shape
    return torch.diagonal(matrix).clone()


def load_released(model: LiteMind, weights: dict[str, torch.Tensor], source: str) -> None:
    """Load the released DFTBackbone state dict ``weights`` into ``model`` (built with the released settings,
    :data:`RELEASED_SETTINGS`), or raise :class:`~brainkit.errors.CheckpointError` listing what does not fit.

    Layouts: the Conv1d patch embedding (d, 1, P) becomes our Linear (d, P); the positional table (1, N, d)
    becomes patch-major (N, 1, d); each FreMLP ``r`` / ``i`` (d, d) keeps its diagonal, the only entries the
    released forward reads. The GlobalFilter's (K, F, d, 2) layout is ours already.
    """
    from brainkit.models.released import map_state

    wrong = {
        k: getattr(model.config, k) for k, v in RELEASED_SETTINGS.items() if getattr(model.config, k) != v
    }
    if wrong:
        raise ConfigError(
            f"Released Lite-Mind weights compute {RELEASED_SETTINGS}; this model has {wrong}. Use the model "
            "preset nsd_subj01_released (recipe preset nsd_subj01_released) or set those fields."
        )
    transforms = {
        "patch_embed.weight": lambda w: w.squeeze(1) if w.ndim == 3 else w,
        "pos_embed": _patch_major,
    }
    for key in model.state_dict():
        if key.endswith(("fremlp.weight_real", "fremlp.weight_imag")):
            transforms[key] = _diagonal
    model.load_state_dict(map_state(weights, RELEASED_RULES, model.state_dict(), transforms, source))


def _patch_major(table: torch.Tensor) -> torch.Tensor:
    return table.transpose(0, 1) if table.ndim == 3 else table
