"""Released-style reference of Vis-Dec phase 2 (cross-modal tuning), for bench/bench_models.py's
``ratio_vs_released``; it runs at brainkit's ``cross_modal`` preset ``paper_released`` (``released=True``: the
released layout and forward pass), ours' default ``paper`` preset being another layout.

Written here after what soinx0629/vis_dec_neurips (commit eb2e419) computes and how it lays it out (not copied):
``code/sc_mbm/mae_for_fmri.py`` (``MAEforFMRICross``), ``code/sc_mbm/mae_for_image.py`` (its ViT-MAE with
``ViTMAELayer(config, do_cross_attention=True)``) and ``code/sc_mbm/trainer.py`` (``train_one_epoch_cross``):

- fMRI side: the phase-1 MAE's timm 0.5.4 blocks (bench/released_dc_mae.py), then ``x = cross_map_in(x)``,
  ``cross_x = x.clone()``, the cross blocks on ``cross_x`` with the image support as keys and values, ``x = x +
  cross_x`` (``do_cross_residual``), ``cross_map_out``, the final norm; the decoder; ``forward_loss`` (per-patch
  mean squared error, mean over the hidden patches);
- a cross block: ViT-MAE's layer with its eager attention (separate ``query`` / ``key`` / ``value`` Linears,
  ``matmul``, ``/ sqrt(head size)``, ``softmax``, ``matmul``, ``permute(...).contiguous().view``; ``output.dense``)
  for the self-attention, then the same for the cross-attention on ``layernorm_before`` of its output, the
  residual, ``layernorm_after``, ``intermediate`` (Linear + GELU), ``output`` (Linear + residual);
- image side: the released file is transformers' ViT-MAE of its day with the cross layers added, so the reference
  builds transformers' ``ViTMAEForPreTraining`` with ``attn_implementation="eager"`` (the explicit softmax above)
  and adds ``layer_cross`` after the encoder's layers, before its final LayerNorm, each layer calling
  ``cross_map_in(fmri_support)`` anew, as ``ViTMAEEncoder.forward`` does; then the decoder (its final LayerNorm
  at nn.LayerNorm's eps 1e-5), ``forward_loss`` and ``calc_corr`` (the per-sample correlation the released
  forward computes and returns);
- one training step (``train_one_epoch_cross``): ``img_support`` = the image encoder on the whole image
  (``given_mask_ratio=0``, no cross layers); the fMRI loss with it; ``fmri_support`` = the fMRI encoder with
  nothing hidden and no cross-attention; the image loss with it; ``fmri_recon_weight * fmri + img_recon_weight *
  image``. The trainer's logging correlation of the fMRI prediction (after the step) is left out.

To time the same work as brainkit's step, the reference takes brainkit's inputs: the fMRI mask as MAE noise (as
bench/released_dc_mae.py does), the image noise as ViT-MAE's, ordered noise for the whole-image pass. Parameters
match brainkit's one for one; :func:`cross_modal_reference` checks nothing else, the bench counts them.
"""

from __future__ import annotations

import math

import torch
from released_dc_mae import MAEforFMRI
from torch import nn

RELEASED_DECODER_NORM_EPS = 1e-5  # mae_for_image.py ViTMAEDecoder: nn.LayerNorm(decoder_hidden_size)


