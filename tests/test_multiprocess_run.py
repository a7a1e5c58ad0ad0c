"""A run on two processes (`--set training.devices=2`, Fabric launching the second) writes one run folder, from
rank 0 alone, with the metrics of the one-process run; secondary processes leave nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from brainkit.training.processes import is_primary_process, primary_path, process_rank, reading_from


def test_which_process_this_is_from_each_launchers_variables(monkeypatch, tmp_path) -> None:
    for name in ("RANK", "SLURM_PROCID", "SLURM_NTASKS", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert process_rank() == 0 and is_primary_process()
    monkeypatch.setenv("LOCAL_RANK", "1")  # Fabric's own launcher's child
    assert not is_primary_process()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")  # first process of the second node
    assert not is_primary_process()
    monkeypatch.setenv("RANK", "0")  # torchrun's global rank wins
    assert is_primary_process()
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("NODE_RANK")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert process_rank() == 3
    with reading_from(tmp_path / "scratch", tmp_path / "work"):
        assert (
            primary_path(tmp_path / "scratch" / "train" / "x")
            == (tmp_path / "work" / "train" / "x").resolve()
        )
        assert primary_path(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert primary_path(tmp_path / "scratch") == tmp_path / "scratch"


def test_two_processes_write_one_run_with_the_one_process_metrics(tmp_path) -> None:
    from brainkit.recipes import run_recipe

    one = run_recipe("lite_mind", preset="testing", folder=tmp_path / "one")
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")}
    done = subprocess.run(
        [sys.executable, "-m", "brainkit.cli", "run", "lite_mind", "--preset", "testing", "--set", "training.devices=2",
         "--set", "training.strategy=ddp", "--out", str(tmp_path / "two")],
        capture_output=True, text=True, timeout=600, env=env | {"TMPDIR": str(scratch_root)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in done.stderr  # the second process took part
    assert done.stdout.count("Run folder:") == 1  # rank 0 alone prints and writes
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["metrics"] == one.metrics
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "tmp", "two"]
    assert not list(scratch_root.iterdir())  # the secondary's scratch folder is gone
