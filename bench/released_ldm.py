"""Released-style reference of Vis-Dec's phase-3 LDM step, for bench/bench_models.py's ``ratio_vs_released``.

Written here after what soinx0629/vis_dec_neurips computes in phase 3 and how it lays it out (not copied):
``code/dc_ldm/modules/diffusionmodules/openaimodel.py`` (``UNetModel``, CompVis's with Mind-Vis' additions),
``code/dc_ldm/modules/attention.py`` (``SpatialTransformer``, ``BasicTransformerBlock``, ``CrossAttention``),
``code/dc_ldm/ldm_for_fmri.py`` (``cond_stage_model``: Conv1d seq -> seq / 2 -> 77, Linear to context_dim), at
the paper's pretrained "label2img" configuration (models/ldm.py preset ``label2img``):

- ``timestep_embedding`` ([cos | sin] of t * 10000^(-i / half)), ``time_embed`` Linear, SiLU, Linear;
- ``input_blocks`` (the first convolution, then per level ``ResBlock`` [+ ``SpatialTransformer``] twice and a
  stride-2 ``Downsample``), ``middle_block`` (ResBlock, SpatialTransformer, ResBlock), ``output_blocks`` (each
  ``th.cat([h, hs.pop()], dim=1)`` then ResBlock [+ SpatialTransformer] [+ nearest-neighbour ``Upsample``]),
  ``out`` (GroupNorm, SiLU, convolution);
- ``ResBlock``: ``in_layers`` (GroupNorm, SiLU, conv), ``emb_layers`` (SiLU, Linear) added as ``[..., None,
  None]``, ``out_layers`` (GroupNorm, SiLU, Dropout, conv), ``skip_connection`` + h;
- ``SpatialTransformer``: GroupNorm, 1x1 ``proj_in``, ``rearrange`` to tokens, the blocks, back, 1x1
  ``proj_out``, + the input;
- ``BasicTransformerBlock``: ``attn1`` (self), ``attn2`` (the context), GEGLU feed-forward, each pre-norm and
  residual, run through ``util.checkpoint`` with its default ``checkpoint=True``: the block's forward runs under
  ``no_grad`` and is recomputed in the backward pass, which then calls ``torch.autograd.grad`` over the inputs and
  the block's parameters (CompVis's ``CheckpointFunction``);
- ``CrossAttention``: q / k / v Linear without bias, ``rearrange('b n (h d) -> (b h) n d')``, explicit
  ``einsum('b i d, b j d -> b i j') * scale``, ``softmax``, ``einsum('b i j, b j d -> b i d')``, ``to_out``.

At ``unet_trained="cross_attention"`` (the ``label2img_released`` preset: the released phase 3's trained set) the
reference computes every UNet gradient, as the released step does (:class:`ReleasedLDM` ``every_gradient``), and
ours computes only those of the trained set.

Not in the reference: Mind-Vis' ``time_embed_condtion`` (``use_time_cond``: the context mapped by two Conv1d and a
Linear into the timestep embedding), because brainkit's LDM does not build it; the step would otherwise differ in
work, not in layout. The released phase 3 (``train_cond_stage_only``) computes every UNet gradient
(``unfreeze_whole_model``) but hands AdamW the conditioner and the ``attn2`` / ``norm2`` parameters only; the bench
times both sides with AdamW over the same trained set: at the ``label2img`` preset the whole UNet and the mapper
(the released code's ``train_cond_stage_only=False`` branch), at ``label2img_released`` the released set.

The reference is built on brainkit's own leaf modules (convolutions, GroupNorms, Linears, LayerNorms: the same
tensors, so the step updates one set of weights and memory holds one copy of a 400 M-parameter UNet): what differs
is the computation around them, as listed above. ``tests/test_bench_models.py`` checks that it computes brainkit's
output and gradients.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """(batch,) -> (batch, dim): [cos | sin] of t * max_period^(-i / half), i < half (dim even here)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class _Checkpoint(torch.autograd.Function):
    """CompVis's gradient checkpoint: forward without a graph, recomputed in backward, then autograd.grad over the
    inputs and the parameters."""

    @staticmethod
    def forward(ctx, run, n_inputs, *args):
        ctx.run, ctx.inputs, ctx.params = run, list(args[:n_inputs]), list(args[n_inputs:])
        ctx.wanted = [p.requires_grad for p in ctx.params]  # as at the forward (ReleasedLDM resets its flags)
        with torch.no_grad():
            return run(*ctx.inputs)

    @staticmethod
    def backward(ctx, *grads):
        inputs = [x.detach().requires_grad_(True) for x in ctx.inputs]
        params = [p for p, wanted in zip(ctx.params, ctx.wanted) if wanted]
        reset = [p for p in params if not p.requires_grad]
        for p in reset:
            p.requires_grad_(True)
        try:
            with torch.enable_grad():
                outputs = ctx.run(*[x.view_as(x) for x in inputs])
            found = iter(torch.autograd.grad(outputs, inputs + params, grads, allow_unused=True))
        finally:
            for p in reset:
                p.requires_grad_(False)
        input_grads = [next(found) for _ in inputs]
        param_grads = [next(found) if wanted else None for wanted in ctx.wanted]
        del ctx.inputs, ctx.params
        return (None, None, *input_grads, *param_grads)


