"""SIM's tri-modal model: shapes, the loss against a hand computation, parameter counts (meta), vsMAE init."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.models import build_model, count_parameters, load_model, model_config, save_model
from brainkit.models.sim import PRESETS, SIM
from brainkit.models.sit import PRESETS as SIT_PRESETS
from brainkit.models.sit import SiT
from brainkit.objectives.trimodal import TriModalLoss

FRAMES, PATCHES, VERTICES, BATCH, VIDEO, AUDIO = 3, 11, 7, 6, 13, 9


def tiny(seed: int = 0) -> SIM:
    torch.manual_seed(seed)
    encoder = {
        **dataclasses.asdict(SIT_PRESETS["testing"]),
        "n_patches": PATCHES,
        "n_patch_vertices": VERTICES,
    }
    options = {"encoder": encoder, "video_dim": VIDEO, "audio_dim": AUDIO}
    return build_model("sim", model_config("sim", "testing", options))


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(BATCH, FRAMES, PATCHES, VERTICES, generator=g), torch.randn(BATCH, VIDEO, generator=g),
            torch.randn(BATCH, AUDIO, generator=g))  # fmt: skip


def _clip(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    logits = scale * F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    labels = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def test_shapes_and_loss_by_hand() -> None:
    model = tiny().eval()
    x, video, audio = batch()
    fmri, v, a = model(x), model.embed_video(video), model.embed_audio(audio)
    assert fmri.shape == v.shape == a.shape == (BATCH, 8)
    expected = (0.8 * _clip(fmri, v, math.e) + 0.1 * _clip(fmri, a, math.exp(0.5))
                + 0.1 * _clip(v, a, math.exp(0.5))) / 6  # fmt: skip
    assert torch.allclose(TriModalLoss(model.config).batch(model, x, video, audio), expected, atol=1e-6)
    with pytest.raises(DataError, match=r"video features must be \(batch, 13\)"):
        model.embed_video(torch.randn(BATCH, AUDIO))


def test_gradients_step_and_round_trip(tmp_path) -> None:
    model = tiny().train()
    x, video, audio = batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = TriModalLoss(model.config)
    before = loss.batch(model, x, video, audio)
    before.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    optimizer.step()
    with torch.no_grad():
        assert loss.batch(model, x, video, audio) < before
    model.eval()
    save_model(tmp_path / "sim", model)
    loaded, _ = load_model(tmp_path / "sim")
    assert torch.equal(loaded.eval()(x), model(x))


def test_init_encoder_from_vsmae_checkpoint(tmp_path) -> None:
    model = tiny(seed=0)
    torch.manual_seed(5)
    pretrained = SiT(model.config.encoder)
    save_model(tmp_path / "sit_encoder", pretrained)
    assert not torch.equal(model.encoder.patch_embedding.weight, pretrained.patch_embedding.weight)
    model.init_encoder(tmp_path / "sit_encoder")
    loaded, saved = model.encoder.state_dict(), pretrained.state_dict()
    assert set(loaded) == set(saved) == {n for n, _ in pretrained.named_parameters()}  # every parameter
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert torch.equal(model.encoder.positions, pretrained.positions)  # the fixed table (not saved) agrees
    x = torch.randn(2, model.config.encoder.n_frames, PATCHES, VERTICES)
    assert torch.equal(model.encoder.eval()(x), pretrained.eval()(x))
    other = SiT(dataclasses.replace(model.config.encoder, n_patch_vertices=VERTICES + 1))
    save_model(tmp_path / "other", other)
    with pytest.raises(CheckpointError, match="pretrain vsMAE with the same encoder preset"):
        model.init_encoder(tmp_path / "other")


def test_sim_parameter_count_matches_methods() -> None:
    with torch.device("meta"):
        model = SIM(PRESETS["sim"])
    # METHODS.md sec. 1.3: SiT ~5.36 M + heads 0.22 M + 0.44 M + 0.44 M = ~6.47 M trainable
    assert count_parameters(model.encoder) == 5_358_144
    assert count_parameters(model.fmri_head) == 222_720
    assert count_parameters(model.video_head) == count_parameters(model.audio_head) == 443_904
    assert count_parameters(model) == 6_468_672


def test_parameter_groups_scale_the_encoder_only() -> None:
    from brainkit.recipes.sim import parameter_groups

    model = tiny(seed=0)
    depth = len(model.encoder.blocks)
    groups = parameter_groups(model, lr_scale=0.1, layer_decay=0.5)
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    assert len(scale) == sum(1 for _ in model.parameters())  # every parameter exactly once
    assert sum(len(g["params"]) for g in groups) == len(scale)
    heads = [*model.fmri_head.parameters(), *model.video_head.parameters(), *model.audio_head.parameters()]
    assert all(scale[id(p)] == 1.0 for p in heads)
    assert scale[id(model.encoder.norm.weight)] == pytest.approx(0.1)
    for i, block in enumerate(model.encoder.blocks):
        assert all(scale[id(p)] == pytest.approx(0.1 * 0.5 ** (depth - i)) for p in block.parameters())
    assert scale[id(model.encoder.patch_embedding.weight)] == pytest.approx(0.1 * 0.5 ** (depth + 1))
    assert scale[id(model.encoder.cls_token)] == pytest.approx(0.1 * 0.5 ** (depth + 1))
    assert {g["lr_scale"] for g in parameter_groups(model)} == {1.0}
    with pytest.raises(ConfigError, match="pretrained_layer_decay"):
        parameter_groups(model, layer_decay=1.5)


def test_logit_scales_keep_checkpoint_keys_and_match_the_loss() -> None:
    # the loss moved to objectives/trimodal.py; the model keeps the scales under their old keys
    model, loss = tiny(), TriModalLoss(PRESETS["testing"])
    state = {k: v for k, v in model.state_dict().items() if k.startswith("objective.")}
    assert state == {f"objective.{pair}.log_scale": getattr(loss, pair).log_scale for pair in
                     ("fmri_video", "fmri_audio", "video_audio")}  # fmt: skip
