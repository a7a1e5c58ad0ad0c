"""Vis-Dec phase 2's released cross-attention layout (``CrossModalConfig(released=True)``): the layer's residual and
norm order on hand-set weights with values worked out by hand, the fMRI side's maps and outer residual, the image
side's context map, what each side attends to, the released key names, and the paper sizes' parameter counts."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from brainkit.errors import CheckpointError, ConfigError
from brainkit.models import build_model, count_parameters, model_config
from brainkit.models.cross_modal import (
    CROSS_PRESETS,
    CrossModalMAE,
    load_cross_modal,
    save_cross_modal,
    small_image_mae,
)
from brainkit.models.cross_modal_released import (
    FMRICrossReleased,
    ImageCrossReleased,
    ReleasedCrossLayer,
    load_released_fmri_cross,
)
from brainkit.recipes.vis_dec.encoder import CrossModalTask

N_VOXELS = (
    52  # 13 fMRI patches of 4 (DC-MAE testing); the testing image MAE: 16 px, 16 patches of 4, width 12
)


def image_sizes(width: int = 2, heads: int = 1, hidden: int = 2, act: str = "gelu") -> SimpleNamespace:
    """What the released layers read of the image MAE's ViTMAEConfig."""
    return SimpleNamespace(hidden_size=width, num_attention_heads=heads, intermediate_size=hidden,
                           layer_norm_eps=1e-12, qkv_bias=True, hidden_act=act)  # fmt: skip


def set_linear(linear: torch.nn.Linear, weight, bias=None) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        linear.bias.copy_(torch.zeros(linear.out_features) if bias is None else torch.tensor(bias))


def hand_layer() -> ReleasedCrossLayer:
    """Width 2, one head, norms at weight 1 / bias 0, the MLP off (linear2 = 0), both attentions' q, k, v and out
    the identity; the self-attention's values are the constant (1, 3) (value weight 0, bias (1, 3))."""
    layer = ReleasedCrossLayer(2, 1, 2, 1e-12)
    eye = [[1.0, 0.0], [0.0, 1.0]]
    for attention in (layer.self_attn, layer.cross_attn):
        for linear in (attention.query, attention.key, attention.value, attention.out):
            set_linear(linear, eye)
    set_linear(layer.self_attn.value, [[0.0, 0.0], [0.0, 0.0]], [1.0, 3.0])
    set_linear(layer.linear2, [[0.0, 0.0], [0.0, 0.0]])
    return layer


def test_the_layer_adds_only_the_cross_attention_queried_by_the_normed_self_attention() -> None:
    layer = hand_layer()
    x = torch.tensor([[[5.0, -5.0]]])  # LayerNorm(x) = (1, -1)
    context = torch.tensor([[[0.0, 0.0], [0.0, 2.0]]])  # two image tokens, used as they are (no norm)
    # self-attention: every value is (1, 3), so its output is (1, 3) (not added to x); the cross-attention's query
    # is LayerNorm((1, 3)) = (-1, 1): scores (0, 2) / sqrt(2), weight w on the second token, output (0, 2 w)
    w = math.exp(math.sqrt(2)) / (1 + math.exp(math.sqrt(2)))
    expected = torch.tensor([[[5.0, -5.0 + 2 * w]]])
    assert torch.allclose(layer(x, context), expected, atol=1e-6)
    # had the query been LayerNorm(x) = (1, -1), the second token's score would be -sqrt(2): another output
    assert not torch.allclose(
        layer(x, context), torch.tensor([[[5.0, -5.0 + 2 / (1 + math.exp(math.sqrt(2)))]]])
    )


def test_the_layer_keys_on_the_raw_context_and_its_mlp_is_pre_norm_gelu() -> None:
    layer = hand_layer()
    x = torch.tensor([[[1.0, 3.0]]])
    context = torch.tensor([[[3.0, 5.0]]])  # one token: the cross-attention returns its value, (3, 5)
    assert torch.allclose(layer(x, context), torch.tensor([[[4.0, 8.0]]]), atol=1e-6)  # not (1, 3) + (-1, 1)
    set_linear(layer.cross_attn.out, [[0.0, 0.0], [0.0, 0.0]])  # cross-attention off: x + MLP(LayerNorm(x))
    set_linear(layer.linear1, [[1.0, 0.0], [0.0, 1.0]])
    set_linear(layer.linear2, [[1.0, 0.0], [0.0, 1.0]])
    gelu = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in (-1.0, 1.0)]  # LayerNorm((1, 3)) = (-1, 1)
    assert torch.allclose(layer(x, context), torch.tensor([[[1 + gelu[0], 3 + gelu[1]]]]), atol=1e-6)


