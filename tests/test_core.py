"""Registry, configs and checkpoints."""

from dataclasses import dataclass, field

import pytest
import torch

from brainkit.checkpoint import load_checkpoint, save_checkpoint
from brainkit.config import apply_overrides, from_dict, load_yaml, to_dict
from brainkit.errors import CheckpointError, ConfigError
from brainkit.registry import Registry


def test_registry_lookup_and_errors():
    reg = Registry("widget")

    @reg.register("lite_mind")
    def make():
        """Makes a widget."""
        return 1

    assert reg.get("lite_mind") is make and reg.describe("lite_mind") == "Makes a widget."
    with pytest.raises(ConfigError, match="Unknown widget 'lite_mnd'. Did you mean 'lite_mind'"):
        reg.get("lite_mnd")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("lite_mind")(make)
    assert make.registry_name == "lite_mind"


def test_registry_discovers_its_package_lazily(monkeypatch):
    import sys

    from brainkit.registry import discover

    reg = Registry("checkpoint helper", packages=("brainkit.models",))
    assert not reg._discovered and reg._entries == {}
    imported = discover("brainkit.models")
    assert "brainkit.models.lite_mind" in imported and "brainkit.models.base" in imported
    assert all("._" not in name for name in imported)  # private modules are skipped
    with pytest.raises(ConfigError, match=r"Unknown checkpoint helper 'x'\. Known checkpoint helpers: \."):
        reg.get("x")  # discovery ran (its package registers into MODELS, not here), the miss lists the names
    assert reg._discovered and "brainkit.models.lite_mind" in sys.modules


def test_model_registry_discovers_every_model_file():
    from brainkit.registry import MODELS

    assert {"lite_mind", "ridge", "cross_modal", "ldm", "vsmae"} <= set(MODELS.names())
    assert MODELS.get("lite_mind").registry_name == "lite_mind"
    with pytest.raises(ConfigError, match="Did you mean 'lite_mind'"):
        MODELS.get("lite_mnd")


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    sizes: tuple[int, ...] = (3, 4)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    limit: int | None = None


def test_config_round_trip_and_coercion():
    config = from_dict(Outer, {"name": "y", "inner": {"lr": 1, "sizes": [5, 6, 7]}})
    assert config.inner.lr == 1.0 and isinstance(config.inner.lr, float)
    assert config.inner.sizes == (5, 6, 7)
    assert from_dict(Outer, to_dict(config)) == config


@pytest.mark.parametrize(
    "data, message",
    [
        ({"nmae": "y"}, r"unknown key\(s\) \['nmae'\]"),
        ({"inner": {"lr": "fast"}}, "Outer.inner.lr: expected a number, found str 'fast'"),
        ({"limit": 2.5}, "Outer.limit: 2.5 fits none of"),
        ({"inner": {"sizes": ["a"]}}, r"sizes\[0\]: expected an integer"),
        ({"name": None}, "Outer.name: expected a string, found NoneType"),
    ],
)
def test_config_rejects_bad_values(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_overrides_and_yaml(tmp_path):
    data = apply_overrides({"inner": {"lr": 0.1}}, ["inner.lr=0.5", "inner.sizes=[1, 2]", "limit=null"])
    assert from_dict(Outer, data) == Outer(inner=Inner(lr=0.5, sizes=(1, 2)), limit=None)
    with pytest.raises(ConfigError, match="not of the form key=value"):
        apply_overrides({}, ["epochs"])
    path = tmp_path / "c.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")


def test_checkpoint_round_trip_and_corruption(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3, dtype=torch.int64)}
    folder = save_checkpoint(tmp_path / "ckpt", state, {"model": "m", "config": {"a": 1}})
    loaded, config = load_checkpoint(folder)
    assert config == {"model": "m", "config": {"a": 1}}
    assert torch.equal(loaded["w"], state["w"]) and torch.equal(loaded["b"], state["b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary leftovers

    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        load_checkpoint(folder)
    (folder / "config.json").write_text('{"model": ')
    with pytest.raises(CheckpointError, match="truncated or not JSON"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")


def test_checkpoint_loading_never_unpickles(tmp_path):
    folder = save_checkpoint(tmp_path / "c", {"w": torch.zeros(2)}, {})
    raw = (folder / "model.safetensors").read_bytes()
    assert b"pickle" not in raw and raw[8:9] == b"{"  # safetensors: 8-byte header length then a JSON header
