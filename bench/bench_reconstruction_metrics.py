"""The reconstruction metric suite on real photos with known degradations: identical, noised, shuffled.

    python bench/bench_reconstruction_metrics.py              # 60 photos, 1,000 trials (~1 min on 2 cores)
    python bench/bench_reconstruction_metrics.py --trials 200

The "real" images are 60 real photos (12 crops of each of 5 scikit-image photos: astronaut, chelsea, coffee,
rocket, camera; 64 x 64). The "reconstructions" are the same photos plus Gaussian pixel noise of standard
deviation sigma (0 = identical), and, as a baseline, the noise-free photos paired with a wrong photo (a seeded
derangement: ``shuffled_baseline``). The crops share 5 sources, so images of one source resemble each other;
the shuffled numbers show what that similarity alone gives.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from brainkit.evaluation.reconstruction import evaluate_reconstructions, reconstruction_metrics
from brainkit.testing import photo_crops

KEYS = (
    "pixel_corr",
    "ssim",
    "mse",
    "lite0_block1_2way",
    "lite0_block4_50way",
    "lite0_block15_50way",
    "lite0_pooled_2way",
    "lite0_pooled_50way",
    "semantic_50way_top1",
)


def photos(n_per_source: int = 12, size: int = 64) -> np.ndarray:
    return photo_crops(n_per_source, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pixels", choices=("reference", "vis_dec"), default="reference")
    args = parser.parse_args()
    torch.set_num_threads(1)
    real = photos()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    rows = []
    identical, shuffled = evaluate_reconstructions(
        real, real, trials=args.trials, seed=args.seed, pixels=args.pixels
    )
    rows += [("identical", identical), ("shuffled", shuffled)]
    for sigma in (20, 60, 150):
        noised = np.clip(real + rng.normal(0, sigma, real.shape), 0, 255).round().astype(np.uint8)
        rows.append(
            (
                f"noise sd {sigma}",
                reconstruction_metrics(real, noised, trials=args.trials, seed=args.seed, pixels=args.pixels),
            )
        )
    print(f"{len(real)} real photos (64 x 64), {args.trials} trials, seed {args.seed}\n")
    print("| pairs | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for name, metrics in rows:
        cells = [
            f"{100 * metrics[k]:.1f} %" if k.endswith(("way", "top1")) else f"{metrics[k]:.3f}" for k in KEYS
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| chance | - | - | - | 50 % | 2 % | 2 % | 50 % | 2 % | 2 % |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
