"""The adaptation recipe (testing preset, seconds): end to end with its table and page, ``brainkit eval`` equal to
the run, only the new subject's Linear trained while adapting (the backbone unchanged), adapt and scratch on the
same k trials, resume after a kill, and clear errors for bad settings; the shared-subject model's subject
handling; the interval's known answer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import brainkit.recipes.adaptation as adaptation
from brainkit.errors import ConfigError, DataError
from brainkit.recipes import evaluate_run, run_recipe
from brainkit.recipes.adaptation.tasks import AdaptTask, PretrainTask, trial_rows
from brainkit.report.adaptation import interval

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One testing run, with every phase's task and its weights before and after training recorded."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("adaptation") / "run"
    real, seen = adaptation.train_phase, []

    def spy(task, config, where, resume=False, **kwargs):
        before = {k: v.clone() for k, v in task.state_dict().items()}
        result = real(task, config, where, resume, **kwargs)
        seen.append((where, task, before, {k: v.clone() for k, v in task.state_dict().items()}))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(adaptation, "train_phase", spy)
        result = run_recipe("adaptation", folder=folder, preset="testing")
    return folder, result, seen


def test_run_writes_the_curve_table_and_page(run) -> None:
    folder, result, _ = run
    rows = list(csv.DictReader((folder / "curve.csv").open()))
    assert [(r["method"], int(r["k"])) for r in rows] == [
        (m, k) for m in ("adapt", "scratch") for k in (10, 30, 120)
    ]
    assert [float(r["minutes"]) for r in rows[:3]] == [0.67, 2.0, 8.0]  # k x 4 s / 60
    for row in rows:
        assert float(row["top1_low"]) <= float(row["top1_mean"]) <= float(row["top1_high"])
        assert float(row["top1_chance"]) == pytest.approx(1 / 14) and float(row["10way_top1_chance"]) == 0.1
    page = (folder / "report.html").read_text()
    assert "Accuracy against k" in page and "data:image/png;base64" in page and "scan-minutes" in page
    metrics = result.metrics
    assert metrics["target_subject"] == "subj05" and metrics["pretraining_subjects"] == ["subj01", "subj02"]
    assert len(metrics["cells"]) == 2 * 3 * 2 and result.notes[0].startswith("At the smallest k (10 trials")


def test_eval_recomputes_the_run_metrics_from_the_checkpoints(run) -> None:
    folder, _, _ = run
    saved = json.loads((folder / "metrics.json").read_text())["metrics"]
    assert json.loads(json.dumps(evaluate_run(folder))) == saved
    cell = json.loads((folder / "k00030_seed1" / "scores.json").read_text())
    assert cell["adapt"] == saved["cells"]["adapt/k=30/seed=1"]


def test_adapting_trains_only_the_new_subjects_linear(run) -> None:
    _, _, seen = run
    (pretrained,) = [after for _, task, _, after in seen if isinstance(task, PretrainTask)]
    adapted = [(task, before, after) for _, task, before, after in seen if isinstance(task, AdaptTask)]
    assert len(adapted) == 6
    for task, before, after in adapted:
        trainable = {id(p) for p in task.parameters() if p.requires_grad}
        assert trainable == {id(p) for p in task.model.adapters.parameters()}
        assert {id(p) for group in task.parameter_groups() for p in group["params"]} == trainable
        backbone = [k for k in after if k.startswith("model.backbone.")]
        assert backbone and all(
            torch.equal(after[k], pretrained[k]) for k in backbone
        )  # the pretrained weights
        assert all(torch.equal(after[k], before[k]) for k in after if not k.startswith("model.adapters."))
        assert not torch.equal(after["model.adapters.subj05.weight"], before["model.adapters.subj05.weight"])


def test_adapt_and_scratch_see_the_same_k_trials(run) -> None:
    folder, _, seen = run
    by_cell = {}
    for where, task, _, _ in seen:
        if not isinstance(task, PretrainTask):
            by_cell.setdefault(where.parent.name, {})[where.name] = task
    assert len(by_cell) == 6
    for name, tasks in by_cell.items():
        assert torch.equal(tasks["adapt"].x, tasks["scratch"].x) and torch.equal(
            tasks["adapt"].y, tasks["scratch"].y
        )
        rows = json.loads((folder / name / "trials.json").read_text())["rows"]
        assert len(tasks["scratch"].x) == len(rows) == int(name[1:6])
    assert not torch.equal(by_cell["k00010_seed0"]["adapt"].x, by_cell["k00010_seed1"]["adapt"].x)


def test_resumed_after_a_kill_ends_where_the_run_does(run, tmp_path, monkeypatch) -> None:
    from brainkit.testing import SimulatedKill, killing_train

    _, result, _ = run
    calls: list[str] = []
    monkeypatch.setattr("brainkit.training.phase.train", killing_train("SupervisedTask", 1, calls))
    with pytest.raises(SimulatedKill):
        run_recipe("adaptation", folder=tmp_path / "run", preset="testing")
    monkeypatch.undo()
    resumed = run_recipe("adaptation", folder=tmp_path / "run", resume=True)

    def scores(metrics):
        return {
            key: {m: v for m, v in cell.items() if m != "train_s"} for key, cell in metrics["cells"].items()
        }

    assert calls == ["PretrainTask", "AdaptTask", "SupervisedTask"]
    assert scores(resumed.metrics) == scores(result.metrics)


def test_trial_draws_are_seeded_and_nested() -> None:
    small, large = trial_rows(120, 10, seed=3), trial_rows(120, 30, seed=3)
    assert np.array_equal(small, trial_rows(120, 10, seed=3)) and set(small) <= set(large)
    assert len(set(large)) == 30 and not np.array_equal(small, trial_rows(120, 10, seed=4))


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            ["adaptation.k=[10, 500]"],
            DataError,
            r"adaptation.k=\[500\] exceeds the 120 training trials of the held",
        ),
        (
            ["adaptation.target_subject=subj09"],
            ConfigError,
            "target_subject='subj09' is not a subject of the data",
        ),
        (
            ["data.options.subjects=[subj01]"],
            ConfigError,
            "needs at least 2 subjects .* has 1: \\['subj01'\\]",
        ),
        (["adaptation.k=[0]"], ConfigError, "each k must be a number of trials >= 1 or 'all'"),
        (["adaptation.k=[most]"], ConfigError, "each k must be a number of trials >= 1 or 'all'"),
        (["adaptation.seeds=[1, 1]"], ConfigError, "give one or more distinct seeds"),
        (["model.name=shared_subject"], ConfigError, "name a decoder"),
    ],
)
def test_bad_settings_raise_clearly_and_leave_nothing(overrides, error, message, tmp_path) -> None:
    with pytest.raises(error, match=message):
        run_recipe("adaptation", folder=tmp_path / "run", preset="testing", overrides=overrides)
    assert not list(tmp_path.iterdir())


def test_interval_known_answer() -> None:
    mean, low, high = interval([1.0, 2.0, 3.0])
    assert (
        mean == 2.0
        and high - mean == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
        and mean - low == high - mean
    )
    assert interval([0.5]) == (0.5, None, None)


def test_shared_subject_names_and_indices() -> None:
    from brainkit.models import build_model, model_config

    config = model_config("shared_subject", "testing", {"n_voxels": {"a": 5, "b": 7}}, output_shape=(3,))
    model = build_model("shared_subject", config).eval()
    x = torch.randn(4, 7)
    assert torch.equal(model(x, "b"), model(x, 1)) and torch.equal(
        model(x, torch.ones(4, dtype=torch.long)), model(x, "b")
    )
    with pytest.raises(DataError, match="no subject 'c'; this model has \\['a', 'b'\\]"):
        model(x, "c")
    with pytest.raises(DataError, match="one subject per batch, found indices \\[0, 1\\]"):
        model(x, torch.tensor([0, 1, 1, 1]))
    with pytest.raises(
        DataError, match="expects input of shape \\(batch, 5\\) voxels for subject 'a', found \\(4, 7\\)"
    ):
        model(x, "a")
