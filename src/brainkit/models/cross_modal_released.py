"""Vis-Dec phase 2's cross-attention as the released code builds it: ``CrossModalConfig(released=True)``.

Read top to bottom: the attention, the released cross layer, the two stacks (fMRI side, image side), the released
fMRI side's state-dict keys. What the released code (soinx0629/vis_dec_neurips, commit eb2e419) computes, read
from ``code/sc_mbm/mae_for_image.py`` (``ViTMAELayer(config, do_cross_attention=True)``, ``ViTMAEEncoder``),
``code/sc_mbm/mae_for_fmri.py`` (``MAEforFMRICross.forward_encoder``) and ``code/sc_mbm/trainer.py``
(``train_one_epoch_cross``); docs/methods/vis_dec.md, "Released weights":

- one layer, at the image MAE's width ``w`` (its heads, MLP ``intermediate_size``, LayerNorm eps; q, k, v
  separate Linears): ``a = self_attn(norm_before(x))`` (not added to ``x``), ``c = cross_attn(norm_before(a),
  context)`` (the same LayerNorm again; keys and values from ``context`` as given, no norm), ``x = x + c``,
  ``x = x + MLP(norm_after(x))`` (GELU);
- fMRI side (``MAEforFMRICross``): the encoder's blocks' output ``t`` (before its final norm), ``m =
  map_in(t)`` (fMRI dim -> w, ``cross_map_in``), ``m + layers(m, image tokens)`` (``do_cross_residual``), then
  ``map_out`` (w -> fMRI dim, ``cross_map_out``); the fMRI encoder's final norm follows (the caller's). The image
  tokens: the image encoder's output (final LayerNorm included) on the WHOLE image (``given_mask_ratio=0``), no
  cross layers;
- the image MAE's decoder: its final LayerNorm at eps 1e-5 (:data:`RELEASED_DECODER_NORM_EPS`);
- image side (``ViTMAEEncoder.layer_cross``): after the image encoder's layers, before its final LayerNorm, ``x =
  layers(x, map_in(fMRI tokens))`` (``cross_map_in``: fMRI dim -> w; no outer residual); the fMRI tokens: the
  fMRI encoder's normed output on every patch (``mask_ratio=0``), no cross layers.
"""

from __future__ import annotations

import re

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from brainkit.errors import ConfigError
from brainkit.models.cpu_linear import CPULinear

# code/sc_mbm/mae_for_image.py ViTMAEDecoder: decoder_norm = nn.LayerNorm(decoder_hidden_size), torch's default eps
# (transformers' ViTMAEDecoder uses the config's layer_norm_eps, 1e-12): 1e-4 apart in the reconstruction
RELEASED_DECODER_NORM_EPS = 1e-5


class Attention(nn.Module):
    """Multi-head attention with separate ``query``, ``key``, ``value`` Linears and an ``out`` Linear (ViT-MAE's
    layout): queries (batch, n, dim), keys and values from ``context`` (batch, m, dim) -> (batch, n, dim)."""

    def __init__(self, dim: int, n_heads: int, bias: bool = True) -> None:
        super().__init__()
        if dim % n_heads:
            raise ConfigError(f"released cross-attention: width {dim} is not divisible by {n_heads} heads.")
        self.n_heads = n_heads
        self.query, self.key, self.value = (CPULinear(dim, dim, bias=bias) for _ in range(3))
        self.out = CPULinear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q, k, v = (rearrange(f(t), "b n (h d) -> b h n d", h=self.n_heads)
                   for f, t in ((self.query, x), (self.key, context), (self.value, context)))  # fmt: skip
        return self.out(rearrange(F.scaled_dot_product_attention(q, k, v), "b h n d -> b n (h d)"))


