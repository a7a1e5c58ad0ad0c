"""Your data in, decoding out: from_arrays, saved dataset folders, a run on them, brainkit.load / predict / retrieve."""

import json

import numpy as np
import pytest

import brainkit
from brainkit.data import from_arrays, load_dataset, save_dataset
from brainkit.errors import DataError, FileFormatError
from brainkit.testing import photo_crops, tiny_decoding_dataset

WITH_RIDGE = "baselines=[{name: ridge, preset: testing}]"


def _my_arrays(seed=0):
    """A user's arrays: two subjects, single trials, real photo crops as stimuli, a brain mask in info."""
    tiny = tiny_decoding_dataset(voxels={"sub-01": 24, "sub-02": 19}, image_size=16, seed=seed)
    images = photo_crops(n_per_source=12, size=16)[: len(tiny.stimuli)]
    train = {s: tiny.train[s].values for s in tiny.subjects}
    train_ids = {s: tiny.train[s].stimulus_ids for s in tiny.subjects}
    test = {s: tiny.test[s].values for s in tiny.subjects}
    test_ids = {s: tiny.test[s].stimulus_ids for s in tiny.subjects}
    mask = np.zeros((4, 3, 2), bool)
    mask.flat[np.random.default_rng(1).choice(24, size=24, replace=False)] = True
    return dict(
        train=train,
        train_stimuli=train_ids,
        test=test,
        test_stimuli=test_ids,
        space="native",
        stimulus_ids=tiny.stimuli.ids,
        images=images,
        embeddings={"my_clip": tiny.stimuli.embeddings["toy"]},
        info={"mask": mask, "tr": 1.5},
        name="my_lab",
    )


def test_from_arrays_round_trips_through_a_checksummed_folder(tmp_path):
    dataset = from_arrays(**_my_arrays())
    assert dataset.subjects == ["sub-01", "sub-02"] and dataset.design == "trials"
    assert len(dataset.test["sub-01"]) == 13  # test repeats averaged
    save_dataset(dataset, tmp_path / "saved")
    again = load_dataset("folder", root=str(tmp_path / "saved"))
    for part in ("train", "test"):
        for subject in dataset.subjects:
            a, b = getattr(dataset, part)[subject], getattr(again, part)[subject]
            np.testing.assert_array_equal(a.values, b.values)
            np.testing.assert_array_equal(a.stimulus_ids, b.stimulus_ids)
            np.testing.assert_array_equal(a.n_repeats, b.n_repeats)
            assert a.space == b.space
    np.testing.assert_array_equal(again.stimuli.images, dataset.stimuli.images)
    np.testing.assert_array_equal(again.stimuli.embeddings["my_clip"], dataset.stimuli.embeddings["my_clip"])
    np.testing.assert_array_equal(again.info["mask"], dataset.info["mask"])
    assert again.info["tr"] == 1.5

    data = bytearray((tmp_path / "saved" / "sub-01.train.safetensors").read_bytes())
    data[-3] ^= 0x01  # one flipped bit inside the values
    (tmp_path / "saved" / "sub-01.train.safetensors").write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="does not match the checksum"):
        load_dataset("folder", root=str(tmp_path / "saved"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"images": "float"}, "images must be uint8 RGB in 0-255, found float32"),
        ({"test": "one subject"}, "train has subjects"),
        ({"train_stimuli": "unknown id"}, "not among the"),
        ({"space": {"sub-01": "native"}}, "space is given for subjects"),
        ({"train": "nan"}, "NaN/inf"),
    ],
)
def test_from_arrays_refuses_what_it_cannot_use(change, message):
    arrays = _my_arrays()
    ((key, how),) = change.items()
    if how == "float":
        arrays["images"] = arrays["images"].astype(np.float32) / 255
    elif how == "one subject":
        arrays["test"] = {"sub-01": arrays["test"]["sub-01"]}
    elif how == "unknown id":
        arrays["train_stimuli"]["sub-01"] = arrays["train_stimuli"]["sub-01"].copy()
        arrays["train_stimuli"]["sub-01"][0] = "never_shown"
    elif how == "nan":
        arrays["train"]["sub-01"] = arrays["train"]["sub-01"].copy()
        arrays["train"]["sub-01"][2, 3] = np.nan
    else:
        arrays[key] = how
    with pytest.raises(DataError, match=message):
        from_arrays(**arrays)


