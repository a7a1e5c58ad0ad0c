"""A finished sim run decoding new recordings (recipes/sim/predict.py): the run's own test frames give the fMRI
embeddings its evaluation scored, bit for bit, and retrieval on its saved test clips its top-k; bad input is
refused with a message saying what differs; the CLI writes the .npy."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sim_fixture import synthetic_movie_data

import brainkit
from brainkit.errors import ConfigError, DataError, FileFormatError


@pytest.fixture(scope="module")
def movie():
    return synthetic_movie_data()


@pytest.fixture(scope="module")
def finished(tmp_path_factory, movie):
    """A `testing` run on the synthetic movies (vsMAE pretraining, SIM from scratch and from it; no ridge)."""
    from brainkit.recipes import run_recipe

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("brainkit.recipes.sim.load_movie_data", lambda config: movie)
        patch.setattr("brainkit.report.sim.write_sim_report", lambda *a: None)
        patch.setattr("brainkit.report.sim.write_vsmae_report", lambda *a: [])
        folder = tmp_path_factory.mktemp("sim") / "run"
        run_recipe("sim", folder=folder, preset="testing", overrides=["ridge_alpha=null"])
    return brainkit.load(folder)


@pytest.fixture(scope="module")
def split(finished, movie):
    from brainkit.recipes.sim import prepare

    return prepare(finished.config, movie)


def test_predict_gives_the_embeddings_the_evaluation_scored(
    finished, movie, split, tmp_path, one_torch_thread
) -> None:
    from brainkit.evaluation.movie_retrieval import embed_fmri

    assert finished.predictor.methods == ["scratch", "vsmae"]
    n_frames = movie.fmri.shape[2]
    for method in ("scratch", "vsmae"):
        model = finished.predictor.model(method)
        for setting in ("unseen_both", "unseen_subjects"):  # a test subject's held-out, then training, clips
            samples = split["settings"][setting]
            scored = embed_fmri(model, split["arrays"], samples)  # what the evaluation ranked
            s = int(split["groups"]["test"][1])
            for r in range(2):
                rows = np.flatnonzero((samples.subject == s) & (samples.run == r))
                got = finished.predict(movie.fmri[s, r], method=method, normalised=True)
                assert got.dtype == np.float32 and got.shape == (n_frames - 6 - 3 + 1, 16)
                assert np.array_equal(got[samples.clip[rows]], scored[rows])
    np.save(tmp_path / "frames.npy", movie.fmri[0, 1])
    assert np.array_equal(finished.predict(tmp_path / "frames.npy", normalised=True),
                          finished.predict(movie.fmri[0, 1], method="vsmae", normalised=True))  # fmt: skip


def test_retrieve_reproduces_the_evaluation_top_k(finished, movie, split, tmp_path, one_torch_thread) -> None:
    metrics = finished.metrics["main"]
    for setting, group in (
        ("unseen subjects, unseen clips", "test"),
        ("training subjects, unseen clips", "train"),
    ):
        subjects = split["groups"][group]
        found = {(kind, modality): [] for kind in ("soft", "hard") for modality in ("video", "audio")}
        for s in subjects:
            for r, run in enumerate(movie.runs):
                result = finished.retrieve(movie.fmri[s, r], "test", run=run, subject=movie.subjects[s],
                                           normalised=True)  # fmt: skip
                assert result["accuracy"]["setting"] == setting
                for kind, modality in found:
                    found[(kind, modality)].append(result["accuracy"][modality][kind]["top1"])
        for (kind, modality), values in found.items():
            row = next(r for r in metrics if r["setting"] == setting and r["negatives"] == kind
                       and r["retrieval"] == f"fMRI->{modality}")  # fmt: skip
            assert (
                float(np.mean(values)) == row["top1 from vsMAE_mean"]
            )  # the default: the vsMAE-initialised SIM
            assert float(np.std(values)) == row["top1 from vsMAE_sd"]
    # the ranking itself: exact cosine over the run's test clips, best first, with their thumbnails on the page
    predictor = finished.predictor
    result = finished.retrieve(movie.fmri[0, 0], "test", k=4, method="scratch", normalised=True,
                               html=tmp_path / "found.html")  # fmt: skip
    gallery = predictor.state.embeddings["scratch"]["video"]
    query = finished.predict(movie.fmri[0, 0], method="scratch", normalised=True)
    cosine = (query / np.linalg.norm(query, axis=1, keepdims=True)) @ (
        gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    ).T
    best = np.argsort(-cosine, axis=1)[:, :4]
    assert np.array_equal(result["ids"], predictor.state.gallery_ids()[best.ravel()].reshape(best.shape))
    assert np.allclose(result["scores"], np.take_along_axis(cosine, best, axis=1), atol=1e-5)
    assert (
        result["ids"][0, 0].startswith(("MOVIE1/clip", "MOVIE2/clip")) and (tmp_path / "found.html").is_file()
    )
    held_out = predictor.state.arrays["held_out"]
    runs, clips = np.nonzero(held_out)
    assert set(zip(runs, clips)) <= set(
        zip(predictor.state.arrays["gallery_run"], predictor.state.arrays["gallery_clip"])
    )
    own = finished.retrieve(movie.fmri[0, 0], gallery, ids=predictor.state.gallery_ids(), k=4, method="scratch",
                            normalised=True)  # fmt: skip
    assert np.array_equal(own["ids"], result["ids"])  # your own clip embeddings, the same ranking


def test_raw_frames_get_the_data_normalisation(finished, movie) -> None:
    from brainkit.surface.readers import normalise_frames

    cortex = movie.cortex
    rng = np.random.default_rng(0)
    raw = 3.0 * movie.fmri[2, 0] + rng.normal(size=movie.fmri.shape[-1]).astype(np.float32)  # vertex offsets
    expected = finished.predict(normalise_frames(raw, cortex), normalised=True)
    assert np.array_equal(finished.predict(raw), expected)
    noisy = raw.copy()
    noisy[:, ~cortex] = rng.normal(size=(len(raw), int((~cortex).sum())))  # the medial wall is not read
    assert np.array_equal(finished.predict(noisy), expected)
    with pytest.raises(DataError, match="not z-scored over the run's cortex"):
        finished.predict(raw[:, :] * cortex, normalised=True)
    with pytest.raises(DataError, match="not 0 on the run's medial wall"):
        finished.predict(noisy, normalised=True)


def test_bad_input_says_what_differs(finished, movie, tmp_path) -> None:
    frames = movie.fmri[0, 0]
    with pytest.raises(DataError, match=r"162 vertices per frame \(the order-2 icosphere\).*642 vertices"):
        finished.predict(frames[:, :162])
    with pytest.raises(DataError, match="It looks transposed"):
        finished.predict(frames[:642].T)
    with pytest.raises(DataError, match=r"has 8 frames; one sample needs lag \+ n_frames = 6 \+ 3 = 9"):
        finished.predict(frames[:8])
    assert finished.predict(frames[:9], normalised=True).shape == (1, 16)
    broken = frames.copy()
    cortex = np.flatnonzero(movie.cortex)
    broken[5, cortex[3]] = np.nan
    with pytest.raises(DataError, match=r"1 NaN or inf values on the run's cortex \(first in frame 5\)"):
        finished.predict(broken)
    wall = frames.copy()
    wall[:, ~movie.cortex] = np.nan  # not read: as the data's normalisation sets it to 0
    assert np.array_equal(finished.predict(wall), finished.predict(frames))
    with pytest.raises(DataError, match="not 0 on the run's medial wall"):
        finished.predict(wall, normalised=True)
    with pytest.raises(DataError, match="holds bool values"):
        finished.predict(frames > 0)
    with pytest.raises(DataError, match=r"shape \(2, 238, 642\)"):
        finished.predict(movie.fmri[0, :, :238])
    with pytest.raises(ConfigError, match=r"no network 'paper'; its networks .*\['scratch', 'vsmae'\]"):
        finished.predict(frames, method="paper")
    with pytest.raises(DataError, match="space 'MNI152'"):
        finished.predict(frames, space="MNI152")
    with pytest.raises(ConfigError, match=r"movie runs are \['MOVIE1', 'MOVIE2'\]; run='MOVIE9'"):
        finished.retrieve(frames, "test", run="MOVIE9")
    with pytest.raises(DataError, match="MOVIE1's test clips need .* frames .*pass the whole run"):
        finished.retrieve(frames[:100], "test", run="MOVIE1", normalised=True)
    with pytest.raises(ConfigError, match="a folder of movie files cannot be embedded here yet"):
        finished.retrieve(frames, str(tmp_path))
    with pytest.raises(DataError, match=r"gallery's embeddings are \(4, 3\)"):
        finished.retrieve(frames, np.zeros((4, 3)))
    with pytest.raises(DataError, match="were not read from CIFTI"):
        (tmp_path / "new.dtseries.nii").write_bytes(b"")
        finished.predict(tmp_path / "new.dtseries.nii")
    with pytest.raises(FileFormatError, match="does not exist"):
        finished.predict(tmp_path / "absent.npy")
    with pytest.raises(DataError, match="Cannot read .*frames.txt: a sim run reads a .npy array"):
        (tmp_path / "frames.txt").write_text("1 2 3")
        finished.predict(tmp_path / "frames.txt")


def test_surface_files_on_the_icosphere(finished, movie, tmp_path) -> None:
    import nibabel as nib

    def gifti(frames, path):
        image = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(f.astype(np.float32)) for f in frames])
        nib.save(image, path)
        return path

    left, right = movie.fmri[1, 0], movie.fmri[1, 1][:, ::-1]
    expected = finished.predict(left)
    pair = [gifti(left, tmp_path / "new_hemi-L.func.gii"), gifti(right, tmp_path / "new_hemi-R.func.gii")]
    assert np.array_equal(finished.predict(pair), expected)  # the run's hemisphere (left) of the pair
    assert np.array_equal(finished.predict(pair[0]), expected)  # one file on the run's icosphere
    with pytest.raises(DataError, match="must be two GIFTI files"):
        finished.predict([pair[0]])


def test_cli_predict_writes_the_npy(finished, movie, tmp_path, capsys) -> None:
    from brainkit.cli import main

    np.save(tmp_path / "frames.npy", movie.fmri[3, 1])
    out = tmp_path / "out" / "emb.npy"
    args = ["predict", str(finished.folder), "--input", str(tmp_path / "frames.npy"), "--out", str(out)]
    assert main([*args, "--decoder", "scratch", "--gallery", "test", "--k", "3"]) == 0
    assert np.array_equal(np.load(out), finished.predict(movie.fmri[3, 1], method="scratch"))
    assert "Decoded 238 sample(s), each (16,)" in capsys.readouterr().out
    table = json.loads(out.with_suffix(".json").read_text())
    assert np.array(table["ids"]).shape == (238, 3) and out.with_suffix(".html").is_file()


def test_state_is_saved_and_an_older_run_rebuilds_it(finished, movie, tmp_path, monkeypatch) -> None:
    from brainkit.recipes.sim.state import ARRAYS, SIMState

    saved = SIMState.load(finished.folder)
    meta = json.loads((finished.folder / "predictor" / "inputs.json").read_text())
    assert (
        meta["lag"] == 6
        and meta["n_frames"] == 3
        and meta["order"] == 3
        and meta["inits"] == ["scratch", "vsmae"]
    )
    assert saved.arrays["cortex"].dtype == bool and np.array_equal(saved.arrays["cortex"], movie.cortex)
    older = shutil.copytree(finished.folder, tmp_path / "older")
    shutil.rmtree(older / "predictor")
    monkeypatch.setattr("brainkit.recipes.sim.load_movie_data", lambda config: movie)
    rebuilt = brainkit.load(older).predictor.state
    assert rebuilt.meta == saved.meta
    assert all(np.array_equal(rebuilt.arrays[name], saved.arrays[name]) for name in ARRAYS)
    for init, roles in saved.embeddings.items():
        assert all(np.array_equal(rebuilt.embeddings[init][r], values) for r, values in roles.items())
    assert not (older / "predictor").exists()  # read, not written into the run


def test_accuracy_in_the_all_targets_protocol(finished, movie, split, one_torch_thread) -> None:
    """Our protocol pools a subject's runs: each run's share, weighted by its targets, gives the evaluation's."""
    from brainkit.data.movie_samples import setting_segments
    from brainkit.evaluation.movie_retrieval import embed_fmri, embed_stimuli, retrieval_scores
    from brainkit.recipes.sim import retrieval_seed
    from brainkit.recipes.sim.predict import SIMPredictor
    from brainkit.recipes.sim.state import SIMState

    saved = finished.predictor.state
    state = SIMState(saved.meta | {"protocol": "all_targets"}, saved.arrays, saved.embeddings)
    predictor = SIMPredictor(finished.config, finished.folder, state)
    model, samples = predictor.model("scratch"), split["settings"]["unseen_both"]
    segments = setting_segments(movie.segment_of, split["clips"]["held_out"])
    stimulus = embed_stimuli(model, split["arrays"])["video"]
    for kind in ("soft", "hard"):
        expected, _, _ = retrieval_scores(embed_fmri(model, split["arrays"], samples), samples, stimulus, segments,
                                          kind, retrieval_seed(finished.config))  # fmt: skip
        for row, s in zip(expected, split["groups"]["test"]):
            parts = []
            for r, run in enumerate(movie.runs):
                predicted = predictor.predict(movie.fmri[s, r], method="scratch", normalised=True)
                parts.append(predictor.accuracy(predicted, run, movie.subjects[s], "scratch")["video"][kind])
            total = sum(p["targets"] for p in parts)
            assert total > 0 and row["top1_chance"] == parts[0]["top1_chance"] == 1 / 32
            for k in ("top1", "top5", "top10"):
                assert sum(p[k] * p["targets"] for p in parts) / total == pytest.approx(row[k], abs=1e-12)


def test_bench_scores_of_a_run(finished) -> None:
    """`brainkit bench` reads SIM's top-1 in every setting (unseen subjects / clips / both) beside 1/candidates."""
    import json

    from bench_checks import check_scores

    tables = json.loads((finished.folder / "metrics.json").read_text())["tables"]
    rows = check_scores("sim", tables, {"SIM (vsMAE init)", "SIM (from scratch)"})
    table = next(iter(tables.values()))
    assert {r["split"] for r in rows} == {row["setting"] for row in table}
    assert {r["chance"] for r in rows} == {table[0]["top1_chance"]}
    assert {r["role"] for r in rows} == {"method", "ablation"}  # ridge_alpha=null: no ridge baseline