class ViTMAESelfAttention(nn.Module):
    """The released eager attention; ``context`` None: self-attention (``ViTMAESelfAttention``), else
    ``ViTMAECrossAttention`` (keys and values from ``context``)."""

    def __init__(self, config) -> None:
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = self.num_attention_heads * self.attention_head_size
        self.query = nn.Linear(config.hidden_size, self.all_head_size, bias=config.qkv_bias)
        self.key = nn.Linear(config.hidden_size, self.all_head_size, bias=config.qkv_bias)
        self.value = nn.Linear(config.hidden_size, self.all_head_size, bias=config.qkv_bias)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def transpose_for_scores(self, x):
        x = x.view(*x.size()[:-1], self.num_attention_heads, self.attention_head_size)
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, context=None):
        context = hidden_states if context is None else context
        query_layer = self.transpose_for_scores(self.query(hidden_states))
        key_layer = self.transpose_for_scores(self.key(context))
        value_layer = self.transpose_for_scores(self.value(context))
        scores = torch.matmul(query_layer, key_layer.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        context_layer = torch.matmul(probs, value_layer).permute(0, 2, 1, 3).contiguous()
        return context_layer.view(*context_layer.size()[:-2], self.all_head_size)


class ViTMAESelfOutput(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states):
        return self.dropout(self.dense(hidden_states))


class ViTMAEAttention(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.attention = ViTMAESelfAttention(config)
        self.output = ViTMAESelfOutput(config)

    def forward(self, hidden_states, context=None):
        return self.output(self.attention(hidden_states, context))


class ViTMAEIntermediate(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = nn.GELU()

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class ViTMAEOutput(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.dropout(self.dense(hidden_states)) + input_tensor


class ViTMAECrossLayer(nn.Module):
    """``ViTMAELayer(config, do_cross_attention=True)``: (batch, n, width), context (batch, m, width) -> same."""

    def __init__(self, config) -> None:
        super().__init__()
        self.attention = ViTMAEAttention(config)
        self.cross_attention = ViTMAEAttention(config)
        self.intermediate = ViTMAEIntermediate(config)
        self.output = ViTMAEOutput(config)
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states, context):
        attention_output = self.attention(self.layernorm_before(hidden_states))
        attention_output = self.cross_attention(self.layernorm_before(attention_output), context)
        hidden_states = attention_output + hidden_states
        layer_output = self.intermediate(self.layernorm_after(hidden_states))
        return self.output(layer_output, hidden_states)


class MAEforFMRICross(MAEforFMRI):
    """The phase-2 fMRI model: phase 1's MAE (timm blocks) with ``cross_map_in``, ``cross_blocks`` and
    ``cross_map_out`` between its blocks and its final norm."""

    def __init__(self, config, pos_embed, decoder_pos_embed, image_config, depth: int) -> None:
        super().__init__(config, pos_embed, decoder_pos_embed)
        width = image_config.hidden_size
        self.cross_blocks = nn.ModuleList(ViTMAECrossLayer(image_config) for _ in range(depth))
        self.cross_map_in = nn.Linear(config.dim, width, bias=True)
        self.cross_map_out = nn.Linear(width, config.dim, bias=True)

    def forward_encoder(self, x, noise, len_keep, img_support=None):
        x, ids_restore = self.forward_blocks(x, noise, len_keep)
        if img_support is not None:
            x = self.cross_map_in(x)
            cross_x = x.clone()
            for blk in self.cross_blocks:
                cross_x = blk(cross_x, img_support)
            x = self.cross_map_out(x + cross_x)
        return self.norm(x), ids_restore

    def loss(self, voxels, mask, img_support):
        """``forward(samples, mask_ratio, image_support)``'s loss: voxels (b, n_voxels), mask (b, L) True = hidden."""
        len_keep = int((~mask[0]).sum())
        latent, ids_restore = self.forward_encoder(voxels.unsqueeze(1), mask.float(), len_keep, img_support)
        pred = self.forward_decoder(latent, ids_restore)  # (b, L, p)
        target = voxels.reshape(pred.shape)  # patchify
        loss = ((pred - target) ** 2).mean(dim=-1)
        hidden = mask.float()
        return (loss * hidden).sum() / hidden.sum() if hidden.sum() != 0 else (loss * hidden).sum()

    def support(self, voxels):
        """``model(samples, mask_ratio=0, encoder_only=True)``: (b, n_voxels) -> (b, 1 + L, dim)."""
        noise = torch.arange(self.patch_embed.num_patches, dtype=voxels.dtype).expand(len(voxels), -1)
        return self.forward_encoder(voxels.unsqueeze(1), noise, noise.shape[1])[0]


class ImageMAECross(nn.Module):
    """The released image MAE: transformers' ViT-MAE (eager attention) with ``cross_map_in`` and ``layer_cross``."""

    def __init__(self, image_config, fmri_dim: int, depth: int) -> None:
        super().__init__()
        from transformers import ViTMAEConfig, ViTMAEForPreTraining

        config = ViTMAEConfig.from_dict(image_config.to_dict())
        config._attn_implementation = "eager"
        self.mae = ViTMAEForPreTraining(config)
        self.mae.decoder.decoder_norm.eps = RELEASED_DECODER_NORM_EPS
        self.cross_map_in = nn.Linear(fmri_dim, config.hidden_size)
        self.layer_cross = nn.ModuleList(ViTMAECrossLayer(config) for _ in range(depth))

    def support(self, pixels):
        """``model_image(pixel_values, given_mask_ratio=0, encoder_only=True).last_hidden_state``."""
        config = self.mae.config
        ratio, config.mask_ratio = config.mask_ratio, 0.0
        try:
            n = self.mae.vit.embeddings.patch_embeddings.num_patches
            order = torch.arange(n, dtype=pixels.dtype).expand(len(pixels), -1)
            return self.mae.vit(pixel_values=pixels, noise=order).last_hidden_state
        finally:
            config.mask_ratio = ratio

    def loss(self, pixels, noise, fmri_support):
        """``model_image(pixel_values, given_mask_ratio, fmri_support)``: the loss (``calc_corr`` computed too)."""
        outputs = self.mae.vit(pixel_values=pixels, noise=noise, output_hidden_states=True)
        hidden_states = outputs.hidden_states[-1]  # the encoder's layers, before its final LayerNorm
        for layer in self.layer_cross:
            hidden_states = layer(hidden_states, self.cross_map_in(fmri_support))
        latent = self.mae.vit.layernorm(hidden_states)
        logits = self.mae.decoder(latent, outputs.ids_restore).logits
        target = self.mae.patchify(pixels)
        if self.mae.config.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        mask = outputs.mask
        loss = (((logits - target) ** 2).mean(dim=-1) * mask).sum() / mask.sum()
        pairs = zip(logits.detach(), target)
        torch.mean(torch.tensor([torch.corrcoef(torch.cat([p, s], axis=0))[0, 1] for p, s in pairs])).item()
        return loss


class CrossModalReference(nn.Module):
    """forward(voxels, pixels, fmri_mask, image_noise) -> {"loss"}: one ``train_one_epoch_cross`` step's loss."""

    def __init__(self, model, config) -> None:
        super().__init__()
        fmri, image = model.fmri.config, model.image.config
        self.fmri = MAEforFMRICross(
            fmri, model.fmri.positions, model.fmri.decoder_positions, image, config.fmri_cross_layers
        )
        self.image = ImageMAECross(image, fmri.dim, config.image_cross_layers)
        self.weights = (config.fmri_recon_weight, config.image_recon_weight)

    def forward(self, voxels, pixels, fmri_mask, image_noise):
        img_support = self.image.support(pixels)
        loss_fmri = self.fmri.loss(voxels, fmri_mask, img_support)
        fmri_support = self.fmri.support(voxels)
        loss_image = self.image.loss(pixels, image_noise, fmri_support)
        return {"loss": self.weights[0] * loss_fmri + self.weights[1] * loss_image}


def cross_modal_reference(model, config) -> tuple[nn.Module, object, int, str] | str:
    """(reference, forward taking brainkit's inputs, reference params - ours, what the reference is), or the reason
    there is none (ours' own layout, ``released=False``)."""
    if not config.released:
        return "cross_modal_released=False_is_ours_(reference_at_released=True:preset_paper_released)"
    reference = CrossModalReference(model, config)
    return reference, reference, 0, "Vis-Dec_MAEforFMRICross+ViTMAE_eager_layer_cross"
