"""Inception v3 with torchvision's names (``torchvision.models.Inception3``, aux head included): 27,161,264 parameters.

Loads ``inception_v3_google-0cc3c7bd.pth`` (``Inception_V3_Weights.IMAGENET1K_V1``) strictly. Only the eval-mode
forward is written (the aux head's output is computed in training only, so it is not computed here; its
parameters exist so that the released file loads). ``transform_input=True`` is what torchvision sets when it
builds the network with these weights: the input, normalised with the ImageNet mean and sd, is mapped to
(x - 0.5) / 0.5 per channel before the first convolution, the normalisation the weights were trained with.

Every mixed block is described as its convolutions (name, in, out, kernel, stride, padding) and its branches in
torchvision's concatenation order; a branch is an optional pooling, a chain of convolutions and, for the E
blocks, a final pair applied side by side and concatenated.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation (every reference network)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 0.001) -> ReLU, as ``conv`` and ``bn``."""

    def __init__(self, in_channels: int, out_channels: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Mixed(nn.Module):
    """An Inception block: named convolutions and the branches that use them, concatenated over channels.

    ``branches``: (pool, chain, pair) each; pool is None, "avg" (3 x 3, stride 1, pad 1) or "max" (3 x 3,
    stride 2); chain the conv names applied in turn; pair two conv names applied side by side at the end.
    """

    def __init__(self, convs: list[tuple], branches: list[tuple]) -> None:
        super().__init__()
        for name, *sizes in convs:
            self.add_module(name, BasicConv2d(*sizes))
        self.branches = branches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for pool, chain, pair in self.branches:
            y = x
            if pool == "avg":
                y = F.avg_pool2d(y, kernel_size=3, stride=1, padding=1)
            elif pool == "max":
                y = F.max_pool2d(y, kernel_size=3, stride=2)
            for name in chain:
                y = getattr(self, name)(y)
            if pair:
                y = torch.cat([getattr(self, name)(y) for name in pair], 1)
            outputs.append(y)
        return torch.cat(outputs, 1)


def inception_a(c: int, pool_features: int) -> Mixed:
    convs = [("branch1x1", c, 64, 1), ("branch5x5_1", c, 48, 1), ("branch5x5_2", 48, 64, 5, 1, 2),
             ("branch3x3dbl_1", c, 64, 1), ("branch3x3dbl_2", 64, 96, 3, 1, 1), ("branch3x3dbl_3", 96, 96, 3, 1, 1),
             ("branch_pool", c, pool_features, 1)]  # fmt: skip
    return Mixed(convs, [(None, ["branch1x1"], ()), (None, ["branch5x5_1", "branch5x5_2"], ()),
                         (None, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], ()),
                         ("avg", ["branch_pool"], ())])  # fmt: skip


def inception_b(c: int) -> Mixed:
    convs = [("branch3x3", c, 384, 3, 2), ("branch3x3dbl_1", c, 64, 1), ("branch3x3dbl_2", 64, 96, 3, 1, 1),
             ("branch3x3dbl_3", 96, 96, 3, 2)]  # fmt: skip
    return Mixed(convs, [(None, ["branch3x3"], ()),
                         (None, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], ()), ("max", [], ())])  # fmt: skip


def inception_c(c: int, c7: int) -> Mixed:
    row, col = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))  # (kernel, stride, padding) of the factorised 7 x 7
    convs = [("branch1x1", c, 192, 1), ("branch7x7_1", c, c7, 1), ("branch7x7_2", c7, c7, *row),
             ("branch7x7_3", c7, 192, *col), ("branch7x7dbl_1", c, c7, 1), ("branch7x7dbl_2", c7, c7, *col),
             ("branch7x7dbl_3", c7, c7, *row), ("branch7x7dbl_4", c7, c7, *col), ("branch7x7dbl_5", c7, 192, *row),
             ("branch_pool", c, 192, 1)]  # fmt: skip
    return Mixed(convs, [(None, ["branch1x1"], ()), (None, [f"branch7x7_{i}" for i in (1, 2, 3)], ()),
                         (None, [f"branch7x7dbl_{i}" for i in (1, 2, 3, 4, 5)], ()), ("avg", ["branch_pool"], ())])  # fmt: skip


