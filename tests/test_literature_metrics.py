"""The literature's reconstruction columns: torchvision-layout networks, their loader, MindEye's scores, the CLI.

No real weights are available offline: every network is loaded from a state dict of random weights written by the
test in torchvision's key layout (the layout of the released files), so these tests check the architectures
(parameter counts, tap shapes), the loader and the formulas, not agreement with MindEye's published numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brainkit.cli import main
from brainkit.errors import CheckpointError, ConfigError
from brainkit.evaluation.literature import COLUMNS, correlation_distance, two_way_identification
from brainkit.evaluation.reconstruction import evaluate_reconstructions, reconstruction_metrics
from brainkit.stimuli.reference_networks import (
    NETWORKS,
    ReferenceNetwork,
    load_network_weights,
    mindeye_pixels,
    resolve_weights,
    run_stages,
)
from brainkit.testing import photo_crops

# torchvision's documented num_params (pytorch.org/vision/stable/models: AlexNet_Weights.IMAGENET1K_V1,
# Inception_V3_Weights.IMAGENET1K_V1, EfficientNet_B1_Weights, ResNet50_Weights.IMAGENET1K_V1)
TORCHVISION_PARAMETERS = {
    "alexnet": 61_100_840,
    "inception_v3": 27_161_264,
    "efficientnet_b1": 7_794_184,
    "swav_resnet50": 25_557_032,
}
# tap shapes at MindEye's input sizes (256, 342, 255, 224 px)
TAP_SHAPES = {
    ("alexnet", "features.4"): (192, 31, 31),
    ("alexnet", "features.11"): (256, 15, 15),
    ("inception_v3", "avgpool"): (2048, 1, 1),
    ("efficientnet_b1", "avgpool"): (1280, 1, 1),
    ("swav_resnet50", "avgpool"): (2048, 1, 1),
}


def _random_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return NETWORKS[name].build().state_dict()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """Random-weight files under the released names: AlexNet and EfficientNet-B1 (the whole-path tests)."""
    folder = tmp_path_factory.mktemp("reference_weights")
    for name in ("alexnet", "efficientnet_b1"):
        torch.save(_random_state(name), folder / NETWORKS[name].file_name)
    return folder


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_parameter_counts_equal_torchvision(name):
    with torch.device("meta"):
        model = NETWORKS[name].build()
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMETERS[name]


@pytest.mark.parametrize("name", ["inception_v3", "swav_resnet50"])
def test_state_dict_round_trip_and_tap_shapes(name, tmp_path, one_torch_thread):
    state = _random_state(name, seed=1)
    if name == "swav_resnet50":  # SwAV's file: DDP prefix, its projection and prototype heads, no fc
        state = {f"module.{k}": v for k, v in state.items() if not k.startswith("fc.")}
        state["module.projection_head.0.weight"] = torch.zeros(2048, 2048)
        state["module.prototypes.weight"] = torch.zeros(3000, 128)
    path = tmp_path / NETWORKS[name].file_name
    torch.save(state, path)
    model = load_network_weights(name, NETWORKS[name].build(), path).eval()
    key = "conv1.weight" if name == "swav_resnet50" else "Mixed_7c.branch_pool.conv.weight"
    assert torch.equal(model.state_dict()[key], state[f"module.{key}" if name == "swav_resnet50" else key])
    size = NETWORKS[name].input_size
    with torch.inference_mode():
        taps = run_stages(model.stages(), torch.zeros(1, 3, size, size), NETWORKS[name].taps)
    assert {tap: tuple(value.shape[1:]) for tap, value in taps.items()} == {
        tap: TAP_SHAPES[(name, tap)] for tap in NETWORKS[name].taps
    }


def test_alexnet_and_efficientnet_tap_shapes(weights_dir, one_torch_thread):
    images = photo_crops(n_per_source=1, size=48)[:1]
    for name in ("alexnet", "efficientnet_b1"):
        network = ReferenceNetwork(name, weights_dir / NETWORKS[name].file_name)
        features = network.features(images)
        for tap in NETWORKS[name].taps:
            assert features[tap].shape == (1, int(np.prod(TAP_SHAPES[(name, tap)])))
            assert features[tap].dtype == np.float32 and np.isfinite(features[tap]).all()


def test_loader_refuses_wrong_missing_and_misshapen_keys(tmp_path):
    state = _random_state("efficientnet_b1")
    model = NETWORKS["efficientnet_b1"].build()
    broken = dict(state)
    broken["features.9.weight"] = broken.pop("features.0.0.weight")
    torch.save(broken, tmp_path / "renamed.pth")
    with pytest.raises(
        CheckpointError, match=r"missing: features\.0\.0\.weight.*unexpected: features\.9\.weight"
    ):
        load_network_weights("efficientnet_b1", model, tmp_path / "renamed.pth")
    broken = dict(state, **{"classifier.1.weight": torch.zeros(10, 1280)})
    torch.save(broken, tmp_path / "shape.pth")
    with pytest.raises(
        CheckpointError, match=r"wrong shape: classifier\.1\.weight \(file \(10, 1280\), network"
    ):
        load_network_weights("efficientnet_b1", model, tmp_path / "shape.pth")
    torch.save(_random_state("alexnet"), tmp_path / "alexnet.pth")
    with pytest.raises(CheckpointError, match="efficientnet_b1-c27df63c.pth"):
        load_network_weights("efficientnet_b1", model, tmp_path / "alexnet.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_network_weights("efficientnet_b1", model, tmp_path / "nothing.pth")


def test_resolve_weights_folder_and_mapping(tmp_path, weights_dir):
    assert resolve_weights(weights_dir) == {
        "alexnet": weights_dir / "alexnet-owt-7be5be79.pth",
        "efficientnet_b1": weights_dir / "efficientnet_b1-c27df63c.pth",
    }
    with pytest.raises(ConfigError, match="holds none of the reference networks' files.*swav_800ep_pretrain"):
        resolve_weights(tmp_path)
    with pytest.raises(ConfigError, match="unknown network"):
        resolve_weights({"vgg": weights_dir / "alexnet-owt-7be5be79.pth"})
    with pytest.raises(ConfigError, match="no such file"):
        resolve_weights({"alexnet": tmp_path / "missing.pth"})


def test_mindeye_preprocessing():
    images = np.full((1, 64, 48, 3), 255, np.uint8)
    x = mindeye_pixels(images, 255)
    assert x.shape == (1, 3, 255, 255)
    assert torch.allclose(
        x[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    )
    inception = NETWORKS["inception_v3"].build()
    back = inception._transform_input(mindeye_pixels(images, 8))
    assert torch.allclose(back, torch.ones_like(back), atol=1e-6)  # white -> (1 - 0.5) / 0.5


def test_two_way_identification_hand_computed():
    real = np.array([[0.0, 1, 2], [0, 2, 1], [2, 1, 0]])
    recon = np.array([[0.0, 1, 2], [2, 1, 0], [2, 1, 0]])[:, None]
    # r(recon_i, real_j): recon 0 = real 0 (r = 1, 0.5, -1) -> 2/2; recon 1 = real 2: own r(real 1) = -0.5,
    # others 1 (real 2) and -1 (real 0) -> 1/2; recon 2 = real 2: own 1, others -1, -0.5 -> 2/2
    assert two_way_identification(real, recon)[:, 0].tolist() == [1.0, 0.5, 1.0]
    tied = np.array([[0.0, 1, 2], [0, 1, 2]])  # a distractor as good as the own image is no success
    assert two_way_identification(tied, tied[:, None]).tolist() == [[0.0], [0.0]]
    constant = np.array([[1.0, 1, 1], [0, 1, 2], [2, 1, 0]])  # undefined correlation loses every comparison
    assert two_way_identification(constant, real[:, None])[:, 0].tolist() == [0.0, 0.5, 0.5]


def test_correlation_distance_hand_computed():
    from scipy.spatial.distance import correlation

    real = np.array([[0.0, 1, 2], [1, 0, 0]])
    recon = np.array([[[0.0, 2, 4], [2, 1, 0]], [[1, 0, 0], [0, 1, 0]]])
    expected = [[0.0, 2.0], [0.0, 1.5]]  # r = 1, -1; 1, -0.5
    assert np.allclose(correlation_distance(real, recon), expected)
    assert correlation_distance(real, recon)[1, 1] == pytest.approx(correlation(real[1], recon[1, 1]))
    assert np.isnan(correlation_distance(np.ones((1, 3)), recon[:1, :1]))[0, 0]


def test_identical_pairs_perfect_and_shuffled_near_chance(weights_dir, one_torch_thread):
    photos = photo_crops(n_per_source=2, size=32)  # 10 images from 5 photos
    options = dict(n_way=(2,), trials=5, feature_layers=(), semantic=False, reference_weights=weights_dir)
    metrics, shuffled = evaluate_reconstructions(photos, photos, seed=0, **options)
    assert [c for c in COLUMNS if c in metrics] == ["AlexNet(2)", "AlexNet(5)", "EffNet-B"]
    assert metrics["AlexNet(2)"] == metrics["AlexNet(5)"] == 1.0 and metrics["AlexNet(2)_chance"] == 0.5
    assert metrics["EffNet-B"] == pytest.approx(0.0, abs=1e-6) and metrics["EffNet-B_sd"] < 1e-6
    assert 0.2 < shuffled["AlexNet(2)"] < 0.8 and 0.2 < shuffled["AlexNet(5)"] < 0.8
    assert shuffled["EffNet-B"] > 0.01


def test_distance_grows_with_noise(weights_dir, one_torch_thread):
    photos = photo_crops(n_per_source=1, size=32)
    network = ReferenceNetwork("efficientnet_b1", weights_dir / "efficientnet_b1-c27df63c.pth")
    real = network.features(photos)["avgpool"]
    rng = np.random.default_rng(0)
    distances = []
    for sd in (0, 30, 120):
        noisy = np.clip(photos + rng.normal(0, sd, photos.shape), 0, 255).astype(np.uint8)
        distances.append(correlation_distance(real, network.features(noisy)["avgpool"][:, None]).mean())
    assert distances[0] == pytest.approx(0.0, abs=1e-6) and distances[0] < distances[1] < distances[2]


def test_clip_column_from_a_local_folder(tmp_path, one_torch_thread):
    pytest.importorskip("transformers")
    from clip_fixture import write_tiny_clip

    clip_dir = write_tiny_clip(tmp_path / "clip")
    photos = photo_crops(n_per_source=2, size=32)
    metrics = reconstruction_metrics(photos, photos, n_way=(2,), trials=5, feature_layers=(), semantic=False,
                                     clip_model_dir=clip_dir)  # fmt: skip
    assert metrics["CLIP"] == 1.0 and metrics["clip_2way"] == 1.0
    assert [c for c in COLUMNS if c in metrics] == ["CLIP"]


def test_cli_reference_weights(tmp_path, weights_dir, capsys, one_torch_thread):
    from PIL import Image

    photos = photo_crops(n_per_source=1, size=32)
    for i, photo in enumerate(photos):
        for side in ("real", "recon"):
            (tmp_path / "pairs" / side).mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo).save(tmp_path / "pairs" / side / f"img{i}.png")
    out = tmp_path / "metrics.json"
    args = ["metrics", str(tmp_path / "pairs"), "--trials", "5", "--reference-weights", str(weights_dir)]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "AlexNet(2)" in printed and "100.0% +- 0.0%" in printed and "EffNet-B" in printed
    assert "absent here: Inception:" in printed.replace("\n  ", " ") and "inception_v3_google" in printed
    saved = json.loads(out.read_text())
    assert saved["metrics"]["AlexNet(5)"] == 1.0 and saved["reference_weights"] == str(weights_dir)
    assert main(["metrics", str(tmp_path / "pairs"), "--reference-weights", str(tmp_path / "pairs")]) == 2
    assert "holds none of the reference networks' files" in capsys.readouterr().err
