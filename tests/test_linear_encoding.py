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


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("linear_encoding_cache"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, cache_dir):
    """One uninterrupted run of the testing preset (one torch thread: the preset's ``threads``)."""
    from brainkit.recipes import run_recipe

    folder = tmp_path_factory.mktemp("linear_encoding_runs") / "full"
    return run_recipe(
        "linear_encoding", preset="testing", folder=folder, overrides=[f"cache_dir={cache_dir}"]
    )


def _history(folder, subject):
    from brainkit.training import read_history

    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in read_history(folder / "train" / f"linear_encoding_{subject}")]  # fmt: skip


def test_recipe_testing_preset_end_to_end(full_run):
    from brainkit.training import phase_done

    rows = next(iter(full_run.tables.values()))
    assert [(r["subject"], r["method"]) for r in rows] == [
        ("subj01", "linear_encoding"), ("subj01", "ridge"), ("subj05", "linear_encoding"), ("subj05", "ridge")]  # fmt: skip
    for row in rows:
        assert np.isfinite([row["median_r"], row["median_share_of_ceiling"]]).all()
        assert row["median_r"] > 0.1  # the tiny data's responses are driven by these very pixel features
    assert rows[0]["train_s"] > 0 and rows[1]["train_s"] is None
    # the metrics are the table without its timings
    assert full_run.metrics["rows"] == [{k: v for k, v in r.items() if k != "train_s"} for r in rows]
    folder = full_run.folder
    assert (folder / "report.html").is_file() and (
        folder / "subj01" / "checkpoint" / "model.safetensors"
    ).is_file()
    from brainkit.testing import report_problems

    assert report_problems(folder / "report.html") == []
    assert len(list(folder.glob("report_where_the_features_predict_*fsaverage5.png"))) == 1  # the brain map
    phase = folder / "train" / "linear_encoding_subj01"
    assert phase_done(phase) and (phase / "best").is_dir() and not (phase / "state").exists()
    assert json.loads((folder / "metrics.json").read_text())["recipe"] == "linear_encoding"


def test_eval_reloads_the_models_and_refits_ridge(full_run, tmp_path):
    import shutil

    from brainkit.errors import CheckpointError
    from brainkit.recipes import evaluate_run

    assert evaluate_run(full_run.folder) == full_run.metrics
    assert json.loads((full_run.folder / "metrics.json").read_text())["metrics"] == full_run.metrics
    (tmp_path / "bare").mkdir()
    shutil.copy(full_run.folder / "config.json", tmp_path / "bare")
    with pytest.raises(CheckpointError, match="subj01/checkpoint/model.safetensors is missing"):
        evaluate_run(tmp_path / "bare")


def test_resume_continues_exactly(full_run, cache_dir, tmp_path, monkeypatch):
    """Killed in subj01's training, then (resumed) in subj05's: each --resume continues the interrupted phase,
    reloads the finished one (not retrained), and ends with the uninterrupted run's metrics and curves."""
    import brainkit.training.phase
    from brainkit.cli import main
    from brainkit.errors import ConfigError
    from brainkit.recipes import run_recipe
    from brainkit.testing import SimulatedKill, killing_train

    run, partial = tmp_path / "run", tmp_path / ".run.partial"
    overrides = [f"cache_dir={cache_dir}"]
    calls: list[str] = []
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("linear_encoding_subj01", 2, calls))
    with pytest.raises(SimulatedKill):
        run_recipe("linear_encoding", preset="testing", folder=run, overrides=overrides)
    assert (partial / "train" / "linear_encoding_subj01" / "state").is_dir() and not run.exists()
    with pytest.raises(
        ConfigError, match="interrupted run of linear_encoding is at .*continue it with --resume"
    ):
        run_recipe("linear_encoding", preset="testing", folder=run, overrides=overrides)

    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("linear_encoding_subj05", 2, calls))
    with pytest.raises(SimulatedKill):
        run_recipe("linear_encoding", folder=run, resume=True)
    assert (partial / "train" / "linear_encoding_subj05" / "state").is_dir()

    calls.clear()
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("nothing", calls=calls))
    assert main(["run", "linear_encoding", "--out", str(run), "--resume"]) == 0
    assert calls == ["linear_encoding_subj05"]  # subj01 finished before: reloaded
    assert json.loads((run / "metrics.json").read_text())["metrics"] == full_run.metrics
    for subject in ("subj01", "subj05"):
        assert _history(run, subject) and _history(run, subject) == _history(full_run.folder, subject)


