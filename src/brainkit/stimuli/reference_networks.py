"""The literature's evaluation networks, with torchvision's parameter names, loading torchvision's released files.

The NSD reconstruction papers (MindEye, MindEye2, Brain-Diffuser and those that copy their tables) score
reconstructions in the feature spaces of four torchvision networks. torchvision itself cannot be installed
beside brainkit's CPU torch, so the networks are written here as plain torch modules whose parameter and buffer
names, shapes and eval-mode forward computation are torchvision's: torchvision's own released state dicts load
into them unchanged (strictly: a missing, unexpected or misshapen tensor is an error).

===================  =====================================  =============================  ===================
network              file a user downloads (torchvision's)  taps (torchvision node names)  input (MindEye)
===================  =====================================  =============================  ===================
``alexnet``          ``alexnet-owt-7be5be79.pth``           ``features.4``, ``features.11``  256 x 256
``inception_v3``     ``inception_v3_google-0cc3c7bd.pth``   ``avgpool`` (2048)             342 x 342
``efficientnet_b1``  ``efficientnet_b1-c27df63c.pth``       ``avgpool`` (1280)             255 x 255
``swav_resnet50``    ``swav_800ep_pretrain.pth.tar``        ``avgpool`` (2048)             224 x 224
===================  =====================================  =============================  ===================

Preprocessing (:func:`mindeye_pixels`) is MindEye2's ``final_evaluations.ipynb``: images as floats in [0, 1],
resized to 256 x 256, then to the network's size (bilinear, ``align_corners=False``, no antialiasing: what
``transforms.Resize`` does to tensors under torchvision 0.15 / 0.16, the versions MindEye pins), then
normalised with the ImageNet mean and sd. No centre crop. Inception v3 additionally maps its input back to
(x - 0.5) / 0.5 inside its forward (torchvision's ``transform_input=True``, which ``inception_v3(weights=...)``
sets). Details and sources: docs/reconstruction_metrics.md, "The literature's columns".

Nothing downloads: weights are read from the file the user names, with ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from brainkit.checkpoint import check_tensors, read_torch_weights
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.stimuli.reference_inception import IMAGENET_MEAN, IMAGENET_STD

MINDEYE_SIZE = 256  # px: MindEye2 final_evaluations.ipynb resizes every image to 256 x 256 first


def mindeye_pixels(
    images: np.ndarray, size: int, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float32 (n, 3, size, size): [0, 1], to 256 px, to ``size`` px, normalised."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise DataError(
            f"Reference networks take uint8 images (n, H, W, 3); found {images.dtype} {images.shape}."
        )
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    for side in (MINDEYE_SIZE, size):
        if x.shape[-2:] != (side, side):
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=False)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def run_stages(stages: Iterable[tuple[str, Callable]], x: torch.Tensor, taps: Sequence[str]) -> dict:
    """Apply named stages in order, keeping the outputs named in ``taps``; stop after the last one asked for."""
    wanted, out = set(taps), {}
    for name, stage in stages:
        x = stage(x)
        if name in wanted:
            out[name] = x
            if len(out) == len(wanted):
                return out
    missing = sorted(wanted - set(out))
    raise ConfigError(f"Unknown tap(s) {missing}; this network's taps are its stage names.")


# ---------------------------------------------------------------------------------------------------------------
# AlexNet (torchvision.models.alexnet; the "one weird trick" variant): 61,100,840 parameters


class AlexNet(nn.Module):
    """torchvision's AlexNet: ``features`` (13 modules), ``avgpool`` (6 x 6), ``classifier`` (7 modules)."""

    def __init__(self, n_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        pool = lambda: nn.MaxPool2d(kernel_size=3, stride=2)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), relu(), pool(),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), relu(), pool(),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), relu(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), relu(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), relu(), pool(),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), relu(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), relu(), nn.Linear(4096, n_classes),
        )  # fmt: skip

    def stages(self) -> list[tuple[str, Callable]]:
        named = [(f"features.{i}", layer) for i, layer in enumerate(self.features)]
        return [*named, ("avgpool", self.avgpool), ("logits", lambda x: self.classifier(x.flatten(1)))]


# ---------------------------------------------------------------------------------------------------------------
# ResNet-50 (torchvision.models.resnet50, "V1.5": stride in the 3 x 3 conv): 25,557,032 parameters


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + shortcut)


