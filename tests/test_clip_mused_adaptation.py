"""CLIP-MUSED's new-subject adaptation (recipes/clip_mused/adaptation.py): only the new subject's tokens train,
adapt and scratch see the same nested k samples, the curve over seeds, config errors, one end-to-end run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from brainkit.errors import ConfigError
from brainkit.recipes import recipe_config, run_recipe
from brainkit.recipes.clip_mused import adaptation as cm_adaptation
from brainkit.recipes.clip_mused import build_network
from brainkit.recipes.clip_mused.adaptation import (
    SUBJECT_PARAMETERS,
    TokenTask,
    adapt_network,
    held_out,
    resolve,
    semantic_loss,
)
from brainkit.recipes.clip_mused.data import prepare
from brainkit.report.adaptation import interval
from brainkit.training import train_phase
from brainkit.training.subsets import nested_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One dataset cache for this file (the dataset is built once)."""
    return tmp_path_factory.mktemp("clip_mused_adaptation_cache")


@pytest.fixture(scope="module")
def config(cache_dir):
    return recipe_config("clip_mused", preset="testing_adaptation", overrides=[f"cache_dir={cache_dir}"])


@pytest.fixture(scope="module")
def prepared(config):
    return prepare(config)


def test_adapt_trains_only_the_new_subjects_tokens(config, prepared, tmp_path) -> None:
    dataset, samples, grid = prepared
    target, sources, _ = resolve(config, samples)
    pretrained = build_network("clip_mused", config, grid, samples.n_classes, len(sources), 5)
    model = adapt_network(pretrained, config, grid, samples.n_classes, seed=1)
    shared = {k: v.clone() for k, v in pretrained.state_dict().items() if k not in SUBJECT_PARAMETERS}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.tokens.shape[0] == 1 and pretrained.tokens.shape[0] == len(sources)
    assert not torch.equal(model.tokens, pretrained.tokens[:1])  # fresh tokens, not a pretraining subject's
    held = held_out(dataset, samples, grid, target, 12, seed=0)
    training = cm_adaptation.cell_training(config, 12, 0)
    train_phase(TokenTask(model, semantic_loss(config), held.train, grid), training, tmp_path / "adapt")
    after = model.state_dict()
    for key, value in shared.items():  # every shared parameter and buffer (BatchNorm statistics too)
        assert torch.equal(after[key], value), key
        assert torch.equal(after[key], before[key]), key
    assert not torch.equal(after["tokens"], before["tokens"])  # the tokens did train
    assert (tmp_path / "adapt" / "final" / "model.safetensors").is_file()


def test_scratch_and_adapt_see_the_same_nested_k_samples(config, prepared, tmp_path, monkeypatch) -> None:
    dataset, samples, grid = prepared
    target, _, _ = resolve(config, samples)
    seen = {}

    class Fit:
        seconds = 0.0

    def record(task, training, folder, resume=False, name=None):
        seen[name.split("_")[0]] = (task.data, training)
        return Fit()

    monkeypatch.setattr(cm_adaptation, "train_phase", record)
    pretrained = build_network("clip_mused", config, grid, samples.n_classes, 2, 0)
    cm_adaptation.run_cell(config, dataset, samples, grid, pretrained, target, 12, 1, tmp_path, False)
    (adapt, adapt_training), (scratch, scratch_training) = seen["adapt"], seen["scratch"]
    for field in ("values", "subject", "labels", "high", "low"):
        assert np.array_equal(getattr(adapt, field), getattr(scratch, field)), field
    assert adapt_training == scratch_training and adapt_training.seed == 1
    rows = json.loads((tmp_path / "k00012_seed1" / "rows.json").read_text())["rows"]
    assert rows == nested_rows(len(samples.train[target].values), 12, 1).tolist()
    assert np.array_equal(adapt.labels, samples.train[target].labels[rows])
    # nested over k for one seed, different across seeds; z-scored on the k samples alone
    small, large = (held_out(dataset, samples, grid, target, k, seed=1) for k in (6, 12))
    assert set(small.rows) < set(large.rows) and len(small.rows) == 6
    assert not np.array_equal(held_out(dataset, samples, grid, target, 6, seed=0).rows, small.rows)
    assert np.allclose(small.train.values.mean(0), 0, atol=1e-5)
    assert not np.allclose(small.train.values, samples.train[target].values[small.rows])


