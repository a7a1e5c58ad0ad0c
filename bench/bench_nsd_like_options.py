"""nsd_like's two generative options on one subject: ridge retrieval beside the best achievable (docs/datasets.md).

    python bench/bench_nsd_like_options.py [--subject subj01] [--threads 1] [--cache-dir DIR]

For each option (``linear``, the default, and ``realistic``) at the demo size (1,000 training images x 3 trials,
500 test images averaged over 3 trials) it prints, all 300-way top-1 (299 random distractors, 30 seeded draws,
mean +- sd over draws) on the 500 test images, decoding target the pooled ``efficientnet_lite0`` embedding:

- ``ridge``: brainkit's ridge (voxels standardised, alpha by leave-one-out over 1e0..1e6) fitted on the 3,000
  training trials, predictions of the averaged test rows scored by cosine similarity to the target embeddings.
- ``ridge on noiseless``: the same ridge fitted on the model's noiseless responses of the 1,000 training images
  and applied to the noiseless test responses: how much of the target a linear read-out of the true signal
  recovers (no noise at all; limited only by what the responses encode).
- ``oracle identification``: the measured averaged test responses matched (Pearson correlation across voxels,
  each voxel z-scored over the test images) to the noiseless responses the generative model gives every
  candidate image: the true encoding model is known, only the noise limits it. This is the
  noise-ceiling-limited best achievable we report: no decoder that sees these test rows has more to go on than the
  true responses (correlation matching is not exactly the Bayes-optimal rule under structured noise, so a
  decoder could in principle edge past it, but none here comes close).
- ``target -> noiseless R^2``: median over voxels of the test R^2 of ridge from the target embedding (1,000
  training images) to the noiseless responses: 1 would mean the responses are a linear function of the target.
- the measured median noise ceiling of the 3-trial test averages (``dataset.info["noise_ceiling"]``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from brainkit.data.builtin.nsd_like import build_nsd_like
from brainkit.evaluation.retrieval import cosine_similarity, n_way_top1, retrieval_metrics
from brainkit.models.baselines import Ridge, RidgeConfig

N_WAY, N_DRAWS = 300, 30


def ridge_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    model = Ridge(RidgeConfig(n_voxels=x_train.shape[1], output_shape=(y_train.shape[1],)))
    model.fit_closed_form(torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(y_train))
    with torch.no_grad():
        return model(torch.as_tensor(x_test, dtype=torch.float32)).numpy()


def n_way(predicted: np.ndarray, target: np.ndarray) -> str:
    metrics = retrieval_metrics(predicted, target, top_k=(1,), n_way=N_WAY, n_draws=N_DRAWS)
    key = f"fmri_to_image/{N_WAY}way_top1"
    return f"{100 * metrics[key + '_mean']:.1f} +- {100 * metrics[key + '_sd']:.1f} %"


def zscore(values: np.ndarray) -> np.ndarray:
    std = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)


def measure(option: str, subject: str, cache_dir: str | None) -> None:
    start = time.perf_counter()
    dataset = build_nsd_like(cache_dir=cache_dir, generative=option)
    built = time.perf_counter() - start
    stimuli = dataset.stimuli
    row = {sid: i for i, sid in enumerate(stimuli.ids)}
    target = stimuli.embedding("efficientnet_lite0").astype(np.float32)
    train, test = dataset.train[subject], dataset.test[subject]
    train_rows = np.array([row[s] for s in train.stimulus_ids])
    test_rows = np.array([row[s] for s in test.stimulus_ids])
    noiseless = dataset.info["noiseless_responses"][subject]
    images = np.arange(dataset.info["parameters"]["n_train_stimuli"])  # training images, one row each

    ridge = n_way(ridge_predict(train.values, target[train_rows], test.values), target[test_rows])
    clean = n_way(ridge_predict(noiseless[images], target[images], noiseless[test_rows]), target[test_rows])
    similarity = cosine_similarity(
        zscore(test.values) - zscore(test.values).mean(axis=1, keepdims=True),
        zscore(noiseless[test_rows]) - zscore(noiseless[test_rows]).mean(axis=1, keepdims=True),
    )
    oracle = n_way_top1(similarity, N_WAY, N_DRAWS)
    fitted = ridge_predict(target[images], noiseless[images], target[test_rows])
    truth = noiseless[test_rows]
    r2 = 1 - ((truth - fitted) ** 2).sum(0) / ((truth - truth.mean(0)) ** 2).sum(0)
    nc = dataset.info["noise_ceiling"][subject]
    print(f"option {option}, {subject}: {train.values.shape[1]} voxels, build/load {built:.0f} s")
    print(
        f"  median noise ceiling (3-trial avg): {nc['median']:.1f} % (10-90th {nc['q10']:.1f}-{nc['q90']:.1f} %)"
    )
    print(f"  ridge (3,000 trials):               {ridge}")
    print(f"  ridge on noiseless responses:       {clean}")
    print(
        f"  oracle identification:              {100 * oracle.mean():.1f} +- {100 * oracle.std(ddof=1):.1f} %"
    )
    print(f"  target -> noiseless median R^2:     {np.median(r2):.3f}")
    print(f"  chance:                             {100 / N_WAY:.2f} %", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subject", default="subj01")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--options", default="linear,realistic")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for option in args.options.split(","):
        measure(option, args.subject, args.cache_dir)


if __name__ == "__main__":
    main()
