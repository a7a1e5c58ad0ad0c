import dataclasses
import importlib.util
import json
import re

import numpy as np
import pytest
import torch

from brainkit.errors import CheckpointError, ConfigError, DataError
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig
from brainkit.testing import (
    TinyConfig,
    TinyMLP,
    distributed_fit_worker,
    one_and_two_processes,
    tiny_decoding_dataset,
)
from brainkit.training import Arrays, TrainingConfig, fit, learning_rate, predict, top1_accuracy


def _arrays(subject="s1"):
    data = tiny_decoding_dataset()
    train = data.train[subject]
    y = data.stimuli.embedding("toy")[data.stimuli.positions(train.stimulus_ids)]
    test = data.test[subject]
    y_test = data.stimuli.embedding("toy")[data.stimuli.positions(test.stimulus_ids)]
    return Arrays(train.values, y), Arrays(test.values, y_test, name="val")


def _model(n_voxels=23, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return TinyMLP(TinyConfig(n_voxels=n_voxels, output_shape=(11,), dropout=dropout))


def test_fit_learns_and_logs(tmp_path):
    train, val = _arrays()
    model = _model()
    before = top1_accuracy(predict(model, val.x), val.y)
    config = TrainingConfig(epochs=15, batch_size=40, lr=1e-2, progress=False)
    result = fit(model, InfoNCE(InfoNCEConfig(temperature=0.1)), train, config, val=val, out_dir=tmp_path)
    assert len(result.history) == 15
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.history[-1]["val_top1"] > max(before, 3 / len(val.x))
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 16))
    assert (tmp_path / "state" / "model.safetensors").is_file()
    assert (tmp_path / "state" / "optimizer.safetensors").is_file()
    assert not list(tmp_path.glob(".*tmp"))