class CrossAttention(nn.Module):
    """CompVis ``CrossAttention`` over a diffusers ``Attention``'s projections: (b, n, dim), context -> (b, n, dim)."""

    def __init__(self, attention: nn.Module) -> None:
        super().__init__()
        self.heads = attention.heads
        self.scale = (attention.inner_dim // attention.heads) ** -0.5
        self.to_q, self.to_k, self.to_v = attention.to_q, attention.to_k, attention.to_v
        self.to_out = nn.Sequential(attention.to_out[0], attention.to_out[1])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        h = self.heads
        context = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        q, k, v = (
            t.reshape(t.shape[0], t.shape[1], h, -1).permute(0, 2, 1, 3).flatten(0, 1) for t in (q, k, v)
        )
        sim = torch.einsum("b i d, b j d -> b i j", q, k) * self.scale
        attn = sim.softmax(dim=-1)
        out = torch.einsum("b i j, b j d -> b i d", attn, v)
        out = out.reshape(-1, h, out.shape[1], out.shape[2]).permute(0, 2, 1, 3).flatten(2)
        return self.to_out(out)


class GEGLUFeedForward(nn.Module):
    """CompVis ``FeedForward(glu=True)``: proj -> chunk -> x * gelu(gate) -> Dropout -> Linear."""

    def __init__(self, ff: nn.Module) -> None:
        super().__init__()
        self.proj, self.drop, self.out = ff.net[0].proj, ff.net[1], ff.net[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return self.out(self.drop(x * nn.functional.gelu(gate)))


class BasicTransformerBlock(nn.Module):
    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.attn1, self.attn2 = CrossAttention(block.attn1), CrossAttention(block.attn2)
        self.ff = GEGLUFeedForward(block.ff)
        self.norm1, self.norm2, self.norm3 = block.norm1, block.norm2, block.norm3

    def _forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context=context) + x
        return self.ff(self.norm3(x)) + x

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return _Checkpoint.apply(self._forward, 2, x, context, *self.parameters())


class SpatialTransformer(nn.Module):
    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        self.norm, self.proj_in, self.proj_out = transformer.norm, transformer.proj_in, transformer.proj_out
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(b) for b in transformer.transformer_blocks
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x_in = x
        x = self.proj_in(self.norm(x))
        x = x.reshape(b, x.shape[1], h * w).transpose(1, 2)  # b c h w -> b (h w) c
        for block in self.transformer_blocks:
            x = block(x, context=context)
        x = x.transpose(1, 2).reshape(b, -1, h, w)
        return self.proj_out(x) + x_in


class ResBlock(nn.Module):
    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(resnet.norm1, nn.SiLU(), resnet.conv1)
        self.emb_layers = nn.Sequential(nn.SiLU(), resnet.time_emb_proj)
        self.out_layers = nn.Sequential(resnet.norm2, nn.SiLU(), resnet.dropout, resnet.conv2)
        self.skip_connection = resnet.conv_shortcut if resnet.conv_shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).type(h.dtype)[..., None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    def __init__(self, down: nn.Module) -> None:
        super().__init__()
        self.op = down.conv

    def forward(self, x: torch.Tensor, *_) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, up: nn.Module) -> None:
        super().__init__()
        self.conv = up.conv

    def forward(self, x: torch.Tensor, *_) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepEmbedSequential(nn.Sequential):
    """openaimodel's: ResBlocks take the embedding, SpatialTransformers the context, the rest x alone."""

    def forward(self, x, emb, context):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            else:
                x = layer(x)
        return x


