"""CLIP-MUSED's NSD variant on tiny files in NSD's real layout (tests/nsd_fixture.py): COCO category labels from the
instance annotation files, ROI groups from NSD's ROI volumes, ROI patches, and the recipe's ``testing_nsd`` preset
run, evaluated and predicting."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nsd_fixture import AFFINE, N_SHARED, roi_truth, write_coco_annotations, write_nsd_fixture

from brainkit.data.readers.nsd import load_nsd
from brainkit.data.readers.nsd_labels import read_coco_labels
from brainkit.data.roi_patches import ROIPatches
from brainkit.errors import ConfigError, DataError, FileFormatError

ROIS = ["prf-visualrois", "floc-faces"]
CSV = "nsddata/experiments/nsd/nsd_stim_info_merged.csv"


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsd")
    truth = write_nsd_fixture(root, subjects=(1, 2))
    labels, categories, folder = write_coco_annotations(root)
    return root, truth, labels, categories, folder


def _load(root, **options):
    return load_nsd(root, subjects=(1, 2), image_size=None, **options)


def test_coco_labels_are_the_annotations_multi_hot_rows(nsd) -> None:
    root, truth, labels, categories, folder = nsd
    data = _load(root, coco_annotations=folder.parent)  # the folder above annotations/ works too
    assert data.info["categories"] == ["person", "bicycle", "motorcycle", "train", "boat"] == categories
    np.testing.assert_array_equal(data.info["labels"], labels[data.info["nsd_id"]])
    assert data.info["labels"].dtype == np.uint8 and data.info["coco_counts"]["without_annotations"] == 1
    row = int(np.flatnonzero(labels[data.info["nsd_id"]].sum(1) >= 2)[0])
    names = [categories[c] for c in np.flatnonzero(labels[data.info["nsd_id"][row]])]
    assert data.stimuli.labels[row] == ", ".join(names)  # the text target: the image's category names


def test_captions_as_the_text_labels(nsd) -> None:
    from nsd_fixture import caption_of

    root, *_, folder = nsd
    data = _load(root, coco_annotations=folder, coco_text="captions")
    assert data.stimuli.labels.tolist() == [
        caption_of(i, 1) for i in data.info["nsd_id"]
    ]  # the first caption
    with pytest.raises(DataError, match="coco_text must be one of"):
        _load(root, coco_annotations=folder, coco_text="caption")
    with pytest.raises(DataError, match=r"coco_text='captions' reads COCO's caption files.*coco_annotations"):
        _load(root, coco_text="captions")


def test_labels_by_hand_category_order_and_gaps(tmp_path) -> None:
    """Three images written by hand: category ids 3, 11, 90 (gaps) in the file's order, repeats count once."""
    categories = [
        {"id": 90, "name": "toothbrush"},
        {"id": 3, "name": "car"},
        {"id": 11, "name": "fire hydrant"},
    ]
    annotations = [(10, 3), (10, 90), (10, 3), (30, 11)]
    content = {"images": [{"id": i} for i in (10, 20, 30)], "categories": categories,
               "annotations": [{"id": k, "image_id": i, "category_id": c} for k, (i, c) in enumerate(annotations)]}  # fmt: skip
    (tmp_path / "instances_train2017.json").write_text(json.dumps(content))
    labels, names, counts = read_coco_labels(tmp_path, [30, 10, 20], ["train2017"] * 3)
    assert names == ["toothbrush", "car", "fire hydrant"]
    np.testing.assert_array_equal(labels, [[0, 0, 1], [1, 1, 0], [0, 0, 0]])
    assert counts == {"images": 3, "without_annotations": 1}
    with pytest.raises(DataError, match=r"1 cocoId\(s\) are not images .*e\.g\. 40 \(looked in train2017\)"):
        read_coco_labels(tmp_path, [10, 40], ["train2017"] * 2)
    with pytest.raises(FileFormatError, match=r"Missing COCO annotation file .*instances_val2017\.json"):
        read_coco_labels(tmp_path, [10], ["val2017"])
    with pytest.raises(DataError, match=r"cocoSplit \['test2015'\] is not one of"):
        read_coco_labels(tmp_path, [10], ["test2015"])


