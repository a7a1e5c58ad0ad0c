"""Single-trial GLM (brainkit.data.glm) on synthetic runs with known betas."""

import numpy as np
import pandas as pd
import pytest

from brainkit.data.glm import (
    GLMConfig,
    fit_single_trials,
    read_masked_run,
    single_trial_betas,
    trial_design,
)
from brainkit.data.glm_inputs import frame_times
from brainkit.errors import ConfigError, DataError


def _run(seed=0, n_trials=20, soa=8.0, tr=2.0, noise=0.1, n_voxels=40):
    """Known betas (n_trials, n_voxels) convolved with the Glover HRF + white noise, in percent of a 1000
    baseline; returns (timeseries (n_scans, n_voxels), events, truth, regressors)."""
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(seed)
    onsets = 6 + np.arange(n_trials) * soa + rng.uniform(0, 1, n_trials)
    n_scans = int(np.ceil((onsets[-1] + 20) / tr))
    times = frame_times(n_scans, tr)
    regressors = np.stack(
        [compute_regressor(np.array([[o], [1.0], [1.0]]), "glover", times)[0][:, 0] for o in onsets], 1
    )
    truth = rng.standard_normal((n_trials, n_voxels))
    percent = regressors @ truth + noise * rng.standard_normal((n_scans, n_voxels))
    events = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": "image"})
    return 1000.0 * (1 + percent / 100), events, truth, regressors