def test_fmri_stack_maps_in_adds_its_input_back_and_maps_out() -> None:
    stack = FMRICrossReleased(2, image_sizes(width=1), depth=0)
    set_linear(stack.map_in, [[1.0, 1.0]])  # (1, 2) -> 3
    set_linear(stack.map_out, [[1.0], [2.0]], [0.5, 0.0])
    # no layers: m + m = 6 (the outer residual), then map_out: (6.5, 12)
    out = stack(torch.tensor([[[1.0, 2.0]]]), torch.zeros(1, 4, 1))
    assert torch.allclose(out, torch.tensor([[[6.5, 12.0]]]))


def test_image_stack_maps_the_fmri_context_and_has_no_outer_residual() -> None:
    stack = ImageCrossReleased(3, image_sizes(), depth=1)
    layer = hand_layer()
    stack.layers[0].load_state_dict(layer.state_dict())
    set_linear(stack.map_in, [[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]], [0.0, 1.0])  # fMRI (3, 9, 2) -> (3, 5)
    x = torch.tensor([[[1.0, 3.0]]])
    assert torch.allclose(
        stack(x, torch.tensor([[[3.0, 9.0, 2.0]]])), torch.tensor([[[4.0, 8.0]]]), atol=1e-6
    )
    with pytest.raises(ConfigError, match="GELU, found hidden_act 'relu'"):
        ImageCrossReleased(3, image_sizes(act="relu"), depth=1)


def released_cross(
    depth: int = 3, width: int = 12, dim: int = 16, hidden: int = 24
) -> dict[str, torch.Tensor]:
    """MAEforFMRICross's cross_* keys and shapes, each tensor a distinct constant (its index)."""
    shapes = {"cross_map_in.weight": (width, dim), "cross_map_in.bias": (width,), "cross_map_out.weight": (dim, width),
              "cross_map_out.bias": (dim,)}  # fmt: skip
    for i in range(depth):
        for a in ("attention", "cross_attention"):
            for p in ("query", "key", "value"):
                shapes |= {f"cross_blocks.{i}.{a}.attention.{p}.weight": (width, width),
                           f"cross_blocks.{i}.{a}.attention.{p}.bias": (width,)}  # fmt: skip
            shapes |= {f"cross_blocks.{i}.{a}.output.dense.weight": (width, width),
                       f"cross_blocks.{i}.{a}.output.dense.bias": (width,)}  # fmt: skip
        shapes |= {f"cross_blocks.{i}.intermediate.dense.weight": (hidden, width),
                   f"cross_blocks.{i}.intermediate.dense.bias": (hidden,),
                   f"cross_blocks.{i}.output.dense.weight": (width, hidden), f"cross_blocks.{i}.output.dense.bias": (width,),
                   **{f"cross_blocks.{i}.layernorm_{s}.{t}": (width,) for s in ("before", "after") for t in ("weight", "bias")}}  # fmt: skip
    return {k: torch.full(shape, float(n)) for n, (k, shape) in enumerate(shapes.items())}


def test_released_keys_map_onto_the_fmri_stack() -> None:
    weights = released_cross()
    stack = FMRICrossReleased(16, image_sizes(width=12, heads=2, hidden=24), depth=3)
    load_released_fmri_cross(stack, weights, "phase2.pth")
    ours = stack.state_dict()
    assert len(ours) == len(weights) == 4 + 3 * 24  # maps; per layer 2 x 4 attention Linears, 2 MLP, 2 norms
    pairs = {"map_in.weight": "cross_map_in.weight", "map_out.bias": "cross_map_out.bias",
             "layers.0.self_attn.query.weight": "cross_blocks.0.attention.attention.query.weight",
             "layers.1.self_attn.out.bias": "cross_blocks.1.attention.output.dense.bias",
             "layers.2.cross_attn.value.weight": "cross_blocks.2.cross_attention.attention.value.weight",
             "layers.2.cross_attn.out.weight": "cross_blocks.2.cross_attention.output.dense.weight",
             "layers.1.linear1.weight": "cross_blocks.1.intermediate.dense.weight",
             "layers.0.linear2.bias": "cross_blocks.0.output.dense.bias",
             "layers.2.norm_before.weight": "cross_blocks.2.layernorm_before.weight",
             "layers.0.norm_after.bias": "cross_blocks.0.layernorm_after.bias"}  # fmt: skip
    for key, released in pairs.items():
        assert torch.equal(ours[key], weights[released]), key
    with pytest.raises(ConfigError, match=r"2 cross_blocks, the config's fmri_cross_layers=3 \(--set "
                       r"cross_modal_options.fmri_cross_layers=2\)"):  # fmt: skip
        load_released_fmri_cross(stack, released_cross(depth=2), "phase2.pth")
    with pytest.raises(
        ConfigError, match=r"cross width 768 \(cross_map_in\), the image MAE's hidden_size 12"
    ):
        load_released_fmri_cross(stack, released_cross(width=768), "phase2.pth")
    with pytest.raises(
        CheckpointError, match=r"intermediate.dense.weight -> layers.0.linear1.weight: \(48, 12\)"
    ):
        load_released_fmri_cross(stack, released_cross(hidden=48), "phase2.pth")