def test_coco_errors_say_what_is_wrong(nsd, tmp_path) -> None:
    root, _, _, _, folder = nsd
    with pytest.raises(
        FileFormatError, match=r"coco_annotations: .*nowhere is not a folder.*annotations_trainval2017"
    ):
        _load(root, coco_annotations=tmp_path / "nowhere")
    broken = tmp_path / "annotations"
    shutil.copytree(folder, broken)
    (broken / "instances_val2017.json").write_text('{"images": [')
    with pytest.raises(FileFormatError, match=r"instances_val2017\.json as JSON.*truncated"):
        _load(root, coco_annotations=broken)
    copy = tmp_path / "nsd"  # an NSD csv whose cocoId of a used image is in no annotation file
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("nsddata_betas"))
    for path in (root / "nsddata_betas").rglob("*"):
        if path.is_file():
            (copy / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            (copy / path.relative_to(root)).symlink_to(path)
    table = pd.read_csv(copy / CSV, index_col=0)
    used = int(_load(root).info["nsd_id"][0])
    table.loc[table["nsdId"] == used, "cocoId"] = 99
    table.to_csv(copy / CSV)
    with pytest.raises(
        DataError, match=r"1 cocoId\(s\) are not images of the COCO annotations.*e\.g\. 99 \(looked in"
    ):
        _load(copy, coco_annotations=folder)


def test_roi_groups_from_nsd_roi_volumes(nsd) -> None:
    root, truth, *_ = nsd
    data = _load(root, patch_rois=ROIS)
    expected = [
        "V1v",
        "V1d",
        "V2v",
        "V2d",
        "V3v",
        "V3d",
        "hV4",
        "floc-faces-1",
        "floc-faces-2",
        "floc-faces-5",
    ]
    assert data.info["roi_names"] == expected  # the colour table's names, else <file>-<value>
    for subject in ("subj01", "subj02"):
        mask = truth["mask"][subject]
        np.testing.assert_array_equal(data.info["masks"][subject], mask)
        hand = roi_truth(root, subject, mask)
        for name, row in zip(data.info["roi_names"], data.info["roi_members"][subject]):
            np.testing.assert_array_equal(row, hand[name])
    counts = data.info["roi_counts"]
    assert counts["subj02"][6] == 0 and counts["subj01"][6] == 2  # hV4: subj01 only
    with pytest.raises(FileFormatError, match=r"Missing NSD ROI file .*roi/streams\.nii\.gz"):
        _load(root, patch_rois=["streams"])
    with pytest.raises(DataError, match="patch_rois takes a list"):
        _load(root, patch_rois="streams")


def test_present_subjects_are_those_with_files(nsd, tmp_path) -> None:
    root, *_ = nsd
    assert load_nsd(root, subjects="present", image_size=None).subjects == ["subj01", "subj02"]
    with pytest.raises(
        FileFormatError, match=r"subjects='present': no NSD subject has .*roi/nsdgeneral\.nii\.gz"
    ):
        load_nsd(tmp_path, subjects="present")


def test_roi_patches_interpolate_each_roi_to_roi_size() -> None:
    members = np.zeros((3, 9), bool)
    members[0, [1, 4, 6, 7]] = True  # 4 voxels -> 7 points
    members[1, 2] = True  # one voxel, repeated
    values = np.random.default_rng(0).normal(size=(5, 9)).astype(np.float32)
    patches = ROIPatches(["a", "b", "empty"], {"s": members}, roi_size=7)
    got = patches(values, "s")
    assert got.shape == (5, 3, 7) and got.dtype == np.float32
    positions = np.linspace(0, 3, 7)  # the first voxel to the last
    for n in range(5):
        np.testing.assert_allclose(
            got[n, 0], np.interp(positions, np.arange(4), values[n, [1, 4, 6, 7]]), rtol=1e-6
        )
    np.testing.assert_array_equal(got[:, 1], np.repeat(values[:, [2]], 7, axis=1))
    assert (got[:, 2] == 0).all()
    same = ROIPatches(["a"], {"s": members[:1]}, roi_size=4)(values, "s")
    np.testing.assert_array_equal(
        same[:, 0], values[:, [1, 4, 6, 7]]
    )  # m == roi_size: the voxels as they are
    info = {"roi_names": ["a", "b", "empty"], "roi_members": {"s": members}}
    built = ROIPatches.from_info(info, ["s"], roi_size=3)
    assert built.names == ["a", "b", "rest"]  # empty everywhere: left out; the voxels in no ROI: one patch
    np.testing.assert_array_equal(built.members["s"][2], ~members.any(0))
    assert ROIPatches.from_info(info, ["s"], roi_size=3, rest=False).names == ["a", "b"]
    with pytest.raises(DataError, match=r"expected \(n, 9\) voxel values, found \(5, 8\)"):
        patches(values[:, :8], "s")
    with pytest.raises(DataError, match=r"need info\['roi_names'\].*patch_rois"):
        ROIPatches.from_info({}, ["s"], roi_size=3)


def test_presets_name_what_the_real_data_need() -> None:
    from brainkit.recipes.clip_mused import CLIPMUSEDRecipe

    nsd = CLIPMUSEDRecipe.PRESETS["nsd"]
    with pytest.raises(ConfigError, match=r"needs data\.root, data\.coco_annotations"):
        CLIPMUSEDRecipe.check(nsd)
    from dataclasses import replace

    with pytest.raises(
        ConfigError, match=r"needs data\.coco_annotations \(e\.g\. --set data\.coco_annotations"
    ):
        CLIPMUSEDRecipe.check(replace(nsd, data=nsd.data | {"root": "/data/nsd"}))
    CLIPMUSEDRecipe.check(replace(nsd, data=nsd.data | {"root": "/data/nsd", "coco_annotations": "/coco"}))
    assert "srm" not in nsd.methods and nsd.training.lr == 1e-4 and nsd.loss.rsm_low == 1e-4


def test_testing_nsd_runs_evaluates_and_predicts(nsd, tmp_path, capsys) -> None:
    """`brainkit run clip_mused --preset testing_nsd`, `brainkit eval`, then brainkit.load(run).predict on the test
    rows (as arrays, and as NIfTI beta volumes masked with the subject's nsdgeneral) = the scored probabilities."""
    from brainkit.cli import main
    from brainkit.recipes import evaluate_run
    from brainkit.recipes.clip_mused import load_network, prepare
    from brainkit.recipes.loaded import load

    root, truth, labels, categories, folder = nsd
    out = tmp_path / "run"
    args = ["run", "clip_mused", "--preset", "testing_nsd", "--out", str(out), "--set", f"data.root={root}",
            "--set", f"data.coco_annotations={folder}", "--set", f"cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    assert main(args) == 0 and (out / "report.html").is_file()
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert evaluate_run(out) == metrics  # reloaded from the checkpoints: the run's numbers exactly
    assert [row["method"] for row in metrics["rows"]] == ["clip_mused", "pooled", "label_frequency"]
    assert metrics["categories"] == categories and {"mAP/subj01", "mAP/subj02"} <= set(metrics["rows"][0])

    run = load(out)
    dataset, samples, grid = prepare(run.config)
    assert grid.shape == (10, 5)  # 8 ROIs with voxels (floc-faces-5 has none) + rest, roi_size 5
    assert samples.train["subj01"].values.shape[1:] == (10, 5)
    scored = load_network("clip_mused", samples, grid, run.config, out)
    for subject in ("subj01", "subj02"):
        test = dataset.test[subject].values  # each subject its own voxel count
        assert test.shape[1] == truth["mask"][subject].sum()
        got = run.predict(test, subject=subject)
        assert got.shape == (len(test), 5) and got.dtype == np.float32
        np.testing.assert_array_equal(got, scored.scores[subject].astype(np.float32))
    # a session's beta file as NSD stores it (int16 X, Y, Z, trials): masked with subj02's nsdgeneral, / 300 and
    # z-scored per voxel over its trials, as the dataset read it
    betas = truth["betas"]["subj02"][2]
    nib.save(nib.Nifti1Image(betas, AFFINE), tmp_path / "betas_session02.nii.gz")
    session = betas[truth["mask"]["subj02"]].T.astype(np.float32) / np.float32(300)
    session = (session - session.mean(0)) / session.std(0)
    from_file = run.predict(str(tmp_path / "betas_session02.nii.gz"), subject="subj02")
    np.testing.assert_allclose(from_file, run.predict(session, subject="subj02"), atol=1e-6)
    as_read = load_nsd(root, subjects=(2,), sessions=(2,), image_size=None).train["subj02"]
    rows = np.flatnonzero(truth["master"][1] >= N_SHARED)  # session 2's trials of non-shared images: train
    np.testing.assert_allclose(as_read.values, session[rows], atol=1e-5)  # the same values as the dataset's
    # the run folder alone predicts (predictor/ holds the masks, ROI members, categories and z-scoring)
    state = json.loads((out / "predictor/inputs.json").read_text())
    assert (
        state["masks"] == "per_subject"
        and state["rois"]["roi_size"] == 5
        and state["rois"]["names"][-1] == "rest"
    )
    with pytest.raises(DataError, match=r"33 voxels; the input has 25 features"):
        run.predict(dataset.test["subj01"].values, subject="subj02")


def test_nsd_variant_without_rois_or_labels_is_refused(nsd, tmp_path) -> None:
    from brainkit.recipes.clip_mused import CLIPMUSEDRecipe, prepare

    root, *_, folder = nsd
    base = CLIPMUSEDRecipe.PRESETS["testing_nsd"]
    from dataclasses import replace

    no_rois = replace(base, data={"root": str(root), "coco_annotations": str(folder), "image_size": 32,
                                  "subjects": ["subj01"]})  # fmt: skip
    with pytest.raises(DataError, match=r"ROI patches need info\['roi_names'\].*patch_rois=\[\.\.\.\]"):
        prepare(no_rois)
    no_labels = replace(base, data=dict(base.data) | {"root": str(root)})
    with pytest.raises(DataError, match=r"nsd has no labels or categories in its info"):
        prepare(no_labels)


def test_your_arrays_with_roi_members_run_the_nsd_variant(nsd, tmp_path) -> None:
    """from_arrays with labels, categories, roi_names and roi_members (subjects of different voxel counts, no
    volume mask): saved with the run, trained (and SRM on the flattened patches), predicting what it scored."""
    import brainkit
    from brainkit.data import from_arrays
    from brainkit.recipes.clip_mused import load_network, prepare

    root, *_, folder = nsd
    data = load_nsd(root, subjects=(1, 2), image_size=32, coco_annotations=folder, patch_rois=ROIS)
    subjects = data.subjects
    info = {k: data.info[k] for k in ("labels", "categories", "roi_names", "roi_members")}
    same = data.train[
        "subj01"
    ].stimulus_ids  # both subjects "saw" subj01's training images: SRM can align them
    mine = from_arrays({s: data.train[s].values for s in subjects}, {s: same for s in subjects},
                       {s: data.test[s].values for s in subjects}, {s: data.test[s].stimulus_ids for s in subjects},
                       space="native", stimulus_ids=data.stimuli.ids, images=data.stimuli.images,
                       labels=data.stimuli.labels, info=info)  # fmt: skip
    features = "{low: [pixel_projection, {dim: 13}], image: [pixel_projection, {dim: 17}], text: [hashed_words, {dim: 11}]}"
    model = "{roi_size: 3, dim: 6, n_heads: 2, head_dim: 3, ff_hidden: [7]}"
    run = brainkit.run("clip_mused", mine, preset="testing", out=tmp_path / "run",
                       overrides=[f"features={features}", "methods=[clip_mused,srm]", "model_preset=nsd", f"model={model}",
                                  f"cache_dir={tmp_path / 'c'}"])  # fmt: skip
    dataset, samples, grid = prepare(run.config)
    assert grid.shape == (10, 3) and [r["method"] for r in run.metrics["rows"]][:2] == ["clip_mused", "srm"]
    scored = load_network("clip_mused", samples, grid, run.config, run.folder)
    for subject in subjects:
        got = run.predict(data.test[subject].values, subject=subject)
        np.testing.assert_array_equal(got, scored.scores[subject].astype(np.float32))
    nib.save(nib.Nifti1Image(np.zeros((7, 8, 9, 2), np.float32), AFFINE), tmp_path / "betas.nii.gz")
    with pytest.raises(DataError, match=r"needs the brain mask the run was trained with"):
        run.predict(str(tmp_path / "betas.nii.gz"), subject="subj01")  # no mask in the data: NIfTI is refused
