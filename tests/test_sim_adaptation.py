"""SIM's new-subject adaptation (recipes/sim/adaptation.py): the per-vertex alignment is absent unless asked for
and only it trains when adapting, adapt and scratch see the same nested k clips, the curve over seeds, config
errors, one end-to-end run on the synthetic movies (tests/sim_fixture.py)."""

from __future__ import annotations

import csv
import dataclasses
import html
import json

import numpy as np
import pytest
import torch
from sim_fixture import synthetic_movie_data

from brainkit.errors import ConfigError
from brainkit.recipes import recipe_config, run_recipe
from brainkit.recipes.sim import adaptation as sim_adaptation
from brainkit.recipes.sim import build_sim, prepare
from brainkit.recipes.sim.adaptation import AlignmentTask, adapt_model, k_clips, resolve, sampler_of
from brainkit.report.adaptation import interval
from brainkit.training import train_phase
from brainkit.training.subsets import nested_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def movie():
    return synthetic_movie_data()


@pytest.fixture(scope="module")
def config():
    return recipe_config("sim", preset="testing_adaptation")


@pytest.fixture(scope="module")
def split(config, movie):
    return prepare(config, movie)


def sim_of(config, split, movie, seed: int, **model):
    torch.manual_seed(seed)
    changed = dataclasses.replace(config, model={**config.model, **model})
    return build_sim(changed, split["encoder"], movie.video.shape[-1], movie.audio.shape[-1])


def test_the_alignment_is_absent_unless_asked_for_and_starts_as_the_identity(config, split, movie) -> None:
    plain, aligned = (
        sim_of(config, split, movie, 3),
        sim_of(config, split, movie, 3, alignment="vertex_affine"),
    )
    assert plain.alignment is None and plain.config.alignment == "none"
    extra = set(aligned.state_dict()) - set(plain.state_dict())
    assert extra == {"alignment.scale", "alignment.shift"} and set(plain.state_dict()) < set(
        aligned.state_dict()
    )
    for key, value in plain.state_dict().items():  # the same draws: the default model is unchanged
        assert torch.equal(aligned.state_dict()[key], value), key
    clips = split["arrays"].clips(k_clips(split, 0, 4, 0)[1])
    plain.eval(), aligned.eval()
    assert torch.equal(plain(clips), aligned(clips))  # identity at start
    with torch.no_grad():
        aligned.alignment.scale[0, 0] = 2.0
    assert not torch.equal(plain(clips), aligned(clips))  # and it is on the path


