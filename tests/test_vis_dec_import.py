"""`brainkit import-weights vis_dec FILE`: the released phase-1 and phase-2 checkpoints, written here as hand-made
state dicts with the released key names and shapes (MAEforFMRIContrast / MAEforFMRICross, in the released
training-checkpoint container with its pickled config objects), become whole runs whose remaining phases train on
the testing data; `brainkit eval`, `brainkit.load` read them; refused files leave no run folder."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch

from brainkit.checkpoint import WEIGHTS, load_checkpoint, load_tensors, sha256_file
from brainkit.cli import main
from brainkit.errors import CheckpointError, ConfigError
from brainkit.models import load_model
from brainkit.recipes import evaluate_run
from brainkit.recipes.imported import import_run, importers
from brainkit.recipes.vis_dec.arrays import fit_voxels
from brainkit.training import phase_done, read_history

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_VOXELS = 48  # the testing data's 45 voxels, released padding to the patch of 4: 12 patches
SIZES = {"patch": 4, "dim": 16, "depth": 2, "decoder_dim": 8, "decoder_depth": 1}  # vis_dec testing's DC-MAE
LATER = ["phase2_image_mae", "phase2_cross_modal", "ldm_vae", "ldm_unet", "phase3_ldm"]


def sincos(n_patches: int, dim: int) -> torch.Tensor:
    """MAE's fixed 1-D table (1, 1 + n, dim): a zero cls row, then [sin | cos] of pos / 10000^(i / (dim / 2))."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float32) / (dim / 2.0))
    angles = np.arange(n_patches, dtype=np.float32)[:, None] * omega[None]
    table = np.concatenate([np.zeros((1, dim)), np.concatenate([np.sin(angles), np.cos(angles)], 1)])
    return torch.from_numpy(table.astype(np.float32))[None]


def released_fmri(n_voxels=N_VOXELS, patch=4, dim=16, depth=2, decoder_dim=8, decoder_depth=1, cross=0, width=12,
                  mlp=24, seed=0) -> dict[str, torch.Tensor]:  # fmt: skip
    """The released fMRI MAE's state dict (timm Blocks, MLP ratio 1), random values; ``cross`` > 0 adds phase
    2's cross-attention: cross_map_in / out and ``cross`` ViT-MAE cross layers ``width`` wide with an ``mlp``
    wide MLP (the image MAE's sizes: the testing one's 12 and 24)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return 0.1 * torch.randn(*shape, generator=g)

    n = n_voxels // patch
    state = {"patch_embed.proj.weight": r(dim, 1, patch), "patch_embed.proj.bias": r(dim), "cls_token": r(1, 1, dim),
             "pos_embed": sincos(n, dim), "norm.weight": 1 + r(dim), "norm.bias": r(dim),
             "decoder_embed.weight": r(decoder_dim, dim), "decoder_embed.bias": r(decoder_dim),
             "mask_token": r(1, 1, decoder_dim), "decoder_pos_embed": sincos(n, decoder_dim),
             "decoder_norm.weight": 1 + r(decoder_dim), "decoder_norm.bias": r(decoder_dim),
             "decoder_pred.weight": r(patch, decoder_dim), "decoder_pred.bias": r(patch)}  # fmt: skip
    for head, count, d in (("blocks", depth, dim), ("decoder_blocks", decoder_depth, decoder_dim)):
        for i in range(count):
            shapes = {"norm1": [(d,)], "attn.qkv": [(3 * d, d), (3 * d,)], "attn.proj": [(d, d), (d,)],
                      "norm2": [(d,)], "mlp.fc1": [(d, d), (d,)], "mlp.fc2": [(d, d), (d,)]}  # fmt: skip
            for name, (weight, *bias) in shapes.items():
                state[f"{head}.{i}.{name}.weight"] = r(*weight) + (1 if name.startswith("norm") else 0)
                state[f"{head}.{i}.{name}.bias"] = r(*(bias[0] if bias else weight))
    if cross:
        state |= {"cross_map_in.weight": r(width, dim), "cross_map_in.bias": r(width),
                  "cross_map_out.weight": r(dim, width), "cross_map_out.bias": r(dim)}  # fmt: skip
        for i in range(cross):
            layer = {f"{a}.attention.{p}": (width, width) for a in ("attention", "cross_attention")
                     for p in ("query", "key", "value")}  # fmt: skip
            layer |= {"attention.output.dense": (width, width), "cross_attention.output.dense": (width, width),
                      "intermediate.dense": (mlp, width), "output.dense": (width, mlp),
                      "layernorm_before": (width,), "layernorm_after": (width,)}  # fmt: skip
            for name, shape in layer.items():
                state[f"cross_blocks.{i}.{name}.weight"] = r(*shape)
                state[f"cross_blocks.{i}.{name}.bias"] = r(shape[0])
    return state


def test_fit_voxels_wraps_on_or_cuts_the_padded_voxels() -> None:
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    padded = np.concatenate([x, x[:, :3]], axis=1)  # released padding to the patch of 4: 8 voxels
    np.testing.assert_array_equal(fit_voxels(x, 4, released=True), padded)
    np.testing.assert_array_equal(
        fit_voxels(x, 4, True, length=11), np.concatenate([padded, padded[:, :3]], 1)
    )
    np.testing.assert_array_equal(fit_voxels(x, 4, True, length=6), padded[:, :6])
    assert "vis_dec" in importers()  # `brainkit list` marks it
    with pytest.raises(ConfigError, match="n_voxels=50 is not a multiple of the patch size 4"):
        import_run("vis_dec", "missing.pth", "run", "testing", ["n_voxels=50"])


@pytest.fixture
def save_released(monkeypatch):
    """torch.save as the released sc_mbm/utils.save_model(_merge_conf) does: the state dict under "model" beside
    the optimiser, epoch, scaler and a pickled config.Config_MBM_* object (phase 2: also "config_merge" with the
    image MAE's transformers ViTMAEConfig). The config module is gone when the file is read."""

    def save(path, state, phase=1):
        module = types.ModuleType("config")
        exec("class Config_MBM_fMRI_contrast:\n    def __init__(self):\n        self.mask_ratio = 0.75\n",
             module.__dict__)  # fmt: skip
        monkeypatch.setitem(sys.modules, "config", module)
        saved = {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 5.3e-5, "params": [0]}]},
                 "epoch": 7, "scaler": {"scale": 65536.0}, "config": module.Config_MBM_fMRI_contrast()}  # fmt: skip
        if phase == 2:
            from transformers import ViTMAEConfig

            image = ViTMAEConfig(hidden_size=12, num_attention_heads=2, intermediate_size=48)
            image.num_cross_encoder_layers = 2
            saved["config_merge"] = {
                "num_voxels": N_VOXELS,
                "decoder_depth": 2,
                "cross_img_encoder_config": image,
            }
        torch.save(saved, path)
        monkeypatch.delitem(sys.modules, "config")
        return path

    return save


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("vis_dec_import_cache"))