def _r(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_lsa_and_lss_recover_known_betas():
    timeseries, events, truth, _ = _run()
    lsa = fit_single_trials(timeseries, events, 2.0, GLMConfig(estimator="lsa"))
    lss = fit_single_trials(timeseries, events, 2.0, GLMConfig(estimator="lss"))
    assert lsa.shape == lss.shape == truth.shape and lsa.dtype == np.float32
    assert _r(lsa, truth) > 0.95 and _r(lss, truth) > 0.9
    # noise-free with no drift: LSA is exact (psc scaling: beta x 1000 / mean, the mean being ~1000)
    clean = _run(noise=0.0)[0]
    exact = fit_single_trials(clean, events, 2.0, GLMConfig(drift_model=None))
    np.testing.assert_allclose(exact * clean.mean(0) / 1000, truth, atol=1e-4)


def test_lss_beats_lsa_in_a_fast_noisy_design():
    """Mumford et al. 2012: with trials 3 s apart and noisy data, LSS betas are closer to the truth."""
    timeseries, events, truth, _ = _run(n_trials=40, soa=3.0, tr=1.0, noise=0.3)
    lsa = fit_single_trials(timeseries, events, 1.0, GLMConfig(estimator="lsa"))
    lss = fit_single_trials(timeseries, events, 1.0, GLMConfig(estimator="lss"))
    assert _r(lss, truth) > _r(lsa, truth) + 0.1


@pytest.mark.filterwarnings("ignore:.*null duration:UserWarning", "ignore:.*mask was given:RuntimeWarning")
def test_ols_fit_equals_nilearn_first_level_model_and_lss_its_per_trial_designs():
    import nibabel as nib
    from nilearn.glm.first_level import FirstLevelModel, make_first_level_design_matrix

    timeseries, events, truth, _ = _run(n_trials=12, n_voxels=6)
    rng = np.random.default_rng(1)
    n_scans = len(timeseries)
    confounds = pd.DataFrame({"trans_x": rng.standard_normal(n_scans), "csf": rng.standard_normal(n_scans)})
    confounds.loc[0, "trans_x"] = np.nan  # fMRIPrep's n/a first row: filled with the column mean
    presses = pd.DataFrame({"onset": events["onset"][::3] + 1.5, "duration": 0.0, "trial_type": "press"})
    config = GLMConfig(hrf_model="spm + derivative")
    lsa = fit_single_trials(timeseries, events, 2.0, config, confounds, presses)

    design = trial_design(events, n_scans, 2.0, config, confounds, presses)
    assert design.columns[:2].tolist() == ["other_press", "other_press_derivative"]
    assert design.shape == (n_scans, 2 + 2 * 12 + 2 + design.columns.str.startswith("drift").sum() + 1)
    volume = timeseries.T.reshape(2, 3, 1, n_scans).astype(np.float32)
    image = nib.Nifti1Image(volume, np.eye(4))
    model = FirstLevelModel(noise_model="ols", mask_img=nib.Nifti1Image(np.ones((2, 3, 1), np.uint8), np.eye(4)),
                            signal_scaling=0, minimize_memory=True)  # fmt: skip
    model.fit(image, design_matrices=[design])
    for trial in (0, 5, 11):
        effect = model.compute_contrast(f"trial_{trial:05d}", output_type="effect_size").get_fdata()
        np.testing.assert_allclose(lsa[trial], effect.reshape(-1), rtol=1e-4, atol=1e-4)

    lss = fit_single_trials(timeseries, events, 2.0, GLMConfig(estimator="lss", hrf_model="spm + derivative"),
                            confounds, presses)  # fmt: skip
    psc = 100 * (timeseries / timeseries.mean(0) - 1)
    filled = confounds.fillna(confounds.mean())
    for trial in (0, 7):
        labels = ["a_this" if j == trial else "b_others" for j in range(len(events))]
        conditions = pd.concat([events.assign(trial_type=labels), presses.assign(trial_type="c_press")])
        x = make_first_level_design_matrix(frame_times(n_scans, 2.0), conditions, hrf_model="spm + derivative",
                                           add_regs=filled.to_numpy(), add_reg_names=list(filled))  # fmt: skip
        reference = np.linalg.lstsq(x.to_numpy(), psc, rcond=None)[0][list(x.columns).index("a_this")]
        np.testing.assert_allclose(lss[trial], reference, atol=1e-4)


def test_confounds_remove_an_artefact():
    timeseries, events, truth, _ = _run(noise=0.05)
    rng = np.random.default_rng(3)
    motion = np.cumsum(rng.standard_normal(len(timeseries)))
    artefact = 1000 * 0.01 * np.outer(motion - motion.mean(), rng.standard_normal(truth.shape[1]))
    dirty = timeseries + artefact
    plain = fit_single_trials(dirty, events, 2.0)
    cleaned = fit_single_trials(dirty, events, 2.0, confounds=pd.DataFrame({"trans_x": motion}))
    assert _r(cleaned, truth) > 0.95 > _r(plain, truth)


def test_single_trial_betas_masks_a_4d_run(tmp_path):
    import nibabel as nib

    timeseries, events, truth, _ = _run(n_voxels=12)
    run = np.zeros((3, 4, 2, len(timeseries)), np.float32)
    mask = np.zeros((3, 4, 2), bool)
    mask[:, :, 0] = True
    run[mask] = timeseries.T  # voxels in np.nonzero(mask) order
    run[~mask] = 5.0
    betas = single_trial_betas(run, mask, events, 2.0)
    assert betas.shape == (20, 12) and _r(betas, truth) > 0.95
    path = tmp_path / "run.nii.gz"
    nib.save(nib.Nifti1Image(run, np.eye(4)), str(path))
    np.testing.assert_allclose(single_trial_betas(path, mask, events, 2.0), betas, atol=1e-4)
    masked, _ = read_masked_run(path, mask, block_volumes=7)
    np.testing.assert_array_equal(masked, timeseries.astype(np.float32))
    with pytest.raises(DataError, match=r"volumes have shape \(3, 4, 2\) but the mask has shape \(3, 4, 3\)"):
        read_masked_run(path, np.ones((3, 4, 3), bool))


def test_events_errors_name_the_column_and_the_row():
    timeseries, events, _, _ = _run()
    n_scans = len(timeseries)
    with pytest.raises(DataError, match="no 'onset' column"):
        fit_single_trials(timeseries, events.drop(columns="onset"), 2.0)
    with pytest.raises(DataError, match="no 'duration' column"):
        fit_single_trials(timeseries, events.drop(columns="duration"), 2.0)
    late = events.copy()
    late.loc[7, "onset"] = n_scans * 2.0 + 3
    with pytest.raises(DataError, match=rf"row 7 has onset {n_scans * 2.0 + 3} s, at or past the run's end"):
        fit_single_trials(timeseries, late, 2.0)
    early = events.copy()
    early.loc[0, "onset"] = -30.0
    with pytest.raises(
        DataError, match="row 0 has onset -30.0 s, more than 24 s before the run's first volume"
    ):
        fit_single_trials(timeseries, early, 2.0)
    missing = events.astype({"onset": object})
    missing.loc[4, "onset"] = "n/a"
    with pytest.raises(DataError, match=r"row 4 has onset 'n/a', not a number"):
        fit_single_trials(timeseries, missing, 2.0)
    negative = events.copy()
    negative.loc[2, "duration"] = -1.0
    with pytest.raises(DataError, match="row 2 has a negative duration"):
        fit_single_trials(timeseries, negative, 2.0)
    with pytest.raises(DataError, match="the confounds have 3 rows but the run has"):
        fit_single_trials(timeseries, events, 2.0, confounds=pd.DataFrame({"csf": [1.0, 2.0, 3.0]}))
    many = pd.DataFrame(np.random.default_rng(0).standard_normal((n_scans, n_scans - 20)))
    many.columns = [
        f"c{i}" for i in many.columns
    ]  # with 20 trial regressors, drifts and a constant: too many
    with pytest.raises(
        DataError, match=rf"LSA design has \d+ columns for {n_scans} volumes.*Use estimator='lss'"
    ):
        fit_single_trials(timeseries, events, 2.0, confounds=many)


def test_config_errors():
    with pytest.raises(ConfigError, match="estimator must be one of"):
        GLMConfig(estimator="glmsingle")
    with pytest.raises(ConfigError, match="hrf_model must be one of"):
        GLMConfig(hrf_model="fir")
    assert GLMConfig(hrf_model="glover + derivative + dispersion").n_basis == 3
