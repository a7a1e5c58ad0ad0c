"""Vis-Dec phase 2: the image MAE from a local folder (a tiny random ViTMAEConfig saved here), the cross-modal
model's shapes, that each side really uses the other modality, learning on a tiny batch, and checkpoints."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from brainkit.errors import CheckpointError, DataError
from brainkit.models import build_model, count_parameters, load_model, model_config
from brainkit.models.cross_modal import (
    CROSS_PRESETS,
    CrossModalMAE,
    image_norm_stats,
    load_cross_modal,
    load_image_mae,
    preprocess_images,
    save_image_mae,
    small_image_mae,
)
from brainkit.recipes.vis_dec.encoder import pretrain_image_mae, tune_cross_modal
from brainkit.training import TrainingConfig

N_VOXELS = 52  # 13 fMRI patches of 4 voxels (testing preset); images 16 px in patches of 4 -> 16 patches


def fmri(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("dc_mae", model_config("dc_mae", "testing", n_voxels=N_VOXELS))


def pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, N_VOXELS)).astype(np.float32), rng.integers(
        0, 256, (n, 20, 18, 3), np.uint8
    )


def model(seed: int = 0) -> CrossModalMAE:
    return CrossModalMAE(fmri(seed), small_image_mae("testing", seed=seed), CROSS_PRESETS["testing"])


def inputs(m: CrossModalMAE, n: int = 5, seed: int = 0):
    voxels, images = pairs(n, seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(voxels)
    px = preprocess_images(images, m.image_size)
    return x, px, m.fmri.random_mask(n, g), torch.rand(n, m.n_image_patches, generator=g)


def test_image_mae_loads_from_a_local_folder(tmp_path) -> None:
    original = small_image_mae("testing", seed=1).eval()
    save_image_mae(tmp_path / "vit-mae", original)
    (tmp_path / "vit-mae" / "preprocessor_config.json").write_text(
        '{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}'
    )
    loaded = load_image_mae(tmp_path / "vit-mae").eval()
    px = torch.randn(2, 3, 16, 16)
    noise = torch.rand(2, 16)
    assert torch.equal(
        original(pixel_values=px, noise=noise).logits, loaded(pixel_values=px, noise=noise).logits
    )
    assert image_norm_stats(tmp_path / "vit-mae") == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    with pytest.raises(CheckpointError, match="expected a Hugging Face model folder with config.json"):
        load_image_mae(tmp_path / "missing")


def test_preprocessing_resizes_and_checks() -> None:
    px = preprocess_images(np.full((2, 20, 18, 3), 255, np.uint8), 16, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert px.shape == (2, 3, 16, 16) and torch.allclose(px, torch.ones_like(px))
    with pytest.raises(DataError, match=r"uint8 \(n, height, width, 3\), found float64"):
        preprocess_images(np.zeros((2, 8, 8, 3)), 16)


def test_shapes_masks_and_encode() -> None:
    m = model().eval()
    x, px, mask, noise = inputs(m)
    with torch.no_grad():
        out = m(x, px, mask, noise)
    assert out["fmri_recon"].shape == (5, N_VOXELS)
    assert out["image_recon"].shape == (5, 16, 4 * 4 * 3)
    assert m.image.config.mask_ratio == 0.5
    assert m.encode(x).shape == (5, 14, 16)
    c = m.config
    assert float(out["loss"]) == pytest.approx(
        float(c.fmri_recon_weight * out["fmri_mse"] + c.image_recon_weight * out["image_mse"])
    )
    assert (c.fmri_mask_ratio, c.image_mask_ratio, c.fmri_recon_weight, c.image_recon_weight) == (
        0.75,
        0.5,
        0.25,
        1.5,
    )


def test_each_side_attends_to_the_other_modality() -> None:
    m = model().eval()
    x, px, mask, noise = inputs(m)
    base = m(x, px, mask, noise)
    other_image = m(x, px.flip(0), mask, noise)  # same fMRI, other images
    other_fmri = m(x.flip(0), px, mask, noise)  # same images, other fMRI
    assert not torch.allclose(base["fmri_recon"], other_image["fmri_recon"])
    assert not torch.allclose(base["image_recon"], other_fmri["image_recon"])
    # without cross-attention layers the other modality cannot reach the reconstruction
    alone = CrossModalMAE(
        fmri(),
        small_image_mae("testing"),
        replace(CROSS_PRESETS["testing"], fmri_cross_layers=0, image_cross_layers=0),
    ).eval()
    assert torch.allclose(
        alone(x, px, mask, noise)["fmri_recon"], alone(x, px.flip(0), mask, noise)["fmri_recon"]
    )


def test_mismatched_pairs_raise() -> None:
    voxels, images = pairs(6)
    with pytest.raises(DataError, match="6 fMRI samples but 5 images"):
        tune_cross_modal(
            fmri(),
            small_image_mae("testing"),
            voxels,
            images[:5],
            TrainingConfig(epochs=1, progress=False),
            config=CROSS_PRESETS["testing"],
        )


def test_tuning_learns_is_seeded_and_checkpoints(tmp_path, one_torch_thread) -> None:
    voxels, images = pairs(8)
    training = TrainingConfig(
        epochs=8, batch_size=8, lr=3e-3, weight_decay=0.0, betas=(0.9, 0.95), warmup_epochs=1, progress=False
    )
    config = CROSS_PRESETS["testing"]
    tuned, result = tune_cross_modal(
        fmri(), small_image_mae("testing"), voxels, images, training, tmp_path / "run", config
    )
    _, again = tune_cross_modal(fmri(), small_image_mae("testing"), voxels, images, training, None, config)
    losses = [r["train_loss"] for r in result.history]
    assert losses == [r["train_loss"] for r in again.history]
    assert losses[-1] < losses[0]
    loaded, metadata = load_cross_modal(tmp_path / "run" / "checkpoint")
    encoder, _ = load_model(tmp_path / "run" / "fmri_encoder")
    x = torch.from_numpy(voxels)
    assert metadata["phase"] == "cross_modal"
    assert torch.equal(tuned.eval().encode(x), loaded.eval().encode(x))
    assert torch.equal(tuned.encode(x), encoder.eval().encode(x))


def test_image_mae_pretraining_learns(tmp_path, one_torch_thread) -> None:
    _, images = pairs(8)
    training = TrainingConfig(
        epochs=6, batch_size=8, lr=3e-3, weight_decay=0.0, betas=(0.9, 0.95), warmup_epochs=1, progress=False
    )
    result = pretrain_image_mae(small_image_mae("testing"), images, training, tmp_path, val_images=images)
    assert result.history[-1]["val_image_mse"] < result.history[0]["val_image_mse"]
    assert load_image_mae(tmp_path / "image_mae").config.hidden_size == 12


def test_paper_cross_attention_parameter_counts() -> None:
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    with torch.device("meta"):  # facebook/vit-mae-base's config = ViTMAEConfig's defaults
        m = CrossModalMAE(
            build_model("dc_mae", model_config("dc_mae", "paper")),
            ViTMAEForPreTraining(ViTMAEConfig()),
            CROSS_PRESETS["paper"],
        )
    assert count_parameters(m.image_cross) == 29_142_528
    assert count_parameters(m.fmri_cross) == 17_584_128


@pytest.mark.parametrize("routed", [False, True])
def test_cross_blocks_are_transformer_decoder_layers(monkeypatch, routed: bool) -> None:
    """The cross stack holds nn.TransformerDecoderLayer's parameters (names, shapes, the same initial draws) and
    computes its output and gradients, with the attention projections through oneDNN where routed
    (``routed``: every product, whatever its size)."""
    from brainkit.models import cpu_linear
    from brainkit.models.cross_modal import CrossAttention

    monkeypatch.setattr(cpu_linear, "MIN_MACS", 0 if routed else cpu_linear.MIN_MACS)
    dim, heads, depth = 16, 4, 2
    torch.manual_seed(3)
    ours = CrossAttention(dim, 12, depth, heads, mlp_ratio=2.0)
    torch.manual_seed(3)
    map_in = torch.nn.Linear(12, dim)
    layers = torch.nn.ModuleList(
        torch.nn.TransformerDecoderLayer(
            dim, heads, 2 * dim, 0.0, activation="gelu", batch_first=True, norm_first=True
        )
        for _ in range(depth)
    )
    reference = {f"layers.{k}": v for k, v in layers.state_dict().items()}
    reference |= {f"map_in.{k}": v for k, v in map_in.state_dict().items()}
    state = ours.state_dict()
    assert set(state) == set(reference)
    assert all(torch.equal(state[k], reference[k]) for k in state)  # the same draws in the same order
    x, context = torch.randn(3, 5, dim), torch.randn(3, 7, 12)
    out = ours(x, context)
    memory, expected = map_in(context), x
    for layer in layers:
        expected = layer(expected, memory)
    assert torch.allclose(out, expected, atol=1e-5)
    out.square().sum().backward()
    expected.square().sum().backward()
    grads = dict(layers.named_parameters())
    for name, p in ours.layers.named_parameters():
        assert torch.allclose(p.grad, grads[name].grad, atol=1e-4, rtol=1e-4), name
