"""Released-style reference of CLIP-MUSED's HCP model, for bench/bench_models.py's ``ratio_vs_released``.

Written here after what CLIP-MUSED/CLIP-MUSED ``models.py`` (``ResNet_MS`` / ``BrainFormer_MS(18)``) and
``AttentionBlock.py`` compute and how they lay it out (not copied), with the sizes taken from brainkit's config
(the released class hard-codes the paper's; here they are arguments, nothing else changes):

- stem: ``conv1`` / ``bn1`` / ReLU(inplace), ``conv2`` / ``bn2`` / ReLU, bias-free 3-D convolutions;
- ResNet ``_make_layer`` of ``BasicBlock`` (conv3x3 - BN - ReLU - conv3x3 - BN, ``downsample`` = conv1x1 + BN
  when the shape changes, ``out += identity``, in-place ReLU);
- ``ShallowAttention`` after layer 2: ``x.view(n, c, -1)``; ``x + BN1d(Conv1d MLP c -> c/2 -> c)``, then
  ``x + BN1d(Linear MLP over positions)``; ``view`` back;
- ``DeepAttention_token`` after layers 3 and 4: ``view`` + ``permute`` to tokens, ``cat(hlv, llv, x)``, vit-pytorch
  style ``Attention`` (bias-free ``to_qkv``, ``chunk`` + ``rearrange``, explicit softmax), permute, BatchNorm1d,
  permute, FeedForward (Linear, GELU, Dropout, Linear), permute, BatchNorm1d; no residual inside; the caller adds
  the brain tokens' output to its input and takes the subject tokens' output as the new tokens;
- ``fc1`` on ``cat(hlv, llv)``; the forward returns ``(pred_logit, fea, hlv_token, llv_token)``.

Parameter count: equal to brainkit's model when it is built with ``released=True`` (the ``hcp`` preset). The
``cpu_small`` and ``testing`` presets are our residual variant (``released=False``): there brainkit's model has
qkv biases (3 x heads x head_dim per block) and a BatchNorm3d + position MLP as shallow attention, the released
blocks have no qkv bias and a channel MLP and two BatchNorm1d; :func:`clip_mused_reference` states the exact
difference, which the bench checks.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv3d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ShallowAttention(nn.Module):
    def __init__(self, dim1, dim2, hidden2) -> None:
        super().__init__()
        self.mlp1 = nn.Sequential(nn.Conv1d(dim1, dim1 // 2, 1), nn.GELU(), nn.Conv1d(dim1 // 2, dim1, 1))
        self.norm1 = nn.BatchNorm1d(dim1)
        self.mlp2 = nn.Sequential(nn.Linear(dim2, hidden2), nn.GELU(), nn.Linear(hidden2, dim2))
        self.norm2 = nn.BatchNorm1d(dim1)

    def forward(self, x):
        n, c, h, w, d = x.size()
        x = x.view(n, c, -1)
        x = x + self.norm1(self.mlp1(x))
        x = x + self.norm2(self.mlp2(x))
        return x.view(n, c, h, w, d)


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head, dropout) -> None:
        super().__init__()
        inner_dim = dim_head * heads
        self.heads, self.scale = heads, dim_head**-0.5
        self.attend = nn.Softmax(dim=-1)
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        qkv = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in qkv)
        attn = self.attend(torch.matmul(q, k.transpose(-1, -2)) * self.scale)
        return self.to_out(rearrange(torch.matmul(attn, v), "b h n d -> b n (h d)"))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim, dropout) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, dim)
        )

    def forward(self, x):
        return self.net(x)


class DeepAttentionToken(nn.Module):
    def __init__(self, dim, heads, dim_head, mlp_dim, dropout) -> None:
        super().__init__()
        self.attention = Attention(dim, heads, dim_head, dropout)
        self.norm1 = nn.BatchNorm1d(dim)
        self.FeedForward = FeedForward(dim, mlp_dim, dropout)
        self.norm2 = nn.BatchNorm1d(dim)

    def forward(self, x, hlv_token, llv_token):
        n, c, h, w, d = x.size()
        x = x.view(n, c, -1).permute(0, 2, 1)
        x = torch.cat((hlv_token, llv_token, x), dim=1)
        x = self.attention(x).permute(0, 2, 1)
        x = self.norm1(x).permute(0, 2, 1)
        x = self.FeedForward(x).permute(0, 2, 1)
        x = self.norm2(x)
        hlv_token, llv_token = x[:, :, 0:1].permute(0, 2, 1), x[:, :, 1:2].permute(0, 2, 1)
        return x[:, :, 2:].reshape(n, c, h, w, d), hlv_token, llv_token


class ResNetMS(nn.Module):
    """forward(x, sub_id): (batch, 1, X, Y, Z), (batch,) -> (pred_logit, fea, hlv_token, llv_token)."""

    def __init__(self, config, n_positions: int) -> None:
        super().__init__()
        c = config
        c1, c2 = c.stem_channels
        k = c.stem_kernel
        self.conv1 = nn.Conv3d(1, c1, kernel_size=k, stride=c.stem_strides[0], padding=k // 2, bias=False)
        self.bn1 = nn.BatchNorm3d(c1)
        self.conv2 = nn.Conv3d(c1, c2, kernel_size=k, stride=c.stem_strides[1], padding=k // 2, bias=False)
        self.bn2 = nn.BatchNorm3d(c2)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = c2
        widths, strides = c.layer_channels, c.layer_strides
        self.layer1 = self._make_layer(widths[0], c.blocks_per_layer, strides[0])
        self.layer2 = self._make_layer(widths[1], c.blocks_per_layer, strides[1])
        self.layer3 = self._make_layer(widths[2], c.blocks_per_layer, strides[2])
        self.layer4 = self._make_layer(widths[3], c.blocks_per_layer, strides[3])
        self.hlv_token = nn.Parameter(torch.zeros(c.n_subjects, 1, c.dim))
        self.llv_token = nn.Parameter(torch.zeros(c.n_subjects, 1, c.dim))
        self.fc1 = nn.Linear(2 * c.dim, c.n_classes)
        hidden = n_positions // 2 if c.shallow_hidden is None else c.shallow_hidden
        self.attention2 = ShallowAttention(widths[1], n_positions, hidden)
        self.attention3 = DeepAttentionToken(c.dim, c.n_heads, c.head_dim, c.ff_hidden[0], c.dropout)
        self.attention4 = DeepAttentionToken(c.dim, c.n_heads, c.head_dim, c.ff_hidden[1], c.dropout)
        torch.nn.init.normal_(self.hlv_token, std=0.02)
        torch.nn.init.normal_(self.llv_token, std=0.02)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm3d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x, sub_id):
        hlv_token, llv_token = self.hlv_token[sub_id], self.llv_token[sub_id]
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.attention2(x)
        x = self.layer3(x)
        x_attn, hlv_token, llv_token = self.attention3(x, hlv_token, llv_token)
        x = x + x_attn
        x = self.layer4(x)
        x_attn, hlv_token, llv_token = self.attention4(x, hlv_token, llv_token)
        x = x + x_attn
        hlv_token, llv_token = torch.squeeze(hlv_token, 1), torch.squeeze(llv_token, 1)
        pred_logit = self.fc1(torch.cat((hlv_token, llv_token), 1))
        return pred_logit, x, hlv_token, llv_token


def clip_mused_reference(model, config) -> tuple[nn.Module, object, int, str] | str:
    """(reference, forward taking brainkit's inputs, reference params - ours, what the reference is), or why
    there is none (the nsd variant: no released code)."""
    from brainkit.models.clip_mused import feature_shapes

    c = config
    if c.variant != "hcp" or c.readout != "tokens" or not c.subject_tokens:
        return "no_released_code_for_this_variant(released:hcp_with_subject_tokens)"
    n_positions = math.prod(feature_shapes(c)[2])
    reference = ResNetMS(c, n_positions)

    def forward(x, subject):
        logits, _, high, low = reference(x.unsqueeze(1), subject)
        return {"logits": logits, "high": high, "low": low}

    difference, note = 0, "CLIP-MUSED_ResNet_MS+AttentionBlock"
    if not c.released:  # ours: residual variant (see the module docstring)
        w = c.layer_channels[1]
        shallow = 2 * w * (w // 2) + w // 2 + w + 2 * w + 2 * w - 2 * w  # channel MLP, 2 BN1d; ours' BN3d
        qkv_bias = 3 * c.n_heads * c.head_dim * len(c.ff_hidden)
        difference = shallow - qkv_bias
        note += "_vs_ours_released=False(+channel_MLP+BN1d_in_shallow,-qkv_bias)"
    return reference, forward, difference, note
