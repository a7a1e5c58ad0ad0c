"""Lite-Mind's released weights: the released DFTBackbone's key names and layouts mapped onto ours, the
released settings required, and ``brainkit import-weights lite_mind`` writing a run that eval and predict use."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import brainkit
from brainkit.cli import main
from brainkit.errors import CheckpointError, ConfigError
from brainkit.models.lite_mind import PRESETS, LiteMind, load_released
from brainkit.recipes import evaluate_run

RELEASED = {"fremlp": "diagonal", "voxel_remainder": "drop", "spectrum": "complex_square"}


def released_state(n_voxels, patch, dims, depths, out_dim, n_filters=2, ratio=2, cls_only=True) -> dict:
    """A state dict with the released DFTBackbone's names and shapes (src/dft_backbone.py), random values."""
    g = torch.Generator().manual_seed(0)
    n = (n_voxels - patch) // patch + 1  # the released Conv1d(kernel=stride=patch, no padding)
    state = {
        "patch_embed.proj.weight": torch.randn(dims[0], 1, patch, generator=g),
        "patch_embed.proj.bias": torch.randn(dims[0], generator=g),
        "pos_embed": torch.randn(1, n, dims[0], generator=g),
    }
    for s, (d, depth) in enumerate(zip(dims, depths)):
        for j in range(depth):
            b = f"blocks.{s}.{j}."
            for norm in ("norm1", "norm2", "norm3"):
                state[b + norm + ".weight"] = torch.randn(d, generator=g)
                state[b + norm + ".bias"] = torch.randn(d, generator=g)
            state[b + "filter.complex_weight"] = torch.randn(n_filters, n // 2 + 1, d, 2, generator=g)
            state[b + "mlp.fc1.weight"] = torch.randn(ratio * d, d, generator=g)
            state[b + "mlp.fc1.bias"] = torch.randn(ratio * d, generator=g)
            state[b + "mlp.fc2.weight"] = torch.randn(d, ratio * d, generator=g)
            state[b + "mlp.fc2.bias"] = torch.randn(d, generator=g)
            state[b + "fremlp.embeddings"] = torch.randn(1, d, generator=g)
            for name in ("r", "i"):
                state[b + f"fremlp.{name}"] = torch.randn(d, d, generator=g)
            for name in ("rb", "ib"):
                state[b + f"fremlp.{name}"] = torch.randn(d, generator=g)
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        state[f"tokens_down.{i}.weight"] = torch.randn(b, a, generator=g)
        state[f"tokens_down.{i}.bias"] = torch.randn(b, generator=g)
    state["norm.weight"] = torch.randn(dims[-1], generator=g)
    state["norm.bias"] = torch.randn(dims[-1], generator=g)
    state["head.weight"] = torch.randn(out_dim, dims[-1] if cls_only else n, generator=g)
    state["head.bias"] = torch.randn(out_dim, generator=g)
    return state


def tiny(**changes) -> LiteMind:
    config = replace(PRESETS["testing"], n_voxels=41, output_shape=(24,), **{**RELEASED, **changes})
    return LiteMind(config).eval()


def test_released_layouts_land_where_the_released_forward_reads_them() -> None:
    state = released_state(41, 8, (12, 3), (1, 1), 24)  # 41 voxels, patches of 8: 5 patches, 1 voxel dropped
    model = tiny()
    load_released(model, state, "litemind-subj01.pth")
    ours = model.state_dict()
    assert model.n_patches == 5
    assert torch.equal(
        ours["patch_embed.weight"], state["patch_embed.proj.weight"][:, 0, :]
    )  # (12, 1, 8) -> (12, 8)
    assert torch.equal(
        ours["pos_embed"][3, 0], state["pos_embed"][0, 3]
    )  # (1, 5, 12) -> patch-major (5, 1, 12)
    r = state["blocks.0.0.fremlp.r"]
    assert torch.equal(ours["stages.0.0.fremlp.weight_real"], torch.tensor([r[k, k] for k in range(12)]))
    assert torch.equal(ours["stages.1.0.filter.weight"], state["blocks.1.0.filter.complex_weight"])
    assert torch.equal(ours["tokens_down.0.weight"], state["tokens_down.0.weight"])
    # off-diagonal entries of r / i are never read by the released einsum 'bijd,dd->bijd': changing them changes
    # nothing, changing a diagonal entry does
    x = torch.randn(3, 41)
    with torch.no_grad():
        before = model(x)
        changed = dict(state, **{"blocks.0.0.fremlp.r": r + 5 * (1 - torch.eye(12))})
        load_released(model, changed, "s")
        assert torch.equal(model(x), before)
        load_released(model, dict(state, **{"blocks.0.0.fremlp.r": r + torch.eye(12)}), "s")
        assert not torch.allclose(model(x), before)


def test_released_settings_and_sizes_are_required() -> None:
    state = released_state(41, 8, (12, 3), (1, 1), 24)
    with pytest.raises(ConfigError, match=r"this model has \{'spectrum': 'power'\}.*nsd_subj01_released"):
        load_released(tiny(spectrum="power"), state, "s")
    wider = released_state(49, 8, (12, 3), (1, 1), 24)  # 6 patches: the positional table and filters differ
    with pytest.raises(CheckpointError, match=r"pos_embed -> pos_embed: \(6, 1, 12\).*ours \(5, 1, 12\)"):
        load_released(tiny(), wider, "wider.pth")
    with pytest.raises(CheckpointError, match=r"released keys that no rule maps \(1\): extra"):
        load_released(tiny(), dict(state, extra=torch.ones(1)), "s")


def test_import_weights_writes_a_lite_mind_run_for_eval_and_predict(tmp_path) -> None:
    path = tmp_path / "litemind-subj01.pth"
    torch.save(released_state(41, 8, (12, 3), (1, 1), 24), path)
    run = tmp_path / "run"
    options = json.dumps(RELEASED)
    args = ["import-weights", "lite_mind", str(path), "--out", str(run), "--preset", "testing"]
    assert main([*args, "--set", f"model.options={options}"]) == 0
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["imported"]["sha256"] and set(saved["metrics"]) == {"Lite-Mind"}
    assert evaluate_run(run) == saved["metrics"]
    decoder = run / "lite_mind"
    assert json.loads((decoder / "metrics.json").read_text())["train_seconds"] == 0.0
    loaded = brainkit.load(run)
    x = np.random.default_rng(0).standard_normal((2, 41)).astype(np.float32)
    model = tiny()
    load_released(model, torch.load(path, weights_only=True), "s")
    with torch.no_grad():
        expected = model(
            torch.from_numpy(x)
        ).numpy()  # nsd_like: values enter as given (scale 1, no z-scoring)
    np.testing.assert_allclose(loaded.predict(x, subject="subj01"), expected, rtol=1e-5, atol=1e-6)
