"""Map a released implementation's state dict onto one of our models (``brainkit import-weights``).

Each method with released code describes its checkpoint's key names as an ordered list of rules
``(regex, replacement)``: the first rule whose regex matches a released key (``re.fullmatch``) renames it with
``re.sub``-style backreferences (``\\1``); a replacement of ``None`` drops that key on purpose (a part of the
released network we do not build: the caller says why in a comment). ``transforms`` change the layout of a
tensor after renaming (a transpose, a reshape of a convolution to a linear layer), keyed by OUR name.

:func:`map_state` refuses anything it cannot place: a released key no rule matches, one of our keys that no released
key fills, two released keys filling the same of ours, a shape that differs. It lists every problem at once, so a
wrong file or a wrong preset is one clear error, not a half-loaded model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import torch

from brainkit.errors import CheckpointError

Rule = tuple[str, str | None]


def rename(key: str, rules: Sequence[Rule]) -> str | None:
    """Our name for the released ``key`` (``None``: dropped on purpose); KeyError when no rule matches."""
    for pattern, replacement in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return None if replacement is None else match.expand(replacement)
    raise KeyError(key)


def map_state(
    released: Mapping[str, torch.Tensor],
    rules: Sequence[Rule],
    target: Mapping[str, torch.Tensor],
    transforms: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    source: str = "the released checkpoint",
) -> dict[str, torch.Tensor]:
    """``released`` renamed by ``rules`` into the keys of ``target`` (our model's ``state_dict()``), each tensor
    passed through ``transforms[our_key]`` when given and cast to nothing: its dtype must be ``target``'s.

    Raises :class:`CheckpointError` listing unmatched released keys, our keys left empty, keys filled twice,
    shape and dtype mismatches.
    """
    transforms = dict(transforms or {})
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unmatched, twice, shapes = [], [], []
    for key, tensor in released.items():
        try:
            ours = rename(key, rules)
        except KeyError:
            unmatched.append(key)
            continue
        if ours is None:
            continue
        if ours in out:
            twice.append(f"{origin[ours]} and {key} -> {ours}")
            continue
        if ours in transforms:
            tensor = transforms[ours](tensor)
        if ours in target:
            want = target[ours]
            if tuple(tensor.shape) != tuple(want.shape) or tensor.dtype != want.dtype:
                shapes.append(
                    f"{key} -> {ours}: {tuple(tensor.shape)} {tensor.dtype}, ours {tuple(want.shape)} {want.dtype}"
                )
        out[ours] = tensor
        origin[ours] = key
    unknown = sorted(k for k in out if k not in target)
    missing = sorted(k for k in target if k not in out)
    problems = []
    for title, items in (
        ("released keys that no rule maps", unmatched),
        ("released keys mapped onto names our model does not have", [f"{origin[k]} -> {k}" for k in unknown]),
        ("our parameters that no released key fills", missing),
        ("our parameters filled twice", twice),
        ("shapes / dtypes that differ", shapes),
    ):
        if items:
            shown = "; ".join(items[:12]) + (f"; ... ({len(items) - 12} more)" if len(items) > 12 else "")
            problems.append(f"{title} ({len(items)}): {shown}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit this model: " + " | ".join(problems) + ". Check that the file is the "
            "method's released checkpoint and that the preset matches the one it was trained with (sizes)."
        )
    return {k: out[k].contiguous() for k in target}


def check_fixed_table(
    released: torch.Tensor | None, ours: torch.Tensor, key: str, source: str, rows: int | None = None
) -> None:
    """A released checkpoint's fixed (not trained) positional table ``released`` against the one our model
    computes, ``ours`` (n, dim): the first ``rows`` rows (all when None) of ``released`` flattened to (-1, dim)
    must equal it to 1e-4, else :class:`CheckpointError` (another layout, width or patch count). ``None``: the
    file has no such table, nothing to check. The table itself is not loaded: ours is computed."""
    if released is None:
        return
    table = released.reshape(-1, released.shape[-1])[:rows]
    if table.shape != ours.shape or (table - ours).abs().max() > 1e-4:
        raise CheckpointError(
            f"{source}: its {key} {tuple(released.shape)} is not the [sin | cos] table of this model "
            f"{tuple(ours.shape)}; check the sizes of the preset (voxel or patch count, width)."
        )


__all__ = ["Rule", "check_fixed_table", "map_state", "rename"]
