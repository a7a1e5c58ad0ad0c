"""The recipe runner: presets and overrides, whole-or-absent run folders, the `brainkit run` command, report extras."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from matplotlib.figure import Figure

from brainkit.cli import main
from brainkit.errors import ConfigError, DataError
from brainkit.recipes import RecipeOutput, recipe_config, run_recipe
from brainkit.registry import RECIPES
from brainkit.report.html import write_report


@dataclass(frozen=True)
class EchoConfig:
    value: float = 1.0
    fail: bool = False


@RECIPES.register("echo_for_tests", help="test-only recipe: reports its value")
class EchoRecipe:
    Config = EchoConfig
    PRESETS = {"cpu_small": EchoConfig(), "testing": EchoConfig(value=2.5)}

    def run(self, config: EchoConfig, folder) -> RecipeOutput:
        (folder / "artefact.txt").write_text("half-written")
        if config.fail:
            raise RuntimeError("boom")
        return RecipeOutput(
            {"Echo": [{"method": "echo", "value": config.value}]}, ["a note"], {"v": config.value}
        )


def test_config_preset_and_override() -> None:
    assert recipe_config("echo_for_tests").value == 1.0
    assert recipe_config("echo_for_tests", "testing", ["value=4"]).value == 4.0
    with pytest.raises(ConfigError, match="no preset 'paper'"):
        recipe_config("echo_for_tests", "paper")
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
    assert "Echo" in out and "  7  " in out + "  " and "a note" in out
    assert main(["run", "echo_for_tests", "--preset", "nope", "--out", str(tmp_path / "s")]) == 2
    assert "no preset 'nope'" in capsys.readouterr().err


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
