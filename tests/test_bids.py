"""The ``bids`` dataset: a BIDS folder (raw or fMRIPrep derivatives) -> single-trial betas -> DecodingDataset."""

import shutil

import numpy as np
import pytest

from brainkit.data import DecodingDataset, load_dataset
from brainkit.data.readers.bids import load_bids
from brainkit.errors import ConfigError, DataError
from brainkit.testing_bids import MOTION, write_bids_folder


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return write_bids_folder(tmp_path_factory.mktemp("bids") / "ds")


def _copy(example, tmp_path):
    """A copy of the example folder to break (its files are a few hundred kB)."""
    shutil.copytree(example.root, tmp_path / "ds")
    return tmp_path / "ds"


def _identification(dataset, example):
    """Ridge from each subject's train betas to the true features; 8-way top-1 identification of the test images."""
    from sklearn.linear_model import RidgeCV

    feature_of = dict(zip(example.stimulus_ids, example.features))
    scores = []
    for subject in dataset.subjects:
        train, test = dataset.train[subject], dataset.test[subject]
        target = np.stack([feature_of[s] for s in train.stimulus_ids])
        model = RidgeCV(alphas=np.logspace(-1, 4, 12)).fit(train.values, target)
        predicted = model.predict(test.values)
        truth = np.stack([feature_of[s] for s in test.stimulus_ids])
        similarity = np.corrcoef(predicted, truth)[: len(test), len(test) :]
        scores.append(np.mean(similarity.argmax(axis=1) == np.arange(len(test))))
    return float(np.mean(scores))


def test_raw_runs_with_a_mask_lsa(example):
    data = load_dataset("bids", root=example.root, task=example.task, mask=example.mask_path, image_size=32)
    assert isinstance(data, DecodingDataset) and data.subjects == ["sub-01", "sub-02"]
    assert data.stimuli.ids.tolist() == sorted(example.stimulus_ids)
    assert data.stimuli.images.shape == (40, 32, 32, 3) and data.stimuli.images.dtype == np.uint8
    from PIL import Image

    first = np.asarray(Image.open(example.root / "stimuli" / data.stimuli.ids[0]).convert("RGB"))
    np.testing.assert_array_equal(data.stimuli.images[0], first)
    for subject in data.subjects:
        train, test = data.train[subject], data.test[subject]
        assert train.values.shape == (32, example.n_voxels) and test.values.shape == (8, example.n_voxels)
        assert train.space == test.space == "native"
        assert sorted(test.stimulus_ids) == sorted(example.test_ids) and (test.n_repeats == 2).all()
        assert not set(train.stimulus_ids) & set(test.stimulus_ids) and (train.n_repeats == 1).all()
        assert sorted(set(train.run)) == [1, 2] and (train.session == 0).all()
        assert train.trial.min() == 0 and train.trial.max() == 23  # 0-based among each run's 24 image trials
        assert train.feature_coords.shape == (example.n_voxels, 3)
        np.testing.assert_allclose(train.values.mean(0), 0, atol=0.5)  # z-scored per run: train+test mean 0
    assert data.info["split"] == "test: stimuli shown more than once to a subject; averaged over repeats"
    assert data.info["runs"]["sub-01"] == [
        f"sub-01/func/sub-01_task-images_run-{r}_bold.nii.gz" for r in (1, 2)
    ]
    assert data.info["tr"]["sub-02"] == [2.0, 2.0]
    np.testing.assert_array_equal(data.info["masks"]["sub-01"], example.mask)
    assert _identification(data, example) >= 0.75  # chance 0.125


@pytest.mark.parametrize("estimator, floor", [("lsa", 0.75), ("lss", 0.5)])
def test_fmriprep_derivatives_with_confounds(example, estimator, floor):
    data = load_bids(
        example.root, example.task, space=example.space, derivatives=example.derivatives,
        confounds=list(MOTION) + ["framewise_displacement"], estimator=estimator, image_size=None,
    )  # fmt: skip
    assert data.stimuli.images is None
    assert data.train["sub-02"].values.shape == (32, example.n_voxels)
    assert data.test["sub-01"].space == example.space
    assert (
        data.info["glm"]["estimator"] == estimator and data.info["confounds"][-1] == "framewise_displacement"
    )
    assert _identification(data, example) >= floor


