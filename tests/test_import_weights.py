"""``brainkit import-weights``: released checkpoints read without running code, keys mapped onto ours or a clear
error listing what does not fit, a whole run folder that ``eval`` and resume read like a trained one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from brainkit.checkpoint import read_torch_weights
from brainkit.cli import main
from brainkit.errors import CheckpointError, ConfigError
from brainkit.models.released import map_state
from brainkit.recipes import RecipeOutput, evaluate_run
from brainkit.recipes.imported import import_run, importers
from brainkit.registry import RECIPES
from brainkit.training import Task, TrainingConfig, train_phase
from brainkit.training.phase import FINAL, load_result, write_imported_phase
from brainkit.training.state import load_weights

X = torch.arange(12.0).reshape(4, 3) / 10


class Linear(Task):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(3, 2)

    def n_samples(self) -> int:
        return len(X)

    def load(self, rows, drawn):
        return X[rows]

    def forward(self, batch):
        loss = self.linear(batch).square().mean()
        return {"loss": loss}


@dataclass(frozen=True)
class LinearConfig:
    steps: int = 2


TRAINING = TrainingConfig(steps=2, batch_size=2, progress=False)


@RECIPES.register("linear_for_import_tests", help="test-only recipe: one linear layer, importable")
class LinearRecipe:
    Config = LinearConfig
    PRESETS = {"cpu_small": LinearConfig()}
    RULES = [(r"fc\.(weight|bias)", r"linear.\1"), (r"aux\..*", None)]  # aux: a released head we do not build

    def run(self, config, folder) -> RecipeOutput:
        task = Linear()
        train_phase(task, TRAINING, folder / "train" / "linear", name="linear")
        return RecipeOutput(metrics=self.evaluate(config, folder))

    def evaluate(self, config, folder: Path) -> dict:
        task = Linear()
        load_weights(folder / "train" / "linear" / FINAL, task)
        with torch.no_grad():
            return {"sum": float(task.linear(X).sum())}

    def import_weights(self, config, weights, folder: Path, source: dict) -> list[str]:
        task = Linear()
        task.load_state_dict(map_state(weights, self.RULES, task.state_dict(), source=source["file"]))
        write_imported_phase(task, TRAINING, folder / "train" / "linear", "linear", source)
        return ["imported the linear layer"]


def _released(tmp_path: Path, **changes) -> tuple[Path, dict[str, torch.Tensor]]:
    """A released-style training checkpoint: DDP-prefixed keys nested under state_dict, beside metadata."""
    state = {
        "fc.weight": torch.full((2, 3), 0.5),
        "fc.bias": torch.tensor([1.0, -1.0]),
        "aux.w": torch.ones(4),
    }
    state.update(changes)
    path = tmp_path / "released.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 7}, path)
    return path, state


def test_read_unwraps_one_container_and_the_ddp_prefix(tmp_path) -> None:
    path, state = _released(tmp_path)
    weights = read_torch_weights(path)
    assert sorted(weights) == sorted(state)
    assert torch.equal(weights["fc.bias"], state["fc.bias"])
    plain = tmp_path / "plain.pt"
    torch.save({"a": torch.ones(2)}, plain)
    assert list(read_torch_weights(plain)) == ["a"]


def test_read_refuses_code_objects_and_non_weights(tmp_path) -> None:
    pickled = tmp_path / "code.pth"
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled)  # a whole module: unpickling it would run code
    with pytest.raises(
        CheckpointError, match="pickles torch.nn.modules.linear.Linear, not only tensors.*weights_only=True"
    ):
        read_torch_weights(pickled)
    mixed = tmp_path / "mixed.pth"
    torch.save({"w": torch.ones(2), "epoch": 3}, mixed)
    with pytest.raises(CheckpointError, match=r"\['epoch'\] are not tensors"):
        read_torch_weights(mixed)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_torch_weights(text)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_torch_weights(tmp_path / "absent.pth")


def test_map_state_lists_every_problem_at_once() -> None:
    target = Linear().state_dict()
    released = {"fc.weight": torch.ones(2, 4), "head.w": torch.ones(1), "aux.x": torch.ones(1)}
    with pytest.raises(CheckpointError) as err:
        map_state(released, LinearRecipe.RULES, target, source="r.pth")
    message = str(err.value)
    assert "released keys that no rule maps (1): head.w" in message
    assert "our parameters that no released key fills (1): linear.bias" in message
    assert "fc.weight -> linear.weight: (2, 4) torch.float32, ours (2, 3) torch.float32" in message
    twice = [(r"fc\.(weight|bias)", r"linear.weight"), (r"aux\..*", None)]
    with pytest.raises(CheckpointError, match="filled twice"):
        map_state({"fc.weight": torch.ones(2, 3), "fc.bias": torch.ones(2, 3)}, twice, target)
    transposed = map_state(
        {"fc.weight": torch.ones(3, 2), "fc.bias": torch.zeros(2)},
        LinearRecipe.RULES,
        target,
        transforms={"linear.weight": lambda t: t.T},
    )
    assert transposed["linear.weight"].shape == (2, 3) and transposed["linear.weight"].is_contiguous()


def test_import_writes_a_run_that_eval_and_resume_read(tmp_path, capsys) -> None:
    path, state = _released(tmp_path)
    run = tmp_path / "run"
    assert main(["import-weights", "linear_for_import_tests", str(path), "--out", str(run)]) == 0
    expected = float((X @ state["fc.weight"].T + state["fc.bias"]).sum())  # 0.5 * 6.6 * 2 + (1 - 1) * 4
    assert expected == pytest.approx(6.6)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["metrics"] == {"sum": pytest.approx(expected)}
    assert saved["imported"]["tensors"] == 3 and len(saved["imported"]["sha256"]) == 64
    assert evaluate_run(run) == saved["metrics"]
    assert load_result(run / "train" / "linear").steps == 0
    assert "imported from" in capsys.readouterr().out
    task = Linear()  # train_phase(resume=True) reloads the imported phase as a finished one
    train_phase(task, TRAINING, run / "train" / "linear", resume=True, name="linear")
    assert torch.equal(task.linear.weight, state["fc.weight"])
    assert "linear_for_import_tests" in importers()


def test_import_refusals_leave_nothing(tmp_path) -> None:
    path, _ = _released(tmp_path, **{"fc.bias": torch.ones(3)})
    with pytest.raises(CheckpointError, match=r"fc.bias -> linear.bias: \(3,\)"):
        import_run("linear_for_import_tests", path, tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["released.pth"]
    with pytest.raises(ConfigError, match="has no released weights to import; recipes that do: .*linear_for"):
        import_run("linear_encoding", path, tmp_path / "run")