@pytest.fixture(scope="module")
def my_run(tmp_path_factory):
    """Lite-Mind + ridge trained on the user's arrays, through brainkit.run."""
    folder = tmp_path_factory.mktemp("runs") / "mine"
    overrides = ["data.subject=sub-01", "data.target=my_clip", "training.epochs=2", WITH_RIDGE]
    return brainkit.run(
        "lite_mind", from_arrays(**_my_arrays()), preset="testing", overrides=overrides, out=folder
    )


def test_a_run_on_your_data_carries_it_and_evaluates_again(my_run):
    saved = json.loads((my_run.folder / "config.json").read_text())["config"]["data"]
    assert saved["name"] == "folder" and saved["options"] == {"root": "${run}/data"}
    assert (my_run.folder / "data" / "dataset.json").is_file()
    assert my_run.config.data.options["root"] == str((my_run.folder / "data").resolve())
    assert set(my_run.metrics) == {"Lite-Mind", "Ridge"}
    assert my_run.evaluate() == my_run.metrics  # brainkit eval reads the data the run carries


def test_load_predict_equals_what_evaluation_scored(my_run):
    """run.predict on the raw test rows == the predictions evaluation scored, bit for bit."""
    from brainkit.data.paired import prepare_data
    from brainkit.recipes.lite_mind import decoders, load_decoder

    run = brainkit.load(my_run.folder)
    data = prepare_data(run.config.data, seed=run.config.training.seed)
    raw = data.dataset.test["sub-01"].values
    for decoder in decoders(run.config):
        scored = load_decoder(run.config, run.folder / decoder.folder, data)
        predicted = run.predict(raw, decoder=decoder.label)
        assert predicted.shape == (13, 11)
        np.testing.assert_array_equal(predicted, scored.predictions)
    with pytest.raises(DataError, match="has 19 features"):
        run.predict(data.dataset.test["sub-02"].values)
    with pytest.raises(DataError, match="from subject 'sub-02'"):
        run.predict(raw, subject="sub-02")
    with pytest.raises(DataError, match="in space 'MNI152'"):
        run.predict(raw, space="MNI152")


def test_predict_command_reads_npy_and_nifti_and_ranks_a_gallery(my_run, tmp_path, capsys):
    import nibabel as nib
    from PIL import Image

    from brainkit.cli import main

    run = brainkit.load(my_run.folder)
    raw = load_dataset("folder", root=str(my_run.folder / "data")).test["sub-01"].values
    np.save(tmp_path / "new.npy", raw)
    assert main(["predict", str(my_run.folder), "--input", str(tmp_path / "new.npy"),
                 "--out", str(tmp_path / "pred.npy")]) == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), run.predict(raw))

    mask = load_dataset("folder", root=str(my_run.folder / "data")).info["mask"]
    volumes = np.zeros((*mask.shape, len(raw)), np.float32)
    volumes[mask] = raw.T
    nib.save(nib.Nifti1Image(volumes, np.eye(4)), tmp_path / "new.nii.gz")
    assert main(["predict", str(my_run.folder), "--input", str(tmp_path / "new.nii.gz"),
                 "--out", str(tmp_path / "pred_nii.npy")]) == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "pred_nii.npy"), run.predict(raw))

    np.save(tmp_path / "wrong.npy", raw[:, :20])
    assert main(["predict", str(my_run.folder), "--input", str(tmp_path / "wrong.npy"),
                 "--out", str(tmp_path / "x.npy")]) == 2  # fmt: skip
    assert "the input has 20 features" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()
    assert main(["predict", str(my_run.folder), "--input", str(tmp_path / "new.npy"), "--subject", "sub-02",
                 "--out", str(tmp_path / "x.npy")]) == 2  # fmt: skip
    assert "from subject 'sub-02'" in capsys.readouterr().err

    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for i, image in enumerate(photo_crops(n_per_source=2, size=24)[:6]):
        Image.fromarray(image).save(gallery / f"photo{i}.png")
    with pytest.raises(DataError, match="target 'my_clip' is an embedding the dataset brought"):
        run.retrieve(raw[:3], gallery)
    mine = np.random.default_rng(0).standard_normal((6, 11)).astype(np.float32)
    found = run.retrieve(raw[:3], gallery, k=2, embeddings=mine, html=tmp_path / "page.html")
    assert found["ids"].shape == (3, 2) and set(found["ids"].ravel()) <= {f"photo{i}.png" for i in range(6)}
    decoded = run.predict(raw[:3])
    cosine = _unit(decoded) @ _unit(mine).T
    best = np.argsort(-cosine, axis=1)[:, :2]
    assert found["ids"].tolist() == [[f"photo{j}.png" for j in row] for row in best]
    np.testing.assert_allclose(found["scores"], np.take_along_axis(cosine, best, 1), rtol=1e-5)
    assert "gallery retrieval" in (tmp_path / "page.html").read_text()


