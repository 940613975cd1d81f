from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL = SHARED / "real"
RESOURCES = SHARED / "resources"


def _real(name: str):
    import anndata as ad

    path = REAL / name
    if not path.exists():
        pytest.skip(f"real dataset {name} not available (needs ../shared/data/real)")
    return ad.read_h5ad(path)


@pytest.fixture(scope="session")
def real_dir() -> Path:
    if not REAL.is_dir():
        pytest.skip("../shared/data/real is absent")
    return REAL


@pytest.fixture
def tirosh():
    """Tirosh 2016 oligodendroglioma, 184 cells, obs.malignant, hg19 var positions."""
    return _real("tirosh2016_oligodendroglioma.h5ad")


@pytest.fixture
def copykat_breast():
    """CopyKAT breast example, 302 cells x 33,694 genes (Cell Ranger legacy gene names)."""
    return _real("copykat_breast_example.h5ad")


@pytest.fixture
def her2st():
    """Andersson 2021 HER2+ breast ST, 1,123 spots, pathologist labels, 4 patients."""
    return _real("andersson2021_her2st_ABCD.h5ad")


@pytest.fixture
def merfish_nsclc():
    """Chen 2024 MERFISH NSCLC, 3,177 cells x 479 genes, cell types, coordinates in microns."""
    return _real("chen2024_nsclc_merfish.h5ad")


@pytest.fixture
def qian_ovarian():
    """Qian 2020 high-grade serous ovarian cancer, 10x, 4,000 cells x 12,000 genes, raw counts,
    4 samples; the authors' labels in obs.cell_type (moved to obs.author_cell_type here, since
    tm.tl.annotate writes obs.cell_type)."""
    a = _real("qian2020_ovarian.h5ad")
    a.obs["author_cell_type"] = a.obs.pop("cell_type")
    return a


@pytest.fixture
def cycif_lymphoma():
    """scimap CyCIF lymphoma image, 3,029 cells x 33 proteins (rescaled intensities), obs.phenotype."""
    return _real("scimap_cycif_lymphoma.h5ad")


@pytest.fixture
def phenoptr_adata():
    """The phenoptr multiplex IF cell table as ``tm.read`` gives it (channels as features, microns)."""
    import warnings

    import tmeatlas as tm

    path = REAL / "phenoptr_multiplex_if_cells.csv.gz"
    if not path.exists():
        pytest.skip("phenoptr cell table not available (needs ../shared/data/real)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tm.read(path)


@pytest.fixture
def phenoptr_cells():
    """akoyabio/phenoptr multiplex IF cell table (6,072 cells)."""
    import pandas as pd

    path = REAL / "phenoptr_multiplex_if_cells.csv.gz"
    if not path.exists():
        pytest.skip("phenoptr cell table not available (needs ../shared/data/real)")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def small_cohort():
    """A small simulated cohort (shared; tests must copy before writing to it)."""
    from tmeatlas.datasets import simulate_tumor

    return simulate_tumor(n_cells=1500, n_patients=2, rng=0)


@pytest.fixture
def cohort(small_cohort):
    return small_cohort.copy()


@pytest.fixture(scope="session")
def resources_dir() -> Path:
    if not RESOURCES.is_dir():
        pytest.skip("../shared/data/resources is absent")
    return RESOURCES