def model(released: bool = True, seed: int = 0, n_voxels: int = N_VOXELS) -> CrossModalMAE:
    torch.manual_seed(seed)
    fmri = build_model("dc_mae", model_config("dc_mae", "testing", {"released": released}, n_voxels=n_voxels))
    preset = CROSS_PRESETS["testing_released" if released else "testing"]
    return CrossModalMAE(fmri, small_image_mae("testing", seed=seed), preset).eval()


def test_each_side_attends_to_the_others_whole_input() -> None:
    g = torch.Generator().manual_seed(1)
    x, px = torch.randn(3, N_VOXELS, generator=g), torch.randn(3, 3, 16, 16, generator=g)
    fmri_mask = torch.zeros(3, 13, dtype=torch.bool)
    fmri_mask[:, 3:] = True  # patches 3..12 hidden: voxels 12.. unseen by the fMRI encoder's masked pass
    noise = torch.linspace(0, 1, 16).expand(3, 16)  # the image MAE keeps patches 0..7 (mask 0.5)
    hidden_image = px.clone()
    hidden_image[:, :, 12:, :] += 1.0  # the bottom row of patches: hidden from the masked image pass
    hidden_fmri = x.clone()
    hidden_fmri[:, 40:] += 1.0
    for released, changes in ((True, True), (False, False)):
        m = model(released)
        base = m(x, px, fmri_mask, noise)
        assert changes == (
            not torch.allclose(base["fmri_recon"], m(x, hidden_image, fmri_mask, noise)["fmri_recon"])
        )
        moved = m(hidden_fmri, px, fmri_mask, noise)["image_recon"]
        assert changes == (not torch.allclose(base["image_recon"], moved))
    m = model()
    assert m.image.decoder.decoder_norm.eps == 1e-5 and m.image.config.mask_ratio == 0.5
    m(x, hidden_image, fmri_mask, noise)
    assert m.image.config.mask_ratio == 0.5  # the whole-image pass leaves the ratio as it was


def test_released_checkpoint_round_trip(tmp_path) -> None:
    m = model()
    save_cross_modal(tmp_path / "ckpt", m)
    loaded, _ = load_cross_modal(tmp_path / "ckpt")
    g = torch.Generator().manual_seed(2)
    args = (torch.randn(2, N_VOXELS, generator=g), torch.randn(2, 3, 16, 16, generator=g),
            m.fmri.random_mask(2, g), torch.rand(2, 16, generator=g))  # fmt: skip
    assert loaded.config.released and isinstance(loaded.fmri_cross, FMRICrossReleased)
    assert torch.equal(m(*args)["fmri_recon"], loaded.eval()(*args)["fmri_recon"])


def test_tuning_draws_the_released_mask_count() -> None:
    rng = np.random.default_rng(0)
    voxels, images = (
        rng.standard_normal((4, 24)).astype(np.float32),
        rng.integers(0, 256, (4, 16, 16, 3), np.uint8),
    )
    for released, shown in (
        (True, 1),
        (False, 2),
    ):  # 6 patches at 0.75: MAE keeps int(1.5) = 1; ours hides round(4.5) = 4
        task = CrossModalTask(model(released, n_voxels=24), voxels, images)
        mask, noise = task.draw(torch.arange(4), torch.Generator().manual_seed(0))
        assert (~mask).sum(1).tolist() == [shown] * 4 and noise.shape == (4, 16)
        trained = {id(p) for group in task.parameter_groups() for p in group["params"]}
        frozen = [p for p in task.model.image.vit.parameters() if p.requires_grad or id(p) in trained]
        assert (
            bool(frozen) != released
        )  # released: the image encoder frozen, its cross layers and decoder not
        decoder = [
            p for p in task.model.image.decoder.parameters() if p.requires_grad
        ]  # less its fixed table
        assert decoder and all(id(p) in trained for p in (*task.model.image_cross.parameters(), *decoder))


def test_paper_released_parameter_counts() -> None:
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    with torch.device("meta"):
        m = CrossModalMAE(build_model("dc_mae", model_config("dc_mae", "paper_released")),
                          ViTMAEForPreTraining(ViTMAEConfig()), CROSS_PRESETS["paper_released"])  # fmt: skip
    # one layer at 768: 2 x (4 x (768^2 + 768)) attention + 768 x 3072 x 2 + 3072 + 768 MLP + 2 x 1,536 norms
    layer = 2 * 4 * (768 * 768 + 768) + 2 * 768 * 3072 + 3072 + 768 + 2 * 2 * 768
    assert (
        count_parameters(m.fmri_cross) == 3 * layer + (1024 * 768 + 768) + (768 * 1024 + 1024) == 29_925_376
    )
    assert count_parameters(m.image_cross) == 3 * layer + 1024 * 768 + 768 == 29_137_920