def inception_d(c: int) -> Mixed:
    convs = [("branch3x3_1", c, 192, 1), ("branch3x3_2", 192, 320, 3, 2), ("branch7x7x3_1", c, 192, 1),
             ("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)), ("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)),
             ("branch7x7x3_4", 192, 192, 3, 2)]  # fmt: skip
    return Mixed(convs, [(None, ["branch3x3_1", "branch3x3_2"], ()),
                         (None, [f"branch7x7x3_{i}" for i in (1, 2, 3, 4)], ()), ("max", [], ())])  # fmt: skip


def inception_e(c: int) -> Mixed:
    row, col = ((1, 3), 1, (0, 1)), ((3, 1), 1, (1, 0))
    convs = [("branch1x1", c, 320, 1), ("branch3x3_1", c, 384, 1), ("branch3x3_2a", 384, 384, *row),
             ("branch3x3_2b", 384, 384, *col), ("branch3x3dbl_1", c, 448, 1), ("branch3x3dbl_2", 448, 384, 3, 1, 1),
             ("branch3x3dbl_3a", 384, 384, *row), ("branch3x3dbl_3b", 384, 384, *col), ("branch_pool", c, 192, 1)]  # fmt: skip
    return Mixed(convs, [(None, ["branch1x1"], ()), (None, ["branch3x3_1"], ("branch3x3_2a", "branch3x3_2b")),
                         (None, ["branch3x3dbl_1", "branch3x3dbl_2"], ("branch3x3dbl_3a", "branch3x3dbl_3b")),
                         ("avg", ["branch_pool"], ())])  # fmt: skip


class InceptionAux(nn.Module):
    """The auxiliary classifier on Mixed_6e (training only): ``conv0``, ``conv1``, ``fc``."""

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, 128, 1)
        self.conv1 = BasicConv2d(128, 768, 5)
        self.fc = nn.Linear(768, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(F.adaptive_avg_pool2d(x, (1, 1)).flatten(1))


class InceptionV3(nn.Module):
    """torchvision's ``Inception3(aux_logits=True)``; ``stages()`` is its eval-mode forward, stage by stage."""

    def __init__(self, n_classes: int = 1000, transform_input: bool = True, dropout: float = 0.5) -> None:
        super().__init__()
        self.transform_input = transform_input
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = inception_a(192, pool_features=32)
        self.Mixed_5c = inception_a(256, pool_features=64)
        self.Mixed_5d = inception_a(288, pool_features=64)
        self.Mixed_6a = inception_b(288)
        self.Mixed_6b = inception_c(768, c7=128)
        self.Mixed_6c = inception_c(768, c7=160)
        self.Mixed_6d = inception_c(768, c7=160)
        self.Mixed_6e = inception_c(768, c7=192)
        self.AuxLogits = InceptionAux(768, n_classes)
        self.Mixed_7a = inception_d(768)
        self.Mixed_7b = inception_e(1280)
        self.Mixed_7c = inception_e(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, n_classes)

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised input -> (x - 0.5) / 0.5 per channel (torchvision's arithmetic, channel by channel)."""
        if not self.transform_input:
            return x
        channels = [
            x[:, c : c + 1] * (IMAGENET_STD[c] / 0.5) + (IMAGENET_MEAN[c] - 0.5) / 0.5 for c in range(3)
        ]
        return torch.cat(channels, 1)

    def stages(self) -> list[tuple[str, Callable]]:
        names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                 "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                 "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool"]  # fmt: skip
        return [
            ("transform_input", self._transform_input),
            *[(name, getattr(self, name)) for name in names],
            ("logits", lambda x: self.fc(self.dropout(x).flatten(1))),
        ]