class ResNet50(nn.Module):
    """torchvision's ResNet-50: ``conv1``, ``bn1``, ``layer1``..``layer4`` of (3, 4, 6, 3) bottlenecks, ``fc``."""

    def __init__(self, n_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = 64
        for index, (width, n_blocks, stride) in enumerate(
            ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
        ):
            blocks = []
            for block in range(n_blocks):
                blocks.append(Bottleneck(in_channels, width, stride if block == 0 else 1))
                in_channels = width * Bottleneck.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, n_classes)

    def stages(self) -> list[tuple[str, Callable]]:
        stem = lambda x: self.maxpool(self.relu(self.bn1(self.conv1(x))))  # noqa: E731
        layers = [(f"layer{i}", getattr(self, f"layer{i}")) for i in range(1, 5)]
        return [
            ("stem", stem),
            *layers,
            ("avgpool", self.avgpool),
            ("logits", lambda x: self.fc(x.flatten(1))),
        ]


# ---------------------------------------------------------------------------------------------------------------
# The table: which file, which preprocessing, what to leave out of a checkpoint


@dataclass(frozen=True)
class NetworkSpec:
    """One evaluation network: how to build it, the file it loads, its input size and the taps MindEye reads."""

    build: Callable[[], nn.Module]
    file_name: str  # the released file's name (what torchvision / torch.hub cache it as)
    url: str  # where its authors publish it (a user downloads it once, by hand)
    input_size: int
    taps: tuple[str, ...]
    ignore_prefixes: tuple[str, ...] = ()  # checkpoint entries that are not this network's (SwAV's heads)
    optional_prefixes: tuple[str, ...] = ()  # network tensors a checkpoint may lack (SwAV has no ``fc``)


def _inception():
    from brainkit.stimuli.reference_inception import InceptionV3

    return InceptionV3(transform_input=True)  # what torchvision's inception_v3(weights=...) builds


def _efficientnet():
    from brainkit.stimuli.reference_efficientnet import EfficientNetB1

    return EfficientNetB1()


DOWNLOADS = "https://download.pytorch.org/models/"
NETWORKS: dict[str, NetworkSpec] = {
    # AlexNet_Weights.IMAGENET1K_V1 (MindEye2 final_evaluations.ipynb: alexnet(weights=...IMAGENET1K_V1))
    "alexnet": NetworkSpec(AlexNet, "alexnet-owt-7be5be79.pth", DOWNLOADS + "alexnet-owt-7be5be79.pth", 256,
                           ("features.4", "features.11")),
    # Inception_V3_Weights.DEFAULT = IMAGENET1K_V1
    "inception_v3": NetworkSpec(_inception, "inception_v3_google-0cc3c7bd.pth",
                                DOWNLOADS + "inception_v3_google-0cc3c7bd.pth", 342, ("avgpool",)),
    # EfficientNet_B1_Weights.DEFAULT = IMAGENET1K_V2 (the weights whose transforms resize to 255, as MindEye does)
    "efficientnet_b1": NetworkSpec(_efficientnet, "efficientnet_b1-c27df63c.pth",
                                   DOWNLOADS + "efficientnet_b1-c27df63c.pth", 255, ("avgpool",)),
    # torch.hub facebookresearch/swav:main resnet50: SwAV weights in torchvision's resnet50, fc left random
    "swav_resnet50": NetworkSpec(ResNet50, "swav_800ep_pretrain.pth.tar",
                                 "https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar", 224,
                                 ("avgpool",), ignore_prefixes=("projection_head.", "prototypes."),
                                 optional_prefixes=("fc.",)),
}  # fmt: skip


