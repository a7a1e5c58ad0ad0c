"""GOD and BOLD5000 as trial datasets with their images (folders in the real layouts, brainkit.testing_kamitani),
Vis-Dec (and Lite-Mind) run on each from the command line, `brainkit eval`, `brainkit.load(run).predict`, and the
Vis-Dec predictor reading NIfTI input through the run's brain mask."""

from __future__ import annotations

import json

import numpy as np
import pytest

import brainkit
from brainkit.cli import main
from brainkit.data import from_arrays, load_dataset
from brainkit.data.readers.bold5000 import bold5000_split, read_bold5000_subject
from brainkit.data.readers.god import read_god_subject
from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.recipes import evaluate_run, recipe_config, run_recipe
from brainkit.testing_kamitani import write_bold5000_folder, write_god_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_god_dataset_pairs_rows_with_images(tmp_path):
    example = write_god_folder(tmp_path / "god")
    dataset = load_dataset("god", root=str(example.root))
    assert dataset.design == "trials" and dataset.subjects == ["sbj_1", "sbj_3"]
    with np.load(example.root / "images_256.npz") as images, np.load(example.root / "sbj_3.npz") as npz:
        train, test = dataset.train["sbj_3"], dataset.test["sbj_3"]
        assert train.values.shape == (36, 41) and test.values.shape == (10, 41)
        np.testing.assert_allclose(train.values, npz["arr_0"][:, npz["VC"]].astype(np.float32))
        np.testing.assert_allclose(test.values, npz["arr_2"][:, npz["VC"]].astype(np.float32))
        stimuli = dataset.stimuli
        shown = stimuli.images[stimuli.positions(train.stimulus_ids)]
        np.testing.assert_array_equal(shown, images["train_images"][npz["arr_3"]])
        np.testing.assert_array_equal(
            stimuli.images[stimuli.positions(test.stimulus_ids)], images["test_images"]
        )
    assert (test.n_repeats == 3).all() and dataset.info["test_trials_per_image"]["sbj_3"] == 3
    v1 = load_dataset("god", root=str(example.root), subjects=[1], roi="V1")
    assert (
        v1.subjects == ["sbj_1"]
        and v1.train["sbj_1"].n_features == read_god_subject(example.root, 1, "V1").train.shape[1]
    )


def test_god_dataset_errors(tmp_path):
    with pytest.raises(FileFormatError, match="No GOD subject files sbj_1.npz"):
        load_dataset("god", root=str(tmp_path))
    example = write_god_folder(tmp_path / "god", subjects=(1,))
    with np.load(example.root / "sbj_1.npz") as npz:
        arrays = dict(npz)
    np.savez(example.root / "sbj_2.npz", **{**arrays, "arr_2": arrays["arr_2"][:-1]})
    with pytest.raises(FileFormatError, match="arr_2 has 9 averaged test rows but images_256.npz has 10"):
        load_dataset("god", root=str(example.root), subjects=[2])
    np.savez(example.root / "sbj_4.npz", **{**arrays, "arr_3": arrays["arr_3"] + 100})
    with pytest.raises(FileFormatError, match="arr_3 indexes up to"):
        load_dataset("god", root=str(example.root), subjects=[4])
    (example.root / "images_256.npz").unlink()
    with pytest.raises(FileFormatError, match="images_256.npz does not exist"):
        load_dataset("god", root=str(example.root))


def test_bold5000_dataset_matches_trials_to_presented_images(tmp_path):
    example = write_bold5000_folder(tmp_path / "b5")
    dataset = load_dataset("bold5000", root=str(example.root), image_size=24)
    assert dataset.subjects == ["CSI1", "CSI2"]
    subject = read_bold5000_subject(example.root, "CSI2")
    assert list(subject.stimuli) == example.trials["CSI2"]  # sessions and runs in order, "rep_" removed
    train, test = dataset.train["CSI2"], dataset.test["CSI2"]
    assert len(train) == 30 and len(test) == 8 and (test.n_repeats == 3).all()
    assert not set(train.stimulus_ids) & set(example.repeated) and set(test.stimulus_ids) == set(
        example.repeated
    )
    _, split_test, names = bold5000_split(
        example.root, subject
    )  # the pretraining path's numbers are the same
    order = [list(test.stimulus_ids).index(name) for name in names]
    np.testing.assert_allclose(test.values[order], split_test, rtol=1e-5, atol=1e-6)
    raw = dataset.info["raw_test_trials"]["CSI2"]
    assert len(raw) == 24 and set(raw.stimulus_ids) == set(example.repeated)
    from PIL import Image

    name = test.stimulus_ids[0]
    with Image.open(example.files[name]) as image:  # square crops resized: a square file stays whole
        if image.width == image.height:
            expected = np.asarray(image.convert("RGB").resize((24, 24), Image.BICUBIC))
            np.testing.assert_array_equal(
                dataset.stimuli.images[dataset.stimuli.positions([name])[0]], expected
            )
    assert dataset.stimuli.images.shape == (38, 24, 24, 3)


def test_bold5000_dataset_errors(tmp_path):
    example = write_bold5000_folder(tmp_path / "b5", subjects=(1,))
    name = example.repeated[0]
    example.files[name].rename(example.files[name].with_name("renamed.jpg"))
    with pytest.raises(FileFormatError, match=r"1 trial image name\(s\) match no file under"):
        load_dataset("bold5000", root=str(example.root))
    with pytest.raises(ConfigError, match="image_size must be between 8 and 4096"):
        load_dataset("bold5000", root=str(example.root), image_size=2)
    (example.root / "BOLD5000_Stimuli" / "Scene_Stimuli" / "repeated_stimuli_113_list.txt").unlink()
    with pytest.raises(FileFormatError, match="Missing .*repeated_stimuli_113_list.txt"):
        load_dataset("bold5000", root=str(example.root))


