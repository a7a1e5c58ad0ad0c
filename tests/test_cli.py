"""End-to-end runs of the `brainkit` command on a tiny build of the built-in data (weight-free encoders)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

from brainkit.cli import main
from brainkit.config import to_dict
from brainkit.errors import DataError
from brainkit.recipes import evaluate_run, recipe_config
from brainkit.recipes.lite_mind import PRESETS

TINY_DATA = to_dict(PRESETS["testing"].data)  # nsd_like: 40 + 14 stimuli, 41 / 29 voxels, pixel targets


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """A user's config file in the old `brainkit train` layout: one decoder, data / model / ... sections."""
    folder = tmp_path_factory.mktemp("cli")
    config = {
        "data": {**TINY_DATA, "cache_dir": str(folder / "cache")},
        "model": {"name": "mindeye_mlp", "preset": "cpu_small", "options": {"hidden_dim": 32, "n_blocks": 1}},
        "objective": {"name": "infonce", "options": {"temperature": 0.1}},
        "training": {"epochs": 3, "batch_size": 32, "progress": False},
        "evaluation": {"n_way": 10, "n_draws": 5},
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_list_shows_registries(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "nsd_like",
        "nsd",
        "efficientnet_lite0",
        "clip_vit_l14",
        "lite_mind",
        "ridge",
        "mindeye_mlp",
    ):
        assert name in out
    (line,) = [line for line in out.splitlines() if line.strip().startswith("*lite_mind ") and "demo" in line]
    assert (
        "[cpu_small, cpu_small_realistic, demo, demo_realistic, nsd_subj01, nsd_subj01_released, testing]"
        in line
    )  # * = an importer


def test_train_then_eval(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_config), "--out", str(run)]) == 0
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.json", "report.html", "mindeye_mlp"}
    decoder = run / "mindeye_mlp"
    assert {p.name for p in decoder.iterdir()} == {
        "config.json", "checkpoint", "preprocess.safetensors", "history.jsonl", "metrics.json", "inputs.json",
        "target_probe.safetensors",
    }  # fmt: skip
    assert (decoder / "checkpoint" / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".*partial"))
    metrics = json.loads((decoder / "metrics.json").read_text())
    assert metrics["fmri_to_image/10way_top1_chance"] == pytest.approx(0.1)
    assert len((decoder / "history.jsonl").read_text().splitlines()) == 3
    saved = json.loads((run / "config.json").read_text())
    assert saved["recipe"] == "lite_mind" and saved["config"]["model"]["name"] == "mindeye_mlp"
    assert "MindEye MLP" in capsys.readouterr().out
    assert main(["eval", str(run)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("metrics\n") and "MindEye MLP" in table and "%" in table
    assert all(len(line) <= 120 for line in table.splitlines() if str(run) not in line)
    from brainkit.testing import report_problems

    assert report_problems(run / "eval_report.html") == []  # the same report component as the run's
    assert main(["eval", str(run), "--report", ""]) == 0 and "Report:" not in capsys.readouterr().out
    assert main(["eval", str(run), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["MindEye MLP"]
    assert again == pytest.approx({k: v for k, v in metrics.items() if k in again})
    assert again["fmri_to_image/top1"] == metrics["fmri_to_image/top1"]
    # a decoder's own config.json is a config file for brainkit train / run --config
    assert main(["train", str(decoder / "config.json"), "--out", str(tmp_path / "again")]) == 0
    redone = json.loads((tmp_path / "again" / "mindeye_mlp" / "metrics.json").read_text())
    assert redone["fmri_to_image/10way_top1_mean"] == metrics["fmri_to_image/10way_top1_mean"]


def test_eval_on_other_subject_raises(tiny_config, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(tiny_config), "--out", str(run), "--set", "training.epochs=1"]) == 0
    saved = json.loads((run / "config.json").read_text())
    saved["config"]["data"]["subject"] = "subj05"  # 29 voxels, the checkpoint has 41
    (run / "config.json").write_text(json.dumps(saved))
    with pytest.raises(DataError, match="29 features, but the standardizer was fitted on 41"):
        evaluate_run(run)


def test_bad_input_gives_clear_error_and_no_folder(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_config), "--out", str(run), "--set", "data.subject=subj03"]) == 2
    assert "Unknown subject 'subj03'" in capsys.readouterr().err
    assert not run.exists() and not list(tmp_path.iterdir())
    assert main(["train", str(tiny_config), "--out", str(run), "--set", "data.target=clipp"]) == 2
    assert "Unknown encoder 'clipp'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    assert main(["train", "no_such_preset"]) == 2
    assert "Recipe 'lite_mind' has no preset 'no_such_preset'" in capsys.readouterr().err
    assert main(["train", "cpu_smal"]) == 2
    assert "Did you mean 'cpu_small'?" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml does not exist" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "missing does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty")]) == 2
    assert "not a brainkit run folder" in capsys.readouterr().err


def test_every_lite_mind_preset_parses():
    for name in PRESETS:
        config = recipe_config("lite_mind", name)
        assert config == PRESETS[name]
    assert recipe_config("lite_mind", "nsd_subj01").evaluation.n_way == 300
    assert recipe_config("lite_mind", "demo", ["training.epochs=5"]).training.epochs == 5


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    """The demo command on the tiny data: table printed, report and per-method runs written."""
    overrides = {
        "data.options": json.dumps(TINY_DATA["options"]),
        "data.target": TINY_DATA["target"],
        "training.epochs": "2",
        "training.progress": "false",
        "evaluation.n_way": "10",
        # the MLP's own training changes (30 epochs at 3e-4 in the preset), shortened
        "baselines": "[{name: ridge, label: Ridge}, {name: mindeye_mlp, preset: cpu_small, label: MindEye MLP,"
        " training: {epochs: 2, lr: 3.0e-4}}]",
    }
    folder = tmp_path / "demo"
    args = ["demo", "--out", str(folder), "--cache-dir", str(tmp_path / "cache")]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Lite-Mind" in out and "Ridge" in out and "MindEye MLP" in out and "10-way chance" in out
    # tables split, notes wrapped (only a long run-folder path may exceed the width)
    assert max(len(line) for line in out.splitlines() if str(folder) not in line) <= 120
    assert "fMRI → image top-1" in out and "%" in out  # the report's labels, shares as percentages
    assert (folder / "report.html").is_file() and (folder / "report_retrieval.png").is_file()
    from brainkit.testing import report_problems

    assert report_problems(folder / "report.html") == []
    assert (
        len(list(folder.glob("report_where_each_decoder_reads_from_*fsaverage5.png"))) == 1
    )  # the brain map
    assert {"lite_mind", "ridge", "mindeye_mlp"} <= {p.name for p in folder.iterdir()}
    saved = json.loads((folder / "metrics.json").read_text())
    rows = saved["tables"]["fMRI-to-image retrieval"]
    assert [r["method"] for r in rows] == ["Lite-Mind", "Ridge", "MindEye MLP"]
    assert all(np.isfinite(r["fmri->image 10-way"]) for r in rows)
    assert len((folder / "mindeye_mlp" / "history.jsonl").read_text().splitlines()) == 2
    assert any("Lite-Mind reaches" in note for note in saved["notes"])


def test_version_and_did_you_mean_for_commands(capsys):
    from brainkit import __version__
    from brainkit.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"brainkit {__version__}"
    assert main(["evl", "runs/x"]) == 2
    assert "unknown command 'evl'. Did you mean 'eval'?" in capsys.readouterr().err
    assert main(["-v", "predcit"]) == 2
    assert "Did you mean 'predict'?" in capsys.readouterr().err


def test_tables_split_into_blocks_that_fit_the_terminal():
    from brainkit.report.terminal import format_table, metrics_tables

    rows = [
        {"method": f"m{i}", **{f"a_long_metric_name_{j}": 0.5 + i + j for j in range(12)}} for i in range(3)
    ]
    text = format_table(rows)
    assert all(len(line) <= 120 for line in text.splitlines())
    blocks = text.split("\n\n")
    assert len(blocks) > 1 and all(block.startswith("method") for block in blocks)
    assert sum(block.splitlines()[0].count("a long metric name ") for block in blocks) == 12
    shares = format_table(
        [{"method": "lite_mind", "fmri_to_image/300way_top1": 0.25, "top1_chance": 1 / 300}]
    )
    assert re.split(r"\s{2,}", shares.splitlines()[0])[:2] == ["method", "fMRI → image, 300-way top-1"]
    assert "25.0%" in shares and "0.33%" in shares and "Lite-Mind" in shares  # the labels report.html shows
    tables = metrics_tables({"rows": [{"method": "x", "mAP": 0.3}], "A": {"top1": 0.1}, "B": {"top1": 0.2},
                             "n_subjects": 4, "categories": ["cat", "dog"]})  # fmt: skip
    assert tables == {"rows": [{"method": "x", "mAP": 0.3}],
                      "metrics": [{"method": "A", "top1": 0.1}, {"method": "B", "top1": 0.2}],
                      "summary": [{"n_subjects": 4}]}  # fmt: skip


OUT_OF_RANGE = [
    ("training.epochs=0", "training.epochs=0 is out of range: allowed x >= 1"),
    ("training.epochs=-1", "training.epochs=-1 is out of range"),
    ("training.batch_size=-5", "training.batch_size=-5 is out of range"),
    ("training.batch_size=0", "training.batch_size=0 is out of range"),
    ("training.checkpoint_every=0", "training.checkpoint_every=0 is out of range"),
    ("training.lr=.nan", "training.lr=nan is out of range: allowed a finite x > 0"),
    ("training.lr=1e-4x", "training.lr: expected a number, found str '1e-4x'"),
    ("training.threads=-1", "training.threads=-1 is out of range: allowed x >= 0"),
    ("baselines=[{name: mindeye_mlp, options: {input_dropout: 1.5}}]",
     "baselines[0].options (mindeye_mlp).input_dropout=1.5 is out of range: allowed 0 <= x < 1"),
    ("baselines=[{name: mindeye_mlp, options: {hidden_dim: 0}}]", ".hidden_dim=0 is out of range: allowed x >= 1"),
    ("model.options.fremlp=ful", "model.options (lite_mind).fremlp='ful' is not allowed"),
    ("evaluation.n_way=0", "evaluation.n_way=0 is out of range: allowed x >= 2"),
    ("data.val_fraction=1", "data.val_fraction=1.0 is out of range"),
    ("data.options.foo=1", "data.options: dataset 'nsd_like' takes no option(s) ['foo']"),
    ("data.encoder_options.foo=1", "data.encoder_options: encoder 'pixel_projection' takes no option(s) ['foo']"),
    ("model.name=typo", "Unknown model 'typo'"),
    ("training.epochs=[1,", "Override 'training.epochs=[1,' is not valid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "message"), OUT_OF_RANGE, ids=[o for o, _ in OUT_OF_RANGE])
def test_out_of_range_settings_fail_in_one_line_before_any_data(
    override, message, tmp_path, capsys, monkeypatch
):
    import brainkit.recipes.lite_mind as lite_mind

    def no_data(*args, **kwargs):
        raise AssertionError("the data were built before the config was checked")

    monkeypatch.setattr(lite_mind, "prepare_data", no_data)
    run = tmp_path / "run"
    assert main(["run", "lite_mind", "--preset", "testing", "--out", str(run), "--set", override]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())  # no run folder, no partial folder


def test_a_yaml_alias_bomb_fails_fast(tmp_path, capsys):
    from brainkit.testing import write_alias_bomb

    bomb = write_alias_bomb(tmp_path / "bomb.yaml")
    assert main(["train", str(bomb), "--out", str(tmp_path / "run")]) == 2
    assert "expands to more than 100,000 values" in capsys.readouterr().err
