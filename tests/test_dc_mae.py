"""DC-MAE (Vis-Dec phase 1): the paper preset's parameter counts, shapes, masks, the loss terms on inputs with
known answers, errors, a short seeded pretraining run with its checkpoint, exact resumption of the task, and
2 gloo processes == 1 process."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from brainkit.errors import ConfigError, DataError
from brainkit.evaluation.masked_patches import masked_patch_errors
from brainkit.models import build_model, count_parameters, load_model, model_config
from brainkit.models.dc_mae import DCMAE, hidden_count, pad_voxels, padding_for
from brainkit.models.layers import sincos_embedding
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig
from brainkit.objectives.double_contrastive import (
    LOSS_WEIGHTS,
    DoubleContrastiveConfig,
    DoubleContrastiveLoss,
    loss_weights,
    masked_mse,
)
from brainkit.recipes import RECIPES
from brainkit.recipes.vis_dec.arrays import wrap_pad
from brainkit.recipes.vis_dec.encoder import BETAS, DCMAETask, pretrain_dc_mae
from brainkit.testing import one_and_two_processes, save_rank0
from brainkit.training import TrainingConfig, train

N_VOXELS, BATCH = 52, 7  # 13 patches of 4 voxels in the testing preset


def tiny(seed: int = 0, **options) -> DCMAE:
    torch.manual_seed(seed)
    return build_model("dc_mae", model_config("dc_mae", "testing", options, n_voxels=N_VOXELS))


def test_paper_preset_parameter_counts() -> None:
    with torch.device("meta"):
        model = build_model("dc_mae", model_config("dc_mae", "paper"))
    encoder = sum(p.numel() for p in model.encoder_parameters())
    assert encoder == 151_261_184  # METHODS.md sec. 4.2: ~151.3 M
    assert count_parameters(model) - encoder == 13_158_416  # decoder, depth 8: ~13.2 M
    assert model.n_patches == 291


def test_shapes_and_mask_ratio() -> None:
    model = tiny().eval()
    x = torch.randn(BATCH, N_VOXELS)
    mask = model.random_mask(BATCH, torch.Generator().manual_seed(0))
    assert mask.shape == (BATCH, 13) and (mask.sum(dim=1) == round(0.75 * 13)).all()
    assert model(x, mask).shape == (BATCH, N_VOXELS)
    assert model.encode(x).shape == (BATCH, 14, 16)
    assert model.encode_visible(x, mask).shape == (BATCH, 1 + 13 - 10, 16)


def test_masks_and_construction_are_seeded() -> None:
    a = tiny(seed=3).random_mask(5, torch.Generator().manual_seed(1))
    b = tiny(seed=3).random_mask(5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    first, second = tiny(seed=3).state_dict(), tiny(seed=3).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_blocks_start_from_different_weights_with_transformer_encoder_keys() -> None:
    model = tiny(decoder_depth=2)
    for stack in (model.encoder, model.decoder):
        first, second = stack.layers[0], stack.layers[1]
        assert not torch.equal(first.self_attn.in_proj_weight, second.self_attn.in_proj_weight)
        assert not torch.equal(first.linear1.weight, second.linear1.weight)
    # the names of nn.TransformerEncoder's parameters: checkpoints saved before still load
    layer = torch.nn.TransformerEncoderLayer(16, 2, 16, batch_first=True, norm_first=True)
    reference = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    assert set(model.encoder.state_dict()) == set(reference.state_dict())
    model.encoder.load_state_dict(reference.state_dict())


def test_hidden_patches_do_not_reach_the_encoder() -> None:
    model = tiny().eval()
    x = torch.randn(2, N_VOXELS)
    mask = model.random_mask(2, torch.Generator().manual_seed(0))
    changed = x.clone()
    changed[mask.repeat_interleave(4, dim=1)] += 5.0
    assert torch.allclose(model.encode_visible(x, mask), model.encode_visible(changed, mask))
    assert not torch.allclose(model.encode(x), model.encode(changed))


def test_voxels_not_a_multiple_of_the_patch_say_to_pad() -> None:
    with pytest.raises(ConfigError, match=r"n_voxels 50 must be a multiple of patch_size 4.*pad_voxels"):
        build_model("dc_mae", model_config("dc_mae", "testing", n_voxels=50))
    padded = pad_voxels(np.arange(10.0)[None], 4)
    assert padded.shape == (1, 12) and padded[0, 10:].tolist() == [0.0, 1.0]


def test_bad_input_raises() -> None:
    model = tiny()
    mask = model.random_mask(BATCH)
    with pytest.raises(DataError, match=r"expects input of shape \(batch, 52\) voxels, found \(7, 48\)"):
        model(torch.randn(BATCH, 48), mask)
    x = torch.randn(BATCH, N_VOXELS)
    x[1, 3] = float("nan")
    with pytest.raises(DataError, match="NaN or inf"):
        model(x, mask)
    with pytest.raises(DataError, match="same number of patches"):
        model(
            torch.randn(BATCH, N_VOXELS),
            torch.zeros(BATCH, 13, dtype=torch.bool)
            .index_fill(1, torch.tensor([0]), True)
            .logical_and(torch.arange(BATCH)[:, None] > 2),
        )
    with pytest.raises(DataError, match="NaN or inf"):
        pretrain_dc_mae(
            model, np.full((4, N_VOXELS), np.nan, np.float32), TrainingConfig(epochs=1, progress=False)
        )


def test_masked_mse_known_answers() -> None:
    x = torch.randn(3, 8)
    mask = torch.tensor([[True, False], [False, True], [True, False]])
    assert masked_mse(x, x, mask, 4) == 0
    recon = x.clone()
    recon[~mask.repeat_interleave(4, dim=1)] += 10.0  # errors on visible patches do not count
    assert masked_mse(recon, x, mask, 4) == 0
    recon = x + 2.0
    assert masked_mse(recon, x, mask, 4) == pytest.approx(4.0)


def test_infonce_on_identical_rows_matches_hand_value() -> None:
    rows = torch.tensor([[1.0, 0.0], [0.6, 0.8]])  # unit rows, cosine 0.6
    expected = math.log(1 + math.exp((0.6 - 1.0) / 0.1))  # each row: -log(e^10 / (e^10 + e^6))
    loss = InfoNCE(InfoNCEConfig(temperature=0.1))(rows, 3.0 * rows)  # cosine ignores the scale
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_double_contrastive_weights() -> None:
    torch.manual_seed(0)
    x, a, b = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 8)
    mask = torch.tensor([[True, False]] * 6)
    terms = DoubleContrastiveLoss()(x, a, b, mask, mask, 4)
    nce = InfoNCE(InfoNCEConfig(temperature=0.1))
    assert float(terms["self"]) == pytest.approx(float(0.5 * (nce(a, x) + nce(b, x))), rel=1e-6)
    assert float(terms["cross"]) == pytest.approx(float(nce(a, b)), rel=1e-6)
    expected = terms["mse"] + 1.0 * terms["self"] + 0.5 * terms["cross"]
    assert float(terms["loss"]) == pytest.approx(float(expected), rel=1e-6)
    perfect = DoubleContrastiveLoss(DoubleContrastiveConfig(self_weight=0, cross_weight=0))(
        x, x, x, mask, mask, 4
    )
    assert set(perfect) == {"mse", "loss"} and float(perfect["loss"]) == 0.0
    with pytest.raises(ConfigError, match=r"cross_weight=-1 is out of range: allowed x >= 0"):
        DoubleContrastiveLoss(DoubleContrastiveConfig(cross_weight=-1))


def _voxels(n: int, seed: int) -> np.ndarray:
    """Smooth patterns (a few sines along the voxel axis) plus noise: learnable from the visible patches."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_VOXELS) / N_VOXELS
    phase, freq = rng.uniform(0, 2 * np.pi, (n, 1)), rng.uniform(1, 3, (n, 1))
    return (np.sin(2 * np.pi * freq * t + phase) + 0.1 * rng.standard_normal((n, N_VOXELS))).astype(
        np.float32
    )