def _trained(monkeypatch) -> list[str]:
    """The names of the phases the loop trains from now on (none killed)."""
    import brainkit.training.phase
    from brainkit.testing import killing_train

    calls: list[str] = []
    monkeypatch.setattr(brainkit.training.phase, "train", killing_train("nothing", calls=calls))
    return calls


def _same_run_as_trained(run, metrics: dict) -> None:
    """The imported run reads like a trained one: eval gives the import's metrics, load(RUN).predict decodes."""
    from brainkit.recipes.loaded import load

    assert evaluate_run(run) == metrics
    loaded = load(run)
    with np.load(run / "reconstructions.npz") as saved:
        assert saved["vis_dec"].shape == (12, 2, 16, 16, 3)
    images = loaded.predict(np.random.default_rng(0).standard_normal((2, 45)).astype(np.float32))
    assert images.shape == (2, 2, 16, 16, 3) and images.dtype == np.uint8
    assert (run / "report.html").is_file()


@pytest.mark.slow
def test_phase1_checkpoint_becomes_a_run_that_trains_phases_2_and_3(
    tmp_path, cache_dir, save_released, monkeypatch, capsys
) -> None:
    state = released_fmri(**SIZES)
    path = save_released(tmp_path / "checkpoint.pth", state)
    run = tmp_path / "run"
    calls = _trained(monkeypatch)
    argv = ["import-weights", "vis_dec", str(path), "--out", str(run), "--preset", "testing", "--set",
            f"cache_dir={cache_dir}"]  # fmt: skip
    assert main(argv) == 0
    assert calls == LATER  # phase 1 reloaded from the import, never trained
    printed = capsys.readouterr().out
    assert "Vis-Dec phase 1 (DC-MAE" in printed and "phases 2 and 3 trained here" in printed
    phase1 = run / "train" / "phase1_dc_mae"
    done = json.loads((phase1 / "done.json").read_text())
    assert done["steps"] == 0 and done["imported"]["released_phase"] == 1 and not read_history(phase1)
    assert done["imported"]["sha256"] == sha256_file(path)
    final = load_tensors(phase1 / "final" / WEIGHTS)
    model, _ = load_model(phase1 / "checkpoint")
    ours = model.state_dict()
    pairs = {"patch_embed.weight": "patch_embed.proj.weight", "cls_token": "cls_token", "mask_token": "mask_token",
             "encoder.layers.1.self_attn.in_proj_weight": "blocks.1.attn.qkv.weight",
             "encoder.layers.0.linear2.bias": "blocks.0.mlp.fc2.bias", "norm.weight": "norm.weight",
             "decoder.layers.0.self_attn.out_proj.weight": "decoder_blocks.0.attn.proj.weight",
             "decoder_pred.bias": "decoder_pred.bias"}  # fmt: skip
    for key, released in pairs.items():
        assert torch.equal(ours[key], state[released]) and torch.equal(final[f"model.{key}"], state[released])
    for name in LATER:
        assert phase_done(run / "train" / name) and read_history(run / "train" / name)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["imported"]["sha256"] == sha256_file(path)
    _same_run_as_trained(run, saved["metrics"])


