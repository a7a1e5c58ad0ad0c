"""A finished run folder as an object: ``brainkit.load(RUN)`` (and what ``brainkit.run(...)`` returns).

:class:`Run` reads the folder's ``config.json`` (recipe and config) and ``metrics.json``; :meth:`Run.evaluate`
scores it again, and :meth:`Run.predict` / :meth:`Run.retrieve` decode new recordings with the recipe's
``predictor``: Lite-Mind and its baselines decode embeddings and retrieve (:mod:`brainkit.recipes.lite_mind.decoding`),
vis_dec reconstructs images (:mod:`brainkit.recipes.vis_dec.predict`), clip_mused gives category probabilities
(:mod:`brainkit.recipes.clip_mused.decode`), sim embeds surface frames in its tri-modal space and ranks its test
clips (:mod:`brainkit.recipes.sim.predict`), brain_mae encodes ROI time series and predicts phenotypes
(:mod:`brainkit.recipes.brain_mae.predict`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from brainkit.errors import CheckpointError, ConfigError
from brainkit.recipes import RECIPES, evaluate_run, run_recipe, saved_run


class Run:
    """A finished run: ``recipe`` (name), ``config`` (with ``${run}`` resolved), ``folder``, ``metrics``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.recipe, self._cls, self.config = saved_run(self.folder)
        self._predictor: Any = None

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r}, recipe={self.recipe!r})"

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics the run reported (``metrics.json``)."""
        path = self.folder / "metrics.json"
        if not path.is_file():
            raise CheckpointError(f"{self.folder} has no metrics.json; it did not finish.")
        return json.loads(path.read_text())["metrics"]

    def evaluate(self) -> dict[str, Any]:
        """The metrics again, recomputed from the saved checkpoints (``brainkit eval``)."""
        return evaluate_run(self.folder)

    @property
    def predictor(self) -> Any:
        if self._predictor is None:
            if not hasattr(self._cls, "predictor"):
                able = [n for n in RECIPES if hasattr(RECIPES.get(n), "predictor")]
                raise ConfigError(
                    f"Runs of {self.recipe!r} cannot decode new data yet; recipes whose runs can: {', '.join(able)}."
                )
            self._predictor = self._cls().predictor(self.config, self.folder)
        return self._predictor

    def predict(self, x: Any, **options: Any) -> Any:
        """Decode ``x`` (an array or a .npy / NIfTI / GIFTI / CIFTI file of new recordings); see the recipe's
        predictor."""
        return self.predictor.predict(x, **options)

    def retrieve(self, x: Any, gallery: Any, **options: Any) -> Any:
        """Rank ``gallery`` (a folder of images, or an image array; a sim run: ``"test"``, its test clips) for each
        sample of ``x``."""
        return self.predictor.retrieve(x, gallery, **options)


def load(folder: str | Path) -> Run:
    """The finished run in ``folder``."""
    return Run(folder)


def run(
    method: str,
    dataset: Any = None,
    preset: str | None = None,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    config: Any = None,
    config_file: str | Path | None = None,
) -> Run:
    """Run recipe ``method`` (``brainkit run``) and return the finished :class:`Run`.

    ``dataset``: your data (e.g. :func:`brainkit.data.from_arrays`), saved into the run folder and read from
    there; ``preset`` / ``config_file`` / ``overrides`` (``["training.epochs=5"]``) as on the command line.
    """
    result = run_recipe(
        method, config, out, preset=preset, overrides=overrides, config_file=config_file, dataset=dataset
    )
    return Run(result.folder)


__all__ = ["Run", "load", "run"]
