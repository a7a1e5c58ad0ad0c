"""End to end: `brainkit run brain_mae --preset testing` on the real nitime run and a tiny built-in cohort, the
built-in cohort's known right answer, and the recipe's two tasks on the one trainer: masked pretraining (learns,
seeded, exact resume, 2 gloo processes == 1) and the fine-tuning head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainkit.cli import main
from brainkit.data import load_dataset
from brainkit.data.timeseries import connectivity
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.evaluation.downstream import cross_validate
from brainkit.models.base import model_config
from brainkit.models.brain_mae import BrainMAE
from brainkit.objectives.masked import MaskingConfig
from brainkit.recipes import evaluate_run, recipe_config, run_recipe
from brainkit.recipes.brain_mae import FinetuneHead, pretrain
from brainkit.testing import SimulatedKill, killing_train, one_and_two_processes, save_rank0
from brainkit.training import TrainingConfig, phase_done, read_history

N_ROIS, FRAMES, N_SEGMENTS = 7, 5, 3


def tiny(seed: int = 0, **options) -> BrainMAE:
    torch.manual_seed(seed)
    return BrainMAE(
        model_config("brain_mae", "testing", {"n_rois": N_ROIS, "segment_frames": FRAMES, **options})
    )


def correlated_windows(n: int, seed: int) -> np.ndarray:
    """ROIs that copy two latent signals: a hidden ROI is predictable from the visible ones."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, N_SEGMENTS * FRAMES, 2))
    mixing = rng.standard_normal((2, N_ROIS))
    return (latent @ mixing + 0.1 * rng.standard_normal((n, N_SEGMENTS * FRAMES, N_ROIS))).astype(np.float32)


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
    from brainkit.testing import report_problems

    assert report_problems(folder / "report.html") == []  # human labels, percentages, version, command
    assert "ROI embeddings" in html and "Learned attention" in html and "Masked-signal reconstruction" in html
    # every network is a finished phase (no state left); `brainkit eval` reloads them and gives the same metrics
    phases = sorted(p.name for p in (folder / "train").iterdir())
    assert phases[:3] == ["finetune-states-01", "finetune-states-02", "finetune-states-03"]
    assert phases[3:] == [f"finetune-subjects-{i:02d}" for i in range(1, 10)] + [
        "pretrain-brainae", "pretrain-sg-brainmae", "real-nitime"]  # fmt: skip
    assert all(phase_done(folder / "train" / p) for p in phases) and not list(folder.rglob("state"))
    assert evaluate_run(folder) == metrics
    from bench_checks import check_scores  # `brainkit bench` reads both tables, chance beside the phenotypes

    tables = json.loads((folder / "metrics.json").read_text())["tables"]
    rows = check_scores("brain_mae", tables, {"SG-BrainMAE", "ROI mean", "static FC + linear (baseline)"},
                        {"age MAE", "age r", "sex AUROC", "state accuracy"})  # fmt: skip
    assert {r["split"] for r in rows if r["task"] == "masked ROI reconstruction"} == {
        row["data"] for row in metrics["reconstruction"]}  # fmt: skip
    (folder / "train" / "finetune-states-03" / "done.json").unlink()
    with pytest.raises(CheckpointError, match=r"finetune-states-03/done.json is missing.*--resume"):
        evaluate_run(folder)


def test_resume_after_kills_in_pretraining_and_fine_tuning(tmp_path, monkeypatch) -> None:
    """Killed in SG-BrainMAE's pretraining, then in a fine-tuning fold: each --resume continues where the run
    stopped (finished phases are reloaded, not retrained) and ends with the uninterrupted run's metrics and
    histories."""
    import brainkit.training.phase

    overrides = [
        "variants=[SG-BrainMAE]",
        "finetune_epochs=2",
        "n_eval_masks=1",
        "n_folds=2",
        "data_options.n_subjects=10",
    ]
    full = run_recipe("brain_mae", folder=tmp_path / "full", preset="testing", overrides=overrides)
    run, partial = tmp_path / "run", tmp_path / ".run.partial"
    calls: list[str] = []
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("pretrain-sg-brainmae", 2, calls))
    with pytest.raises(SimulatedKill):
        run_recipe("brain_mae", folder=run, preset="testing", overrides=overrides)
    assert (partial / "train" / "pretrain-sg-brainmae" / "state").is_dir() and not run.exists()
    with pytest.raises(ConfigError, match="interrupted run of brain_mae is at .*continue it with --resume"):
        run_recipe("brain_mae", folder=run, preset="testing", overrides=overrides)

    calls.clear()
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("finetune-subjects-03", 1, calls))
    with pytest.raises(SimulatedKill):
        run_recipe("brain_mae", folder=run, resume=True)
    finetuned = [f"finetune-subjects-{i:02d}" for i in range(1, 7)]  # age, behaviour, sex
    assert calls == ["pretrain-sg-brainmae", "real-nitime", *finetuned[:3]]
    assert (partial / "train" / "finetune-subjects-03" / "state").is_dir()

    calls.clear()
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("nothing", 1, calls))
    assert main(["run", "brain_mae", "--out", str(run), "--resume"]) == 0
    assert calls == [*finetuned[2:], "finetune-states-01", "finetune-states-02"]
    assert not partial.exists()
    assert json.loads((run / "metrics.json").read_text())["metrics"] == full.metrics
    phases = sorted(p.name for p in (full.folder / "train").iterdir())
    assert phases == sorted(p.name for p in (run / "train").iterdir()) and len(phases) == 10

    def without_seconds(history):
        return [{k: v for k, v in record.items() if k != "seconds"} for record in history]

    for phase in phases:
        resumed, whole = read_history(run / "train" / phase), read_history(full.folder / "train" / phase)
        assert whole and without_seconds(resumed) == without_seconds(whole), phase


