"""The CLIP-MUSED recipe: stimulus targets, volume scatter, seeded training, figures, and `brainkit run` end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from brainkit.cli import main
from brainkit.data.semantic import SampleArrays, VolumeGrid, semantic_samples
from brainkit.errors import ConfigError, DataError
from brainkit.models import build_model, model_config
from brainkit.objectives.semantic import SemanticLoss
from brainkit.recipes import recipe_config, run_recipe
from brainkit.recipes.clip_mused import RELEASED_TRAINING, SemanticTask, predict
from brainkit.report.clip_mused import attention_figure, attention_volume, token_embedding_figure
from brainkit.stimuli.semantic_features import post_process, semantic_targets
from brainkit.testing import one_and_two_processes, save_rank0
from brainkit.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_semantic_targets_unit_rows_fitted_on_train() -> None:
    rng = np.random.default_rng(0)
    low, image, text = rng.normal(size=(30, 4, 5)), rng.normal(size=(30, 17)), rng.normal(size=(30, 9))
    train = np.arange(20)
    low_t, high_t = semantic_targets(low, image, text, train, dim=6)
    assert low_t.shape == (30, 20) and high_t.shape == (30, 6)
    assert np.allclose(np.linalg.norm(low_t, axis=1), 1) and np.allclose(np.linalg.norm(high_t, axis=1), 1)
    changed = image.copy()
    changed[25:] *= 100  # test rows: must not change what is fitted, so the training targets stay the same
    assert np.allclose(semantic_targets(low, changed, text, train, dim=6)[1][:20], high_t[:20])
    assert np.abs(post_process(rng.normal(size=(5, 3)) * 50, np.arange(5), clip=1.5)).max() <= 1
    with pytest.raises(DataError, match="one row per stimulus"):
        semantic_targets(low, image[:5], text, train)
    # joint space (one CLIP model): the direct average of the unit embeddings, then clip + normalise
    same = rng.normal(size=(30, 9))
    _, joint = semantic_targets(low, same, same * 3, train, joint_space=True)
    np.testing.assert_allclose(joint, post_process(same / np.linalg.norm(same, axis=1, keepdims=True), train))
    with pytest.raises(DataError, match="joint_space needs image and text embeddings of one width"):
        semantic_targets(low, image, text, train, joint_space=True)


def test_volume_grid_scatters_into_mask() -> None:
    mask = np.zeros((3, 4, 5), bool)
    mask[1, 2, 3] = mask[2, 0, 1] = True
    volumes = VolumeGrid(mask)(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert volumes.shape == (2, 3, 4, 5) and volumes[0, 2, 0, 1] == 2.0 and volumes[1, 1, 2, 3] == 3.0
    assert volumes.sum() == 10.0


def test_stack_subjects_reindexes_and_srm_alignment_checks_the_stimuli() -> None:
    from brainkit.data.semantic import SemanticSamples, aligned_training_data, stack_subjects

    mask = np.ones((2, 2, 2), bool)
    a, b = _arrays(mask, n=4), _arrays(mask, n=3, seed=1)
    both = stack_subjects([b, a])
    assert list(both.subject) == [0, 0, 0, 1, 1, 1, 1] and np.array_equal(both.values[3:], a.values)
    ids = {("train", "s1"): np.array([3, 1, 2, 0]), ("train", "s2"): np.array([0, 1, 3, 2])}
    samples = SemanticSamples(["s1", "s2"], {"s1": a, "s2": a.with_subject(1)}, {}, ids, 3)
    data, labels = aligned_training_data(samples)  # both in stimulus order 0, 1, 2, 3
    assert np.array_equal(data[0], a.values[[3, 1, 2, 0]]) and np.array_equal(data[1], a.values[[0, 1, 3, 2]])
    assert np.array_equal(labels, a.labels[[0, 1, 3, 2]])
    ids[("train", "s2")] = np.array([0, 1, 3, 5])
    with pytest.raises(DataError, match="s2 did not see the same training stimuli as s1"):
        aligned_training_data(samples)


def _arrays(mask: np.ndarray, n: int = 12, seed: int = 0) -> SampleArrays:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 3)) < 0.5).astype(np.float32)
    values = rng.normal(size=(n, int(mask.sum()))).astype(np.float32) + labels[:, :1]
    return SampleArrays(values, np.arange(n) % 2, labels, rng.normal(size=(n, 4)).astype(np.float32),
                        rng.normal(size=(n, 5)).astype(np.float32))  # fmt: skip


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    options = {"n_subjects": 2, "n_classes": 3}
    return build_model("clip_mused", model_config("clip_mused", "testing", options))


def _task(seed: int = 0, val: bool = False, **loss) -> SemanticTask:
    mask = np.ones((9, 8, 7), bool)
    arrays = _arrays(mask)
    from brainkit.objectives.semantic import SemanticLossConfig

    return SemanticTask(_model(seed), SemanticLoss(SemanticLossConfig(**loss)), arrays, VolumeGrid(mask),
                        val=_arrays(mask, n=10, seed=1) if val else None)  # fmt: skip


TRAINING = replace(RELEASED_TRAINING, epochs=6, batch_size=4, lr=1e-2, lr_step_epochs=2, progress=False)


def test_task_trains_on_the_one_trainer_seeded_and_learns() -> None:
    first, second = _task(val=True), _task(val=True)
    history = train(first, TRAINING).history
    again = train(second, TRAINING).history
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in again]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert {"train_bce", "train_rsm_high", "train_rsm_low", "train_orthogonality", "val_map"} <= set(
        history[-1]
    )
    assert 0 <= history[-1]["val_map"] <= 1
    assert [h["lr"] for h in history] == pytest.approx(
        [1e-2, 1e-2, 7e-3, 7e-3, 4.9e-3, 4.9e-3]
    )  # x0.7 / 2 epochs
    out = predict(first.model, first.data, first.grid, batch_size=5)
    assert out["scores"].shape == (12, 3) and out["attention"].shape == (2, 12)
    assert ((out["scores"] > 0) & (out["scores"] < 1)).all()
    with pytest.raises(DataError, match="same number of rows"):
        SampleArrays(
            first.data.values, first.data.subject[:3], first.data.labels, first.data.high, first.data.low
        )


def test_task_attention_at_a_tenth_of_the_rate_and_ragged_end_dropped() -> None:
    task = _task()
    groups = task.parameter_groups()
    assert [g.get("lr_scale", 1.0) for g in groups] == [1.0, 0.1]
    attention = {id(p) for p in task.model.attention_parameters()}
    assert attention == {id(p) for p in groups[1]["params"]} and attention
    assert not attention & {id(p) for p in groups[0]["params"]}
    assert len(list(task.parameters())) == len(groups[0]["params"]) + len(groups[1]["params"])
    batches = task.batches(0, 5, torch.Generator().manual_seed(0))  # 12 rows: two of 5 (BatchNorm needs > 1)
    assert [len(b) for b in batches] == [5, 5]
    x, subject, labels, high, low = task.load(batches[0], None)
    assert x.shape == (5, 9, 8, 7) and subject.dtype == torch.int64 and labels.shape == (5, 3)


def test_task_resume_is_exact(tmp_path) -> None:
    """Stopped after 2 of 4 epochs, then resumed == the uninterrupted run (weights, BatchNorm statistics, losses)."""
    config = replace(TRAINING, epochs=4)
    full = _task()
    whole = train(full, config, out_dir=tmp_path / "full")
    train(_task(), config, out_dir=tmp_path / "part", until_epoch=2)
    resumed = _task(seed=5)  # another initialisation: everything must come from the checkpoint
    again = train(resumed, config, out_dir=tmp_path / "part", resume=True)
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in whole.history]
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and any("running_mean" in k for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


class _RunningStatistics(SemanticTask):
    """BatchNorm in eval mode while training (running statistics instead of each process's half batch): torch's
    SyncBatchNorm raises for CPU tensors, so on CPU this is the setting in which 2 processes must train exactly
    what 1 does. What the check still covers: the batch split, the RSM / orthogonality terms gathered across
    processes, the parameter groups and the gradient average."""

    def train(self, mode: bool = True):
        super().train(mode)
        for layer in self.modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                layer.eval()
        return self


def clip_mused_fit_worker(fabric, out_dir: str) -> None:
    """Run by Fabric in each process: trains the tiny CLIP-MUSED task, rank 0 saves the weights."""
    mask = np.ones((9, 8, 7), bool)
    task = _RunningStatistics(_model(), SemanticLoss(), _arrays(mask), VolumeGrid(mask))
    train(task, replace(TRAINING, epochs=3, batch_size=6), fabric=fabric)
    save_rank0(fabric, out_dir, task.model.state_dict())


@pytest.mark.slow
def test_two_process_gloo_matches_single_process(tmp_path) -> None:
    """Global batch 6 split over 2 gloo processes == one process with batch 6 (same batches, same loss)."""

    one, two = one_and_two_processes(clip_mused_fit_worker, tmp_path)
    a, b, before = one["weights"], two["weights"], _model()
    assert a.keys() == b.keys()
    assert not torch.allclose(a["classifier.weight"], before.classifier.weight, atol=1e-3)  # it did train
    # The key part of each qkv bias has no gradient in exact arithmetic (the softmax ignores a shift shared by all
    # keys), so both runs move it only by float noise, which Adam scales up to steps of up to lr x 0.1 (measured:
    # 3e-5 apart). It is held to that bound; everything else to float summation order.
    width = before.config.n_heads * before.config.head_dim
    keys = torch.zeros(3 * width, dtype=torch.bool)
    keys[width : 2 * width] = True
    steps, rate = 3 * (12 // 6), TRAINING.lr * 0.1
    for key in a:
        if key.endswith("qkv.bias"):
            assert (a[key][keys] - b[key][keys]).abs().max() <= 2 * steps * rate
            a[key], b[key] = a[key][~keys], b[key][~keys]
        # float summation order (gloo's all-reduce vs one process's sum), scaled up by Adam's normalisation where
        # a gradient is small: measured 3.6e-6 abs / 1.2e-4 rel on 2 of 972 conv elements (torch 2.13 CPU). A wrong
        # batch split moves most elements by ~lr (2e-3) and still fails.
        torch.testing.assert_close(a[key], b[key], rtol=5e-4, atol=1e-5)


def test_figures() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((20, 4)) < 0.4).astype(int)
    figure = token_embedding_figure(rng.normal(size=(20, 6)), rng.normal(size=(20, 6)), labels, list("abcd"))
    assert isinstance(figure, Figure) and len(figure.axes) == 3
    mask = np.zeros((8, 8, 4), bool)
    mask[1:7, 1:7, :] = True
    attention = np.zeros((2, 16))
    attention[:, 5] = 1.0  # token (1, 1, 0) of a 4x4x1 token grid -> voxels [2:4, 2:4, :]
    volumes = attention_volume(attention, (4, 4, 1), mask)
    assert volumes.shape == (2, 8, 8, 4) and volumes[0, 2:4, 2:4].min() == 1 and volumes[0].sum() == 16
    assert len(attention_figure(volumes, mask).axes) >= 6
    with pytest.raises(DataError, match="do not fill the grid"):
        attention_volume(attention, (3, 3, 1), mask)


def test_presets_build() -> None:
    assert recipe_config("clip_mused", "hcp").model_preset == "hcp"
    hcp = recipe_config("clip_mused", "hcp").training
    assert (hcp.epochs, hcp.batch_size, hcp.lr, hcp.accelerator) == (500, 64, 1e-3, "cuda")
    assert (hcp.optimizer, hcp.schedule, hcp.lr_step_epochs, hcp.lr_decay) == ("adam", "step", 25, 0.7)
    assert (hcp.warmup_epochs, hcp.grad_clip, hcp.weight_decay) == (0, None, 0)
    assert recipe_config("clip_mused", "testing", ["training.epochs=3"]).training.epochs == 3
    assert recipe_config("clip_mused").model_preset == "cpu_small"
    with pytest.raises(ConfigError, match="methods must include 'clip_mused'"):
        run_recipe("clip_mused", preset="testing", overrides=["methods=[srm]"], folder="/nonexistent/x")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One dataset cache for the end-to-end runs of this file (the dataset is built once)."""
    return tmp_path_factory.mktemp("clip_mused_cache")


# the testing preset cut to the main network, one per-subject baseline (two networks) and SRM, one epoch
SHORT = ["methods=[clip_mused,per_subject,srm]", "training.epochs=1"]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, cache_dir):
    """An uninterrupted run of the testing preset with ``SHORT``."""
    folder = tmp_path_factory.mktemp("clip_mused_short") / "run"
    return run_recipe(
        "clip_mused", folder=folder, preset="testing", overrides=[f"cache_dir={cache_dir}", *SHORT]
    )


