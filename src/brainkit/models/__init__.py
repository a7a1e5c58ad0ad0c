"""Models: one file per method, plus baselines; all registered in :data:`brainkit.registry.MODELS`."""

from brainkit.models.base import build_model, count_parameters, load_model, model_config, save_model


def register_all() -> None:
    """Import every model module so that its registration runs."""
    import brainkit.models.baselines  # noqa: F401
    import brainkit.models.brain_mae  # noqa: F401
    import brainkit.models.clip_mused  # noqa: F401
    import brainkit.models.dc_mae  # noqa: F401
    import brainkit.models.lite_mind  # noqa: F401
    import brainkit.models.sim  # noqa: F401
    import brainkit.models.sit  # noqa: F401
    import brainkit.models.vsmae  # noqa: F401


__all__ = ["build_model", "count_parameters", "load_model", "model_config", "save_model", "register_all"]
