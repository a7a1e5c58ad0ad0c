"""BrainMAE: shapes at unequal tiny sizes, gradients, determinism, checkpoints, input errors, attention graph
properties (no self loops, static graph, masked tokens hidden), one learning step, and the masking config. (Pretraining on the one trainer: tests/test_brain_mae_recipe.py.)"""

from __future__ import annotations

import pytest
import torch

from brainkit.errors import ConfigError, DataError
from brainkit.models import load_model, save_model
from brainkit.models.base import model_config
from brainkit.models.brain_mae import BrainMAE
from brainkit.objectives.masked import MaskingConfig, draw_mask, masked_reconstruction_loss, random_mask

N_ROIS, FRAMES, N_SEGMENTS, BATCH = 7, 5, 3, 2


def tiny(seed: int = 0, **options) -> BrainMAE:
    torch.manual_seed(seed)
    config = model_config("brain_mae", "testing", {"n_rois": N_ROIS, "segment_frames": FRAMES, **options})
    return BrainMAE(config)


def x(seed: int = 1) -> torch.Tensor:
    return torch.randn(BATCH, N_SEGMENTS * FRAMES, N_ROIS, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("attention", ["graph", "adaptive", "content"])
def test_shapes_and_gradients(attention: str) -> None:
    model = tiny(attention=attention)
    inputs = x().requires_grad_(True)
    mask = random_mask(BATCH, N_SEGMENTS, N_ROIS, 0.5)
    out = model(inputs, mask)
    assert out.shape == (BATCH, N_SEGMENTS * FRAMES, N_ROIS)
    assert model.encode(inputs).shape == (BATCH, N_SEGMENTS, N_ROIS, 8)
    assert model.features(inputs).shape == (BATCH, 2 * N_ROIS * 8)
    out.square().mean().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad
    )
    assert inputs.grad.abs().sum() > 0


def test_seeded_and_checkpoint_round_trip(tmp_path) -> None:
    a, b = tiny(seed=3).eval(), tiny(seed=3).eval()
    torch.testing.assert_close(a(x()), b(x()))
    save_model(tmp_path / "ckpt", a)
    loaded, _ = load_model(tmp_path / "ckpt")
    torch.testing.assert_close(loaded.eval()(x()), a(x()), rtol=0, atol=0)


def test_input_errors() -> None:
    model = tiny()
    with pytest.raises(DataError, match=r"\(batch, n_segments \* 5 frames, 7 ROIs\)"):
        model(torch.randn(2, 15, 6))
    with pytest.raises(DataError, match=r"\(batch, n_segments \* 5 frames, 7 ROIs\)"):
        model(torch.randn(2, 14, 7))
    bad = x()
    bad[0, 3, 2] = float("nan")
    with pytest.raises(DataError, match="NaN or inf"):
        model(bad)
    with pytest.raises(DataError, match=r"mask must be \(batch, n_segments, n_rois\) = \(2, 3, 7\)"):
        model(x(), torch.zeros(2, 3, 6, dtype=torch.bool))
    with pytest.raises(ConfigError, match="attention='sparse' is not allowed: set attention to one of"):
        tiny(attention="sparse")
    with pytest.raises(ConfigError, match="is not a multiple of model.n_heads=3"):
        tiny(n_heads=3)
    with pytest.raises(ConfigError, match="n_rois and segment_frames must be set"):
        BrainMAE(model_config("brain_mae", "testing"))


def test_attention_graph_properties() -> None:
    graph = tiny().attention_graph()
    assert graph.shape == (N_ROIS, N_ROIS)
    torch.testing.assert_close(graph.sum(dim=1), torch.ones(N_ROIS))
    assert torch.all(graph.diagonal() == 0)  # self loops removed
    assert torch.all(tiny(self_loops=True).attention_graph().diagonal() > 0)
    with pytest.raises(ConfigError, match="pass windows x"):
        tiny(attention="adaptive").attention_graph()
    assert tiny(attention="adaptive").attention_graph(x()).shape == (N_ROIS, N_ROIS)
    fixed = tiny(roi_embedding="fixed")
    assert "encoder.roi_embedding" not in dict(fixed.named_parameters())


def test_masked_tokens_are_hidden() -> None:
    model = tiny().eval()
    mask = random_mask(BATCH, N_SEGMENTS, N_ROIS, 0.4, torch.Generator().manual_seed(0))
    changed = x().clone()
    hidden = mask.repeat_interleave(FRAMES, dim=1)
    changed[hidden] = changed[hidden] + 100.0
    torch.testing.assert_close(model(changed, mask), model(x(), mask))


