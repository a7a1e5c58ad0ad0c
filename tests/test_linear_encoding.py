"""The sixth method, added as new files only: the voxel-wise linear encoding model, its scores and its recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainkit.errors import DataError
from brainkit.evaluation.encoding import encoding_scores, voxel_correlations

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_voxel_correlations_known_answers():
    x = np.array([[1.0, 1.0, 2.0], [2.0, 1.0, 0.0], [3.0, 1.0, 1.0], [4.0, 1.0, 5.0]])
    actual = np.stack([x[:, 0], x[:, 0], -x[:, 0]], axis=1)
    r = voxel_correlations(np.stack([2 * x[:, 0] + 1, x[:, 1], x[:, 0]], axis=1), actual)
    np.testing.assert_allclose(r, [1.0, 0.0, -1.0])  # affine copy, a constant prediction, a sign flip
    with pytest.raises(DataError, match=r"must both be \(n_samples >= 2, n_voxels\)"):
        voxel_correlations(np.zeros((4, 3)), np.zeros((4, 2)))


def test_encoding_scores_share_of_ceiling():
    r = np.array([0.5, -0.5, 0.2])
    scores = encoding_scores(r, noise_ceiling=np.array([25.0, 50.0, 0.5]), min_ceiling=1.0)
    # explained 25, -25 (, 4: ceiling 0.5 % left out) -> shares 100 % and -50 % -> median 25 %
    assert scores["median_share_of_ceiling"] == pytest.approx(25.0)
    assert scores["median_r"] == pytest.approx(0.2) and scores["share_r_above_0.1"] == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="no voxel has a noise ceiling >= 60"):
        encoding_scores(r, np.array([25.0, 50.0, 0.5]), min_ceiling=60)


def test_the_one_trainer_recovers_a_planted_linear_map():
    from brainkit.models import build_model
    from brainkit.models.linear_encoding import LinearEncodingConfig
    from brainkit.objectives.regression import VoxelMSE
    from brainkit.recipes.linear_encoding import EncodingTask
    from brainkit.training import Arrays, TrainingConfig, train

    rng = np.random.default_rng(0)
    weights = rng.standard_normal((13, 29)).astype(np.float32)

    def arrays(n, name):
        x = rng.standard_normal((n, 13)).astype(np.float32)
        return Arrays(x, x @ weights + 0.3 * rng.standard_normal((n, 29)).astype(np.float32), name)

    torch.manual_seed(0)
    model = build_model("linear_encoding", LinearEncodingConfig(n_features=13, n_voxels=29))
    task = EncodingTask(model, VoxelMSE(), arrays(200, "train"), arrays(40, "val"))
    result = train(task, TrainingConfig(epochs=40, batch_size=50, lr=0.05, weight_decay=0, progress=False,
                                        monitor="val_median_r"))  # fmt: skip
    assert result.history[0]["val_median_r"] < 0.9 < result.best["val_median_r"]
    error = np.linalg.norm(model.linear.weight.detach().numpy().T - weights) / np.linalg.norm(weights)
    assert error < 0.1


def test_recipe_testing_preset_end_to_end(tmp_path):
    from brainkit.recipes import run_recipe

    result = run_recipe("linear_encoding", preset="testing", folder=tmp_path / "run",
                        overrides=[f"cache_dir={tmp_path / 'cache'}"])  # fmt: skip
    rows = next(iter(result.tables.values()))
    assert [(r["subject"], r["method"]) for r in rows] == [
        ("subj01", "linear_encoding"), ("subj01", "ridge"), ("subj05", "linear_encoding"), ("subj05", "ridge")]  # fmt: skip
    for row in rows:
        assert np.isfinite([row["median_r"], row["median_share_of_ceiling"]]).all()
        assert row["median_r"] > 0.1  # the tiny data's responses are driven by these very pixel features
    folder = result.folder
    assert (folder / "report.html").is_file() and (
        folder / "subj01" / "checkpoint" / "model.safetensors"
    ).is_file()
    assert not (folder / "subj01" / "train" / "state").exists()
    assert json.loads((folder / "metrics.json").read_text())["recipe"] == "linear_encoding"
