"""CLIP-MUSED on your own trial data: from_arrays with labels, categories and a volume mask in ``info`` runs, is
evaluated and predicts; data that lack them are refused with what to give."""

from __future__ import annotations

import numpy as np
import pytest

import brainkit
from brainkit.data import from_arrays, load_dataset
from brainkit.data.semantic import check_semantic_dataset
from brainkit.errors import DataError
from brainkit.testing_hcp import write_hcp_movie_folder

FEATURES = "{low: [pixel_projection, {dim: 13}], image: [pixel_projection, {dim: 17}], text: [hashed_words, {dim: 11}]}"


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    """The tiny HCP folder's samples as a user holds them: arrays per subject, ids, images, texts, labels, mask."""
    root = tmp_path_factory.mktemp("your_hcp") / "HCP"
    write_hcp_movie_folder(root, subjects=("s1", "s2"), n_seconds=20)
    dataset = load_dataset("hcp_movie", root=str(root), clips="all", grid="run", image_size=32,
                           features={"low": ["pixel_projection", {"dim": 5}], "image": ["pixel_projection", {"dim": 5}],
                                     "text": ["hashed_words", {"dim": 5}]},
                           cache_dir=str(tmp_path_factory.mktemp("your_cache")))  # fmt: skip
    return dataset


def _mine(dataset, **info_changes):
    info = {k: dataset.info[k] for k in ("labels", "categories", "mask")} | info_changes
    info = {k: v for k, v in info.items() if v is not None}
    subjects = dataset.subjects
    return from_arrays(
        {s: dataset.train[s].values for s in subjects},
        {s: dataset.train[s].stimulus_ids for s in subjects},
        {s: dataset.test[s].values for s in subjects},
        {s: dataset.test[s].stimulus_ids for s in subjects},
        space="MNI152NLin6Asym",
        stimulus_ids=dataset.stimuli.ids,
        images=dataset.stimuli.images,
        labels=dataset.stimuli.labels,
        info=info,
    )


def test_your_arrays_run_evaluate_and_predict(arrays, tmp_path, capsys) -> None:
    from brainkit.cli import main
    from brainkit.recipes.clip_mused import load_network, prepare

    mine = _mine(arrays)
    run = brainkit.run("clip_mused", mine, preset="testing", out=tmp_path / "run",
                       overrides=[f"features={FEATURES}", "methods=[clip_mused,srm]", f"cache_dir={tmp_path / 'c'}"])  # fmt: skip
    assert run.config.dataset == "folder" and run.config.data == {"root": str(run.folder / "data")}
    assert main(["eval", str(run.folder)]) == 0
    dataset, samples, grid = prepare(run.config)
    assert samples.n_classes == len(arrays.info["categories"]) and grid.shape == arrays.info["mask"].shape
    scored = load_network("clip_mused", samples, grid, run.config, run.folder)
    for subject in dataset.subjects:
        got = run.predict(dataset.test[subject].values, subject=subject)
        np.testing.assert_array_equal(got, scored.scores[subject].astype(np.float32))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": None}, r"has no labels in its info.*from_arrays\(\.\.\., info=\{'labels'"),
        ({"categories": ["one"]}, "must list 7 category names"),
        ({"mask": None}, r"has no volume mask \(info\['mask'\]\)"),
        (
            {"mask": np.ones((3, 3, 3), bool)},
            "the mask 27 voxels; the columns must be the mask's True voxels",
        ),
        ({"labels": "text"}, r"info\['labels'\] must be 0/1"),
    ],
)
def test_what_clip_mused_needs_is_said(arrays, change, message) -> None:
    if change.get("labels") == "text":
        change = {"labels": np.full(arrays.info["labels"].shape, 2)}
    with pytest.raises(DataError, match=message):
        check_semantic_dataset(_mine(arrays, **change))


def test_the_run_refuses_data_without_categories(arrays, tmp_path) -> None:
    with pytest.raises(DataError, match="CLIP-MUSED decodes multi-label categories"):
        brainkit.run("clip_mused", _mine(arrays, labels=None, categories=None), preset="testing",
                     out=tmp_path / "run", overrides=[f"features={FEATURES}"])  # fmt: skip


def test_one_mask_from_equal_subject_masks_else_an_error(arrays) -> None:
    from brainkit.data.semantic import semantic_mask

    mine = _mine(arrays, mask=None)
    mask = arrays.info["mask"]
    mine.info["masks"] = {s: mask.copy() for s in mine.subjects}
    np.testing.assert_array_equal(semantic_mask(mine), mask)
    other = mask.copy()
    other[np.argwhere(mask)[0][0]] = False
    mine.info["masks"][mine.subjects[1]] = other
    with pytest.raises(DataError, match="brain masks .* differ; CLIP-MUSED reads every subject on one grid"):
        semantic_mask(mine)
