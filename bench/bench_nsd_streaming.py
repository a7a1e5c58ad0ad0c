"""An NSD-scale subject trains Lite-Mind streamed from disk: peak RSS of the run, against the in-memory path.

    python bench/bench_nsd_streaming.py --root /scratch/nsd_full [--sessions 40] [--steps 60] [--in-memory]
                                        [--cpu-memory release]
    python bench/bench_nsd_streaming.py --quick      # 3 sessions, 2,000 voxels: the CI-sized check of the script

What it writes under ``--root`` (once; reused when the files exist): NSD's released layout at full size for subj01,
read by the ``nsd`` reader exactly as a download would be:

- ``nsd_expdesign.mat``: 40 sessions x 12 runs (stimpattern (40, 12, 75), 62 or 63 stimulus trials per run, 750 per
  session), masterordering (1, 30000) over 10,000 images per subject of which the first 1,000 are the shared ones
  (each image shown 3 times), subjectim (8, 10000), sharedix (1, 1000);
- ``nsd_stim_info_merged.csv``: 73,000 rows (nsdId, cocoId, shared1000, subject1, subject1_rep0..2);
- ``nsdgeneral.nii.gz`` on the func1pt8mm grid (81, 104, 83): 15,724 voxels of 1 inside a brain ellipsoid of 0,
  -1 outside;
- ``betas_session01..40.hdf5``: dataset ``betas`` (750, 83, 104, 81) int16 (percent signal change x 300),
  chunked one volume per chunk, gzip level 1. Only the ROI's voxels carry values (a linear map of the image's
  embedding plus noise, so the decoder has something to learn); the rest of the volume is 0, so the 40 files take
  a few GB instead of NSD's ~1 GB each, and reading them costs less decompression than real betas would;
- ``clip_cls.npy``: (73000, 768) float32 per-image targets in nsdId order (random unit vectors standing in for
  CLIP ViT-L/14 CLS embeddings, which cannot be computed offline), given to the reader as ``embeddings=``.

Then, each in a FRESH subprocess, ``brainkit run lite_mind`` on it (model preset ``nsd_subj01_cls``: the released
CLS-only Lite-Mind, 7.55 M parameters, 15,724 voxels -> 768; target ``clip_cls``; ``--steps`` optimiser steps at
``--batch-size``; no baselines): streamed (``data.options.store=``: betas read once into a float32 file on disk,
batches read from it with pread) and, with ``--in-memory``, the same run with the betas in memory. Each child
prints its VmHWM (peak resident set, /proc/self/status) at exit; first, the same model's steps alone on random
tensors (``mode=model_only``: the share of the peak that is the model's step, not the data). One line per run:

    nsd_streaming mode=disk sessions=40 trials=30000 voxels=15724 rss_gb=... seconds=... store_gb=...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
from scipy.io import savemat

from brainkit.training.heap import MODES

SHAPE = (81, 104, 83)  # func1pt8mm X, Y, Z
RUNS, SLOTS = 12, 75
N_SUBJECT_IMAGES, N_SHARED, N_IMAGES = 10_000, 1_000, 73_000


def write_design(root: Path, n_sessions: int, trials_per_session: int, seed: int = 0) -> np.ndarray:
    """nsd_expdesign.mat and nsd_stim_info_merged.csv; returns subj01's nsdId for each trial (n_trials,)."""
    rng = np.random.default_rng(seed)
    per_run = np.full(RUNS, trials_per_session // RUNS)
    per_run[: trials_per_session % RUNS] += 1
    pattern = np.zeros((40, RUNS, SLOTS), dtype=np.uint8)
    for run, n in enumerate(per_run):
        pattern[:, run, np.sort(rng.choice(np.arange(3, SLOTS - 3), size=n, replace=False))] = 1
    n_trials = 40 * trials_per_session
    n_images = n_trials // 3  # each shown 3 times, as NSD's 10,000 in 30,000 trials
    master = rng.permutation(np.repeat(np.arange(n_images), 3))
    subjectim = np.stack([rng.permutation(N_IMAGES)[:n_images] for _ in range(8)])
    n_shared = min(N_SHARED, n_images // 10)
    subjectim[:, :n_shared] = subjectim[0, :n_shared]  # the shared images: the first columns for everyone
    folder = root / "nsddata/experiments/nsd"
    folder.mkdir(parents=True, exist_ok=True)
    savemat(folder / "nsd_expdesign.mat", {
        "masterordering": (master[None] + 1).astype(np.float64),
        "subjectim": (subjectim + 1).astype(np.float64),
        "sharedix": (subjectim[0, :n_shared][None] + 1).astype(np.float64),
        "stimpattern": pattern.astype(np.float64),  # all 40 sessions, whatever was asked to be written
    })  # fmt: skip
    table = pd.DataFrame({"cocoId": rng.permutation(N_IMAGES) + 1, "nsdId": np.arange(N_IMAGES)})
    table["shared1000"] = np.isin(table["nsdId"], subjectim[0, :n_shared])
    table["subject1"] = np.isin(table["nsdId"], subjectim[0]).astype(int)
    shown = subjectim[0, master]  # nsdId of each trial
    order = np.argsort(shown, kind="stable")  # trials by image, in presentation order within an image
    first = np.searchsorted(shown[order], np.arange(N_IMAGES))
    counts = np.bincount(shown, minlength=N_IMAGES)
    for rep in range(3):
        column = np.zeros(N_IMAGES, dtype=np.int64)
        has = counts > rep
        column[has] = order[first[has] + rep] + 1
        table[f"subject1_rep{rep}"] = column
    table.to_csv(folder / "nsd_stim_info_merged.csv")
    return shown[: n_sessions * trials_per_session]


def write_mask(root: Path, n_voxels: int) -> np.ndarray:
    """nsdgeneral.nii.gz: the ``n_voxels`` most posterior voxels of a brain ellipsoid; returns the bool mask."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), axis=-1).astype(np.float32)
    centre, radii = np.array(SHAPE) / 2, np.array(SHAPE) * 0.42
    brain = (((grid - centre) / radii) ** 2).sum(-1) <= 1
    labels = np.where(brain, 0, -1).astype(np.int16)
    inside = np.flatnonzero(brain)
    posterior = inside[np.argsort(np.unravel_index(inside, SHAPE)[1], kind="stable")[:n_voxels]]
    labels.flat[posterior] = 1
    path = root / "nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(labels, np.diag([1.8, 1.8, 1.8, 1.0])), path)
    return labels > 0


def write_betas(
    root: Path, shown: np.ndarray, mask: np.ndarray, targets: np.ndarray, trials: int, seed: int = 0
):
    """betas_sessionNN.hdf5, (trials, Z, Y, X) int16, the ROI = targets @ W + noise (percent signal change x 300)."""
    rng = np.random.default_rng(seed + 1)
    x, y, z = np.nonzero(mask)
    flat = np.ravel_multi_index((z, y, x), SHAPE[::-1])  # the file's (Z, Y, X) order
    weights = rng.normal(0, 1 / np.sqrt(targets.shape[1]), (targets.shape[1], len(flat))).astype(np.float32)
    folder = root / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    folder.mkdir(parents=True, exist_ok=True)
    for session in range(len(shown) // trials):
        path = folder / f"betas_session{session + 1:02d}.hdf5"
        if path.is_file():
            continue
        ids = shown[session * trials : (session + 1) * trials]
        psc = targets[ids] @ weights + rng.normal(0, 1.5, (trials, len(flat))).astype(np.float32)
        values = np.clip(np.round(psc * 300), -32768, 32767).astype(np.int16)
        tmp = path.with_suffix(".partial")
        with h5py.File(tmp, "w") as handle:
            data = handle.create_dataset("betas", (trials, *SHAPE[::-1]), np.int16, chunks=(1, *SHAPE[::-1]),
                                         compression="gzip", compression_opts=1)  # fmt: skip
            for start in range(0, trials, 50):
                block = np.zeros((min(50, trials - start), int(np.prod(SHAPE))), np.int16)
                block[:, flat] = values[start : start + 50]
                data[start : start + len(block)] = block.reshape(len(block), *SHAPE[::-1])
        os.replace(tmp, path)
        print(f"  wrote {path.name} ({path.stat().st_size / 1e6:.0f} MB)", flush=True)


def write_layout(root: Path, n_sessions: int, trials: int, n_voxels: int, dim: int) -> dict:
    done = root / "layout.json"
    wanted = {"sessions": n_sessions, "trials": trials, "voxels": n_voxels, "dim": dim}
    if done.is_file() and json.loads(done.read_text()) == wanted:
        return wanted
    start = time.perf_counter()
    shown = write_design(root, n_sessions, trials)
    mask = write_mask(root, n_voxels)
    rng = np.random.default_rng(7)
    targets = rng.normal(size=(N_IMAGES, dim)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    np.save(root / "clip_cls.npy", targets)
    write_betas(root, shown, mask, targets, trials)
    done.write_text(json.dumps(wanted))
    print(f"layout written in {time.perf_counter() - start:.0f} s", flush=True)
    return wanted


CHILD = """
import sys
from brainkit.cli import main
code = main(sys.argv[1:])
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(f"CHILD_VMHWM_KB={hwm}", flush=True)
sys.exit(code)
"""


MODEL_ONLY = """
import sys, torch
from brainkit.models import build_model, model_config
from brainkit.objectives.contrastive import InfoNCE, InfoNCEConfig
torch.manual_seed(0)
n_voxels, batch, steps = (int(a) for a in sys.argv[1:4])
model = build_model("lite_mind", model_config("lite_mind", "nsd_subj01_cls", {"n_voxels": n_voxels, "output_shape": [768]}))
loss_fn, optimiser = InfoNCE(InfoNCEConfig(bidirectional=False)), torch.optim.AdamW(model.parameters(), lr=1e-4)
for _ in range(steps):
    loss = loss_fn(model(torch.randn(batch, n_voxels)), torch.randn(batch, 768))
    optimiser.zero_grad(); loss.backward(); optimiser.step()
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(f"CHILD_VMHWM_KB={hwm}", flush=True)
"""


def model_only(args: argparse.Namespace) -> tuple[float, float]:
    """The same model's training steps on random tensors of the same sizes, no data at all: what of the runs' peak
    is the model's own step (activations, gradients, optimiser state) rather than the data path."""
    start = time.perf_counter()
    command = [sys.executable, "-c", MODEL_ONLY, str(args.voxels), str(args.batch_size), "2"]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("CHILD_VMHWM_KB=")]
    if done.returncode != 0 or not lines:
        sys.exit(f"the model-only step failed (rc {done.returncode}):\n{done.stderr[-3000:]}")
    return int(lines[0].split("=")[1]) / 1024**2, time.perf_counter() - start


def run(root: Path, out: Path, store: Path | None, args: argparse.Namespace) -> tuple[float, float]:
    options = {"root": str(root), "subjects": ["subj01"], "sessions": list(range(1, args.sessions + 1)),
               "image_size": None, "embeddings": {"clip_cls": str(root / "clip_cls.npy")},
               "store": None if store is None else str(store)}  # fmt: skip
    command = [sys.executable, "-c", CHILD, "run", "lite_mind", "--out", str(out),
               "--set", "data.name=nsd", "--set", f"data.options={json.dumps(options)}",
               "--set", "data.target=clip_cls", "--set", "data.val_fraction=0",
               "--set", "model.preset=nsd_subj01_cls", "--set", "baselines=[]",
               "--set", f"training.steps={args.steps}", "--set", f"training.batch_size={args.batch_size}",
               "--set", "training.warmup_epochs=0", "--set", "training.progress=false",
               "--set", f"training.cpu_memory={args.cpu_memory}",
               "--set", f"evaluation.n_way={args.n_way}"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith("CHILD_VMHWM_KB=")]
    if done.returncode != 0 or not lines:
        sys.exit(f"the run failed (rc {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return int(lines[0].split("=")[1]) / 1024**2, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, default=None, help="where the layout is written (default: a temp dir)"
    )
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--trials", type=int, default=750, help="trials per session")
    parser.add_argument("--voxels", type=int, default=15_724)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=300)
    parser.add_argument("--n-way", type=int, default=300)
    parser.add_argument("--in-memory", action="store_true", help="also run with the betas in memory")
    parser.add_argument(
        "--quick", action="store_true", help="3 sessions of 750 trials, 2,000 voxels, 5 steps"
    )
    parser.add_argument(
        "--cpu-memory", choices=MODES, default="reuse",
        help="the run's training.cpu_memory (reuse: the trainer's default; release: glibc's own behaviour)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.voxels, args.steps, args.batch_size, args.n_way = 3, 2_000, 5, 100, 50
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or Path(scratch) / "nsd"
        root.mkdir(parents=True, exist_ok=True)
        layout = write_layout(root, args.sessions, args.trials, args.voxels, 768)
        betas_gb = sum(p.stat().st_size for p in root.rglob("betas_session*.hdf5")) / 1e9
        print(
            f"layout: {layout}, betas on disk {betas_gb:.2f} GB; load {open('/proc/loadavg').read().split()[:3]}"
        )
        rss, seconds = model_only(args)
        print(f"nsd_streaming mode=model_only voxels={args.voxels} batch={args.batch_size} rss_gb={rss:.2f} "
              f"seconds={seconds:.0f} (2 steps of the model alone on random tensors)", flush=True)  # fmt: skip
        modes = [("disk", Path(scratch) / "store")] + ([("memory", None)] if args.in_memory else [])
        for mode, store in modes:
            rss, seconds = run(root, Path(scratch) / f"run-{mode}", store, args)
            store_gb = 0.0 if store is None else sum(p.stat().st_size for p in store.iterdir()) / 1e9
            metrics = json.loads((Path(scratch) / f"run-{mode}" / "lite_mind" / "metrics.json").read_text())
            n_test = int(metrics.get("n_stimuli", 0))
            way = min(300, n_test)
            top1 = metrics.get(
                f"fmri_to_image/{way}way_top1_mean", metrics.get("fmri_to_image/top1", float("nan"))
            )
            print(f"nsd_streaming mode={mode} sessions={args.sessions} trials={args.sessions * args.trials} "
                  f"voxels={args.voxels} steps={args.steps} batch={args.batch_size} cpu_memory={args.cpu_memory} "
                  f"rss_gb={rss:.2f} seconds={seconds:.0f} store_gb={store_gb:.2f} test_images={n_test} "
                  f"{way}way_top1={top1:.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
