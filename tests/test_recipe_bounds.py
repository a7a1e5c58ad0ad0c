"""Every recipe refuses out-of-range and unknown settings in one line, exit 2, before any data are built, and
leaves no folder; every preset of every recipe passes its own checks (the bounds are not tighter than the
presets the project ships)."""

from __future__ import annotations

import pytest

from brainkit.cli import main
from brainkit.recipes import recipe_config
from brainkit.registry import RECIPES

# (recipe, override, what the one-line error must say)
BAD = [
    # sim: the recipe, its data options and encoders, the vsMAE and SIM model configs, the subject split
    ("sim", "n_test_subjects=0", "n_test_subjects=0 is out of range: allowed 1 <= x"),
    ("sim", "n_test_subjects=4", "n_test_subjects=4 must leave subjects to train on"),
    ("sim", "gap_clips=-1", "gap_clips=-1 is out of range"),
    ("sim", "ridge_alpha=0", "ridge_alpha=0.0 is out of range: allowed x > 0"),
    ("sim", "fit.pretrained_layer_decay=1.5", "pretrained_layer_decay=1.5 is out of range: allowed 0 < x <= 1"),
    ("sim", "evaluation.n_targets=0", "evaluation.n_targets=0 is out of range"),
    ("sim", "threads=-1", "threads=-1 is out of range"),
    ("sim", "training.steps=0", "training.steps=0 is out of range"),
    ("sim", "inits=[scratch, typo]", "inits must come from ['released', 'scratch', 'vsmae']"),
    ("sim", "data=typo", "sim data='typo' is neither a movie_surface_like preset"),
    ("sim", "data_options.n_subjects=1000000000", "n_subjects=1000000000 is out of range: allowed 1 <= x <= 1000"),
    ("sim", "data_options.shared_tuning=2", "shared_tuning=2.0 is out of range: allowed 0 <= x <= 1"),
    ("sim", "data_options.fooo=1", "unknown key(s) ['fooo']"),
    ("sim", "data_options.video_encoder=typo", "video_encoder='typo' is not a stimulus encoder"),
    ("sim", "data_options.audio_options.foo=1", "encoder 'audio_bands' takes no option(s) ['foo']"),
    ("sim", "vsmae.coarse_order=3", "coarse_order=3 must be below fine_order=3"),
    ("sim", "vsmae.mask_ratio=1", "mask_ratio=1.0 is out of range: allowed 0 < x < 1"),
    ("sim", "vsmae.model_options.decoder_depth=0", "decoder_depth=0 is out of range"),
    ("sim", "model.embedding_dim=0", "sim model.embedding_dim=0 is out of range"),
    ("sim", "model.dropout=1", "sim model.dropout=1.0 is out of range: allowed 0 <= x < 1"),
    ("sim", "model.loss_weights=[0, 0, 0]", "loss_weights=[0.0, 0.0, 0.0] must be 3 non-negative weights"),
    ("sim", "model.temperature_video=.nan", "temperature_video=nan is out of range: allowed a finite"),
    ("sim", "model.encoder.depth=0", "sim model.encoder.depth=0 is out of range"),
    ("sim", "model.fooo=1", "unknown key(s) ['fooo']"),
    ("sim", "vsmae_checkpoint=/nonexistent/run", "vsmae_checkpoint /nonexistent/run is neither"),
    # vsmae
    ("vsmae", "fine_order=6", "the built-in rest data are fsaverage5"),
    ("vsmae", "coarse_order=3", "coarse_order=3 must be below fine_order=3"),
    ("vsmae", "mask_ratio=0", "mask_ratio=0.0 is out of range: allowed 0 < x < 1"),
    ("vsmae", "train_fraction=1", "train_fraction=1.0 is out of range"),
    ("vsmae", "train_step=0", "train_step=0 is out of range"),
    ("vsmae", "n_eval_masks=0", "n_eval_masks=0 is out of range"),
    ("vsmae", "model_preset=typo", "vsmae has no model preset 'typo'"),
    ("vsmae", "encoder_options.dim=5", "SiT dim=5 must be even"),
    ("vsmae", "encoder_options.n_heads=0", "encoder.n_heads=0 is out of range"),
    ("vsmae", "encoder_options.positions=typo", "set positions to one of ('index', 'sphere')"),
    ("vsmae", "patches=typo", "patches 'typo' is not one of 'icosphere'"),
    ("vsmae", "model_options.decoder_dim=7", "decoder_dim=7 must be even"),
    ("vsmae", "model_options.fooo=1", "unknown key(s) ['fooo']"),
    ("vsmae", "training.lr=-1", "training.lr=-1.0 is out of range"),
    # vis_dec: every phase's preset and options, the data's options, the metrics
    ("vis_dec", "n_way=[1]", "n_way[0]=1 is out of range: allowed 2 <= x"),
    ("vis_dec", "n_samples=0", "n_samples=0 is out of range"),
    ("vis_dec", "n_steps=0", "n_steps=0 is out of range"),
    ("vis_dec", "guidance_scale=0.5", "guidance_scale=0.5 is out of range: allowed 1 <= x"),
    ("vis_dec", "guidance_layer=typo", "guidance_layer='typo' is not allowed"),
    ("vis_dec", "feature_layers=[logits]", "feature_layers[0]='logits' is not allowed"),
    ("vis_dec", "dc_mae_loss=typo", "dc_mae_loss='typo' is not allowed"),
    ("vis_dec", "metric_trials=0", "metric_trials=0 is out of range"),
    ("vis_dec", "dc_mae_preset=typo", "has no preset 'typo'"),
    ("vis_dec", "dc_mae.mask_ratio=1", "mask_ratio=1.0 is out of range: allowed 0 < x < 1"),
    ("vis_dec", "dc_mae.n_heads=3", "DC-MAE dim=16 must be even (sin-cos positions) and a multiple of n_heads=3"),
    ("vis_dec", "dc_mae.fooo=1", "unknown key(s) ['fooo']"),
    ("vis_dec", "image_mae_preset=typo", "image_mae_preset must be one of"),
    ("vis_dec", "cross_modal_preset=typo", "cross_modal_preset must be one of"),
    ("vis_dec", "cross_modal_options.cross_heads=0", "cross_heads=0 is out of range"),
    ("vis_dec", "cross_modal_options.image_mask_ratio=1", "image_mask_ratio=1.0 is out of range"),
    ("vis_dec", "ldm_preset=typo", "ldm_preset must be one of"),
    ("vis_dec", "ldm.norm_groups=7", "must be multiples of norm_groups 7"),
    ("vis_dec", "ldm.beta_end=0.0001", "beta_end=0.0001 must be above beta_start"),
    ("vis_dec", "ldm.scheduler=euler", "set scheduler to one of ('pndm', 'ddim')"),
    ("vis_dec", "ldm.image_size=1000000", "image_size=1000000 is out of range"),
    ("vis_dec", "data.fooo=1", "takes no option(s) ['fooo']"),
    ("vis_dec", "extra_pretraining.typo={}", "Unknown pretraining source 'typo'"),
    ("vis_dec", "extra_pretraining.nitime.fooo=1", "Pretraining source 'nitime': bad options ['fooo']"),
    ("vis_dec", "pretrain.epochs=0", "pretrain.epochs=0 is out of range"),
    ("vis_dec", "threads=-1", "threads=-1 is out of range"),
    # clip_mused and linear_encoding: the fields that had no bounds before
    ("clip_mused", "model.dropout=1", "dropout=1.0 is out of range: allowed 0 <= x < 1"),
    ("clip_mused", "model.variant=typo", "set variant to one of ('hcp', 'nsd')"),
    ("clip_mused", "model.n_heads=0", "n_heads=0 is out of range"),
    ("clip_mused", "loss.rsm_low=-1", "loss.rsm_low=-1.0 is out of range: allowed x >= 0"),
    ("clip_mused", "high_dim=0", "high_dim=0 is out of range"),
    ("clip_mused", "srm_c=0", "srm_c=0.0 is out of range: allowed x > 0"),
    ("clip_mused", "threads=-1", "threads=-1 is out of range"),
    ("linear_encoding", "val_fraction=0", "val_fraction=0.0 is out of range: allowed 0 < x < 1"),
    ("linear_encoding", "ridge_alphas=[0]", "ridge_alphas[0]=0.0 is out of range: allowed x > 0"),
    ("linear_encoding", "min_ceiling=200", "min_ceiling=200.0 is out of range: allowed 0 <= x <= 100"),
    # adaptation: the protocol's settings (k larger than the subject's trials needs the data: test_adaptation.py)
    ("adaptation", "adaptation.k=[0]", "adaptation.k=[0]: each k must be a number of trials >= 1 or 'all'"),
    ("adaptation", "adaptation.k=[most]", "each k must be a number of trials >= 1 or 'all'"),
    ("adaptation", "adaptation.target_subject=subj09", "target_subject='subj09' is not a subject of the data"),
    ("adaptation", "data.options.subjects=[subj01]", "adaptation needs at least 2 subjects"),
    ("adaptation", "adaptation.seeds=[]", "give one or more distinct seeds"),
    ("adaptation", "adaptation.seconds_per_trial=0", "seconds_per_trial=0.0 is out of range: allowed x > 0"),
    ("adaptation", "adaptation.d_shared=0", "d_shared=0 is out of range"),
    ("adaptation", "model.preset=typo", "Model 'lite_mind' has no preset 'typo'"),
    ("adaptation", "data.options.fooo=1", "fooo"),
]  # fmt: skip

