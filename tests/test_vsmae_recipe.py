"""vsMAE's evaluation (baselines with known answers), the real run on the icosphere, and `brainkit run vsmae`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sim_fixture import recording_resume

from brainkit.cli import main
from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.surface_reconstruction import (
    masked_correlation,
    masked_mse,
    neighbour_interpolation,
    visible_mean,
)
from brainkit.surface import icosphere, triangle_patches


@pytest.fixture(scope="module")
def grid():
    patches = np.asarray(triangle_patches(4, 1))  # 80 patches x 45 vertices
    unit = icosphere(4).unit_vertices()
    cortex = np.ones(len(unit), dtype=bool)
    cortex[:5] = False
    masks = np.zeros((2, 80), dtype=bool)
    masks[0, [3, 40, 71]] = True
    masks[1, [5, 6]] = True
    return patches, unit, cortex, masks


def test_baselines_known_answers(grid) -> None:
    patches, unit, cortex, masks = grid
    field = unit @ np.array([0.3, -1.0, 0.5])  # smooth: interpolation nearly exact
    frames = np.stack([field, 2 * field, -field])  # 3 frames
    clips = np.stack([frames[:, patches]] * 2).astype(np.float32)
    weight = cortex[patches].astype(np.float32)
    filled = neighbour_interpolation(clips, masks, patches, cortex, unit)
    assert masked_mse(filled, clips, masks, weight, patches) < 0.01 * clips.var()
    assert masked_correlation(filled, clips, masks, weight, patches) > 0.99
    assert np.array_equal(filled[~np.broadcast_to(masks[:, None, :, None], clips.shape)],
                          clips[~np.broadcast_to(masks[:, None, :, None], clips.shape)])  # fmt: skip
    constant = np.full_like(clips, 2.5)
    assert np.allclose(visible_mean(constant, masks, patches, cortex), 2.5)
    assert masked_mse(clips, clips, masks, weight, patches) == 0.0
    assert np.isclose(masked_mse(clips + 1.0, clips, masks, weight, patches), 1.0)
    # border vertices shown by a visible patch are not scored: an error there changes nothing
    shifted = clips.copy()
    border = np.isin(patches, patches[~masks[0]]) & masks[0][:, None]
    shifted[0][:, border] += 100.0
    assert masked_mse(shifted, clips, masks, weight, patches) == 0.0
    with pytest.raises(DataError, match="must agree"):
        visible_mean(clips, masks[:, :40], patches, cortex)


def test_real_run_on_icosphere() -> None:
    from brainkit.data.builtin.rest_surface import clips, rest_on_icosphere

    rest = rest_on_icosphere()
    left, right = rest["left"], rest["right"]
    assert left.frames.shape == right.frames.shape == (652, 10242)
    assert 9000 < left.mask.sum() < 9500 and 9000 < right.mask.sum() < 9600  # ~885 medial-wall vertices
    cortex = left.frames[:, left.mask]
    assert np.allclose(cortex.mean(axis=1), 0, atol=1e-4) and np.allclose(cortex.std(axis=1), 1, atol=1e-3)
    # mirrored right hemisphere: its medial wall sits where the left one's does
    overlap = (~left.mask & ~right.mask).sum() / (~left.mask).sum()
    assert overlap > 0.5  # fsaverage5 is not left-right symmetric: 65 % of the walls overlap
    from brainkit.data import load_dataset

    dataset = load_dataset("rest_surface")  # the registered container of the same frames
    assert dataset.design == "frames" and dataset.subjects == ["sub-010188"]
    assert np.array_equal(dataset.runs[0].hemispheres["left"].frames, left.frames) and dataset.order == 5
    cut = clips(left.frames, np.asarray(triangle_patches(5, 2)), n_frames=3, step=100)
    assert cut.shape == (7, 3, 320, 45)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`brainkit run vsmae --preset testing` (one torch thread): its folder and what it printed."""
    import contextlib
    import io

    import torch

    out, printed, threads = tmp_path_factory.mktemp("vsmae") / "run", io.StringIO(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(printed):
            assert main(["run", "vsmae", "--preset", "testing", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    return out, printed.getvalue()


def test_cli_run_vsmae_testing(cli_run) -> None:
    out, printed = cli_run
    assert (
        "Masked-patch reconstruction on held-out real frames" in printed
        and "neighbour interpolation" in printed
    )
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    rows = {row["method"]: row for row in metrics["reconstruction"]}
    assert set(rows) == {
        "vsMAE",
        "neighbour interpolation",
        "visible-patch mean",
        "zero (the per-frame mean)",
    }
    assert all(np.isfinite(row["masked_mse_mean"]) for row in rows.values())
    assert (
        rows["neighbour interpolation"]["masked_mse_mean"]
        < rows["zero (the per-frame mean)"]["masked_mse_mean"]
    )
    assert (out / "checkpoints" / "sit_encoder" / "model.safetensors").is_file()
    assert (out / "report.html").is_file()
    from brainkit.testing import report_problems

    assert report_problems(out / "report.html") == []
    from brainkit.models import load_model

    encoder, metadata = load_model(out / "checkpoints" / "sit_encoder")
    assert type(encoder).__name__ == "SiT" and metadata == {"pretrained": "vsmae"}


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def test_eval_and_resume_give_the_run_metrics(cli_run, tmp_path, monkeypatch, one_torch_thread) -> None:
    """`brainkit eval` re-scores the saved vsMAE to the run's metrics exactly; a run killed in its second epoch
    is kept, refused without --resume, and resumed to the uninterrupted run's metrics and curve."""
    import shutil

    import brainkit.training.phase as phase
    from brainkit.errors import CheckpointError, ConfigError
    from brainkit.recipes import evaluate_run, run_recipe
    from brainkit.testing import SimulatedKill, killing_train
    from brainkit.training import read_history

    full, _ = cli_run
    metrics = json.loads((full / "metrics.json").read_text())["metrics"]
    assert [r["step"] for r in metrics["history"]] == [9, 18] and "pretrain_seconds" not in metrics
    assert evaluate_run(full) == metrics

    run, partial = tmp_path / "run", tmp_path / ".run.partial"
    calls: list[str] = []
    monkeypatch.setattr(phase, "train", killing_train("vsMAE", until_step=12, calls=calls))
    with pytest.raises(SimulatedKill):
        run_recipe("vsmae", folder=run, preset="testing")
    assert (partial / "train" / "vsmae" / "state").is_dir() and not run.exists()
    with pytest.raises(ConfigError, match="interrupted run of vsmae is at .*--resume"):
        run_recipe("vsmae", folder=run, preset="testing")
    flags: list = []
    monkeypatch.setattr(phase, "train", recording_resume(killing_train("nothing", calls=calls), flags))
    assert main(["run", "vsmae", "--out", str(run), "--resume"]) == 0
    assert calls == ["vsMAE", "vsMAE"] and flags == [("vsMAE", True)] and not partial.exists()
    assert json.loads((run / "metrics.json").read_text())["metrics"] == metrics
    histories = [_without_seconds(read_history(folder / "train" / "vsmae")) for folder in (run, full)]
    assert histories[0] == histories[1] == metrics["history"]

    (run / "train" / "vsmae" / "done.json").unlink()
    with pytest.raises(CheckpointError, match="vsmae/done.json does not exist: that phase never finished"):
        evaluate_run(run)
    shutil.rmtree(run / "checkpoints" / "vsmae")
    with pytest.raises(CheckpointError, match="checkpoints/vsmae/model.safetensors does not exist"):
        evaluate_run(run)


def test_vertex_correlation_by_hand():
    from brainkit.evaluation.surface_reconstruction import vertex_correlation

    # two patches of two vertices (vertex 1 shared), one frame, four clips; patch 0 hidden in clips 0-2 only
    patches = np.array([[0, 1], [1, 2]])
    masks = np.array([[True, False], [True, False], [True, False], [False, True]])
    clips = np.arange(16, dtype=np.float32).reshape(4, 1, 2, 2)
    weight = np.ones((2, 2), np.float32)
    prediction = clips.copy()
    prediction[:, 0, 0, 0] = [
        3.0,
        1.0,
        2.0,
        0.0,
    ]  # vertex 0: truth 0, 4, 8 in clips 0-2 -> r(3,1,2 ; 0,4,8) = -0.5
    r = vertex_correlation(prediction, clips, masks, weight, patches)
    assert r.shape == (3,) and r[0] == pytest.approx(-0.5)
    assert np.isnan(r[1])  # always shown by the visible patch: never scored
    assert np.isnan(r[2])  # hidden in one clip only: fewer than 3 values
    assert np.isnan(vertex_correlation(np.zeros_like(clips), clips, masks, weight, patches)[0])  # constant


def test_your_fmriprep_surface_runs_through_vsmae(tmp_path, capsys, one_torch_thread) -> None:
    """A BIDS folder of fMRIPrep fsaverage5 rest runs (the real brainspace run, written as GIFTI pairs) is read
    on the icosphere exactly as the built-in run is prepared, and `brainkit run vsmae` pretrains on it with the
    uniform data keys; `brainkit eval` gives the run's metrics."""
    from brainkit.data import load_dataset
    from brainkit.data.builtin.rest_surface import REST_RUN
    from brainkit.data.packaged import package_file
    from brainkit.data.surface_frames import frames_on_icosphere
    from brainkit.surface.readers import read_surface_frames
    from brainkit.testing_bids import write_rest_surface_folder

    write_rest_surface_folder(tmp_path / "ds", n_subjects=2, n_frames=80)
    data = load_dataset("bids_surface", root=str(tmp_path / "ds"), task="rest")
    assert data.subjects == ["sub-01", "sub-02"] and data.order == 5 and len(data.runs) == 2
    assert data.runs[1].label == "sub-02_task-rest" and data.info["tr"] == {
        "sub-01": [0.72],
        "sub-02": [0.72],
    }
    real = {h: read_surface_frames(package_file("brainspace", REST_RUN.format(hemi=s), "rest")) for h, s in
            (("left", "lh"), ("right", "rh"))}  # fmt: skip
    expected = frames_on_icosphere(real["left"][80:160], real["right"][80:160], 5)
    for hemi in ("left", "right"):
        np.testing.assert_allclose(data.runs[1].hemispheres[hemi].frames, expected[hemi].frames, atol=1e-5)
        assert np.array_equal(data.runs[1].hemispheres[hemi].mask, expected[hemi].mask)

    run = tmp_path / "run"
    options = f"data.options={{root: {tmp_path / 'ds'}, task: rest}}"
    assert main(["run", "vsmae", "--preset", "testing", "--out", str(run), "--set", "data.name=bids_surface",
                 "--set", options]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert (
        "fMRIPrep fsaverage GIFTI runs of a BIDS dataset, read with pybids: 2 run(s) of 2 subject(s)"
        in printed
    )
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert metrics["n_train_clips"] == 2 * 2 * len(range(0, int(0.7 * 80) - 3 + 1, 6))
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics


def test_vsmae_data_errors(tmp_path) -> None:
    from brainkit.data import load_dataset
    from brainkit.recipes import recipe_config, run_recipe

    with pytest.raises(ConfigError, match="fsnative and fsLR surfaces need a registration"):
        load_dataset("bids_surface", root=str(tmp_path), task="rest", space="fsLR")
    with pytest.raises(ConfigError, match="'nsd_like' is a 'trials' dataset"):
        recipe_config("vsmae", "testing", ["data.name=nsd_like"])
    with pytest.raises(ConfigError, match="'movie_surface_like' is a 'continuous' dataset, which sim reads"):
        run_recipe("vsmae", preset="testing", folder=tmp_path / "r",
                   overrides=["data.name=movie_surface_like", "data.options={config: testing}"])  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_bench_scores_of_a_run(cli_run) -> None:
    """`brainkit bench` reads vsMAE's and the simple fills' masked MSE (no chance) and r (chance 0)."""
    import json

    from bench_checks import check_scores

    out, _ = cli_run
    tables = json.loads((out / "metrics.json").read_text())["tables"]
    rows = check_scores("vsmae", tables, {"vsMAE", "neighbour interpolation"}, {"r (hidden patches)"})
    assert all(r["chance"] is None for r in rows if r["metric"] == "masked MSE")
