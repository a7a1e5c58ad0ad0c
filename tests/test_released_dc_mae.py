"""Vis-Dec's released phase-1 DC-MAE: the released MAEforFMRIContrast key names and layouts mapped onto ours,
its fixed tables checked, and its training checkpoint (config objects pickled beside the weights) read
without running code."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from brainkit.checkpoint import read_torch_weights
from brainkit.errors import CheckpointError, ConfigError
from brainkit.models import build_model, model_config
from brainkit.models.dc_mae import RELEASED_METADATA, load_released


def tiny(released: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(
        "dc_mae", model_config("dc_mae", "testing", {"released": released, "n_voxels": 64})
    ).eval()


def released_names(model) -> dict[str, torch.Tensor]:
    """``model``'s weights under the released names (timm Blocks: norm1, attn.qkv, attn.proj, norm2, mlp.fc1/2),
    with the released fixed tables (1, L + 1, D) and a natural-image decoder head."""
    state = model.state_dict()
    out = {
        "patch_embed.proj.weight": state["patch_embed.weight"],
        "patch_embed.proj.bias": state["patch_embed.bias"],
        "pos_embed": model.positions[None],
        "decoder_pos_embed": model.decoder_positions[None],
        "nature_img_decoder_embed.weight": torch.ones(3, 2),
    }
    names = {"norm1": "norm1", "norm2": "norm2", "self_attn.out_proj": "attn.proj", "linear1": "mlp.fc1",
             "linear2": "mlp.fc2"}  # fmt: skip
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] in ("encoder", "decoder"):
            head = "blocks" if parts[0] == "encoder" else "decoder_blocks"
            inner = ".".join(parts[3:])
            if inner.startswith("self_attn.in_proj_"):
                inner = "attn.qkv." + inner.rsplit("_", 1)[1]
            else:
                stem, leaf = inner.rsplit(".", 1)
                inner = f"{names[stem]}.{leaf}"
            out[f"{head}.{parts[2]}.{inner}"] = value
        elif key not in ("patch_embed.weight", "patch_embed.bias"):
            out[key] = value
    return {k: v.clone() for k, v in out.items()}


def test_released_names_load_and_give_the_same_network() -> None:
    source = tiny(seed=1)
    target = tiny(seed=2)
    notes = load_released(target, released_names(source), "checkpoint.pth")
    assert notes == [
        "not loaded (natural-image decoder head, not built by brainkit): nature_img_decoder_embed"
    ]
    x = torch.randn(3, source.config.n_voxels)
    mask = source.random_mask(3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(target(x, mask), source(x, mask))


def test_released_tables_settings_and_shapes_are_checked() -> None:
    released = released_names(tiny())
    with pytest.raises(ConfigError, match="released=True"):
        load_released(tiny(released=False), released, "s")
    ours_tables = dict(
        released, pos_embed=tiny(released=False).positions[None]
    )  # interleaved, not [sin | cos]
    with pytest.raises(CheckpointError, match=r"its pos_embed .* is not the \[sin \| cos\] table"):
        load_released(tiny(), ours_tables, "s")
    wrong = dict(released, **{"decoder_pred.bias": torch.zeros(7)})
    with pytest.raises(CheckpointError, match=r"decoder_pred.bias -> decoder_pred.bias: \(7,\)"):
        load_released(tiny(), wrong, "s")


def test_the_released_training_checkpoint_reads_with_its_config_objects_inert(tmp_path, monkeypatch) -> None:
    """utils.save_model stores {"model", "optimizer", "epoch", "scaler", "config"}, the config a
    config.Config_MBM_fMRI object: refused by name by default, read as an inert record when listed."""
    module = types.ModuleType("config")
    ran: list = []
    module.RAN = ran
    exec(  # a class whose __setstate__ would record that file-named code ran
        "class Config_MBM_fMRI:\n"
        "    def __init__(self):\n        self.mask_ratio = 0.75\n"
        "    def __setstate__(self, state):\n        RAN.append(state)\n",
        module.__dict__,
    )
    monkeypatch.setitem(sys.modules, "config", module)
    released = released_names(tiny())
    path = tmp_path / "checkpoint.pth"
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}
    torch.save({"model": released, "optimizer": optimizer, "epoch": 9, "scaler": {"scale": 65536.0},
                "config": module.Config_MBM_fMRI()}, path)  # fmt: skip
    monkeypatch.delitem(sys.modules, "config")  # the reader has no released code to import
    with pytest.raises(CheckpointError, match="pickles config.Config_MBM_fMRI, not only tensors"):
        read_torch_weights(path)
    weights = read_torch_weights(path, RELEASED_METADATA)
    assert sorted(weights) == sorted(released) and not ran
    model = tiny(seed=5)
    load_released(model, weights, str(path))
    assert torch.equal(model.cls_token, released["cls_token"])
