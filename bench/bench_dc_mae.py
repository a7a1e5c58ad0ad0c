"""Pretrain DC-MAE (Vis-Dec phase 1) on real and built-in voxels; print held-out masked-patch MSE vs baselines.

    OMP_NUM_THREADS=1 python bench/bench_dc_mae.py --data nsd_like --epochs 8      # ~10 min per run, 1 thread
    OMP_NUM_THREADS=1 python bench/bench_dc_mae.py --data nitime --epochs 150

Data:
- ``nitime``: the two real 4D BOLD runs that install with nitime (``fmri1.nii.gz``, ``fmri2.nii.gz``, 10x10x18
  voxels x 40 frames, TR 1.35 s). Voxels with signal (time-mean above 20 % of the 99th percentile in both runs)
  are flattened in array order, each voxel z-scored over time within its run; run 1's frames train, run 2's test.
- ``nsd_like``: subject subj01 of the built-in dataset (3,931 voxels): its 3,000 single training trials train,
  the single trials of its held-out test stimuli (raw_test_trials) test.
Both are padded to a multiple of 16 voxels by wrapping (Mind-Vis). For every ``--ablation`` the model is trained
from the same seed with the loss weights given (contrast 1; self / cross), and scored on one seeded mask per test
row: MSE on the hidden voxels against the training mean of each voxel and linear interpolation across each hole.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from brainkit.evaluation.masked_patches import masked_patch_errors
from brainkit.models import build_model, load_model, model_config
from brainkit.models.dc_mae import pad_voxels
from brainkit.objectives.double_contrastive import DoubleContrastiveConfig
from brainkit.recipes.vis_dec.encoder import pretrain_dc_mae
from brainkit.training import TrainingConfig


def zscore(x: np.ndarray) -> np.ndarray:
    return ((x - x.mean(0)) / np.maximum(x.std(0), 1e-6)).astype(np.float32)


def nitime_bold() -> tuple[np.ndarray, np.ndarray]:
    """(40, n_voxels) z-scored frames of each real nitime run, the same voxels (those with signal in both)."""
    import nibabel
    import nitime

    folder = Path(nitime.__file__).parent / "data"
    runs = [np.asarray(nibabel.load(folder / f"fmri{i}.nii.gz").dataobj, dtype=np.float64) for i in (1, 2)]
    means = [run.mean(axis=-1) for run in runs]
    keep = np.logical_and.reduce(
        [m > 0.2 * np.percentile(m, 99) for m in means] + [run.std(-1) > 0 for run in runs]
    )
    frames = [zscore(run[keep].T) for run in runs]  # (n_frames, n_voxels)
    return frames[0], frames[1]


def nsd_like_voxels() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """subj01's training trials, held-out test trials and the test trials' stimulus ids."""
    from brainkit.data.builtin.nsd_like import build_nsd_like, raw_test_trials

    dataset = build_nsd_like()
    test = raw_test_trials(dataset, "subj01")
    train = dataset.train["subj01"].values.astype(np.float32)
    return train, test.values.astype(np.float32), test.stimulus_ids


def repeat_identification(model, test: np.ndarray, stimulus_ids: np.ndarray) -> dict[str, float]:
    """Fraction of held-out trials whose nearest other trial (cosine) shows the same stimulus, on raw voxels and
    on the encoder's tokens (all patch tokens, flattened; and their mean). Chance ~ 2 / (n - 1) with 3 repeats."""

    def top1(features: np.ndarray) -> float:
        features = features / np.linalg.norm(features, axis=1, keepdims=True)
        similarity = features @ features.T
        np.fill_diagonal(similarity, -np.inf)
        return float(np.mean(stimulus_ids[similarity.argmax(1)] == stimulus_ids))

    model.eval()
    with torch.no_grad():
        tokens = torch.cat(
            [model.encode(torch.from_numpy(test[i : i + 250])) for i in range(0, len(test), 250)]
        )
    return {"raw_voxels": top1(test), "tokens": top1(tokens[:, 1:].flatten(1).numpy()),
            "mean_token": top1(tokens[:, 1:].mean(1).numpy()), "chance": 2 / (len(test) - 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=["nitime", "nsd_like"], default="nsd_like")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--preset", default="cpu_small")
    parser.add_argument("--ablation", nargs="+", default=["1,0.5", "0,0"], help="self,cross weights per run")
    parser.add_argument("--out", default=None, help="folder for checkpoints and results.json")
    parser.add_argument("--score-only", action="store_true", help="score the checkpoints already in --out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, test, stimulus_ids = (*nitime_bold(), None) if args.data == "nitime" else nsd_like_voxels()
    train, test = pad_voxels(train), pad_voxels(test)
    print(f"{args.data}: train {train.shape}, test {test.shape}")
    results = {}
    for weights in args.ablation:
        self_weight, cross_weight = (float(w) for w in weights.split(","))
        torch.manual_seed(0)
        model = build_model("dc_mae", model_config("dc_mae", args.preset, n_voxels=train.shape[1]))
        training = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=0.05,
                                  warmup_epochs=1, min_lr=1e-5, grad_clip=0.8, seed=0, progress=False)  # fmt: skip
        loss = DoubleContrastiveConfig(self_weight=self_weight, cross_weight=cross_weight)
        start = time.perf_counter()
        folder = Path(args.out) / f"self{self_weight}_cross{cross_weight}" if args.out else None
        if args.score_only:
            model, _ = load_model(folder / "checkpoint")
            last = json.loads((folder / "history.jsonl").read_text().splitlines()[-1])
        else:
            last = pretrain_dc_mae(model, train, training, folder, loss=loss, val_voxels=test).history[-1]
        errors = masked_patch_errors(model, train, test, seed=123)
        results[weights] = {"errors": errors, "last_epoch": last, "seconds": time.perf_counter() - start}
        if stimulus_ids is not None:  # nsd_like: held-out trials repeat each test stimulus 3 times
            results[weights]["repeat_identification"] = repeat_identification(model, test, stimulus_ids)
            print("repeat identification (top-1):", results[weights]["repeat_identification"])
        print(f"self {self_weight} cross {cross_weight}: {time.perf_counter() - start:.0f} s; held-out hidden-voxel "
              f"MSE model {errors['model']:.4f}, train-mean {errors['train_mean']:.4f}, interpolation "
              f"{errors['interpolation']:.4f}, zero {errors['variance']:.4f}; val self-InfoNCE {last['val_self']:.3f},"
              f" cross-InfoNCE {last['val_cross']:.3f} (chance log(n) = {np.log(len(test)):.3f})", flush=True)  # fmt: skip
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / ("scores.json" if args.score_only else "results.json")).write_text(
            json.dumps(results, indent=2)
        )


if __name__ == "__main__":
    main()
