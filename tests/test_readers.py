"""tm.read: each reader on small generated data with known answers, the errors, the real inForm table."""

from __future__ import annotations

import contextlib
import gzip
import json
import sys
import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import io as spio
from scipy import sparse

import tmeatlas as tm
from tmeatlas._readers import (
    UNITS_KEY,
    VISIUM_SPOT_DIAMETER_UM,
    _clean_marker,
    _parse_intensity,
    detect_kind,
    read_input,
)
from tmeatlas.cli import _parser, main

GENES = ["TP53", "EGFR", "MYC", "CD3E", "PTPRC"]


def _counts(n_cells=6, n_genes=5, seed=0):
    rng = np.random.default_rng(seed)
    return sparse.csr_matrix(rng.poisson(2.0, (n_cells, n_genes)).astype(np.int32))


def _barcodes(n):
    return [f"AAAC{i:04d}-1" for i in range(n)]


def write_10x_h5(path, X, barcodes, genes, *, gene_ids=None, library_id=None):
    """A Cell Ranger >= 3 ``filtered_feature_bc_matrix.h5`` (cells x genes ``X``, stored genes x cells)."""
    csc = sparse.csr_matrix(X)  # cells x genes CSR: the genes x cells CSC that 10x stores
    gene_ids = gene_ids or [f"ENSG{i:011d}" for i in range(len(genes))]
    with h5py.File(path, "w") as f:
        if library_id is not None:
            f.attrs["library_ids"] = np.array([library_id.encode()])
        m = f.create_group("matrix")
        m["data"] = csc.data.astype(np.int32)
        m["indices"] = csc.indices.astype(np.int64)
        m["indptr"] = csc.indptr.astype(np.int64)
        m["shape"] = np.array([len(genes), len(barcodes)], dtype=np.int32)
        m["barcodes"] = np.array([b.encode() for b in barcodes])
        feats = m.create_group("features")
        feats["id"] = np.array([g.encode() for g in gene_ids])
        feats["name"] = np.array([g.encode() for g in genes])
        feats["feature_type"] = np.array([b"Gene Expression"] * len(genes))
        feats["genome"] = np.array([b"GRCh38"] * len(genes))
        feats["_all_tag_keys"] = np.array([b"genome"])


def write_10x_mtx(folder, X, barcodes, genes, *, gene_ids=None):
    folder.mkdir(parents=True, exist_ok=True)
    gene_ids = gene_ids or [f"ENSG{i:011d}" for i in range(len(genes))]
    with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
        spio.mmwrite(fh, sparse.coo_matrix(sparse.csr_matrix(X).T).astype(np.int64))
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        fh.writelines(f"{i}\t{g}\tGene Expression\n" for i, g in zip(gene_ids, genes))
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.writelines(f"{b}\n" for b in barcodes)
    return folder


#: spots of the generated Visium section: (in_tissue, array_row, array_col, pxl_row, pxl_col)
SPOTS = [(1, 0, 0, 2000, 1000), (1, 0, 2, 2000, 1200), (1, 1, 1, 2173, 1100), (0, 5, 5, 3000, 3000),
         (1, 1, 3, 2173, 1300)]  # fmt: skip
SPOT_DIAMETER_PX = 110.0  # microns per pixel = 55 / 110 = 0.5


