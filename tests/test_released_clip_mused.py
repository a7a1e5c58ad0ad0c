"""CLIP-MUSED's released blocks and weights: the released block arithmetic pinned by hand, the released
BrainFormer_MS key names and layouts mapped onto ours (subject tokens reordered by name), and
``brainkit import-weights clip_mused`` writing a run that ``eval`` reads."""

from __future__ import annotations

import json

import pytest
import torch

from brainkit.cli import main
from brainkit.errors import CheckpointError, ConfigError
from brainkit.models import build_model, model_config
from brainkit.models.clip_mused import CLIPMUSED, TokenAttention
from brainkit.models.clip_mused_released import load_released
from brainkit.recipes import evaluate_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(n_subjects: int = 3, n_classes: int = 11, **changes) -> CLIPMUSED:
    torch.manual_seed(0)
    options = {"n_subjects": n_subjects, "n_classes": n_classes, "released": True} | changes
    return build_model("clip_mused", model_config("clip_mused", "testing", options)).eval()


def released_names(model: CLIPMUSED) -> dict[str, torch.Tensor]:
    """``model``'s tensors under the released BrainFormer_MS names (models.py, AttentionBlock.py), written out
    by hand from the released modules: what ``model.state_dict()`` of the released network holds."""
    out: dict[str, torch.Tensor] = {}
    norm = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    for ours, theirs in (("stem.0", "conv1"), ("stem.3", "conv2")):
        out[f"{theirs}.weight"] = model.state_dict()[f"{ours}.weight"]
    for ours, theirs in (("stem.1", "bn1"), ("stem.4", "bn2")):
        out |= {f"{theirs}.{n}": model.state_dict()[f"{ours}.{n}"] for n in norm}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if (
            parts[0] == "layers"
        ):  # layers.L.j.(conv1|bn1|...|shortcut.k).x -> layer{L+1}.j.(...|downsample.k).x
            rest = ".".join(parts[3:]).replace("shortcut", "downsample")
            out[f"layer{int(parts[1]) + 1}.{parts[2]}.{rest}"] = value
        elif parts[0] == "shallow":
            sub = {"channel": "mlp1", "mix": "mlp2"}.get(parts[1], parts[1])
            out[".".join(["attention2", sub, *parts[2:]])] = value
        elif parts[0] == "blocks":
            head = f"attention{int(parts[1]) + 3}"
            sub = {"qkv": "attention.to_qkv", "out": "attention.to_out.0"}.get(parts[2], parts[2])
            if parts[2] == "ff":
                sub = f"FeedForward.net.{ {'0': 0, '2': 3}[parts[3]] }"
                parts = parts[:3] + parts[4:]
            out[".".join([head, sub, *parts[3:]])] = value
    out["hlv_token"] = model.tokens[:, :1].detach().clone()
    out["llv_token"] = model.tokens[:, 1:].detach().clone()
    out["fc1.weight"], out["fc1.bias"] = model.classifier.weight, model.classifier.bias
    return {k: v.clone() for k, v in out.items()}


def test_released_token_block_has_no_inner_residual() -> None:
    """FF output zero but its bias b, BN at identity statistics: the released block gives b / sqrt(1 + eps)
    for every token whatever x; ours adds the residual path, so x shows through."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6)
    outputs = {}
    for released in (True, False):
        block = TokenAttention(6, 2, 3, 7, 0.0, released).eval()
        with torch.no_grad():
            block.ff[2].weight.zero_()
            block.ff[2].bias.copy_(torch.arange(6.0))
            block.norm2.weight.fill_(1.0)
            block.norm2.bias.zero_()
            outputs[released] = block(x)[0]
    expected = torch.arange(6.0) / (1 + 1e-5) ** 0.5
    assert torch.allclose(outputs[True], expected.expand(2, 5, 6), atol=1e-6)
    assert not torch.allclose(outputs[False], expected.expand(2, 5, 6), atol=1e-2)
    assert block.qkv.bias is not None and TokenAttention(6, 2, 3, 7, 0.0, True).qkv.bias is None


def test_released_init_gives_zero_subject_tokens() -> None:
    """The released blocks' BN2 start at weight 0 and bias 0: each block outputs 0, so the subject tokens it
    replaces are 0 and the logits are the classifier's bias; the brain tokens pass on unchanged (x + 0)."""
    model = tiny()
    x, subject = torch.randn(2, *model.config.grid), torch.tensor([0, 2])
    with torch.no_grad():
        out = model(x, subject)
    assert torch.equal(out.high, torch.zeros(2, 6)) and torch.equal(out.low, torch.zeros(2, 6))
    assert torch.allclose(out.logits, model.classifier.bias.expand(2, -1))