# What each recipe's run builds first: replaced, so a check that lets a bad value through fails the test.
DATA_BUILDERS = {
    "sim": ("brainkit.recipes.sim", "load_movie_data"),
    "vsmae": ("brainkit.recipes.vsmae", "prepare"),
    "vis_dec": ("brainkit.recipes.vis_dec", "_inputs"),
    "clip_mused": ("brainkit.recipes.clip_mused", "prepare"),
    "linear_encoding": ("brainkit.recipes.linear_encoding", "load_dataset"),
    "adaptation": ("brainkit.recipes.adaptation", "open_dataset"),
}


@pytest.mark.parametrize(("recipe", "override", "message"), BAD, ids=[f"{r}:{o}" for r, o, _ in BAD])
def test_bad_settings_fail_in_one_line_before_any_data(
    recipe, override, message, tmp_path, capsys, monkeypatch
):
    import importlib

    module, name = DATA_BUILDERS[recipe]

    def no_data(*args, **kwargs):
        raise AssertionError("the data were built before the config was checked")

    monkeypatch.setattr(importlib.import_module(module), name, no_data)
    run = tmp_path / "run"
    assert main(["run", recipe, "--preset", "testing", "--out", str(run), "--set", override]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())  # no run folder, no partial folder


def _presets():
    return [(name, preset) for name in RECIPES.names() for preset in RECIPES.get(name).PRESETS]


