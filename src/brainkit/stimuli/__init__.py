"""Stimulus encoders (a registry) and the on-disk embedding cache.

Importing any ``brainkit.stimuli`` module runs this first, so every encoder module below is registered in
``brainkit.registry.ENCODERS`` whichever module ``get_encoder`` is imported from.
"""

from brainkit.stimuli import av_encoders as _av_encoders  # noqa: F401  (registers the video/audio encoders)
from brainkit.stimuli import efficientnet as _efficientnet  # noqa: F401  (registers EfficientNet-Lite0)
from brainkit.stimuli import hf_encoders as _hf_encoders  # noqa: F401  (registers MiniLM and CLIP)
from brainkit.stimuli.cache import default_cache_dir, embed_stimuli
from brainkit.stimuli.encoders import Encoder, get_encoder

__all__ = ["Encoder", "default_cache_dir", "embed_stimuli", "get_encoder"]