def test_retrieve_embeds_a_folder_of_images_with_the_runs_encoder(tmp_path):
    """Targets computed by a brainkit encoder (pixel_projection): the gallery folder is embedded the same way
    (checked on the probe images saved with the run) and searched with FAISS."""
    from PIL import Image

    arrays = _my_arrays()
    arrays.pop("embeddings")
    overrides = ["data.subject=sub-02", "data.target=pixel_projection", f"data.cache_dir={tmp_path / 'cache'}",
                 "training.epochs=1"]  # fmt: skip
    run = brainkit.run(
        "lite_mind", from_arrays(**arrays), preset="testing", overrides=overrides, out=tmp_path / "r"
    )
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for i, image in enumerate(photo_crops(n_per_source=2, size=40)[:7]):
        Image.fromarray(image).save(gallery / f"img{i}.png")
    raw = arrays["test"]["sub-02"][:4]
    found = run.retrieve(raw, gallery, k=3, html=tmp_path / "found.html")
    _, _, embedded = run.predictor.embed_gallery(gallery)
    decoded = run.predict(raw)
    cosine = _unit(decoded) @ _unit(embedded).T
    best = np.argsort(-cosine, axis=1)[:, :3]
    assert found["ids"].tolist() == [[f"img{j}.png" for j in row] for row in best]
    assert (tmp_path / "found.html").is_file()


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_test_set_that_keeps_its_repeats_is_averaged_for_retrieval():
    """Kept test repeats (average_test_repeats=False, as hcp_movie_like keeps them) would put a stimulus's target
    into the gallery twice, tying with the right one; the paired data averages them to one row per stimulus."""
    from brainkit.data.paired import DataSpec, prepare_data

    arrays = _my_arrays()
    noise = np.random.default_rng(3).normal(size=arrays["test"]["sub-01"].shape).astype(np.float32)
    arrays["test"] = {s: np.concatenate([x, x + noise[:, : x.shape[1]]]) for s, x in arrays["test"].items()}
    arrays["test_stimuli"] = {s: np.concatenate([i, i]) for s, i in arrays["test_stimuli"].items()}
    kept = from_arrays(**arrays, average_test_repeats=False)
    ids = kept.test["sub-01"].stimulus_ids
    assert len(np.unique(ids)) * 2 == len(ids)
    spec = DataSpec(name="my_lab", subject="sub-01", target="my_clip", val_fraction=0.0)
    data = prepare_data(spec, kept)
    averaged = prepare_data(spec, from_arrays(**arrays))  # the dataset averages them itself
    assert sorted(data.test_ids) == sorted(np.unique(ids)) and len(data.test.x) == len(np.unique(ids))
    order = np.argsort(data.test_ids)
    again = np.argsort(averaged.test_ids)
    np.testing.assert_allclose(data.test.x[order], averaged.test.x[again], rtol=1e-5, atol=1e-5)
