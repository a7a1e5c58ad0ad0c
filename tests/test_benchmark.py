"""brainkit bench: score rows, the mean and 95 % interval over seeds, runs through the run system, reuse, your data."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from brainkit.benchmark import not_run, run_bench
from brainkit.benchmark.presets import PRESETS, BenchEntry
from brainkit.benchmark.runs import Job, Outcome, plan
from brainkit.benchmark.table import aggregate, headline
from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.scores import score_row


def test_score_rows_are_checked() -> None:
    row = score_row("m", "method", "t", "s", "top-1", 0.5, 0.1)
    assert row["value"] == 0.5 and row["higher_is_better"]
    assert score_row("m", "method", "t", "s", "mAP", None)["value"] is None  # undefined: counted as missing
    with pytest.raises(DataError, match="role 'winner'"):
        score_row("m", "winner", "t", "s", "x", 0.1)
    with pytest.raises(DataError, match="not a finite number"):
        score_row("m", "method", "t", "s", "x", float("nan"))
    with pytest.raises(DataError, match="chance"):
        score_row("m", "method", "t", "s", "x", 0.1, "half")


def _seeded(method: str, values: list, chance: float | None = 0.1) -> list[dict]:
    return [{"dataset": "d", "recipe": "r", "seed": seed, "run": f"run{seed}",
             **score_row(method, "method" if method == "a" else "baseline", "task", "split", "top-1", value, chance)}
            for seed, value in enumerate(values)]  # fmt: skip


def test_aggregate_gives_the_t_interval_and_counts_missing_values() -> None:
    rows = aggregate(
        _seeded("a", [0.2, 0.3, 0.4]) + _seeded("b", [0.5, None, 0.7]) + _seeded("c", [0.9], None)
    )
    a, b, c = rows
    half = 4.302652729911275 * np.std([0.2, 0.3, 0.4], ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert a["mean"] == pytest.approx(0.3) and a["n_seeds"] == 3
    assert (a["low"], a["high"]) == pytest.approx((0.3 - half, 0.3 + half))
    assert b["n_seeds"] == 2 and b["mean"] == pytest.approx(0.6)  # the seed without a number is not a zero
    assert c["low"] is None and c["chance"] is None and c["n_seeds"] == 1
    assert headline(rows) == rows  # one split and metric: all of it is the headline


def test_presets_plan_every_run_with_its_seed_keys(tmp_path) -> None:
    jobs = plan(list(PRESETS["cpu_small"].entries), (0, 1, 2), tmp_path)
    assert len(jobs) == 3 * len(PRESETS["cpu_small"].entries)
    sim = next(j for j in jobs if j.entry.recipe == "sim" and j.seed == 2)
    assert "seed=2" in sim.overrides and sim.folder == tmp_path / "runs" / "sim-movie_surface_like" / "seed2"
    lite = next(j for j in jobs if j.entry.slug == "lite_mind-nsd_like-realistic")
    assert "data.options.generative=realistic" in lite.overrides and "training.seed=0" in lite.overrides
    with pytest.raises(ConfigError, match="reads 'nsd_like', not 'hcp_movie_like'"):
        plan([BenchEntry("linear_encoding", "testing", "hcp_movie_like")], (0,), tmp_path)
    with pytest.raises(ConfigError, match="no preset"):
        run_bench("huge", out=tmp_path / "x")
    with pytest.raises(ConfigError, match="--only names \\['lite_mnd'\\]"):
        run_bench("testing", out=tmp_path / "x", only=("lite_mnd",))
    with pytest.raises(ConfigError, match="distinct seeds"):
        run_bench("testing", out=tmp_path / "x", seeds=(1, 1))
    assert not (tmp_path / "x").exists()


def test_not_run_names_every_compatible_pair_left_out() -> None:
    rows = not_run(list(PRESETS["cpu_small"].entries), None)
    why = {(r["recipe"], r["dataset"]): r["why"] for r in rows}
    assert "no category labels" in why[("clip_mused", "nsd_like")]
    assert why[("vis_dec", "hcp_movie_like")].startswith("not in this preset (the full preset runs it)")
    assert "scores" in why[("adaptation", "any")] or "curve" in why[("adaptation", "any")]
    assert not {r for r in why if r[0] == "sim"}  # SIM reads movie_surface_like, the one continuous built-in
    from brainkit.registry import RECIPES

    full = not_run(list(PRESETS["full"].entries), None)
    ours = [
        r for r in full if RECIPES.get(r["recipe"]).__module__.startswith("brainkit.recipes")
    ]  # not tests'
    assert {(r["recipe"], r["dataset"]) for r in ours} == {("clip_mused", "nsd_like"), ("adaptation", "any")}


def test_a_failed_run_is_named_and_left_out_of_the_means(tmp_path) -> None:
    from brainkit.benchmark import collect

    entry = BenchEntry("vsmae", "testing", "rest_surface")
    done = Outcome(Job(entry, 0, tmp_path / "a", ()), {"Masked-patch reconstruction x": [
        {"method": "vsMAE", "masked_mse_mean": 1.0, "r_mean": 0.1}]}, 3.0)  # fmt: skip
    failed = Outcome(Job(entry, 1, tmp_path / "b", ()), {}, 2.0, error="failed (exit 2): error: bad")
    unreadable = Outcome(Job(entry, 2, tmp_path / "c", ()), {"Another table": []}, 2.0)
    scores, failures = collect([done, failed, unreadable])
    assert {s["seed"] for s in scores} == {0} and len(scores) == 2
    assert failures[0] == "vsmae-rest_surface-seed1: failed (exit 2): error: bad"
    assert "could not be read as scores" in failures[1] and "Another table" in failures[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """`brainkit bench --preset testing --only lite_mind,vsmae --seeds 0,1 --jobs 2` through the CLI."""
    from brainkit.cli import main

    out = tmp_path_factory.mktemp("bench") / "out"
    argv = ["bench", "--preset", "testing", "--only", "lite_mind,vsmae", "--seeds", "0,1", "--jobs", "2",
            "--threads", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out, argv


def test_bench_runs_every_seed_through_the_run_system_and_writes_the_table(bench) -> None:
    out, _ = bench
    for slug in ("lite_mind-nsd_like", "vsmae-rest_surface"):
        for seed in (0, 1):
            run = out / "runs" / slug / f"seed{seed}"
            config = json.loads((run / "config.json").read_text())
            assert (run / "metrics.json").is_file() and (out / "logs" / f"{slug}-seed{seed}.log").is_file()
            seeds = (
                config["config"]["training"]["seed"] if slug.startswith("lite") else config["config"]["seed"]
            )
            assert seeds == seed
    with open(out / "bench.csv") as handle:
        rows = list(csv.DictReader(handle))
    with open(out / "scores.csv") as handle:
        per_seed = list(csv.DictReader(handle))
    lite = next(r for r in rows if r["method"] == "Lite-Mind" and r["metric"] == "fMRI->image top-1 (10-way)")
    values = [
        float(r["value"]) for r in per_seed if r["method"] == "Lite-Mind" and r["metric"] == lite["metric"]
    ]
    assert lite["n_seeds"] == "2" and float(lite["mean"]) == pytest.approx(np.mean(values))
    assert float(lite["chance"]) == 0.1 and lite["split"] == "unseen images"
    mse = next(r for r in rows if r["method"] == "vsMAE" and r["metric"] == "masked MSE")
    assert mse["chance"] == "" and mse["higher_is_better"] == "False"
    page = (out / "bench.html").read_text()
    assert "Not run, and why" in page and "left out with --only" in page and "95 % interval" in page
    summary = json.loads((out / "bench.json").read_text())
    assert summary["failures"] == [] and len(summary["runs"]) == 4 and summary["seeds"] == [0, 1]


def test_bench_again_reuses_the_finished_runs_and_refuses_other_settings(bench, capsys) -> None:
    from brainkit.cli import main

    out, argv = bench
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished before, reused") == 4 and ": started" not in printed
    with pytest.raises(ConfigError, match="holds a run made with other settings"):
        run_bench("testing", out=out, only=("vsmae",), seeds=(0,), settings=("training.epochs=7",))


def test_bench_on_your_dataset(tmp_path, capsys) -> None:
    """`--dataset folder --set data.options.root=DIR`: the preset's trial recipes on your data (here Lite-Mind
    alone); the recipes that read other designs are named, not run."""
    from test_your_data import _my_arrays

    from brainkit.cli import main
    from brainkit.data import from_arrays, save_dataset

    dataset = from_arrays(**_my_arrays())
    save_dataset(dataset, tmp_path / "mine")
    out = tmp_path / "bench"
    argv = ["bench", "--preset", "testing", "--only", "lite_mind", "--seeds", "0", "--dataset", "folder",
            "--set", f"data.options.root={tmp_path / 'mine'}", "--set", "data.subject=sub-01",
            "--set", "data.target=my_clip", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((out / "runs" / "lite_mind-folder" / "seed0" / "config.json").read_text())["config"]
    assert config["data"]["name"] == "folder" and config["data"]["subject"] == "sub-01"
    summary = json.loads((out / "bench.json").read_text())
    assert {
        "recipe": "sim",
        "dataset": "folder",
        "why": "reads continuous datasets; folder is trials",
    } in summary["not_run"]
    assert "folder, image retrieval" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="data.\\* settings need --dataset"):
        run_bench("testing", out=tmp_path / "y", settings=("data.subject=sub-01",))
