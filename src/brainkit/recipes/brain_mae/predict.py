"""A finished brain_mae run encoding new ROI time series: ``brainkit.load(RUN).predict(x)`` /
``brainkit predict RUN --input series.tsv --out embedding.npy``.

``x``: one subject's ROI time series, an array (n_frames, n_rois) or a table file (.tsv / .csv with a header of
ROI names, .npy; read with :func:`~brainkit.data.readers.roi_timeseries.read_roi_timeseries`). It goes through
what the run's data went through: z-scored per ROI when the dataset did so (``roi_tables``' ``standardize``; the
built-in ``hcp_cohort``'s runs are z-scored too), cut into the evaluation's windows (``n_segments`` segments of
``segment_seconds``, half-overlapping), then the pretrained variant's encoder (``decoder``: a variant of the run,
default SG-BrainMAE when the run has it). Outputs (``output=``):

- ``"subject"`` (default): float32 (1, n_rois (n_rois - 1) / 2), the subject embedding the downstream heads read
  (the learned connectivity of the ROI tokens, Fisher z, averaged over the windows): for a run's own rest table it
  equals, bit for bit on CPU, the row its evaluation scored;
- ``"tokens"``: float32 (n_windows, n_segments, n_rois, dim), the encoder's ROI embeddings per window and segment;
- ``"features"``: float32 (n_windows, 2 n_rois dim), each window's per-ROI token mean and sd (what the state
  heads read).

:meth:`BrainMAEPredictor.phenotypes` gives the phenotype predictions of the saved heads: when the run ends, a
ridge head per target (``regression_targets``, ``classification_targets``) and variant is fitted on ALL its
downstream subjects' subject embeddings (the cross-validation in the metrics estimates how well such a head does);
a regression target gives a value, a classification target each class's probability. The state heads exist only
inside the cross-validation and are not saved. What it needs is in the run folder's ``predictor/``
(``inputs.json``: ROI names, networks, TR, window sizes, z-scoring, variants and targets;
``heads.safetensors``) and ``checkpoints/<variant>``, so predicting reads no dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainkit.checkpoint import atomic_write_text, load_tensors, save_tensors
from brainkit.data.timeseries import RoiTimeSeries, zscore
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.evaluation.downstream import ALPHAS, readout, subject_features

STATE = "predictor"  # in the run folder
OUTPUTS = ("subject", "tokens", "features")


def fit_head(x: np.ndarray, y: np.ndarray, task: str) -> dict[str, np.ndarray]:
    """The downstream ridge head (standardise, then ``RidgeCV`` / ``RidgeClassifierCV`` over ``ALPHAS``, as
    :func:`~brainkit.evaluation.downstream.ridge_head`) fitted on every row, as arrays: mean, scale, coef
    (n_outputs, n_features), intercept (n_outputs,) [, classes]."""
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(x, dtype=np.float64)  # as cross_validate gives the ridge head its features
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    head = (RidgeCV if task == "regression" else RidgeClassifierCV)(alphas=ALPHAS).fit(z, y)
    out = {"mean": scaler.mean_, "scale": scaler.scale_, "coef": np.atleast_2d(head.coef_),
           "intercept": np.atleast_1d(head.intercept_)}  # fmt: skip
    return out if task == "regression" else out | {"classes": head.classes_}


def apply_head(head: dict[str, np.ndarray], x: np.ndarray, task: str) -> np.ndarray:
    """A fitted head on rows ``x`` (n, n_features): regression (n,) values; classification (n, n_classes)
    probabilities (the softmax of the decision values, as the cross-validated heads score them)."""
    from scipy.special import softmax

    scores = (np.asarray(x, np.float64) - head["mean"]) / head["scale"] @ head["coef"].T + head["intercept"]
    if task == "regression":
        return scores[:, 0]
    scores = np.concatenate([-scores, scores], axis=1) if scores.shape[1] == 1 else scores
    return softmax(scores, axis=1)


def save_state(folder: Path, config: Any, data: Any, features: dict[str, np.ndarray]) -> None:
    """``folder/predictor/``: what predicting needs of the run's data (``data``: the recipe's CohortData) and a
    head per variant and target fitted on ``features[variant]`` (n_downstream, n_features)."""
    from brainkit.recipes.brain_mae.settings import real_variant, variant_slug

    cohort, tensors, targets = data.cohort, {}, {}
    for name, (values, task) in data.targets.items():
        targets[name] = {"task": task, "classes": None}
        for variant, x in features.items():
            head = fit_head(x, values, task)
            if task == "classification":
                targets[name]["classes"] = head.pop("classes").tolist()
            for key, array in head.items():
                tensors[f"{variant_slug(variant)}/{name}/{key}"] = torch.from_numpy(
                    np.asarray(array, np.float64)
                )
    meta = {
        "dataset": config.data,
        "roi_names": list(cohort.roi_names),
        "networks": None if cohort.networks is None else list(cohort.networks),
        "tr": cohort.tr,
        "segment_frames": data.frames,
        "n_frames": data.n_frames,
        "standardize": bool(cohort.info.get("standardize", True)),
        "variants": {name: variant_slug(name) for name in features},
        "default": real_variant(config),
        "targets": targets,
        "n_subjects": len(data.downstream),
    }
    if tensors:
        save_tensors(folder / STATE / "heads.safetensors", tensors)
    atomic_write_text(folder / STATE / "inputs.json", json.dumps(meta, indent=1))


class BrainMAEPredictor:
    """The run in ``folder``: its data's ROIs, TR and windows (``inputs.json``), saved heads and variants (loaded
    when first used). See the module docstring for ``predict`` and ``phenotypes``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        path = self.folder / STATE / "inputs.json"
        if not path.is_file():
            raise CheckpointError(
                f"{path} is missing: {self.folder} is not a finished brain_mae run of this brainkit (runs write it "
                "when they end). Run it again with brainkit run brain_mae."
            )
        self.meta = json.loads(path.read_text())
        self.roi_names: list[str] = self.meta["roi_names"]
        heads = self.folder / STATE / "heads.safetensors"
        self._heads = {k: v.numpy() for k, v in load_tensors(heads).items()} if heads.is_file() else {}
        self._models: dict[str, Any] = {}

    @property
    def targets(self) -> dict[str, dict[str, Any]]:
        """target -> {"task": "regression" | "classification", "classes": [...] or None}."""
        return self.meta["targets"]

    def _model(self, decoder: str | None):
        from brainkit.models import load_model

        name = decoder or self.meta["default"]
        if name not in self.meta["variants"]:
            raise ConfigError(
                f"This brain_mae run has no variant {name!r}; its variants: {list(self.meta['variants'])}."
            )
        if name not in self._models:
            path = self.folder / "checkpoints" / self.meta["variants"][name]
            if not (path / "model.safetensors").is_file():
                raise CheckpointError(f"{path} is missing: {self.folder} is not a finished brain_mae run.")
            self._models[name] = load_model(path)[0].eval()
        return name, self._models[name]

    def _check_count(self, n_rois: int, where: str) -> None:
        if n_rois != len(self.roi_names):
            raise DataError(
                f"predict: {where} has {n_rois} ROI columns; this run was trained on {len(self.roi_names)} ROIs "
                f"of {self.meta['dataset']} ({', '.join(self.roi_names[:3])}, ...). Use the same atlas, its ROIs "
                "as columns in the same order."
            )

    def series(self, x: Any) -> RoiTimeSeries:
        """``x`` (an (n_frames, n_rois) array or a table file) checked against the run's ROIs and window, and
        preprocessed as the run's data were."""
        from brainkit.data.readers.roi_timeseries import read_roi_timeseries

        tr = self.meta["tr"]
        if isinstance(x, str | Path):
            run = read_roi_timeseries(x, tr, subject="input", run=Path(x).name)
            where, names = str(x), run.roi_names if Path(x).suffix in (".csv", ".tsv") else None
        else:
            values = np.asarray(x)
            if values.ndim != 2 or values.dtype.kind not in "fiu":
                raise DataError(
                    f"predict: expected one subject's ROI time series, a numeric (n_frames, n_rois) array, found "
                    f"{values.dtype} {values.shape}."
                )
            self._check_count(values.shape[1], "the input")
            run, where, names = (
                RoiTimeSeries(values, tr, list(self.roi_names), subject="input"),
                "the input",
                None,
            )
        self._check_count(run.n_rois, where)
        if names is not None and names != self.roi_names:
            i = next(i for i, (a, b) in enumerate(zip(names, self.roi_names, strict=True)) if a != b)
            raise DataError(
                f"predict: {where} column {i} is {names[i]!r} where the run's ROI {i} is {self.roi_names[i]!r}; "
                "the columns must be the training ROIs in the same order."
            )
        if run.n_times < self.meta["n_frames"]:
            raise DataError(
                f"predict: {where} has {run.n_times} frames; the run's windows need {self.meta['n_frames']} "
                f"({self.meta['n_frames'] * tr:.0f} s at TR {tr} s)."
            )
        values = zscore(run.values) if self.meta["standardize"] else run.values
        return RoiTimeSeries(values, tr, list(self.roi_names), subject="input", run="rest")

    def predict(self, x: Any, subject: str | None = None, space: str | None = None, decoder: str | None = None,
                output: str = "subject") -> np.ndarray:  # fmt: skip
        """The embedding of ``x`` (module docstring): ``output`` "subject" (1, n_pairs), "tokens" or "features".
        ``subject`` and ``space`` are not used (the encoder is the same for every subject and reads ROIs)."""
        from brainkit.data.timeseries import windows

        if output not in OUTPUTS:
            raise ConfigError(f"predict: output must be one of {OUTPUTS}, found {output!r}.")
        run = self.series(x)
        _, model = self._model(decoder)
        if output == "subject":
            return subject_features(model, [[run]], self.meta["n_frames"])
        series = windows(run.values, self.meta["n_frames"], self.meta["n_frames"] // 2)
        if output == "features":
            return readout(model, "features", series).numpy()
        with torch.no_grad():
            return torch.cat(
                [model.encode(torch.as_tensor(series[i : i + 32])) for i in range(0, len(series), 32)]
            ).numpy()

    def phenotypes(self, x: Any, decoder: str | None = None) -> dict[str, Any]:
        """The saved heads' predictions for ``x``: target -> value (regression) or {class: probability}."""
        name, _ = self._model(decoder)
        if not self.targets:
            raise ConfigError(
                "This brain_mae run predicted no phenotype (no regression or classification targets)."
            )
        embedding = self.predict(x, decoder=name)
        slug, out = self.meta["variants"][name], {}
        for target, spec in self.targets.items():
            head = {
                k.rsplit("/", 1)[1]: v for k, v in self._heads.items() if k.startswith(f"{slug}/{target}/")
            }
            predicted = apply_head(head, embedding, spec["task"])[0]
            out[target] = (
                float(predicted)
                if spec["task"] == "regression"
                else dict(zip(spec["classes"], map(float, predicted), strict=True))
            )
        return out

    def retrieve(self, x: Any, gallery: Any, **options: Any) -> Any:
        raise ConfigError(
            "A brain_mae run encodes ROI time series (predict, phenotypes); it ranks no image gallery."
        )


__all__ = ["BrainMAEPredictor", "save_state", "fit_head", "apply_head", "STATE"]
