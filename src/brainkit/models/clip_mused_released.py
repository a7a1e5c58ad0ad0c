"""The released CLIP-MUSED weights (CLIP-MUSED/CLIP-MUSED ``models.py`` ``BrainFormer_MS(depth=18)``, saved by
``decoding_HCP_MS.py``) -> brainkit's :class:`~brainkit.models.clip_mused.CLIPMUSED` built with ``released=True``
(the ``hcp`` preset): the key rules and :func:`load_released`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from brainkit.errors import ConfigError

if TYPE_CHECKING:
    from brainkit.models.clip_mused import CLIPMUSED

# The released BrainFormer_MS(depth=18) state-dict keys (CLIP-MUSED/CLIP-MUSED models.py, AttentionBlock.py;
# decoding_HCP_MS.py saves ``model.state_dict()``) -> ours, for a model built with ``released=True``.
_NORM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
RELEASED_RULES = [
    (r"conv1\.weight", "stem.0.weight"),
    (rf"bn1\.{_NORM}", r"stem.1.\1"),
    (r"conv2\.weight", "stem.3.weight"),
    (rf"bn2\.{_NORM}", r"stem.4.\1"),
    *(
        rule
        for layer in range(1, 5)
        for rule in (
            (rf"layer{layer}\.(\d+)\.(conv[12]|bn[12])\.(\w+)", rf"layers.{layer - 1}.\1.\2.\3"),
            (rf"layer{layer}\.(\d+)\.downsample\.([01])\.(\w+)", rf"layers.{layer - 1}.\1.shortcut.\2.\3"),
        )
    ),
    (r"attention2\.mlp1\.([02])\.(weight|bias)", r"shallow.channel.\1.\2"),
    (r"attention2\.mlp2\.([02])\.(weight|bias)", r"shallow.mix.\1.\2"),
    (rf"attention2\.(norm[12])\.{_NORM}", r"shallow.\1.\2"),
    *(
        rule
        for released, ours in ((3, 0), (4, 1))
        for rule in (
            (rf"attention{released}\.attention\.to_qkv\.weight", f"blocks.{ours}.qkv.weight"),
            (rf"attention{released}\.attention\.to_out\.0\.(weight|bias)", rf"blocks.{ours}.out.\1"),
            (rf"attention{released}\.(norm[12])\.{_NORM}", rf"blocks.{ours}.\1.\2"),
            (rf"attention{released}\.FeedForward\.net\.0\.(weight|bias)", rf"blocks.{ours}.ff.0.\1"),
            (rf"attention{released}\.FeedForward\.net\.3\.(weight|bias)", rf"blocks.{ours}.ff.2.\1"),
        )
    ),
    (r"fc1\.(weight|bias)", r"classifier.\1"),
    (r"subject_tokens", "tokens"),  # hlv_token and llv_token stacked, see load_released
]


def load_released(
    model: CLIPMUSED, weights: dict[str, torch.Tensor], source: str, subject_rows: list[int] | None = None
) -> None:
    """Load the released BrainFormer_MS state dict into ``model`` (the ``hcp`` preset: ``released=True``).

    The released ``hlv_token`` and ``llv_token`` (n_subjects, 1, dim) become our ``tokens`` (n, 2, dim) as
    [high, low]; ``subject_rows[i]`` is the released row of our subject ``i`` (the released order is its
    ``subject_IDs_train.txt``; None: the same order). ``fc1`` becomes the classifier row for row: the released
    class order must be the data's. Raises :class:`~brainkit.errors.CheckpointError` listing what does not fit.
    """
    from brainkit.models.released import map_state

    if not model.config.released or model.config.variant != "hcp":
        raise ConfigError(
            "Released CLIP-MUSED weights are the hcp model with the released blocks: build it with "
            f"variant='hcp' and released=True (the hcp preset); found variant={model.config.variant!r}, "
            f"released={model.config.released}."
        )
    weights = dict(weights)
    if "hlv_token" in weights and "llv_token" in weights:
        high, low = weights.pop("hlv_token"), weights.pop("llv_token")
        tokens = torch.cat([high, low], dim=1) if high.ndim == 3 and high.shape == low.shape else high
        if subject_rows is not None:
            if sorted(set(subject_rows)) != sorted(subject_rows) or max(subject_rows) >= len(tokens):
                raise ConfigError(
                    f"subject_rows {subject_rows} must be distinct rows of the released tokens (it has "
                    f"{len(tokens)} subjects)."
                )
            tokens = tokens[list(subject_rows)]
        weights["subject_tokens"] = tokens
    model.load_state_dict(map_state(weights, RELEASED_RULES, model.state_dict(), source=source))