@pytest.fixture(scope="module")
def run(tmp_path_factory, cache_dir):
    folder = tmp_path_factory.mktemp("clip_mused_adaptation") / "run"
    return run_recipe(
        "clip_mused", folder=folder, preset="testing_adaptation", overrides=[f"cache_dir={cache_dir}"]
    )


def test_testing_adaptation_end_to_end(run) -> None:
    rows = run.tables["mAP against k"]
    assert [(r["method"], r["k"]) for r in rows] == [
        (m, k) for m in ("adapt", "scratch") for k in (6, 12, 32)
    ]
    cells = run.metrics["cells"]
    for row in rows:
        assert row["n_seeds"] == 2 and row["minutes"] == round(row["k"] / 60, 2)
        values = [cells[f"{row['method']}/k={row['k']}/seed={seed}"]["mAP"] for seed in (0, 1)]
        assert (row["mAP_mean"], row["mAP_low"], row["mAP_high"]) == interval(values)
        assert (
            0 < row["mAP_chance"] < 1
            and row["mAP_chance"] == cells[f"adapt/k={row['k']}/seed=0"]["mAP_chance"]
        )
    assert run.metrics["target_subject"] == "sub03" and run.metrics["pretraining_subjects"] == [
        "sub01",
        "sub02",
    ]
    with open(run.folder / "curve.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    assert "mAP against k" in (run.folder / "report.html").read_text()
    for phase in ("pretrain", "k00006_seed0/adapt", "k00032_seed1/scratch"):
        assert (run.folder / phase / "final" / "model.safetensors").is_file(), phase
    assert any("smallest k (6 samples" in note for note in run.notes)


def test_resume_reloads_the_finished_phases_and_ends_as_the_uninterrupted_run(run, cache_dir, tmp_path,
                                                                              monkeypatch) -> None:  # fmt: skip
    from brainkit.testing import SimulatedKill, killing_train
    from brainkit.training import phase

    folder, overrides = tmp_path / "run", [f"cache_dir={cache_dir}"]
    calls: list[str] = []
    monkeypatch.setattr(phase, "train", killing_train("scratch_k12_seed0", until_step=1, calls=calls))
    with pytest.raises(SimulatedKill):
        run_recipe("clip_mused", folder=folder, preset="testing_adaptation", overrides=overrides)
    assert calls == ["pretrain", "adapt_k6_seed0", "scratch_k6_seed0", "adapt_k6_seed1", "scratch_k6_seed1",
                     "adapt_k12_seed0", "scratch_k12_seed0"]  # fmt: skip
    calls.clear()
    monkeypatch.setattr(phase, "train", killing_train("nothing", calls=calls))
    resumed = run_recipe("clip_mused", folder=folder, resume=True)
    assert calls[0] == "scratch_k12_seed0" and "pretrain" not in calls and "adapt_k12_seed0" not in calls
    assert resumed.metrics == run.metrics


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("adaptation.k=[0]", r"adaptation.k=\[0\]: each k must be a number of samples >= 1 or 'all'"),
        ("adaptation.seeds=[1,1]", r"adaptation.seeds=\[1, 1\]: give one or more distinct seeds"),
        ("model.subject_tokens=false", "adapts the new subject's tokens; the model has none"),
        ("adaptation.target_subject=sub09", r"target_subject='sub09' is not a subject of the data"),
        (
            "adaptation.k=[6,999]",
            r"adaptation.k=\[999\] exceeds the 32 training samples of the held-out subject",
        ),
    ],
)
def test_bad_settings_raise_before_training(override, message, cache_dir, tmp_path, monkeypatch) -> None:
    def no_training(*args, **kwargs):
        raise AssertionError("trained before the settings were checked")

    monkeypatch.setattr(cm_adaptation, "train_phase", no_training)
    with pytest.raises(ConfigError, match=message):
        run_recipe("clip_mused", folder=tmp_path / "run", preset="testing_adaptation",
                   overrides=[f"cache_dir={cache_dir}", override])  # fmt: skip


def test_adaptation_is_off_by_default() -> None:
    for preset in ("cpu_small", "testing", "hcp", "nsd"):
        assert not recipe_config("clip_mused", preset=preset).adaptation.enabled
    assert recipe_config("clip_mused", preset="adaptation").adaptation.enabled