def test_seeded_runs_are_identical():
    train, _ = _arrays()
    config = TrainingConfig(epochs=3, batch_size=32, progress=False)
    weights = []
    for _ in range(2):
        model = _model(dropout=0.2)
        fit(model, InfoNCE(), train, config)
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_resume_continues_exactly(tmp_path):
    train, val = _arrays()
    full = _model(dropout=0.3)
    config = TrainingConfig(epochs=4, batch_size=32, progress=False)
    fit(full, InfoNCE(), train, config, val=val, out_dir=tmp_path / "full")

    part = _model(dropout=0.3)
    fit(part, InfoNCE(), train, config, out_dir=tmp_path / "part", until_epoch=2)  # as if the job was stopped
    resumed = _model(dropout=0.3, seed=99)  # different init: everything must come from the checkpoint
    result = fit(resumed, InfoNCE(), train, config, val=val, out_dir=tmp_path / "part", resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_without_state_raises(tmp_path):
    train, _ = _arrays()
    with pytest.raises(CheckpointError, match="Cannot resume"):
        fit(
            _model(),
            InfoNCE(),
            train,
            TrainingConfig(epochs=1, progress=False),
            out_dir=tmp_path,
            resume=True,
        )


def test_arrays_reject_nan_and_mismatch():
    x = np.zeros((5, 3), np.float32)
    with pytest.raises(DataError, match="5 brain samples but 4 targets"):
        Arrays(x, np.zeros((4, 2), np.float32))
    x[2, 1] = np.nan
    with pytest.raises(DataError, match="brain data contain NaN"):
        Arrays(x, np.zeros((5, 2), np.float32))


def test_learning_rate_schedule():
    config = TrainingConfig(epochs=10, lr=1.0, min_lr=0.1, warmup_epochs=2)
    lrs = [learning_rate(config, step, 5) for step in range(50)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=2e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["tiny", "lite_mind", "linear_encoding"])
def test_two_process_gloo_matches_single_process(tmp_path, model_name):
    """Global batch 40 split over 2 gloo processes (negatives gathered) == one process with batch 40: the
    supervised task of Lite-Mind (its testing preset) and of the linear encoding model, and a tiny MLP."""
    one, two = one_and_two_processes(distributed_fit_worker, tmp_path, 3, 40, model_name)
    a, b = one["weights"], two["weights"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-5)


def test_torch_threads_sets_and_restores_the_count():
    from brainkit.training import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    try:
        with torch_threads(1):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.get_num_threads() == before


# --- the one trainer: steps, accumulation, best checkpoint, resume checks, schedules -----------------------------


def _task(n=37, seed=0):
    from brainkit.training import Task

    class Masked(Task):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randn(n, 5, generator=g)
            self.y = self.x @ torch.randn(5, 3, generator=g)
            torch.manual_seed(seed)
            self.linear = torch.nn.Linear(5, 3)

        def n_samples(self):
            return n

        def draw(self, rows, generator):
            return torch.rand(len(rows), 5, generator=generator) > 0.2

        def load(self, rows, drawn):
            return self.x[rows] * drawn, self.y[rows]

        def forward(self, batch):
            x, y = batch
            mse = ((self.linear(x) - y) ** 2).mean()
            return {"loss": mse, "mse": mse.detach()}

        def validate(self):
            return {"val_mse": float(((self.linear(self.x) - self.y) ** 2).mean())}

    return Masked()


def test_steps_count_optimiser_steps_and_validate_every():
    from brainkit.training import train

    task = _task()
    config = TrainingConfig(steps=7, batch_size=8, validate_every=3, warmup_steps=2, progress=False, lr=0.05)
    result = train(task, config)
    assert result.steps == 7
    assert [r["step"] for r in result.history] == [3, 6, 7]  # 4 batches of 8 per epoch: steps cross epochs
    assert result.history[0]["epoch"] == 0.75
    assert {"train_loss", "train_mse", "val_mse", "lr"} <= set(result.history[-1])
    assert result.history[-1]["val_mse"] < result.history[0]["val_mse"]


@pytest.mark.parametrize("mode", ["reuse", "release"])
def test_the_trainer_trains_inside_cpu_heap(monkeypatch, mode):
    """train() enters training.heap.cpu_heap with training.cpu_memory on a CPU run, and has left it when done."""
    from brainkit.training import heap, loop

    seen, original = [], loop.cpu_heap

    def spy(asked):
        seen.append(asked)
        return original(asked)

    monkeypatch.setattr(loop, "cpu_heap", spy)
    loop.train(_task(), TrainingConfig(steps=2, batch_size=8, progress=False, cpu_memory=mode))
    assert seen == [mode]
    assert heap._depth == 0


def test_accumulation_equals_a_big_batch_for_a_mean_loss():
    """2 x 8 rows accumulated == one batch of 16 rows when the loss is a per-row mean (same order, same draws)."""
    from brainkit.training import Task, train

    class Plain(Task):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(3)
            self.x, self.y = torch.randn(32, 4, generator=g), torch.randn(32, 2, generator=g)
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(4, 2)

        def n_samples(self):
            return 32

        def batches(self, epoch, batch_size, generator):  # the same 16-row order whatever the micro-batch
            order = torch.randperm(32, generator=generator)
            return [order[i : i + batch_size] for i in range(0, 32, batch_size)]

        def load(self, rows, drawn):
            return self.x[rows], self.y[rows]

        def forward(self, batch):
            return ((self.linear(batch[0]) - batch[1]) ** 2).mean()

    big, small = Plain(), Plain()
    train(big, TrainingConfig(epochs=2, batch_size=16, progress=False, grad_clip=None, weight_decay=0))
    train(small, TrainingConfig(epochs=2, batch_size=8, accumulate=2, progress=False, grad_clip=None,
                                weight_decay=0))  # fmt: skip
    for a, b in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_best_checkpoint_is_kept_beside_the_last(tmp_path):
    from brainkit.training import train
    from brainkit.training.state import load_weights

    task = _task()
    config = TrainingConfig(
        epochs=6, batch_size=8, lr=0.05, monitor="val_mse", monitor_mode="min", progress=False
    )
    result = train(task, config, out_dir=tmp_path)
    assert result.best["val_mse"] == min(r["val_mse"] for r in result.history)
    meta = json.loads((tmp_path / "best" / "config.json").read_text())
    assert meta["step"] == result.best["step"]
    fresh = _task()
    load_weights(tmp_path / "best", fresh)
    with torch.no_grad():
        assert fresh.validate()["val_mse"] == pytest.approx(result.best["val_mse"], rel=1e-6)


def test_unknown_monitor_raises():
    from brainkit.errors import ConfigError
    from brainkit.training import train

    with pytest.raises(ConfigError, match="training.monitor='val_top5' is not among"):
        train(_task(), TrainingConfig(epochs=1, batch_size=8, monitor="val_top5", progress=False))


def test_resume_mid_epoch_by_steps_is_exact(tmp_path):
    from brainkit.training import train

    config = TrainingConfig(steps=9, batch_size=8, validate_every=2, progress=False, lr=0.05)
    full = _task()
    whole = train(full, config, out_dir=tmp_path / "full")
    part = _task()
    train(part, config, out_dir=tmp_path / "part", until_step=5)  # stops inside a period and inside an epoch
    resumed = _task()
    torch.nn.init.zeros_(resumed.linear.weight)  # everything must come from the checkpoint
    again = train(resumed, config, out_dir=tmp_path / "part", resume=True)
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in whole.history]


