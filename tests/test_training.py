import json

import numpy as np
import pytest
import torch

from brainkit.checkpoint import load_tensors
from brainkit.errors import CheckpointError, DataError
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig
from brainkit.testing import TinyConfig, TinyMLP, distributed_fit_worker, tiny_decoding_dataset
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
    assert (tmp_path / "checkpoint" / "model.safetensors").is_file()
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
def test_two_process_gloo_matches_single_process(tmp_path):
    """Global batch 40 split over 2 gloo processes (negatives gathered) == one process with batch 40."""
    from lightning.fabric import Fabric

    single, double = tmp_path / "one", tmp_path / "two"
    single.mkdir(), double.mkdir()
    distributed_fit_worker(Fabric(accelerator="cpu", devices=1), str(single), epochs=3, batch_size=40)
    fabric = Fabric(accelerator="cpu", devices=2, strategy="ddp_spawn")
    fabric.launch(distributed_fit_worker, str(double), 3, 40)
    a = load_tensors(single / "weights.safetensors")
    b = load_tensors(double / "weights.safetensors")
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
