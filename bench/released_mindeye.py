"""Released-style reference of the MindEye MLP backbone, for bench/bench_models.py's ``ratio_vs_released``.

Written here after what MindEye v1 (MedARC-AI/fMRI-reconstruction-NSD, ``models.py`` ``BrainNetwork``) computes and
how it lays it out (not copied): ``lin0 = Sequential(Linear(in, h), LayerNorm(h), GELU(), Dropout(0.5))``, a
``ModuleList`` of ``Sequential(Linear(h, h), LayerNorm(h), GELU(), Dropout(0.15))`` run in a Python loop with
``x = mlp[i](x); x += residual; residual = x``, then ``x.reshape(len(x), -1)`` and ``lin1 = Linear(h, out)``.
brainkit's ``mindeye_mlp`` is that backbone without MindEye's CLIP projector (``clip_proj``) and diffusion prior,
so the reference stops at ``lin1`` as ours does.

``shared_subject_reference``: MindEye2's shared-subject front (MedARC-AI/MindEyeV2, ``Train.py``
``RidgeRegression``: a ``ModuleList`` of ``Linear(n_voxels[s], hidden)``, its forward
``cat([linears[subj_idx](x[:, seq]).unsqueeze(1) for seq in range(seq_len)], dim=1)`` on (batch, seq_len=1,
voxels)), then the BrainNetwork above on its (batch, 1, hidden) output (its LayerNorms and Linears act on the last
axis and ``reshape(len(x), -1)`` drops the sequence axis): brainkit's ``shared_subject`` with the ``mindeye_mlp``
backbone. MindEye2's own backbone (an MLP-Mixer to 256 x 1664 CLIP tokens) is not in brainkit.

The references **share ours' parameter tensors** (the same ``nn.Parameter`` objects): at the paper preset the
model has 940 M parameters, and ours + a copy + two AdamW states (~30 GB) do not fit a 23 GB machine. The bench
then steps both with ours' optimiser; the work per step is the same as with a copy.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BrainNetwork(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, h: int, n_blocks: int, drop_in: float, drop: float) -> None:
        super().__init__()
        self.lin0 = nn.Sequential(nn.Linear(in_dim, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(drop_in))
        self.mlp = nn.ModuleList(
            nn.Sequential(nn.Linear(h, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(drop))
            for _ in range(n_blocks)
        )
        self.lin1 = nn.Linear(h, out_dim, bias=True)
        self.n_blocks = n_blocks

    def forward(self, x):
        x = self.lin0(x)
        residual = x
        for res_block in range(self.n_blocks):
            x = self.mlp[res_block](x)
            x += residual
            residual = x
        x = x.reshape(len(x), -1)
        return self.lin1(x)


def _tie(reference: nn.Module, model: nn.Module) -> None:
    """Make the reference's parameters ours' (same objects), module by module."""
    pairs = [
        (reference.lin0[0], model.stem[0]),
        (reference.lin0[1], model.stem[1]),
        (reference.lin1, model.head),
    ]
    pairs += [(r[0], b.linear) for r, b in zip(reference.mlp, model.blocks)]
    pairs += [(r[1], b.norm) for r, b in zip(reference.mlp, model.blocks)]
    for theirs, ours in pairs:
        theirs.weight, theirs.bias = ours.weight, ours.bias


def mindeye_reference(model, config) -> tuple[nn.Module, object, int, str]:
    """(reference, forward taking brainkit's inputs, reference params - ours, what the reference is)."""
    c = config
    out_dim = math.prod(c.output_shape)
    with torch.device("meta"):  # no storage: the parameters are ours'
        reference = BrainNetwork(c.n_voxels, out_dim, c.hidden_dim, c.n_blocks, c.input_dropout, c.dropout)
    _tie(reference, model)
    shape = tuple(c.output_shape)

    def forward(x):
        return reference(x).reshape(len(x), *shape)

    return reference, forward, 0, "MindEyeV1_BrainNetwork_backbone(shared_parameters)"


class RidgeRegression(nn.Module):
    """MindEye2's per-subject linear front, laid out as released (see the module docstring)."""

    def __init__(self, input_sizes: list[int], out_features: int, seq_len: int = 1) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(n, out_features) for n in input_sizes)
        self.seq_len = seq_len

    def forward(self, x, subj_idx: int):
        return torch.cat(
            [self.linears[subj_idx](x[:, seq]).unsqueeze(1) for seq in range(self.seq_len)], dim=1
        )


def shared_subject_reference(model, config) -> tuple[nn.Module, object, int, str] | str:
    """MindEye2's RidgeRegression + MindEye v1's BrainNetwork on ours' tensors, or why there is none (another
    backbone than mindeye_mlp)."""
    if config.backbone != "mindeye_mlp":
        return f"released_with_the_mindeye_mlp_backbone_only_(this_one:_{config.backbone})"
    with torch.device("meta"):
        ridge = RidgeRegression(list(config.n_voxels.values()), config.d_shared)
    for linear, subject in zip(ridge.linears, config.n_voxels):
        linear.weight, linear.bias = model.adapters[subject].weight, model.adapters[subject].bias
    backbone, backbone_forward, _, _ = mindeye_reference(model.backbone, model.backbone.config)
    reference = nn.ModuleDict({"ridge": ridge, "backbone": backbone})

    def forward(x, subject):
        index = int(subject.flatten()[0]) if torch.is_tensor(subject) else int(subject)
        return backbone_forward(ridge(x.unsqueeze(1), index))

    return reference, forward, 0, "MindEyeV2_RidgeRegression+MindEyeV1_BrainNetwork(shared_parameters)"