def test_resume_with_changed_settings_raises(tmp_path):
    from brainkit.errors import ConfigError
    from brainkit.training import train

    config = TrainingConfig(epochs=4, batch_size=8, progress=False)
    train(_task(), config, out_dir=tmp_path, until_epoch=2)
    changed = TrainingConfig(epochs=4, batch_size=8, progress=False, lr=0.5, seed=3)
    with pytest.raises(ConfigError, match=r"other settings \(lr: 0.001 -> 0.5, seed: 0 -> 3\)"):
        train(_task(), changed, out_dir=tmp_path, resume=True)


def test_non_finite_loss_stops_with_advice():
    from brainkit.training import train

    task = _task()
    task.y[0, 0] = float("inf")
    with pytest.raises(DataError, match="training loss became .* at step 1; lower training.lr"):
        train(task, TrainingConfig(epochs=1, batch_size=37, progress=False))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epochs", 0, "epochs=0 is out of range: allowed x >= 1"), ("epochs", -1, "epochs=-1 is out of range"),
     ("batch_size", -5, "batch_size=-5 is out of range: allowed x >= 1"), ("batch_size", 0, "batch_size=0"),
     ("checkpoint_every", 0, "checkpoint_every=0 is out of range"), ("threads", -1, "threads=-1 is out of range"),
     ("optimizer", "sgd", r"optimizer='sgd' is not allowed: set optimizer to one of \('adamw', 'adam'\)"),
     ("lr", float("nan"), "lr=nan is out of range: allowed a finite x > 0"), ("accumulate", 0, "accumulate=0"),
     ("betas", (0.9, 1.0), r"betas\[1\]=1.0 is out of range: allowed 0 <= x < 1"),
     ("min_lr", 1.0, r"min_lr=1.0 is out of range: allowed 0 <= x <= lr")],
)  # fmt: skip
def test_out_of_range_settings_raise(field, value, message):
    from brainkit.errors import ConfigError

    with pytest.raises(ConfigError, match=f"training.{message}"):
        TrainingConfig(**{field: value})