def _level(resnets, attentions) -> list[TimestepEmbedSequential]:
    attentions = list(attentions) if attentions is not None else [None] * len(resnets)
    return [
        TimestepEmbedSequential(ResBlock(r), *([SpatialTransformer(a)] if a is not None else []))
        for r, a in zip(resnets, attentions)
    ]


class UNetModel(nn.Module):
    """openaimodel ``UNetModel`` (use_spatial_transformer, legacy, no class embedding) over a diffusers
    ``UNet2DConditionModel``'s leaves: (batch, c, s, s), timesteps (batch,), context (batch, 77, d) -> (batch, c, s, s)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.model_channels = unet.config.block_out_channels[0]
        te = unet.time_embedding
        self.time_embed = nn.Sequential(te.linear_1, nn.SiLU(), te.linear_2)
        blocks = [TimestepEmbedSequential(unet.conv_in)]
        for down in unet.down_blocks:
            blocks += _level(down.resnets, getattr(down, "attentions", None))
            if down.downsamplers is not None:
                blocks.append(TimestepEmbedSequential(Downsample(down.downsamplers[0])))
        self.input_blocks = nn.ModuleList(blocks)
        mid = unet.mid_block
        self.middle_block = TimestepEmbedSequential(
            ResBlock(mid.resnets[0]), SpatialTransformer(mid.attentions[0]), ResBlock(mid.resnets[1])
        )
        blocks = []
        for up in unet.up_blocks:
            level = _level(up.resnets, getattr(up, "attentions", None))
            if up.upsamplers is not None:
                level[-1].append(Upsample(up.upsamplers[0]))
            blocks += level
        self.output_blocks = nn.ModuleList(blocks)
        self.out = nn.Sequential(unet.conv_norm_out, nn.SiLU(), unet.conv_out)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        hs, h = [], x
        for module in self.input_blocks:
            h = module(h, emb, context)
            hs.append(h)
        h = self.middle_block(h, emb, context)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb, context)
        return self.out(h).contiguous()


class ReleasedLDM(nn.Module):
    """``cond_stage_model``'s mapper (channel_mapper, dim_mapper) then the UNet: brainkit's LatentDiffusion inputs
    (fMRI tokens, noised latents, timesteps) -> predicted noise.

    ``every_gradient``: the released phase 3's ``unfreeze_whole_model``: the forward runs with every UNet
    parameter requiring a gradient, so the backward computes them all, though AdamW (built on the trained
    parameters only, as ``train_cond_stage_only`` builds it) steps the cross-attention set alone. Their flags are
    put back when the backward pass ends (ours' step shares the modules; a callback the autograd engine runs
    after the pass) and the unused gradients dropped before the next step (the released code leaves them to
    accumulate: one more addition per step, not counted here)."""

    def __init__(self, model: nn.Module, every_gradient: bool = False) -> None:
        super().__init__()
        self.channel_mapper, self.dim_mapper = model.mapper.channel_mapper, model.mapper.dim_mapper
        self.diffusion_model = UNetModel(model.unet)
        self.frozen = [p for p in model.unet.parameters() if not p.requires_grad] if every_gradient else []

    def _freeze(self) -> None:
        for p in self.frozen:
            p.requires_grad_(False)

    def forward(self, tokens: torch.Tensor, latents: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        for p in self.frozen:
            p.grad = None
            p.requires_grad_(True)
        try:
            context = self.dim_mapper(self.channel_mapper(tokens))
            out = self.diffusion_model(latents, timesteps, context=context)
        except BaseException:
            self._freeze()
            raise
        if self.frozen:  # when the backward pass that this output starts has finished
            engine = torch.autograd.Variable._execution_engine
            out.register_hook(lambda grad: engine.queue_callback(self._freeze) or grad)
        return out


def ldm_reference(model, config) -> tuple[nn.Module, object, int, str]:
    """(reference, forward taking brainkit's inputs, reference params - ours, what the reference is). The
    reference's trained parameters are ours' (the VAE: frozen in both, not in the step)."""
    released = config.unet_trained == "cross_attention"
    reference = ReleasedLDM(model, every_gradient=released)
    note = "Vis-Dec_UNetModel+SpatialTransformer_checkpointed_einsum_attention(-time_embed_condtion)"
    return reference, reference, 0, note + ("+every_UNet_gradient(train_cond_stage_only)" if released else "")
