"""DC-MAE, Vis-Dec's phase 1 (Sun, Li et al., NeurIPS 2023): a masked autoencoder of 1-D voxel patches.

Read top to bottom: the config and presets, the padding helper, the model.

A sample is one fMRI pattern (batch, n_voxels), cut into ``n_voxels / patch_size`` patches of 16 neighbouring
voxels (in the order the voxels come; Mind-Vis / Vis-Dec concatenate V1..V4). A Conv1d with kernel = stride =
``patch_size`` embeds each patch; fixed 1-D sin-cos positions are added (interleaved; ``[sin | cos]`` with ``released=True``) (the cls token's position is 0); the
encoder (pre-norm transformer blocks, ``mlp_ratio`` x dim MLP) sees only the visible patches and the cls token.
The decoder projects the encoded tokens to ``decoder_dim``, puts a learnt mask token at every hidden patch, adds
its own sin-cos positions, and predicts every patch's 16 voxel values. The losses (masked MSE, self- and
cross-contrast) live in :mod:`brainkit.objectives.double_contrastive`; the training loop in
:mod:`brainkit.recipes.vis_dec.encoder` (a task of the one trainer).

Interfaces used by the later phases (docs/methods/vis_dec.md):
- ``encode(x)``: (batch, n_voxels) -> (batch, 1 + n_patches, dim), cls first, nothing hidden (phase 3's input);
- ``encode_visible(x, mask)``: (batch, n_voxels), (batch, n_patches) bool -> (batch, 1 + n_visible, dim);
  ``normed=False`` stops before the final LayerNorm ``norm``, which the caller then applies (phase 2's released
  layout puts its cross-attention in between);
- ``decode(tokens, mask)``: -> (batch, n_patches, patch_size); ``decode_tokens`` stops before the prediction
  head so phase 2 can put cross-attention in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from brainkit.config import Checked, bounded
from brainkit.errors import ConfigError, DataError
from brainkit.models.cpu_linear import CPULinear
from brainkit.models.layers import Attention, sincos_embedding
from brainkit.models.vsmae import random_patch_mask
from brainkit.registry import MODELS


@dataclass(frozen=True)
class DCMAEConfig(Checked):
    """DC-MAE. ``n_voxels`` comes from the data and must be a multiple of ``patch_size`` (see :func:`pad_voxels`).
    Bounds, even widths and heads dividing them are checked when the config is built."""

    n_voxels: int | None = bounded(
        None, ge=2, le=10_000_000, fix="set by the data; more than 10 million voxels is not a brain recording"
    )
    patch_size: int = bounded(16, ge=1, le=100_000, fix="voxels per token")
    dim: int = bounded(1024, ge=2, le=65_536)
    depth: int = bounded(24, ge=1, le=1000)
    n_heads: int = bounded(16, ge=1, le=1024)
    mlp_ratio: float = bounded(1.0, gt=0, le=64)
    decoder_dim: int = bounded(512, ge=2, le=65_536)
    decoder_depth: int = bounded(8, ge=1, le=1000)
    decoder_heads: int = bounded(16, ge=1, le=1024)
    mask_ratio: float = bounded(0.75, gt=0, lt=1)
    dropout: float = bounded(0.0, ge=0, lt=1)
    # True: compute what Vis-Dec's released code computes (docs/methods/vis_dec.md, "Reference mode"): [sin | cos]
    # positional tables, int(n_patches * (1 - mask_ratio)) patches kept, and (in pad_voxels) a whole patch of
    # padding when the voxel count is already a multiple of the patch size. False: ours (interleaved sin-cos,
    # round(mask_ratio * n_patches) hidden, no padding when none is needed).
    released: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for width, heads in (("dim", "n_heads"), ("decoder_dim", "decoder_heads")):
            w, h = getattr(self, width), getattr(self, heads)
            if w % 2 or w % h:
                raise ConfigError(
                    f"DC-MAE {width}={w} must be even (sin-cos positions) and a multiple of {heads}={h}; change "
                    "one of them."
                )


PRESETS: dict[str, DCMAEConfig] = {
    # Vis-Dec phase 1 [code/config.py, code/sc_mbm/mae_for_fmri.py; METHODS.md sec. 4.2]: patch 16, encoder
    # 1024/24/16 with mlp_ratio 1, decoder 512/8/16 (class default), mask 0.75; 4,656 voxels = 291 patches (the
    # Mind-Vis checkpoint's pos-embed length). Encoder 151,261,184 params (METHODS.md ~151.3 M), decoder
    # 13,158,416 (~13.2 M); tests/test_dc_mae.py counts them on the meta device.
    "paper": DCMAEConfig(n_voxels=4656),
    # The same network computing what the released code computes (positions, mask count; see ``released``).
    "paper_released": DCMAEConfig(n_voxels=4656, released=True),
    # Our choice for one CPU thread (about a minute per epoch of 3,000 samples): encoder 532,480 params at
    # 3,936 voxels, decoder 76,432.
    "cpu_small": DCMAEConfig(dim=128, depth=4, n_heads=4, mlp_ratio=2.0, decoder_dim=64, decoder_depth=2,
                             decoder_heads=4),
    "testing": DCMAEConfig(patch_size=4, dim=16, depth=2, n_heads=2, decoder_dim=8, decoder_depth=1,
                           decoder_heads=2),
}  # fmt: skip


def padding_for(n_voxels: int, multiple: int = 16, released: bool = False) -> int:
    """How many voxels :func:`pad_voxels` appends: ``-n_voxels % multiple`` (ours: none when already a multiple);
    ``released``: ``multiple - n_voxels % multiple``, a whole extra patch when already a multiple (Vis-Dec's
    dataset.pad_to_patch_size)."""
    return multiple - n_voxels % multiple if released else -n_voxels % multiple


def pad_voxels(x: np.ndarray, multiple: int = 16, released: bool = False) -> np.ndarray:
    """Pad (n, n_voxels) to a multiple of ``multiple`` voxels by wrapping around (Mind-Vis' convention:
    the first voxels are repeated at the end); how many: :func:`padding_for`."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] == 0:
        raise DataError(f"pad_voxels: expected (n_samples, n_voxels), found {x.shape}.")
    extra = padding_for(x.shape[1], multiple, released)
    return np.pad(x, ((0, 0), (0, extra)), mode="wrap") if extra else x


