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
    with pytest.raises(
        CheckpointError, match="is damaged: model.safetensors has 40 bytes, its manifest says"
    ):
        load_checkpoint(folder)
    (folder / "manifest.json").unlink()  # a checkpoint written before manifests: the format checks still hold
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


def _saved_mlp(tmp_path):
    from brainkit.models import build_model, save_model
    from brainkit.models.base import example_config

    torch.manual_seed(0)
    model = build_model("mindeye_mlp", example_config("mindeye_mlp"))
    return model, save_model(tmp_path / "mlp", model)


@pytest.mark.parametrize(
    "change, message",
    [(lambda t: t.half(), "is torch.float16, the model's is torch.float32; brainkit does not cast"),
     (lambda t: t.to(torch.int8), "is torch.int8, the model's is torch.float32"),
     (lambda t: t.bool(), "is torch.bool, the model's is torch.float32"),
     (lambda t: t.index_fill(0, torch.tensor([0]), float("nan")), r"has \d+ NaN/inf value\(s\)"),
     (lambda t: t.index_fill(0, torch.tensor([0]), float("inf")), r"has \d+ NaN/inf value\(s\)")],
)  # fmt: skip
def test_load_model_refuses_other_dtypes_and_non_finite_weights(tmp_path, change, message):
    from brainkit.checkpoint import load_checkpoint, save_checkpoint
    from brainkit.models import load_model

    model, folder = _saved_mlp(tmp_path)
    state, config = load_checkpoint(folder)
    key = next(k for k in state if k.endswith("weight"))
    save_checkpoint(folder, {**state, key: change(state[key])}, config)
    with pytest.raises(CheckpointError, match=f"tensor '{key}' {message}"):
        load_model(folder)


def test_a_checkpoint_missing_after_an_interrupted_swap_is_put_back(tmp_path, monkeypatch, caplog):
    """Killed between 'old aside' and 'new in': the folder is missing; the reader puts back the newest complete
    copy; with nothing complete beside it, the error says the folder does not exist."""
    import os

    from brainkit.models import load_model

    model, folder = _saved_mlp(tmp_path)
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if str(dst) == str(folder):  # the rename of the new copy in
            raise OSError("simulated kill")
        return real(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        patch.setattr("shutil.rmtree", lambda *a, **k: (_ for _ in ()).throw(OSError("killed")))
        with pytest.raises(OSError, match="simulated kill"):
            save_checkpoint(folder, model.state_dict(), load_checkpoint(folder)[1])
    names = sorted(p.name for p in tmp_path.iterdir())  # the new copy (complete) and the old one, aside
    assert not folder.exists() and names[0].endswith(".tmp") and names[1:] == [f".mlp.old-{os.getpid()}"]
    loaded, _ = load_model(folder)
    assert "put back the complete copy .mlp." in caplog.text and folder.is_dir()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))

    folder.rename(tmp_path / "elsewhere")
    (tmp_path / f".mlp.{os.getpid()}.abc.tmp").mkdir()  # an incomplete copy (no manifest) is not used
    with pytest.raises(CheckpointError, match="Checkpoint folder .*mlp does not exist"):
        load_model(folder)


def test_yaml_reads_floats_keeps_dates_and_refuses_duplicates(tmp_path):
    from brainkit.config import load_config_file

    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-4\nbig: 3E+5\nplain: 0.5\nwhen: 2024-01-01\nname: subj01\n")
    assert load_yaml(path) == {"lr": 1e-4, "big": 3e5, "plain": 0.5, "when": "2024-01-01", "name": "subj01"}
    assert apply_overrides({}, ["training.lr=1e-4", "day=2024-01-01"]) == {
        "training": {"lr": 1e-4},
        "day": "2024-01-01",
    }
    path.write_text("training:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match="duplicate key 'lr'.*line 3"):
        load_yaml(path)
    json_path = tmp_path / "c.json"
    json_path.write_text('{"training": {"epochs": 1, "epochs": 2}}')
    with pytest.raises(ConfigError, match=r"Duplicate key\(s\) \['epochs'\]"):
        load_config_file(json_path)
    with pytest.raises(ConfigError, match=r"Override 'a=\[1,' is not valid YAML"):
        apply_overrides({}, ["a=[1,"])
    with pytest.raises(ConfigError, match="empty key"):
        apply_overrides({}, ["a..b=1"])


def test_config_files_are_limited_in_size_expansion_and_encoding(tmp_path):
    import time

    from brainkit.testing import write_alias_bomb

    bomb = write_alias_bomb(tmp_path / "bomb.yaml")
    assert bomb.stat().st_size <= 600  # expands to 9**9 = 387 million strings
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 100,000 values through its YAML aliases"):
        load_yaml(bomb)
    assert time.perf_counter() - start < 1
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &a [*a]\n")
    with pytest.raises(ConfigError, match="alias that refers to itself"):
        load_yaml(loop)
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "1" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="more than a config may"):
        load_yaml(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text .*save it as UTF-8"):
        load_yaml(latin)


def test_declared_bounds_are_checked_at_construction_and_in_from_dict():
    from brainkit.config import Checked, bounded, choice

    @dataclass(frozen=True)
    class Head(Checked):
        width: int = bounded(8, ge=1, fix="units")
        dropout: float = bounded(0.0, ge=0, lt=1)
        sizes: tuple[int, ...] = bounded((2, 3), gt=0)
        limit: int | None = bounded(None, le=10)
        mode: str = choice("pad", ("pad", "drop"))
        share: float = field(default=0.5, metadata={"range": (0, 1)})
        count: int = field(default=1, metadata={"min": 1})

    @dataclass(frozen=True)
    class Model:
        head: Head = field(default_factory=Head)

    assert Head(limit=None) == Head() and Head(dropout=0.0, share=1.0).share == 1.0
    with pytest.raises(
        ConfigError, match=r"^Head.width=0 is out of range: allowed x >= 1 \(units\)\. Set width"
    ):
        Head(width=0)
    cases = [({"dropout": 1.5}, r"m.head.dropout=1.5 is out of range: allowed 0 <= x < 1\."),
             ({"dropout": float("inf")}, "allowed a finite 0 <= x < 1"), ({"sizes": [4, 0]}, r"sizes\[1\]=0 is out"),
             ({"limit": 11}, "allowed x <= 10"), ({"mode": "crop"}, r"mode='crop' is not allowed: set mode to one of"),
             ({"share": 1.01}, "allowed 0 <= x <= 1"), ({"count": 0}, "allowed x >= 1")]  # fmt: skip
    for data, message in cases:
        with pytest.raises(ConfigError, match=message):
            from_dict(Model, {"head": data}, where="m")