class ReleasedCrossLayer(nn.Module):
    """The released ``ViTMAELayer`` with cross-attention (module docstring): (batch, n, dim), context (batch, m,
    dim) -> (batch, n, dim). Dropout is not built (vit-mae-base's is 0)."""

    def __init__(self, dim: int, n_heads: int, hidden: int, eps: float, bias: bool = True) -> None:
        super().__init__()
        self.norm_before = nn.LayerNorm(dim, eps=eps)
        self.self_attn = Attention(dim, n_heads, bias)
        self.cross_attn = Attention(dim, n_heads, bias)
        self.norm_after = nn.LayerNorm(dim, eps=eps)
        self.linear1, self.linear2 = CPULinear(dim, hidden), CPULinear(hidden, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        queries = self.norm_before(x)
        attended = self.self_attn(queries, queries)  # only the cross-attention's query: no residual
        x = x + self.cross_attn(self.norm_before(attended), context)
        return x + self.linear2(F.gelu(self.linear1(self.norm_after(x))))


def _layers(image: object, depth: int) -> nn.ModuleList:
    """``depth`` released cross layers at the image MAE's sizes (a ``transformers`` ViTMAEConfig)."""
    act = getattr(image, "hidden_act", "gelu")
    if act != "gelu":
        raise ConfigError(
            f"cross_modal released=True builds its cross layers with the image MAE's GELU, found hidden_act {act!r}."
        )
    sizes = (image.hidden_size, image.num_attention_heads, image.intermediate_size, image.layer_norm_eps)
    return nn.ModuleList(ReleasedCrossLayer(*sizes, bias=image.qkv_bias) for _ in range(depth))


class FMRICrossReleased(nn.Module):
    """The released fMRI side's cross stack: fMRI tokens (batch, n, fmri dim) before the encoder's final norm,
    image tokens (batch, m, width) -> (batch, n, fmri dim): ``map_out(m + layers(m, image)), m = map_in(x)``."""

    def __init__(self, fmri_dim: int, image: object, depth: int) -> None:
        super().__init__()
        width = image.hidden_size
        self.map_in, self.map_out = CPULinear(fmri_dim, width), CPULinear(width, fmri_dim)
        self.layers = _layers(image, depth)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        mapped = mixed = self.map_in(x)
        for layer in self.layers:
            mixed = layer(mixed, context)
        return self.map_out(mapped + mixed)


class ImageCrossReleased(nn.Module):
    """The released image side's cross stack (``layer_cross``): image tokens (batch, n, width) before the image
    encoder's final LayerNorm, fMRI tokens (batch, m, fmri dim) -> (batch, n, width)."""

    def __init__(self, fmri_dim: int, image: object, depth: int) -> None:
        super().__init__()
        self.map_in = CPULinear(fmri_dim, image.hidden_size)
        self.layers = _layers(image, depth)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        context = self.map_in(context)
        for layer in self.layers:
            x = layer(x, context)
        return x


# The released phase-2 checkpoint's fMRI-side cross keys (MAEforFMRICross: cross_map_in, cross_blocks.<i> =
# ViTMAELayer(cross), cross_map_out) -> FMRICrossReleased's, for brainkit.models.released.map_state.
_ATTENTION = {"attention": "self_attn", "cross_attention": "cross_attn"}
FMRI_CROSS_RULES = [
    (r"cross_map_(in|out)\.(weight|bias)", r"map_\1.\2"),
    *((rf"cross_blocks\.(\d+)\.{a}\.attention\.(query|key|value)\.(weight|bias)", rf"layers.\1.{b}.\2.\3")
      for a, b in _ATTENTION.items()),
    *((rf"cross_blocks\.(\d+)\.{a}\.output\.dense\.(weight|bias)", rf"layers.\1.{b}.out.\2")
      for a, b in _ATTENTION.items()),
    (r"cross_blocks\.(\d+)\.intermediate\.dense\.(weight|bias)", r"layers.\1.linear1.\2"),
    (r"cross_blocks\.(\d+)\.output\.dense\.(weight|bias)", r"layers.\1.linear2.\2"),
    (r"cross_blocks\.(\d+)\.layernorm_(before|after)\.(weight|bias)", r"layers.\1.norm_\2.\3"),
]  # fmt: skip


def load_released_fmri_cross(stack: FMRICrossReleased, weights: dict[str, torch.Tensor], source: str) -> None:
    """The ``cross_*`` tensors of a released phase-2 file into ``stack``. A layer count or width that differs from
    the stack's is a :class:`ConfigError` saying which setting fixes it; anything else that does not fit, a
    :class:`~brainkit.errors.CheckpointError` listing it all (:func:`~brainkit.models.released.map_state`)."""
    from brainkit.models.released import map_state

    layers = {m.group(1) for k in weights if (m := re.match(r"cross_blocks\.(\d+)\.", k))}
    w_in = weights.get("cross_map_in.weight")
    width = stack.map_in.out_features
    differ = []
    if len(layers) != len(stack.layers):
        differ.append(f"{len(layers)} cross_blocks, the config's fmri_cross_layers={len(stack.layers)} (--set "
                      f"cross_modal_options.fmri_cross_layers={len(layers)})")  # fmt: skip
    if w_in is not None and w_in.ndim == 2 and w_in.shape[0] != width:
        differ.append(f"cross width {w_in.shape[0]} (cross_map_in), the image MAE's hidden_size {width} (the "
                      "released code crosses at vit-mae-base's 768: --set image_mae_preset=vit_mae_base, or "
                      "image_mae_dir=DIR)")  # fmt: skip
    if differ:
        raise ConfigError(f"{source}: its fMRI-side cross-attention does not fit: " + "; ".join(differ) + ".")
    cross = {k: v for k, v in weights.items() if k.startswith("cross_")}
    stack.load_state_dict(map_state(cross, FMRI_CROSS_RULES, stack.state_dict(), source=source))


__all__ = [
    "FMRI_CROSS_RULES",
    "RELEASED_DECODER_NORM_EPS",
    "Attention",
    "FMRICrossReleased",
    "ImageCrossReleased",
    "ReleasedCrossLayer",
    "load_released_fmri_cross",
]
