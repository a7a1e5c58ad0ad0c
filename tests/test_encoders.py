"""Encoders: the registry, real pretrained weights on 2-3 inputs, CLIP on a tiny random config, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from clip_fixture import PROJECTION_DIM, write_tiny_clip

from brainkit.errors import ConfigError, DataError
from brainkit.registry import ENCODERS
from brainkit.stimuli.encoders import get_encoder
from brainkit.stimuli.images import real_images

NAMES = [
    "efficientnet_lite0",
    "efficientnet_lite0_tokens",
    "efficientnet_lite0_early",
    "minilm",
    "clip_vit_l14",
    "clip_vit_l14_pooled",
    "clip_text",
    "pixel_projection",
    "hashed_words",
]


def test_registry_lists_every_encoder():
    assert set(NAMES) <= set(ENCODERS.names())


def test_unknown_encoder_and_bad_option_raise():
    with pytest.raises(ConfigError, match="Unknown encoder 'minilmm'.*Did you mean 'minilm'"):
        get_encoder("minilmm")
    with pytest.raises(
        ConfigError, match=r"encoder 'hashed_words' takes no option\(s\) \['width'\].* options: dim"
    ):
        get_encoder("hashed_words", width=3)
    with pytest.raises(ConfigError, match="multiple of 32"):
        get_encoder("efficientnet_lite0", image_size=100)


def test_efficientnet_real_weights_on_three_images():
    images = real_images(3, size=70, seed=1).images  # 70 px: the encoder resizes itself
    pooled = get_encoder("efficientnet_lite0").encode(images)
    tokens = get_encoder("efficientnet_lite0_tokens").encode(images)
    early = get_encoder("efficientnet_lite0_early").encode(images)
    assert pooled.shape == (3, 1280) and pooled.dtype == np.float32
    assert tokens.shape == (3, 50, 1280)
    assert early.shape == (3, 16, 40)
    np.testing.assert_allclose(tokens[:, 0], pooled, rtol=1e-5, atol=1e-5)  # token 0 is the pooled one
    np.testing.assert_allclose(tokens[:, 1:].mean(axis=1), pooled, rtol=1e-4, atol=1e-5)
    assert np.isfinite(pooled).all() and pooled.std() > 0
    assert not np.allclose(pooled[0], pooled[1])


def test_efficientnet_recognises_a_cat():
    from skimage.data import chelsea

    from brainkit.stimuli.efficientnet import EfficientNetLite0

    encoder = get_encoder("efficientnet_lite0")
    assert isinstance(encoder, EfficientNetLite0)
    import torch

    model = encoder._model()
    with torch.inference_mode():
        features = torch.from_numpy(encoder.encode(chelsea()[None]))
        logits = model._fc(features)
    assert 281 <= int(logits.argmax()) <= 285  # ImageNet's cat classes: the weights are real, the input right


def test_minilm_real_weights_on_three_texts():
    encoder = get_encoder("minilm")
    vectors = encoder.encode(["a photo of a cat", "a picture of a kitten", "handwritten digit 7"])
    assert vectors.shape == (3, 384) and encoder.output_shape == (384,)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_fingerprint_depends_on_settings():
    a = get_encoder("efficientnet_lite0", image_size=192).fingerprint
    b = get_encoder("efficientnet_lite0", image_size=224).fingerprint
    assert a != b and a == get_encoder("efficientnet_lite0", image_size=192).fingerprint


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return write_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def test_clip_tokens_and_pooled_from_a_tiny_config(tiny_clip):
    images = real_images(2, size=48, seed=0).images
    tokens_encoder = get_encoder("clip_vit_l14", model_dir=tiny_clip)
    pooled_encoder = get_encoder("clip_vit_l14_pooled", model_dir=tiny_clip)
    assert tokens_encoder.output_shape == (10, 12)  # 1 + (30 / 10)^2 tokens, projection_dim 12
    tokens, pooled = tokens_encoder.encode(images), pooled_encoder.encode(images)
    assert tokens.shape == (2, 10, 12) and pooled.shape == (2, 12)
    np.testing.assert_allclose(tokens[:, 0], pooled, rtol=1e-4, atol=1e-5)


def test_clip_without_a_model_folder_says_how_to_get_one(tmp_path):
    with pytest.raises(ConfigError, match="needs model_dir.*openai/clip-vit-large-patch14"):
        get_encoder("clip_vit_l14")
    with pytest.raises(ConfigError, match="no config.json.*openai/clip-vit-large-patch14"):
        get_encoder("clip_vit_l14_pooled", model_dir=tmp_path / "missing")


def test_clip_text_embeds_labels_in_the_joint_space(tiny_clip):
    import torch
    from transformers import CLIPModel

    texts = ["a photo of a cat", "dog", "a red car on a long wet road at night"]
    encoder = get_encoder("clip_text", model_dir=tiny_clip)
    assert encoder.modality == "text" and encoder.output_shape == (PROJECTION_DIM,)
    first, second = encoder.encode(texts), encoder.encode(texts)
    assert first.shape == (3, PROJECTION_DIM) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first[0], first[1])
    # the same vector as CLIPModel.get_text_features (a tensor before transformers 5, an output object after)
    model = CLIPModel.from_pretrained(str(tiny_clip), local_files_only=True).eval()
    tokens = encoder._model()[0](texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        features = model.get_text_features(**tokens)
    features = features if isinstance(features, torch.Tensor) else features.pooler_output
    np.testing.assert_allclose(first, features.numpy(), rtol=1e-4, atol=1e-5)
    image_encoder = get_encoder("clip_vit_l14_pooled", model_dir=tiny_clip)
    assert image_encoder.output_shape == encoder.output_shape  # one joint space: averageable
    assert encoder.fingerprint != image_encoder.fingerprint
    assert encoder.fingerprint == get_encoder("clip_text", model_dir=tiny_clip).fingerprint


def test_clip_text_without_a_model_folder_or_tokenizer_says_what_is_missing(tmp_path, tiny_clip):
    missing = tmp_path / "missing"
    with pytest.raises(
        ConfigError, match=f"clip_text.*{missing}.*no config.json.*openai/clip-vit-large-patch14"
    ):
        get_encoder("clip_text", model_dir=missing)
    with pytest.raises(ConfigError, match="clip_text.*needs model_dir"):
        get_encoder("clip_text")
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    for file in ("config.json", "model.safetensors"):
        (no_tokenizer / file).symlink_to(tiny_clip / file)
    with pytest.raises(ConfigError, match="no tokenizer.json or vocab.json"):
        get_encoder("clip_text", model_dir=no_tokenizer)


def test_bad_batches_raise():
    encoder = get_encoder("pixel_projection", dim=5)
    with pytest.raises(DataError, match=r"uint8 images of shape \(n, height, width, 3\); found float64"):
        encoder.encode(np.zeros((2, 8, 9, 3)))
    with pytest.raises(DataError, match="takes a list of str; found str"):
        get_encoder("hashed_words").encode("one string")
    assert encoder.encode(np.zeros((0, 8, 9, 3), dtype=np.uint8)).shape == (0, 5)


def test_weight_free_encoders_are_deterministic():
    images = real_images(4, size=24, seed=3).images
    a = get_encoder("pixel_projection", dim=7, seed=2).encode(images)
    b = get_encoder("pixel_projection", dim=7, seed=2).encode(images)
    assert a.shape == (4, 7) and np.array_equal(a, b)
    words = get_encoder("hashed_words", dim=9).encode(["a cat", "a cat", "a dog"])
    assert np.array_equal(words[0], words[1]) and not np.array_equal(words[0], words[2])


def test_pickled_weights_are_refused_with_a_torch_that_would_run_their_code(tmp_path, monkeypatch):
    import torch

    from brainkit.stimuli.encoders import check_pickle_safe, local_model_folder

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    assert local_model_folder("clip_vit_l14", folder, "x")[1] == [
        folder / "pytorch_model.bin"
    ]  # torch >= 2.6
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(
        ConfigError, match=r"pytorch_model.bin is a pickled weight file, and torch 2.5.1\+cpu would"
    ):
        local_model_folder("clip_vit_l14", folder, "x")
    check_pickle_safe([folder / "model.safetensors"])  # safetensors never unpickle