def load_network_weights(name: str, model: nn.Module, path: str | Path) -> nn.Module:
    """Load the released file ``path`` into ``model`` (network ``name`` of :data:`NETWORKS`), strictly.

    Every tensor of the model must be in the file with its shape and dtype (BatchNorm's ``num_batches_tracked``
    and the spec's ``optional_prefixes`` may be absent), and every tensor of the file must be the model's (the
    spec's ``ignore_prefixes`` are dropped first). Otherwise :class:`CheckpointError` lists what differs.
    """
    spec = _spec(name)
    tensors = {
        k: v for k, v in read_torch_weights(path).items() if not k.startswith(spec.ignore_prefixes or ("\0",))
    }
    expected = model.state_dict()

    def optional(key: str) -> bool:
        return key.endswith("num_batches_tracked") or bool(
            spec.optional_prefixes and key.startswith(spec.optional_prefixes)
        )

    missing = sorted(k for k in expected if k not in tensors and not optional(k))
    unexpected = sorted(k for k in tensors if k not in expected)
    misshapen = [
        f"{k} (file {tuple(v.shape)}, network {tuple(expected[k].shape)})"
        for k, v in tensors.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or misshapen:
        problems = [
            f"{label}: {', '.join(keys[:8])}{f' and {len(keys) - 8} more' if len(keys) > 8 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen))
            if keys
        ]
        raise CheckpointError(
            f"{path} does not fit torchvision's {name} ({'; '.join(problems)}). Expected the released file "
            f"{spec.file_name} ({spec.url}); a state dict of another network or a fine-tuned variant does not load."
        )
    check_tensors(tensors, expected, path)
    model.load_state_dict(tensors, strict=False)
    return model


def _spec(name: str) -> NetworkSpec:
    if name not in NETWORKS:
        raise ConfigError(f"Unknown reference network {name!r}; choose from {sorted(NETWORKS)}.")
    return NETWORKS[name]


def resolve_weights(reference_weights: str | Path | Mapping[str, str | Path]) -> dict[str, Path]:
    """A folder with the released file names (any subset) or ``{network: file}`` -> ``{network: existing file}``."""
    if isinstance(reference_weights, Mapping):
        unknown = sorted(set(reference_weights) - set(NETWORKS))
        if unknown:
            raise ConfigError(
                f"reference_weights: unknown network(s) {unknown}; choose from {sorted(NETWORKS)}."
            )
        found = {name: Path(path) for name, path in reference_weights.items()}
        absent = [str(path) for path in found.values() if not path.is_file()]
        if absent:
            raise ConfigError(f"reference_weights: no such file(s) {absent}.")
        return found
    folder = Path(reference_weights)
    if not folder.is_dir():
        raise ConfigError(f"reference_weights: {folder} is not a folder (or pass {{network: file}}).")
    found = {
        name: folder / spec.file_name
        for name, spec in NETWORKS.items()
        if (folder / spec.file_name).is_file()
    }
    if not found:
        listing = ", ".join(f"{spec.file_name} ({spec.url})" for spec in NETWORKS.values())
        raise ConfigError(
            f"reference_weights: {folder} holds none of the reference networks' files. Expected any of: {listing}. "
            "torchvision's cache folder (~/.cache/torch/hub/checkpoints) holds them under these names."
        )
    return found


class ReferenceNetwork:
    """One network of :data:`NETWORKS` with its released weights, giving flattened tap outputs for uint8 images.

    Parameters
    ----------
    name : str
        A key of :data:`NETWORKS`.
    weights_path : str or Path
        The released file (see the module table).
    device : str
        Where the network runs.
    batch_size : int
        Images per forward pass (bounds memory).
    """

    def __init__(
        self, name: str, weights_path: str | Path, device: str = "cpu", batch_size: int = 16
    ) -> None:
        self.name, self.spec, self.batch_size = name, _spec(name), batch_size
        model = self.spec.build()
        self.model = load_network_weights(name, model, weights_path).eval().requires_grad_(False)
        try:
            self.model = self.model.to(device)
        except (RuntimeError, AssertionError) as err:
            raise ConfigError(f"Reference network {name!r} cannot use device {device!r}: {err}") from None
        self.device = device

    def features(self, images: np.ndarray, taps: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """uint8 images (n, H, W, 3) -> {tap: float32 (n, features)} after MindEye's preprocessing."""
        taps = tuple(taps or self.spec.taps)
        out: dict[str, list[np.ndarray]] = {tap: [] for tap in taps}
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = mindeye_pixels(images[start : start + self.batch_size], self.spec.input_size)
                for tap, value in run_stages(self.model.stages(), x.to(self.device), taps).items():
                    out[tap].append(value.flatten(1).float().cpu().numpy())
        return {tap: np.concatenate(parts) for tap, parts in out.items()}