def test_test_runs_and_test_stimuli_splits(example):
    options = dict(root=example.root, task=example.task, mask=example.mask_path, image_size=None)
    by_run = load_bids(**options, test_runs=[2], subjects=["01"])
    assert by_run.subjects == ["sub-01"]
    test = by_run.test["sub-01"]
    assert len(test) == 24 and (test.run == 2).all() and (test.n_repeats == 1).all()
    # run 1's trials of the 8 images shown again in run 2 are dropped from train
    assert len(by_run.train["sub-01"]) == 16 and by_run.info["dropped_train_trials"] == {"sub-01": 8}
    chosen = example.stimulus_ids[10:13]
    by_stimulus = load_bids(**options, test_stimuli=chosen, average_test=False, subjects=["sub-02"])
    assert sorted(by_stimulus.test["sub-02"].stimulus_ids) == sorted(chosen)
    assert len(by_stimulus.train["sub-02"]) == 48 - 3 and by_stimulus.info["test_stimuli"] == sorted(chosen)
    with pytest.raises(ConfigError, match="test_runs or test_stimuli, not both"):
        load_bids(**options, test_runs=[1], test_stimuli=chosen)


def test_sessions_and_the_registry(tmp_path):
    from brainkit.data.contract import returns_of
    from brainkit.registry import DATASETS

    assert returns_of(DATASETS.get("bids")) is DecodingDataset
    needs = DATASETS.details("bids")["needs"]
    assert "stim_file" in needs and "mask=" in needs and "fsLR" in DATASETS.details("bids")["space"]
    example = write_bids_folder(tmp_path / "ds", n_subjects=1, n_trials_per_run=12, n_test_stimuli=4,
                                derivatives=False, session="pre")  # fmt: skip
    data = load_bids(example.root, example.task, sessions=["ses-pre"], mask=example.mask_path, image_size=8)
    assert (data.train["sub-01"].session == 1).all() and data.info["sessions"] == {"pre": 1}
    assert data.train["sub-01"].values.shape == (16, example.n_voxels)
    with pytest.raises(DataError, match=r"No BOLD runs found for task 'images'.*sessions \['post'\]"):
        load_bids(example.root, example.task, sessions=["post"], mask=example.mask_path)


def test_errors_name_what_is_missing(example, tmp_path):
    raw = dict(mask=example.mask_path, image_size=None)
    with pytest.raises(DataError, match=r"No BOLD runs found for task 'faces'.*tasks: \['images'\]"):
        load_bids(example.root, "faces", **raw)
    with pytest.raises(DataError, match=r"space 'T1w'.*spaces in the derivatives: \['MNI152NLin2009cAsym'\]"):
        load_bids(example.root, example.task, space="T1w", derivatives=example.derivatives)
    with pytest.raises(DataError, match=r"subject\(s\) \['sub-07'\]"):
        load_bids(example.root, example.task, subjects=["01", "07"], **raw)
    with pytest.raises(ConfigError, match="Raw runs need mask="):
        load_bids(example.root, example.task)
    with pytest.raises(ConfigError, match="also pass derivatives="):
        load_bids(example.root, example.task, space=example.space)
    with pytest.raises(DataError, match=r"no column\(s\) \['global_signal'\]"):
        load_bids(example.root, example.task, space=example.space, derivatives=example.derivatives,
                  confounds=["csf", "global_signal"], subjects=["01"])  # fmt: skip
    with pytest.raises(DataError, match=r"no 'image_id' column"):
        load_bids(example.root, example.task, stimulus_column="image_id", **raw)


