"""Released-style reference of Vis-Dec's phase-1 DC-MAE, for bench/bench_models.py's ``ratio_vs_released``.

Written here after what soinx0629/vis_dec_neurips code/sc_mbm/mae_for_fmri.py (``MAEforFMRIContrast``) computes
and how it lays it out (not copied), with the timm its env.yaml pins (timm 0.5.4, torch 1.12.1):

- ``PatchEmbed1D``: Conv1d(1, dim, kernel = stride = patch), ``.transpose(1, 2).contiguous()``;
- fixed ``pos_embed`` / ``decoder_pos_embed`` as frozen ``nn.Parameter`` of (1, 1 + L, dim), added whole;
- MAE's ``random_masking``: argsort of a per-patch noise, ``ids_restore`` = argsort of that, ``gather`` of the
  kept patches; the decoder appends ``mask_token.repeat`` and unshuffles with ``gather(ids_restore)``;
- timm 0.5.4 ``Block``: ``x + attn(norm1(x))``, ``x + mlp(norm2(x))``; ``Attention``: one ``qkv`` Linear with bias,
  ``reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)``, explicit ``(q @ k^T) * scale``, ``softmax``,
  ``attn_drop``, ``(attn @ v).transpose(1, 2).reshape(B, N, C)``, ``proj``; ``Mlp``: fc1, GELU, drop, fc2, drop;
- ``decoder_pred`` on every token, then the cls token removed; ``unpatchify`` to (batch, n_voxels).

To time the same work as brainkit's step, the reference takes brainkit's mask (True = hidden) and uses it as
MAE's noise: the kept patches are ours, in our order; the count is ours (the released ``int(L (1 - r))``
differs by one patch at most, see models/dc_mae.py ``hidden_count``). The loss is the bench's (the same for both).
Parameters match brainkit's one for one (the frozen tables do not count: not trainable).
"""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed1D(nn.Module):
    def __init__(self, num_voxels, patch_size, in_chans, embed_dim) -> None:
        super().__init__()
        self.num_patches = num_voxels // patch_size
        self.patch_size = patch_size
        self.proj = nn.Conv1d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).transpose(1, 2).contiguous()


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, drop) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))


class Attention(nn.Module):
    def __init__(self, dim, num_heads, qkv_bias, drop) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, drop) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MAEforFMRI(nn.Module):
    """forward(x, mask): (batch, n_voxels), (batch, L) bool (True = hidden) -> prediction (batch, n_voxels)."""

    def __init__(self, config, pos_embed: torch.Tensor, decoder_pos_embed: torch.Tensor) -> None:
        super().__init__()
        c = config
        self.patch_embed = PatchEmbed1D(c.n_voxels, c.patch_size, 1, c.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(pos_embed[None].clone(), requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(c.dim, c.n_heads, c.mlp_ratio, True, c.dropout) for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.dim)
        self.decoder_embed = nn.Linear(c.dim, c.decoder_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_dim))
        self.decoder_pos_embed = nn.Parameter(decoder_pos_embed[None].clone(), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            Block(c.decoder_dim, c.decoder_heads, c.mlp_ratio, True, c.dropout)
            for _ in range(c.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(c.decoder_dim)
        self.decoder_pred = nn.Linear(c.decoder_dim, c.patch_size, bias=True)
        torch.nn.init.normal_(self.cls_token, std=0.02)
        torch.nn.init.normal_(self.mask_token, std=0.02)

    def random_masking(self, x, noise, len_keep):
        N, L, D = x.shape
        ids_shuffle = torch.argsort(noise, dim=1, stable=True)  # small is keep, large is remove
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
        return x_masked, ids_restore

    def forward_blocks(self, x, noise, len_keep):
        """``forward_encoder`` up to its final norm (phase 2's cross-attention goes there)."""
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]
        x, ids_restore = self.random_masking(x, noise, len_keep)
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return x, ids_restore

    def forward_encoder(self, x, noise, len_keep):
        x, ids_restore = self.forward_blocks(x, noise, len_keep)
        return self.norm(x), ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[:, 1:, :]

    def forward(self, imgs, mask):
        len_keep = int((~mask[0]).sum())
        latent, ids_restore = self.forward_encoder(imgs.unsqueeze(1), mask.float(), len_keep)
        pred = self.forward_decoder(latent, ids_restore)  # (N, L, patch)
        return pred.reshape(pred.shape[0], -1)  # unpatchify, channel axis dropped


def dc_mae_reference(model, config) -> tuple[nn.Module, object, int, str]:
    """(reference, forward taking brainkit's inputs, reference params - ours, what the reference is)."""
    reference = MAEforFMRI(config, model.positions, model.decoder_positions)
    return reference, reference, 0, "Vis-Dec_MAEforFMRI:timm0.5.4_Blocks_explicit_softmax"
