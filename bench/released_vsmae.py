"""Released-style reference of vsMAE (``released=True``), for bench/bench_models.py's ``ratio_vs_released``.

Written here after what metrics-lab/surface-masked-autoencoders ``models/vsmae.py`` computes with
``masking_type="tubelet"`` and how it lays it out (not copied), over vit-pytorch's ``Transformer``
(bench/released_sit.py's, the layout SiT uses):

- ``'b t n v -> b (t n) v'``: one token per (frame, patch), frame-major; ``to_patch_embedding = Sequential(
  Rearrange, Linear(v, dim))``, the fixed ``[sin | cos]`` table added to every token;
- tubelet masking by advanced indexing: the kept patches' tokens in every frame, ``tokens[batch_range, kept]``;
- the encoder's Transformer (with its final LayerNorm) and vsMAE's ``norm`` (the SiT's ``mlp_head[0]``);
- ``enc_to_dec`` (the identity at decoder width = encoder width), a zero ``(b, t n, width)`` buffer written
  twice by advanced-index assignment (the encoded tokens, then ``repeat(mask_token)`` at the hidden ones), the
  fixed decoder table added, the decoder Transformer, ``decoder_norm``, ``to_pixels``.

The only departure: ``to_pixels`` runs on every token, not only the hidden ones, because brainkit's vsMAE
returns every patch's reconstruction (the loss then reads the hidden ones); the bench's loss is the same for
both. The kept patches are brainkit's (from its mask, in its order), so both encode the same tokens. Names follow
the released state dict, so brainkit's ``vsmae.load_released`` loads the reference's weights (the test checks
that ours then gives the same output). vsMAE's default (``released=False``: cls token, our decoder) has no
released counterpart: the bench says so.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from einops.layers.torch import Rearrange
from released_sit import Transformer
from torch import nn


class Encoder(nn.Module):
    def __init__(self, e, pos_embedding: torch.Tensor) -> None:
        super().__init__()
        self.to_patch_embedding = nn.Sequential(
            Rearrange("b t n v -> b (t n) v"), nn.Linear(e.n_patch_vertices, e.dim)
        )
        self.register_buffer("pos_embedding", pos_embedding[None].clone())
        self.transformer = Transformer(
            e.dim, e.depth, e.n_heads, e.head_dim, int(e.dim * e.mlp_ratio), e.dropout
        )
        self.mlp_head = nn.Sequential(nn.LayerNorm(e.dim))


class ReleasedVSMAE(nn.Module):
    def __init__(self, config, encoder_table: torch.Tensor, decoder_table: torch.Tensor) -> None:
        super().__init__()
        e, width = config.encoder, config.decoder_dim
        self.n_frames, self.n_patches = e.n_frames, e.n_patches
        self.encoder = Encoder(e, encoder_table)
        self.enc_to_dec = nn.Linear(e.dim, width) if e.dim != width else nn.Identity()
        self.mask_token = nn.Parameter(torch.randn(width))
        self.decoder = Transformer(width, config.decoder_depth, config.decoder_heads, config.decoder_head_dim,
                                   int(width * 4.0), 0.0)  # fmt: skip
        self.register_buffer("decoder_pos_emb", decoder_table[None].clone())
        self.decoder_norm = nn.LayerNorm(width)
        self.to_pixels = nn.Linear(width, e.n_patch_vertices)

    def forward(self, x, mask):
        """clips (b, t, n, v), mask (b, n) bool (True = hidden) -> every patch's reconstruction (b, t, n, v)."""
        b, t, n = x.shape[0], self.n_frames, self.n_patches
        tokens = self.encoder.to_patch_embedding(x) + self.encoder.pos_embedding
        n_keep = int((~mask[0]).sum())
        order = torch.argsort(mask.to(torch.int8), dim=1, stable=True)
        frames = torch.arange(t, device=x.device)[:, None] * n
        kept = (frames + order[:, None, :n_keep]).flatten(1)  # (b, t * n_keep) token indices
        hidden = (frames + order[:, None, n_keep:]).flatten(1)
        batch_range = torch.arange(b, device=x.device)[:, None]
        encoded = self.encoder.mlp_head(self.encoder.transformer(tokens[batch_range, kept]))
        decoder_tokens = self.enc_to_dec(encoded)
        full = torch.zeros(b, t * n, decoder_tokens.shape[-1], device=x.device, dtype=decoder_tokens.dtype)
        full[batch_range, kept] = decoder_tokens
        full[batch_range, hidden] = repeat(self.mask_token, "d -> b m d", b=b, m=hidden.shape[1])
        decoded = self.decoder(full + self.decoder_pos_emb)
        values = self.to_pixels(self.decoder_norm(decoded))
        return rearrange(values, "b (t n) v -> b t n v", t=t)


def vsmae_reference(model, config) -> tuple[nn.Module, object, int, str] | str:
    """(reference, forward taking brainkit's inputs, reference params - ours, what the reference is), or the reason
    there is none (vsMAE's own default is not the released computation)."""
    if not config.released:
        return "vsMAE_released=False_is_ours_(reference_at_released=True:preset_sim_released)"
    reference = ReleasedVSMAE(config, model.encoder.positions, model.decoder.positions)
    return reference, reference, 0, "vsMAE_tubelet:vit-pytorch_Transformer_explicit_softmax"
