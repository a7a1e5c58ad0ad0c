"""Vis-Dec phase 3: the fMRI-conditioned latent diffusion model (tiny diffusers networks, seconds on a CPU)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.models.ldm import (
    N_CONTEXT_TOKENS,
    PRESETS,
    FMRIConditioner,
    FMRIContextMapper,
    build_scheduler,
    build_unet,
    build_vae,
    images_to_tensor,
    load_pretrained_ldm,
    sample_images,
    save_pretrained_ldm,
    set_unet_trained,
)
from brainkit.recipes.vis_dec.diffusion import batched_moments, finetune_ldm, pretrain_unet, pretrain_vae
from brainkit.training import TrainingConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = PRESETS["testing"]
N_VOXELS, N_TOKENS, DIM = 37, 5, 12  # unequal sizes: a swapped axis cannot pass


class StandInEncoder(nn.Module):
    """Stands in for the DC-MAE: (batch, n_voxels) -> (batch, 1 + n_patches, dim) tokens."""

    def __init__(self, n_voxels: int = N_VOXELS, n_tokens: int = N_TOKENS, dim: int = DIM):
        super().__init__()
        self.n_tokens, self.dim = n_tokens, dim
        self.proj = nn.Linear(n_voxels, n_tokens * dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).reshape(len(x), self.n_tokens, self.dim)


def _conditioner(seed: int = 0) -> FMRIConditioner:
    torch.manual_seed(seed)
    mapper = FMRIContextMapper(N_TOKENS, DIM, TINY.cross_attention_dim)
    return FMRIConditioner(StandInEncoder(), mapper)


def _networks(seed: int = 0):
    torch.manual_seed(seed)
    return build_unet(TINY), build_vae(TINY), build_scheduler(TINY)


def test_mapper_gives_77_context_tokens_of_the_unet_width() -> None:
    conditioner = _conditioner()
    context = conditioner(torch.randn(3, N_VOXELS))
    assert context.shape == (3, N_CONTEXT_TOKENS, TINY.cross_attention_dim)
    convs = conditioner.mapper.channel_mapper
    assert (convs[0].in_channels, convs[0].out_channels, convs[1].out_channels) == (
        N_TOKENS,
        N_TOKENS // 2,
        77,
    )


def test_mapper_rejects_wrong_token_shape() -> None:
    mapper = FMRIContextMapper(N_TOKENS, DIM, 16)
    with pytest.raises(DataError, match=r"expects fMRI tokens \(batch, 5, 12\), found \(2, 5, 13\)"):
        mapper(torch.randn(2, N_TOKENS, DIM + 1))
    with pytest.raises(ConfigError, match="has no encode"):
        FMRIConditioner(nn.Linear(3, 3), mapper)


def test_shapes_through_vae_and_unet() -> None:
    unet, vae, scheduler = _networks()
    images = images_to_tensor(np.random.default_rng(0).integers(0, 255, (2, 40, 40, 3), dtype=np.uint8), 16)
    assert images.shape == (2, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    moments = batched_moments(vae, images)
    assert moments.shape == (2, 2 * TINY.latent_channels, 8, 8)
    context = _conditioner()(torch.randn(2, N_VOXELS))
    eps = unet(moments[:, :4], torch.tensor([10, 500]), encoder_hidden_states=context).sample
    assert eps.shape == (2, 4, 8, 8)


def test_sampling_is_reproducible_from_the_seed_and_independent_of_batching() -> None:
    unet, vae, scheduler = _networks()
    context = _conditioner()(torch.randn(3, N_VOXELS)).detach()
    a = sample_images(unet, vae, scheduler, context, n_samples=2, n_steps=3, seed=5, batch_size=4)
    b = sample_images(unet, vae, scheduler, context, n_samples=2, n_steps=3, seed=5, batch_size=1)
    c = sample_images(unet, vae, scheduler, context, n_samples=2, n_steps=3, seed=6)
    assert a.shape == (3, 2, 16, 16, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[:, 0], a[:, 1])  # two samples per fMRI differ
    ddim = build_scheduler(replace(TINY, scheduler="ddim"))
    d = sample_images(unet, vae, ddim, context, n_samples=1, n_steps=3, seed=5)
    assert d.shape == (3, 1, 16, 16, 3)
    with pytest.raises(DataError, match="context must be"):
        sample_images(unet, vae, scheduler, context[..., :-1])


def test_classifier_free_guidance() -> None:
    unet, vae, scheduler = _networks()
    context = _conditioner()(torch.randn(2, N_VOXELS)).detach()
    plain = sample_images(unet, vae, scheduler, context, n_steps=3, seed=2)
    np.testing.assert_array_equal(
        plain, sample_images(unet, vae, scheduler, context, n_steps=3, seed=2, guidance_scale=1.0)
    )
    guided = sample_images(unet, vae, scheduler, context, n_steps=3, seed=2, guidance_scale=4.0)
    assert not np.array_equal(plain, guided)
    np.testing.assert_array_equal(
        guided,
        sample_images(unet, vae, scheduler, context, n_steps=3, seed=2, guidance_scale=4.0, batch_size=1),
    )
    # a zero context is the unconditional model itself: guidance changes nothing there
    zero = torch.zeros_like(context)
    np.testing.assert_array_equal(
        sample_images(unet, vae, scheduler, zero, n_steps=3, seed=2),
        sample_images(unet, vae, scheduler, zero, n_steps=3, seed=2, guidance_scale=4.0),
    )
    with pytest.raises(ConfigError, match="guidance_scale must be >= 1"):
        sample_images(unet, vae, scheduler, context, guidance_scale=0.5)


def test_denoising_loss_falls_on_a_tiny_batch() -> None:
    unet, vae, scheduler = _networks()
    rng = np.random.default_rng(1)
    images = images_to_tensor(rng.integers(0, 255, (6, 16, 16, 3), dtype=np.uint8), 16)
    train = TrainingConfig(epochs=30, batch_size=6, lr=3e-3, warmup_epochs=0, min_lr=3e-3, progress=False)
    vae_history = pretrain_vae(vae, images, replace(train, epochs=15)).history
    assert vae_history[-1]["train_loss"] < vae_history[0]["train_loss"]
    assert not any(p.requires_grad for p in vae.parameters())
    moments = batched_moments(vae, images)
    conditioner = _conditioner()
    voxels = rng.standard_normal((6, N_VOXELS)).astype(np.float32)
    vae_before = {k: v.clone() for k, v in vae.state_dict().items()}
    history = finetune_ldm(unet, vae, scheduler, conditioner, voxels, moments, np.arange(6), train).history
    first, last = (
        np.mean([h["train_loss"] for h in history[:5]]),
        np.mean([h["train_loss"] for h in history[-5:]]),
    )
    assert last < 0.8 * first, (first, last)
    assert all(torch.equal(v, vae.state_dict()[k]) for k, v in vae_before.items())  # the VAE stays frozen
    unconditional = pretrain_unet(
        unet, vae, scheduler, moments, replace(train, epochs=2), val_moments=moments
    ).history
    assert len(unconditional) == 2 and "val_loss" in unconditional[0]


def test_finetuning_is_seeded() -> None:
    runs = []
    for _ in range(2):
        unet, vae, scheduler = _networks()
        images = images_to_tensor(np.full((4, 16, 16, 3), 100, dtype=np.uint8), 16)
        moments = batched_moments(vae, images)
        train = TrainingConfig(epochs=2, batch_size=2, lr=1e-3, progress=False, seed=3)
        voxels = np.random.default_rng(0).standard_normal((4, N_VOXELS)).astype(np.float32)
        runs.append(
            finetune_ldm(unet, vae, scheduler, _conditioner(), voxels, moments, np.arange(4), train).history
        )
    assert [r["train_loss"] for r in runs[0]] == [r["train_loss"] for r in runs[1]]


def test_finetune_rejects_mismatched_inputs() -> None:
    unet, vae, scheduler = _networks()
    moments = torch.zeros(4, 8, 8, 8)
    train = TrainingConfig(epochs=1, batch_size=2, progress=False)
    voxels = np.zeros((4, N_VOXELS), np.float32)
    with pytest.raises(DataError, match="must pair row by row"):
        finetune_ldm(unet, vae, scheduler, _conditioner(), voxels, moments, np.arange(3), train)
    with pytest.raises(DataError, match=r"must lie in \[0, 4\)"):
        finetune_ldm(unet, vae, scheduler, _conditioner(), voxels, moments, np.arange(4) + 1, train)
    with pytest.raises(DataError, match="do not fit together"):
        finetune_ldm(
            unet, vae, scheduler, _conditioner(), voxels, torch.zeros(4, 8, 4, 4), np.arange(4), train
        )


def test_local_folder_round_trip(tmp_path) -> None:
    unet, vae, scheduler = _networks()
    vae.register_to_config(scaling_factor=0.37)
    save_pretrained_ldm(tmp_path / "ldm", unet, vae, scheduler)
    assert {p.name for p in (tmp_path / "ldm").iterdir()} == {"unet", "vae", "scheduler"}
    unet2, vae2, scheduler_config = load_pretrained_ldm(tmp_path / "ldm")
    assert vae2.config.scaling_factor == pytest.approx(0.37)
    context = _conditioner()(torch.randn(2, N_VOXELS)).detach()
    a = sample_images(unet, vae, scheduler, context, n_steps=2, seed=1)
    b = sample_images(unet2, vae2, build_scheduler(TINY, scheduler_config), context, n_steps=2, seed=1)
    np.testing.assert_array_equal(a, b)


def test_loading_a_vq_first_stage(tmp_path) -> None:
    from diffusers import VQModel

    unet, _, scheduler = _networks()
    vq = VQModel(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        num_vq_embeddings=16,
    )
    save_pretrained_ldm(tmp_path / "vq", unet, vq, scheduler)
    unet2, vae2, _ = load_pretrained_ldm(tmp_path / "vq")
    assert type(vae2).__name__ == "VQModel"
    moments = batched_moments(vae2, torch.zeros(2, 3, 16, 16))
    assert moments.shape == (2, 8, 8, 8)
    images = sample_images(unet2, vae2, scheduler, torch.zeros(1, 77, 16), n_steps=2)
    assert images.shape == (1, 1, 16, 16, 3)


def test_missing_folder_and_subfolders_raise(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained_ldm(tmp_path / "nowhere")
    unet, vae, scheduler = _networks()
    save_pretrained_ldm(tmp_path / "ldm", unet, vae, scheduler)
    (tmp_path / "ldm" / "vae" / "config.json").unlink()
    with pytest.raises(CheckpointError, match="has no vae/config.json"):
        load_pretrained_ldm(tmp_path / "ldm")
    save_pretrained_ldm(tmp_path / "ldm", unet, vae, scheduler)
    config = json.loads((tmp_path / "ldm" / "unet" / "config.json").read_text())
    (tmp_path / "ldm" / "unet" / "config.json").write_text(
        json.dumps(config | {"_class_name": "UNet2DModel"})
    )
    with pytest.raises(CheckpointError, match="needs a UNet2DConditionModel"):
        load_pretrained_ldm(tmp_path / "ldm")


def test_bad_configs_raise() -> None:
    with pytest.raises(ConfigError, match="set scheduler to one of"):
        build_scheduler(replace(TINY, scheduler="euler"))
    with pytest.raises(ConfigError, match="must be divisible"):
        build_unet(replace(TINY, image_size=18))
    with pytest.raises(DataError, match="uint8"):
        images_to_tensor(np.zeros((2, 8, 8, 3), np.float32), 8)


def test_cross_attention_levels_are_chosen_per_level_and_checked() -> None:
    unet = build_unet(replace(TINY, unet_cross_attention=(0, 1)))
    assert [type(b).__name__ for b in unet.down_blocks] == ["DownBlock2D", "CrossAttnDownBlock2D"]
    assert [type(b).__name__ for b in unet.up_blocks] == ["CrossAttnUpBlock2D", "UpBlock2D"]
    default = build_unet(TINY)  # None: every level but the last
    assert [type(b).__name__ for b in default.down_blocks] == ["CrossAttnDownBlock2D", "DownBlock2D"]
    with pytest.raises(ConfigError, match="one 0 / 1 per UNet level"):
        replace(TINY, unet_cross_attention=(1,))
    with pytest.raises(ConfigError, match="at least one 1"):
        replace(TINY, unet_cross_attention=(0, 0))


def test_the_label2img_preset_is_the_papers_pretrained_unet() -> None:
    """Mind-Vis / Vis-Dec pretrains/ldm/label2img/config.yaml: 192 x (1, 2, 3, 5), 2 res blocks, spatial
    transformers at downsampling 2, 4 and 8 with one head, context 512, 64 x 64 x 3 latents."""
    config = PRESETS["label2img"]
    with torch.device("meta"):
        unet = build_unet(config)
    assert sum(p.numel() for p in unet.parameters()) == 400_920_579
    assert (
        unet.config.sample_size == 64
        and unet.config.in_channels == 3
        and unet.config.cross_attention_dim == 512
    )
    assert [type(b).__name__ for b in unet.down_blocks] == ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * 3
    heads = {
        a.heads for b in unet.down_blocks[1:] for t in b.attentions for a in (t.transformer_blocks[0].attn1,)
    }
    assert heads == {1}
    scheduler = build_scheduler(config)  # CompVis' "linear" = sqrt-spaced betas = diffusers' scaled_linear
    betas = torch.linspace(0.0015**0.5, 0.0195**0.5, 1000, dtype=torch.float64) ** 2
    torch.testing.assert_close(scheduler.betas.double(), betas, atol=1e-7, rtol=1e-5)


def test_the_released_phase_3_trains_cross_attention_and_its_layernorm_only() -> None:
    """unet_trained="cross_attention": Vis-Dec's train_cond_stage_only set (attn2 and the norm2 before it; the
    ResNet blocks' own norm2 is not in it), the rest frozen, and phase 3's task trains exactly that."""
    unet = build_unet(TINY)
    n = set_unet_trained(unet, "cross_attention")
    trained = [name for name, p in unet.named_parameters() if p.requires_grad]
    assert n == sum(p.numel() for p in unet.parameters() if p.requires_grad) > 0
    assert trained and all(".transformer_blocks." in name and (".attn2." in name or ".norm2." in name)
                           for name in trained)  # fmt: skip
    assert any(".attn2.to_k." in name for name in trained) and any(".norm2." in name for name in trained)
    assert not any(".resnets." in name for name in trained)
    assert set_unet_trained(unet, "all") == sum(p.numel() for p in unet.parameters())
    with pytest.raises(ConfigError, match="unet_trained must be one of"):
        set_unet_trained(unet, "attn2")
    torch.manual_seed(0)
    vae, scheduler, conditioner = build_vae(TINY), build_scheduler(TINY), _conditioner()
    moments = batched_moments(vae, torch.rand(4, 3, TINY.image_size, TINY.image_size) * 2 - 1)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    training = TrainingConfig(epochs=1, batch_size=2, lr=1e-2, seed=0)
    voxels = np.random.default_rng(0).standard_normal((4, N_VOXELS)).astype(np.float32)
    finetune_ldm(unet, vae, scheduler, conditioner, voxels, moments, np.arange(4), training,
                 unet_trained="cross_attention")  # fmt: skip
    changed = {k for k, v in unet.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and changed <= {name for name in before if ".attn2." in name or
                                   (".transformer_blocks." in name and ".norm2." in name)}  # fmt: skip