@pytest.mark.slow
def test_phase2_checkpoint_gives_the_tuned_fmri_mae_and_trains_phase_3(
    tmp_path, cache_dir, save_released, monkeypatch
) -> None:
    state = released_fmri(**(SIZES | {"decoder_depth": 2, "n_voxels": 52}), cross=3, seed=3)
    path = save_released(tmp_path / "checkpoint_singlesub_mergconf.pth", state, phase=2)
    run = tmp_path / "run"
    overrides = [f"cache_dir={cache_dir}", "n_voxels=52"]  # the 45 voxels padded to 48, then wrapped on to 52
    with pytest.raises(
        ConfigError, match=r"decoder_depth: the file's 2, the config's 1 \(--set dc_mae.decoder_depth=2\)"
    ):
        import_run("vis_dec", path, run, preset="testing", overrides=overrides)
    assert not run.exists() and not (tmp_path / ".run.partial").exists()
    with pytest.raises(ConfigError, match="phase-2 .* cross_modal=false"):
        import_run(
            "vis_dec", path, run, "testing", overrides + ["dc_mae.decoder_depth=2", "cross_modal=false"]
        )
    calls = _trained(monkeypatch)
    result = import_run("vis_dec", path, run, "testing", overrides + ["dc_mae.decoder_depth=2"])
    assert calls == ["ldm_vae", "ldm_unet", "phase3_ldm"]  # phases 1 and 2 are the import
    assert any("phase 2 imported" in n and "its cross-attention (" in n for n in result.notes)
    assert not any("not loaded" in n for n in result.notes)  # nothing of the file's fMRI side is dropped
    phase2 = run / "train" / "phase2_cross_modal"
    done = json.loads((phase2 / "done.json").read_text())
    assert done["imported"]["released_phase"] == 2 and done["steps"] == 0
    assert not (run / "train" / "phase1_dc_mae").exists() and not (phase2 / "checkpoint").exists()
    final = load_tensors(phase2 / "final" / WEIGHTS)
    fmri_keys = {f"model.fmri.{k}" for k in load_model(phase2 / "fmri_encoder")[0].state_dict()}
    cross_keys = {k for k in final if k.startswith("model.fmri_cross.")}
    assert set(final) == fmri_keys | cross_keys and len(cross_keys) == 4 + 3 * 24  # every cross_* tensor
    for key, released in {"map_in.weight": "cross_map_in.weight", "map_out.bias": "cross_map_out.bias",
                          "layers.2.cross_attn.key.weight": "cross_blocks.2.cross_attention.attention.key.weight",
                          "layers.1.linear1.weight": "cross_blocks.1.intermediate.dense.weight"}.items():  # fmt: skip
        assert torch.equal(final[f"model.fmri_cross.{key}"], state[released])
    conditioner, _ = load_checkpoint(
        run / "fmri_conditioner"
    )  # the encoder stays frozen in phase 3 (testing)
    for key, released in {"patch_embed.weight": "patch_embed.proj.weight", "decoder.layers.1.linear1.weight":
                          "decoder_blocks.1.mlp.fc1.weight", "encoder.layers.1.norm2.bias": "blocks.1.norm2.bias"}.items():  # fmt: skip
        assert torch.equal(conditioner[f"encoder.{key}"], state[released])
    _same_run_as_trained(run, json.loads((run / "metrics.json").read_text())["metrics"])


