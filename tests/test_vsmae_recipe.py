"""vsMAE's evaluation (baselines with known answers), the real run on the icosphere, and `brainkit run vsmae`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainkit.cli import main
from brainkit.errors import DataError
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
    assert dataset.design == "continuous" and dataset.subjects == ["sub-010188"]
    assert np.array_equal(dataset.hemispheres["left"].frames, left.frames) and dataset.order == 5
    cut = clips(left.frames, np.asarray(triangle_patches(5, 2)), n_frames=3, step=100)
    assert cut.shape == (7, 3, 320, 45)


def test_cli_run_vsmae_testing(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["run", "vsmae", "--preset", "testing", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
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
    from brainkit.models import load_model

    encoder, metadata = load_model(out / "checkpoints" / "sit_encoder")
    assert type(encoder).__name__ == "SiT" and metadata == {"pretrained": "vsmae"}
