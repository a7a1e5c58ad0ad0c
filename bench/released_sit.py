"""Released-style references of SiT and of SIM's fMRI path, for bench/bench_models.py's ``ratio_vs_released``.

Written here after what metrics-lab/sim computes and how it lays it out (not copied): SIM's ``fMRIEncoder``
(models/clip.py) runs its SiT (models/sit.py) on lucidrains' vit-pytorch ``Transformer``:

- patch embedding ``Sequential(Rearrange('b c n v -> b n (v c)'), Linear)``, the fixed position table added,
  fMRIEncoder's own cls token prepended with ``einops.repeat``;
- per layer ``[Attention, FeedForward]``, each pre-norm with its LayerNorm inside: ``to_qkv`` one bias-free
  Linear, ``chunk(3)`` and one ``rearrange`` per q / k / v, explicit ``softmax(q k^T * scale)`` (an
  ``nn.Softmax`` module, attention dropout), ``attn @ v``, ``to_out = Sequential(Linear, Dropout)``;
  FeedForward ``Sequential(LayerNorm, Linear, GELU, Dropout, Linear, Dropout)``; residuals ``x = attn(x) + x``;
- the Transformer's final LayerNorm (and, with ``released=True``, ``mlp_head[0]``, a second LayerNorm).

SIM's projection head (``Wrapper``): ``projected = Linear(x)``; ``Linear(GELU(projected))``, dropout,
``+ projected``, LayerNorm; applied to every patch token, then the mean (``avg_fmri: post_proj``).

Sizes come from brainkit's config, so parameters match brainkit's model one for one (checked by the bench);
the fixed position table is brainkit's own buffer (no parameters; its values do not change the step's cost).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from einops.layers.torch import Rearrange
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        inner_dim = heads * dim_head
        self.heads, self.scale = heads, dim_head**-0.5
        self.norm = nn.LayerNorm(dim)
        self.attend = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        x = self.norm(x)
        qkv = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in qkv)
        dots = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        attn = self.dropout(self.attend(dots))
        out = torch.matmul(attn, v)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        return self.net(x)


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([Attention(dim, heads, dim_head, dropout), FeedForward(dim, mlp_dim, dropout)])
            for _ in range(depth)
        )

    def forward(self, x):
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.norm(x)


class SiTEncoder(nn.Module):
    """SIM's fMRIEncoder over its SiT: clips (b, frames, patches, vertices) -> tokens (b, 1 + patches, dim)."""

    def __init__(self, config, pos_embedding: torch.Tensor) -> None:
        super().__init__()
        c = config
        self.to_patch_embedding = nn.Sequential(
            Rearrange("b c n v -> b n (v c)"), nn.Linear(c.n_frames * c.n_patch_vertices, c.dim)
        )
        self.register_buffer("pos_embedding", pos_embedding[None].clone(), persistent=False)
        self.cls_token = nn.Parameter(torch.randn(1, 1, c.dim))
        self.dropout = nn.Dropout(c.dropout)
        mlp_dim = int(c.dim * c.mlp_ratio)
        self.transformer = Transformer(c.dim, c.depth, c.n_heads, c.head_dim, mlp_dim, c.dropout)
        self.mlp_head = nn.Sequential(nn.LayerNorm(c.dim)) if c.released else nn.Sequential()

    def forward(self, img):
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        x = x + self.pos_embedding[:, :n]
        cls_tokens = repeat(self.cls_token, "1 1 d -> b 1 d", b=b)
        x = self.dropout(torch.cat((cls_tokens, x), dim=1))
        return self.mlp_head(self.transformer(x))


class Wrapper(nn.Module):
    """SIM's projection head: LayerNorm(projected + dropout(fc(GELU(projected)))), projected = Linear(x)."""

    def __init__(self, embedding_dim: int, projection_dim: int, dropout: float) -> None:
        super().__init__()
        self.projection = nn.Linear(embedding_dim, projection_dim)
        self.gelu = nn.GELU()
        self.fc = nn.Linear(projection_dim, projection_dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(projection_dim)

    def forward(self, x):
        projected = self.projection(x)
        x = self.gelu(projected)
        x = self.fc(x)
        x = self.dropout(x)
        x = x + projected
        return self.layer_norm(x)


class SIMFMRI(nn.Module):
    """SIM's fMRI path (what brainkit's ``SIM.forward`` computes): encoder, cls dropped, head per token, mean.
    The video and audio heads are built (the parameter count) but, as in brainkit's forward, not run."""

    def __init__(self, config, pos_embedding: torch.Tensor) -> None:
        super().__init__()
        c = config
        self.fmri_encoder = SiTEncoder(c.encoder, pos_embedding)
        self.fmri_projection = Wrapper(c.encoder.dim, c.embedding_dim, c.dropout)
        self.video_projection = Wrapper(c.video_dim, c.embedding_dim, c.dropout)
        self.audio_projection = Wrapper(c.audio_dim, c.embedding_dim, c.dropout)

    def forward(self, fmri):
        tokens = self.fmri_encoder(fmri)[:, 1:]
        return self.fmri_projection(tokens).mean(dim=1)


def sit_reference(model, config) -> tuple[nn.Module, object, int, str]:
    """(reference, forward taking brainkit's inputs, reference params - ours, what the reference is)."""
    reference = SiTEncoder(config, model.positions)
    return reference, reference, 0, "vit-pytorch_Transformer_explicit_softmax"


def sim_reference(model, config) -> tuple[nn.Module, object, int, str]:
    reference = SIMFMRI(config, model.encoder.positions)
    return reference, reference, 0, "SIM_fMRI_path:vit-pytorch_SiT+Wrapper_head"