def test_mask_and_loss_known_answers() -> None:
    mask = random_mask(4, 6, 10, 0.7)
    assert mask.shape == (4, 6, 10) and torch.all(mask.sum(dim=-1) == 7)
    with pytest.raises(ConfigError, match=r"mask ratio must be in \[0, 1\)"):
        random_mask(1, 1, 3, 1.0)
    target = torch.zeros(1, 2 * FRAMES, 2)
    prediction = target.clone()
    prediction[0, :FRAMES, 0] = 2.0  # segment 0, ROI 0: squared error 4
    prediction[0, FRAMES:, 1] = 1.0  # segment 1, ROI 1: squared error 1
    mask = torch.tensor([[[True, False], [False, False]]])
    loss = masked_reconstruction_loss(prediction, target, mask, FRAMES)
    assert float(loss) == pytest.approx(0.75 * 4 + 0.25 * (1 / 3))


def test_one_step_lowers_loss() -> None:
    model = tiny()
    inputs, mask = x(), random_mask(BATCH, N_SEGMENTS, N_ROIS, 0.5, torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = masked_reconstruction_loss(model(inputs, mask), inputs, mask, FRAMES)
    before.backward()
    optimizer.step()
    after = masked_reconstruction_loss(model(inputs, mask), inputs, mask, FRAMES)
    assert after.item() < before.item()


def test_masking_config_and_draw() -> None:
    with pytest.raises(
        ConfigError, match=r"mask_ratio_range must satisfy 0 <= low <= high < 1, found \(0.5, 0.2\)"
    ):
        MaskingConfig(mask_ratio_range=(0.5, 0.2))
    masks = [draw_mask(MaskingConfig(), 4, 3, 10, torch.Generator().manual_seed(s)) for s in range(20)]
    hidden = {int(m[0, 0].sum()) for m in masks}
    assert all(m.shape == (4, 3, 10) and len(set(m.sum(dim=-1).flatten().tolist())) == 1 for m in masks)
    assert hidden <= set(range(9)) and len(hidden) > 3  # a ratio per batch in (0, 0.8): 0-8 of 10 ROIs
    torch.testing.assert_close(
        masks[3], draw_mask(MaskingConfig(), 4, 3, 10, torch.Generator().manual_seed(3))
    )
    plain = MaskingConfig(masking=False)
    assert not draw_mask(plain, 2, 3, 10, torch.Generator()).any() and plain.loss_weight == 0.0


@pytest.mark.parametrize(
    ("preset", "encoder", "total"),
    [("sg_paper", 610_048, 631_669), ("ag_paper", 477_568, 499_189), ("cpu_small", 29_440, 40_757)],
)
def test_preset_parameter_counts(preset: str, encoder: int, total: int) -> None:
    """The counts docs/methods/brain_mae.md lists (Schaefer-100, 15 s at TR 0.72 s), built on the meta device."""
    with torch.device("meta"):
        model = BrainMAE(model_config("brain_mae", preset, {"n_rois": 100, "segment_frames": 21}))
    assert sum(p.numel() for p in model.encoder.parameters()) == encoder
    assert sum(p.numel() for p in model.parameters()) == total


def test_static_graph_fast_path_matches_per_graph_product() -> None:
    from einops import rearrange

    model = tiny()
    attention = model.encoder.blocks[0].attention
    tokens = torch.randn(4, N_ROIS, 8)
    embedding = model.encoder.roi_embedding
    weights = attention.weights(tokens, embedding)
    assert weights.shape[0] == 1  # one graph for every segment
    values = rearrange(attention.value(tokens), "g r (h d) -> g h r d", h=attention.n_heads)
    expected = attention.out(rearrange(weights @ values, "g h r d -> g r (h d)"))
    torch.testing.assert_close(attention(tokens, embedding), expected)


def test_token_connectivity_readout() -> None:
    model = tiny().eval()
    with torch.no_grad():
        out = model.token_connectivity(x())
    assert out.shape == (BATCH, N_ROIS * (N_ROIS - 1) // 2)
    assert torch.all(out.abs() <= 1 + 1e-5) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "override, message",
    [
        ("n_folds=1", r"n_folds=1 is out of range: allowed x >= 2"),
        ("real_train_fraction=1.0", r"real_train_fraction=1.0 is out of range: allowed 0 < x < 1"),
        ("variants=[SG-BrainMAE, typo]", r"variants: unknown \['typo'\]"),
        (
            "finetune_variant=vanilla-BrainMAE",
            r"finetune_variant='vanilla-BrainMAE' is not among the variants",
        ),
        ("model_preset=huge", r"no preset 'huge'"),
        ("model_options.dim=31", r"model.dim=31 is not a multiple of model.n_heads=2"),
        ("model_options.dropout=1.5", r"model.dropout=1.5 is out of range"),
        ("model_options.attention=dense", r"attention.*'dense'"),
    ],
)
def test_out_of_range_settings_are_refused_before_any_data(tmp_path, override, message):
    from brainkit.errors import ConfigError
    from brainkit.recipes import run_recipe

    overrides = [override] + (["variants=[SG-BrainMAE]"] if override.startswith("finetune") else [])
    with pytest.raises(ConfigError, match=message):
        run_recipe("brain_mae", folder=tmp_path / "run", preset="testing", overrides=overrides)
    assert not any(tmp_path.iterdir())
