"""CLIP-MUSED's model: shapes at unequal sizes, gradients, determinism, checkpoints, errors, learning, params."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from brainkit.errors import ConfigError, DataError
from brainkit.models import build_model, count_parameters, load_model, model_config, save_model
from brainkit.models.clip_mused import CLIPMUSED, feature_shapes
from brainkit.objectives.semantic import SemanticLoss

N_SUBJECTS, N_CLASSES, BATCH = 3, 11, 5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(variant: str = "hcp", seed: int = 0, **changes) -> CLIPMUSED:
    torch.manual_seed(seed)
    options = {"n_subjects": N_SUBJECTS, "n_classes": N_CLASSES}
    if variant == "nsd":
        options |= {"variant": "nsd", "n_rois": 4, "roi_size": 13, "dim": 6, "ff_hidden": [7, 5, 9]}
    options |= changes
    return build_model("clip_mused", model_config("clip_mused", "testing", options)).eval()


def inputs(model: CLIPMUSED, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    c = model.config
    shape = c.grid if c.variant == "hcp" else (c.n_rois, c.roi_size)
    x = torch.randn(BATCH, *shape, generator=generator)
    return x, torch.tensor([0, 2, 1, 2, 0])


@pytest.mark.parametrize("variant", ["hcp", "nsd"])
def test_output_shapes(variant: str) -> None:
    model = tiny(variant)
    out = model(*inputs(model), return_attention=True)
    assert out.logits.shape == (BATCH, N_CLASSES)
    assert out.high.shape == out.low.shape == (BATCH, 6)
    n_tokens = 3 * 2 * 2 if variant == "hcp" else 4  # hcp testing grid 9x8x7 -> strides 2, 2 -> 3x2x2
    assert out.attention.shape == (BATCH, 2, n_tokens)
    # softmax rows over [2 subject tokens + brain tokens]: the brain part is positive and sums below 1
    assert (out.attention > 0).all() and (out.attention.sum(-1) < 1).all()
    assert out.attention.sum(-1).min() > 0.5  # 12 (or 4) brain tokens vs 2 subject tokens at init


def test_subject_tokens_change_the_output_and_only_them() -> None:
    model = tiny()
    x, _ = inputs(model)
    same = x[:1].repeat(N_SUBJECTS, 1, 1, 1)
    logits = model(same, torch.arange(N_SUBJECTS)).logits
    assert not torch.allclose(logits[0], logits[1])
    shared = tiny(subject_tokens=False)
    logits = shared(same, torch.arange(N_SUBJECTS)).logits
    assert torch.allclose(logits[0], logits[1], atol=1e-6) and torch.allclose(logits[0], logits[2], atol=1e-6)
    # 2 x dim parameters per subject, nothing else grows with the number of subjects
    assert count_parameters(tiny(n_subjects=7)) - count_parameters(tiny(n_subjects=3)) == 4 * 2 * 6


@pytest.mark.parametrize("variant", ["hcp", "nsd"])
def test_gradients_finite(variant: str) -> None:
    model = tiny(variant).train()
    out = model(*inputs(model))
    (out.logits.square().mean() + out.high.mean() + out.low.mean()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_seeded_construction_deterministic() -> None:
    first, second = tiny(seed=4).state_dict(), tiny(seed=4).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(tiny(seed=5).tokens, tiny(seed=4).tokens)


@pytest.mark.parametrize("variant", ["hcp", "nsd"])
def test_safetensors_round_trip(variant: str, tmp_path) -> None:
    model = tiny(variant)
    save_model(tmp_path / "ckpt", model, metadata={"subjects": "a,b,c"})
    loaded, metadata = load_model(tmp_path / "ckpt")
    x, subject = inputs(model)
    assert metadata == {"subjects": "a,b,c"}
    assert torch.equal(model(x, subject).logits, loaded.eval()(x, subject).logits)


def test_bad_inputs_raise() -> None:
    model = tiny()
    x, subject = inputs(model)
    with pytest.raises(DataError, match=r"expects volumes \(batch, X, Y, Z\) of shape \(batch, 9, 8, 7\)"):
        model(x.transpose(1, 3), subject)
    with pytest.raises(DataError, match="subject indices must be in 0..2"):
        model(x, subject + 1)
    with pytest.raises(DataError, match="subject must be an integer tensor of shape"):
        model(x, subject.float())
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN or inf"):
        model(x, subject)
    with pytest.raises(ConfigError, match="n_subjects and n_classes come from the dataset"):
        CLIPMUSED(CLIPMUSED.PRESETS["testing"])
    with pytest.raises(ConfigError, match="widths must equal dim"):
        tiny(dim=5)


@pytest.mark.parametrize("readout", ["tokens", "mean"])
def test_one_step_lowers_loss(readout: str) -> None:
    model = tiny(readout=readout).train()
    x, subject = inputs(model)
    labels = (torch.rand(BATCH, N_CLASSES, generator=torch.Generator().manual_seed(2)) > 0.6).float()
    features = torch.randn(BATCH, 17)
    loss = SemanticLoss()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def value() -> torch.Tensor:
        out = model(x, subject)
        return loss(out.logits, labels, out.high, out.low, features, features)[0]

    before = value()  # train mode: BatchNorm uses the batch's statistics, so both values see the same mapping
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = value()
    assert after.item() < before.item()


def test_paper_parameter_count_on_meta_device() -> None:
    """METHODS.md: CNN 54.10 M + shallow attention 9.86 M + token attention 1.84 M + tokens 9.2 k ~ 65.8 M."""
    config = replace(CLIPMUSED.PRESETS["hcp"], n_subjects=9, n_classes=859)
    with torch.device("meta"):
        model = CLIPMUSED(config)
    total = count_parameters(model)
    classifier = count_parameters(model.classifier)
    assert classifier == 1024 * 859 + 859  # 0.88 M
    assert config.released  # the hcp preset is the released model
    assert total - classifier == 65_811_136
    assert abs((total - classifier) / 65.8e6 - 1) < 0.002
    assert count_parameters(model.stem) + count_parameters(model.layers) == 54_103_712  # 54.10 M
    # shallow attention 9.86 M: channel MLP 128 -> 64 -> 128 (16,576) + 2 BN (512) + position MLP (9,839,200)
    assert count_parameters(model.shallow) == 8_256 + 8_320 + 512 + 3136 * 1568 + 1568 + 1568 * 3136 + 3136
    # token attention 1.84 M: no qkv bias in the released blocks
    assert count_parameters(model.blocks) == 1_841_920 and model.tokens.numel() == 9 * 2 * 512
    ours = replace(config, released=False)
    with torch.device("meta"):
        assert count_parameters(CLIPMUSED(ours)) - classifier == 65_795_840  # position MLP only, qkv bias
    assert feature_shapes(config)[2] == (14, 16, 14) and feature_shapes(config)[-1] == (7, 8, 7)


def test_roi_patches_feed_the_nsd_variant() -> None:
    from brainkit.data.transforms import roi_patches

    values = torch.arange(2 * 9, dtype=torch.float32).view(2, 9).numpy()
    labels = [2, 2, 2, 0, 1, 1, 5, 5, 5]
    patches = roi_patches(values, labels, roi_size=3)
    assert patches.shape == (2, 3, 3)
    assert patches[0, 0].tolist() == [4.0, 4.5, 5.0] and patches[1, 1].tolist() == [9.0, 10.0, 11.0]
    model = tiny("nsd", n_rois=3, roi_size=3)
    assert model(torch.from_numpy(patches), torch.tensor([0, 1])).logits.shape == (2, N_CLASSES)
    with pytest.raises(DataError, match="no voxel has an ROI label"):
        roi_patches(values, [0] * 9, 3)
