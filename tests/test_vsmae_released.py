"""vsMAE's reference mode (released=True): each released convention pinned with hand-made values (the mask count
and draw, the one-frame tokens in frame-major order, the [sin | cos] tables over the token index, no cls token,
two final LayerNorms in encoder and decoder, the mask token, the unweighted loss of the recipe), and state dicts
with the released key names (metrics-lab/surface-masked-autoencoders models/vsmae.py) loading into it."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from brainkit.errors import CheckpointError, ConfigError
from brainkit.models import build_model, count_parameters, model_config
from brainkit.models.sit import PRESETS as SIT_PRESETS
from brainkit.models.vsmae import VSMAE, hidden_count, load_released, random_patch_mask
from brainkit.objectives.masked import masked_patch_loss

FRAMES, PATCHES, VERTICES, BATCH = 3, 5, 7, 2  # 15 one-frame tokens of 7 values


def released_vsmae(seed: int = 0, **options) -> VSMAE:
    torch.manual_seed(seed)
    encoder = {**dataclasses.asdict(SIT_PRESETS["testing"]), "n_patches": PATCHES, "n_patch_vertices": VERTICES,
               "n_frames": FRAMES, "released": True}  # fmt: skip
    options = {"encoder": encoder, "mask_ratio": 0.6, "released": True, **options}
    return build_model("vsmae", model_config("vsmae", "testing", options)).eval()  # dim 12, decoder 8


def clips() -> torch.Tensor:
    return torch.randn(BATCH, FRAMES, PATCHES, VERTICES, generator=torch.Generator().manual_seed(1))


def test_released_mask_keeps_int_of_the_rest_and_the_lowest_noise() -> None:
    assert hidden_count(1280, 0.75, released=True) == 960  # keeps int(1280 * 0.25) = 320
    # 1280 * (1 - 0.9) = 127.99999999999997 in floats: the released int() keeps 127; ours rounds 0.9 * 1280
    assert hidden_count(1280, 0.9, released=True) == 1153 and hidden_count(1280, 0.9) == 1152
    with pytest.raises(ConfigError, match=r"keeps int\(7 \* \(1 - 0.9\)\) = 0 of 7 patches"):
        hidden_count(7, 0.9, released=True)
    noise = torch.rand(BATCH, 11, generator=torch.Generator().manual_seed(3))
    mask = random_patch_mask(BATCH, 11, 0.6, torch.Generator().manual_seed(3), released=True)
    kept = noise.argsort(dim=1)[:, :4]  # int(11 * 0.4) = 4 lowest draws are kept (ids_shuffle[:, :len_keep])
    expected = torch.ones(BATCH, 11, dtype=torch.bool).scatter(1, kept, False)
    assert torch.equal(mask, expected)


def test_released_layout_tables_and_norms_by_hand() -> None:
    model = released_vsmae()
    encoder = model.encoder
    assert encoder.config.n_patches == 15 and encoder.config.n_frames == 1 and not encoder.config.class_token
    assert not hasattr(encoder, "cls_token") and tuple(encoder.patch_embedding.weight.shape) == (12, VERTICES)
    assert encoder.positions[6, 0].item() == pytest.approx(
        math.sin(6), abs=1e-6
    )  # token 6 = frame 1, patch 1
    assert encoder.positions[6, 6].item() == pytest.approx(math.cos(6), abs=1e-6)  # cosines from dim / 2
    assert model.decoder.positions.shape == (15, 8)
    assert model.decoder.positions[14, 4].item() == pytest.approx(math.cos(14), abs=1e-6)
    assert tuple(model.decoder.head.weight.shape) == (VERTICES, 8)  # to_pixels: one frame's values per token
    # with every residual branch off (blocks = identity), the forward pass is a few lines by hand
    with torch.no_grad():
        for block in [*encoder.blocks, *model.decoder.blocks]:
            for layer in (block.attention.out, block.mlp.fc2):
                layer.weight.zero_()
                layer.bias.zero_()
        for norm in (encoder.norm, encoder.head_norm, model.decoder.norm, model.decoder.head_norm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
        x = clips()
        mask = torch.tensor([[True, False, True, True, False], [False, True, True, False, True]])
        out = model(x, mask)

        def norms(t, first, second):
            t = F.layer_norm(t, (t.shape[-1],), first.weight, first.bias)
            return F.layer_norm(t, (t.shape[-1],), second.weight, second.bias)

        tokens = x.reshape(BATCH, FRAMES * PATCHES, VERTICES)  # frame-major: token t * 5 + n
        encoded = norms(encoder.patch_embedding(tokens) + encoder.positions, encoder.norm, encoder.head_norm)
        hidden = mask.repeat(1, FRAMES)  # a tube: the patch in every frame
        decoded = torch.where(hidden[..., None], model.decoder.mask_token, model.decoder.project(encoded))
        decoded = norms(decoded + model.decoder.positions, model.decoder.norm, model.decoder.head_norm)
        expected = model.decoder.head(decoded).reshape(BATCH, FRAMES, PATCHES, VERTICES)
    assert torch.allclose(out, expected, atol=1e-5)
    x2 = x.clone()
    x2[0, 2, 0] += 5.0  # a hidden patch in the last frame: not seen
    assert torch.equal(model(x2, mask), out)


def test_released_config_errors_and_preset_counts() -> None:
    with pytest.raises(ConfigError, match="needs encoder released=True"):
        build_model("vsmae", model_config("vsmae", "testing", {"released": True}))
    with pytest.raises(ConfigError, match="decoder_distance_bias=0"):
        released_vsmae(decoder_distance_bias=2.0)
    with pytest.raises(ConfigError, match="heads=1 with head_dim=dim"):
        released_vsmae(decoder_heads=1, decoder_head_dim=8)
    with pytest.raises(ConfigError, match="SIM's fMRI encoder has a cls token"):
        model_config("sim", "testing", {"encoder": {**dataclasses.asdict(SIT_PRESETS["testing"]),
                                                    "class_token": False}})  # fmt: skip
    with torch.device("meta"):
        model = build_model("vsmae", model_config("vsmae", "sim_released"))
    # 3 x 1280 tokens of 45 values; decoder 192 x 3 blocks (enc_to_dec the identity at 192 = 192)
    assert count_parameters(model) == 6_683_565 and count_parameters(model.encoder) == 5_341_056
    assert isinstance(model.decoder.project, torch.nn.Identity)
    assert hidden_count(1280, model.config.mask_ratio, released=True) == 960


def released_names(model: VSMAE) -> dict[str, torch.Tensor]:
    """``model``'s weights under the released vsMAE's state-dict names, written out by hand."""
    block = {"attention.norm": "0.norm", "attention.qkv": "0.to_qkv", "attention.out": "0.to_out.0",
             "norm": "1.net.0", "mlp.fc1": "1.net.1", "mlp.fc2": "1.net.4"}  # fmt: skip
    other = {"encoder.patch_embedding": "encoder.to_patch_embedding.1", "encoder.norm": "encoder.transformer.norm",
             "encoder.head_norm": "encoder.mlp_head.0", "decoder.norm": "decoder.norm",
             "decoder.head_norm": "decoder_norm", "decoder.project": "enc_to_dec", "decoder.head": "to_pixels",
             "decoder.mask_token": "mask_token"}  # fmt: skip
    state = {}
    for key, value in model.state_dict().items():
        stem, leaf = key.rsplit(".", 1) if key != "decoder.mask_token" else (key, "")
        if ".blocks." in key:
            part, _, i, rest = key.split(".", 3)
            inner, leaf = rest.rsplit(".", 1)
            name = f"{'encoder.transformer' if part == 'encoder' else 'decoder'}.layers.{i}.{block[inner]}.{leaf}"
        else:
            name = other[stem] + (f".{leaf}" if leaf else "")
        state[name] = value.clone()
    state["patch_to_emb.weight"] = state["encoder.to_patch_embedding.1.weight"]  # vsMAE's aliases
    state["patch_to_emb.bias"] = state["encoder.to_patch_embedding.1.bias"]
    state["norm.weight"], state["norm.bias"] = (
        state["encoder.mlp_head.0.weight"],
        state["encoder.mlp_head.0.bias"],
    )
    state["encoder.mlp_head.1.weight"], state["encoder.mlp_head.1.bias"] = torch.ones(1, 12), torch.zeros(1)
    state["encoder.pos_embedding"] = model.encoder.positions[None].clone()
    state["decoder_pos_emb"] = model.decoder.positions[None].clone()
    return state


def test_released_key_names_load_by_hand() -> None:
    source = released_vsmae(seed=0)
    state = released_names(source)
    assert (
        "encoder.transformer.layers.1.1.net.4.bias" in state and "decoder.layers.0.0.to_qkv.weight" in state
    )
    target = released_vsmae(seed=5)
    mask = random_patch_mask(BATCH, PATCHES, 0.6, torch.Generator().manual_seed(0), released=True)
    assert not torch.equal(target(clips(), mask), source(clips(), mask))
    load_released(target, state, "encoder-decoder-best.pt")
    with torch.no_grad():
        assert torch.equal(target(clips(), mask), source(clips(), mask))
    interleaved = torch.stack([torch.sin(torch.arange(15.0)), torch.cos(torch.arange(15.0))], dim=1).repeat(
        1, 6
    )
    with pytest.raises(
        CheckpointError, match=r"encoder.pos_embedding \(1, 15, 12\) is not the \[sin \| cos\]"
    ):
        load_released(target, {**state, "encoder.pos_embedding": interleaved[None]}, "f.pt")
    extra = {**state, "encoder.cls_token": torch.zeros(1, 1, 12), "to_pixels.bias": torch.zeros(VERTICES * 3)}
    with pytest.raises(CheckpointError, match=r"no rule maps \(1\): encoder.cls_token.*to_pixels.bias -> "
                                              r"decoder.head.bias: \(21,\)"):  # fmt: skip
        load_released(target, extra, "f.pt")
    with pytest.raises(ConfigError, match="released=True"):
        load_released(build_model("vsmae", model_config("vsmae", "testing", {"encoder": {
            **dataclasses.asdict(SIT_PRESETS["testing"]), "n_patches": PATCHES, "n_patch_vertices": VERTICES}})),
            state, "f.pt")  # fmt: skip
    same_width = released_vsmae(
        decoder_dim=12, decoder_heads=2, decoder_head_dim=6
    )  # enc_to_dec: the identity
    narrow = {k: v for k, v in released_names(same_width).items() if not k.startswith("enc_to_dec")}
    load_released(released_vsmae(seed=2, decoder_dim=12, decoder_heads=2, decoder_head_dim=6), narrow, "f.pt")


def test_recipe_task_uses_the_released_loss() -> None:
    """The vsmae recipe's task with a released model: the mask count is the released one and the loss counts
    every vertex of the hidden tubes (the released loss has no medial-wall weight)."""
    from brainkit.recipes.vsmae import VSMAETask

    model = released_vsmae()
    weight = torch.ones(PATCHES, VERTICES)
    weight[:, :3] = 0.0  # a medial wall: weighs 0 in ours, counted by the released loss
    task = VSMAETask(model, clips(), weight)
    drawn = task.draw(torch.arange(BATCH), torch.Generator().manual_seed(4))
    assert drawn.sum(1).tolist() == [PATCHES - int(PATCHES * 0.4)] * BATCH
    batch = task.load(torch.arange(BATCH), drawn)
    with torch.no_grad():
        loss = task.forward(batch)
        assert torch.equal(loss, masked_patch_loss(model(*batch), batch[0], drawn))
        assert not torch.isclose(loss, masked_patch_loss(model(*batch), batch[0], drawn, weight))


SMALL = [  # the testing recipe's grid (ico3 / ico1: 80 patches of 15 vertices, 3 frames) at a tiny width
    "encoder_options={dim: 12, depth: 1, n_heads: 2, head_dim: 6}",
    "model_options={decoder_dim: 8, decoder_depth: 1, decoder_heads: 2, decoder_head_dim: 4}",
]


def test_import_weights_writes_a_run_of_the_released_vsmae(tmp_path, one_torch_thread) -> None:
    """A released encoder-decoder-best.pt (its key names, nested as the released script saves it) becomes a
    vsmae run: the same network, a finished phase with no steps, metrics that `brainkit eval` reproduces."""
    from brainkit.models import load_model
    from brainkit.recipes import evaluate_run, recipe_config
    from brainkit.recipes.imported import import_run
    from brainkit.recipes.vsmae import check_vsmae
    from brainkit.training.phase import load_result

    config = recipe_config("vsmae", "testing", ["model_preset=sim_released", *SMALL])
    torch.manual_seed(0)
    source = VSMAE(check_vsmae(config)).eval()
    state = released_names(source)
    path = tmp_path / "encoder-decoder-best.pt"
    torch.save({"epoch": 3, "model_state_dict": state, "optimizer_state_dict": {"state": {}, "param_groups": []},
                "loss": 0.5}, path)  # fmt: skip
    run = tmp_path / "run"
    result = import_run("vsmae", path, run, "testing", SMALL)
    imported = load_model(run / "checkpoints" / "vsmae")[0].eval()
    x = torch.randn(2, 3, 80, 15)
    mask = random_patch_mask(
        2, 80, imported.config.mask_ratio, torch.Generator().manual_seed(0), released=True
    )
    with torch.no_grad():
        assert torch.equal(imported(x, mask), source(x, mask))
    assert imported.config.released and load_result(run / "train" / "vsmae").steps == 0
    assert {row["method"] for row in result.metrics["reconstruction"]} >= {"vsMAE", "visible-patch mean"}
    assert evaluate_run(run) == result.metrics
    assert any("one-frame SiT without a cls token" in note for note in result.notes)
    encoder_only = tmp_path / "encoder-best.pt"
    torch.save(
        {"model_state_dict": {k: v for k, v in state.items() if k.startswith("encoder.")}}, encoder_only
    )
    with pytest.raises(CheckpointError, match="it is the released encoder-\\*.pt"):
        import_run("vsmae", encoder_only, tmp_path / "run2", "testing", SMALL)
    with pytest.raises(ConfigError, match="needs model_preset=sim_released"):
        import_run("vsmae", path, tmp_path / "run3", "testing", [*SMALL, "model_preset=testing"])
    assert not (tmp_path / "run2").exists() and not (tmp_path / "run3").exists()
