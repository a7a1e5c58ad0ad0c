"""What CLIP-MUSED reads of NSD beyond the betas: COCO category labels of the stimuli, and NSD's ROI label volumes.

COCO labels (``read_coco_labels``): the COCO 2017 instance annotation files, ``instances_train2017.json`` and
``instances_val2017.json`` (in ``annotations_trainval2017.zip``, the folder ``annotations/``), parsed with the
standard library. Their ``categories`` (80 entries, ids 1..90 with gaps) give the label columns in the file's
order (COCO's, by id); each ``annotations`` entry (``image_id``, ``category_id``) sets one cell of the image's
multi-hot row. An NSD image is a COCO image by ``cocoId`` (``nsd_stim_info_merged.csv``), found in the file of its
``cocoSplit``. A cocoId in neither file's ``images`` is an error; an image listed with no annotation has an
all-zero row (counted in the returned ``counts``).

ROI groups (``read_roi_groups``): NSD's label volumes ``nsddata/ppdata/<subj>/<res>/roi/<name>.nii.gz`` (e.g.
``prf-visualrois``: V1v, V1d, V2v, V2d, V3v, V3d, hV4; ``floc-faces``, ``floc-bodies``, ``floc-places``,
``floc-words``; ``streams``), value k > 0 = ROI k, 0 or -1 = none. ROI names come from FreeSurfer's colour table
``nsddata/freesurfer/<subj>/label/<name>.mgz.ctab`` (lines ``k name``) when it is there, else ``<name>-<k>``.
Each ROI is intersected with the subject's reading mask (nsdgeneral): the result is a bool matrix (n_rois,
n_voxels) over the subject's feature columns. ROIs overlap freely (a voxel in V1v and in a floc ROI is in both).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainkit.data.readers.volumes import read_volume
from brainkit.errors import DataError, FileFormatError

logger = logging.getLogger(__name__)

COCO_FILES = {"train2017": "instances_train2017.json", "val2017": "instances_val2017.json"}
COCO_HINT = (
    "Download annotations_trainval2017.zip from https://cocodataset.org/#download and pass the folder that "
    "holds instances_train2017.json and instances_val2017.json (coco_annotations=DIR)."
)


def coco_folder(folder: str | Path) -> Path:
    """``folder``, or its ``annotations/`` subfolder when the instance files are there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileFormatError(f"coco_annotations: {folder} is not a folder. {COCO_HINT}")
    if not any((folder / name).is_file() for name in COCO_FILES.values()):
        if any((folder / "annotations" / name).is_file() for name in COCO_FILES.values()):
            return folder / "annotations"
    return folder


def _read_coco_json(path: Path, keys: tuple[str, ...], kind: str) -> dict:
    """A COCO annotation file with the top-level ``keys`` (``kind``: what it is, for the errors)."""
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileFormatError(f"Missing COCO annotation file {path}. {COCO_HINT}") from None
    except (OSError, ValueError) as error:
        raise FileFormatError(
            f"Cannot read {path} as JSON: {error}. The file looks truncated: unzip it again."
        ) from error
    found = sorted(content)[:8] if isinstance(content, dict) else type(content).__name__
    if not isinstance(content, dict) or not set(keys) <= set(content):
        raise FileFormatError(f"{path} is not a COCO {kind} file: it needs {', '.join(keys)} (found {found}). "
                              f"{COCO_HINT}")  # fmt: skip
    return content


def _read_instances(path: Path) -> tuple[list[tuple[int, str]], set[int], dict[int, list[int]]]:
    """(categories as (id, name) in the file's order, the image ids, image id -> category ids)."""
    content = _read_coco_json(path, ("categories", "images", "annotations"), "instances")
    categories = [(int(c["id"]), str(c["name"])) for c in content["categories"]]
    images = {int(image["id"]) for image in content["images"]}
    labelled: dict[int, list[int]] = {}
    for annotation in content["annotations"]:
        labelled.setdefault(int(annotation["image_id"]), []).append(int(annotation["category_id"]))
    return categories, images, labelled


def read_coco_captions(folder: str | Path, coco_ids: Sequence[int], splits: Sequence[str]) -> list[str]:
    """The first caption (lowest annotation id) of each image ``coco_ids``, from COCO's ``captions_<split>.json``
    (in the folder of the instance files); an image without a caption raises :class:`DataError`."""
    folder = coco_folder(folder)
    first: dict[int, tuple[int, str]] = {}
    for split in sorted(set(splits)):
        content = _read_coco_json(folder / f"captions_{split}.json", ("images", "annotations"), "captions")
        for annotation in content["annotations"]:
            image, number = int(annotation["image_id"]), int(annotation["id"])
            if image not in first or number < first[image][0]:
                first[image] = (number, str(annotation["caption"]).strip())
    missing = [int(i) for i in coco_ids if int(i) not in first]
    if missing:
        raise DataError(
            f"{len(missing)} cocoId(s) have no caption in {folder}/captions_*.json, e.g. {missing[:3]}; use COCO "
            "2017's caption files, or coco_text='categories'."
        )
    return [first[int(i)][1] for i in coco_ids]