def test_pretraining_learns_is_seeded_and_checkpoints(tmp_path, one_torch_thread) -> None:
    train, val = _voxels(48, 0), _voxels(16, 1)
    config = TrainingConfig(
        epochs=6,
        batch_size=16,
        lr=3e-3,
        weight_decay=0.05,
        betas=(0.9, 0.95),
        warmup_epochs=1,
        progress=False,
    )
    result = pretrain_dc_mae(tiny(), train, config, tmp_path / "run", val_voxels=val)
    again = pretrain_dc_mae(tiny(), train, config, val_voxels=val)
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in again.history]
    first, last = result.history[0], result.history[-1]
    assert {"val_masked_mse", "val_self", "val_cross"} <= set(last)
    assert last["train_loss"] < first["train_loss"] and last["val_masked_mse"] < first["val_masked_mse"]
    model, metadata = load_model(tmp_path / "run" / "checkpoint")
    assert metadata["phase"] == "dc_mae" and metadata["loss"]["cross_weight"] == 0.5
    lines = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["epoch"] == 6
    errors = masked_patch_errors(model, train, val)
    assert set(errors) == {"model", "train_mean", "interpolation", "variance"}


def test_baselines_known_answers() -> None:
    model = tiny()
    levels = np.ones((5, N_VOXELS), np.float32) * np.arange(1, 6, dtype=np.float32)[:, None]  # constant rows
    errors = masked_patch_errors(model, levels, levels, seed=2)
    assert errors["interpolation"] == 0.0 < errors["model"]
    assert errors["train_mean"] == pytest.approx(2.0)  # levels 1..5 around their mean 3
    assert errors["variance"] == pytest.approx(11.0)  # mean of 1, 4, 9, 16, 25


