"""The vis_dec recipe: its arrays, the frozen-encoder shortcut, presets, and end-to-end runs of the testing preset:
the run folder, `brainkit eval` reproducing its metrics, and resuming after kills in phase 1 and phase 3."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from brainkit.cli import main
from brainkit.errors import CheckpointError, ConfigError
from brainkit.models.ldm import load_pretrained_ldm
from brainkit.recipes import evaluate_run, recipe_config, run_recipe
from brainkit.recipes.vis_dec.arrays import prepare_arrays, wrap_pad
from brainkit.recipes.vis_dec.phases import GivenTokens, encode_tokens, fmri_conditioner
from brainkit.testing import tiny_decoding_dataset
from brainkit.training import phase_done, read_history

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Encoder(torch.nn.Module):
    def __init__(self, n_voxels: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(n_voxels, 5 * 7)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).reshape(len(x), 5, 7)


def test_wrap_pad_repeats_the_first_voxels() -> None:
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    np.testing.assert_array_equal(wrap_pad(x, 4), np.concatenate([x, x[:, :3]], axis=1))
    assert wrap_pad(x, 5) is x


def test_prepare_arrays_pairs_trials_with_their_images() -> None:
    dataset = tiny_decoding_dataset()
    subject = dataset.subjects[0]
    train = dataset.train[subject]
    arrays = prepare_arrays(dataset, subject, n_test=3, patch_size=4)
    assert arrays.train_voxels.shape[1] % 4 == 0 and arrays.n_raw_voxels == train.values.shape[1]
    np.testing.assert_allclose(arrays.train_voxels[:, : arrays.n_raw_voxels].mean(0), 0, atol=1e-5)
    images = dataset.stimuli.images[dataset.stimuli.positions(train.stimulus_ids)]
    np.testing.assert_array_equal(arrays.train_images[arrays.train_image_index], images)
    assert len(arrays.test_voxels) == len(arrays.test_images) == 3
    assert arrays.val_voxels.shape == (0, arrays.train_voxels.shape[1])


def test_validation_images_leave_the_training_set() -> None:
    dataset = tiny_decoding_dataset()
    subject = dataset.subjects[0]
    train = dataset.train[subject]
    arrays = prepare_arrays(dataset, subject, n_test=3, patch_size=4, n_val=5, seed=1)
    assert len(arrays.val_voxels) == len(arrays.val_images) == 5
    n_images = len(np.unique(train.stimulus_ids))
    assert len(arrays.train_images) == n_images - 5
    # no validation image is a training image, and no trial was lost
    flat = lambda images: {img.tobytes() for img in images}  # noqa: E731
    assert not flat(arrays.val_images) & flat(arrays.train_images)
    per_image = len(train.values) // n_images
    assert len(arrays.train_voxels) + 5 * per_image == len(train.values)
    again = prepare_arrays(dataset, subject, n_test=3, patch_size=4, n_val=5, seed=1)
    np.testing.assert_array_equal(again.val_voxels, arrays.val_voxels)
    with pytest.raises(ConfigError, match="n_val_images must be between"):
        prepare_arrays(dataset, subject, n_test=3, patch_size=4, n_val=n_images)


def test_frozen_encoder_tokens_give_the_same_context() -> None:
    torch.manual_seed(0)
    conditioner = fmri_conditioner(Encoder(13), 13, cross_attention_dim=11, train_encoder=False)
    assert not any(p.requires_grad for p in conditioner.encoder.parameters())
    x = np.random.default_rng(0).standard_normal((4, 13)).astype(np.float32)
    direct = conditioner(torch.as_tensor(x))
    via_tokens = conditioner.mapper(
        GivenTokens().encode(torch.as_tensor(encode_tokens(conditioner.encoder, x)))
    )
    assert direct.shape == (4, 77, 11)
    torch.testing.assert_close(direct, via_tokens)


def test_presets(tmp_path) -> None:
    paper = recipe_config("vis_dec", "paper")
    assert paper.dc_mae_preset == "paper" and paper.n_steps == 250 and paper.n_samples == 5
    assert paper.pretrain.lr == 2.5e-4 and paper.finetune.batch_size == 8 and paper.train_encoder
    assert recipe_config("vis_dec").ldm_preset == "cpu_small"
    with pytest.raises(ConfigError, match="set ldm_dir="):
        run_recipe("vis_dec", preset="paper", folder=tmp_path / "a")
    with pytest.raises(ConfigError, match="needs n_val_images >= 2"):
        run_recipe("vis_dec", preset="testing", overrides=["n_val_images=1"], folder=tmp_path / "c")
    assert recipe_config("vis_dec").guidance_scale is None and paper.guidance_scale == 1.0
    with pytest.raises(ConfigError, match="ldm_preset must be one of"):
        run_recipe("vis_dec", preset="testing", overrides=["ldm_preset=huge"], folder=tmp_path / "b")


PHASE_NAMES = ["phase1_dc_mae", "phase2_image_mae", "phase2_cross_modal", "ldm_vae", "ldm_unet", "phase3_ldm"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("vis_dec_cache"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, cache_dir):
    """One uninterrupted run of the testing preset (one torch thread: the preset's ``threads``)."""
    folder = tmp_path_factory.mktemp("vis_dec_runs") / "full"
    return run_recipe("vis_dec", folder=folder, preset="testing", overrides=[f"cache_dir={cache_dir}"])


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.slow
def test_testing_preset_run_folder(full_run) -> None:
    out = full_run.folder
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"] == full_run.metrics and set(full_run.metrics) == {"metrics", "guidance"}
    metrics = saved["metrics"]["metrics"]
    assert set(metrics) == {"Vis-Dec", "shuffled pairs", "no fMRI", "VAE ceiling"}
    for row in metrics.values():
        assert -1 <= row["pixel_corr"] <= 1 and 0 <= row["semantic_50way_top1"] <= 1
    assert metrics["Vis-Dec"]["n_samples"] == 2
    guidance = saved["metrics"]["guidance"]
    assert set(guidance["validation"]) == {"1", "3"} and guidance["n_val_images"] == 4
    assert guidance["scale"] in (1.0, 3.0)
    assert guidance["validation"][f"{guidance['scale']:g}"] == max(guidance["validation"].values())
    with np.load(out / "reconstructions.npz") as saved_images:
        assert saved_images["vis_dec"].shape == (12, 2, 16, 16, 3)
        assert saved_images["real"].shape == (12, 16, 16, 3)
    stages = {row["stage"] for row in saved["tables"]["Time per stage (s)"]}
    assert {"phase 1: DC-MAE pretraining", "phase 3: LDM fine-tuning", "sampling"} <= stages
    report = (out / "report.html").read_text()
    from brainkit.testing import report_problems

    assert report_problems(out / "report.html") == []  # human labels, percentages, version, command
    assert "Real test images and their reconstructions" in report and "Training curves, per phase" in report
    unet, vae, _ = load_pretrained_ldm(out / "ldm_finetuned")
    assert unet.config.cross_attention_dim == 16
    assert (out / "fmri_conditioner" / "model.safetensors").is_file()
    assert (out / "train" / "phase2_cross_modal" / "fmri_encoder" / "config.json").is_file()
    for name in PHASE_NAMES:  # every phase finished: weights and result kept, resumable state removed
        assert phase_done(out / "train" / name) and not (out / "train" / name / "state").exists()
        assert read_history(out / "train" / name)


@pytest.mark.slow
def test_predict_reconstructs_new_recordings_as_the_run_did(full_run, tmp_path, capsys) -> None:
    """The run's own test fMRI through brainkit.load(RUN).predict give exactly its reconstructions.npz images;
    other subjects, voxel counts and a gallery are refused; `brainkit predict` writes the images."""
    from brainkit.data import load_dataset
    from brainkit.errors import DataError
    from brainkit.recipes.loaded import load

    run = load(full_run.folder)
    config = run.config
    dataset = load_dataset(config.dataset, **config.data, cache_dir=config.cache_dir)
    n_test = len(np.load(full_run.folder / "reconstructions.npz")["test_ids"])
    raw = dataset.test[config.subject].values[:n_test]
    images = run.predict(raw)
    with np.load(full_run.folder / "reconstructions.npz") as saved:
        assert images.dtype == np.uint8 and np.array_equal(images, saved["vis_dec"])
    assert run.predict(raw[:2], n_samples=1, seed=5).shape == (2, 1, 16, 16, 3)
    with pytest.raises(DataError, match="the input is from subject 'subj02'"):
        run.predict(raw, subject="subj02")
    with pytest.raises(DataError, match="the input has 3 features"):
        run.predict(raw[:, :3])
    with pytest.raises(ConfigError, match="does not rank a gallery"):
        run.retrieve(raw, np.zeros((2, 16, 16, 3), np.uint8))
    np.save(tmp_path / "new.npy", raw[:3])
    out = tmp_path / "images.npy"
    assert (
        main(["predict", str(full_run.folder), "--input", str(tmp_path / "new.npy"), "--out", str(out)]) == 0
    )
    assert np.array_equal(np.load(out), run.predict(raw[:3]))  # the same call: the same images
    assert "Decoded 3 sample(s), each (2, 16, 16, 3)" in capsys.readouterr().out


@pytest.mark.slow
def test_eval_reproduces_the_run_metrics_exactly(full_run, tmp_path) -> None:
    """`brainkit eval` reloads the checkpoints and samples again with the run's seeds: the same numbers, exactly."""
    assert evaluate_run(full_run.folder) == full_run.metrics
    (tmp_path / "bare").mkdir()
    shutil.copy(full_run.folder / "config.json", tmp_path / "bare")
    with pytest.raises(CheckpointError, match="ldm_finetuned is missing: .* not a finished vis_dec run"):
        evaluate_run(tmp_path / "bare")


@pytest.mark.slow
def test_resume_after_kills_in_phase1_phase2_and_phase3(
    full_run, cache_dir, tmp_path, monkeypatch, capsys
) -> None:
    """Killed in the DC-MAE pretraining (its state continued), then in the cross-modal tuning and in the LDM
    fine-tuning before either saved a state (each restarts after the phases before it were reloaded, so its
    network must start from the same seeded weights): every --resume reloads the finished phases, trains none of
    them again, and the result equals the uninterrupted run's."""
    import brainkit.training.phase
    from brainkit.testing import SimulatedKill, killing_train

    run, partial = tmp_path / "run", tmp_path / ".run.partial"
    overrides = [f"cache_dir={cache_dir}"]
    calls: list[str] = []
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("phase1_dc_mae", 2, calls))
    with pytest.raises(SimulatedKill):
        run_recipe("vis_dec", folder=run, preset="testing", overrides=overrides)
    assert (partial / "train" / "phase1_dc_mae" / "state").is_dir() and not run.exists()
    with pytest.raises(ConfigError, match="interrupted run of vis_dec is at .*continue it with --resume"):
        run_recipe("vis_dec", folder=run, preset="testing", overrides=overrides)

    trained = {  # the phases each resume trains: the finished ones before are reloaded
        "phase2_cross_modal": ["phase1_dc_mae", "phase2_image_mae", "phase2_cross_modal"],
        "phase3_ldm": ["phase2_cross_modal", "ldm_vae", "ldm_unet", "phase3_ldm"],
    }
    for later, expected in trained.items():
        calls.clear()
        monkeypatch.setattr(brainkit.training.phase, "train", killing_train(later, 2, calls))
        with pytest.raises(SimulatedKill):
            run_recipe("vis_dec", folder=run, resume=True)
        assert calls == expected
        assert all(phase_done(partial / "train" / name) for name in PHASE_NAMES[: PHASE_NAMES.index(later)])
        shutil.rmtree(partial / "train" / later / "state")  # as if killed before its first checkpoint

    calls.clear()
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("nothing", calls=calls))
    assert main(["run", "vis_dec", "--out", str(run), "--resume"]) == 0
    assert calls == ["phase3_ldm"]
    printed = capsys.readouterr().out
    for name in ("Vis-Dec", "shuffled pairs", "no fMRI", "VAE ceiling", "phase 1: DC-MAE pretraining"):
        assert name in printed
    assert not partial.exists()
    assert json.loads((run / "metrics.json").read_text())["metrics"] == full_run.metrics
    for name in PHASE_NAMES:
        resumed, full = read_history(run / "train" / name), read_history(full_run.folder / "train" / name)
        assert resumed and _without_seconds(resumed) == _without_seconds(full)