def test_file_errors(example, tmp_path):
    import nibabel as nib

    root = _copy(example, tmp_path)
    options = dict(task=example.task, image_size=None)
    wrong = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 7, 6), np.uint8), np.eye(4)), str(wrong))
    with pytest.raises(DataError, match=r"volumes have shape \(6, 7, 5\) but the mask has shape \(6, 7, 6\)"):
        load_bids(root, mask=wrong, **options)

    func = root / "derivatives" / "fmriprep" / "sub-01" / "func"
    mask_file = func / "sub-01_task-images_run-2_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 7, 6), np.uint8), np.eye(4)), str(mask_file))
    with pytest.raises(
        DataError, match=r"sub-01: different voxel counts across runs: .*run 1 .* 62 brain voxels"
    ):
        load_bids(root, space=example.space, derivatives=root / "derivatives" / "fmriprep", **options)

    name = example.stimulus_ids[20]
    (root / "stimuli" / name).unlink()
    with pytest.raises(DataError, match=rf"row \d+: stim_file '{name}' does not exist"):
        load_bids(root, mask=example.mask_path, **options)

    (root / "sub-02" / "func" / "sub-02_task-images_run-2_events.tsv").unlink()
    with pytest.raises(DataError, match=r"sub-02_task-images_run-2_bold.nii.gz: no events.tsv for this run"):
        load_bids(root, mask=example.mask_path, subjects=["02"], **options)