def test_step_schedule_and_parameter_group_scales():
    from brainkit.training import Task, train

    config = TrainingConfig(
        epochs=10, lr=1.0, schedule="step", lr_step_epochs=4, lr_decay=0.5, warmup_epochs=0
    )
    assert [learning_rate(config, s, 3) for s in (0, 11, 12, 24)] == [1.0, 1.0, 0.5, 0.25]

    class Groups(Task):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)

        def n_samples(self):
            return 4

        def load(self, rows, drawn):
            return torch.ones(len(rows), 2)

        def forward(self, x):
            return (self.a(x) + self.b(x)).pow(2).mean()

        def parameter_groups(self):
            return [{"params": self.a.parameters(), "lr_scale": 0.1},
                    {"params": self.b.parameters(), "frozen_steps": 2}]  # fmt: skip

    task = Groups()
    before = [p.detach().clone() for p in task.b.parameters()]
    train(task, TrainingConfig(steps=2, batch_size=4, schedule="constant", warmup_epochs=0, progress=False,
                               weight_decay=0))  # fmt: skip
    for a, b in zip(before, task.b.parameters()):
        assert torch.equal(a, b)  # frozen for the first 2 steps


def test_bf16_mixed_precision_trains_and_keeps_fp32_weights():
    from brainkit.training import train

    task = _task()
    result = train(
        task, TrainingConfig(epochs=3, batch_size=8, lr=0.05, precision="bf16-mixed", progress=False)
    )
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert task.linear.weight.dtype == torch.float32  # autocast in the forward only


# --- BatchNorm across processes -------------------------------------------------------------------------------


def _with_batchnorm():
    return torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Sequential(torch.nn.BatchNorm3d(2))
    )


def test_synced_batchnorm_converts_in_place_and_puts_the_original_layers_back():
    from brainkit.training.batchnorm import synced_batchnorm

    module = _with_batchnorm()
    parameters, buffers = list(module.parameters()), list(module.buffers())
    keys = list(module.state_dict())
    with synced_batchnorm(module, enabled=True, device_type="cuda"):
        assert isinstance(module[1], torch.nn.SyncBatchNorm) and isinstance(
            module[2][0], torch.nn.SyncBatchNorm
        )
        assert all(a is b for a, b in zip(module.parameters(), parameters))  # the same tensors, not copies
        with torch.no_grad():
            module[1].running_mean.fill_(0.5)  # as if trained
            module[1].weight.fill_(2.0)
    assert type(module[1]) is torch.nn.BatchNorm1d and type(module[2][0]) is torch.nn.BatchNorm3d
    assert all(a is b for a, b in zip(module.parameters(), parameters))
    assert all(a is b for a, b in zip(module.buffers(), buffers)) and list(module.state_dict()) == keys
    assert torch.equal(module[1].running_mean, torch.full((3,), 0.5)) and module[1].weight[0] == 2.0
    assert module.train()[1](torch.randn(5, 3)).shape == (
        5,
        3,
    )  # a plain layer again: no process group needed


def test_synced_batchnorm_leaves_cpu_and_disabled_runs_alone(caplog):
    from brainkit.training.batchnorm import synced_batchnorm

    module = _with_batchnorm()
    with caplog.at_level("WARNING"), synced_batchnorm(module, enabled=True, device_type="cpu"):
        assert type(module[1]) is torch.nn.BatchNorm1d  # torch's SyncBatchNorm raises for CPU inputs
    assert "2 BatchNorm layers keep per-process statistics" in caplog.text
    with synced_batchnorm(module, enabled=False):
        assert type(module[1]) is torch.nn.BatchNorm1d
    assert TrainingConfig().sync_batchnorm