def test_recipe_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"variants: unknown \['SG-BrainMEA'\]"):
        run_recipe("brain_mae", preset="testing", overrides=["variants=[SG-BrainMEA]"], folder=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="n_pretrain_subjects 12 must leave at least n_folds=3"):
        run_recipe("brain_mae", preset="testing", overrides=["n_pretrain_subjects=12"], folder=tmp_path / "r")
    with pytest.raises(ConfigError, match="transient_seconds=20.0 is longer than segment_seconds=15.0"):
        run_recipe("brain_mae", preset="testing", overrides=["transient_seconds=20.0"], folder=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    assert recipe_config("brain_mae", "paper").training.epochs == 1000


def test_pretraining_learns_and_is_reproducible() -> None:
    training = TrainingConfig(epochs=6, batch_size=8, lr=1e-2, warmup_epochs=0.0, progress=False, seed=5)
    train, val = correlated_windows(32, 0), correlated_windows(8, 1)
    first = pretrain(tiny(), train, training, MaskingConfig(), val_windows=val)
    again = pretrain(tiny(), train, training, MaskingConfig(), val_windows=val)
    assert [r["train_loss"] for r in first.history] == [r["train_loss"] for r in again.history]
    assert first.history[-1]["val_masked_mse"] < first.history[0]["val_masked_mse"]
    assert first.steps == 6 * 4 and [r["epoch"] for r in first.history] == [1, 2, 3, 4, 5, 6]
    plain = pretrain(tiny(), train, training, MaskingConfig(masking=False))
    assert len(plain.history) == 6
    with pytest.raises(DataError, match=r"expected windows \(n_windows, n_frames, 7 ROIs\)"):
        pretrain(tiny(), train[:, :, :5], training, MaskingConfig())


def test_pretraining_resumes_exactly(tmp_path) -> None:
    training = TrainingConfig(epochs=4, batch_size=8, lr=1e-2, progress=False, seed=2)
    train, val = correlated_windows(24, 0), correlated_windows(6, 1)
    full = tiny(dropout=0.2)
    whole = pretrain(full, train, training, MaskingConfig(), val, out_dir=tmp_path / "full")
    pretrain(
        tiny(dropout=0.2), train, training, MaskingConfig(), val, out_dir=tmp_path / "part", until_epoch=2
    )
    resumed = tiny(seed=99, dropout=0.2)  # another init: everything must come from the checkpoint
    again = pretrain(resumed, train, training, MaskingConfig(), val, out_dir=tmp_path / "part", resume=True)
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    keys = ("train_loss", "val_masked_mse", "val_visible_mse")
    assert [[r[k] for k in keys] for r in again.history] == [[r[k] for k in keys] for r in whole.history]


def pretraining_worker(fabric, out_dir: str) -> None:
    """Run by Fabric in each process of the 2-process test: pretrains a tiny BrainMAE, saves rank 0's weights."""
    model = tiny()
    training = TrainingConfig(epochs=3, batch_size=8, lr=1e-2, progress=False)
    result = pretrain(model, correlated_windows(24, 0), training, MaskingConfig(), correlated_windows(6, 1),
                      fabric=fabric)  # fmt: skip
    save_rank0(fabric, out_dir, model.state_dict(), result.history)


@pytest.mark.slow
def test_pretraining_two_gloo_processes_match_one(tmp_path) -> None:
    """Global batch 8 split over 2 gloo processes (4 windows each, masks drawn before the split) == 1 process."""
    one, two = one_and_two_processes(pretraining_worker, tmp_path)
    a, b = one["weights"], two["weights"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-5)
    for r1, r2 in zip(one["history"], two["history"], strict=True):
        assert r1["train_loss"] == pytest.approx(r2["train_loss"], rel=1e-5)
        assert r1["val_masked_mse"] == pytest.approx(r2["val_masked_mse"], rel=1e-5)


def test_fine_tuning_head_learns_a_state() -> None:
    torch.manual_seed(0)
    model = BrainMAE(model_config("brain_mae", "testing", {"n_rois": 6, "segment_frames": 5}))
    rng = np.random.default_rng(0)
    n_subjects, per = 10, 6
    groups = np.repeat(np.arange(n_subjects), per)
    labels = np.tile(np.array(["rest", "task"]), n_subjects * per // 2)
    windows = rng.standard_normal((len(labels), 5, 6)).astype(np.float32)
    windows[labels == "task", :, :2] += 1.5  # the task raises two ROIs
    before = {k: v.clone() for k, v in model.state_dict().items()}
    training = TrainingConfig(epochs=8, batch_size=16, lr=1e-2, warmup_epochs=0.0, progress=False)
    head = FinetuneHead(model, training)
    result = cross_validate(windows, labels, groups, "classification", n_folds=5, head=head)
    assert result["accuracy"] > 0.85 and result["auroc"] > 0.9
    assert all(
        torch.equal(before[k], v) for k, v in model.state_dict().items()
    )  # the pretrained model is untouched
    ages = windows[:, :, 0].mean(axis=1) * 10 + 30
    reg = cross_validate(windows, ages, groups, "regression", n_folds=5, head=head)
    assert reg["r"] > 0.5
    frozen = FinetuneHead(model, training, encoder_lr_scale=0.0)
    assert (
        cross_validate(windows, labels, groups, "classification", n_folds=5, head=frozen)["accuracy"] > 0.85
    )
    with pytest.raises(DataError, match=r"FinetuneHead: expected windows \(n, n_frames, n_rois\)"):
        head(windows[:, 0], labels, windows[:, 0], "classification", np.unique(labels))