def write_visium(root, *, legacy=False, image=True):
    """A Space Ranger ``outs`` folder with five spots (one off tissue) and a 12 x 10 lowres image."""
    from PIL import Image

    bcs = _barcodes(len(SPOTS))
    root.mkdir(parents=True, exist_ok=True)
    write_10x_h5(root / "filtered_feature_bc_matrix.h5", _counts(len(SPOTS)), bcs, GENES, library_id="LIB1")
    spatial = root / "spatial"
    spatial.mkdir()
    pos = pd.DataFrame(
        SPOTS, columns=["in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]
    )
    pos.insert(0, "barcode", bcs)
    if legacy:
        pos.to_csv(spatial / "tissue_positions_list.csv", index=False, header=False)
    else:
        pos.to_csv(spatial / "tissue_positions.csv", index=False)
    sf = {"spot_diameter_fullres": SPOT_DIAMETER_PX, "tissue_hires_scalef": 0.2, "fiducial_diameter_fullres": 170.0,
          "tissue_lowres_scalef": 0.05}  # fmt: skip
    (spatial / "scalefactors_json.json").write_text(json.dumps(sf))
    if image:
        Image.fromarray(np.full((12, 10, 3), 200, dtype=np.uint8)).save(spatial / "tissue_lowres_image.png")
    return root


@contextlib.contextmanager
def no_unit_warning():
    """Fail if tm.read warns about units (other libraries' warnings pass)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    bad = [str(w.message) for w in caught if "microns_per_unit" in str(w.message)]
    assert not bad, bad


# ---------------------------------------------------------------------------------------------
# 10x


def test_10x_h5_known_answer(tmp_path):
    X = _counts(7)
    write_10x_h5(tmp_path / "m.h5", X, _barcodes(7), GENES)
    a = tm.read(tmp_path / "m.h5", sample="P1")
    assert a.shape == (7, len(GENES)) and list(a.var_names) == GENES
    np.testing.assert_array_equal(a.X.toarray(), X.toarray())
    assert a.var["gene_ids"].iloc[0] == "ENSG00000000000"
    assert (a.obs["sample"] == "P1").all() and "spatial" not in a.obsm and UNITS_KEY not in a.uns


def test_10x_mtx_folder_file_and_parent(tmp_path):
    X = _counts(5)
    inner = write_10x_mtx(tmp_path / "outs" / "filtered_feature_bc_matrix", X, _barcodes(5), GENES)
    for path in (inner, inner / "matrix.mtx.gz", tmp_path / "outs"):
        assert detect_kind(path)[0] == "10x_mtx"
        a = tm.read(path)
        assert list(a.var_names) == GENES and list(a.obs_names) == _barcodes(5)
        np.testing.assert_array_equal(a.X.toarray(), X.toarray())


def test_outs_folder_with_only_an_h5(tmp_path):
    (tmp_path / "outs").mkdir()
    write_10x_h5(tmp_path / "outs" / "filtered_feature_bc_matrix.h5", _counts(3), _barcodes(3), GENES)
    kind, src = detect_kind(tmp_path / "outs")
    assert kind == "10x_h5" and src.name == "filtered_feature_bc_matrix.h5"
    assert tm.read(tmp_path / "outs").n_obs == 3


# ---------------------------------------------------------------------------------------------
# Visium


def test_visium_microns_known_answer(tmp_path):
    write_visium(tmp_path / "sectionA" / "outs")
    with no_unit_warning():
        a = tm.read(tmp_path / "sectionA")  # the folder above outs/ works too
    mpp = VISIUM_SPOT_DIAMETER_UM / SPOT_DIAMETER_PX
    assert mpp == 0.5
    in_tissue = [s for s in SPOTS if s[0] == 1]
    assert a.n_obs == 4 and "AAAC0003-1" not in a.obs_names  # the off-tissue spot is left out
    expected_px = np.array([[s[4], s[3]] for s in in_tissue], dtype=float)  # x = column, y = row
    np.testing.assert_allclose(a.obsm["spatial_pixels"], expected_px)
    np.testing.assert_allclose(a.obsm["spatial"], [[500, 1000], [600, 1000], [550, 1086.5], [650, 1086.5]])
    units = a.uns[UNITS_KEY]
    assert units["unit"] == "micron" and units["input_unit"] == "pixel" and units["microns_per_unit"] == 0.5
    assert units["reader"] == "visium" and 40 < units["median_nn_distance"] < 120
    lib = a.uns["spatial"]["LIB1"]  # library id from the matrix
    assert lib["images"]["lowres"].shape == (12, 10, 3) and "hires" not in lib["images"]
    assert lib["scalefactors"]["spot_diameter_fullres"] == SPOT_DIAMETER_PX
    assert list(a.obs["array_row"]) == [s[1] for s in in_tissue]
    a.write_h5ad(tmp_path / "v.h5ad")  # h5ad-safe


def test_visium_options_and_legacy_positions(tmp_path):
    root = write_visium(tmp_path / "B", legacy=True, image=False)
    a = tm.read(root, in_tissue_only=False, library_id="mine", microns_per_unit=2.0, load_images=False)
    assert a.n_obs == 5 and list(a.uns["spatial"]) == ["mine"] and a.uns["spatial"]["mine"]["images"] == {}
    np.testing.assert_allclose(a.obsm["spatial"][0], [2000, 4000])  # microns_per_unit overrides 55 / diameter
    assert a.uns[UNITS_KEY]["microns_per_unit"] == 2.0


def test_visium_missing_matrix(tmp_path):
    root = write_visium(tmp_path / "C")
    (root / "filtered_feature_bc_matrix.h5").unlink()
    with pytest.raises(tm.InvalidInputError, match="filtered_feature_bc_matrix"):
        tm.read(root)


# ---------------------------------------------------------------------------------------------
# SpatialData


def _sdata_store(path, *, obsm_spatial=False, scale=1.0):
    sd = pytest.importorskip("spatialdata")
    import geopandas as gpd
    from shapely.geometry import Point
    from spatialdata.models import ShapesModel, TableModel
    from spatialdata.transformations import Scale

    xy = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [20.0, 5.0]])
    circles = gpd.GeoDataFrame({"radius": [4.0] * 5}, geometry=[Point(*p) for p in xy], index=np.arange(5))
    shapes = ShapesModel.parse(circles, transformations={"global": Scale([scale, scale], axes=("x", "y"))})
    obs = pd.DataFrame(
        {"region": pd.Categorical(["cells"] * 5), "cell_id": [4, 3, 2, 1, 0]},
        index=[f"c{i}" for i in range(5)],
    )
    table = ad.AnnData(np.arange(15, dtype=np.float32).reshape(5, 3), obs=obs)
    if obsm_spatial:
        table.obsm["spatial"] = xy[::-1] * 3
    table = TableModel.parse(table, region="cells", region_key="region", instance_key="cell_id")
    sd.SpatialData(shapes={"cells": shapes}, tables={"table": table}).write(path)
    return xy


def test_spatialdata_centroids_and_units(tmp_path):
    xy = _sdata_store(tmp_path / "run1.zarr", scale=2.0)
    assert detect_kind(tmp_path / "run1.zarr")[0] == "spatialdata"
    with pytest.warns(UserWarning, match="microns_per_unit"):
        a = tm.read(tmp_path / "run1.zarr")
    np.testing.assert_allclose(a.obsm["spatial"], xy[[4, 3, 2, 1, 0]] * 2.0)  # instance ids, global system
    assert a.uns[UNITS_KEY]["unit"] == "unknown"
    b = tm.read(tmp_path / "run1.zarr", microns_per_unit=0.5)
    np.testing.assert_allclose(b.obsm["spatial"], xy[[4, 3, 2, 1, 0]])
    assert b.uns[UNITS_KEY]["unit"] == "micron"


def test_spatialdata_obsm_and_xenium_name(tmp_path):
    xy = _sdata_store(tmp_path / "xenium_lung.zarr", obsm_spatial=True)
    with no_unit_warning():
        a = tm.read(tmp_path / "xenium_lung.zarr")
    np.testing.assert_allclose(a.obsm["spatial"], xy[::-1] * 3)
    assert a.uns[UNITS_KEY]["unit"] == "micron" and a.X.shape == (5, 3)


def test_spatialdata_missing_dependency(tmp_path, monkeypatch):
    (tmp_path / "s.zarr" / "tables").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "spatialdata", None)
    with pytest.raises(tm.MissingDependencyError, match=r"tmeatlas\[spatial\]"):
        tm.read(tmp_path / "s.zarr")


# ---------------------------------------------------------------------------------------------
# cell tables


@pytest.mark.parametrize(
    ("column", "parsed"),
    [
        ("Entire Cell PD-L1 (Opal 520) Mean (Normalized Counts, Total Weighting)", ("PD-L1 (Opal 520)", "entire cell", "mean")),
        ("Nucleus FoxP3 (Opal 570) Std Dev", ("FoxP3 (Opal 570)", "nucleus", "std dev")),
        ("Entire Cell DAPI Total", ("DAPI", "entire cell", "total")),
        ("CD8 (Opal 540) Cell Intensity", ("CD8 (Opal 540)", "cell", "mean")),
        ("Cell: CD3: Mean", ("CD3", "cell", "mean")),
        ("CD3: Cytoplasm: Median", ("CD3", "cytoplasm", "median")),
        ("Nucleus: DAB OD mean", ("DAB", "nucleus", "mean")),
        ("Entire Cell Area (sq microns)", None),
        ("Nucleus Minor Axis", None),
        ("Nucleus: Area", None),
        ("Cell X Position", None),
    ],
)  # fmt: skip
def test_intensity_columns_known_answers(column, parsed):
    assert _parse_intensity(column) == parsed


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("PD-L1 (Opal 520)", "PD-L1"),
        ("CD8", "CD8"),
        ("Ki67 (Opal 650) ", "Ki67"),
        ("(Opal 520)", "(Opal 520)"),
    ],
)
def test_marker_name_cleaning(raw, clean):
    assert _clean_marker(raw) == clean


def _grid(n, spacing):
    side = int(np.ceil(np.sqrt(n)))
    rng = np.random.default_rng(1)
    g = np.array([(i % side, i // side) for i in range(n)], dtype=float) * spacing
    return g + rng.uniform(-0.1, 0.1, g.shape) * spacing


def test_inform_table(tmp_path):
    n = 12
    xy = _grid(n, 15.0)
    rng = np.random.default_rng(2)
    df = pd.DataFrame(
        {
            "Sample Name": ["f1.im3"] * 6 + ["f2.im3"] * 6,
            "Tissue Category": ["Tumor", "Stroma"] * 6,
            "Phenotype": ["CD8+", "other", "CK+"] * 4,
            "Phenotype-CD8": ["CD8+", "CD8-", "CD8-"] * 4,
            "Cell ID": list(range(1, 7)) * 2,
            "Cell X Position": xy[:, 0],
            "Cell Y Position": xy[:, 1],
            "Nucleus Area (sq microns)": rng.uniform(20, 40, n),
        }
    )
    for marker, dye in (
        ("PD-L1", " (Opal 520)"),
        ("CD8", " (Opal 540)"),
        ("DAPI", ""),
        ("Autofluorescence", ""),
    ):
        for comp in ("Nucleus", "Entire Cell"):
            for stat in ("Min", "Mean", "Max"):
                df[f"{comp} {marker}{dye} {stat} (Normalized Counts, Total Weighting)"] = rng.uniform(
                    0, 10, n
                )
    df.to_csv(tmp_path / "cell_seg_data.txt", sep="\t", index=False)
    with no_unit_warning():
        a = tm.read(tmp_path / "cell_seg_data.txt", sample="ignored")
    assert list(a.var_names) == ["PD-L1", "CD8", "DAPI"] and a.X.dtype == np.float32
    src = "Entire Cell PD-L1 (Opal 520) Mean (Normalized Counts, Total Weighting)"
    assert a.var.loc["PD-L1", "source_column"] == src
    np.testing.assert_allclose(a.X[:, 0], df[src].to_numpy(dtype=np.float32))
    np.testing.assert_allclose(a.obsm["spatial"], xy)  # inForm positions are microns
    assert a.uns[UNITS_KEY]["unit"] == "micron" and a.uns[UNITS_KEY]["input_unit"] == "micron"
    assert list(a.obs["sample"].cat.categories) == ["f1.im3", "f2.im3"]
    assert a.obs_names[0] == "f1.im3_1" and a.obs_names.is_unique
    for col in ("Phenotype", "Phenotype-CD8", "Tissue Category", "Nucleus Area (sq microns)"):
        assert col in a.obs.columns
    assert "Entire Cell Autofluorescence Mean (Normalized Counts, Total Weighting)" in a.obs.columns
    assert not any("Max" in c for c in a.obs.columns)  # other statistics are dropped
    a.write_h5ad(tmp_path / "t.h5ad")


def test_halo_table_box_centres_and_units(tmp_path):
    df = pd.DataFrame(
        {
            "Image Location": [r"\\server\scans\slide7.qptiff"] * 4,
            "XMin": [0, 40, 0, 40], "XMax": [20, 60, 20, 60], "YMin": [0, 0, 40, 40], "YMax": [10, 10, 50, 50],
            "Classification": ["CD8", "Tumor", "CD8", "Other"],
            "CD8 (Opal 540) Nucleus Intensity": [1.0, 2.0, 3.0, 4.0],
            "CD8 (Opal 540) Cell Intensity": [5.0, 6.0, 7.0, 8.0],
            "CD8 (Opal 540) Positive Classification": [1, 0, 1, 0],
        }
    )  # fmt: skip
    df.to_csv(tmp_path / "halo.csv", index=False)
    with pytest.warns(UserWarning, match="microns_per_unit"):  # HALO does not state its unit
        a = tm.read(tmp_path / "halo.csv")
    np.testing.assert_allclose(a.obsm["spatial"], [[10, 5], [50, 5], [10, 45], [50, 45]])
    assert list(a.var_names) == ["CD8"] and list(a.X[:, 0]) == [5, 6, 7, 8]
    assert a.obs["sample"].iloc[0] == "slide7.qptiff" and "Classification" in a.obs
    assert a.uns[UNITS_KEY]["unit"] == "unknown"
    with no_unit_warning():
        b = tm.read(tmp_path / "halo.csv", microns_per_unit=0.5)
    np.testing.assert_allclose(b.obsm["spatial"], [[5, 2.5], [25, 2.5], [5, 22.5], [25, 22.5]])
    assert b.uns[UNITS_KEY] == {
        **b.uns[UNITS_KEY],
        "unit": "micron",
        "input_unit": "unknown",
        "microns_per_unit": 0.5,
    }


@pytest.mark.parametrize("unit", ["µm", "px"])
def test_qupath_table(tmp_path, unit):
    xy = _grid(9, 12.0 if unit == "µm" else 30.0)
    df = pd.DataFrame(
        {
            "Image": ["img.svs"] * 9,
            "Class": ["Tumor", "Immune cells", "Stroma"] * 3,
            f"Centroid X {unit}": xy[:, 0],
            f"Centroid Y {unit}": xy[:, 1],
            "Nucleus: Area": np.arange(9.0),
            "Nucleus: CD3: Mean": np.arange(9.0),
            "Cell: CD3: Mean": np.arange(9.0) * 2,
            "Cell: CD3: Max": np.arange(9.0) * 3,
        }
    )
    df.to_csv(tmp_path / "detections.tsv", sep="\t", index=False, encoding="utf-8")
    if unit == "µm":
        with no_unit_warning():
            a = tm.read(tmp_path / "detections.tsv")
        np.testing.assert_allclose(a.obsm["spatial"], xy)
    else:
        with pytest.warns(UserWarning, match="pixels"):
            a = tm.read(tmp_path / "detections.tsv")
        assert a.uns[UNITS_KEY]["unit"] == "pixel"
        a = tm.read(tmp_path / "detections.tsv", microns_per_unit=0.4)
        np.testing.assert_allclose(a.obsm["spatial"], xy * 0.4)
    assert a.uns[UNITS_KEY]["unit"] == "micron"
    np.testing.assert_allclose(a.X[:, 0], np.arange(9.0) * 2)  # the whole-cell mean
    assert list(a.var_names) == ["CD3"] and "Class" in a.obs and "Nucleus: Area" in a.obs


def test_codex_table_and_overrides(tmp_path):
    xy = _grid(16, 25.0)
    df = pd.DataFrame({"cell_id": range(16), "region": 1, "x": xy[:, 0], "y": xy[:, 1], "size": 40,
                       "CD45": np.arange(16.0), "PanCK": np.ones(16), "px_x": xy[:, 0] * 2, "px_y": xy[:, 1] * 2})  # fmt: skip
    df.to_csv(tmp_path / "codex.csv.gz", index=False)
    with pytest.warns(UserWarning, match="microns_per_unit"):
        a = tm.read(tmp_path / "codex.csv.gz", sample="S1", markers=["CD45", "PanCK"])
    assert list(a.var_names) == ["CD45", "PanCK"] and (a.obs["sample"] == "S1").all()
    np.testing.assert_allclose(a.obsm["spatial"], xy)
    with pytest.warns(UserWarning, match="microns_per_unit"):
        g = tm.read(tmp_path / "codex.csv.gz", x="px_x", y="px_y")
    assert set(g.var_names) == {"CD45", "PanCK"}  # generic: numeric columns that are not ids or shape
    np.testing.assert_allclose(g.obsm["spatial"], xy * 2)
    b = tm.read(tmp_path / "codex.csv.gz", kind="codex", x="px_x", y="px_y", microns_per_unit=0.5)
    np.testing.assert_allclose(b.obsm["spatial"], xy)


@pytest.mark.parametrize(("spacing", "ok"), [(0.01, False), (12.0, True), (100.0, True), (20_000.0, False)])
def test_spacing_plausibility(tmp_path, spacing, ok):
    xy = _grid(25, spacing)
    pd.DataFrame(
        {"Cell X Position": xy[:, 0], "Cell Y Position": xy[:, 1], "Entire Cell CD8 Mean": 1.0}
    ).to_csv(tmp_path / "t.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = tm.read(tmp_path / "t.csv")
    msgs = [str(w.message) for w in caught if "neighbouring" in str(w.message)]
    assert bool(msgs) is not ok
    if msgs:
        assert "microns_per_unit=" in msgs[0] and "pixels" in msgs[0]
    assert a.uns[UNITS_KEY]["median_nn_distance"] == pytest.approx(spacing, rel=0.25)


# ---------------------------------------------------------------------------------------------
# h5ad, errors, the command line


def test_h5ad_and_microns_per_unit(tmp_path):
    xy = _grid(9, 40.0)
    a = ad.AnnData(np.ones((9, 2), dtype=np.float32), obsm={"spatial": xy})
    a.write_h5ad(tmp_path / "a.h5ad")
    b = tm.read(tmp_path / "a.h5ad")
    np.testing.assert_allclose(b.obsm["spatial"], xy)
    assert UNITS_KEY not in b.uns
    c = tm.read(tmp_path / "a.h5ad", microns_per_unit=0.25)
    np.testing.assert_allclose(c.obsm["spatial"], xy * 0.25)
    assert c.uns[UNITS_KEY]["microns_per_unit"] == 0.25 and c.uns[UNITS_KEY]["reader"] == "h5ad"
    d = read_input(tmp_path / "a.h5ad", microns_per_unit=0.25, lazy=True)
    np.testing.assert_allclose(d.obsm["spatial"], xy * 0.25)


def test_errors_say_the_fix(tmp_path):
    with pytest.raises(tm.InvalidInputError, match="does not exist"):
        tm.read(tmp_path / "nope.h5ad")
    (tmp_path / "notes.xyz").write_text("hello")
    with pytest.raises(tm.InvalidInputError, match="kind="):
        tm.read(tmp_path / "notes.xyz")
    with pytest.raises(tm.InvalidInputError, match="unknown kind"):
        tm.read(tmp_path / "notes.xyz", kind="nonsense")
    for name in ("fake.h5ad", "fake.h5"):
        (tmp_path / name).write_text("a,b\n1,2\n")
        with pytest.raises(tm.InvalidInputError, match="not an HDF5 file"):
            tm.read(tmp_path / name)
    (tmp_path / "empty").mkdir()
    with pytest.raises(tm.InvalidInputError, match="cannot tell"):
        tm.read(tmp_path / "empty")
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(tm.InvalidInputError, match="x= and y="):
        tm.read(tmp_path / "t.csv")
    with pytest.raises(tm.InvalidInputError, match="did you mean"):
        tm.read(tmp_path / "t.csv", x="A", y="b")
    with pytest.raises(tm.InvalidParameterError, match="microns_per_unit"):
        tm.read(tmp_path / "t.csv", microns_per_unit=-1)
    with pytest.raises(tm.InvalidParameterError, match="both x= and y="):
        tm.read(tmp_path / "t.csv", x="a")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["something"] = np.arange(3)
    with pytest.raises(tm.InvalidInputError, match="not a 10x Genomics matrix"):
        tm.read(tmp_path / "other.h5")
    ad.AnnData(np.ones((2, 2), dtype=np.float32)).write_h5ad(tmp_path / "renamed.h5")
    with pytest.raises(tm.InvalidInputError, match="kind='h5ad'"):
        tm.read(tmp_path / "renamed.h5")
    assert tm.read(tmp_path / "renamed.h5", kind="h5ad").shape == (2, 2)


def test_cli_flags_parse():
    args = _parser().parse_args(
        ["run", "in.csv", "--out", "o", "--microns-per-unit", "0.5", "--input-kind", "inform"]
    )
    assert args.microns_per_unit == 0.5 and args.input_kind == "inform"
    args = _parser().parse_args(["run", "in.h5ad", "--out", "o"])
    assert args.microns_per_unit is None and args.input_kind is None


@pytest.fixture(scope="module")
def gene_symbols():
    table = pd.read_csv(_gene_table(), sep="\t", usecols=["symbol", "gene_id", "chromosome"])
    autosomes = {f"chr{i}" for i in range(1, 23)}
    table = table[table["gene_id"].notna() & table["chromosome"].isin(autosomes)].drop_duplicates("symbol")
    return table.sample(300, random_state=0)


def _gene_table():
    from importlib.resources import files

    return files("tmeatlas") / "_data" / "genes_hg38.tsv.gz"


def test_cli_run_reads_a_10x_folder(tmp_path, gene_symbols, capsys):
    rng = np.random.default_rng(0)
    X = sparse.random(
        200, 300, density=0.3, format="csr", random_state=0, data_rvs=lambda k: rng.integers(1, 20, k)
    )
    folder = write_10x_mtx(
        tmp_path / "filtered_feature_bc_matrix", X, _barcodes(200), list(gene_symbols["symbol"]),
        gene_ids=list(gene_symbols["gene_id"]),
    )  # fmt: skip
    out = tmp_path / "out"
    argv = [
        "run",
        str(folder),
        "--out",
        str(out),
        "--steps",
        "qc,gene_positions,normalize",
        "--no-report",
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    atlas = ad.read_h5ad(out / "atlas.h5ad")
    assert (
        atlas.n_obs == 200
        and "chromosome" in atlas.var
        and atlas.var_names[0] == gene_symbols["symbol"].iloc[0]
    )


def test_cli_run_unknown_kind_is_an_error(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert (
        main(["run", str(tmp_path / "x.csv"), "--out", str(tmp_path / "o"), "--input-kind", "nonsense"]) != 0
    )
    assert "unknown kind" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# real data


@pytest.mark.realdata
def test_real_phenoptr_inform_table(real_dir):
    path = real_dir / "phenoptr_multiplex_if_cells.csv.gz"
    if not path.exists():
        pytest.skip("phenoptr cell table not available (needs ../shared/data/real)")
    with no_unit_warning():
        a = tm.read(path)
    assert a.n_obs == 6072 and a.obs_names.is_unique
    assert {"PDL1", "CD8", "FoxP3", "CD68", "CK", "DAPI"} <= set(a.var_names)
    assert "Autofluorescence" not in a.var_names and np.isfinite(a.X).all()
    assert set(a.obs["Phenotype"].cat.categories) == {"CD8+", "CD68+", "CK+", "FoxP3+", "other"}
    assert set(a.obs["Tissue Category"].cat.categories) == {"Tumor", "Stroma"}
    xy = a.obsm["spatial"]  # one Vectra field: about 930 x 700 um
    assert xy.min() >= 0 and xy[:, 0].max() < 1000 and xy[:, 1].max() < 750
    units = a.uns[UNITS_KEY]
    assert units["unit"] == "micron" and 3 < units["median_nn_distance"] < 15
    assert a.obs["sample"].nunique() == 1


# ---------------------------------------------------------------------------------------------
# through `tmeatlas run`: micron coordinates reach the atlas


def test_cli_run_reads_a_space_ranger_folder_in_microns(tmp_path, capsys):
    root = write_visium(tmp_path / "sectionA" / "outs")
    out = tmp_path / "out"
    assert (
        main(["run", str(root), "--out", str(out), "--steps", "qc,normalize", "--no-report", "--quiet"]) == 0
    ), capsys.readouterr().err
    atlas = ad.read_h5ad(out / "atlas.h5ad")
    np.testing.assert_allclose(
        atlas.obsm["spatial"], [[500, 1000], [600, 1000], [550, 1086.5], [650, 1086.5]]
    )
    assert atlas.uns["spatial_units"]["unit"] == "micron"


def test_cli_run_reads_a_spatialdata_store_in_microns(tmp_path, capsys):
    xy = _sdata_store(tmp_path / "xenium_run.zarr", scale=2.0)
    out = tmp_path / "out"
    argv = ["run", str(tmp_path / "xenium_run.zarr"), "--out", str(out), "--steps", "qc", "--no-report", "--quiet",
            "--microns-per-unit", "0.5"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    atlas = ad.read_h5ad(out / "atlas.h5ad")
    got = np.sort(atlas.obsm["spatial"], axis=0)
    np.testing.assert_allclose(got, np.sort(xy * 2.0 * 0.5, axis=0))