def test_train_phase_finishes_reloads_and_resumes_exactly(tmp_path, monkeypatch):
    """A phase killed after 3 steps resumes bit for bit; a finished phase is reloaded, not trained again; its
    state is gone once it finished; changed settings on a finished phase are refused."""
    from brainkit.errors import CheckpointError
    from brainkit.testing import SimulatedKill, killing_train
    from brainkit.training import phase, phase_done, read_history, train_phase

    config = TrainingConfig(steps=8, batch_size=8, validate_every=2, progress=False, lr=0.05)
    full = _task()
    whole = train_phase(full, config, tmp_path / "full", name="masked")
    assert phase_done(tmp_path / "full") and not (tmp_path / "full" / "state").exists()
    assert read_history(tmp_path / "full") == whole.history

    calls = []
    monkeypatch.setattr(phase, "train", killing_train("masked", until_step=3, calls=calls))
    with pytest.raises(SimulatedKill):
        train_phase(_task(), config, tmp_path / "part", name="masked")
    assert (tmp_path / "part" / "state").is_dir() and not phase_done(tmp_path / "part")
    monkeypatch.setattr(phase, "train", killing_train("nothing", calls=calls))
    resumed = _task()
    torch.nn.init.zeros_(resumed.linear.weight)  # everything must come from the state
    again = train_phase(resumed, config, tmp_path / "part", resume=True, name="masked")
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in whole.history]

    calls.clear()
    reloaded = _task()
    torch.nn.init.zeros_(reloaded.linear.weight)
    result = train_phase(reloaded, config, tmp_path / "part", resume=True, name="masked")
    assert calls == [] and result.history == again.history
    for a, b in zip(full.parameters(), reloaded.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="other training settings"):
        train_phase(_task(), TrainingConfig(steps=9, batch_size=8, progress=False), tmp_path / "part",
                    resume=True, name="masked")  # fmt: skip
    # a kill after final/ but before done.json: the loop resumes at its last step and the phase finishes again
    (tmp_path / "part" / "done.json").unlink()
    monkeypatch.setattr(phase, "train", killing_train("masked", until_step=8))
    with pytest.raises(SimulatedKill):
        train_phase(_task(), config, tmp_path / "late", name="masked")
    monkeypatch.setattr(phase, "train", killing_train("nothing"))
    late = _task()
    torch.nn.init.zeros_(late.linear.weight)
    train_phase(late, config, tmp_path / "late", resume=True, name="masked")
    for a, b in zip(full.parameters(), late.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- crash windows: a failure injected at every write of a phase -------------------------------------------------


class FailFrom:
    """Patches ``os.replace``, ``os.rename`` and ``shutil.rmtree``: call number ``fail_at`` and every later one
    raise OSError, as if the process died there (nothing after that point reaches the disk; the clean-up code
    that still runs cannot repair anything either), or with ``once`` that call alone (a passing error the
    clean-up code then acts on). ``calls`` records (function, first argument) of each call."""

    def __init__(self, monkeypatch, fail_at=None, once=False):
        import os
        import shutil

        self.calls, self.fail_at, self.once = [], fail_at, once
        for module, name in ((os, "replace"), (os, "rename"), (shutil, "rmtree")):
            monkeypatch.setattr(module, name, self._wrap(name, getattr(module, name)))

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            self.calls.append((name, str(args[0])))
            n = len(self.calls)
            if self.fail_at is not None and (n == self.fail_at or (n > self.fail_at and not self.once)):
                raise OSError(f"simulated kill at {name} call {len(self.calls)}")
            return real(*args, **kwargs)

        return call


def _complete_copies(folder, name):
    """The copies of ``folder/name`` (in place, renamed aside or temporary) whose manifest checks."""
    from brainkit.checkpoint import manifest_problem

    copies = [folder / name, *folder.glob(f".{name}.*")]
    return [p for p in copies if p.is_dir() and manifest_problem(p) is None]


@pytest.mark.parametrize("once", [False, True], ids=["killed", "one-error"])
def test_a_failure_at_every_write_resumes_exactly_or_says_why(tmp_path, monkeypatch, once):
    """Kill a phase at each rename / removal of its checkpoint writes in turn (state/ every step, best/, final/,
    done.json, history.jsonl): from the first complete state on, at least one complete state (or the finished
    phase) is always on disk, and --resume ends bit for bit where the uninterrupted run does; before it, the
    loop's resume says clearly that there is nothing to resume (the phase then trains from the start)."""
    import re

    from brainkit.checkpoint import load_tensors
    from brainkit.errors import CheckpointError
    from brainkit.training import read_history, train, train_phase

    config = TrainingConfig(steps=3, batch_size=8, validate_every=1, progress=False, lr=0.05, monitor="val_mse",
                            monitor_mode="min")  # fmt: skip
    full = _task()
    whole = train_phase(full, config, tmp_path / "full", name="masked")
    best_whole = load_tensors(tmp_path / "full" / "best" / "model.safetensors")
    with monkeypatch.context() as patch:
        clean = FailFrom(patch)
        train_phase(_task(), config, tmp_path / "count", name="masked")
    swaps = [
        i
        for i, (f, src) in enumerate(clean.calls)
        if f == "replace" and re.search(r"/\.state\.\d+\.\w+\.tmp$", src)
    ]
    assert len(swaps) == 3 and any(f == "rmtree" and ".state.old-" in src for f, src in clean.calls)
    for fail_at in range(1, len(clean.calls) + 1):
        folder = tmp_path / f"killed{fail_at}"
        with monkeypatch.context() as patch:
            FailFrom(patch, fail_at, once)
            try:
                train_phase(_task(), config, folder, name="masked")
            except OSError:
                pass
        done = (folder / "done.json").is_file() and _complete_copies(folder, "final")
        states = _complete_copies(folder, "state")
        if fail_at > swaps[0] + 1:  # a complete state had been written: it is never lost
            assert states or done, (
                fail_at,
                clean.calls[fail_at - 1],
                sorted(p.name for p in folder.iterdir()),
            )
        if not states and not done:
            with pytest.raises(
                CheckpointError, match=r"Cannot resume: .* \(no complete checkpoint was written"
            ):
                train(_task(), config, out_dir=folder, resume=True, name="masked")
        resumed = _task()  # with nothing to resume, the phase trains from this initialisation
        if states or done:
            torch.nn.init.zeros_(resumed.linear.weight)  # everything must come from the disk
        again = train_phase(resumed, config, folder, resume=True, name="masked")
        for a, b in zip(full.parameters(), resumed.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"fail_at={fail_at}")
        assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in whole.history]
        assert [r["train_loss"] for r in read_history(folder)] == [r["train_loss"] for r in whole.history]
        assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], fail_at  # no leftovers
        best = load_tensors(folder / "best" / "model.safetensors")
        assert all(torch.equal(v, best_whole[k]) for k, v in best.items()), fail_at


