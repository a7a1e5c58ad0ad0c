"""SIM's surface movie data streamed: peak memory of the build and a short SIM run as the subject count grows.

    python bench/bench_surface_streaming.py                       # 2, 8, 32 subjects, streamed and mapped
    python bench/bench_surface_streaming.py --subjects 2 8 --modes streamed

What it does: writes ONE scaled-down HCP 7T download in the real layout with
:func:`brainkit.testing_hcp_surface.write_hcp_surface_folder` (per subject and movie a CIFTI-2 dtseries with
both hemispheres and subcortical voxels, the subjects' 59k-named spheres, the four movies as mp4), scaled down:
``--sphere-order`` 4 (2,562 vertices per hemisphere, not 59k) and 140-frame runs (not ~900). Then for each
subject count N, in a FRESH subprocess: ``hcp_movie_surface`` on the first N subjects (the full reader path:
CIFTI -> left hemisphere -> adaptive-barycentric resampling to ico4 -> fmri.npy, cached) and ``brainkit run
sim``'s protocol (testing preset: scratch init only, no ridge baseline, ``--steps`` steps, then retrieval in the
three settings, occlusion, report), and reports the process's peak resident memory (VmHWM of /proc/self/status)
after the build and at the end, plus the size of fmri.npy.

Modes: ``streamed`` is brainkit as it is (the build writes fmri.npy run by run with plain writes; batches and
evaluation read their frames from the file window by window). ``mapped`` is the path before streaming, for
comparison: the build writes through ``np.lib.format.open_memmap`` and batches index the memory map, whose
touched pages stay counted in resident memory while it is open.

SIM needs >= 2 subjects (the reader's minimum; one unseen subject): the smallest count is 2, not 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUBJECT_NAMES = [str(100000 + 1000 * i) for i in range(64)]


def peak_mib() -> float:
    """VmHWM of this process, MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def as_before_streaming() -> None:
    """The build and the batches through memory maps (module doc, mode ``mapped``)."""
    import numpy as np

    from brainkit.data import movie_samples as ms
    from brainkit.data.frame_file import ArrayFrames
    from brainkit.data.readers import hcp_movie_surface_data as reader

    class MappedWriter:
        def __init__(self, path, shape, dtype) -> None:
            self.map = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

        def write(self, subject: int, run: int, frames) -> None:
            self.map[subject, run, : len(frames)] = frames

    reader.FrameWriter = MappedWriter
    ms.frame_source = lambda fmri: fmri if isinstance(fmri, ArrayFrames) else ArrayFrames(np.asarray(fmri))


def child(args: argparse.Namespace) -> None:
    import brainkit.data.readers.hcp_movie_surface_data  # noqa: F401  both modes import the same modules first
    from brainkit.data.frame_file import ArrayFrames  # noqa: F401
    from brainkit.recipes.sim import PRESETS, SIMRecipe
    from brainkit.recipes.sim.datasets import load_movie_data
    from brainkit.testing_hcp_surface import dataset_options

    if args.mode == "mapped":
        as_before_streaming()
    base = PRESETS["testing"]
    options = dataset_options(args.root, movies=(1, 2, 3, 4), order=args.sphere_order)
    options["subjects"] = SUBJECT_NAMES[: args.n]
    config = dataclasses.replace(base, data="hcp_movie_surface", data_options=options, cache_dir=args.cache,
                                 inits=("scratch",), ridge_alpha=None, n_test_subjects=1,
                                 training=dataclasses.replace(base.training, steps=args.steps))  # fmt: skip
    start = time.perf_counter()
    data = load_movie_data(config)  # the build (cached in args.cache)
    built, build_seconds = peak_mib(), time.perf_counter() - start
    file_mib = Path(data.fmri.filename).stat().st_size / 2**20
    del data
    start = time.perf_counter()
    SIMRecipe().run(config, Path(args.out))
    print(json.dumps({"n": args.n, "mode": args.mode, "file_mib": file_mib,
                      "peak_after_build_mib": built, "peak_end_mib": peak_mib(),
                      "build_s": build_seconds, "sim_s": time.perf_counter() - start}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--modes", nargs="+", default=["streamed", "mapped"], choices=["streamed", "mapped"])
    parser.add_argument("--sphere-order", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--root", "--cache", "--out", "--mode"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    from brainkit.testing_hcp_surface import write_hcp_surface_folder

    with tempfile.TemporaryDirectory(prefix="bench_surface_streaming_") as tmp:
        start = time.perf_counter()
        root = write_hcp_surface_folder(Path(tmp) / "HCP_7T", subjects=tuple(SUBJECT_NAMES[: max(args.subjects)]),
                                        movies=(1, 2, 3, 4), sphere_order=args.sphere_order)  # fmt: skip
        print(f"wrote {max(args.subjects)} subjects x 4 CIFTI runs (ico{args.sphere_order} hemispheres, 140 frames) "
              f"in {time.perf_counter() - start:.0f} s")  # fmt: skip
        print(
            "mode      subjects  fmri.npy MiB  peak RSS after build MiB  peak RSS at end MiB  build s  sim s"
        )
        for mode in args.modes:
            for n in args.subjects:
                work = Path(tmp) / f"{mode}-{n}"
                command = [sys.executable, __file__, "--child", "--root", str(root), "--cache", str(work / "cache"),
                           "--out", str(work / "run"), "--mode", mode, "--n", str(n),
                           "--sphere-order", str(args.sphere_order), "--steps", str(args.steps)]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"{mode} {n} subjects failed:\n{done.stderr[-3000:]}")
                r = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{mode:9s} {n:8d}  {r['file_mib']:12.1f}  {r['peak_after_build_mib']:24.1f}  "
                      f"{r['peak_end_mib']:19.1f}  {r['build_s']:7.1f}  {r['sim_s']:5.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
