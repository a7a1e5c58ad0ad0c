"""Vis-Dec phase 2 on the built-in nsd_like data: a small image MAE, then cross-modal tuning; print whether each
side's reconstruction uses the other modality (held-out pairs, right vs shuffled partner).

    OMP_NUM_THREADS=1 python bench/bench_cross_modal.py --dc-mae /tmp/runs/nsd/self1.0_cross0.5/checkpoint

Data: subject subj01's 3,000 single training trials, each paired with its stimulus image (real photos, faces and
digits, 192 px, resized to the image MAE's 64 px); held out: the single trials of the 500 test stimuli.
1. Image MAE: ``small_image_mae("cpu_small")`` trained on the 1,000 training images (mask 0.75).
2. DC-MAE: the phase-1 checkpoint given (``--dc-mae``), else a fresh cpu_small one.
3. ``tune_cross_modal`` (fMRI mask 0.75, image mask 0.5, weights 0.25 / 1.5).
Scored on the test pairs with one seeded mask pair: masked MSE of each side with its own partner, and with the
partner of another row (``shuffled``: a fixed derangement). If cross-attention carries information, the right
partner gives the lower error.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from brainkit.models import build_model, load_model, model_config
from brainkit.models.cross_modal import CROSS_PRESETS, load_image_mae, preprocess_images, small_image_mae
from brainkit.models.dc_mae import pad_voxels
from brainkit.models.vsmae import random_patch_mask
from brainkit.recipes.vis_dec.encoder import pretrain_image_mae, tune_cross_modal
from brainkit.training import TrainingConfig


def paired(samples, stimuli) -> tuple[np.ndarray, np.ndarray]:
    images = stimuli.images[stimuli.positions(samples.stimulus_ids)]
    return pad_voxels(samples.values.astype(np.float32)), images


@torch.no_grad()
def partner_errors(model, voxels: np.ndarray, images: np.ndarray, seed: int = 0) -> dict[str, float]:
    model.eval()
    x = torch.from_numpy(voxels)
    px = preprocess_images(images, model.image_size, model.config.image_mean, model.config.image_std)
    g = torch.Generator().manual_seed(seed)
    mask = random_patch_mask(len(x), model.fmri.n_patches, model.config.fmri_mask_ratio, g)
    noise = torch.rand(len(x), model.n_image_patches, generator=g)
    other = torch.roll(torch.arange(len(x)), 7)  # row i gets row i - 7's partner (never itself)
    out = {}
    for name, (xs, ps) in {
        "right": (x, px),
        "shuffled_image": (x, px[other]),
        "shuffled_fmri": (x[other], px),
    }.items():
        parts = [
            model(xs[i : i + 250], ps[i : i + 250], mask[i : i + 250], noise[i : i + 250])
            for i in range(0, len(x), 250)
        ]
        key = "fmri_mse" if name == "shuffled_image" else "image_mse" if name == "shuffled_fmri" else None
        weights = [len(xs[i : i + 250]) for i in range(0, len(x), 250)]
        for k in ("fmri_mse", "image_mse") if key is None else (key,):
            out[f"{name}_{k}"] = float(np.average([float(p[k]) for p in parts], weights=weights))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dc-mae", default=None, help="phase-1 checkpoint folder (else a fresh cpu_small DC-MAE)"
    )
    parser.add_argument("--image-epochs", type=int, default=30)
    parser.add_argument(
        "--image-mae", default=None, help="an image-MAE folder (Hugging Face layout) to start from"
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default="/tmp/bench_cross_modal")
    parser.add_argument("--n-rows", type=int, default=None, help="use only the first rows (a quick check)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from brainkit.data.builtin.nsd_like import build_nsd_like, raw_test_trials

    dataset = build_nsd_like()
    train_x, train_images = paired(dataset.train["subj01"], dataset.stimuli)
    test_x, test_images = paired(raw_test_trials(dataset, "subj01"), dataset.stimuli)
    if args.n_rows:
        train_x, train_images, test_x, test_images = (
            a[: args.n_rows] for a in (train_x, train_images, test_x, test_images)
        )
    unique = dataset.stimuli.images[
        dataset.stimuli.positions(np.unique(dataset.train["subj01"].stimulus_ids))
    ]
    start = time.perf_counter()
    image_history = None
    if args.image_mae:
        image = load_image_mae(args.image_mae)
        image.config.mask_ratio = 0.75
    else:
        image = small_image_mae("cpu_small", seed=0)
        image_training = TrainingConfig(epochs=args.image_epochs, batch_size=64, lr=1.5e-3, weight_decay=0.05,
                                        warmup_epochs=2, grad_clip=0.8, progress=False)  # fmt: skip
        image_fit = pretrain_image_mae(
            image, unique, image_training, Path(args.out) / "image", val_images=test_images[::3]
        )
        image_history = image_fit.history
        print(f"image MAE: {time.perf_counter() - start:.0f} s, held-out masked MSE "
              f"{image_fit.history[0]['val_image_mse']:.4f} -> {image_fit.history[-1]['val_image_mse']:.4f}", flush=True)  # fmt: skip
    if args.dc_mae:
        fmri, _ = load_model(args.dc_mae)
    else:
        torch.manual_seed(0)
        fmri = build_model("dc_mae", model_config("dc_mae", "cpu_small", n_voxels=train_x.shape[1]))
    training = TrainingConfig(epochs=args.epochs, batch_size=32, lr=5e-4, weight_decay=0.05, warmup_epochs=0.5,
                              grad_clip=0.8, progress=False)  # fmt: skip
    start = time.perf_counter()
    config = CROSS_PRESETS["cpu_small"]
    model, fit = tune_cross_modal(fmri, image, train_x, train_images, training, Path(args.out) / "tuned", config,
                                  val_voxels=test_x[::3], val_images=test_images[::3])  # fmt: skip
    errors = partner_errors(model, test_x, test_images)
    print(f"cross-modal tuning: {time.perf_counter() - start:.0f} s; history {fit.history}")
    print(json.dumps(errors, indent=1))
    (Path(args.out) / "results.json").write_text(json.dumps({"image_mae": args.image_mae, "image": image_history, "tuning": fit.history,
                                                              "partners": errors}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