def test_run_then_eval_gives_the_same_metrics(short_run, tmp_path) -> None:
    """`brainkit eval` reloads the networks (no training), refits SRM and gives the run's metrics exactly."""
    import shutil

    from brainkit.errors import CheckpointError
    from brainkit.recipes import evaluate_run

    rows = short_run.metrics["rows"]
    assert [row["method"] for row in rows] == ["clip_mused", "per_subject", "srm", "label_frequency"]
    assert all("train_s" not in row for row in rows)  # seconds: in the tables only
    table = next(iter(short_run.tables.values()))
    assert all("train_s" in row for row in table) and table[0]["train_s"] > 0
    assert json.loads((short_run.folder / "metrics.json").read_text())["metrics"] == short_run.metrics
    for name in ("clip_mused", "per_subject_sub01", "per_subject_sub02"):
        assert (short_run.folder / "train" / name / "done.json").is_file()
    assert not list(short_run.folder.rglob("state"))

    assert evaluate_run(short_run.folder) == short_run.metrics

    broken = tmp_path / "broken"
    shutil.copytree(short_run.folder, broken)
    (broken / "checkpoints" / "per_subject_sub02" / "model.safetensors").unlink()
    with pytest.raises(
        CheckpointError, match="per_subject_sub02/model.safetensors is missing.*evaluate does not train"
    ):
        evaluate_run(broken)