def test_pretraining_task_resumes_exactly(tmp_path, one_torch_thread) -> None:
    train_voxels, val = _voxels(40, 0), _voxels(8, 1)
    config = TrainingConfig(epochs=4, batch_size=8, lr=3e-3, betas=BETAS, warmup_epochs=1, progress=False)
    full = tiny(dropout=0.1)  # dropout: the global generator's per-step seeding must resume too
    whole = train(DCMAETask(full, train_voxels, val_voxels=val), config, tmp_path / "full")
    part = tiny(dropout=0.1)
    train(DCMAETask(part, train_voxels, val_voxels=val), config, tmp_path / "part", until_epoch=2)
    resumed = tiny(seed=99, dropout=0.1)  # another init: everything must come from the checkpoint
    again = train(DCMAETask(resumed, train_voxels, val_voxels=val), config, tmp_path / "part", resume=True)
    assert [r["epoch"] for r in again.history] == [1, 2, 3, 4]
    assert [r["val_masked_mse"] for r in again.history] == [r["val_masked_mse"] for r in whole.history]
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _distributed_worker(fabric, out_dir: str, batch_size: int) -> None:
    """Run by Fabric in each process (and once alone): DC-MAE pretraining, rank 0 saves the weights."""
    torch.set_num_threads(1)
    model = tiny()  # dropout 0: the processes' dropout streams differ by design
    config = TrainingConfig(epochs=2, batch_size=batch_size, lr=3e-3, weight_decay=0.05, betas=BETAS,
                            warmup_epochs=1, grad_clip=0.8, progress=False)  # fmt: skip
    pretrain_dc_mae(model, _voxels(48, 0), config, fabric=fabric)
    save_rank0(fabric, out_dir, model.state_dict())


@pytest.mark.slow
def test_two_process_gloo_matches_single_process(tmp_path) -> None:
    """Global batch 16 split over 2 gloo processes (two masks per sample drawn before the split, InfoNCE
    negatives gathered) == one process with batch 16."""

    one, two = one_and_two_processes(_distributed_worker, tmp_path, 16)
    a, b = one["weights"], two["weights"]
    assert a.keys() == b.keys()
    for key in a:
        if key.endswith(
            "in_proj_bias"
        ):  # (query, key, value) biases: the key bias's true gradient is 0 (softmax
            third = len(a[key]) // 3  # ignores a shift shared by all keys), so Adam scales float noise there
            a[key][third : 2 * third] = b[key][third : 2 * third] = 0
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ reference mode (released=True), issue 14
def test_released_positions_are_sin_then_cos() -> None:
    # positions 0, 1 at dim 4: frequencies 10000^(-0/4) = 1 and 10000^(-2/4) = 0.01
    s1, s01, c1, c01 = (
        math.sin(1.0),
        math.sin(0.01),
        math.cos(1.0),
        math.cos(0.01),
    )  # 0.8415 0.0100 0.5403 0.99995
    concat = [[0.0, 0.0, 1.0, 1.0], [s1, s01, c1, c01]]  # [sin | cos] (MAE, Vis-Dec)
    interleaved = [[0.0, 1.0, 0.0, 1.0], [s1, c1, s01, c01]]  # ours
    torch.testing.assert_close(sincos_embedding(2, 4, "concat"), torch.tensor(concat))
    torch.testing.assert_close(sincos_embedding(2, 4), torch.tensor(interleaved))
    with pytest.raises(ConfigError, match="layout must be"):
        sincos_embedding(2, 4, "sin_cos")
    released, ours = tiny(released=True), tiny()
    for model in (released, ours):  # cos(1 * frequency 1) in column dim / 2 (16 -> 8, decoder 8 -> 4) or 1
        for table in (model.positions, model.decoder_positions):
            column = table.shape[1] // 2 if model.config.released else 1
            assert torch.equal(table[0], torch.zeros(table.shape[1]))  # the cls token's position
            assert float(table[2, 0]) == pytest.approx(s1)
            assert float(table[2, column]) == pytest.approx(c1)
    assert released(torch.randn(2, N_VOXELS), released.random_mask(2)).shape == (2, N_VOXELS)