def test_events_table_errors_name_the_row(example, tmp_path):
    import pandas as pd

    root = _copy(example, tmp_path)
    path = root / "sub-01" / "func" / "sub-01_task-images_run-1_events.tsv"
    events = pd.read_csv(path, sep="\t")
    events.loc[5, "onset"] = 999.0
    events.to_csv(path, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(
        DataError, match=r"run-1_events.tsv: row 5 has onset 999.0 s, at or past the run's end"
    ):
        load_bids(root, example.task, mask=example.mask_path, image_size=None)
    events.drop(columns="onset").to_csv(path, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(DataError, match=r"run-1_events.tsv: the events table has no 'onset' column"):
        load_bids(root, example.task, mask=example.mask_path, image_size=None)


def test_an_id_column_names_the_stimuli(example, tmp_path):
    import pandas as pd

    root = _copy(example, tmp_path)
    for path in root.glob("sub-*/func/*_events.tsv"):
        events = pd.read_csv(path, sep="\t")
        events["image_id"] = events["stim_file"].str.extract(r"(stim\d+)", expand=False)
        events.to_csv(path, sep="\t", index=False, na_rep="n/a")
    data = load_bids(root, example.task, mask=example.mask_path, stimulus_column="image_id", image_size=16)
    assert data.stimuli.ids[:2].tolist() == ["stim000", "stim001"]
    assert data.info["stim_file"][:2] == ["images/stim000.png", "images/stim001.png"]
    assert data.stimuli.images.shape == (40, 16, 16, 3)
    path = root / "sub-01" / "func" / "sub-01_task-images_run-2_events.tsv"
    events = pd.read_csv(path, sep="\t")
    events.loc[0, "stim_file"] = "images/stim039.png"  # an id showing another file than elsewhere
    events.to_csv(path, sep="\t", index=False, na_rep="n/a")
    pattern = r"row \d+: stimulus 'stim\d+' is shown as '.*' here and as '.*' elsewhere; one image_id must"
    with pytest.raises(DataError, match=pattern):
        load_bids(root, example.task, mask=example.mask_path, stimulus_column="image_id", image_size=None)


def test_one_command_trains_lite_mind_and_ridge_on_a_bids_folder_then_eval_and_predict(
    example, tmp_path, capsys
):
    """From the BIDS folder: ONE command trains Lite-Mind and ridge and writes a report; `brainkit eval` gives
    the run's numbers; `brainkit predict` decodes a NIfTI run with the run's own mask and refuses wrong input."""
    import json

    import nibabel as nib

    from brainkit.cli import main

    run = tmp_path / "run"
    options = f"data.options={{root: {example.root}, task: {example.task}, mask: {example.mask_path}}}"
    command = ["run", "lite_mind", "--preset", "testing", "--out", str(run), "--set", "data.name=bids",
               "--set", "data.subject=sub-01", "--set", options, "--set", "evaluation.n_way=8",
               "--set", f"data.cache_dir={tmp_path / 'cache'}",
               "--set", "baselines=[{name: ridge, preset: testing}]"]  # fmt: skip
    assert main(command) == 0
    assert "Lite-Mind" in capsys.readouterr().out and (run / "report.html").is_file()
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"Lite-Mind", "Ridge"}
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics

    dataset = load_dataset("bids", root=str(example.root), task=example.task, mask=str(example.mask_path))
    mask = dataset.info["masks"]["sub-01"]
    raw = dataset.test["sub-01"].values
    volumes = np.zeros((*mask.shape, len(raw)), np.float32)
    volumes[mask] = raw.T
    nib.save(nib.Nifti1Image(volumes, dataset.info["affines"]["sub-01"]), tmp_path / "new.nii.gz")
    assert main(["predict", str(run), "--input", str(tmp_path / "new.nii.gz"), "--out", str(tmp_path / "p.npy"),
                 "--subject", "sub-01", "--decoder", "Ridge"]) == 0  # fmt: skip
    import brainkit

    np.testing.assert_array_equal(
        np.load(tmp_path / "p.npy"), brainkit.load(run).predict(raw, decoder="Ridge")
    )
    np.save(tmp_path / "short.npy", raw[:, :-1])
    assert (
        main(["predict", str(run), "--input", str(tmp_path / "short.npy"), "--out", str(tmp_path / "q.npy")])
        == 2
    )
    assert f"the input has {raw.shape[1] - 1} features" in capsys.readouterr().err
    assert main(["predict", str(run), "--input", str(tmp_path / "new.nii.gz"), "--out", str(tmp_path / "q.npy"),
                 "--subject", "sub-02"]) == 2  # fmt: skip
    assert "from subject 'sub-02'" in capsys.readouterr().err


def test_a_bids_dataset_saves_and_reads_back_with_its_per_subject_masks(example, tmp_path):
    from brainkit.data import save_dataset

    dataset = load_dataset("bids", root=str(example.root), task=example.task, mask=str(example.mask_path))
    save_dataset(dataset, tmp_path / "saved")
    again = load_dataset("folder", root=str(tmp_path / "saved"))
    for subject in dataset.subjects:
        np.testing.assert_array_equal(again.info["masks"][subject], dataset.info["masks"][subject])
        np.testing.assert_array_equal(again.train[subject].values, dataset.train[subject].values)


@pytest.mark.slow
def test_vis_dec_runs_on_a_bids_folder(example, tmp_path, capsys):
    """Vis-Dec reads the BIDS layout too (its design is trial-based with images): the testing preset end to end,
    and its notes do not call the user's voxels simulated."""
    import json

    from brainkit.cli import main

    data = f"data={{root: {example.root}, task: {example.task}, mask: {example.mask_path}, image_size: 64}}"
    run = tmp_path / "vis_dec"
    assert main(["run", "vis_dec", "--preset", "testing", "--out", str(run), "--set", "dataset=bids",
                 "--set", data, "--set", "subject=sub-01"]) == 0  # fmt: skip
    notes = json.loads((run / "metrics.json").read_text())["notes"]
    assert any("Data: bids sub-01" in n and "62 voxels" in n for n in notes)
    assert not any("simulated" in n for n in notes)
    assert "Vis-Dec" in capsys.readouterr().out


def test_user_data_with_a_recipe_that_cannot_read_it_says_which_can(tmp_path):
    import brainkit
    from brainkit.testing import tiny_decoding_dataset

    with pytest.raises(
        ConfigError, match="Recipe 'brain_mae' cannot read a 'trials' dataset .*lite_mind: trials"
    ):
        brainkit.run("brain_mae", tiny_decoding_dataset(), preset="testing", out=tmp_path / "r")
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def surface_example(tmp_path_factory):
    return write_bids_folder(
        tmp_path_factory.mktemp("bids_surface") / "ds", n_subjects=1, surfaces=True, n_medial_wall=4
    )


@pytest.mark.parametrize("space", ["fsaverage5", "fsLR"])
def test_fmriprep_surface_runs_give_the_betas_of_the_same_signal_in_the_volume(surface_example, space):
    """GIFTI pairs (with a constant medial wall, left out and counted) and CIFTI runs carry the brain voxels'
    series: the betas equal those of the volume run, vertex for voxel."""
    options = dict(root=surface_example.root, task=surface_example.task, derivatives=surface_example.derivatives,
                   confounds=list(MOTION), image_size=None)  # fmt: skip
    volume = load_bids(space=surface_example.space, **options)
    surface = load_bids(space=space, **options)
    kept = surface.info["masks"]["sub-01"]
    n_brain = int(surface_example.mask.sum())
    assert kept.shape == ((n_brain + 8,) if space == "fsaverage5" else (n_brain,))
    assert surface.info["excluded_vertices"] == {"sub-01": 8 if space == "fsaverage5" else 0}
    assert surface.train["sub-01"].space == space and surface.info["affines"] == {"sub-01": None}
    for part in ("train", "test"):
        np.testing.assert_allclose(
            getattr(surface, part)["sub-01"].values, getattr(volume, part)["sub-01"].values, atol=1e-5
        )


def test_surface_runs_take_no_mask_and_need_both_hemispheres(surface_example, tmp_path):
    import shutil

    options = dict(task=surface_example.task, space="fsaverage5", image_size=None)
    with pytest.raises(ConfigError, match="take no mask="):
        load_bids(surface_example.root, derivatives=surface_example.derivatives, mask=surface_example.mask_path,
                  **options)  # fmt: skip
    root = tmp_path / "ds"
    shutil.copytree(surface_example.root, root)
    next(root.glob("derivatives/fmriprep/sub-01/func/*run-2_hemi-R_*.func.gii")).unlink()
    with pytest.raises(DataError, match="no right hemisphere .*run-2_hemi-R_space-fsaverage5_bold.func.gii"):
        load_bids(root, derivatives=root / "derivatives" / "fmriprep", **options)


def test_a_run_on_surface_betas_predicts_from_gifti_pairs_and_cifti(surface_example, tmp_path, capsys):
    """Lite-Mind on fsaverage5 betas; prediction from the two hemispheres' GIFTI files (every vertex: the run
    applies its vertex mask), from CIFTI and from .npy agree; a NIfTI volume is refused with the reason."""
    import nibabel as nib

    import brainkit
    from brainkit.cli import main

    run = tmp_path / "run"
    options = (f"data.options={{root: {surface_example.root}, task: {surface_example.task}, space: fsaverage5, "
               f"derivatives: {surface_example.derivatives}}}")  # fmt: skip
    assert main(["run", "lite_mind", "--preset", "testing", "--out", str(run), "--set", "data.name=bids",
                 "--set", "data.subject=sub-01", "--set", options, "--set", "evaluation.n_way=8",
                 "--set", f"data.cache_dir={tmp_path / 'cache'}"]) == 0  # fmt: skip
    dataset = load_bids(surface_example.root, surface_example.task, space="fsaverage5",
                        derivatives=surface_example.derivatives, image_size=None)  # fmt: skip
    kept, betas = dataset.info["masks"]["sub-01"], dataset.test["sub-01"].values
    whole = np.zeros((len(betas), kept.size), np.float32)
    whole[:, kept] = betas
    half = (kept.size) // 2
    files = []
    for hemi, part in (("L", whole[:, :half]), ("R", whole[:, half:])):
        image = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(row) for row in part])
        files.append(tmp_path / f"betas_hemi-{hemi}.func.gii")
        nib.save(image, files[-1])
    expected = brainkit.load(run).predict(betas, subject="sub-01", space="fsaverage5")
    np.testing.assert_array_equal(brainkit.load(run).predict([str(f) for f in files]), expected)
    assert main(["predict", str(run), "--input", *map(str, files), "--out", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)
    from nibabel.cifti2 import cifti2_axes

    brain = cifti2_axes.BrainModelAxis.from_surface(np.arange(half), half, "CortexLeft") + (
        cifti2_axes.BrainModelAxis.from_surface(np.arange(kept.size - half), kept.size - half, "CortexRight")
    )
    header = nib.cifti2.Cifti2Header.from_axes((cifti2_axes.SeriesAxis(0, 1, len(whole)), brain))
    nib.save(nib.Cifti2Image(whole, header), tmp_path / "betas.dtseries.nii")
    np.testing.assert_array_equal(brainkit.load(run).predict(str(tmp_path / "betas.dtseries.nii")), expected)
    np.save(tmp_path / "kept.npy", betas)
    assert (
        main(["predict", str(run), "--input", str(tmp_path / "kept.npy"), "--out", str(tmp_path / "q.npy")])
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "q.npy"), expected)
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)), tmp_path / "v.nii.gz")
    assert (
        main(["predict", str(run), "--input", str(tmp_path / "v.nii.gz"), "--out", str(tmp_path / "r.npy")])
        == 2
    )
    assert "trained on surface vertices" in capsys.readouterr().err