def _histories(folder) -> dict[str, list[dict]]:
    """Each phase's history without its wall-clock seconds."""
    from brainkit.training import read_history

    return {phase.name: [{k: v for k, v in r.items() if k != "seconds"} for r in read_history(phase)]
            for phase in sorted((folder / "train").iterdir())}  # fmt: skip


def test_predict_gives_the_probabilities_the_run_scored(short_run, tmp_path, capsys) -> None:
    """The run's own test data through brainkit.load(RUN).predict give exactly the probabilities its evaluation
    scores (the main network and the per-subject one); bad subjects, decoders and voxel counts are refused."""
    from brainkit.errors import DataError
    from brainkit.recipes.clip_mused import load_network, prepare
    from brainkit.recipes.loaded import load

    run = load(short_run.folder)
    dataset, samples, grid = prepare(run.config)
    scored = load_network("clip_mused", samples, grid, run.config, short_run.folder)
    per_subject = load_network("per_subject", samples, grid, run.config, short_run.folder)
    for subject in samples.subjects:
        raw = dataset.test[subject].values
        got = run.predict(raw, subject=subject)
        assert got.shape == (len(raw), len(run.predictor.categories)) and got.dtype == np.float32
        np.testing.assert_array_equal(got, scored.scores[subject].astype(np.float32))
        own = run.predict(raw, subject=subject, decoder="per_subject")
        np.testing.assert_array_equal(own, per_subject.scores[subject].astype(np.float32))
    first = samples.subjects[0]
    with pytest.raises(DataError, match="say which one the input is from"):
        run.predict(dataset.test[first].values)
    with pytest.raises(DataError, match="the input is from subject 'nobody'"):
        run.predict(dataset.test[first].values, subject="nobody")
    with pytest.raises(ConfigError, match="has no network 'no_rsm'"):
        run.predict(dataset.test[first].values, subject=first, decoder="no_rsm")
    with pytest.raises(DataError, match="the input has 3 features"):
        run.predict(dataset.test[first].values[:, :3], subject=first)
    np.save(tmp_path / "new.npy", dataset.test[first].values[:4])
    out = tmp_path / "p.npy"
    args = [
        "predict",
        str(short_run.folder),
        "--input",
        str(tmp_path / "new.npy"),
        "--subject",
        first,
        "--out",
        str(out),
    ]
    assert main(args) == 0
    np.testing.assert_array_equal(np.load(out), run.predict(dataset.test[first].values[:4], subject=first))