def test_a_damaged_state_is_refused_not_resumed(tmp_path):
    from brainkit.errors import CheckpointError
    from brainkit.training import train

    config = TrainingConfig(steps=4, batch_size=8, progress=False)
    train(_task(), config, out_dir=tmp_path, until_step=2)
    optimizer = tmp_path / "state" / "optimizer.safetensors"
    raw = bytearray(optimizer.read_bytes())
    raw[-3] ^= 0x01  # one bit of one moment
    optimizer.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged: optimizer.safetensors does not match the sha256"):
        train(_task(), config, out_dir=tmp_path, resume=True)
    (tmp_path / "state" / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="damaged: it has no manifest.json"):
        train(_task(), config, out_dir=tmp_path, resume=True)


# --- early stopping, the best weights at the end, Lightning loggers, plain progress lines -------------------------


def test_early_stopping_stops_after_patience_periods_and_resumes_stopped(tmp_path):
    from brainkit.training import train

    # monitor_mode "max" on a falling validation MSE: the first period stays the best, so the run stops when
    # 2 more periods have not beaten it: after step 6 of 20
    config = TrainingConfig(steps=20, batch_size=8, validate_every=2, progress=False, lr=0.05,
                            monitor="val_mse", monitor_mode="max", patience=2)  # fmt: skip
    result = train(_task(), config, out_dir=tmp_path)
    assert result.stopped_early and result.steps == 6 and [r["step"] for r in result.history] == [2, 4, 6]
    again = train(_task(), config, out_dir=tmp_path, resume=True)  # nothing left to train
    assert again.steps == 6 and again.stopped_early and again.history == result.history
    never = train(_task(), dataclasses.replace(config, monitor_mode="min", min_delta=0.0, patience=50))
    assert not never.stopped_early and never.steps == 20