def test_resume_refuses_changed_settings_unless_allowed_and_records_them(cache_dir, tmp_path, monkeypatch):
    """A changed setting on --resume is refused by name with the way to allow it; allowed (by field name), the
    run continues with it, config.json holds it, config_changes.jsonl and the phase's done.json record it; a
    change of where it runs (threads) is never refused; --allow-changes without --resume is refused."""
    import brainkit.training.phase
    from brainkit.errors import ConfigError
    from brainkit.recipes import run_recipe
    from brainkit.testing import SimulatedKill, killing_train

    run, partial = tmp_path / "run", tmp_path / ".run.partial"
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("linear_encoding_subj01", 2))
    with pytest.raises(SimulatedKill):
        run_recipe("linear_encoding", preset="testing", folder=run, overrides=[f"cache_dir={cache_dir}"])
    lr = json.loads((partial / "config.json").read_text())["config"]["training"]["lr"]
    changed = ["training.lr=0.0123", "threads=2"]
    with pytest.raises(
        ConfigError,
        match=r"differ from its saved config.json in \['training.lr'\].*--allow-changes training.lr",
    ):
        run_recipe("linear_encoding", folder=run, resume=True, overrides=changed)
    with pytest.raises(ConfigError, match="--allow-changes applies to --resume only"):
        run_recipe("linear_encoding", folder=tmp_path / "other", allow_changes=("lr",))
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("nothing"))
    run_recipe("linear_encoding", folder=run, resume=True, overrides=changed, allow_changes=("lr",))
    assert json.loads((run / "config.json").read_text())["config"]["training"]["lr"] == 0.0123
    (record,) = [json.loads(line) for line in (run / "config_changes.jsonl").read_text().splitlines()]
    assert record["changes"] == {"threads": [1, 2], "training.lr": [lr, 0.0123]}
    done = json.loads((run / "train" / "linear_encoding_subj01" / "done.json").read_text())
    assert done["changes"] == [{"step": 2, "changes": {"lr": [lr, 0.0123]}}]  # from the step it held
    assert json.loads((run / "train" / "linear_encoding_subj05" / "done.json").read_text())["changes"] == []


def test_recipe_reads_the_real_nsd_layout(tmp_path):
    """linear_encoding on the `nsd` reader (NSD's released layout, tests/nsd_fixture.py): the single test trials it
    keeps give the noise ceiling; `brainkit eval` gives the metrics again."""
    from nsd_fixture import write_nsd_fixture

    from brainkit.data import load_dataset
    from brainkit.recipes import evaluate_run, run_recipe

    write_nsd_fixture(tmp_path / "nsd", n_sessions=3)
    dataset = load_dataset("nsd", root=str(tmp_path / "nsd"), image_size=16)
    raw = dataset.info["raw_test_trials"]["subj01"]
    assert len(raw) > len(dataset.test["subj01"]) and set(raw.stimulus_ids) == set(
        dataset.test["subj01"].stimulus_ids
    )
    overrides = ["data=nsd", f"data_options={{root: {tmp_path / 'nsd'}, image_size: 16}}", "subjects=[subj01]",
                 "val_fraction=0.4", "encoder_options={dim: 6, grid: 2}"]  # fmt: skip
    result = run_recipe("linear_encoding", preset="testing", overrides=overrides, folder=tmp_path / "run")
    rows = result.metrics["rows"]
    assert [r["method"] for r in rows] == ["linear_encoding", "ridge"] and rows[0][
        "n_voxels"
    ] == raw.n_features
    assert evaluate_run(tmp_path / "run") == result.metrics


def test_recipe_reads_your_trials_and_says_when_single_test_trials_are_missing(tmp_path):
    """Your arrays with unaveraged test repeats (through brainkit.run: every subject of them) are averaged here and
    give the noise ceiling; averaged test rows without single trials (GOD's) are refused with a clear error."""
    import brainkit
    from brainkit.data import from_arrays
    from brainkit.recipes import run_recipe
    from brainkit.testing import tiny_decoding_dataset
    from brainkit.testing_kamitani import write_god_folder

    tiny = tiny_decoding_dataset(
        n_train_stimuli=30, n_test_stimuli=8, voxels={"a": 13, "b": 9}, image_size=16
    )
    rng = np.random.default_rng(0)
    test = {
        s: np.repeat(tiny.test[s].values, 3, axis=0) + rng.normal(size=(24, tiny.n_features(s)))
        for s in tiny.subjects
    }
    dataset = from_arrays(
        {s: tiny.train[s].values for s in tiny.subjects}, {s: tiny.train[s].stimulus_ids for s in tiny.subjects},
        test, np.repeat(tiny.test["a"].stimulus_ids, 3), space="native", stimulus_ids=tiny.stimuli.ids,
        images=tiny.stimuli.images, average_test_repeats=False,
    )  # fmt: skip
    result = brainkit.run("linear_encoding", dataset, preset="testing", overrides=["encoder_options={dim: 6, grid: 2}"],
                          out=tmp_path / "mine")  # fmt: skip
    assert sorted({r["subject"] for r in result.metrics["rows"]}) == ["a", "b"]
    write_god_folder(tmp_path / "god", subjects=(1,))
    overrides = ["data=god", f"data_options={{root: {tmp_path / 'god'}}}", "subjects=[sbj_1]"]
    with pytest.raises(DataError, match="holds no single test trials for sbj_1"):
        run_recipe("linear_encoding", preset="testing", overrides=overrides, folder=tmp_path / "god_run")


def test_bench_scores_of_a_run(full_run):
    """`brainkit bench` reads each method's median r and share of the ceiling, the mean over subjects."""
    import numpy as np
    from bench_checks import check_scores

    rows = check_scores("linear_encoding", full_run.tables, {"linear_encoding", "ridge"})
    table = next(iter(full_run.tables.values()))
    ridge = next(r for r in rows if r["method"] == "ridge" and r["metric"].startswith("median voxel r"))
    assert ridge["value"] == np.mean([r["median_r"] for r in table if r["method"] == "ridge"])
    assert ridge["role"] == "baseline" and ridge["chance"] == 0.0
