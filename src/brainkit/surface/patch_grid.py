"""Which patch table cuts the frames: the ``patches`` option of the vsmae / sim recipes and of SiT.

``patches`` is one of

- ``"icosphere"`` (default): :func:`brainkit.surface.triangle_patches` of brainkit's icosphere;
- ``"file:PATH"``: a CSV in SIM's layout (:mod:`brainkit.surface.patch_files`) whose indices number the data's
  vertices as they are (in the recipes: brainkit's icosphere of the fine order);
- ``"sim:DIR"``: SIM's released folder (a clone of metrics-lab/sim, or a folder holding the two files):
  ``DIR/patch_extraction/triangle_indices_ico_{fine}_sub_ico_{coarse}.csv`` and its template sphere
  ``DIR/data/templates/coordinates_ico_{fine}_L.shape.gii``. The table numbers the template's vertices, i.e. the
  frames SIM's pipeline prepares: ``grid.table`` cuts those exactly as SIM's loader does. Data in brainkit's
  vertex order (the recipes' built-in data) are cut by ``grid.in_brainkit_order()``, the same patches (patch
  order and within-patch order kept) through :func:`~brainkit.surface.correspondence.find_correspondence`.

:func:`patch_grid` checks the table's shape against the fine / coarse orders (``20 * 4**coarse`` patches of
``n_patch_vertices(fine, coarse)``), every index against the sphere, and no vertex twice within a patch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainkit.errors import ConfigError, DataError, FileFormatError
from brainkit.surface.correspondence import Correspondence, find_correspondence
from brainkit.surface.icosphere import MAX_ORDER, icosphere, n_vertices
from brainkit.surface.patch_files import SIM_TABLE, SIM_TEMPLATE, read_patch_table, read_sphere
from brainkit.surface.patches import n_patch_vertices, triangle_patches

KINDS = ("icosphere", "file", "sim")


@dataclass(frozen=True)
class PatchGrid:
    """A patch table and the sphere it numbers.

    ``table`` (n_patches, n_patch_vertices) int64 indexes vertices numbered as ``numbering`` says ("brainkit":
    our icosphere; "template": the template sphere of a ``sim:`` grid); ``unit`` (n_vertices, 3) are the unit
    positions of those vertices; ``correspondence`` relates the template to our icosphere (``sim:`` only)."""

    spec: str
    table: np.ndarray
    unit: np.ndarray
    numbering: str
    correspondence: Correspondence | None = None

    def in_brainkit_order(self) -> np.ndarray:
        """The table indexing data (..., n_vertices) in brainkit's vertex order (the same patches)."""
        if self.correspondence is None:
            return self.table
        return self.correspondence.to_brainkit(self.table)

    def centres(self) -> np.ndarray:
        """Unit centres (n_patches, 3) of the patches: the normalised mean of each patch's vertices."""
        centres = self.unit[self.table].mean(axis=1)
        return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def parse(spec: str) -> tuple[str, Path | None]:
    """``"icosphere"`` / ``"file:PATH"`` / ``"sim:DIR"`` -> (kind, path); :class:`ConfigError` otherwise."""
    if not isinstance(spec, str):
        raise ConfigError(f"patches must be a string, found {spec!r}.")
    kind, _, rest = spec.partition(":")
    if spec == "icosphere":
        return "icosphere", None
    if kind in ("file", "sim") and rest:
        return kind, Path(rest).expanduser()
    raise ConfigError(
        f"patches {spec!r} is not one of 'icosphere', 'file:PATH' (a patch table CSV in SIM's layout) or "
        "'sim:DIR' (SIM's released folder: patch_extraction/ and data/templates/)."
    )


def _find(folder: Path, pattern: str, what: str, fine: int, coarse: int) -> Path:
    relative = Path(pattern.format(fine=fine, coarse=coarse))
    for path in (folder / relative, folder / relative.name):
        if path.is_file():
            return path
    raise FileFormatError(
        f"sim:{folder} has no {what} {relative} (nor {relative.name} in the folder itself). SIM releases the "
        "ico-6 template and tables ico6/ico1..5: set the data's order to 6 and coarse_order to 1..5, or point "
        "sim: at a folder with the files for this grid."
    )


def _stamp(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size


def patch_grid(spec: str, fine: int, coarse: int) -> PatchGrid:
    """The patch grid ``spec`` names (module docstring) for data on the order-``fine`` icosphere cut into the
    ``20 * 4**coarse`` triangles of the order-``coarse`` one. Files are read once (cached by path and mtime)."""
    kind, path = parse(spec)
    if not (isinstance(fine, int) and isinstance(coarse, int) and 0 <= coarse <= fine <= MAX_ORDER):
        raise ConfigError(
            f"patches need integer orders 0 <= coarse <= fine <= {MAX_ORDER}, found {fine}, {coarse}."
        )
    if kind == "icosphere":
        return PatchGrid(spec, triangle_patches(fine, coarse), icosphere(fine).unit_vertices(), "brainkit")
    if kind == "file":
        return _file_grid(spec, _stamp(_existing(path)), fine, coarse)
    table = _find(path, SIM_TABLE, "patch table", fine, coarse)
    template = _find(path, SIM_TEMPLATE, "template sphere", fine, coarse)
    return _sim_grid(spec, _stamp(table), _stamp(template), fine, coarse)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FileFormatError(f"patches file:{path}: the file does not exist.")
    return path


def _read_table(path: str, fine: int, coarse: int) -> np.ndarray:
    shape = (20 * 4**coarse, n_patch_vertices(fine, coarse))
    return read_patch_table(path, n_vertices=n_vertices(fine), shape=shape)


@functools.lru_cache(maxsize=8)
def _file_grid(spec: str, stamp: tuple, fine: int, coarse: int) -> PatchGrid:
    return PatchGrid(spec, _read_table(stamp[0], fine, coarse), icosphere(fine).unit_vertices(), "brainkit")


@functools.lru_cache(maxsize=8)
def _sim_grid(spec: str, table_stamp: tuple, template_stamp: tuple, fine: int, coarse: int) -> PatchGrid:
    vertices, _ = read_sphere(template_stamp[0])
    if len(vertices) != n_vertices(fine):
        raise DataError(
            f"template sphere {template_stamp[0]} has {len(vertices)} vertices; the order-{fine} grid needs "
            f"{n_vertices(fine)}."
        )
    table = _read_table(table_stamp[0], fine, coarse)
    unit = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    unit.setflags(write=False)
    return PatchGrid(spec, table, unit, "template", find_correspondence(vertices))


__all__ = ["PatchGrid", "patch_grid", "parse", "KINDS"]
