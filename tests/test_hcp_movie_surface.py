"""The HCP 7T movie reader on small files the test writes in the real layout."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brainkit.data.readers.hcp_movie_surface import find_movie_runs, read_movie_run, segment_of_frames
from brainkit.errors import ConfigError, DataError, FileFormatError


def write_run(root, subject: str, session: str, n_frames: int, n_vertices: int = 9) -> None:
    folder = root / subject / "MNINonLinear" / "Results" / session
    folder.mkdir(parents=True)
    mask = np.ones(n_vertices, bool)
    mask[0] = False  # a medial-wall vertex
    models = nib.cifti2.BrainModelAxis.from_mask(
        mask, name="CortexLeft"
    ) + nib.cifti2.BrainModelAxis.from_mask(mask, name="CortexRight")
    series = nib.cifti2.SeriesAxis(start=0.0, step=1.0, size=n_frames, unit="SECOND")
    data = np.arange(n_frames * len(models), dtype=np.float32).reshape(n_frames, len(models))
    header = nib.cifti2.Cifti2Header.from_axes((series, models))
    nib.save(
        nib.Cifti2Image(data, header), folder / f"{session}_Atlas_1.6mm_MSMAll_hp2000_clean.dtseries.nii"
    )


def test_find_and_read_runs(tmp_path) -> None:
    write_run(tmp_path, "100610", "tfMRI_MOVIE1_7T_AP", 921)
    write_run(tmp_path, "100610", "tfMRI_MOVIE2_7T_PA", 918)
    write_run(tmp_path, "102311", "tfMRI_MOVIE1_7T_AP", 900)  # truncated
    (tmp_path / "102311" / "MNINonLinear" / "Results" / "rfMRI_REST1_7T_PA").mkdir()  # not a movie: ignored
    runs = find_movie_runs(tmp_path)
    assert [(r.subject, r.movie, r.phase) for r in runs] == [
        ("100610", 1, "AP"),
        ("100610", 2, "PA"),
        ("102311", 1, "AP"),
    ]
    hemis, segment_of = read_movie_run(runs[0])
    assert hemis["left"].frames.shape == (921, 9) and not hemis["right"].mask[0]
    assert segment_of[:20].tolist() == [-1] * 20 and segment_of[20] == 0 and segment_of[264] == -1
    assert segment_of[818] == segment_of[900] == 4 and (segment_of[901:] == -1).all()
    _, known = read_movie_run(runs[1])  # MOVIE2's segments (SIM's tools/datasets.py): 20-246, ..., 815-897
    assert known[19] == -1 and known[20] == 0 and known[246] == 0 and known[247] == -1
    assert known[266] == -1 and known[267] == 1 and known[525] == 1 and known[526] == -1
    assert known[815] == known[897] == 3 and (known[898:] == -1).all()
    _, custom = read_movie_run(runs[1], segments=((20, 100), (120, 917)))
    assert custom.max() == 1
    with pytest.raises(DataError, match="900 frames, but MOVIE1 runs have 921"):
        read_movie_run(runs[2])


def test_layout_errors(tmp_path) -> None:
    with pytest.raises(FileFormatError, match="No movie runs under"):
        find_movie_runs(tmp_path)
    (tmp_path / "100610" / "MNINonLinear" / "Results" / "tfMRI_MOVIE3_7T_PA").mkdir(parents=True)
    with pytest.raises(FileFormatError, match="has no tfMRI_MOVIE3_7T_PA_Atlas"):
        find_movie_runs(tmp_path)
    with pytest.raises(ConfigError, match="increasing, disjoint"):
        segment_of_frames(50, ((10, 20), (15, 30)))


def test_known_segments_fit_their_runs() -> None:
    from brainkit.data.readers.hcp_movie_surface import CLIP_TIMES, N_FRAMES, SEGMENTS

    for movie, segments in SEGMENTS.items():
        segment_of = segment_of_frames(N_FRAMES[movie], segments)  # increasing, disjoint, inside the run
        assert segment_of[:20].tolist() == [-1] * 20 and segment_of.max() == len(segments) - 1
    assert all(len(CLIP_TIMES[m]) == len(SEGMENTS[m]) for m in SEGMENTS)
    # SIM's tools/datasets.py, copied by hand: movie_sample_1 of MOVIE2, test_retest of MOVIE4, MOVIE3's segments
    assert SEGMENTS[2][0] == (20, 246) and SEGMENTS[4][-1] == (798, 880)
    assert SEGMENTS[3] == ((20, 199), (221, 404), (425, 628), (650, 791), (812, 894))
    assert SEGMENTS[2][-1] == (815, 897) and SEGMENTS[4][2] == (522, 777)