def test_restore_best_ends_with_the_best_weights(tmp_path):
    from brainkit.training import train

    # "max" of a falling validation MSE: the best period is the first, far from the last
    config = TrainingConfig(steps=12, batch_size=8, validate_every=1, progress=False, lr=0.05,
                            monitor="val_mse", monitor_mode="max", restore_best=True)  # fmt: skip
    for out in (tmp_path, None):
        task = _task()
        result = train(task, config, out_dir=out)
        assert result.best["step"] == 1 and result.history[-1]["val_mse"] < result.best["val_mse"] - 0.1
        assert task.validate()["val_mse"] == pytest.approx(result.best["val_mse"], rel=1e-6)
    with pytest.raises(ConfigError, match="need training.monitor"):
        TrainingConfig(restore_best=True)


def test_csv_and_tensorboard_loggers_hold_every_record_once_after_a_resume(tmp_path):
    import csv

    from brainkit.training import train

    kinds = ("csv", "tensorboard") if importlib.util.find_spec("tensorboardX") else ("csv",)
    config = TrainingConfig(steps=8, batch_size=8, validate_every=2, progress=False, loggers=kinds)
    train(_task(), config, out_dir=tmp_path, until_step=4)
    result = train(_task(), config, out_dir=tmp_path, resume=True)
    with open(tmp_path / "logs" / "csv" / "version_0" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert [float(r["train_loss"]) for r in rows] == pytest.approx([r["train_loss"] for r in result.history])
    if "tensorboard" in kinds:
        assert list((tmp_path / "logs" / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    with pytest.raises(ConfigError, match="unknown \\['wandb'\\]"):
        TrainingConfig(loggers=("wandb",))


def test_progress_lines_when_stderr_is_not_a_terminal(capsys):
    from brainkit.training import train

    train(_task(), TrainingConfig(steps=4, batch_size=8, validate_every=2, lr=0.05), name="masked")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and re.fullmatch(
        r"masked: step 4/4 \(100 %\), epoch \d+, \d+ s  train_loss \S+  train_mse \S+  val_mse \S+", lines[-1]
    )


def test_a_state_saved_before_a_setting_existed_resumes_with_its_default(tmp_path):
    from brainkit.training import train
    from brainkit.training.loop import _check_resume

    config = TrainingConfig(steps=4, batch_size=8, progress=False)
    train(_task(), config, out_dir=tmp_path, until_step=2)
    from brainkit.config import to_dict

    old = {k: v for k, v in to_dict(config).items() if k not in ("restore_best", "patience", "loggers")}
    _check_resume({"training": old}, config, tmp_path)  # no complaint: the missing keys had their defaults
    with pytest.raises(ConfigError, match="restore_best: False -> True"):
        _check_resume(
            {"training": old}, dataclasses.replace(config, monitor="val_mse", restore_best=True), tmp_path
        )


def test_compiled_training_reaches_the_eager_weights_and_checkpoints_alike(tmp_path):
    """training.compile: the task runs through torch.compile (Inductor); without dropout the steps compute what the
    eager ones do, and the checkpoint holds the uncompiled task's keys: an eager resume continues it."""
    train, val = _arrays()
    config = TrainingConfig(epochs=2, batch_size=40, lr=1e-2, progress=False)
    eager = _model()
    fit(eager, InfoNCE(), train, config)
    compiled = _model()
    out = tmp_path / "run"
    from torch._dynamo.utils import counters

    counters.clear()
    fit(compiled, InfoNCE(), train, dataclasses.replace(config, compile=True), out_dir=out, until_epoch=1)
    assert counters["stats"]["unique_graphs"] >= 1  # the steps went through Dynamo
    resumed = _model(seed=99)  # different init: everything comes from the compiled run's checkpoint
    result = fit(resumed, InfoNCE(), train, config, val=val, out_dir=out, resume=True)  # compile -> eager
    assert [r["epoch"] for r in result.history] == [1, 2]
    for a, b in zip(eager.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
