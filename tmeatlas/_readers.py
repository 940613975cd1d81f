"""``tm.read``: data as users hold it (h5ad, 10x, Space Ranger, SpatialData, cell tables) into AnnData.

Every spatial tool of tmeatlas assumes ``obsm["spatial"]`` in microns, so each reader converts
coordinates to microns where the format says its unit, and records the unit facts in
``uns["spatial_units"]`` (:data:`UNITS_KEY`).
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from ._errors import InvalidInputError, InvalidParameterError, MissingDependencyError
from ._keys import OBS, OBSM, UNS
from ._settings import logger
from ._validation import suggest_names

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from anndata import AnnData

__all__ = ["KINDS", "PLAUSIBLE_SPACING_UM", "UNITS_KEY", "VISIUM_SPOT_DIAMETER_UM", "detect_kind", "read"]

#: the kinds of input :func:`read` knows (``kind=``)
KINDS = ("h5ad", "10x_h5", "10x_mtx", "visium", "spatialdata", "cell_table")
#: other spellings accepted for ``kind=``
KIND_ALIASES = {
    "anndata": "h5ad",
    "h5": "10x_h5",
    "10x": "10x_h5",
    "mtx": "10x_mtx",
    "spaceranger": "visium",
    "space_ranger": "visium",
    "zarr": "spatialdata",
    "xenium": "spatialdata",
    "merscope": "spatialdata",
    "cosmx": "spatialdata",
    "csv": "cell_table",
    "table": "cell_table",
    "inform": "cell_table",
    "halo": "cell_table",
    "qupath": "cell_table",
    "codex": "cell_table",
    "akoya": "cell_table",
}
#: where the unit facts of ``obsm["spatial"]`` are kept
UNITS_KEY = UNS.spatial_units
#: pixel coordinates of Visium spots (full-resolution image) are kept here for image overlays
PIXELS_KEY = "spatial_pixels"
#: a Visium spot's diameter; ``scalefactors_json.json``'s ``spot_diameter_fullres`` is the same in pixels
VISIUM_SPOT_DIAMETER_UM = 55.0
#: median nearest-neighbour distance (microns) outside which the coordinates are probably not microns:
#: cells lie 3-50 um apart, Visium spots 100 um, ST spots 200 um, so the range is generous on purpose
PLAUSIBLE_SPACING_UM = (1.0, 500.0)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
_MICRON = {"micron", "microns", "micrometer", "micrometre", "micrometers", "micrometres", "um", "µm", "μm"}


class _Coords(NamedTuple):
    """Coordinates as read, before the unit is applied."""

    xy: np.ndarray
    unit: str  # "micron", "pixel" or "unknown": the unit of ``xy``
    microns_per_unit: float | None  # what the reader knows; None when it does not
    source: str  # where they came from, in words


def read(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    microns_per_unit: float | None = None,
    sample: str | None = None,
    sample_column: str | None = None,
    x: str | None = None,
    y: str | None = None,
    markers: Sequence[str] | None = None,
    library_id: str | None = None,
    in_tissue_only: bool = True,
    load_images: bool = True,
    gex_only: bool = True,
    table: str | None = None,
) -> AnnData:
    """Read single-cell or spatial data as it is held, with coordinates in microns.

    The kind is detected from the path (``kind=`` overrides it):

    ``"h5ad"``
        An ``.h5ad`` file (:func:`anndata.read_h5ad`).
    ``"10x_h5"``
        A 10x Genomics ``.h5`` matrix (:func:`scanpy.read_10x_h5`).
    ``"10x_mtx"``
        A folder with ``matrix.mtx(.gz)``, ``features.tsv.gz`` (or ``genes.tsv``) and
        ``barcodes.tsv(.gz)``, or a folder holding ``filtered_feature_bc_matrix/``
        (:func:`scanpy.read_10x_mtx`).
    ``"visium"``
        A Space Ranger output folder (``spatial/tissue_positions*.csv`` and
        ``spatial/scalefactors_json.json`` next to a matrix ``.h5`` or folder). Only in-tissue spots
        are kept. Full-resolution pixel coordinates are multiplied by microns per pixel
        ``= 55 / spot_diameter_fullres`` (a Visium spot is 55 µm across; ``microns_per_pixel`` of the
        scale factors is used when Space Ranger writes it, as for Visium HD). Pixel coordinates stay
        in ``obsm["spatial_pixels"]``, and the images and untouched scale factors in
        ``uns["spatial"][library_id]`` as squidpy and scanpy expect: overlay spots on the image with
        ``squidpy.pl.spatial_scatter(adata, spatial_key="spatial_pixels")``.
    ``"spatialdata"``
        A SpatialData ``.zarr`` store (needs ``pip install 'tmeatlas[spatial]'``): the table's AnnData,
        with coordinates from its ``obsm["spatial"]`` or the centroids of the shapes (or labels) it
        annotates, in the ``"global"`` coordinate system. Xenium and MERSCOPE stores (named so, or with
        Xenium's table columns) are in microns; otherwise the unit is unknown and a warning asks for
        ``microns_per_unit=`` (CosMx stores are often in pixels).
    ``"cell_table"``
        A per-cell table (``.csv``, ``.tsv``, ``.txt``, optionally gzipped) exported by inForm, HALO,
        QuPath or CODEX/Akoya. Coordinates: inForm ``Cell X/Y Position`` (microns), QuPath
        ``Centroid X/Y µm`` (microns) or ``Centroid X/Y px`` (pixels), HALO ``XMin/XMax/YMin/YMax``
        (box centres, unit unknown), Xenium ``x_centroid``, MERSCOPE ``center_x`` (microns), CODEX
        ``x``/``y``, ``X``/``Y``, ``X:X``/``Y:Y`` or MCMICRO ``X_centroid`` (unit unknown). Marker
        intensities go to ``X`` (float32): a column is an intensity when it names a compartment and a
        statistic (inForm ``Entire Cell CD8 (Opal 540) Mean``, HALO ``CD8 Cell Intensity``, QuPath
        ``Cell: CD8: Mean``); for each marker the mean is preferred over median, total, max, min and
        standard deviation, then the whole cell over membrane, cytoplasm and nucleus. Marker names
        lose the compartment, the statistic and a trailing parenthesis (``Entire Cell PD-L1 (Opal 520)
        Mean (Normalized Counts, Total Weighting)`` is ``PD-L1``); ``var["source_column"]`` names the
        column used; the other statistics are dropped and autofluorescence goes to ``obs``. A table
        without such columns (CODEX, MCMICRO) takes every numeric column that is not a coordinate, an
        identifier or a morphology measure as a marker. Every other column (``Phenotype``,
        ``Phenotype-<marker>``, ``Tissue Category``, ``Classification``, ``Class``, areas, ...) goes
        to ``obs``. The sample comes from a ``Sample Name``, ``Image``, ``Image Location``, ``Slide
        ID`` or ``sample`` column when there is one (``obs["sample"]``), else from ``sample=``.

    Units: ``microns_per_unit`` (how many microns one coordinate unit of the input is) overrides what
    the reader knows and multiplies the coordinates. Without it, coordinates whose unit is pixels or
    unknown are kept as they are, with a warning. ``uns["spatial_units"]`` records ``unit`` (that of
    ``obsm["spatial"]``: ``"micron"``, ``"pixel"`` or ``"unknown"``), ``input_unit``,
    ``microns_per_unit`` (the factor applied, ``1.0`` when none), ``source``, ``reader`` and
    ``median_nn_distance``. As a plausibility check, the median distance from each cell to its
    nearest neighbour (median over samples) is compared with :data:`PLAUSIBLE_SPACING_UM` (cells
    lie 3-50 µm apart, Visium spots 100 µm, ST spots 200 µm); outside it a warning says the
    coordinates may not be microns.

    Parameters
    ----------
    path
        File or folder to read.
    kind
        One of ``"h5ad"``, ``"10x_h5"``, ``"10x_mtx"``, ``"visium"``, ``"spatialdata"``,
        ``"cell_table"`` (or an alias such as ``"inform"``, ``"qupath"``, ``"xenium"``); ``None``
        detects it from the path.
    microns_per_unit
        Microns per coordinate unit of the input (e.g. the pixel size for pixel coordinates); it
        overrides the reader's own conversion. ``None`` uses what the format says.
    sample
        Sample name written to ``obs["sample"]`` when the data do not name their samples.
    sample_column
        Column of a cell table that names each cell's sample (image, field, slide); ``None``
        looks for ``Sample Name``, ``Image``, ``Image Location``, ``Slide ID``, ``sample`` and similar.
    x, y
        Columns of a cell table holding the coordinates, instead of the detected ones (give both).
    markers
        Columns of a cell table to use as the marker matrix ``X`` instead of the detected ones.
    library_id
        Key of a Visium section in ``uns["spatial"]``; ``None`` takes ``sample``, else the library id
        stored in the matrix, else the folder name.
    in_tissue_only
        Keep only the Visium spots under tissue.
    load_images
        Load the Visium ``tissue_hires_image.png`` and ``tissue_lowres_image.png``.
    gex_only
        Keep only gene-expression features of a 10x matrix (not antibody capture etc.).
    table
        Name of the SpatialData table to read when the store holds several.

    Returns
    -------
    AnnData with coordinates, when the data have them, in ``obsm["spatial"]`` (microns).

    Raises
    ------
    InvalidInputError
        The path does not exist, its kind cannot be told, or the file is not what its name says.
    MissingDependencyError
        A SpatialData store is read without ``spatialdata`` installed.

    Examples
    --------
    >>> adata = tm.read("cell_seg_data.txt", sample="P1")  # doctest: +SKIP
    >>> adata = tm.read("outs/")  # Space Ranger output  # doctest: +SKIP
    >>> adata = tm.read("detections.csv", microns_per_unit=0.325)  # QuPath pixels  # doctest: +SKIP
    """
    mpu = _check_microns_per_unit(microns_per_unit)
    if (x is None) != (y is None):
        raise InvalidParameterError("give both x= and y= (the coordinate columns of the table), or neither.")
    kind, src = detect_kind(path, kind=kind)
    coords: _Coords | None = None
    if kind == "h5ad":
        adata, coords = _read_h5ad(src, given=mpu is not None)
    elif kind == "10x_h5":
        adata = _read_10x_h5(src, gex_only=gex_only)
    elif kind == "10x_mtx":
        adata = _read_10x_mtx(src, gex_only=gex_only)
    elif kind == "visium":
        adata, coords = _read_visium(
            src, library_id=library_id or sample, in_tissue_only=in_tissue_only,
            load_images=load_images, gex_only=gex_only,
        )  # fmt: skip
    elif kind == "spatialdata":
        adata, coords = _read_spatialdata(src, table=table)
    else:
        adata, coords = _read_cell_table(src, x=x, y=y, markers=markers, sample_column=sample_column)
    if sample is not None:
        if OBS.sample in adata.obs.columns:
            logger.info("read: the data name their samples (obs[%r]); sample=%r not used", OBS.sample, sample)
        else:
            adata.obs[OBS.sample] = pd.Categorical([str(sample)] * adata.n_obs)
    if coords is not None:
        _apply_units(adata, coords, microns_per_unit=mpu, reader=kind)
    elif mpu is not None:
        warnings.warn(
            f"microns_per_unit={mpu:g} not used: {src} has no coordinates.", UserWarning, stacklevel=2
        )
    if OBSM.spatial in adata.obsm:
        _check_spacing(adata)
    return adata


def read_input(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    microns_per_unit: float | None = None,
    lazy: bool = False,
) -> AnnData:
    """What ``tmeatlas run`` reads: an ``.h5ad`` as anndata does (lazily with ``lazy``), the rest by :func:`read`.

    Parameters
    ----------
    path
        The input file or folder.
    kind
        As for :func:`read`; ``None`` detects it.
    microns_per_unit
        As for :func:`read`; for an ``.h5ad`` it multiplies ``obsm["spatial"]``.
    lazy
        Keep the matrix of an ``.h5ad`` on disk (Dask arrays); other kinds are read into memory.
    """
    import anndata as ad

    mpu = _check_microns_per_unit(microns_per_unit)
    kind, src = detect_kind(path, kind=kind)
    if kind != "h5ad":
        if lazy:
            logger.warning("read: --lazy keeps .h5ad matrices on disk only; %s is read into memory", src)
        return read(src, kind=kind, microns_per_unit=mpu)
    _check_hdf5(src, "h5ad")
    if lazy:
        from ._core.chunks import read_h5ad_lazy

        adata = read_h5ad_lazy(src)
    else:
        adata = ad.read_h5ad(src)
    if mpu is not None:
        coords = _h5ad_coords(adata)
        if coords is None:
            warnings.warn(
                f"microns_per_unit={mpu:g} not used: {src} has no obsm['spatial'].", UserWarning, stacklevel=2
            )
        else:
            _apply_units(adata, coords, microns_per_unit=mpu, reader="h5ad")
            _check_spacing(adata)
    return adata


def _check_microns_per_unit(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = float("nan")
    if not np.isfinite(out) or out <= 0 or isinstance(value, bool):
        raise InvalidParameterError(
            f"microns_per_unit must be a positive number (microns per coordinate unit, e.g. 0.5 for "
            f"0.5 µm pixels), got {value!r}."
        )
    return out


# ---------------------------------------------------------------------------------------------
# kinds


def detect_kind(path: str | os.PathLike, *, kind: str | None = None) -> tuple[str, Path]:
    """The kind of ``path`` (one of :data:`KINDS`) and the path to read.

    Parameters
    ----------
    path
        File or folder.
    kind
        A kind (or alias) to use instead of detecting it; it is checked against :data:`KINDS`.

    Returns
    -------
    ``(kind, path)``; for a 10x ``matrix.mtx`` file the path is its folder, for an ``outs`` folder
    holding only ``filtered_feature_bc_matrix.h5`` that file.
    """
    src = Path(path).expanduser()
    if not src.exists():
        raise InvalidInputError(f"{str(src)!r} does not exist; check the path (and the working directory).")
    if kind is not None:
        key = str(kind).lower().replace("-", "_")
        key = KIND_ALIASES.get(key, key)
        if key not in KINDS:
            hint = suggest_names([kind], list(KINDS) + list(KIND_ALIASES))
            raise InvalidInputError(f"unknown kind={kind!r}; use one of {', '.join(KINDS)}. {hint}".strip())
        if key == "10x_mtx" and src.is_file():
            src = src.parent
        return key, src
    found = _detect_file(src) if src.is_file() else _detect_folder(src)
    if found is None:
        what = "file" if src.is_file() else "folder"
        raise InvalidInputError(
            f"cannot tell what kind of data the {what} {str(src)!r} holds. tm.read knows .h5ad, 10x .h5, "
            "10x matrix.mtx folders, Space Ranger (Visium) folders, SpatialData .zarr stores and cell tables "
            f"(.csv, .tsv, .txt, optionally .gz); pass kind= (one of {', '.join(KINDS)}) if it is one of these."
        )
    return found


def _detect_file(src: Path) -> tuple[str, Path] | None:
    name = src.name.lower()
    if name.endswith(".h5ad"):
        return "h5ad", src
    if name.endswith((".h5", ".hdf5")):
        return "10x_h5", src
    if name.endswith(_TABLE_SUFFIXES):
        return "cell_table", src
    if name in ("matrix.mtx", "matrix.mtx.gz"):
        return "10x_mtx", src.parent
    return None


def _detect_folder(src: Path) -> tuple[str, Path] | None:
    names = {p.name for p in src.iterdir()}
    zarr = names & {".zmetadata", "zmetadata", "zarr.json", ".zgroup"}
    if src.name.lower().endswith(".zarr") or ("tables" in names and zarr):
        if "tables" not in names and {"obs", "var"} <= names:
            raise InvalidInputError(
                f"{str(src)!r} looks like an AnnData zarr store, not a SpatialData one: read it with "
                "`anndata.read_zarr(path)`."
            )
        return "spatialdata", src
    if _visium_root(src) is not None:
        return "visium", src
    if names & {"matrix.mtx", "matrix.mtx.gz"} or _mtx_folder(src) is not None:
        return "10x_mtx", src
    h5 = sorted(src.glob("*filtered_feature_bc_matrix.h5"))
    if h5:
        return "10x_h5", h5[0]
    return None


def _check_hdf5(src: Path, kind: str) -> None:
    """Raise unless ``src`` starts with the HDF5 signature (at 0, or after a user block)."""
    if src.is_dir():
        raise InvalidInputError(f"{str(src)!r} is a folder, but kind {kind!r} needs an HDF5 file.")
    with open(src, "rb") as fh:
        for offset in (0, 512, 1024, 2048):
            fh.seek(offset)
            if fh.read(8) == HDF5_SIGNATURE:
                return
    fix = (
        "an .h5ad must be written by anndata (`adata.write_h5ad`); a zarr store is read with `anndata.read_zarr`"
        if kind == "h5ad"
        else "a 10x .h5 is the `filtered_feature_bc_matrix.h5` written by Cell Ranger / Space Ranger"
    )
    raise InvalidInputError(
        f"{str(src)!r} is not an HDF5 file (no HDF5 signature): it may be truncated, still downloading, "
        f"or another format renamed. {fix}; pass kind= if it is another kind of input."
    )


# ---------------------------------------------------------------------------------------------
# h5ad and 10x


def _read_h5ad(src: Path, *, given: bool) -> tuple[AnnData, _Coords | None]:
    import anndata as ad

    _check_hdf5(src, "h5ad")
    adata = ad.read_h5ad(src)
    return adata, _h5ad_coords(adata) if given else None


def _h5ad_coords(adata: AnnData) -> _Coords | None:
    if OBSM.spatial not in adata.obsm:
        return None
    prior = adata.uns.get(UNITS_KEY, {})
    unit = str(prior.get("unit", "unknown")) if isinstance(prior, dict) else "unknown"
    xy = np.asarray(adata.obsm[OBSM.spatial], dtype=float)
    return _Coords(xy, unit, None, "obsm['spatial'] of the h5ad")


def _read_10x_h5(src: Path, *, gex_only: bool) -> AnnData:
    import scanpy as sc

    _check_hdf5(src, "10x_h5")
    _check_10x_layout(src)
    try:
        adata = sc.read_10x_h5(src, gex_only=gex_only)
    except (KeyError, ValueError, OSError, AttributeError, TypeError) as e:  # scanpy reads what it finds
        raise InvalidInputError(
            f"{str(src)!r} is an HDF5 file but not a 10x Genomics matrix ({e}); an AnnData file must end in "
            "'.h5ad' (or pass kind='h5ad')."
        ) from e
    adata.var_names_make_unique()
    return adata


def _check_10x_layout(src: Path) -> None:
    """Raise unless the HDF5 file has a 10x ``matrix`` group (v3) or a genome group with barcodes (v2)."""
    import h5py

    with h5py.File(src, "r") as f:
        keys = set(f.keys())
        ok = isinstance(f.get("matrix"), h5py.Group) or any(
            isinstance(g, h5py.Group) and "barcodes" in g for g in f.values()
        )
    if ok:
        return
    if {"obs", "var"} <= keys:
        raise InvalidInputError(f"{str(src)!r} is an AnnData file: pass kind='h5ad' (or name it .h5ad).")
    raise InvalidInputError(
        f"{str(src)!r} is an HDF5 file but not a 10x Genomics matrix (no 'matrix' group; it holds {sorted(keys)[:8]}). "
        "Pass the filtered_feature_bc_matrix.h5 written by Cell Ranger or Space Ranger."
    )


def _mtx_folder(src: Path) -> Path | None:
    """The folder holding ``matrix.mtx(.gz)``: ``src`` itself or a ``*filtered_feature_bc_matrix`` in it."""
    for folder in (src, src / "filtered_feature_bc_matrix", *sorted(src.glob("*filtered_feature_bc_matrix"))):
        if (folder / "matrix.mtx.gz").is_file() or (folder / "matrix.mtx").is_file():
            return folder
    return None


def _read_10x_mtx(src: Path, *, gex_only: bool) -> AnnData:
    import scanpy as sc

    folder = _mtx_folder(src)
    if folder is None:
        raise InvalidInputError(
            f"no matrix.mtx or matrix.mtx.gz in {str(src)!r} (nor in a filtered_feature_bc_matrix/ folder in it); "
            "pass the folder that holds matrix.mtx.gz, features.tsv.gz and barcodes.tsv.gz."
        )
    try:
        return sc.read_10x_mtx(folder, gex_only=gex_only)
    except (FileNotFoundError, ValueError, IndexError) as e:
        raise InvalidInputError(
            f"cannot read the 10x matrix folder {str(folder)!r} ({e}). It needs matrix.mtx.gz, features.tsv.gz and "
            "barcodes.tsv.gz (Cell Ranger >= 3, gzipped) or matrix.mtx, genes.tsv and barcodes.tsv (Cell Ranger 2)."
        ) from e


# ---------------------------------------------------------------------------------------------
# Visium (Space Ranger)

_POSITION_COLUMNS = [
    "barcode",
    "in_tissue",
    "array_row",
    "array_col",
    "pxl_row_in_fullres",
    "pxl_col_in_fullres",
]


def _visium_root(src: Path) -> Path | None:
    """The Space Ranger folder with ``spatial/`` (``src`` or ``src/outs``), or ``None``."""
    for root in (src, src / "outs"):
        spatial = root / "spatial"
        if (spatial / "scalefactors_json.json").is_file() and _positions_file(spatial) is not None:
            return root
    return None


def _positions_file(spatial: Path) -> Path | None:
    for name in ("tissue_positions.csv", "tissue_positions_list.csv", "tissue_positions.parquet"):
        if (spatial / name).is_file():
            return spatial / name
    return None


def _visium_matrix(root: Path) -> Path | None:
    for name in ("filtered_feature_bc_matrix.h5", "filtered_feature_bc_matrix", "raw_feature_bc_matrix.h5"):
        if (root / name).exists():
            return root / name
    found = sorted(root.glob("*filtered_feature_bc_matrix.h5")) or sorted(root.glob("*.h5"))
    return found[0] if found else _mtx_folder(root)


def _read_positions(file: Path) -> pd.DataFrame:
    if file.suffix == ".parquet":
        pos = pd.read_parquet(file)
    else:
        with open(file, encoding="utf-8") as fh:
            header = "barcode" in fh.readline()
        pos = pd.read_csv(file, header=0 if header else None)
        if not header:
            pos.columns = _POSITION_COLUMNS[: pos.shape[1]]
    missing = [c for c in _POSITION_COLUMNS if c not in pos.columns]
    if missing:
        raise InvalidInputError(
            f"{file} lacks the columns {missing}; a Space Ranger tissue positions file has {_POSITION_COLUMNS}."
        )
    pos["barcode"] = pos["barcode"].astype(str)
    return pos.set_index("barcode")


def _read_visium(
    src: Path, *, library_id: str | None, in_tissue_only: bool, load_images: bool, gex_only: bool
) -> tuple[AnnData, _Coords]:
    root = _visium_root(src.parent if src.is_file() else src)
    if root is None:
        raise InvalidInputError(
            f"{str(src)!r} is not a Space Ranger output folder: it needs spatial/tissue_positions.csv (or "
            "tissue_positions_list.csv) and spatial/scalefactors_json.json."
        )
    matrix = _visium_matrix(root)
    if matrix is None:
        raise InvalidInputError(
            f"no count matrix in {str(root)!r}: put filtered_feature_bc_matrix.h5 (or the "
            "filtered_feature_bc_matrix/ folder) next to spatial/."
        )
    adata = (
        _read_10x_mtx(matrix, gex_only=gex_only)
        if matrix.is_dir()
        else _read_10x_h5(matrix, gex_only=gex_only)
    )
    pos = _read_positions(_positions_file(root / "spatial"))
    known = adata.obs_names.isin(pos.index)
    if not known.any():
        raise InvalidInputError(
            f"none of the matrix barcodes are in {root / 'spatial'}'s tissue positions: are the matrix and spatial/ "
            "from the same Space Ranger run?"
        )
    if not known.all():
        logger.warning(
            "read: %d barcodes of the matrix have no tissue position; left out", int((~known).sum())
        )
    keep = known.copy()
    if in_tissue_only:
        keep[known] = pos.loc[adata.obs_names[known], "in_tissue"].to_numpy() == 1
    adata = adata[keep].copy()
    pos = pos.loc[adata.obs_names]
    for col in ("in_tissue", "array_row", "array_col"):
        adata.obs[col] = pos[col].to_numpy()
    pixels = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(dtype=float)  # x, y as squidpy
    adata.obsm[PIXELS_KEY] = pixels
    with open(root / "spatial" / "scalefactors_json.json", encoding="utf-8") as fh:
        scalefactors = json.load(fh)
    if scalefactors.get("microns_per_pixel"):
        mpp, how = float(scalefactors["microns_per_pixel"]), "microns_per_pixel of scalefactors_json.json"
    elif float(scalefactors.get("spot_diameter_fullres") or 0) > 0:
        mpp = VISIUM_SPOT_DIAMETER_UM / float(scalefactors["spot_diameter_fullres"])
        how = f"{VISIUM_SPOT_DIAMETER_UM:g} um / spot_diameter_fullres ({float(scalefactors['spot_diameter_fullres']):g} px)"
    else:
        raise InvalidInputError(
            f"{root / 'spatial' / 'scalefactors_json.json'} has neither spot_diameter_fullres nor microns_per_pixel; "
            "pass microns_per_unit= (microns per full-resolution pixel)."
        )
    lib = library_id or _h5_library_id(matrix) or (root.parent.name if root.name == "outs" else root.name)
    adata.uns["spatial"] = {
        str(lib): {
            "images": _visium_images(root / "spatial") if load_images else {},
            "scalefactors": {k: v for k, v in scalefactors.items() if isinstance(v, int | float | str)},
            "metadata": {"source": str(root)},
        }
    }
    return adata, _Coords(pixels, "pixel", mpp, f"Space Ranger full-resolution pixels x {how}")


def _h5_library_id(matrix: Path) -> str | None:
    if matrix.is_dir():
        return None
    import h5py

    with h5py.File(matrix, "r") as f:
        ids = f.attrs.get("library_ids")
    if ids is None or len(np.atleast_1d(ids)) == 0:
        return None
    first = np.atleast_1d(ids)[0]
    return first.decode() if isinstance(first, bytes) else str(first)


def _visium_images(spatial: Path) -> dict[str, np.ndarray]:
    images = {}
    for res in ("hires", "lowres"):
        file = spatial / f"tissue_{res}_image.png"
        if not file.is_file():
            continue
        try:
            from PIL import Image

            with Image.open(file) as im:
                images[res] = np.asarray(im)
        except (ImportError, OSError) as e:
            logger.warning("read: image %s not loaded (%s)", file, e)
    return images


# ---------------------------------------------------------------------------------------------
# SpatialData


def _read_spatialdata(src: Path, *, table: str | None) -> tuple[AnnData, _Coords]:
    try:
        import spatialdata as sd
    except ImportError as e:
        raise MissingDependencyError(
            "reading a SpatialData store needs the spatialdata package: pip install 'tmeatlas[spatial]' "
            "(for raw Xenium, MERSCOPE or CosMx output folders, also spatialdata-io to convert them first)."
        ) from e
    try:
        sdata = sd.read_zarr(src)
    except Exception as e:  # zarr, ome-zarr and validation errors share no base class
        raise InvalidInputError(
            f"cannot read {str(src)!r} as a SpatialData store ({type(e).__name__}: {e})."
        ) from e
    names = list(sdata.tables)
    if not names:
        raise InvalidInputError(
            f"the SpatialData store {str(src)!r} has no table (no cells by features matrix)."
        )
    if table is None:
        if len(names) > 1 and "table" not in names:
            raise InvalidInputError(
                f"the store holds several tables {names}; pass table= naming the one to read."
            )
        table = "table" if "table" in names else names[0]
    elif table not in names:
        raise InvalidInputError(f"table={table!r} is not in the store; its tables: {names}.")
    adata = sdata.tables[table].copy()
    if OBSM.spatial in adata.obsm:
        xy = np.asarray(adata.obsm[OBSM.spatial], dtype=float)[:, :2]
        where = f"obsm['spatial'] of table {table!r}"
    else:
        xy, where = _spatialdata_centroids(sd, sdata, adata)
    unit, mpu, why = _spatialdata_unit(sdata, adata, src)
    return adata, _Coords(xy, unit, mpu, f"SpatialData {where}{why}")


def _spatialdata_centroids(sd: Any, sdata: Any, adata: AnnData) -> tuple[np.ndarray, str]:
    attrs = adata.uns.get("spatialdata_attrs", {})
    regions = attrs.get("region")
    region_key, instance_key = attrs.get("region_key"), attrs.get("instance_key")
    if regions is None or region_key not in adata.obs or instance_key not in adata.obs:
        raise InvalidInputError(
            "the SpatialData table has no obsm['spatial'] and does not say which shapes it annotates "
            "(uns['spatialdata_attrs'] region/region_key/instance_key); add the coordinates to obsm['spatial']."
        )
    xy = np.full((adata.n_obs, 2), np.nan)
    for region in np.atleast_1d(regions):
        element = sdata.shapes.get(region) if region in sdata.shapes else sdata.labels.get(region)
        if element is None:
            raise InvalidInputError(
                f"the table annotates {region!r}, which is neither shapes nor labels of the store."
            )
        systems = list(sd.transformations.get_transformation(element, get_all=True))
        system = "global" if "global" in systems else systems[0]
        cent = sd.get_centroids(element, coordinate_system=system)
        cent = cent.compute() if hasattr(cent, "compute") else cent
        rows = np.flatnonzero(adata.obs[region_key].astype(str).to_numpy() == str(region))
        ids = adata.obs[instance_key].to_numpy()[rows]
        found = pd.Index(cent.index).get_indexer(ids)
        if (found < 0).any():
            raise InvalidInputError(
                f"{int((found < 0).sum()):,} table rows name instances missing from {region!r}; the store is inconsistent."
            )
        xy[rows] = cent[["x", "y"]].to_numpy(dtype=float)[found]
    if np.isnan(xy).any():
        raise InvalidInputError(
            f"{int(np.isnan(xy[:, 0]).sum()):,} table rows annotate no region of the store."
        )
    return xy, f"centroids of {', '.join(map(str, np.atleast_1d(regions)))} ({system})"


def _spatialdata_unit(sdata: Any, adata: AnnData, src: Path) -> tuple[str, float | None, str]:
    """What the store says about its unit: ``(unit, microns_per_unit or None, why)``."""
    for where in (getattr(sdata, "attrs", None) or {}, adata.uns):
        for key in (UNITS_KEY, "unit", "units", "spatial_unit"):
            value = where.get(key)
            value = value.get("unit") if isinstance(value, dict) else value
            if isinstance(value, str) and value.lower() in _MICRON:
                return "micron", 1.0, f" (unit {value!r} stated by the store)"
    name = src.name.lower()
    if any(t in name for t in ("xenium", "merscope", "vizgen")) or {"transcript_counts", "cell_area"} <= set(
        adata.obs.columns
    ):
        return "micron", 1.0, " (a Xenium/MERSCOPE store: spatialdata-io writes microns)"
    return "unknown", None, " (the store does not state its unit)"


# ---------------------------------------------------------------------------------------------
# cell tables (inForm, HALO, QuPath, CODEX)

#: (x column, y column, unit, software), tried in order
_COORDINATE_COLUMNS = (
    ("Cell X Position", "Cell Y Position", "micron", "inForm"),
    ("x_centroid", "y_centroid", "micron", "Xenium"),
    ("center_x", "center_y", "micron", "MERSCOPE"),
    ("X_centroid", "Y_centroid", "unknown", "MCMICRO"),
    ("X:X", "Y:Y", "unknown", "CODEX"),
    ("x", "y", "unknown", "CODEX"),
    ("X", "Y", "unknown", "CODEX"),
    ("centroid_x", "centroid_y", "unknown", "table"),
)
#: lower-case names of coordinate columns, never markers
_COORDINATE_NAMES = {c.lower() for pair in _COORDINATE_COLUMNS for c in pair[:2]} | {
    "xmin",
    "xmax",
    "ymin",
    "ymax",
}
_QUPATH_CENTROID = re.compile(r"^Centroid (?P<axis>[XY])(?: \(?(?P<unit>[^()]+)\)?)?$")
_SAMPLE_COLUMNS = (
    "Sample Name", "sample", "Sample", "sample_id", "Sample ID", "Image", "Image Name", "image",
    "Image Location", "slide", "Slide", "Slide ID", "slide_id",
)  # fmt: skip
_ID_COLUMNS = ("Cell ID", "Object ID", "Object Id", "CellID", "cell_id", "Cell_ID", "cellLabel")
#: numeric columns of generic (CODEX, MCMICRO) tables that are not markers, lower case
_NOT_MARKERS = {
    "z", "z:z", "id", "label", "size", "area", "volume", "eccentricity", "solidity", "extent", "orientation",
    "perimeter", "majoraxislength", "minoraxislength", "tile_num", "tile_nr", "region", "fov", "x_tile",
    "y_tile", "index", "unnamed: 0", "cluster", "neighborhood", "cell_area", "nucleus_area",
    "transcript_counts", "control_probe_counts", "total_counts",
} | {c.lower() for c in _ID_COLUMNS}  # fmt: skip
_COMPARTMENT_RANK = {"entire cell": 0, "cell": 0, "membrane": 1, "cytoplasm": 2, "nucleus": 3}
_STAT_RANK = {"mean": 0, "median": 1, "total": 2, "sum": 2, "max": 3, "min": 4, "std dev": 5, "std.dev.": 5}
_INFORM = re.compile(
    r"^(?P<comp>Entire Cell|Nucleus|Cytoplasm|Membrane) (?P<marker>.+) "
    r"(?P<stat>Mean|Median|Total|Max|Min|Std Dev)(?: \([^()]*\))?$"
)
_HALO = re.compile(r"^(?P<marker>.+) (?P<comp>Cell|Cytoplasm|Nucleus|Membrane) Intensity$")
_QUPATH_OD = re.compile(r"^(?P<marker>.+) OD (?P<stat>mean|median|max|min|std dev|sum)$", re.IGNORECASE)
_AUTOFLUORESCENCE = re.compile(r"^(auto ?fluorescence|af)$", re.IGNORECASE)


def _parse_intensity(column: str) -> tuple[str, str, str] | None:
    """``(marker, compartment, statistic)`` of an intensity column, ``None`` for other columns.

    >>> _parse_intensity("Entire Cell PD-L1 (Opal 520) Mean (Normalized Counts, Total Weighting)")
    ('PD-L1 (Opal 520)', 'entire cell', 'mean')
    """
    m = _INFORM.match(column)
    if m:
        return m["marker"], m["comp"].lower(), m["stat"].lower()
    m = _HALO.match(column)
    if m:
        return m["marker"], m["comp"].lower(), "mean"
    parts = [p.strip() for p in column.split(":")]
    if len(parts) == 3 and parts[2].lower() in _STAT_RANK:
        if parts[0].lower() in _COMPARTMENT_RANK:
            return parts[1], parts[0].lower(), parts[2].lower()
        if parts[1].lower() in _COMPARTMENT_RANK:
            return parts[0], parts[1].lower(), parts[2].lower()
    if len(parts) == 2 and parts[0].lower() in _COMPARTMENT_RANK:
        m = _QUPATH_OD.match(parts[1])
        if m:
            return m["marker"], parts[0].lower(), m["stat"].lower()
    return None


def _clean_marker(name: str) -> str:
    """A marker name without a trailing parenthesis (the dye): ``"PD-L1 (Opal 520)"`` is ``"PD-L1"``."""
    clean = re.sub(r"\s*\([^()]*\)\s*$", "", str(name)).strip()
    return clean or str(name).strip()


def _read_table(src: Path) -> pd.DataFrame:
    opener = gzip.open if src.name.lower().endswith(".gz") else open
    with opener(src, "rt", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    counts = {sep: first.count(sep) for sep in ("\t", ",", ";")}
    sep = max(counts, key=counts.get)
    try:
        try:
            df = pd.read_csv(src, sep=sep, low_memory=False, encoding="utf-8")
        except UnicodeDecodeError:
            df = pd.read_csv(src, sep=sep, low_memory=False, encoding="latin-1")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, EOFError, OSError) as e:
        raise InvalidInputError(
            f"cannot read {str(src)!r} as a table ({e}); pass kind= if it is not one."
        ) from e
    if df.empty or df.shape[1] < 2:
        raise InvalidInputError(f"{str(src)!r} holds no cell table (no rows, or a single column).")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _unit_of(column: str) -> str:
    low = column.lower()
    if re.search(r"(µm|μm|micron|\bum\b|Âµm)", low):
        return "micron"
    if re.search(r"(\bpx\b|pixel)", low):
        return "pixel"
    return "unknown"


def _table_coordinates(
    df: pd.DataFrame, *, x: str | None, y: str | None
) -> tuple[np.ndarray, str, str, list[str]]:
    """``(xy, unit, source, columns used)`` of a cell table."""
    cols = list(df.columns)
    if x is not None:
        missing = [c for c in (x, y) if c not in df.columns]
        if missing:
            raise InvalidInputError(
                f"coordinate columns {missing} not in the table. {suggest_names(missing, cols)}"
            )
        pair, unit, software = (x, y), _unit_of(x), "given"
    else:
        pair, unit, software = _detect_coordinates(df)
    if pair is None:
        boxes = np.column_stack(
            [pd.to_numeric(df[c], errors="coerce") for c in ("XMin", "XMax", "YMin", "YMax")]
        )
        xy = np.column_stack([(boxes[:, 0] + boxes[:, 1]) / 2, (boxes[:, 2] + boxes[:, 3]) / 2])
        return xy, "unknown", "HALO XMin/XMax/YMin/YMax box centres", ["XMin", "XMax", "YMin", "YMax"]
    xy = np.column_stack([pd.to_numeric(df[c], errors="coerce") for c in pair]).astype(float)
    if np.isnan(xy).all():
        raise InvalidInputError(
            f"the coordinate columns {list(pair)} hold no numbers; pass x= and y= naming others."
        )
    return xy, unit, f"{software} columns {pair[0]!r}/{pair[1]!r}", list(pair)


def _detect_coordinates(df: pd.DataFrame) -> tuple[tuple[str, str] | None, str, str]:
    cols = set(df.columns)
    for xc, yc, unit, software in _COORDINATE_COLUMNS:
        if xc in cols and yc in cols:
            return (xc, yc), unit if unit != "unknown" else _unit_of(xc), software
    qupath = {m["axis"]: (c, m["unit"] or "") for c in df.columns if (m := _QUPATH_CENTROID.match(c))}
    if set(qupath) == {"X", "Y"}:
        unit = _unit_of(qupath["X"][1])
        return (qupath["X"][0], qupath["Y"][0]), unit, "QuPath"
    if {"XMin", "XMax", "YMin", "YMax"} <= cols:
        return None, "unknown", "HALO"
    lower = {c.lower(): c for c in df.columns}
    for xc, yc, unit, software in _COORDINATE_COLUMNS:
        if xc.lower() in lower and yc.lower() in lower:
            return (lower[xc.lower()], lower[yc.lower()]), unit, software
    looked = ", ".join(f"{a}/{b}" for a, b, _, _ in _COORDINATE_COLUMNS)
    raise InvalidInputError(
        f"no coordinate columns recognised in the table (looked for {looked}, QuPath 'Centroid X µm'/'Centroid X px' "
        f"and HALO XMin/XMax/YMin/YMax; its columns start {list(df.columns)[:8]}): pass x= and y= naming them."
    )


def _table_markers(
    df: pd.DataFrame, *, markers: Sequence[str] | None, skip: set[str]
) -> tuple[np.ndarray, pd.DataFrame, set[str]]:
    """``(X, var, columns consumed)``: the marker matrix of a cell table (rule in :func:`read`)."""
    numeric = [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
    if markers is not None:
        missing = [c for c in markers if c not in df.columns]
        if missing:
            raise InvalidInputError(
                f"marker columns {missing} not in the table. {suggest_names(missing, list(df.columns))}"
            )
        chosen = {c: ((_parse_intensity(c) or (c, "", ""))[0], c) for c in markers}
        consumed = set(markers)
    else:
        parsed = {c: p for c in numeric if (p := _parse_intensity(c)) is not None}
        consumed = set(parsed)
        best: dict[str, tuple[tuple[int, int, int], str]] = {}
        for i, (c, (marker, comp, stat)) in enumerate(parsed.items()):
            rank = (_STAT_RANK.get(stat, 9), _COMPARTMENT_RANK.get(comp, 9), i)
            if marker not in best or rank < best[marker][0]:
                best[marker] = (rank, c)
        chosen = {best[m][1]: (m, best[m][1]) for m in best if not _AUTOFLUORESCENCE.match(_clean_marker(m))}
        consumed -= {best[m][1] for m in best if _AUTOFLUORESCENCE.match(_clean_marker(m))}  # kept in obs
        if not parsed:  # CODEX / MCMICRO: the markers are the other numeric columns
            generic = [c for c in numeric if not _not_marker(c)]
            chosen, consumed = {c: (c, c) for c in generic}, set(generic)
    raw = [m for m, _ in chosen.values()]
    clean = [_clean_marker(m) for m in raw]
    # keep the dye where it tells two channels of one marker apart
    names = [c if clean.count(c) == 1 else r for c, r in zip(clean, raw)]
    cols = [c for _, c in chosen.values()]
    X = np.zeros((len(df), len(cols)), dtype=np.float32)
    for j, c in enumerate(cols):
        X[:, j] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float32)
    info = [_parse_intensity(c) or ("", "", "") for c in cols]
    var = pd.DataFrame(
        {"source_column": cols, "compartment": [i[1] for i in info], "statistic": [i[2] for i in info]},
        index=pd.Index(names, dtype=str),
    )
    if not var.index.is_unique:
        var.index = pd.Index(_unique(list(var.index)))
    return X, var, consumed


def _not_marker(column: str) -> bool:
    """Whether a numeric column of a generic table is an identifier, a shape measure or a coordinate."""
    low = column.lower()
    return low in _NOT_MARKERS or low in _COORDINATE_NAMES or bool(_QUPATH_CENTROID.match(column))


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n] - 1}")
    return out


def _table_sample(df: pd.DataFrame, sample_column: str | None) -> str | None:
    if sample_column is not None:
        if sample_column not in df.columns:
            hint = suggest_names([sample_column], list(df.columns))
            raise InvalidInputError(
                f"sample_column={sample_column!r} is not a column of the table. {hint}".strip()
            )
        return sample_column
    return next((c for c in _SAMPLE_COLUMNS if c in df.columns), None)


def _read_cell_table(
    src: Path, *, x: str | None, y: str | None, markers: Sequence[str] | None, sample_column: str | None
) -> tuple[AnnData, _Coords]:
    import anndata as ad

    df = _read_table(src)
    xy, unit, source, used = _table_coordinates(df, x=x, y=y)
    bad = np.isnan(xy).any(axis=1)
    if bad.all():
        raise InvalidInputError(f"no row of {str(src)!r} has both coordinates.")
    if bad.any():
        logger.warning("read: %d of %d cells have no coordinates; left out", int(bad.sum()), len(bad))
        df, xy = df.loc[~bad].reset_index(drop=True), xy[~bad]
    scol = _table_sample(df, sample_column)
    X, var, consumed = _table_markers(df, markers=markers, skip=set(used) | {scol} - {None})
    obs = df.drop(columns=[c for c in df.columns if c in consumed or c in used or c == scol])
    obs = obs.rename(columns=lambda c: str(c).replace("/", "_"))
    for c in obs.columns:
        if not pd.api.types.is_numeric_dtype(obs[c]) and not pd.api.types.is_bool_dtype(obs[c]):
            col = obs[c]
            obs[c] = col.where(col.isna(), col.astype(str)).astype("category")
    if scol is not None:
        obs = obs.rename(columns={OBS.sample: f"{OBS.sample} (table)"})
        values = df[scol].astype(str).map(lambda v: re.split(r"[\\/]", v)[-1]).where(df[scol].notna())
        obs.insert(0, OBS.sample, values.astype("category"))
    obs.index = _table_obs_names(df, scol)
    adata = ad.AnnData(X=X, obs=obs, var=var)
    what = f"{X.shape[1]} markers ({', '.join(var.index[:8])}{', ...' if X.shape[1] > 8 else ''})"
    logger.info("read: %s cells, %s, coordinates from %s", f"{adata.n_obs:,}", what, source)
    return adata, _Coords(xy, unit, 1.0 if unit == "micron" else None, source)


def _table_obs_names(df: pd.DataFrame, scol: str | None) -> pd.Index:
    idcol = next((c for c in _ID_COLUMNS if c in df.columns), None)
    if idcol is not None and df[idcol].notna().all():
        ids = df[idcol].astype(str)
        if ids.is_unique:
            return pd.Index(ids.to_numpy(), dtype=str)
        if scol is not None:
            named = df[scol].astype(str) + "_" + ids
            if named.is_unique:
                return pd.Index(named.to_numpy(), dtype=str)
    return pd.Index(np.arange(len(df)).astype(str), dtype=str)


# ---------------------------------------------------------------------------------------------
# units


def _apply_units(adata: AnnData, coords: _Coords, *, microns_per_unit: float | None, reader: str) -> None:
    """Write ``obsm["spatial"]`` (microns where the unit is known) and ``uns["spatial_units"]``."""
    source = coords.source
    if microns_per_unit is not None:
        factor, unit = microns_per_unit, "micron"
        source += f"; x {microns_per_unit:g} (microns_per_unit given)"
    elif coords.microns_per_unit is not None:
        factor, unit = coords.microns_per_unit, "micron"
    else:
        factor, unit = 1.0, coords.unit
        if coords.unit == "micron":
            pass
        elif coords.unit == "pixel":
            warnings.warn(
                f"the coordinates ({coords.source}) are in pixels and were kept so; tmeatlas's spatial tools "
                "expect microns: pass microns_per_unit= (the pixel size in microns) to tm.read.",
                UserWarning,
                stacklevel=3,
            )
        else:
            warnings.warn(
                f"the unit of the coordinates ({coords.source}) is not stated; they were kept as they are and "
                "taken as microns. If they are pixels, pass microns_per_unit= (the pixel size in microns) to tm.read.",
                UserWarning,
                stacklevel=3,
            )
    adata.obsm[OBSM.spatial] = np.asarray(coords.xy, dtype=float) * factor
    adata.uns[UNITS_KEY] = {
        "unit": unit,
        "input_unit": coords.unit,
        "microns_per_unit": float(factor),
        "source": source,
        "reader": reader,
    }


def median_spacing(xy: np.ndarray, groups: np.ndarray) -> float | None:
    """Median over groups (samples) of the median distance from a point to its nearest neighbour
    (up to 20,000 points drawn per group); ``None`` when no group has 3 distinct points.
    """
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=float)[:, :2]
    medians = []
    rng = np.random.default_rng(0)
    for g in np.unique(groups):
        pts = xy[groups == g]
        if len(pts) < 3:
            continue
        query = pts[rng.choice(len(pts), 20_000, replace=False)] if len(pts) > 20_000 else pts
        d = cKDTree(pts).query(query, k=2)[0][:, 1]
        d = d[d > 0]
        if d.size:
            medians.append(float(np.median(d)))
    return float(np.median(medians)) if medians else None


def _check_spacing(adata: AnnData) -> None:
    """Warn when the median nearest-neighbour distance is not that of cells or spots in microns."""
    xy = np.asarray(adata.obsm[OBSM.spatial], dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2 or not np.isfinite(xy[:, :2]).all():
        return
    groups = adata.obs[OBS.sample].astype(str).to_numpy() if OBS.sample in adata.obs else np.zeros(len(xy))
    spacing = median_spacing(xy, groups)
    if spacing is None:
        return
    if isinstance(adata.uns.get(UNITS_KEY), dict):
        adata.uns[UNITS_KEY]["median_nn_distance"] = spacing
    low, high = PLAUSIBLE_SPACING_UM
    if not low <= spacing <= high:
        warnings.warn(
            f"the median distance between neighbouring cells is {spacing:.3g} coordinate units, outside "
            f"{low:g}-{high:g} µm (cells lie 3-50 µm apart, Visium spots 100 µm, ST spots 200 µm): the "
            "coordinates may be in pixels or another unit. Pass microns_per_unit= (microns per coordinate unit) "
            "to tm.read.",
            UserWarning,
            stacklevel=3,
        )
