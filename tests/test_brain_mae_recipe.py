"""End to end: `brainkit run brain_mae --preset testing` on the real nitime run and a tiny built-in cohort, and the
built-in cohort's known right answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainkit.cli import main
from brainkit.data import load_dataset
from brainkit.data.timeseries import connectivity
from brainkit.errors import ConfigError
from brainkit.recipes import recipe_config, run_recipe


def test_cohort_is_deterministic_and_has_the_documented_effects() -> None:
    a = load_dataset("hcp_cohort", n_subjects=24, rest_seconds=150.0, task_seconds=60.0, seed=3)
    b = load_dataset("hcp_cohort", n_subjects=24, rest_seconds=150.0, task_seconds=60.0, seed=3)
    np.testing.assert_array_equal(a.runs[5].values, b.runs[5].values)
    rest = a.runs_of("rest")
    assert len(rest) == 24 and rest[0].values.shape == (208, 100) and a.tr == 0.72
    networks = np.array(a.networks)
    dmn = networks == "Default"

    def mean_edge(c, rows):
        return c[np.ix_(rows, rows)][np.triu_indices(rows.sum(), 1)].mean()

    # age lowers DMN coupling relative to the rest of the brain (the real individual matrices shift all edges)
    contrast = [mean_edge(c, dmn) - mean_edge(c, ~dmn) for c in (connectivity(r.values) for r in rest)]
    assert np.corrcoef(contrast, a.phenotype("age", a.subjects))[0, 1] < -0.5
    task = a.runs_of("task")[0]
    assert set(task.states) == {"rest", "motor", "working_memory"}
    with pytest.raises(ConfigError, match="no phenotype 'iq'"):
        a.phenotype("iq", a.subjects)


def test_recipe_end_to_end(tmp_path, capsys) -> None:
    assert main(["run", "brain_mae", "--preset", "testing", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "static FC + linear (baseline)" in out and "temporal interpolation" in out
    folder = tmp_path / "run"
    metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    methods = [row["method"] for row in metrics["downstream"]]
    assert methods == [
        "SG-BrainMAE",
        "BrainAE (no masking)",
        "SG-BrainMAE (fine-tuned)",
        "static FC + linear (baseline)",
    ]
    sources = {row["data"].split(" ")[0] for row in metrics["reconstruction"]}
    assert sources == {"hcp_cohort", "nitime"}
    assert all(np.isfinite(row["masked_mse_mean"]) for row in metrics["reconstruction"])
    assert (folder / "checkpoints" / "sg-brainmae" / "model.safetensors").is_file()
    assert (folder / "checkpoints" / "real_nitime" / "config.json").is_file()
    html = (folder / "report.html").read_text()
    assert "ROI embeddings" in html and "Learned attention" in html and "Masked-signal reconstruction" in html


def test_recipe_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"variants \['SG-BrainMEA'\] unknown"):
        run_recipe("brain_mae", preset="testing", overrides=["variants=[SG-BrainMEA]"], folder=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="n_pretrain_subjects 12 must leave at least n_folds=3"):
        run_recipe("brain_mae", preset="testing", overrides=["n_pretrain_subjects=12"], folder=tmp_path / "r")
    with pytest.raises(ConfigError, match="transient_seconds=20.0 is longer than segment_seconds=15.0"):
        run_recipe("brain_mae", preset="testing", overrides=["transient_seconds=20.0"], folder=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    assert recipe_config("brain_mae", "paper").training.epochs == 1000
