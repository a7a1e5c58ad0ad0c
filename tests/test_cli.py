"""End-to-end runs of the `brainkit` command on a tiny build of the built-in data (weight-free encoders)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from brainkit.cli import main
from brainkit.errors import DataError
from brainkit.pipeline import evaluate_run, load_run_config

TINY_DATA = {
    "name": "nsd_like",
    "subject": "subj01",
    "target": "pixel_projection",
    "options": {
        "subjects": ["subj01", "subj05"],
        "n_train_stimuli": 40,
        "n_test_stimuli": 14,
        "features": {
            "low": ["pixel_projection", {"dim": 24, "grid": 4}],
            "high": ["pixel_projection", {"dim": 24, "grid": 4}],
            "semantic": ["hashed_words", {"dim": 16}],
        },
        "n_components": {"low": 4, "high": 6, "semantic": 3},
        "n_voxels": {"subj01": 41, "subj05": 29},
        "image_size": 64,
        "median_snr": 1.5,
    },
}


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
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
    assert "nsd_subj01" in out and "lite_mind_demo" in out


def test_train_then_eval(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_config), "--out", str(run)]) == 0
    assert {p.name for p in run.iterdir()} >= {"config.json", "checkpoint", "metrics.json", "history.jsonl"}
    assert (run / "checkpoint" / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".*partial"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["fmri_to_image/10way_top1_chance"] == pytest.approx(0.1)
    assert len((run / "history.jsonl").read_text().splitlines()) == 3
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["fmri_to_image/top1"] == pytest.approx(metrics["fmri_to_image/top1"])


def test_eval_on_other_subject_raises(tiny_config, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(tiny_config), "--out", str(run), "--set", "training.epochs=1"]) == 0
    config = json.loads((run / "config.json").read_text())
    config["data"]["subject"] = "subj05"  # 29 voxels, the checkpoint has 41
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="29 features, but the standardizer was fitted on 41"):
        evaluate_run(run)


def test_bad_input_gives_clear_error_and_no_folder(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_config), "--out", str(run), "--set", "data.subject=subj03"]) == 2
    assert "Unknown subject 'subj03'" in capsys.readouterr().err
    assert not run.exists() and not list(tmp_path.iterdir())
    assert main(["train", str(tiny_config), "--out", str(run), "--set", "data.target=clipp"]) == 2
    assert "Unknown encoder 'clipp'" in capsys.readouterr().err
    assert main(["train", "no_such_preset"]) == 2
    assert "neither a config file nor a preset" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "not a brainkit run folder" in capsys.readouterr().err


def test_every_shipped_preset_parses():
    from brainkit.pipeline import preset_names

    for name in preset_names():
        config = load_run_config(name)
        assert config.evaluation.n_way == 300


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    """The demo command on the tiny data: table printed, report and per-method runs written."""
    overrides = {
        "data.options": json.dumps(TINY_DATA["options"]),
        "data.target": TINY_DATA["target"],
        "training.epochs": "2",
        "training.progress": "false",
        "evaluation.n_way": "10",
    }
    args = ["demo", "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    code = main(args)
    assert code == 0
    out = capsys.readouterr().out
    assert "Lite-Mind" in out and "Ridge" in out and "MindEye MLP" in out and "10-way chance" in out
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("demo-")]
    assert (folder / "report.html").is_file() and (folder / "report_retrieval.png").is_file()
    assert {"lite_mind", "ridge", "mindeye_mlp"} <= {p.name for p in folder.iterdir()}
    rows = json.loads((folder / "metrics.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["Lite-Mind", "Ridge", "MindEye MLP"]
    assert all(np.isfinite(r["fmri->image 10-way"]) for r in rows)
