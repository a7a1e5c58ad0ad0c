"""The SIM recipe's parts on known answers (splits, samples, batches, retrieval, occlusion, maps) and the
whole recipe on a small synthetic movie dataset."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sim_fixture import recording_resume, synthetic_movie_data

from brainkit.data.movie_samples import (
    BatchDraw,
    MovieArrays,
    Samples,
    check_dataset,
    choose_subjects,
    content_keys,
    gather_clips,
    samples_of,
    setting_segments,
    split_clips,
    usable_clips,
)
from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.movie_retrieval import (
    eligible_targets,
    occlusion_importance,
    patch_means,
    patches_to_vertices,
    retrieval_scores,
)
from brainkit.stimuli.speech import DEFAULT_FOLDERS
from brainkit.testing import one_and_two_processes, save_rank0

needs_speech = pytest.mark.skipif(
    not any(Path(p).is_dir() for p in DEFAULT_FOLDERS),
    reason="asterisk-core-sounds-en-wav not installed (make installs it where you may: scripts/install-system-packages.sh): the movie soundtracks need it",
)


@pytest.fixture(scope="module")
def movie():
    return synthetic_movie_data()


def test_clip_halves_known_answer() -> None:
    segment_of = -np.ones((1, 24), dtype=int)
    segment_of[0, 2:12] = 0  # 10 clips
    segment_of[0, 14:20] = 1  # 6 clips
    usable = usable_clips(segment_of, n_frames_total=24, lag=6, n_frames=3)  # clip c needs c + 9 <= 24
    assert np.array_equal(np.flatnonzero(usable[0]), [*range(2, 12), 14, 15])
    halves = split_clips(segment_of, usable, gap_clips=1)
    assert np.array_equal(np.flatnonzero(halves["train"][0]), [2, 3, 4, 5])  # the first 5, minus 1
    assert np.array_equal(np.flatnonzero(halves["held_out"][0]), [7, 8, 9, 10, 11, 15])
    assert not (halves["train"] & halves["held_out"]).any()
    with pytest.raises(ConfigError, match="gap_clips"):
        split_clips(segment_of, usable, -1)
    masked = setting_segments(segment_of, halves["held_out"])
    assert set(np.unique(masked)) == {-1, 0, 1} and (masked[0, :7] == -1).all()


def test_content_keys_share_the_retest_across_runs() -> None:
    retest = np.zeros((2, 10), dtype=bool)
    retest[0, 6:9] = True
    retest[1, 5:8] = True  # the repeat sits elsewhere in run 2
    keys = content_keys(retest)
    assert np.array_equal(keys[0, 6:9], keys[1, 5:8])
    others = np.concatenate([keys[0, :6], keys[0, 9:], keys[1, :5], keys[1, 8:]])
    assert len(np.unique(others)) == len(others) and not np.isin(others, keys[0, 6:9]).any()


def test_subjects_and_samples() -> None:
    groups = choose_subjects(7, 2, seed=3)
    assert len(groups["test"]) == 2 and len(groups["train"]) == 5
    assert sorted(np.concatenate(list(groups.values()))) == list(range(7))
    assert np.array_equal(choose_subjects(7, 2, seed=3)["test"], groups["test"])
    with pytest.raises(ConfigError, match="n_test_subjects"):
        choose_subjects(3, 3, seed=0)
    mask = np.zeros((2, 5), dtype=bool)
    mask[0, 1], mask[1, [2, 4]] = True, True
    samples = samples_of(np.array([4, 6]), mask)
    assert list(zip(samples.subject, samples.run, samples.clip)) == [
        (4, 0, 1), (4, 1, 2), (4, 1, 4), (6, 0, 1), (6, 1, 2), (6, 1, 4)]  # fmt: skip


def test_gather_clips_takes_the_lagged_frames_by_patch() -> None:
    fmri = np.arange(2 * 3 * 20 * 7, dtype=np.float32).reshape(2, 3, 20, 7)
    patches = np.array([[0, 1, 2], [2, 3, 6], [4, 5, 6], [1, 5, 0]])  # 4 patches x 3 vertices
    samples = Samples(np.array([1, 0]), np.array([2, 0]), np.array([5, 0]))
    clips = gather_clips(fmri, patches, samples, lag=6, n_frames=3)
    assert clips.shape == (2, 3, 4, 3) and clips.dtype == torch.float32
    assert np.array_equal(clips[0, 1].numpy(), fmri[1, 2, 12][patches])  # frame 5 + 6 + 1
    assert np.array_equal(clips[1, 2].numpy(), fmri[0, 0, 8][patches])


def test_batches_hold_distinct_contents_of_training_subjects(movie) -> None:
    usable = usable_clips(movie.segment_of, movie.fmri.shape[2], 6, 3)
    train = split_clips(movie.segment_of, usable, 5)["train"]
    keys = content_keys(movie.retest)
    draw = BatchDraw(keys, np.array([0, 2, 4]), train)
    assert len(draw) < train.sum()  # the retest's repeats share keys
    for epoch in range(5):
        batches = draw(torch.Generator().manual_seed(epoch), 32)
        assert len(batches) == len(draw) // 32
        for batch in batches:
            content = keys[batch.run, batch.clip]
            assert len(batch) == 32 and len(np.unique(content)) == 32 and set(batch.subject) <= {0, 2, 4}
            assert train[batch.run, batch.clip].all()
        seen = np.concatenate([keys[b.run, b.clip] for b in batches])
        assert len(np.unique(seen)) == len(seen)  # an epoch: each content at most once
        again = draw(torch.Generator().manual_seed(epoch), 32)  # a pure function of the generator
        assert all(np.array_equal(a.clip, b.clip) and np.array_equal(a.subject, b.subject)
                   for a, b in zip(batches, again))  # fmt: skip
    half = batches[0][:16]
    assert isinstance(half, Samples) and len(half) == 16 and np.array_equal(half.clip, batches[0].clip[:16])


def test_retrieval_scores_known_answers() -> None:
    rng = np.random.default_rng(0)
    segment_of = np.repeat([0, 1, 2], 60)[None].repeat(2, 0)  # 2 runs, 3 segments of 60 clips
    segment_of[:, :5] = -1
    stimulus = rng.standard_normal((2, 180, 16))
    mask = np.ones((2, 180), dtype=bool)
    samples = samples_of(np.array([0, 1]), mask & (segment_of >= 0))
    perfect = stimulus[samples.run, samples.clip]
    per_subject, scored, left = retrieval_scores(perfect, samples, stimulus, segment_of, "soft", seed=0)
    assert len(per_subject) == 2 and all(row["top1"] == 1.0 for row in per_subject) and left == 0
    noise = rng.standard_normal(perfect.shape)
    per_subject, *_ = retrieval_scores(noise, samples, stimulus, segment_of, "hard", seed=0)
    top1 = np.mean([row["top1"] for row in per_subject])
    assert abs(top1 - 1 / 32) < 0.03 and per_subject[0]["top10_chance"] == 10 / 32
    short = segment_of.copy()
    short[:, 95:] = -1  # segment 1 keeps 35 clips: 31 negatives only for its two end clips (4 excluded)
    ok = eligible_targets(short[0], "hard")
    assert ok[5:60].all() and np.array_equal(np.flatnonzero(ok[60:]), [0, 34])
    assert eligible_targets(short[0], "soft")[5:95].all()
    _, _, left = retrieval_scores(noise, samples, stimulus, short, "hard", seed=0)
    assert left > 0


def test_occlusion_of_an_empty_patch_changes_nothing() -> None:
    from brainkit.models.sim import SIM, SIMConfig
    from brainkit.models.sit import PRESETS as SIT

    torch.manual_seed(0)
    encoder = SIT["testing"].__class__(**{**SIT["testing"].__dict__, "n_patches": 6, "n_patch_vertices": 4})
    model = SIM(SIMConfig(encoder=encoder, video_dim=5, audio_dim=3, embedding_dim=8))
    clips = torch.randn(3, 3, 6, 4)
    clips[:, :, 2] = 0.0  # patch 2 already holds the occluding value
    drops = occlusion_importance(model, clips, torch.randn(3, 5))
    assert drops.shape == (6,) and drops[2] == pytest.approx(0.0, abs=1e-6) and np.abs(drops).max() > 0


def test_patch_maps() -> None:
    patches = np.array([[0, 1, 2], [2, 3, 4]])
    assert np.allclose(patches_to_vertices(np.array([1.0, 3.0]), patches, 6), [1, 1, 2, 3, 3, 0])
    cortex = np.array([True, True, False, True, True, True])
    values = np.array([1.0, 3.0, 100.0, 5.0, 7.0, 0.0])
    assert np.allclose(patch_means(values, patches, cortex), [2.0, 6.0])


def test_surface_map_on_fsaverage5() -> None:
    from brainkit.report.sim import to_fsaverage5
    from brainkit.surface import n_vertices

    values = np.random.default_rng(0).standard_normal(n_vertices(3))
    up = to_fsaverage5(values)
    assert up.shape == (10242,) and np.array_equal(up[: len(values)], values)
    with pytest.raises(DataError, match="not an icosphere size"):
        to_fsaverage5(np.zeros(100))


def test_check_dataset_names_the_bad_field(movie) -> None:
    import dataclasses

    check_dataset(movie)
    bad = dataclasses.replace(movie, video=movie.video[:, :-1])
    with pytest.raises(DataError, match="video has shape"):
        check_dataset(bad)


def test_vsmae_checkpoint_must_exist(tmp_path) -> None:
    from brainkit.recipes.sim import encoder_checkpoint

    with pytest.raises(ConfigError, match="brainkit run vsmae"):
        encoder_checkpoint(tmp_path)


def test_recipe_learns_on_synthetic_movies(tmp_path, monkeypatch, movie, one_torch_thread) -> None:
    import brainkit.recipes.sim as sim
    from brainkit.recipes import recipe_config, run_recipe

    monkeypatch.setattr(sim, "load_movie_data", lambda config: movie)
    monkeypatch.setattr("brainkit.report.sim.write_sim_report", lambda *a: None)  # the CLI test draws it
    overrides = ["training.steps=60", "training.lr=0.003", "training.validate_every=30", "inits=[scratch]"]
    result = run_recipe("sim", recipe_config("sim", "testing", overrides), folder=tmp_path / "run")
    ((_, main),) = result.tables.items()
    assert len(main) == 3 * 2 * 2  # settings x negatives x directions
    assert all(0.0 <= row["top1 from scratch_mean"] <= 1.0 for row in main)
    hardest = next(r for r in main if r["setting"].startswith("unseen subjects, unseen") and
                   r["negatives"] == "soft" and r["retrieval"] == "fMRI->video")  # fmt: skip
    assert hardest["top1 from scratch_mean"] > 3 / 33  # learnt (chance 1/33: SIM's protocol, the default)
    assert hardest["top1 ridge baseline_mean"] > 3 / 33  # the linear baseline, on the same candidates
    assert hardest["top1_chance"] == 1 / 33 and hardest["rows"] == 2 * 2  # unseen subjects x runs
    assert hardest["targets"] == 4 * 100 and any("SIM's released protocol" in n for n in result.notes)
    assert not (result.folder / "vsmae").exists()


def test_both_protocols_score_the_same_predictions(movie) -> None:
    from brainkit.evaluation.movie_retrieval import RetrievalConfig, retrieval_rows, score_settings

    usable = usable_clips(movie.segment_of, movie.fmri.shape[2], 6, 3)
    clips = split_clips(movie.segment_of, usable, 5)
    settings = {"unseen_subjects": samples_of(np.array([0, 1]), clips["train"]),
                "unseen_clips": samples_of(np.array([2, 3, 4]), clips["held_out"]),
                "unseen_both": samples_of(np.array([0, 1]), clips["held_out"])}  # fmt: skip
    stimulus = {"video": movie.video, "audio": movie.audio}

    def perfect(samples):
        return {d: stimulus[d][samples.run, samples.clip] for d in stimulus}

    tables = {}
    for protocol in ("sim", "all_targets"):
        scores, _ = score_settings(perfect, stimulus, settings, clips, movie.segment_of, 0, movie.retest,
                                   RetrievalConfig(protocol=protocol))  # fmt: skip
        tables[protocol] = retrieval_rows({"scratch": scores}, {"scratch": "from scratch"})[0]
    for sim, ours in zip(tables["sim"], tables["all_targets"]):
        assert sim["top1 from scratch_mean"] == ours["top1 from scratch_mean"] == 1.0
        assert (sim["top1_chance"], ours["top1_chance"]) == (1 / 33, 1 / 32)
        assert sim["rows"] == 2 * sim["subjects"] and ours["rows"] == ours["subjects"]  # 2 runs
        assert sim["targets"] == 100 * sim["rows"]  # 45-clip halves: every pool holds 32 negatives
    with pytest.raises(ConfigError, match="set protocol to one of"):
        RetrievalConfig(protocol="paper")
    with pytest.raises(ConfigError, match="needs the runs' test-retest mask"):
        score_settings(perfect, stimulus, settings, clips, movie.segment_of, 0)


@contextlib.contextmanager
def quiet_sim(movie):
    """The sim recipe on the synthetic movies, drawing no reports (the CLI test draws them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("brainkit.recipes.sim.load_movie_data", lambda config: movie)
        patch.setattr("brainkit.report.sim.write_sim_report", lambda *a: None)
        patch.setattr("brainkit.report.sim.write_vsmae_report", lambda *a: [])
        yield


@pytest.fixture(scope="module")
def full_sim(tmp_path_factory, movie):
    """An uninterrupted `testing` run on the synthetic movies: vsMAE pretraining, SIM from scratch and from it."""
    from brainkit.recipes import run_recipe

    with quiet_sim(movie):
        return run_recipe("sim", folder=tmp_path_factory.mktemp("sim") / "run", preset="testing")


def test_run_then_eval_gives_the_same_metrics(full_sim, movie, tmp_path) -> None:
    import shutil

    from brainkit.errors import CheckpointError
    from brainkit.recipes import evaluate_run

    metrics = full_sim.metrics
    assert (
        set(metrics["histories"]) == {"SIM from scratch", "SIM from vsMAE"}
        and metrics["vsmae_reconstruction"]
    )
    assert all("seconds" not in r for h in metrics["histories"].values() for r in h)
    assert json.loads((full_sim.folder / "metrics.json").read_text())["metrics"] == metrics
    assert not list(full_sim.folder.rglob("state"))
    with quiet_sim(movie):
        assert evaluate_run(full_sim.folder) == metrics  # the same seeded candidates, the same numbers
        broken = shutil.copytree(full_sim.folder, tmp_path / "broken")
        shutil.rmtree(broken / "checkpoints" / "sim_vsmae")
        with pytest.raises(CheckpointError, match="sim_vsmae/model.safetensors does not exist"):
            evaluate_run(broken)


def test_resume_continues_exactly_in_either_phase(full_sim, movie, tmp_path, monkeypatch) -> None:
    """Killed in the vsMAE pretraining, then in the SIM fit from vsMAE: each --resume continues the killed phase
    from its state, reloads the finished ones (not retrained), and ends at the uninterrupted run's metrics."""
    import brainkit.training.phase as phase
    from brainkit.cli import main
    from brainkit.recipes import run_recipe
    from brainkit.testing import SimulatedKill, killing_train
    from brainkit.training import phase_done, read_history

    run, partial = tmp_path / "run", tmp_path / ".run.partial"
    calls: list[str] = []
    flags: list = []
    with quiet_sim(movie):
        monkeypatch.setattr(phase, "train", killing_train("vsMAE", until_step=4, calls=calls))
        with pytest.raises(SimulatedKill):
            run_recipe("sim", folder=run, preset="testing")
        assert (partial / "vsmae" / "train" / "vsmae" / "state").is_dir() and not run.exists()
        with pytest.raises(ConfigError, match="interrupted run of sim is at .*--resume"):
            run_recipe("sim", folder=run, preset="testing")

        calls.clear()
        killing = killing_train("SIM vsmae", until_step=4, calls=calls)
        monkeypatch.setattr(phase, "train", recording_resume(killing, flags))
        with pytest.raises(SimulatedKill):
            run_recipe("sim", folder=run, resume=True)
        assert flags == [("vsMAE", True), ("SIM scratch", False), ("SIM vsmae", False)]
        assert phase_done(partial / "vsmae" / "train" / "vsmae") and phase_done(
            partial / "train" / "sim_scratch"
        )
        assert (partial / "train" / "sim_vsmae" / "state").is_dir()

        calls.clear()
        flags.clear()
        monkeypatch.setattr(phase, "train", recording_resume(killing_train("nothing", calls=calls), flags))
        assert main(["run", "sim", "--out", str(run), "--resume"]) == 0
    assert calls == ["SIM vsmae"] and flags == [("SIM vsmae", True)]  # the others were reloaded
    assert not partial.exists()
    assert json.loads((run / "metrics.json").read_text())["metrics"] == full_sim.metrics
    for folder in ("vsmae/train/vsmae", "train/sim_scratch", "train/sim_vsmae"):
        resumed, whole = (read_history(root / folder) for root in (run, full_sim.folder))
        assert [r["step"] for r in resumed] == [r["step"] for r in whole] and len(whole) >= 1
        assert [{k: v for k, v in r.items() if k != "seconds"} for r in resumed] == [
            {k: v for k, v in r.items() if k != "seconds"} for r in whole
        ]


@needs_speech
def test_cli_run_sim_testing(tmp_path, capsys, one_torch_thread) -> None:
    from brainkit.cli import main
    from brainkit.models import load_model

    out, cache = tmp_path / "run", tmp_path / "cache"
    assert main(["run", "sim", "--preset", "testing", "--out", str(out), "--set", f"cache_dir={cache}"]) == 0
    printed = capsys.readouterr().out
    assert (
        "SIM retrieval among 33 candidates (sim protocol" in printed
        and "unseen subjects, unseen clips" in printed
    )
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    soft = [r for r in metrics["main"] if r["negatives"] == "soft"]
    assert len(soft) == 6 and all(0.0 <= r["top1 from vsMAE_mean"] <= 1.0 for r in soft)
    assert all(r["top1 vsMAE - scratch"] is not None for r in soft)
    assert set(metrics["importance_correlation"]) == {"scratch", "vsmae"}
    report = (out / "report.html").read_text()
    from brainkit.testing import report_problems

    assert report_problems(out / "report.html") == []  # human labels, percentages, version, command
    assert (
        "Which patches matter" in report and "Retrieval examples" in report and "vsMAE masked-patch" in report
    )
    assert (out / "vsmae" / "checkpoints" / "sit_encoder" / "model.safetensors").is_file()
    model, meta = load_model(out / "checkpoints" / "sim_vsmae")
    assert type(model).__name__ == "SIM" and meta["init"] == "vsmae"
    # the finished run's encoder is reused without pretraining again
    again = tmp_path / "again"
    args = [
        "--set",
        f"cache_dir={cache}",
        "--set",
        f"vsmae_checkpoint={out / 'vsmae'}",
        "--set",
        "inits=[vsmae]",
    ]
    assert main(["run", "sim", "--preset", "testing", "--out", str(again), *args]) == 0
    assert not (again / "vsmae").exists()


def test_paper_preset_is_sims_model() -> None:
    import dataclasses

    from brainkit.models import count_parameters
    from brainkit.recipes import recipe_config
    from brainkit.recipes.sim import build_sim
    from brainkit.recipes.vsmae import build_vsmae
    from brainkit.surface import triangle_patches

    config = recipe_config("sim", "paper")
    assert (config.training.lr, config.training.weight_decay, config.training.batch_size) == (3e-4, 0.01, 4)
    patches = triangle_patches(5, config.vsmae.coarse_order)
    encoder = build_vsmae(dataclasses.replace(config.vsmae, fine_order=5), *patches.shape).config.encoder
    assert (encoder.dim, encoder.depth, encoder.n_heads, encoder.n_patches, encoder.n_patch_vertices) == (
        192, 12, 3, 320, 45)  # fmt: skip
    # 45-vertex patches as SIM's ico6/ico3: the same 6,468,672 trainable parameters (METHODS.md: ~6.47 M)
    assert count_parameters(build_sim(config, encoder, 768, 768)) == 6_468_672


def _task(movie, pretrained: bool = False, dropout: float | None = None, **fit):
    """A SIM task on the synthetic movies (testing sizes): training subjects 0, 1; monitored on subject 2."""
    import dataclasses

    from brainkit.models.sit import PRESETS as SIT_PRESETS
    from brainkit.recipes.sim import PRESETS, build_sim, sim_task
    from brainkit.surface import triangle_patches

    patches = np.asarray(triangle_patches(int(movie.order), 1))
    encoder = dataclasses.replace(
        SIT_PRESETS["testing"], n_patches=len(patches), n_patch_vertices=patches.shape[1]
    )
    config = PRESETS["testing"]
    config = dataclasses.replace(config, fit=dataclasses.replace(config.fit, **fit))
    if dropout is not None:  # the heads' and the encoder's
        config = dataclasses.replace(config, model={**config.model, "dropout": dropout})
        encoder = dataclasses.replace(encoder, dropout=dropout)
    usable = usable_clips(movie.segment_of, movie.fmri.shape[2], 6, 3)
    clips = split_clips(movie.segment_of, usable, 5)
    arrays = MovieArrays(movie.fmri, patches, movie.video, movie.audio, content_keys(movie.retest), 6, 3)
    monitor = samples_of(np.array([2]), clips["train"])[::7][:16]
    split = {"arrays": arrays, "groups": {"train": np.array([0, 1])}, "clips": clips, "monitor": monitor}
    torch.manual_seed(0)
    model = build_sim(config, encoder, movie.video.shape[-1], movie.audio.shape[-1])
    return sim_task(config, model, split, pretrained)


def test_frozen_steps_keep_the_pretrained_encoder(movie, one_torch_thread) -> None:
    from brainkit.training import TrainingConfig, train

    for pretrained in (True, False):
        task = _task(movie, pretrained, pretrained_frozen_steps=4)
        start = {k: v.clone() for k, v in task.model.state_dict().items()}
        result = train(task, TrainingConfig(steps=4, batch_size=8, lr=3e-3, warmup_steps=1, progress=False))
        changed = {k for k, v in task.model.state_dict().items() if not torch.equal(v, start[k])}
        assert any(k.startswith("fmri_head") for k in changed)
        # the vsMAE-initialised encoder stays frozen for pretrained_frozen_steps; the scratch one always trains
        assert any(k.startswith("encoder") for k in changed) is not pretrained
        assert {"monitor_loss", "monitor_top1", "train_loss"} <= set(result.history[-1])


def test_sim_task_resumes_exactly(tmp_path, movie, one_torch_thread) -> None:
    from brainkit.training import TrainingConfig, train

    config = TrainingConfig(steps=6, batch_size=8, lr=3e-3, warmup_steps=1, validate_every=2, progress=False)
    whole = _task(movie, dropout=0.1)
    train(whole, config, tmp_path / "whole")
    part = _task(movie, dropout=0.1)
    assert train(part, config, tmp_path / "part", until_step=3).steps == 3  # stopped inside a period
    resumed = _task(movie, dropout=0.1)
    result = train(resumed, config, tmp_path / "part", resume=True)
    assert result.steps == 6 and [r["step"] for r in result.history] == [2, 4, 6]
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    lines = (tmp_path / "whole" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["train_loss"] for line in lines] == [r["train_loss"] for r in result.history]


def sim_distributed_worker(fabric, out_dir: str) -> None:
    """Run by Fabric in each process of the 2-process check: the SIM task's main phase, rank 0's weights saved."""
    from brainkit.training import TrainingConfig, train

    task = _task(synthetic_movie_data(), dropout=0.0)
    config = TrainingConfig(steps=4, batch_size=8, lr=3e-3, warmup_steps=1, validate_every=2, progress=False)
    result = train(task, config, fabric=fabric)
    save_rank0(fabric, out_dir, task.model.state_dict(), result.history)


@pytest.mark.slow
def test_sim_task_two_process_gloo_matches_single_process(tmp_path) -> None:
    """A global batch of 8 distinct contents split over 2 gloo processes (negatives gathered) == one process."""
    one, two = one_and_two_processes(sim_distributed_worker, tmp_path)
    a, b = one["weights"], two["weights"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-5)
    for r1, r2 in zip(one["history"], two["history"], strict=True):
        for key in ("train_loss", "monitor_loss", "monitor_top1"):
            assert r1[key] == pytest.approx(r2[key], rel=1e-4, abs=1e-5), key
