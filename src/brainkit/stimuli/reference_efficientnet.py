"""EfficientNet-B1 with torchvision's names (``torchvision.models.efficientnet_b1``): 7,794,184 parameters.

Loads ``efficientnet_b1-c27df63c.pth`` (``EfficientNet_B1_Weights.IMAGENET1K_V2``, torchvision's DEFAULT, which
MindEye's evaluation uses) or ``efficientnet_b1_rwightman-bac287d4.pth`` (IMAGENET1K_V1): both have this layout.

Layout (torchvision's): ``features.0`` the stem (3 x 3 conv, stride 2, 32 channels), ``features.1`` ..
``features.7`` the seven MBConv stages of EfficientNet's Table 1 with B1's depth multiplier 1.1 (layers
ceil(1.1 n): 2, 3, 3, 4, 4, 5, 2) and width multiplier 1.0, ``features.8`` the 1 x 1 head conv to 1280 channels,
``avgpool``, ``classifier`` (dropout 0.2, linear). Every conv + BatchNorm (+ SiLU) is torchvision's
``Conv2dNormActivation``, a Sequential of ``0`` conv (no bias), ``1`` BatchNorm (eps 1e-5), ``2`` activation.
An MBConv block is ``block``: [expand 1 x 1 when the ratio is not 1], depthwise k x k, squeeze-and-excitation
(``fc1``, ``fc2``: 1 x 1 convs with bias, to max(1, in / 4) channels), project 1 x 1 (no activation); the input is
added when stride is 1 and the channels agree. Stochastic depth is the identity in eval mode and has no tensors,
so it is not written.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# (expand_ratio, kernel, stride, in_channels, out_channels, n_layers) of EfficientNet-B0 (the paper's Table 1)
B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))  # fmt: skip
B1_DEPTH = 1.1  # torchvision efficientnet_b1: width_mult 1.0, depth_mult 1.1, dropout 0.2


def conv_norm(in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1, groups: int = 1,
              activation: bool = True) -> nn.Sequential:  # fmt: skip
    """torchvision's Conv2dNormActivation: conv (padding (k - 1) / 2, no bias), BatchNorm, SiLU."""
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    return nn.Sequential(*layers, *([nn.SiLU(inplace=True)] if activation else []))


class SqueezeExcitation(nn.Module):
    """x * sigmoid(fc2(silu(fc1(mean over space of x))))."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(scale)


class MBConv(nn.Module):
    def __init__(
        self, expand_ratio: int, kernel: int, stride: int, in_channels: int, out_channels: int
    ) -> None:
        super().__init__()
        expanded = in_channels * expand_ratio
        layers = [conv_norm(in_channels, expanded)] if expanded != in_channels else []
        layers += [
            conv_norm(expanded, expanded, kernel, stride, groups=expanded),
            SqueezeExcitation(expanded, max(1, in_channels // 4)),
            conv_norm(expanded, out_channels, activation=False),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.use_residual else y


class EfficientNetB1(nn.Module):
    """torchvision's EfficientNet-B1; ``stages()`` is its eval-mode forward, one ``features.<i>`` at a time."""

    def __init__(self, n_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_norm(3, B0_STAGES[0][3], kernel=3, stride=2)]
        for expand_ratio, kernel, stride, in_channels, out_channels, n_layers in B0_STAGES:
            blocks = []
            for index in range(int(math.ceil(n_layers * B1_DEPTH))):
                first = index == 0
                blocks.append(
                    MBConv(expand_ratio, kernel, stride if first else 1, in_channels if first else out_channels,
                           out_channels)
                )  # fmt: skip
            layers.append(nn.Sequential(*blocks))
        last = 4 * B0_STAGES[-1][4]  # 1280
        layers.append(conv_norm(B0_STAGES[-1][4], last))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(last, n_classes))

    def stages(self) -> list[tuple[str, Callable]]:
        named = [(f"features.{i}", layer) for i, layer in enumerate(self.features)]
        return [*named, ("avgpool", self.avgpool), ("logits", lambda x: self.classifier(x.flatten(1)))]