def test_vis_dec_presets_name_only_the_root(tmp_path):
    god = recipe_config("vis_dec", "god")
    assert god.dataset == "god" and god.data == {} and god.subject == "sbj_3"
    assert recipe_config("vis_dec", "bold5000").dataset == "bold5000"
    with pytest.raises(ConfigError, match="dataset 'god' needs data.root"):
        run_recipe("vis_dec", preset="god", folder=tmp_path / "a")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`brainkit run vis_dec --preset testing` on a GOD and on a BOLD5000 folder."""
    base = tmp_path_factory.mktemp("kamitani")
    god = write_god_folder(base / "god")
    bold = write_bold5000_folder(base / "b5")
    out = {}
    for name, root, subject in (("god", god.root, "sbj_1"), ("bold5000", bold.root, "CSI1")):
        options = f"data={{root: {root}}}" if name == "god" else f"data={{root: {root}, image_size: 32}}"
        argv = ["run", "vis_dec", "--preset", "testing", "--set", f"dataset={name}", "--set", options,
                "--set", f"subject={subject}", "--set", "n_val_images=3", "--out", str(base / f"run_{name}")]  # fmt: skip
        assert main(argv) == 0
        out[name] = base / f"run_{name}"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name, n_test", [("god", 10), ("bold5000", 8)])
def test_vis_dec_on_the_real_layouts_evaluates_and_predicts_again(runs, name, n_test, tmp_path):
    import nibabel as nib

    folder = runs[name]
    metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    assert set(metrics["metrics"]) == {"Vis-Dec", "shuffled pairs", "no fMRI", "VAE ceiling"}
    assert evaluate_run(folder) == metrics
    run = brainkit.load(folder)
    dataset = load_dataset(run.config.dataset, **run.config.data)
    raw = dataset.test[run.config.subject].values
    with np.load(folder / "reconstructions.npz") as saved:
        assert len(saved["test_ids"]) == n_test
        np.testing.assert_array_equal(run.predict(raw), saved["vis_dec"])
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4, 1), np.float32), np.eye(4)), tmp_path / "new.nii.gz")
    with pytest.raises(DataError, match="needs the brain mask the run was trained with"):
        run.predict(str(tmp_path / "new.nii.gz"))  # GOD / BOLD5000 carry no volume mask


@pytest.mark.slow
def test_vis_dec_predicts_from_nifti_with_the_runs_mask_or_one_given(tmp_path):
    """A run on data with a brain mask in info: NIfTI input is masked like the data were (voxels in nonzero
    order); mask= (an array or a NIfTI file) overrides it; a grid that differs is refused."""
    import nibabel as nib

    from brainkit.testing import photo_crops, tiny_decoding_dataset

    tiny = tiny_decoding_dataset(n_train_stimuli=30, n_test_stimuli=6, voxels={"sub-01": 24}, image_size=16)
    mask = np.zeros((4, 3, 3), bool)
    mask.flat[np.random.default_rng(1).choice(36, size=24, replace=False)] = True
    dataset = from_arrays(
        {"sub-01": tiny.train["sub-01"].values}, {"sub-01": tiny.train["sub-01"].stimulus_ids},
        {"sub-01": tiny.test["sub-01"].values}, {"sub-01": tiny.test["sub-01"].stimulus_ids},
        space="native", stimulus_ids=tiny.stimuli.ids, images=photo_crops(8, 16)[: len(tiny.stimuli)],
        info={"mask": mask},
    )  # fmt: skip
    result = brainkit.run("vis_dec", dataset, preset="testing", overrides=["subject=sub-01", "n_val_images=3"],
                          out=tmp_path / "run")  # fmt: skip
    run = brainkit.load(result.folder)
    raw = dataset.test["sub-01"].values[:3]
    volumes = np.zeros((*mask.shape, len(raw)), np.float32)
    volumes[mask] = raw.T
    nib.save(nib.Nifti1Image(volumes, np.eye(4)), tmp_path / "new.nii.gz")
    expected = run.predict(raw)
    np.testing.assert_array_equal(run.predict(str(tmp_path / "new.nii.gz")), expected)
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)), tmp_path / "mask.nii.gz")
    np.testing.assert_array_equal(
        run.predict(str(tmp_path / "new.nii.gz"), mask=str(tmp_path / "mask.nii.gz")), expected
    )
    assert main(["predict", str(result.folder), "--input", str(tmp_path / "new.nii.gz"), "--out",
                 str(tmp_path / "images.npy")]) == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "images.npy"), expected)
    with pytest.raises(DataError, match=r"the run's brain mask is \(5, 3, 3\)"):
        run.predict(str(tmp_path / "new.nii.gz"), mask=np.ones((5, 3, 3), bool))


@pytest.mark.slow
def test_lite_mind_reads_god(tmp_path):
    example = write_god_folder(tmp_path / "god", subjects=(2,))
    argv = ["run", "lite_mind", "--preset", "testing", "--set", "data.name=god", "--set",
            f"data.options={{root: {example.root}}}", "--set", "data.subject=sbj_2", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    assert "Lite-Mind" in json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