def test_resume_continues_exactly(short_run, tmp_path, cache_dir, monkeypatch, capsys) -> None:
    """Killed in CLIP-MUSED's training, then in the second per-subject network's: each --resume reloads the
    finished networks (not retrained), continues the interrupted one, and the run ends as the uninterrupted one."""
    from brainkit.recipes import evaluate_run
    from brainkit.testing import SimulatedKill, killing_train
    from brainkit.training import phase

    run, partial = tmp_path / "run", tmp_path / ".run.partial"
    overrides = [f"cache_dir={cache_dir}", *SHORT]
    calls: list[str] = []
    monkeypatch.setattr(phase, "train", killing_train("clip_mused", until_step=2, calls=calls))
    with pytest.raises(SimulatedKill):
        run_recipe("clip_mused", folder=run, preset="testing", overrides=overrides)
    assert (partial / "train" / "clip_mused" / "state").is_dir() and not run.exists()
    with pytest.raises(ConfigError, match="interrupted run of clip_mused is at .*--resume"):
        run_recipe("clip_mused", folder=run, preset="testing", overrides=overrides)

    calls.clear()
    monkeypatch.setattr(phase, "train", killing_train("per_subject_sub02", until_step=3, calls=calls))
    with pytest.raises(SimulatedKill):
        run_recipe("clip_mused", folder=run, resume=True)
    assert calls == ["clip_mused", "per_subject_sub01", "per_subject_sub02"]
    assert (partial / "train" / "per_subject_sub01" / "done.json").is_file()
    assert (partial / "train" / "per_subject_sub02" / "state").is_dir()

    calls.clear()
    monkeypatch.setattr(phase, "train", killing_train("nothing", calls=calls))
    assert main(["run", "clip_mused", "--out", str(run), "--resume"]) == 0
    assert calls == ["per_subject_sub02"]  # CLIP-MUSED and the first per-subject network were reloaded
    assert not partial.exists()
    assert json.loads((run / "metrics.json").read_text())["metrics"] == short_run.metrics
    assert _histories(run) == _histories(short_run.folder) and len(_histories(run)) == 3
    assert evaluate_run(run) == short_run.metrics
    assert main(["run", "clip_mused", "--out", str(run), "--resume"]) == 2
    assert "is complete; there is nothing to resume" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_runs_testing_preset(tmp_path, cache_dir, capsys) -> None:
    out = tmp_path / "run"
    args = [
        "run",
        "clip_mused",
        "--preset",
        "testing",
        "--out",
        str(out),
        "--set",
        f"cache_dir={cache_dir}",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    from brainkit.report.labels import value_label

    for method in ("clip_mused", "no_rsm", "no_orthogonality", "no_subject_tokens", "per_subject", "pooled", "srm",
                   "label_frequency"):  # fmt: skip
        assert value_label(method) in printed  # each method under its label
    assert "mAP per subject" in printed and "CLIP-MUSED (mAP" in printed
    saved = json.loads((out / "metrics.json").read_text())
    rows = {row["method"]: row for row in saved["metrics"]["rows"]}
    assert rows["label_frequency"]["AUC"] == pytest.approx(0.5)
    assert all(0 <= row["mAP"] <= 1 for row in rows.values())
    report = (out / "report.html").read_text()
    from brainkit.testing import report_problems

    assert report_problems(out / "report.html") == []  # human labels, percentages, version, command
    assert "Attention of the subject tokens" in report and "coloured by category" in report
    assert (out / "checkpoints" / "clip_mused" / "model.safetensors").is_file()
    assert (out / "checkpoints" / "per_subject_sub02" / "config.json").is_file()


@pytest.mark.slow
def test_prepare_uses_both_towers_of_a_local_clip_for_the_high_level_target(tmp_path) -> None:
    from clip_fixture import write_tiny_clip

    from brainkit.data import load_dataset
    from brainkit.recipes.clip_mused import FAST_TEST_DATA
    from brainkit.stimuli.cache import embed_stimuli
    from brainkit.stimuli.semantic_features import semantic_targets

    folder = write_tiny_clip(tmp_path / "tiny_clip", num_hidden_layers=1)  # random weights, CLIP's layout
    dataset = load_dataset("hcp_movie_like", cache_dir=tmp_path / "cache", **FAST_TEST_DATA)
    base = recipe_config("clip_mused", "testing", [f"cache_dir={tmp_path / 'cache'}"])
    plain = semantic_samples(dataset, base.high_dim, base.feature_clip, cache_dir=base.cache_dir)
    clip_config = recipe_config("clip_mused", "testing", [f"cache_dir={tmp_path / 'cache'}", f"clip_model_dir={folder}"])  # fmt: skip
    with_clip = semantic_samples(dataset, clip_config.high_dim, clip_config.feature_clip,
                                 clip_config.clip_model_dir, clip_config.cache_dir)  # fmt: skip
    a, b = plain.train["sub01"], with_clip.train["sub01"]
    assert a.high.shape == (len(a.high), 8) and b.high.shape == (len(a.high), 12)  # PCA dim vs CLIP's width
    assert np.array_equal(a.low, b.low) and np.array_equal(a.values, b.values)
    assert np.allclose(np.linalg.norm(b.high, axis=1), 1, atol=1e-5)
    # the high-level target is the one combining step applied to CLIP's image AND text embeddings
    stimuli = dataset.stimuli
    assert {"clip_vit_l14_pooled", "clip_text"} <= set(stimuli.embeddings)
    image = embed_stimuli(stimuli, "clip_vit_l14_pooled", cache_dir=tmp_path / "cache", model_dir=folder)
    text = embed_stimuli(stimuli, "clip_text", cache_dir=tmp_path / "cache", model_dir=folder)
    assert image.shape == text.shape == (len(stimuli), 12)
    features = {role: spec[0] for role, spec in dataset.info["parameters"]["features"].items()}
    train_rows = stimuli.positions(np.unique(dataset.train["sub01"].stimulus_ids))
    _, high = semantic_targets(stimuli.embedding(features["low"]), image, text, train_rows,
                               clip_config.high_dim, clip_config.feature_clip, joint_space=True)  # fmt: skip
    rows = stimuli.positions(with_clip.ids[("train", "sub01")])
    np.testing.assert_allclose(b.high, high[rows], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("model_preset=typo", "has no preset 'typo'"),
        ('methods=["nope"]', "methods\\[0\\]='nope' is not allowed"),
        ("data.fooo=1", "takes no option\\(s\\) \\['fooo'\\]"),
        ("model.dimm=3", "unknown key\\(s\\) \\['dimm'\\]"),
        ('released_subjects=["a", "a"]', "must be distinct subject names"),
    ],
)
def test_bad_settings_fail_before_any_data_is_built(tmp_path, capsys, setting, message) -> None:
    import re

    from brainkit.cli import main

    out = tmp_path / "run"
    assert main(["run", "clip_mused", "--preset", "testing", "--out", str(out), "--set", setting]) == 2
    assert re.search(message, capsys.readouterr().err) and not out.exists()


def test_bench_scores_of_a_run(short_run) -> None:
    """`brainkit bench` reads mAP / AUC / Hamming of every method, the label-frequency row as their chance."""
    from bench_checks import check_scores

    rows = check_scores("clip_mused", short_run.tables, {"clip_mused", "per_subject", "srm"}, {"mAP", "AUC"})
    chance = next(r for r in next(iter(short_run.tables.values())) if r["method"] == "label_frequency")
    assert "label_frequency" not in {r["method"] for r in rows}
    assert {r["chance"] for r in rows if r["metric"] == "mAP"} == {chance["mAP"]}
    assert {r["role"] for r in rows} == {"method", "baseline"}
    assert not next(r for r in rows if r["metric"] == "Hamming loss")["higher_is_better"]