class _Layer(nn.Module):
    """A pre-norm transformer block (GELU MLP): ``x + attn(norm1(x))``, then ``x + linear2(gelu(linear1(norm2(x))))``,
    dropout after the attention, inside and after the MLP. Parameter names, shapes and initial values (the same
    draws in the same order) are those of ``nn.TransformerEncoderLayer(norm_first=True, activation="gelu")``,
    which this replaces: (batch, n, dim) -> (batch, n, dim)."""

    def __init__(self, dim: int, n_heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = Attention(dim, n_heads, dropout)
        self.linear1, self.linear2 = CPULinear(dim, hidden), CPULinear(hidden, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout, self.dropout1, self.dropout2 = (nn.Dropout(dropout) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout1(self.self_attn(self.norm1(x)))
        return x + self.dropout2(self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(x))))))


class _Blocks(nn.Module):
    """``depth`` pre-norm transformer blocks (attention with qkv bias, GELU MLP: the ViT / Mind-Vis layout), each
    initialised on its own: (batch, n, dim) -> (batch, n, dim). The parameter names (``layers.<i>.self_attn...``)
    are those of ``nn.TransformerEncoder``, so checkpoints saved with it still load."""

    def __init__(self, dim: int, depth: int, n_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        if dim % n_heads:
            raise ConfigError(f"DC-MAE: width {dim} must be divisible by its {n_heads} heads.")
        self.layers = nn.ModuleList(_Layer(dim, n_heads, int(dim * mlp_ratio), dropout) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def _positions(n_patches: int, dim: int, released: bool = False) -> torch.Tensor:
    """(1 + n_patches, dim): 0 for the cls token, then sin-cos of patch numbers 0..n_patches-1 (interleaved, or
    ``[sin | cos]`` when ``released``)."""
    table = sincos_embedding(n_patches, dim, "concat" if released else "interleaved")
    return torch.cat([torch.zeros(1, dim), table])


def hidden_count(n_patches: int, mask_ratio: float, released: bool = False) -> int:
    """Patches hidden per row: ``round(mask_ratio * n_patches)`` (ours), or ``n_patches - int(n_patches * (1 -
    mask_ratio))`` (released: MAE's len_keep); 218 and 219 of 291 at 0.75. Always at least one shown and hidden."""
    if released:
        n_hidden = n_patches - int(n_patches * (1 - mask_ratio))
    else:
        n_hidden = int(round(mask_ratio * n_patches))
    return min(n_patches - 1, max(1, n_hidden))


def patch_mask(
    batch: int,
    n_patches: int,
    mask_ratio: float,
    released: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(batch, n_patches) bool, True = hidden, :func:`hidden_count` per row. Ours draws as vsMAE does; released
    ranks one uniform draw per patch and hides all but the ``int(L (1 - r))`` smallest, as MAE's random_masking."""
    if not released:
        return random_patch_mask(batch, n_patches, mask_ratio, generator)
    n_keep = n_patches - hidden_count(n_patches, mask_ratio, True)
    ranks = torch.rand(batch, n_patches, generator=generator).argsort(dim=1).argsort(dim=1)
    return ranks >= n_keep


def check_config(config: DCMAEConfig) -> None:
    if config.n_voxels is None:
        raise ConfigError("DC-MAE: n_voxels must be set (it comes from the data).")
    if config.n_voxels % config.patch_size or config.n_voxels < 2 * config.patch_size:
        raise ConfigError(
            f"DC-MAE: n_voxels {config.n_voxels} must be a multiple of patch_size {config.patch_size} (at least "
            f"two patches). Pad the voxels first: brainkit.models.dc_mae.pad_voxels(x, {config.patch_size}) "
            "repeats the first voxels at the end, as Mind-Vis does."
        )


@MODELS.register(
    "dc_mae", help="DC-MAE: double-contrastive masked autoencoder of voxel patches (Vis-Dec phase 1)"
)
class DCMAE(nn.Module):
    """``forward(x, mask)``: (batch, n_voxels), mask (batch, n_patches) bool (True = hidden, the same count per
    row) -> reconstruction of every voxel (batch, n_voxels)."""

    Config = DCMAEConfig
    PRESETS = PRESETS
    testing_sizes = {"n_voxels": 52}  # 13 patches of 4 voxels in the testing preset
    battery_skips: dict[str, str] = {}

    @classmethod
    def example(cls, config: DCMAEConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        n_patches = config.n_voxels // config.patch_size
        mask = patch_mask(batch, n_patches, config.mask_ratio, config.released, generator)
        return torch.randn(batch, config.n_voxels, generator=generator), mask

    def output_shape_for(self, batch: int) -> tuple[int, ...]:
        return (batch, self.config.n_voxels)

    def __init__(self, config: DCMAEConfig) -> None:
        super().__init__()
        check_config(config)
        self.config = config
        self.n_patches = config.n_voxels // config.patch_size
        c = config
        self.patch_embed = nn.Conv1d(1, c.dim, kernel_size=c.patch_size, stride=c.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.register_buffer("positions", _positions(self.n_patches, c.dim, c.released), persistent=False)
        self.encoder = _Blocks(c.dim, c.depth, c.n_heads, c.mlp_ratio, c.dropout)
        self.norm = nn.LayerNorm(c.dim)
        self.decoder_embed = CPULinear(c.dim, c.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_dim))
        self.register_buffer(
            "decoder_positions", _positions(self.n_patches, c.decoder_dim, c.released), persistent=False
        )
        self.decoder = _Blocks(c.decoder_dim, c.decoder_depth, c.decoder_heads, c.mlp_ratio, c.dropout)
        self.decoder_norm = nn.LayerNorm(c.decoder_dim)
        self.decoder_pred = CPULinear(c.decoder_dim, c.patch_size)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    # ------------------------------------------------------------------------------------------ checks, masks
    def check(self, x: torch.Tensor) -> None:
        n = self.config.n_voxels
        if x.ndim != 2 or x.shape[1] != n:
            raise DataError(
                f"DCMAE expects input of shape (batch, {n}) voxels, found {tuple(x.shape)}. Pad the voxels to a "
                f"multiple of {self.config.patch_size} with pad_voxels; a checkpoint fits only its voxel set."
            )
        if not torch.isfinite(x).all():
            raise DataError("DCMAE: input contains NaN or inf; drop or impute those voxels first.")

    def random_mask(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Hide :func:`hidden_count` patches per row: (batch, n_patches) bool, True = hidden."""
        c = self.config
        return patch_mask(batch, self.n_patches, c.mask_ratio, c.released, generator)

    def _check_mask(self, mask: torch.Tensor, batch: int) -> int:
        if mask.shape != (batch, self.n_patches) or mask.dtype != torch.bool:
            raise DataError(
                f"DCMAE: mask must be bool (batch, {self.n_patches}), found {mask.dtype} {tuple(mask.shape)}."
            )
        n_visible = int((~mask[0]).sum())
        if n_visible == 0 or ((~mask).sum(dim=1) != n_visible).any():
            raise DataError("DCMAE: every row must hide the same number of patches and show at least one.")
        return n_visible

    # ------------------------------------------------------------------------------------------------ encoder
    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_voxels) -> patch tokens with positions (batch, n_patches, dim)."""
        tokens = rearrange(self.patch_embed(x[:, None, :]), "b d n -> b n d")
        return tokens + self.positions[1:]

    def _run_encoder(self, patches: torch.Tensor, normed: bool = True) -> torch.Tensor:
        cls = (self.cls_token + self.positions[:1]).expand(len(patches), -1, -1)
        tokens = self.encoder(torch.cat([cls, patches], dim=1))
        return self.norm(tokens) if normed else tokens

    def encode_visible(self, x: torch.Tensor, mask: torch.Tensor, normed: bool = True) -> torch.Tensor:
        """(batch, n_voxels), mask (batch, n_patches) -> (batch, 1 + n_visible, dim), cls first; ``normed=False``:
        before the final LayerNorm (``self.norm``)."""
        self.check(x)
        n_visible = self._check_mask(mask, len(x))
        visible = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :n_visible]
        patches = self._embed(x)
        patches = patches.gather(1, visible[..., None].expand(-1, -1, patches.shape[-1]))
        return self._run_encoder(patches, normed)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_voxels) -> (batch, 1 + n_patches, dim): every patch visible, cls first."""
        self.check(x)
        return self._run_encoder(self._embed(x))

    # ------------------------------------------------------------------------------------------------ decoder
    def decode_tokens(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoded (batch, 1 + n_visible, dim) + mask -> decoder features (batch, 1 + n_patches, decoder_dim)."""
        x = self.decoder_embed(tokens)
        cls, visible_tokens = x[:, :1], x[:, 1:]
        n_visible = visible_tokens.shape[1]
        visible = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :n_visible]
        # in the activations' dtype: under autocast the projection gives bf16 / fp16, the table is fp32
        full = self.mask_token.to(x.dtype).expand(len(x), self.n_patches, -1).clone()
        full = full.scatter(1, visible[..., None].expand(-1, -1, full.shape[-1]), visible_tokens)
        return self.decoder(torch.cat([cls, full], dim=1) + self.decoder_positions)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Decoder features (batch, 1 + n_patches, decoder_dim) -> voxels (batch, n_voxels)."""
        values = self.decoder_pred(self.decoder_norm(features[:, 1:]))
        return rearrange(values, "b n p -> b (n p)")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.predict(self.decode_tokens(self.encode_visible(x, mask), mask))

    # -------------------------------------------------------------------------------------- parameter groups
    def encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters ``encode`` uses (patch embedding, cls token, blocks, final norm)."""
        modules = (self.patch_embed, self.encoder, self.norm)
        return [self.cls_token] + [p for m in modules for p in m.parameters()]


# The released MAEforFMRIContrast state-dict keys (soinx0629/vis_dec_neurips code/sc_mbm/mae_for_fmri.py, timm
# ``Block``s; the phase-1 script saves {"model": state_dict, ...}) -> ours, for a model with ``released=True``.
# The classes Vis-Dec's training scripts pickle beside the weights (code/config.py, imported as module "config":
# utils.save_model stores {"model", "optimizer", "epoch", "scaler", "config"}): read as inert records by
# brainkit.checkpoint.read_torch_weights(path, RELEASED_METADATA).
RELEASED_METADATA = tuple(
    f"config.{name}"
    for name in (
        "Config_MAE_fMRI", "Config_MBM_fMRI", "Config_MBM_fMRI_contrast", "Config_MBM_finetune",
        "Config_MBM_finetune_contrast", "Config_MBM_finetune_cross", "Config_Generative_Model",
    )
)  # fmt: skip
# within a block (group 1 of the full pattern is the block index, so these groups start at 2)
_LAYER = [
    (r"norm([12])\.(weight|bias)", r"norm\2.\3"),
    (r"attn\.qkv\.(weight|bias)", r"self_attn.in_proj_\2"),
    (r"attn\.proj\.(weight|bias)", r"self_attn.out_proj.\2"),
    (r"mlp\.fc([12])\.(weight|bias)", r"linear\2.\3"),
]
RELEASED_RULES = [
    (r"patch_embed\.proj\.(weight|bias)", r"patch_embed.\1"),
    (r"(cls_token|mask_token)", r"\1"),
    *((rf"blocks\.(\d+)\.{a}", rf"encoder.layers.\1.{b}") for a, b in _LAYER),
    *((rf"decoder_blocks\.(\d+)\.{a}", rf"decoder.layers.\1.{b}") for a, b in _LAYER),
    (r"(norm|decoder_embed|decoder_norm|decoder_pred)\.(weight|bias)", r"\1.\2"),
    # the fixed sin-cos tables: recomputed here, compared with ours in load_released before being dropped
    (r"(decoder_)?pos_embed", None),
    # the optional natural-image decoder head (use_nature_img_loss): a training aid brainkit does not build
    (r"nature_img_.*", None),
]


def load_released(model: DCMAE, weights: dict[str, torch.Tensor], source: str) -> list[str]:
    """Load a released Vis-Dec phase-1 DC-MAE (``MAEforFMRIContrast``) state dict into ``model`` (built with
    ``released=True``, e.g. the ``paper_released`` preset, and the file's voxel count: n voxels padded as the
    released ``pad_to_patch_size``). Its fixed positional tables are checked against ours (max abs difference
    1e-4: a file with other tables is refused) and not loaded; ``nature_img_*`` entries are not loaded. Returns
    notes on what was left out; raises :class:`~brainkit.errors.CheckpointError` listing what does not fit."""
    from brainkit.models.released import check_fixed_table, map_state

    if not model.config.released:
        raise ConfigError(
            "Released Vis-Dec DC-MAE weights need released=True (the paper_released preset): its [sin | cos] "
            "positional tables and mask count."
        )
    check_fixed_table(weights.get("pos_embed"), model.positions, "pos_embed", source)
    check_fixed_table(weights.get("decoder_pos_embed"), model.decoder_positions, "decoder_pos_embed", source)
    model.load_state_dict(map_state(weights, RELEASED_RULES, model.state_dict(), source=source))
    dropped = sorted({k.split(".")[0] for k in weights if k.startswith("nature_img_")})
    return (
        [f"not loaded (natural-image decoder head, not built by brainkit): {', '.join(dropped)}"]
        if dropped
        else []
    )


__all__ = [
    "DCMAE",
    "DCMAEConfig",
    "PRESETS",
    "hidden_count",
    "load_released",
    "pad_voxels",
    "padding_for",
    "patch_mask",
]
