"""SiT encoder and vsMAE: shapes at unequal tiny sizes, gradients, determinism, safetensors round trip, input
errors, one optimiser step, preset parameter counts (meta device) against METHODS.md."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.models import build_model, count_parameters, load_model, model_config, save_model
from brainkit.models.sit import PRESETS as SIT_PRESETS
from brainkit.models.sit import SiT
from brainkit.models.vsmae import VSMAE, random_patch_mask
from brainkit.objectives.masked import masked_patch_loss

FRAMES, PATCHES, VERTICES, BATCH = 3, 11, 7, 5  # unequal, so a swapped axis cannot pass


def tiny_sit(seed: int = 0) -> SiT:
    torch.manual_seed(seed)
    options = {"n_patches": PATCHES, "n_patch_vertices": VERTICES, "n_frames": FRAMES}
    return build_model("sit", model_config("sit", "testing", options))


def tiny_vsmae(seed: int = 0) -> VSMAE:
    torch.manual_seed(seed)
    encoder = {
        **dataclasses.asdict(SIT_PRESETS["testing"]),
        "n_patches": PATCHES,
        "n_patch_vertices": VERTICES,
    }
    return build_model("vsmae", model_config("vsmae", "testing", {"encoder": encoder}))


def clips(seed: int = 1) -> torch.Tensor:
    return torch.randn(BATCH, FRAMES, PATCHES, VERTICES, generator=torch.Generator().manual_seed(seed))


def test_sit_shapes_and_visible_subset() -> None:
    model = tiny_sit().eval()
    x = clips()
    tokens = model(x)
    assert tokens.shape == (BATCH, 1 + PATCHES, 12)
    visible = torch.tensor([[0, 3, 10]] * BATCH)
    subset = model(x, visible)
    assert subset.shape == (BATCH, 4, 12)
    # a patch's token depends on the other tokens it attends to, so only the shape is comparable, but hiding
    # every patch except these three must not depend on the hidden patches' values
    y = x.clone()
    y[:, :, [1, 2, 4]] += 10.0
    assert torch.allclose(model(y, visible), subset)


def test_vsmae_shapes_gradients_determinism() -> None:
    model = tiny_vsmae().train()
    x = clips().requires_grad_(True)
    mask = random_patch_mask(BATCH, PATCHES, 0.5, torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist() == [6] * BATCH
    out = model(x, mask)
    assert out.shape == x.shape
    masked_patch_loss(out, x.detach(), mask).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    a, b = tiny_vsmae(seed=3).eval(), tiny_vsmae(seed=3).eval()
    assert torch.equal(a(clips(), mask), b(clips(), mask))
    assert not torch.equal(a(clips(), mask), tiny_vsmae(seed=4).eval()(clips(), mask))


def test_safetensors_round_trip(tmp_path) -> None:
    for name, model in (("sit", tiny_sit()), ("vsmae", tiny_vsmae())):
        model.eval()
        save_model(tmp_path / name, model, metadata={"data": "test"})
        loaded, metadata = load_model(tmp_path / name)
        loaded.eval()
        assert metadata == {"data": "test"} and type(loaded) is type(model)
        if name == "sit":
            assert torch.equal(loaded(clips()), model(clips()))
        else:
            mask = random_patch_mask(BATCH, PATCHES, 0.4)
            assert torch.equal(loaded(clips(), mask), model(clips(), mask))


def test_input_errors() -> None:
    sit, mae = tiny_sit(), tiny_vsmae()
    with pytest.raises(
        DataError, match=r"expects clips of shape \(batch, 3 frames, 11 patches, 7 vertices\)"
    ):
        sit(torch.randn(BATCH, FRAMES, VERTICES, PATCHES))
    bad = clips()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN or inf"):
        sit(bad)
    with pytest.raises(DataError, match=r"mask must be bool \(batch, 11\)"):
        mae(clips(), torch.zeros(BATCH, PATCHES))
    uneven = random_patch_mask(BATCH, PATCHES, 0.5)
    uneven[0] = False
    with pytest.raises(DataError, match="same number of patches"):
        mae(clips(), uneven)
    with pytest.raises(ConfigError, match="must be in \\(0, 1\\)"):
        random_patch_mask(2, 5, 1.0)
    with pytest.raises(ConfigError, match="n_patches and n_patch_vertices must be set"):
        SiT(SIT_PRESETS["tiny"])


def test_one_step_lowers_loss() -> None:
    model = tiny_vsmae().train()
    x = clips()
    mask = random_patch_mask(BATCH, PATCHES, 0.5, torch.Generator().manual_seed(2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    before = masked_patch_loss(model(x, mask), x, mask)
    before.backward()
    optimizer.step()
    with torch.no_grad():
        assert masked_patch_loss(model(x, mask), x, mask) < before


def test_masked_loss_ignores_visible_and_weightless_vertices() -> None:
    target = torch.zeros(2, 3, 4, 5)
    prediction = torch.zeros_like(target)
    mask = torch.tensor([[True, False, False, False], [False, True, False, False]])
    prediction[:, :, 2] = 5.0  # visible patch: ignored
    weight = torch.ones(4, 5)
    weight[0, :2] = 0.0
    prediction[0, :, 0, :2] = 9.0  # medial wall: ignored
    prediction[1, :, 1] = 1.0
    loss = masked_patch_loss(prediction, target, mask, weight)
    assert torch.isclose(loss, torch.tensor(15 / (9 + 15)))  # 15 hidden cortex values at error 1 out of 24


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        # SIM's SiT-tiny at ico6/ico3, 3 frames: METHODS.md sec. 1.3 computes ~5.36 M (blocks 5.33 M + 26 k embed)
        ("sim", 5_358_144),
        ("tiny", 5_358_144),
        ("small", 21_333_120),
        ("base", 85_133_568),
    ],
)
def test_preset_parameter_counts(preset, expected) -> None:
    config = dataclasses.replace(SIT_PRESETS[preset], n_patches=1280, n_patch_vertices=45, n_frames=3)
    with torch.device("meta"):
        model = SiT(config)
    assert count_parameters(model) == expected
    blocks = sum(p.numel() for p in model.blocks.parameters())
    if preset == "sim":
        assert blocks == 5_331_456 and model.patch_embedding.weight.numel() + config.dim == 26_112


def test_sphere_positions_and_decoder_locality_prior() -> None:
    from brainkit.models.sit import patch_centres, sphere_sincos

    centres = patch_centres(80, 1)
    assert centres.shape == (80, 3) and torch.allclose(
        centres.norm(dim=1), torch.ones(80, dtype=centres.dtype)
    )
    table = sphere_sincos(centres, 16)
    assert table.shape == (80, 16) and (table[:, 12:] == 0).all() and len(torch.unique(table, dim=0)) == 80
    encoder = {**dataclasses.asdict(SIT_PRESETS["cpu_small"]), "n_patches": 80, "n_patch_vertices": 7,
               "patch_order": 1}  # fmt: skip
    config = model_config("vsmae", "cpu_small", {"encoder": encoder})
    model = VSMAE(config).eval()
    bias = model.decoder.bias
    assert bias.shape == (81, 81) and (bias[0] == 0).all() and bias[1:, 1:].diagonal().abs().max() < 0.01
    assert (bias[1:, 1:] <= 0).all() and bias.min() < -20  # opposite patches: ~ -8 * pi
    mask = random_patch_mask(2, 80, 0.5, torch.Generator().manual_seed(0))
    assert model(torch.randn(2, 3, 80, 7), mask).shape == (2, 3, 80, 7)
    with pytest.raises(ConfigError, match="20 \\* 4\\*\\*patch_order = n_patches \\(81\\)"):
        SiT(dataclasses.replace(config.encoder, n_patches=81))


def test_released_mode_is_sims_forward_path_by_hand() -> None:
    """released=True: MAE's [sin | cos] table (SIM's models/pos_emb.py) and a second final LayerNorm
    (mlp_head[0] after vit-pytorch's own norm): 384 more parameters than ours at the SIM sizes."""
    from brainkit.models import count_parameters

    with torch.device("meta"):
        released = build_model("sit", model_config("sit", "sim_released"))
        ours = build_model("sit", model_config("sit", "sim"))
    assert count_parameters(released) == 5_358_528 and count_parameters(ours) == 5_358_144
    options = {"n_patches": 5, "n_patch_vertices": 7, "released": True}
    model = build_model("sit", model_config("sit", "testing", options)).eval()  # dim 12
    table = model.positions
    assert table[1, 0].item() == pytest.approx(0.841471, abs=1e-6)  # sin(1)
    assert table[1, 6].item() == pytest.approx(0.540302, abs=1e-6)  # cos(1): the cosines start at dim / 2
    assert table[1, 1].item() == pytest.approx(0.213780, abs=2e-6)  # sin(10000 ** (-2 / 12)) = sin(0.215443)
    interleaved = build_model("sit", model_config("sit", "testing", {**options, "released": False}))
    assert interleaved.positions[1, 1].item() == pytest.approx(0.540302, abs=1e-6)  # cos(1) next to sin(1)
    with torch.no_grad():
        model.head_norm.weight.zero_()
        model.head_norm.bias.fill_(0.25)
        out = model(torch.randn(2, 3, 5, 7))
    assert torch.equal(out, torch.full((2, 6, 12), 0.25))  # the second norm's output is what comes out
    with pytest.raises(ConfigError, match="released=True is SIM's table over the patch index"):
        build_model(
            "sit", model_config("sit", "testing", {**options, "positions": "sphere", "patch_order": 0})
        )


def test_sims_released_encoder_keys_load_by_hand() -> None:
    """SIM's fMRIEncoder names (vit-pytorch Transformer: layers.i.0 Attention, layers.i.1 FeedForward.net) in a
    whole SIM checkpoint (prefix fmri_encoder.) load into a released SiT and give the same network."""
    from brainkit.models.sit import load_released

    options = {"n_patches": 5, "n_patch_vertices": 7, "released": True}
    torch.manual_seed(0)
    source = build_model("sit", model_config("sit", "testing", options)).eval()
    names = {"attention.norm": "0.norm", "attention.qkv": "0.to_qkv", "attention.out": "0.to_out.0",
             "norm": "1.net.0", "mlp.fc1": "1.net.1", "mlp.fc2": "1.net.4"}  # fmt: skip
    state = {"fmri_encoder.cls_token": source.cls_token, "fmri_wrapper.proj.weight": torch.ones(2)}
    for key, value in source.state_dict().items():
        if key.startswith("blocks."):
            _, i, rest = key.split(".", 2)
            stem, leaf = rest.rsplit(".", 1)
            key = f"encoder.transformer.layers.{i}.{names[stem]}.{leaf}"
        else:
            key = {"patch_embedding.weight": "encoder.to_patch_embedding.1.weight",
                   "patch_embedding.bias": "encoder.to_patch_embedding.1.bias", "norm.weight":
                   "encoder.transformer.norm.weight", "norm.bias": "encoder.transformer.norm.bias",
                   "head_norm.weight": "encoder.mlp_head.0.weight", "head_norm.bias": "encoder.mlp_head.0.bias",
                   "cls_token": "cls_token"}[key]  # fmt: skip
        state[f"fmri_encoder.{key}"] = value.clone()
    state["fmri_encoder.encoder.pos_embedding"] = source.positions[None].clone()
    state["fmri_encoder.encoder.cls_token"] = torch.zeros(1, 1, 12)  # the SiT's own, unused on this path
    target = build_model("sit", model_config("sit", "testing", options)).eval()
    load_released(target, state, "sim.ckpt")
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))
    ours = build_model("sit", model_config("sit", "testing", {**options, "released": False}))
    wrong = dict(state, **{"fmri_encoder.encoder.pos_embedding": ours.positions[None]})  # interleaved table
    with pytest.raises(CheckpointError, match="is not the \\[sin \\| cos\\] table"):
        load_released(target, wrong, "sim.ckpt")
    with pytest.raises(ConfigError, match="released=True"):
        load_released(ours, state, "sim.ckpt")