def test_released_mask_keeps_int_of_the_visible_share() -> None:
    # 291 patches at 0.75: released keeps int(291 * 0.25) = int(72.75) = 72, hides 219; ours hides round(218.25)
    assert hidden_count(291, 0.75, released=True) == 219 and hidden_count(291, 0.75) == 218
    assert hidden_count(13, 0.75, released=True) == 10 == hidden_count(13, 0.75)  # int(3.25) = 3 kept
    for released, n_hidden in ((True, 219), (False, 218)):
        model = build_model(
            "dc_mae", model_config("dc_mae", "testing", {"released": released}, n_voxels=291 * 4)
        )
        mask = model.random_mask(3, torch.Generator().manual_seed(0))
        assert mask.shape == (3, 291) and mask.sum(dim=1).tolist() == [n_hidden] * 3
    with torch.device("meta"):
        paper = build_model("dc_mae", model_config("dc_mae", "paper_released"))
    assert paper.config.released and paper.n_patches == 291


def test_released_padding_adds_a_patch_to_a_multiple() -> None:
    x = np.arange(8.0)[None]  # 8 voxels, patch 4: already a multiple
    assert pad_voxels(x, 4).shape == (1, 8)
    assert pad_voxels(x, 4, released=True)[0].tolist() == list(range(8)) + [0.0, 1.0, 2.0, 3.0]
    ten = np.arange(10.0)[None]  # not a multiple: both pad 2
    assert (
        pad_voxels(ten, 4, released=True).tolist()
        == pad_voxels(ten, 4).tolist()
        == [list(range(10)) + [0, 1]]
    )
    assert padding_for(4656, 16, released=True) == 16 and padding_for(4656, 16) == 0  # 16 * 291 voxels
    assert wrap_pad(x, 4, released=True).shape == (1, 12) and wrap_pad(x, 4).shape == (1, 8)


def test_loss_weight_sets_and_the_released_form() -> None:
    assert LOSS_WEIGHTS["as_described"] == {
        "mse_weight": 1,
        "contrast_weight": 1,
        "self_weight": 1,
        "cross_weight": 0.5,
    }
    assert LOSS_WEIGHTS["as_run"] == {
        "mse_weight": 1,
        "contrast_weight": 0.5,
        "self_weight": 0.5,
        "cross_weight": 0.5,
    }
    assert loss_weights("as_described") == DoubleContrastiveConfig()  # our default is the README's reading
    with pytest.raises(ConfigError, match="must be one of"):
        loss_weights("as_said")
    with pytest.raises(ConfigError, match=r"set form to one of \('ours', 'released'\)"):
        DoubleContrastiveLoss(DoubleContrastiveConfig(form="paper"))
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = 2 * a  # cosines of a, MSE of its own
    mask = torch.tensor([[True, False], [True, False]])  # patch size 1: voxel 0 hidden
    # MSE on voxel 0: view a (0 - 0)^2, (0 - 0.6)^2 -> 0.18; view b (2 - 1)^2, (0 - 0.6)^2 -> 0.68
    # one-way InfoNCE, tau 0.1: rows of a pick their x: cosines [1, 0.6] and [0, 0.8] -> log(1 + e^-4), log(1 + e^-8)
    self_a = (math.log(1 + math.exp(-4)) + math.log(1 + math.exp(-8))) / 2
    cross = math.log(1 + math.exp(-10))  # rows of a pick their b: cosines [1, 0] and [0, 1]
    terms = DoubleContrastiveLoss(loss_weights("as_run", form="released"))(x, a, b, mask, mask, 1)
    assert float(terms["mse"]) == pytest.approx(0.18)
    assert float(terms["self"]) == pytest.approx(self_a, rel=1e-5)
    assert float(terms["cross"]) == pytest.approx(cross, abs=1e-6)  # float32 near 0
    assert float(terms["loss"]) == pytest.approx(0.18 + 0.5 * (0.5 * self_a + 0.5 * cross), rel=1e-5)
    described = DoubleContrastiveLoss(loss_weights("as_described", form="released"))(x, a, b, mask, mask, 1)
    assert float(described["loss"]) == pytest.approx(0.18 + self_a + 0.5 * cross, rel=1e-5)
    ours = DoubleContrastiveLoss(loss_weights("as_run"))(x, a, b, mask, mask, 1)
    assert float(ours["mse"]) == pytest.approx(0.43)  # both views: (0.18 + 0.68) / 2


def test_recipe_refuses_unknown_loss_weights(tmp_path) -> None:
    recipe = RECIPES.get("vis_dec")
    with pytest.raises(ConfigError, match="set dc_mae_loss to one of"):
        dataclasses.replace(recipe.PRESETS["testing"], dc_mae_loss="as_said")