def test_phase2_cross_layers_load_into_the_released_stack_or_are_dropped() -> None:
    from brainkit.models import build_model, model_config
    from brainkit.models.cross_modal import image_mae_config
    from brainkit.models.cross_modal_released import FMRICrossReleased
    from brainkit.recipes.vis_dec.imported import IMPORT_OVERRIDES, load_phase2

    assert "cross_modal_options.released=true" in IMPORT_OVERRIDES  # an import sets it, as dc_mae.released
    state = released_fmri(**(SIZES | {"decoder_depth": 2, "n_voxels": 52}), cross=3, seed=3)

    def dc_mae():
        return build_model(
            "dc_mae", model_config("dc_mae", "testing", {"released": True, "decoder_depth": 2}, n_voxels=52)
        )

    model, stack = dc_mae(), FMRICrossReleased(16, image_mae_config(None, "testing"), 3)
    assert load_phase2(model, state, "phase2.pth", stack) == []  # nothing left out
    ours = stack.state_dict()
    for key, released in {"map_in.bias": "cross_map_in.bias", "map_out.weight": "cross_map_out.weight",
                          "layers.0.self_attn.value.bias": "cross_blocks.0.attention.attention.value.bias",
                          "layers.1.self_attn.out.weight": "cross_blocks.1.attention.output.dense.weight",
                          "layers.2.cross_attn.query.weight": "cross_blocks.2.cross_attention.attention.query.weight",
                          "layers.0.linear2.weight": "cross_blocks.0.output.dense.weight",
                          "layers.1.norm_before.bias": "cross_blocks.1.layernorm_before.bias"}.items():  # fmt: skip
        assert torch.equal(ours[key], state[released]), key
    assert torch.equal(
        model.state_dict()["encoder.layers.0.linear1.weight"], state["blocks.0.mlp.fc1.weight"]
    )
    # brainkit's own layout (cross_modal_options.released=false): the cross layers are dropped, said in a note
    notes = load_phase2(dc_mae(), state, "phase2.pth")
    assert any("not loaded (no counterpart" in n and "3 cross_blocks at width 12" in n for n in notes)


class Hook:  # a class a file pickles is code that loading it would run
    pass


def test_refused_files_leave_no_run_folder(tmp_path, cache_dir) -> None:
    good = released_fmri(**SIZES)
    bad_shape = dict(good, **{"decoder_pred.bias": torch.zeros(7), "blocks.0.attn.extra": torch.zeros(2)})
    wrong_cross = dict(released_fmri(**SIZES, cross=1), **{"cross_map_in.weight": torch.zeros(12, 5)})
    wrong_cross["cross_blocks.0.foo.weight"] = torch.zeros(3)

    cases = {
        "ldm.pth": ({"model": {"first_stage_model.w": torch.zeros(2), "cond_stage_model.w": torch.zeros(2)}},
                    CheckpointError, r"neither of Vis-Dec's released checkpoints.*found 2 tensors under "
                    r"cond_stage_model, first_stage_model"),
        "shapes.pth": ({"model": bad_shape}, CheckpointError,
                       r"released keys that no rule maps \(1\): blocks.0.attn.extra.*decoder_pred.bias -> "
                       r"decoder_pred.bias: \(7,\)"),
        "cross.pth": ({"model": wrong_cross}, CheckpointError,
                      r"cross_blocks.0.foo.weight \(no rule.*cross_map_in.weight \(12, 5\)"),
        "layers.pth": ({"model": released_fmri(**SIZES, cross=2)}, ConfigError,
                       r"2 cross_blocks, the config's fmri_cross_layers=3 \(--set cross_modal_options.fmri_cross_layers=2"),
        "sizes.pth": ({"model": released_fmri(**(SIZES | {"dim": 24, "depth": 3}))}, ConfigError,
                      r"dim: the file's 24, the config's 16 \(--set dc_mae.dim=24\); depth: the file's 3"),
        "voxels.pth": ({"model": released_fmri(**(SIZES | {"n_voxels": 64}))}, ConfigError,
                       r"pos_embed covers 64 voxels, this run's data gives 48 \(--set n_voxels=64 wraps"),
        "code.pth": ({"model": good, "hook": Hook()}, CheckpointError, r"pickles .*Hook, not only tensors"),
    }  # fmt: skip
    for name, (content, error, message) in cases.items():
        torch.save(content, tmp_path / name)
        run = tmp_path / f"run_{name}"
        with pytest.raises(error, match=message):
            import_run("vis_dec", tmp_path / name, run, "testing", [f"cache_dir={cache_dir}"])
        assert not run.exists() and not (tmp_path / f".run_{name}.partial").exists(), name
