"""The recipe runner: presets, config files and overrides, whole-or-absent run folders locked while written,
resume and re-evaluation (or clear refusals), the `brainkit run` command, report extras."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from brainkit.cli import main
from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.recipes import RecipeOutput, evaluate_run, recipe_config, run_recipe
from brainkit.registry import RECIPES
from brainkit.report.html import write_report


@dataclass(frozen=True)
class EchoConfig:
    value: float = 1.0
    fail: bool = False
    nested: bool = False  # start a second run into the same folder from inside this one


@RECIPES.register("echo_for_tests", help="test-only recipe: reports its value")
class EchoRecipe:
    Config = EchoConfig
    PRESETS = {"cpu_small": EchoConfig(), "testing": EchoConfig(value=2.5)}

    def run(self, config: EchoConfig, folder) -> RecipeOutput:
        (folder / "artefact.txt").write_text("half-written")
        if config.fail:
            raise RuntimeError("boom")
        notes = ["a note"]
        if config.nested:  # a second run into the same folder while this one writes it
            try:
                run_recipe("echo_for_tests", folder=folder.parent / folder.name[1:].removesuffix(".partial"))
            except ConfigError as err:
                notes.append(f"refused: {err}")
        return RecipeOutput({"Echo": [{"method": "echo", "value": config.value}]}, notes, {"v": config.value})


def test_config_preset_and_override() -> None:
    assert recipe_config("echo_for_tests").value == 1.0
    assert recipe_config("echo_for_tests", "testing", ["value=4"]).value == 4.0
    with pytest.raises(ConfigError, match="no preset 'paper'. Presets: cpu_small, testing"):
        recipe_config("echo_for_tests", "paper")
    with pytest.raises(ConfigError, match="no preset 'testin'. Did you mean 'testing'"):
        recipe_config("echo_for_tests", "testin")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['vlaue'\]"):
        recipe_config("echo_for_tests", overrides=["vlaue=3"])
    with pytest.raises(ConfigError, match="Unknown recipe 'echo_for_test'. Did you mean 'echo_for_tests'"):
        recipe_config("echo_for_test")


def test_run_writes_whole_folder(tmp_path) -> None:
    result = run_recipe("echo_for_tests", folder=tmp_path / "run", preset="testing")
    assert result.tables["Echo"][0]["value"] == 2.5
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["metrics"] == {"v": 2.5} and saved["notes"] == ["a note"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["value"] == 2.5
    with pytest.raises(ConfigError, match="already exists"):
        run_recipe("echo_for_tests", folder=tmp_path / "run")


def test_failed_run_leaves_nothing(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        run_recipe("echo_for_tests", folder=tmp_path / "run", overrides=["fail=true"])
    assert list(tmp_path.iterdir()) == []


def test_cli_run_prints_tables(tmp_path, capsys) -> None:
    assert main(["run", "echo_for_tests", "--out", str(tmp_path / "r"), "--set", "value=7"]) == 0
    out = capsys.readouterr().out
    assert "Echo" in out and re.search(r"^echo +7$", out, re.M) and "a note" in out
    assert main(["run", "echo_for_tests", "--preset", "nope", "--out", str(tmp_path / "s")]) == 2
    assert "no preset 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "echo_for_tests", "--preset", "testing", "--config", "x.yaml"])
    assert "not allowed with argument --preset" in capsys.readouterr().err


def test_config_files_yaml_json_and_run_config(tmp_path) -> None:
    (tmp_path / "echo.yaml").write_text("value: 3\n")
    assert recipe_config("echo_for_tests", config_file=tmp_path / "echo.yaml", overrides=["fail=true"]) == (
        EchoConfig(value=3.0, fail=True)
    )
    (tmp_path / "echo.json").write_text(json.dumps({"value": 1e-05}))
    assert recipe_config("echo_for_tests", config_file=tmp_path / "echo.json").value == 1e-05
    run_recipe("echo_for_tests", folder=tmp_path / "run", preset="testing")
    assert recipe_config("echo_for_tests", config_file=tmp_path / "run" / "config.json").value == 2.5
    with pytest.raises(ConfigError, match="a config of recipe 'echo_for_tests', not 'lite_mind'"):
        recipe_config("lite_mind", config_file=tmp_path / "run" / "config.json")
    with pytest.raises(ConfigError, match="a preset or a config file, not both"):
        recipe_config("echo_for_tests", "testing", config_file=tmp_path / "echo.yaml")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['vlue'\]"):
        (tmp_path / "bad.yaml").write_text("vlue: 3\n")
        recipe_config("echo_for_tests", config_file=tmp_path / "bad.yaml")


def test_second_run_into_a_locked_folder_refuses(tmp_path) -> None:
    """A run started while another writes the same folder refuses, and the first one finishes unharmed."""
    result = run_recipe("echo_for_tests", folder=tmp_path / "run", overrides=["nested=true"])
    assert result.notes[1].startswith("refused: ")
    assert ".run.partial is being written by another run (its lock is held)" in result.notes[1]
    assert (tmp_path / "run" / "artefact.txt").read_text() == "half-written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_lock_is_held_across_processes(tmp_path) -> None:
    """The same from another process: the lock is an fcntl.flock on .NAME.partial/.lock."""
    import fcntl

    work = tmp_path / ".run.partial"
    work.mkdir()
    (work / "config.json").write_text("{}")
    with open(work / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code = (
            "import sys; from brainkit.recipes import run_recipe; import tests.test_recipes\n"
            f"run_recipe('echo_for_tests', folder={str(tmp_path / 'run')!r})"
        )
        other = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1]
        )
        assert other.returncode != 0 and "being written by another run" in other.stderr
        assert (work / "config.json").read_text() == "{}"  # untouched
    # unlocked, it is the leftover of a killed run: a new run replaces it
    run_recipe("echo_for_tests", folder=tmp_path / "run")
    assert not work.exists() and not (tmp_path / "run" / ".lock").exists()


def test_resume_and_eval_refusals(tmp_path) -> None:
    with pytest.raises(ConfigError, match="'echo_for_tests' cannot resume an interrupted run"):
        run_recipe("echo_for_tests", folder=tmp_path / "run", resume=True)
    with pytest.raises(CheckpointError, match="No interrupted run to resume at .*lite"):
        run_recipe("lite_mind", folder=tmp_path / "lite", resume=True)
    run_recipe("echo_for_tests", folder=tmp_path / "run")
    with pytest.raises(
        ConfigError,
        match="'echo_for_tests' cannot re-evaluate a run folder .*Recipes that can: .*brain_mae.*clip_mused.*linear_encoding.*lite_mind.*sim.*vis_dec.*vsmae",
    ):
        evaluate_run(tmp_path / "run")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps({"data": {}, "model": {}}))
    with pytest.raises(CheckpointError, match="names no recipe"):
        evaluate_run(tmp_path / "old")


def test_report_extra_figures_and_tables(tmp_path) -> None:
    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    path = write_report(
        tmp_path / "report.html", "t", [{"method": "a", "x": 1.0}], {}, {}, [],
        figures={"ROI embeddings (t-SNE)": figure}, tables={"Ablations": [{"method": "b", "y": 2}]},
    )  # fmt: skip
    text = path.read_text()
    assert "<h2>ROI embeddings (t-SNE)</h2>" in text and "<h2>Ablations</h2>" in text
    assert (tmp_path / "report_roi_embeddings_t_sne.png").stat().st_size > 1000
    with pytest.raises(DataError, match="caption to a matplotlib Figure"):
        write_report(tmp_path / "r2.html", "t", [], {}, {}, [], figures={"x": "not a figure"})


def test_one_set_of_data_keys_for_every_recipe_that_reads_your_data() -> None:
    """`data.name`, `data.options[.KEY]` and `data.subject` land where each recipe keeps them; a dataset of a
    design the recipe does not read, or a recipe that reads only its built-in data, is an error saying which
    recipes read which designs."""
    overrides = ["data.name=bids", "data.options={root: /data/ds, task: images}", "data.options.mask=/m.nii.gz",
                 "data.subject=sub-01"]  # fmt: skip
    lite = recipe_config("lite_mind", "testing", overrides)
    assert (lite.data.name, lite.data.subject) == ("bids", "sub-01")
    assert lite.data.options == {"root": "/data/ds", "task": "images", "mask": "/m.nii.gz"}
    vis = recipe_config("vis_dec", "testing", overrides)
    assert (vis.dataset, vis.subject, vis.data) == ("bids", "sub-01", lite.data.options)
    assert recipe_config("vis_dec", "testing", ["data.seed=3"]).data["seed"] == 3  # its own keys still work
    # Another dataset starts from no options (the preset's belong to its own dataset); the same one keeps them.
    for recipe in ("lite_mind", "vis_dec"):
        config = recipe_config(
            recipe, "testing", ["data.name=bids", "data.options.root=/d", "data.options.task=x"]
        )
        assert (config.data.options if recipe == "lite_mind" else config.data) == {"root": "/d", "task": "x"}
    preset = recipe_config("lite_mind", "testing").data
    same = recipe_config("lite_mind", "testing", [f"data.name={preset.name}", "data.options.seed=5"]).data
    assert same.options == {**preset.options, "seed": 5}
    with pytest.raises(
        ConfigError, match=r"'hcp_cohort' is a 'cohort' dataset.*Recipes and the data designs"
    ):
        recipe_config("lite_mind", "testing", ["data.name=hcp_cohort"])
    with pytest.raises(
        ConfigError, match=r"Recipe 'echo_for_tests' reads only its built-in data.*lite_mind: trials"
    ):
        recipe_config("echo_for_tests", "testing", ["data.name=bids"])
    with pytest.raises(ConfigError, match=r"'brain_mae' reads cohort datasets; 'bids' is a 'trials' dataset"):
        recipe_config("brain_mae", "testing", ["data.name=bids"])
    cohort = recipe_config("brain_mae", "testing", ["data.name=roi_tables", "data.options.root=/d"])
    assert (cohort.data, cohort.data_options) == (
        "roi_tables",
        {"root": "/d"},
    )  # the preset's n_subjects: gone
    assert (
        recipe_config("brain_mae", "testing", ["data.options.n_subjects=9"]).data_options["n_subjects"] == 9
    )
    with pytest.raises(ConfigError, match=r"'vsmae' reads frames datasets; 'bids' is a 'trials' dataset"):
        recipe_config("vsmae", "testing", ["data.name=bids"])
    encoding = recipe_config("linear_encoding", "testing", ["data.name=bids", "data.options.root=/d"])
    assert (encoding.data, encoding.data_options, encoding.subjects) == ("bids", {"root": "/d"}, ())
    two = recipe_config("linear_encoding", "testing", ["data.name=bids", "data.subjects=[sub-01, sub-02]"])
    assert two.subjects == ("sub-01", "sub-02")
    movie = recipe_config("sim", "testing", ["data.name=hcp_movie_surface", "data.options.root=/d"])
    assert (movie.data, movie.data_options) == ("hcp_movie_surface", {"root": "/d"})
    assert recipe_config("sim", "testing").data == "testing"  # its built-in preset's name is no dataset: fine
    with pytest.raises(ConfigError, match=r"'sim' reads continuous datasets; 'bids_surface' is a 'frames'"):
        recipe_config("sim", "testing", ["data.name=bids_surface"])
    surface = recipe_config("vsmae", "testing", ["data.name=bids_surface", "data.options.root=/d"])
    assert (surface.data, surface.data_options) == ("bids_surface", {"root": "/d"})


def test_an_in_memory_dataset_of_another_design_than_trials_is_refused_before_any_folder(tmp_path) -> None:
    """The run saves the data it reads, in the trial format: frames or movies in memory are named instead."""
    from brainkit.data.surface_frames import SurfaceFrames

    frames = SurfaceFrames.__new__(SurfaceFrames)  # only its design is read before the refusal
    with pytest.raises(ConfigError, match=r"'frames' dataset cannot be passed in memory.*data.name=NAME"):
        run_recipe("vsmae", folder=tmp_path / "run", preset="testing", dataset=frames)
    assert not list(tmp_path.iterdir())