def test_phase1_adds_extra_sources_wrap_padded_to_the_built_in_width() -> None:
    from types import SimpleNamespace

    from brainkit.data.readers.pretraining_sources import read_pretraining_source
    from brainkit.errors import DataError
    from brainkit.recipes.vis_dec.arrays import phase1_voxels

    train = np.random.default_rng(0).standard_normal((5, 1824)).astype(np.float32)
    assert phase1_voxels(SimpleNamespace(extra_pretraining={}), train) is train
    stacked = phase1_voxels(SimpleNamespace(extra_pretraining={"nitime": {}}), train)
    (nitime,) = read_pretraining_source("nitime").values()  # the real BOLD runs, (80, 1808) after its padding
    assert stacked.shape == (5 + len(nitime), 1824) and stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[:5], train)
    np.testing.assert_allclose(stacked[5:, : nitime.shape[1]], nitime)
    np.testing.assert_allclose(stacked[5:, nitime.shape[1] :], nitime[:, :16])  # wrap padding
    with pytest.raises(DataError, match="more than the common length"):
        phase1_voxels(SimpleNamespace(extra_pretraining={"nitime": {}}), train[:, :1792])


def test_bench_scores_of_a_run(full_run) -> None:
    """`brainkit bench` reads every reconstruction metric; the shuffled-pairs row is the chance of those with none."""
    from bench_checks import check_scores

    rows = check_scores("vis_dec", full_run.tables, {"Vis-Dec", "no fMRI", "VAE ceiling"},
                        {"PixCorr", "SSIM", "MSE"})  # fmt: skip
    table = full_run.tables["Vis-Dec vs baselines"]
    shuffled = next(r for r in table if r["method"] == "shuffled pairs")
    pixcorr = next(r for r in rows if r["method"] == "Vis-Dec" and r["metric"] == "PixCorr")
    assert pixcorr["chance"] == shuffled["pixel_corr_mean"] and "shuffled pairs" not in {
        r["method"] for r in rows
    }
    assert {r["role"] for r in rows} == {"method", "baseline", "ceiling"}
    assert not next(r for r in rows if r["metric"] == "MSE")["higher_is_better"]