def read_coco_labels(
    folder: str | Path, coco_ids: Sequence[int], splits: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """Multi-hot COCO category labels of the images ``coco_ids``.

    Parameters
    ----------
    folder : the folder holding ``instances_train2017.json`` / ``instances_val2017.json`` (or its parent)
    coco_ids : (n,) COCO image ids
    splits : (n,) ``"train2017"`` / ``"val2017"`` per image (NSD's ``cocoSplit``): only those files are read and
        each image is looked up in its own; None: both files, an image in either

    Returns
    -------
    labels : uint8 (n, n_categories), 1 where the image has an instance of the category
    categories : the category names, in the files' order (COCO's: by category id)
    counts : {"images": n, "without_annotations": images listed with no instance}
    """
    folder = coco_folder(folder)
    coco_ids = np.asarray(coco_ids, dtype=np.int64)
    if splits is None:
        wanted = np.full(len(coco_ids), "", dtype=object)
        names = [s for s in COCO_FILES if (folder / COCO_FILES[s]).is_file()] or list(COCO_FILES)
    else:
        wanted = np.asarray(splits, dtype=object)
        unknown = sorted(set(wanted) - set(COCO_FILES))
        if unknown:
            raise DataError(
                f"cocoSplit {unknown} is not one of {list(COCO_FILES)}; check nsd_stim_info_merged.csv."
            )
        names = [s for s in COCO_FILES if s in set(wanted)]
    categories, found = None, {}
    for split in names:
        path = folder / COCO_FILES[split]
        split_categories, images, labelled = _read_instances(path)
        if categories is not None and split_categories != categories:
            raise FileFormatError(
                f"{path} lists other categories than {COCO_FILES[names[0]]}; use the files of one COCO release."
            )
        categories, found[split] = split_categories, (images, labelled)
    column = {category_id: index for index, (category_id, _) in enumerate(categories)}
    labels = np.zeros((len(coco_ids), len(categories)), dtype=np.uint8)
    missing, empty = [], 0
    for row, (coco_id, split) in enumerate(zip(coco_ids.tolist(), wanted)):
        where = [split] if split else [s for s in names if coco_id in found[s][0]]
        if not where or coco_id not in found[where[0]][0]:
            missing.append((coco_id, split or " or ".join(names)))
            continue
        ids = found[where[0]][1].get(coco_id, [])
        unknown = sorted(set(ids) - set(column))
        if unknown:
            raise FileFormatError(
                f"{folder / COCO_FILES[where[0]]}: image {coco_id} has category ids {unknown} that are not in "
                "its categories; the file is damaged."
            )
        labels[row, [column[i] for i in ids]] = 1
        empty += not ids
    if missing:
        raise DataError(
            f"{len(missing)} cocoId(s) are not images of the COCO annotations in {folder}, e.g. "
            f"{', '.join(f'{i} (looked in {s})' for i, s in missing[:3])}. Use the 2017 instance files (NSD's "
            f"images are COCO 2017 train/val images) and NSD's own nsd_stim_info_merged.csv. {COCO_HINT}"
        )
    if empty:
        logger.info(
            "%d of %d COCO images have no instance annotation (all-zero label rows).", empty, len(labels)
        )
    return labels, [name for _, name in categories], {"images": len(labels), "without_annotations": empty}


def coco_split_of(stim_info: pd.DataFrame, nsd_ids: np.ndarray) -> list[str] | None:
    """NSD's ``cocoSplit`` of the images ``nsd_ids`` (None when the csv has no such column)."""
    if "cocoSplit" not in stim_info.columns:
        return None
    return stim_info.loc[nsd_ids, "cocoSplit"].astype(str).tolist()


def roi_names(root: Path, subject: str, name: str, values: Sequence[int]) -> dict[int, str]:
    """ROI value -> name from ``nsddata/freesurfer/<subject>/label/<name>.mgz.ctab``, else ``<name>-<value>``."""
    path = root / f"nsddata/freesurfer/{subject}/label/{name}.mgz.ctab"
    table = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].lstrip("-").isdigit():
                table[int(parts[0])] = parts[1]
    else:
        logger.info("%s is missing: ROIs of %s are named %s-<value>.", path, name, name)
    return {int(v): table.get(int(v), f"{name}-{int(v)}") for v in values}


