"""Models: one file per method, plus baselines; all registered in :data:`brainkit.registry.MODELS`."""

from brainkit.models.base import build_model, count_parameters, load_model, model_config, save_model


def register_all() -> None:
    """Import every model module so that its registration runs (what any look-up in MODELS does first)."""
    from brainkit.registry import MODELS

    MODELS.discover()


__all__ = ["build_model", "count_parameters", "load_model", "model_config", "save_model", "register_all"]
