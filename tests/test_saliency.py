"""Gradient x input saliency (evaluation/saliency.py) and the fsaverage5 brain maps (report/brain_maps.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainkit.errors import DataError
from brainkit.evaluation.saliency import input_saliency
from brainkit.report.brain_maps import fsaverage5_maps_figure, on_fsaverage5


def test_saliency_of_a_linear_map_by_hand_and_an_ignored_voxel_is_zero():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        model.weight[:, 2] = 0.0  # voxel 2 is never read
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    saliency = input_saliency(model, x, y, batch_size=2)
    assert saliency.shape == (4,) and saliency[2] == 0.0 and (saliency[[0, 1, 3]] > 0).all()
    # by hand: d cos(Wx, y)/dx = W^T (y/|p||y| - cos p/|p|^2), p = Wx
    w = model.weight.detach().numpy().astype(np.float64)
    expected = np.zeros(4)
    for xi, yi in zip(x.astype(np.float64), y.astype(np.float64)):
        p = w @ xi
        cos = p @ yi / np.linalg.norm(p) / np.linalg.norm(yi)
        grad = w.T @ (yi / (np.linalg.norm(p) * np.linalg.norm(yi)) - cos * p / np.linalg.norm(p) ** 2)
        expected += np.abs(xi * grad)
    np.testing.assert_allclose(saliency, expected / len(x), rtol=1e-5)
    assert model.training  # left as it was


def test_saliency_refuses_mismatched_inputs():
    with pytest.raises(DataError, match="saliency needs x"):
        input_saliency(torch.nn.Linear(3, 2), np.zeros((4, 3)), np.zeros((3, 2)))


def test_maps_go_to_their_fsaverage5_vertices_and_draw():
    shown = on_fsaverage5(np.array([1.0, 2.0]), np.array([5, 10242 + 7]))
    assert shown.shape == (20484,) and shown[5] == 1.0 and shown[10249] == 2.0
    assert np.isnan(shown).sum() == 20482
    with pytest.raises(DataError, match="values for vertices"):
        on_fsaverage5(np.array([1.0]), np.array([20484]))
    values = np.full(20484, np.nan)
    values[:200] = np.linspace(0, 1, 200)
    figure = fsaverage5_maps_figure({"a decoder": values}, "saliency")
    assert len([a for a in figure.axes if a.name == "3d"]) == 4  # two views of each hemisphere
    with pytest.raises(DataError, match="expected \\(20484,\\)"):
        fsaverage5_maps_figure({"bad": np.zeros(10)}, "x")
