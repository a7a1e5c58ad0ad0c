"""Which movie data a ``sim`` run reads: ``data`` names either a preset of the built-in ``movie_surface_like``
(``cpu_small``, ``testing``; ``data_options`` its :class:`MovieSurfaceConfig` changes) or a registered dataset
returning :class:`MovieSurfaceData` (``hcp_movie_surface``; ``data_options`` its factory's options, e.g.
``root``). Both give (n_subjects, n_runs, n_frames, n_vertices) surface frames with per-clip video/audio features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brainkit.config import from_dict, to_dict
from brainkit.errors import ConfigError

BUILTIN = "movie_surface_like"


@dataclass(frozen=True)
class DataSummary:
    """What the checks need before any data exist: the encoders (role -> (name, options)), the icosphere order,
    the subject count when known (None: found on disk)."""

    encoders: dict[str, tuple[str, dict[str, Any]]]
    order: int
    n_subjects: int | None


def movie_config(config: Any):
    """The :class:`MovieSurfaceConfig` of ``config.data`` (a ``movie_surface_like`` preset) with
    ``config.data_options``."""
    from brainkit.data.builtin import movie_surface_like as movies

    if config.data not in movies.PRESETS:
        raise ConfigError(
            f"movie_surface_like has no preset {config.data!r}; presets: {sorted(movies.PRESETS)}."
        )
    options = to_dict(movies.PRESETS[config.data]) | dict(config.data_options)
    return from_dict(movies.MovieSurfaceConfig, options, where="sim data_options")


def is_builtin(config: Any) -> bool:
    """Whether ``config.data`` is a preset of the built-in dataset (else a registered dataset's name)."""
    from brainkit.data.builtin import movie_surface_like as movies

    return config.data in movies.PRESETS


def named_dataset(config: Any):
    """The factory of the registered dataset ``config.data``, checked to return surface movie data."""
    from brainkit.data.builtin import movie_surface_like as movies
    from brainkit.data.contract import returns_of
    from brainkit.registry import DATASETS

    if config.data == BUILTIN or config.data not in DATASETS:
        raise ConfigError(
            f"sim data={config.data!r} is neither a {BUILTIN} preset ({sorted(movies.PRESETS)}) nor a registered "
            f"dataset of surface movie runs (e.g. hcp_movie_surface; `brainkit list` shows them)."
        )
    factory = DATASETS.get(config.data)
    if returns_of(factory) is not movies.MovieSurfaceData:
        raise ConfigError(
            f"sim data={config.data!r} returns {returns_of(factory)}, not surface movie runs (MovieSurfaceData)."
        )
    DATASETS.check_options(config.data, dict(config.data_options), "sim data_options")
    return factory


def data_summary(config: Any) -> DataSummary:
    """The encoders, order and subject count of the data ``config`` names (module doc), nothing read."""
    if is_builtin(config):
        data = movie_config(config)
        return DataSummary({"video": (data.video_encoder, dict(data.video_options)),
                            "audio": (data.audio_encoder, dict(data.audio_options))}, data.order, data.n_subjects)  # fmt: skip
    from brainkit.data.readers.hcp_movie_surface_data import HCPSurfaceOptions

    named_dataset(config)
    if "root" not in config.data_options:
        raise ConfigError(
            f"sim data={config.data!r} needs data_options.root: the folder of the download "
            "(--set data.options.root=DIR)."
        )
    options = from_dict(HCPSurfaceOptions, dict(config.data_options), where="sim data_options")
    return DataSummary({"video": (options.video_encoder, dict(options.video_options)),
                        "audio": (options.audio_encoder, dict(options.audio_options))}, options.order,
                       None if options.subjects is None else len(options.subjects))  # fmt: skip


def load_movie_data(config: Any):
    """The movie data of ``config.data`` with ``config.data_options`` (cached under ``config.cache_dir``)."""
    if is_builtin(config):
        from brainkit.data.builtin import movie_surface_like as movies

        return movies.load_movie_surface_like(movie_config(config), cache_dir=config.cache_dir)
    return named_dataset(config)(**dict(config.data_options), cache_dir=config.cache_dir)


__all__ = ["DataSummary", "data_summary", "is_builtin", "load_movie_data", "movie_config", "named_dataset"]
