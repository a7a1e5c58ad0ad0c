"""`brainkit import-weights sim DIR`: SIM's released run folder (four *-best.pt files with SIM's key names,
written here from a model of the recipe's own shapes) becomes a run whose checkpoint holds exactly those weights,
scored by the recipe's evaluation; `brainkit eval` gives the same numbers; bad folders are clear errors."""

from __future__ import annotations

import contextlib

import pytest
import torch
from sim_fixture import synthetic_movie_data

from brainkit.errors import CheckpointError, ConfigError

RELEASED = ["vsmae.encoder_options.released=true"]
BLOCK_NAMES = {"attention.norm": "0.norm", "attention.qkv": "0.to_qkv", "attention.out": "0.to_out.0",
               "norm": "1.net.0", "mlp.fc1": "1.net.1", "mlp.fc2": "1.net.4"}  # fmt: skip
SIT_NAMES = {"patch_embedding.weight": "encoder.to_patch_embedding.1.weight",
             "patch_embedding.bias": "encoder.to_patch_embedding.1.bias", "norm.weight": "encoder.transformer.norm.weight",
             "norm.bias": "encoder.transformer.norm.bias", "head_norm.weight": "encoder.mlp_head.0.weight",
             "head_norm.bias": "encoder.mlp_head.0.bias", "cls_token": "cls_token"}  # fmt: skip
HEAD_NAMES = {"project": "projection", "fc": "fc", "norm": "layer_norm"}


@pytest.fixture(scope="module")
def movie():
    return synthetic_movie_data()


@contextlib.contextmanager
def quiet_sim(movie):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("brainkit.recipes.sim.load_movie_data", lambda config: movie)
        patch.setattr("brainkit.report.sim.write_sim_report", lambda *a: None)
        yield


def released_files(model) -> dict[str, dict[str, torch.Tensor]]:
    """``model`` (our SIM) as SIM's four saved parts, under SIM's names (fMRIEncoder, Wrapper)."""
    parts = {"fmri-encoder-best.pt": {}, "fmri-wrapper-best.pt": {}, "video-wrapper-best.pt": {},
             "audio-wrapper-best.pt": {}}  # fmt: skip
    for key, value in model.state_dict().items():
        head, rest = key.split(".", 1)
        if head == "encoder":
            if rest.startswith("blocks."):
                _, i, tail = rest.split(".", 2)
                stem, leaf = tail.rsplit(".", 1)
                name = f"encoder.transformer.layers.{i}.{BLOCK_NAMES[stem]}.{leaf}"
            else:
                name = SIT_NAMES[rest]
            parts["fmri-encoder-best.pt"][name] = value.clone()
        elif head.endswith("_head"):
            module, leaf = rest.split(".")
            parts[f"{head[: -len('_head')]}-wrapper-best.pt"][f"{HEAD_NAMES[module]}.{leaf}"] = value.clone()
    parts["fmri-encoder-best.pt"]["encoder.pos_embedding"] = model.encoder.positions[None].clone()
    return parts


def write_released(folder, model, extra: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, state in released_files(model).items():
        if extra and name in extra:
            state = state | extra[name]
        torch.save({"model_state_dict": state, "epoch": 3}, folder / name)


def source_model(movie, seed: int = 7):
    from brainkit.recipes import recipe_config
    from brainkit.recipes.sim import build_sim, prepare

    config = recipe_config("sim", "testing", ["inits=[released]", *RELEASED])
    split = prepare(config, movie)
    torch.manual_seed(seed)
    return build_sim(config, split["encoder"], movie.video.shape[-1], movie.audio.shape[-1])


def test_sims_released_folder_becomes_a_run_with_those_weights(tmp_path, movie) -> None:
    from brainkit.models import load_model
    from brainkit.recipes import evaluate_run
    from brainkit.recipes.imported import import_run

    source = source_model(movie)
    write_released(tmp_path / "released", source)
    with quiet_sim(movie):
        result = import_run(
            "sim", tmp_path / "released", tmp_path / "run", preset="testing", overrides=RELEASED
        )
        again = evaluate_run(tmp_path / "run")
    loaded, meta = load_model(tmp_path / "run" / "checkpoints" / "sim_released")
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert meta["init"] == "released" and len(meta["imported"]) == 64
    assert again == result.metrics
    import brainkit

    run = brainkit.load(tmp_path / "run")  # the imported network predicts, from the saved state
    frames = movie.fmri[0, 0]
    assert run.predict(frames, normalised=True).shape == (len(frames) - 8, source.config.embedding_dim)
    assert "top1 released weights_mean" in result.metrics["main"][0]  # the released init's column
    assert any("SIM imported from released" in note for note in result.notes)
    # One file of the whole CLIPfMRIVideoAudio state dict (its frozen VideoMAE entries are named, not imported).
    prefixes = {"fmri-encoder-best.pt": "fmri_encoder.", "fmri-wrapper-best.pt": "fmri_wrapper.",
                "video-wrapper-best.pt": "video_wrapper.", "audio-wrapper-best.pt": "audio_wrapper."}  # fmt: skip
    whole = {prefixes[f] + k: v for f, part in released_files(source).items() for k, v in part.items()}
    whole |= {"logit_scale": torch.tensor(2.65), "video_encoder.backbone.weight": torch.ones(3)}
    torch.save(whole, tmp_path / "sim_whole.pt")
    with quiet_sim(movie):
        single = import_run(
            "sim", tmp_path / "sim_whole.pt", tmp_path / "run2", preset="testing", overrides=RELEASED
        )
    assert single.metrics == result.metrics
    assert any("Not imported: video_encoder" in note for note in single.notes)


def test_bad_released_folders_and_runs_are_clear_errors(tmp_path, movie) -> None:
    from brainkit.recipes import run_recipe
    from brainkit.recipes.imported import import_run

    source = source_model(movie)
    write_released(tmp_path / "partial", source)
    (tmp_path / "partial" / "audio-wrapper-best.pt").unlink()
    with quiet_sim(movie), pytest.raises(ConfigError, match=r"lacks \['audio-wrapper-best.pt'\]"):
        import_run("sim", tmp_path / "partial", tmp_path / "r1", preset="testing", overrides=RELEASED)
    write_released(tmp_path / "extra", source, {"fmri-wrapper-best.pt": {"extra.weight": torch.ones(2)}})
    with quiet_sim(movie), pytest.raises(CheckpointError, match="fmri_wrapper.extra.weight"):
        import_run("sim", tmp_path / "extra", tmp_path / "r2", preset="testing", overrides=RELEASED)
    write_released(tmp_path / "ok", source)
    with quiet_sim(movie), pytest.raises(ConfigError, match="released=True"):
        import_run("sim", tmp_path / "ok", tmp_path / "r3", preset="testing")  # our SiT layout: refused
    with quiet_sim(movie), pytest.raises(ConfigError, match="inits=\\[released\\] names weights imported"):
        run_recipe("sim", folder=tmp_path / "r4", preset="testing", overrides=["inits=[released]"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extra", "ok", "partial"]  # no run folder left
