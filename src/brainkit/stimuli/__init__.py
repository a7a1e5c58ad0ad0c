"""Stimulus encoders (a registry) and the on-disk embedding cache."""

from brainkit.stimuli.cache import default_cache_dir, embed_stimuli
from brainkit.stimuli.encoders import Encoder, get_encoder

__all__ = ["Encoder", "default_cache_dir", "embed_stimuli", "get_encoder"]
