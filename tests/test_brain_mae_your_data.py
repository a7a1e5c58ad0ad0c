"""BrainMAE on your own ROI tables: a `roi_tables` folder (XCP-D-style, sampled from the built-in cohort) is read
with its checks, trains `brainkit run brain_mae`, is re-evaluated to the same metrics, and the run encodes a new
series exactly as its evaluation did; what is malformed or missing is an error that names the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import brainkit
from brainkit.cli import main
from brainkit.data import load_dataset
from brainkit.errors import ConfigError, DataError
from brainkit.recipes import run_recipe
from brainkit.testing_rois import ATLAS, TASK, write_roi_tables

N_SUBJECTS, ROI_STEP, REST_S, TASK_S = 10, 4, 120.0, 90.0
RUN = ["--preset", "testing", "--set", "data.name=roi_tables", "--set", "real_sources=[]",
       "--set", "variants=[SG-BrainMAE]", "--set", "n_eval_masks=1", "--set", "finetune_epochs=0"]  # fmt: skip


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    root = tmp_path_factory.mktemp("rois") / "derivatives"
    return write_roi_tables(
        root, n_subjects=N_SUBJECTS, rest_seconds=REST_S, task_seconds=TASK_S, roi_step=ROI_STEP
    )


@pytest.fixture(scope="module")
def folder(example):
    return example.root


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mine"
    assert main(["run", "brain_mae", *RUN, "--set", f"data.options.root={folder}", "--out", str(out)]) == 0
    return brainkit.load(out)


def table(root, subject: str, task: str = "rest"):
    return root / subject / "func" / f"{subject}_task-{task}_atlas-{ATLAS}_timeseries.tsv"


def test_the_folder_reads_as_the_cohort_it_came_from(example, folder) -> None:
    cohort = load_dataset("roi_tables", root=str(folder))
    truth, keep = example.cohort, example.keep
    assert truth.name == "hcp_cohort" and keep.tolist() == list(range(0, 100, ROI_STEP))
    assert cohort.design == "cohort" and cohort.subjects == truth.subjects and cohort.tr == 0.72
    assert cohort.roi_names == [truth.roi_names[i] for i in keep] and cohort.networks == [
        truth.networks[i] for i in keep
    ]
    for kind in ("rest", "task"):
        for mine, real in zip(cohort.runs_of(kind), truth.runs_of(kind), strict=True):
            assert mine.subject == real.subject and mine.info["task"] == ("rest" if kind == "rest" else TASK)
            np.testing.assert_array_equal(mine.states, real.states)  # from events.tsv, per frame
            np.testing.assert_allclose(mine.values, real.values[:, keep], atol=2e-5)  # z-scored back
    assert cohort.info["phenotypes"] == {"age": "numeric", "sex": "categorical", "behaviour": "numeric",
                                         "site": "categorical"}  # fmt: skip
    assert cohort.phenotypes["sex"].dtype.kind == "U" and set(cohort.phenotypes["sex"]) == {"F", "M"}
    np.testing.assert_allclose(cohort.phenotype("age", cohort.subjects), truth.phenotypes["age"], atol=0.005)
    picked = load_dataset("roi_tables", root=str(folder), tasks=["rest"], subjects=["sub-001", "002"],
                          phenotypes=["age"])  # fmt: skip
    assert picked.subjects == ["sub-001", "sub-002"] and sorted(picked.phenotypes) == ["age", "subject"]
    assert {r.run for r in picked.runs} == {"rest"}
    with pytest.raises(
        DataError, match=r"subjects \['sub-042'\] have no Schaefer100 tables under .*; it has \['sub-000'"
    ):
        load_dataset("roi_tables", root=str(folder), subjects=["sub-001", "sub-042"])
    with pytest.raises(
        DataError, match=r"no Schaefer100 tables of tasks \['rets'\] .*its tasks: \['motorwm', 'rest'\]"
    ):
        load_dataset("roi_tables", root=str(folder), tasks=["rets"])


def test_run_eval_and_predict_on_your_tables(run, folder, tmp_path, capsys) -> None:
    from brainkit.evaluation.downstream import ridge_head, subject_features
    from brainkit.recipes.brain_mae.predict import apply_head, fit_head
    from brainkit.recipes.brain_mae.protocol import cohort_data

    assert run.config.data == "roi_tables" and run.config.data_options == {"root": str(folder)}
    metrics = run.metrics
    assert [row["method"] for row in metrics["downstream"]] == [
        "SG-BrainMAE", "static FC + linear (baseline)"]  # fmt: skip
    row = metrics["downstream"][0]
    assert {"age r", "behaviour MAE", "sex AUROC", "state accuracy"} <= set(row)
    assert metrics["reconstruction"][0]["data"] == "roi_tables (unseen subjects)"
    capsys.readouterr()
    assert main(["eval", str(run.folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics
    # predict: the evaluation's own rows, bit for bit (file or array: the same reading and z-scoring)
    data = cohort_data(run.config)
    _, model = run.predictor._model(None)
    evaluated = subject_features(model, data.rest, data.n_frames)
    for i, subject in enumerate(data.downstream):
        np.testing.assert_array_equal(run.predict(table(folder, subject)), evaluated[i : i + 1])
    subject = data.downstream[-1]
    raw = pd.read_csv(table(folder, subject), sep="\t").to_numpy(np.float32)
    np.testing.assert_array_equal(run.predict(raw), evaluated[-1:])
    assert run.predict(raw, output="tokens").shape == (2, 4, 25, 8)  # half-overlapping 4-segment windows
    assert run.predict(raw, output="features").shape == (2, 2 * 25 * 8)
    # the saved heads: the downstream ridge head fitted on every downstream subject
    for name, (values, task) in data.targets.items():
        classes = None if task == "regression" else np.unique(values)
        x = evaluated.astype(np.float64)  # what cross_validate gives the ridge head
        expected = ridge_head(x, values, x[-1:], task, classes)
        got = run.predictor.phenotypes(raw)[name]
        got = np.array([got]) if task == "regression" else np.array([[got[c] for c in classes]])
        np.testing.assert_allclose(got, expected, rtol=1e-9)
        fitted = apply_head(fit_head(x, values, task), x, task)
        np.testing.assert_allclose(fitted, ridge_head(x, values, x, task, classes), rtol=1e-9)
    out = tmp_path / "emb.npy"
    assert main(["predict", str(run.folder), "--input", str(table(folder, subject)), "--out", str(out)]) == 0
    np.testing.assert_array_equal(np.load(out), evaluated[-1:])
    assert json.loads(out.with_suffix(".json").read_text()) == run.predictor.phenotypes(raw)
    assert "Predicted phenotypes (age, behaviour, sex)" in capsys.readouterr().out


def test_predict_says_what_differs(run, folder, tmp_path) -> None:
    raw = pd.read_csv(table(folder, "sub-009"), sep="\t")
    with pytest.raises(
        DataError, match=r"the input has 24 ROI columns; this run was trained on 25 ROIs of roi_tables"
    ):
        run.predict(raw.to_numpy()[:, 1:])
    renamed = tmp_path / "renamed.tsv"
    raw.rename(columns={raw.columns[3]: "Visual_999"}).to_csv(renamed, sep="\t", index=False)
    with pytest.raises(
        DataError, match=rf"column 3 is 'Visual_999' where the run's ROI 3 is '{raw.columns[3]}'"
    ):
        run.predict(renamed)
    with pytest.raises(DataError, match=r"has 50 frames; the run's windows need 84"):
        run.predict(raw.to_numpy()[:50])
    with pytest.raises(ConfigError, match="no variant 'AG-BrainMAE'; its variants: \\['SG-BrainMAE'\\]"):
        run.predict(raw.to_numpy(), decoder="AG-BrainMAE")


def test_what_the_recipe_needs_is_said(folder, tmp_path) -> None:
    out = tmp_path / "r"
    with pytest.raises(
        ConfigError, match=r"dataset 'roi_tables' needs data.options.root \(e.g. --set data.options.root"
    ):
        run_recipe("brain_mae", preset="roi_tables", folder=out)
    root = [f"data.options.root={folder}"]
    for overrides, error, message in [
        (["regression_targets=[iq]"], ConfigError, r"regression_targets names 'iq', which roi_tables has no column for; its phenotypes: \['age', 'sex'"),
        (["regression_targets=[age, sex]", "classification_targets=[]"], ConfigError, "phenotype 'sex' of roi_tables is categorical"),
        (["n_segments=20"], DataError, r"sub-004_task-rest_atlas-Schaefer100_timeseries.tsv has 167 frames \(120 s\); an evaluation window needs 420"),
        (["data.options.tasks=[rest]"], DataError, "has no task runs among the downstream subjects.*or set states=false"),
        (["data.options.atlas=Gordon333"], ConfigError, r"no tables of atlas 'Gordon333' under .*; it holds \['Schaefer100'\]"),
        (["data.options.root_dir=x"], ConfigError, "takes no option"),
        (["data.name=nsd_like"], ConfigError, r"reads cohort datasets; 'nsd_like' is a 'trials' dataset"),
    ]:  # fmt: skip
        with pytest.raises(error, match=message):
            run_recipe("brain_mae", preset="testing", overrides=["data.name=roi_tables", "real_sources=[]", *root, *overrides],
                       folder=out)  # fmt: skip
        assert not out.exists()


def _edit_tsv(path, change) -> None:
    frame = pd.read_csv(path, sep="\t", dtype={"participant_id": str}, keep_default_na=False)
    change(frame).to_csv(path, sep="\t", index=False)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: _edit_tsv(table(r, "sub-003"), lambda f: f.iloc[:, 1:]), r"sub-003_task-rest_atlas-Schaefer100_timeseries.tsv has 24 ROIs where .*atlas-Schaefer100_dseg.tsv has 25"),
        (lambda r: _edit_tsv(table(r, "sub-003"), lambda f: f.rename(columns={f.columns[2]: "Limbic_1"})), r"sub-003_task-rest.* has column 2 'Limbic_1' where .*_dseg.tsv has 'Visual_008'"),
        (lambda r: table(r, "sub-002").with_suffix(".json").write_text('{"RepetitionTime": 1.0}'), r"sub-002_task-rest_atlas-Schaefer100_timeseries.tsv has TR 1.0 s, .* 0.72 s; runs must share one TR"),
        (lambda r: table(r, "sub-002").with_suffix(".json").unlink(), r"sub-002_task-rest_atlas-Schaefer100_timeseries.tsv has no TR: write sub-002_task-rest_atlas-Schaefer100_timeseries.json with RepetitionTime"),
        (lambda r: _edit_tsv(r / "participants.tsv", lambda f: f[f.participant_id != "sub-005"]), r"subjects \['sub-005'\] have runs \(.*sub-005_task-.*\) but no row in .*participants.tsv"),
        (lambda r: _edit_tsv(r / "participants.tsv", lambda f: f.assign(age=["n/a", *f.age[1:]])), r"phenotype 'age' is missing \(n/a or empty\) for \['sub-000'\]. Fill those values, read other columns \(phenotypes="),
        (lambda r: (r / "sub-001" / "func" / f"sub-001_task-{TASK}_events.tsv").unlink(), rf"sub-001_task-{TASK}_atlas-Schaefer100_timeseries.tsv is a task run \(task-{TASK}\) without events: write .*sub-001_task-{TASK}_events.tsv"),
        (lambda r: _edit_tsv(r / "sub-001" / "func" / f"sub-001_task-{TASK}_events.tsv", lambda f: f.assign(duration=f.duration * 3)), r"events 0 and 1 \('\w+', '\w+'\) both cover the frame at 43.20 s"),
        (lambda r: _edit_tsv(table(r, "sub-004"), lambda f: f.assign(**{f.columns[5]: [np.nan, *f.iloc[1:, 5]]})), r"sub-004_task-rest_atlas-Schaefer100_timeseries.tsv: .*values contain NaN or inf \(ROI columns \[5\]"),
        (lambda r: _edit_tsv(table(r, "sub-004"), lambda f: f.assign(**{f.columns[0]: "x"})), r"sub-004_task-rest_atlas-Schaefer100_timeseries.tsv: columns \['Visual_000'\] are not numeric"),
    ],
    ids=["roi_count", "roi_name", "tr", "no_tr", "no_phenotypes", "missing_value", "no_events", "overlapping_events",
         "nan", "text_column"],
)  # fmt: skip
def test_reader_errors_name_the_file(folder, tmp_path, edit, message) -> None:
    root = tmp_path / "copy"
    shutil.copytree(folder, root)
    edit(root)
    with pytest.raises((DataError, ConfigError), match=message):
        load_dataset("roi_tables", root=str(root))


def test_npy_tables_take_names_from_the_atlas_table(folder, tmp_path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(folder, root)
    path = table(root, "sub-003")
    np.save(path.with_suffix(".npy"), pd.read_csv(path, sep="\t").to_numpy(np.float32))
    path.unlink()
    cohort = load_dataset("roi_tables", root=str(root))
    assert cohort.runs_of("rest", ["sub-003"])[0].roi_names == cohort.roi_names
    (root / f"atlas-{ATLAS}_dseg.tsv").unlink()
    with pytest.raises(
        DataError,
        match=r"sub-003_task-rest_atlas-Schaefer100_timeseries.npy has column 0 'roi000' .*a \.npy table has no names: give labels=FILE",
    ):
        load_dataset("roi_tables", root=str(root))
    shutil.rmtree(root / "sub-003")
    without = load_dataset("roi_tables", root=str(root))
    assert without.networks is None and without.info["subjects_without_runs"] == ["sub-003"]
    assert "sub-003" not in without.subjects
    picked = load_dataset("roi_tables", root=str(root), subjects=["sub-001", "sub-002"])
    assert picked.info["subjects_without_runs"] == []
