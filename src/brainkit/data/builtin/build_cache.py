"""The on-disk cache every built-in dataset shares: a build is keyed by its parameters and the fingerprints of the
encoders it uses, loaded when present, whole and readable, otherwise built and saved whole (or not at all).

Whole means the folder matches its ``manifest.json`` (the size and sha256 of every file, :mod:`brainkit.checkpoint`),
written after the dataset's own ``save`` has put the folder in place: a file changed or damaged since, or a folder
a crash left between the two (no manifest), is rebuilt with a warning, never loaded. Measured on this project's
2-core machine: checking the default nsd_like build (434 MB, 6 files) takes 0.3 s (0.7 s when its files are not in
the page cache yet), beside the 1.6-2.1 s its ``load`` takes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from brainkit.checkpoint import manifest_problem, write_manifest
from brainkit.data.schema import DecodingDataset, Stimuli
from brainkit.stimuli.cache import default_cache_dir

logger = logging.getLogger(__name__)
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def cached_build(
    name: str,
    key_parts: list[Any],
    build: Callable[[Path], DecodingDataset],
    save: Callable[[Path, DecodingDataset], None],
    load: Callable[[Path], DecodingDataset],
    cache_dir: str | Path | None = None,
    rebuild: bool = False,
) -> DecodingDataset:
    """``load(folder)`` of the build keyed by ``key_parts`` under ``cache_dir/name``, or ``build(root)`` + ``save``.

    ``key_parts`` (JSON-ready: version, parameters, encoder fingerprints) pick the folder; a cached build that
    does not match its manifest, or that ``load`` cannot read, is rebuilt with a warning. ``save`` writes the
    folder whole or not at all; the manifest is written after it.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha1(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:16]
    folder = root / name / key
    if folder.is_dir() and not rebuild:
        problem = manifest_problem(folder)
        if problem is not None:
            logger.warning(
                "Cached %s build %s is damaged or incomplete (%s); rebuilding it.", name, folder, problem
            )
        else:
            try:
                return load(folder)
            except UNREADABLE as err:
                logger.warning("Cached %s build %s is unreadable (%s); rebuilding it.", name, folder, err)
    _notice(name, root / name / TIMING, folder)
    start = time.perf_counter()
    dataset = build(root)
    save(folder, dataset)
    write_manifest(folder)  # last: a folder without one (a crash before this line) is rebuilt, not trusted
    seconds = time.perf_counter() - start
    try:
        (root / name / TIMING).write_text(json.dumps({"seconds": round(seconds, 1)}))
    except OSError:
        pass  # the timing only feeds the next notice
    logger.info("Built %s in %.1f s (cached in %s).", name, seconds, folder)
    return dataset


TIMING = (
    "last_build.json"  # how long the last build of a dataset took here: the next first-build notice says it
)


def _notice(name: str, timing: Path, folder: Path) -> None:
    """One line on stderr before a build that may take minutes (encoders over every stimulus), with the time the
    last build of ``name`` took on this machine when one was recorded."""
    try:
        expected = f"the last build here took {json.loads(timing.read_text())['seconds']:.0f} s"
    except (OSError, ValueError, KeyError, TypeError):
        expected = "no earlier build on this machine to time it by; minutes on a laptop CPU are usual"
    print(
        f"brainkit: building the {name} dataset for these settings ({expected}); later runs read it from {folder}.",
        file=sys.stderr,
        flush=True,
    )


def encoder_fingerprints(features: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """role -> fingerprint of the encoder (name, options) a build uses: part of its cache key."""
    from brainkit.stimuli.encoders import get_encoder

    return {role: get_encoder(name, **options).fingerprint for role, (name, options) in features.items()}


def save_stimuli(path: Path, stimuli: Stimuli) -> None:
    """Ids, labels, images and every embedding of ``stimuli`` in one .npz file."""
    embeddings = {f"embedding:{name}": value for name, value in stimuli.embeddings.items()}
    np.savez(path, ids=stimuli.ids, labels=stimuli.labels, images=stimuli.images, **embeddings)


def load_stimuli(path: Path) -> Stimuli:
    with np.load(path) as data:
        embeddings = {k.split(":", 1)[1]: data[k] for k in data.files if k.startswith("embedding:")}
        return Stimuli(ids=data["ids"], images=data["images"], labels=data["labels"], embeddings=embeddings)