def test_released_names_map_onto_ours_with_tokens_reordered() -> None:
    source = tiny()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.1 * torch.randn_like(p))
    released = released_names(source)
    assert released["attention2.mlp1.0.weight"].shape == (2, 5, 1)  # Conv1d(c, c/2, 1) as released
    target = tiny()
    load_released(target, released, "model.pth", subject_rows=[2, 0, 1])
    assert torch.equal(target.tokens[0], source.tokens[2]) and torch.equal(target.tokens[1], source.tokens[0])
    assert torch.equal(target.blocks[1].ff[2].weight, source.blocks[1].ff[2].weight)
    x = torch.randn(2, *source.config.grid)
    with torch.no_grad():  # our subject 1 is released row 0: the same network
        assert torch.equal(target(x, torch.tensor([1, 0])).logits, source(x, torch.tensor([0, 2])).logits)
    with pytest.raises(ConfigError, match="released=True"):
        load_released(tiny(released=False), released, "s")
    with pytest.raises(CheckpointError, match=r"fc1.weight -> classifier.weight: \(11, 12\).*ours \(7, 12\)"):
        load_released(tiny(n_classes=7), released, "model.pth")
    with pytest.raises(ConfigError, match="distinct rows"):
        load_released(tiny(), released, "s", subject_rows=[0, 0, 1])


def test_import_weights_writes_a_clip_mused_run_that_eval_reads(tmp_path, capsys) -> None:
    from brainkit.models import load_model
    from brainkit.recipes import recipe_config
    from brainkit.recipes.clip_mused import build_network, prepare

    overrides = ["model.released=true", 'methods=["clip_mused"]']
    config = recipe_config("clip_mused", "testing", overrides)
    _, samples, grid = prepare(config)  # the testing data: its grid, classes and subjects
    assert list(samples.subjects) == ["sub01", "sub02"]
    source = build_network("clip_mused", config, grid, samples.n_classes, 2, seed=3)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = _file(tmp_path, source)
    sets = [x for o in overrides for x in ("--set", o)]
    swapped = [*sets, "--set", 'released_subjects=["sub02", "sub01"]']
    run = tmp_path / "run"
    args = ["import-weights", "clip_mused", str(path), "--out", str(run), "--preset", "testing"]
    assert main([*args, *swapped]) == 0
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["imported"]["tensors"] == len(released_names(source))
    assert evaluate_run(run) == saved["metrics"]
    assert {row["method"] for row in saved["metrics"]["rows"]} == {"clip_mused", "label_frequency"}
    model, meta = load_model(run / "checkpoints" / "clip_mused")
    assert meta["subjects"] == "sub01,sub02"
    assert torch.equal(model.tokens[0], source.tokens[1])  # sub01 is the released row 1
    bad = tmp_path / "bad"
    assert main([*args[:4], str(bad), *args[5:], *sets, "--set", 'released_subjects=["233326"]']) != 0
    assert "['sub01', 'sub02'] are not among released_subjects" in capsys.readouterr().err
    assert main([*args[:4], str(bad), *args[5:], "--set", "model.released=true"]) != 0
    assert "CLIP-MUSED network alone" in capsys.readouterr().err
    assert not bad.exists()


def _file(tmp_path, model: CLIPMUSED):
    path = tmp_path / "model.pth"
    torch.save(released_names(model), path)
    return path