# presets that need the user's local files: their check asks for them by name
NEEDS_FILES = {
    ("vis_dec", "paper"): "set ldm_dir=",
    ("vis_dec", "god"): "needs data.root",
    ("vis_dec", "bold5000"): "needs data.root",
    ("clip_mused", "hcp_real"): "needs data.root",  # the HCP download
    ("clip_mused", "testing_hcp"): "needs data.root",  # the folder brainkit.testing_hcp writes
    ("sim", "hcp_real"): "needs data_options.root",  # the HCP download
    ("brain_mae", "roi_tables"): "needs data.options.root",  # your ROI tables folder
    ("clip_mused", "nsd"): r"needs data\.root, data\.coco_annotations",  # NSD + COCO's annotation files
    ("clip_mused", "testing_nsd"): r"needs data\.root, data\.coco_annotations",  # tests/nsd_fixture.py's
}


@pytest.mark.parametrize(("recipe", "preset"), _presets(), ids=[f"{r}:{p}" for r, p in _presets()])
def test_every_shipped_preset_passes_its_recipes_checks(recipe, preset):
    from brainkit.errors import ConfigError

    cls = RECIPES.get(recipe)
    config = recipe_config(recipe, preset)
    if (recipe, preset) in NEEDS_FILES:
        with pytest.raises(ConfigError, match=NEEDS_FILES[recipe, preset]):
            cls.check(config)
    elif hasattr(cls, "check"):
        cls.check(config)
