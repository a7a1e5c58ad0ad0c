"""``hcp_movie_surface`` on a tiny HCP 7T download in the real layout (brainkit.testing_hcp_surface), and the
sim recipe run end to end on it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from brainkit.data import load_dataset
from brainkit.errors import DataError, FileFormatError
from brainkit.testing_hcp_surface import SHORT_SEGMENTS, dataset_options, write_hcp_surface_folder


@pytest.fixture(scope="module")
def hcp_root(tmp_path_factory):
    return write_hcp_surface_folder(tmp_path_factory.mktemp("hcp") / "HCP_7T")


def test_dataset_reads_the_layout(hcp_root, tmp_path) -> None:
    data = load_dataset("hcp_movie_surface", cache_dir=tmp_path, **dataset_options(hcp_root))
    assert data.fmri.shape == (3, 2, 140, 642) and isinstance(data.fmri, np.memmap)
    assert data.subjects == ["100610", "102311", "104416"] and data.runs == ["MOVIE1", "MOVIE2"]
    assert data.video.shape == (2, 138, 64) and data.audio.shape == (2, 138, 32) and data.truth_map is None
    # movie segments 0-1 (MOVIE1), 2-3 (MOVIE2), the test-retest clip 4 in both runs
    assert sorted(np.unique(data.segment_of)) == [-1, 0, 1, 2, 3, 4]
    first, last = SHORT_SEGMENTS[1][0]
    assert (data.segment_of[0, first : last - 1] == 0).all() and data.segment_of[0, last - 1] == -1
    assert data.retest.sum(axis=1).tolist() == [29, 29]
    cortex = data.fmri[0, 0][:, data.cortex]
    assert np.allclose(cortex.mean(axis=1), 0, atol=1e-4) and np.allclose(cortex.std(axis=1), 1, atol=1e-3)
    assert not data.fmri[0, 0][:, ~data.cortex].any() and 500 < data.cortex.sum() < 642
    again = load_dataset("hcp_movie_surface", cache_dir=tmp_path, **dataset_options(hcp_root))
    assert np.array_equal(again.fmri, data.fmri) and np.array_equal(again.video, data.video)


def test_clear_errors(hcp_root, tmp_path) -> None:
    options = dataset_options(hcp_root)
    with pytest.raises(DataError, match="140 whole seconds long but MOVIE1 runs have 150"):
        load_dataset(
            "hcp_movie_surface", cache_dir=tmp_path, **(options | {"n_frames": {"1": 150, "2": 140}})
        )
    with pytest.raises(FileFormatError, match="The movie of MOVIE1 is missing"):
        load_dataset("hcp_movie_surface", cache_dir=tmp_path, **(options | {"movies_dir": str(tmp_path)}))
    with pytest.raises(FileFormatError, match="has no run of MOVIE\\[3\\]"):
        load_dataset(
            "hcp_movie_surface",
            cache_dir=tmp_path,
            **(options | {"movies": [1, 3], "subjects": ["100610", "102311"]}),
        )
    root = tmp_path / "copy"
    shutil.copytree(hcp_root, root)
    shutil.rmtree(next((root / "104416" / "MNINonLinear" / "Results").glob("tfMRI_MOVIE2*")))
    data = load_dataset("hcp_movie_surface", cache_dir=tmp_path, **dataset_options(root))
    assert data.subjects == ["100610", "102311"] and data.info["left_out"] == {"104416": [2]}
    with pytest.raises(DataError, match="140 frames, but MOVIE1 runs have 141; is the file truncated"):
        load_dataset(
            "hcp_movie_surface", cache_dir=tmp_path, **(options | {"n_frames": {"1": 141, "2": 140}})
        )


def test_sim_runs_and_evaluates_on_it(hcp_root, tmp_path, capsys) -> None:
    from brainkit.cli import main

    out = tmp_path / "run"
    sets = ["--set", f"cache_dir={tmp_path / 'cache'}", "--set", "data=hcp_movie_surface",
            "--set", "data_options=" + json.dumps(dataset_options(hcp_root))]  # fmt: skip
    assert main(["run", "sim", "--preset", "testing", "--out", str(out), *sets]) == 0
    assert "3 subjects x 2 runs of hcp_movie_surface" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["importance_correlation"] == {} and len(metrics["main"]) == 12
    assert main(["eval", str(out)]) == 0  # the metrics rebuilt from the checkpoints
    assert (out / "eval_report.html").is_file()
    # a new CIFTI recording goes through the dataset's own pipeline: a subject's run gives its frames' embeddings
    import brainkit
    from brainkit.data.readers import hcp_movie_surface as hcp
    from brainkit.testing_hcp_surface import PHASES

    run = brainkit.load(out)
    data = load_dataset("hcp_movie_surface", cache_dir=tmp_path / "cache", **dataset_options(hcp_root))
    cifti = hcp_root / hcp.PATTERN.format(subject="102311", session=f"tfMRI_MOVIE2_7T_{PHASES[2]}")
    expected = run.predict(data.fmri[1, 1], normalised=True)
    assert np.array_equal(run.predict(cifti, subject="102311"), expected) and expected.shape == (140 - 8, 16)
    with pytest.raises(DataError, match="its sphere is the subject's own; say which subject"):
        run.predict(cifti)