def test_adapt_trains_only_the_alignment(config, split, movie, tmp_path) -> None:
    target, _, _ = resolve(config, movie, split)
    pretrained = sim_of(config, split, movie, 5)
    model = adapt_model(pretrained, config, split, movie)
    shared = {k: v.clone() for k, v in pretrained.state_dict().items()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, chosen = k_clips(split, target, 8, seed=0)
    arrays = split["arrays"]
    task = AlignmentTask(model, arrays, sampler_of(arrays, chosen), chosen, lr_scale=10.0)
    assert [g["lr_scale"] for g in task.parameter_groups()] == [10.0]
    train_phase(task, sim_adaptation.cell_training(config, 8, 0), tmp_path / "adapt")
    after = model.state_dict()
    for key, value in shared.items():  # every pretrained parameter and buffer
        assert torch.equal(after[key], value) and torch.equal(after[key], before[key]), key
    assert not torch.equal(after["alignment.scale"], before["alignment.scale"])  # the alignment did train
    assert not torch.equal(after["alignment.shift"], before["alignment.shift"])
    assert (tmp_path / "adapt" / "final" / "model.safetensors").is_file()


def test_scratch_and_adapt_see_the_same_nested_k_clips(config, split, movie, tmp_path, monkeypatch) -> None:
    target, sources, _ = resolve(config, movie, split)
    assert target == 4 and sources == [0, 1, 2, 3]  # the data's last subject is held out
    seen = {}

    class Fit:
        seconds = 0.0

    def record(task, training, folder, resume=False, name=None):
        seen[name.split("_")[0]] = (task, training)
        return Fit()

    monkeypatch.setattr(sim_adaptation, "train_phase", record)
    pretrained = sim_of(config, split, movie, 0)
    sim_adaptation.run_cell(config, split, movie, pretrained, target, 8, 1, tmp_path, False)
    (adapt, adapt_training), (scratch, scratch_training) = seen["adapt"], seen["scratch"]
    assert isinstance(adapt, AlignmentTask) and not isinstance(scratch, AlignmentTask)
    for field in ("runs", "clips", "subjects", "unique"):
        assert np.array_equal(getattr(adapt.sampler, field), getattr(scratch.sampler, field)), field
    assert adapt.sampler.subjects.tolist() == [target]
    assert adapt_training == scratch_training and adapt_training.seed == 1 and adapt_training.steps >= 2
    saved = json.loads((tmp_path / "k00008_seed1" / "rows.json").read_text())
    pool = int(split["clips"]["train"].sum())
    assert saved["rows"] == nested_rows(pool, 8, 1).tolist() and saved["subject"] == "sub-05"
    assert sorted(zip(adapt.sampler.runs.tolist(), adapt.sampler.clips.tolist())) == sorted(
        zip(saved["run"], saved["clip"])
    )
    assert not (split["clips"]["held_out"][saved["run"], saved["clip"]]).any()  # training clips only
    # nested over k for one seed, different across seeds
    small, large = (k_clips(split, target, k, seed=1)[0] for k in (4, 8))
    assert set(small) < set(large) and len(small) == 4
    assert not np.array_equal(k_clips(split, target, 4, seed=0)[0], small)


@pytest.fixture(scope="module")
def run(tmp_path_factory, movie):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("brainkit.recipes.sim.load_movie_data", lambda config: movie)
        folder = tmp_path_factory.mktemp("sim_adaptation") / "run"
        return run_recipe("sim", folder=folder, preset="testing_adaptation")


def test_testing_adaptation_end_to_end(run, split) -> None:
    rows = run.tables[sim_adaptation.TABLE]
    n_all = int(split["clips"]["train"].sum())
    assert [(r["method"], r["k"]) for r in rows] == [
        (m, k) for m in ("adapt", "scratch") for k in (4, 8, n_all)
    ]
    cells = run.metrics["cells"]
    assert len(cells) == 2 * 3 * 2
    for row in rows:
        assert row["n_seeds"] == 2 and row["minutes"] == round(row["k"] / 60, 2)
        for stem in ("top1", "top5"):
            values = [cells[f"{row['method']}/k={row['k']}/seed={seed}"][stem] for seed in (0, 1)]
            assert (row[f"{stem}_mean"], row[f"{stem}_low"], row[f"{stem}_high"]) == interval(values)
            assert all(0 <= v <= 1 for v in values)
        assert row["top1_chance"] == 1 / 33 and row["top5_chance"] == 5 / 33  # SIM's 33 candidates
    assert run.metrics["target_subject"] == "sub-05"
    assert run.metrics["pretraining_subjects"] == ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert 0 <= run.metrics["zero_shot"]["top1"] <= 1
    with open(run.folder / "curve.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    assert html.escape(sim_adaptation.TABLE) in (run.folder / "report.html").read_text()
    for phase in ("pretrain", "k00004_seed0/adapt", f"k{n_all:05d}_seed1/scratch"):
        assert (run.folder / phase / "final" / "model.safetensors").is_file(), phase
    assert any("smallest k (4 clips" in note for note in run.notes)
    assert any("Zero-shot" in note for note in run.notes)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("adaptation.k=[1]", r"adaptation.k=\[1\]: each k must be a number of clips >= 2"),
        ("adaptation.seeds=[1,1]", r"adaptation.seeds=\[1, 1\]: give one or more distinct seeds"),
        ("inits=[scratch,vsmae]", r"set inits=\[scratch\]"),
        ("model.alignment=vertex_affine", "adds the new subject's alignment itself"),
        ("adaptation.target_subject=sub-09", r"target_subject='sub-09' is not a subject of the data"),
        (
            "adaptation.k=[4,9999]",
            r"adaptation.k=\[9999\] exceeds the \d+ training clips of the held-out subject",
        ),
    ],
)
def test_bad_settings_raise_before_training(override, message, movie, tmp_path, monkeypatch) -> None:
    def no_training(*args, **kwargs):
        raise AssertionError("trained before the settings were checked")

    monkeypatch.setattr(sim_adaptation, "train_phase", no_training)
    monkeypatch.setattr("brainkit.recipes.sim.load_movie_data", lambda config: movie)
    with pytest.raises(ConfigError, match=message):
        run_recipe("sim", folder=tmp_path / "run", preset="testing_adaptation", overrides=[override])


def test_adaptation_is_off_by_default() -> None:
    from brainkit.recipes.sim import SIMRecipe

    for preset in ("cpu_small", "testing", "paper", "hcp_real"):
        assert not recipe_config("sim", preset=preset).adaptation.enabled
    for preset in ("adaptation", "testing_adaptation"):
        config = recipe_config("sim", preset=preset)
        assert config.adaptation.enabled and config.inits == ("scratch",)
        SIMRecipe.check(config)  # the presets pass the checks


def test_resumed_after_a_kill_ends_where_the_run_does(run, movie, tmp_path, monkeypatch) -> None:
    """A kill inside the second cell's scratch phase, then --resume: the finished phases are reloaded, not
    trained again, the killed one continues from its state, and every score equals the uninterrupted run's."""
    from brainkit.testing import SimulatedKill, killing_train

    monkeypatch.setattr("brainkit.recipes.sim.load_movie_data", lambda config: movie)
    killed: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("brainkit.training.phase.train", killing_train("scratch_k8_seed0", 1, killed))
        with pytest.raises(SimulatedKill):
            run_recipe("sim", folder=tmp_path / "run", preset="testing_adaptation")
    assert killed == ["pretrain", "adapt_k4_seed0", "scratch_k4_seed0", "adapt_k4_seed1", "scratch_k4_seed1",
                      "adapt_k8_seed0", "scratch_k8_seed0"]  # fmt: skip
    trained: list[str] = []
    monkeypatch.setattr("brainkit.training.phase.train", killing_train("(none)", 1, trained))
    resumed = run_recipe("sim", folder=tmp_path / "run", resume=True)
    assert trained[0] == "scratch_k8_seed0" and not set(trained) & set(killed[:-1])

    def scores(metrics):
        return {
            key: {m: v for m, v in cell.items() if m != "train_s"} for key, cell in metrics["cells"].items()
        }

    assert scores(resumed.metrics) == scores(run.metrics)
    assert resumed.metrics["zero_shot"] == run.metrics["zero_shot"]