def read_roi_groups(
    root: str | Path, subject: str, files: Sequence[str], mask: np.ndarray, resolution: str = "func1pt8mm"
) -> tuple[list[str], np.ndarray]:
    """The ROIs of the label volumes ``files`` over the voxels of ``mask``: (names, bool (n_rois, n_voxels)).

    Voxels in ``numpy.nonzero(mask)`` order (the reader's feature columns); one row per ROI value > 0 present in a
    file anywhere (inside the mask or not), in file order then value order. A file whose grid is not the mask's
    raises :class:`FileFormatError`.
    """
    root = Path(root)
    names, rows = [], []
    for file in files:
        relative = f"nsddata/ppdata/{subject}/{resolution}/roi/{file}.nii.gz"
        if not (root / relative).is_file():
            raise FileFormatError(
                f"Missing NSD ROI file {relative} (looked under {root}); it comes with nsddata/ppdata. Choose "
                "ROI files that exist (patch_rois=[...], e.g. prf-visualrois, floc-faces, streams)."
            )
        volume, _ = read_volume(root / relative)
        if volume.shape != mask.shape:
            raise FileFormatError(
                f"{root / relative} has shape {volume.shape}, the mask {mask.shape}: use the ROI files of the "
                f"same resolution ({resolution})."
            )
        stored = np.asarray(volume, dtype=np.float64)
        if not np.array_equal(stored, np.rint(stored)):
            raise FileFormatError(
                f"{root / relative} holds non-integer values; an ROI label volume holds ROI numbers (0 or -1: "
                "none). Use NSD's roi/ file as released (not resampled with interpolation)."
            )
        values = stored.astype(np.int64)
        present = np.unique(values[values > 0]).tolist()
        inside = values[mask]
        for value, label in roi_names(root, subject, file, present).items():
            names.append(label)
            rows.append(inside == value)
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise DataError(
            f"ROI names {repeated} occur in more than one of the files {list(files)}; list each file once."
        )
    return names, np.array(rows, dtype=bool).reshape(len(rows), int(mask.sum()))


def roi_groups(
    root: str | Path,
    subjects: Sequence[str],
    files: Sequence[str],
    masks: dict[str, np.ndarray],
    resolution: str,
) -> dict:
    """The ROI keys of a multi-subject NSD read's ``info``: every subject's ROI rows over one common list of names
    (the union over subjects, in order of appearance); an ROI absent from a subject has an all-False row there.
    Returns {"roi_files": files, "roi_names": names, "roi_members": {subject: bool (n_rois, n_voxels)},
    "roi_counts": {subject: [voxels per ROI]}}."""
    read = {s: read_roi_groups(root, s, files, masks[s], resolution) for s in subjects}
    names: list[str] = []
    for subject in subjects:
        names += [n for n in read[subject][0] if n not in names]
    members = {}
    for subject in subjects:
        own, rows = read[subject]
        members[subject] = np.zeros((len(names), rows.shape[1]), dtype=bool)
        for row, name in zip(rows, own):
            members[subject][names.index(name)] = row
    counts = {s: members[s].sum(axis=1).tolist() for s in subjects}
    return {"roi_files": list(files), "roi_names": names, "roi_members": members, "roi_counts": counts}


COCO_TEXTS = ("categories", "captions")


def semantic_info(
    root,
    subjects,
    nsd_ids,
    stim_info,
    masks,
    resolution,
    coco_annotations,
    patch_rois,
    coco_text="categories",
) -> dict:
    """What ``load_nsd`` adds to ``info`` for ``coco_annotations`` (``labels``, ``categories``, ``coco_counts``, and
    ``texts``: each stimulus's text label, its category names or (``coco_text="captions"``) its first COCO
    caption) and ``patch_rois`` (:func:`roi_groups`)."""
    if coco_text not in COCO_TEXTS:
        raise DataError(f"coco_text must be one of {list(COCO_TEXTS)}, found {coco_text!r}.")
    if coco_text == "captions" and coco_annotations is None:
        raise DataError("coco_text='captions' reads COCO's caption files: give coco_annotations=DIR as well.")
    out = {}
    if coco_annotations is not None:
        coco_ids = stim_info.loc[nsd_ids, "cocoId"].to_numpy()
        splits = coco_split_of(stim_info, nsd_ids)
        labels, categories, counts = read_coco_labels(coco_annotations, coco_ids, splits)
        texts = [", ".join(categories[c] for c in np.flatnonzero(row)) for row in labels]
        if coco_text == "captions":
            texts = read_coco_captions(coco_annotations, coco_ids, splits or ["train2017", "val2017"])
        out |= {"labels": labels, "categories": categories, "coco_counts": counts, "texts": np.array(texts)}
    if patch_rois is not None:
        if isinstance(patch_rois, str) or not patch_rois:
            raise DataError(f"patch_rois takes a list of NSD ROI file names, found {patch_rois!r}.")
        out |= roi_groups(root, subjects, list(patch_rois), masks, resolution)
    return out
