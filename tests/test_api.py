"""The house rules, enforced for every public function.

Each public function must appear in ``CASES`` below with a minimal call; the generic tests
then check signature rules, ``copy`` semantics, an h5ad round trip, same-seed determinism and
a clear error on bad input. Adding a public function without a case fails ``test_every_public_function_has_a_case``.
"""

from __future__ import annotations

import inspect
import warnings

import anndata as ad
import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm

mpl.use("Agg")

NAMESPACES = {"pp": tm.pp, "tl": tm.tl, "gr": tm.gr, "pl": tm.pl, "get": tm.get, "datasets": tm.datasets}
WRITERS = ("pp", "tl", "gr")  # tools that write into the AnnData: must take copy=
#: public functions that are not tools on an AnnData (no ``adata``, no plot contract), so they
#: get no CASES entry; each is tested in its own file, and ``test_non_tools_rules`` checks its docs
NOT_TOOLS = {"pl.set_style": "tests/test_pl_style.py", "tm.read": "tests/test_readers.py"}


def public_functions():
    out = {}
    for ns, mod in NAMESPACES.items():
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isfunction(obj) and f"{ns}.{name}" not in NOT_TOOLS:
                out[f"{ns}.{name}"] = obj
    return out


def _tiny_genes():
    names = ["TP53", "ERBB2", "EGFR", "MYC", "CD3E", "PTPRC", "EPCAM", "KRT18"]
    X = sparse.csr_matrix(np.arange(4 * len(names), dtype=np.float32).reshape(4, -1))
    return ad.AnnData(X=X, var=pd.DataFrame(index=names))


def _sim(**kw):
    # 4,500 genes: infer_cnv keeps ~3,400, above the MIN_CNV_GENES floor of copy-number calls
    return tm.datasets.simulate_tumor(n_cells=600, n_patients=2, n_genes=4500, **kw)


@pytest.fixture(scope="module")
def sim():
    return _sim(rng=3)


def _cnv(sim, upto):
    a = sim.copy()
    if upto >= 1:
        tm.tl.infer_cnv(a, sample_key="sample")
    if upto >= 2:
        tm.tl.call_malignant(a, sample_key="sample")
    if upto >= 3:
        tm.tl.cnv_clones(a, sample_key="sample", min_clone_size=10)
    return a


def _annotated(sim):
    a = _cnv(sim, 2)
    tm.tl.annotate(a, sample_key="sample")
    return a


def _checkpoints(sim):
    a = sim.copy()
    tm.tl.checkpoint_interactions(a, groupby="true_cell_type_major", sample_key="sample", n_perms=50)
    return a


def _scored(sim):
    a = sim.copy()
    tm.tl.score_signatures(a)
    return a


def _neighbors(sim):
    a = sim.copy()
    tm.gr.neighborhoods(a, groupby="true_cell_type_major", sample_key="sample")
    return a


_TUMOR = {"tumor_key": "true_cell_type_major", "tumor_value": "Malignant", "sample_key": "sample"}
_THER = ["trastuzumab", "paclitaxel", "pembrolizumab"]


def _interface(sim):
    a = sim.copy()
    tm.gr.interface(a, **_TUMOR)
    return a


def _niches(sim):
    a = _interface(sim)
    tm.gr.niches(a, groupby="true_cell_type", sample_key="sample", n_niches=4)
    return a


def _phenotypes(sim):
    a = _interface(sim)
    tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="true_cell_type")
    return a


def _survival(sim):
    a = _cnv(sim, 3)
    tm.tl.therapy_survival(a, therapies=_THER, sample_key="sample")
    return a


def _covered(sim):
    a = _survival(sim)
    tm.tl.combination_cover(a)
    return a


def _simulated(sim):
    a = _survival(sim)
    tm.tl.simulate_therapy(a, therapy="trastuzumab")
    return a


#: a small drug-target table and signature for tl.drug_screen
_DRUGS = {"trastuzumab": ["ERBB2", "GRB7"], "cetuximab": ["EGFR"], "anti_CD52": ["CD52", "PTPRC"],
          "sig": {"up": ["MKI67", "TOP2A", "ERBB2"], "down": ["ESR1", "TACSTD2", "NECTIN4"]}}  # fmt: skip
_SCREEN = {"drugs": _DRUGS, "groupby": "true_clone", "sample_key": "sample", "malignant_key": "true_compartment",
           "malignant_value": "malignant", "n_perms": 50}  # fmt: skip


def _heterogeneity(sim):
    a = _cnv(sim, 3)
    tm.tl.heterogeneity(a, sample_key="sample", n_boot=20)
    return a


def _screened(sim):
    a = sim.copy()
    tm.tl.drug_screen(a, **_SCREEN)
    return a


#: labelled reference for tl.transfer_labels (same n_genes as _sim, hence the same genes)
_REFERENCE = tm.datasets.simulate_tumor(n_cells=200, n_patients=1, n_genes=3000, spatial=False, rng=5)

# name -> (function building the input AnnData or None, kwargs)
CASES = {
    "pp.gene_positions": (lambda sim: _tiny_genes(), {}),
    "get.gene_positions": (lambda sim: tm.pp.gene_positions(_tiny_genes(), copy=True), {}),
    "tl.infer_cnv": (lambda sim: _cnv(sim, 0), {"sample_key": "sample"}),
    "tl.call_malignant": (lambda sim: _cnv(sim, 1), {"sample_key": "sample"}),
    "tl.cnv_clones": (lambda sim: _cnv(sim, 2), {"sample_key": "sample", "min_clone_size": 10}),
    "pl.cnv_heatmap": (lambda sim: _cnv(sim, 3), {"show": False}),
    "pl.malignant_calls": (lambda sim: _cnv(sim, 2), {"sample_key": "sample", "show": False}),
    "pl.clone_tree": (lambda sim: _cnv(sim, 3), {"show": False}),
    "pl.spatial": (lambda sim: sim.copy(), {"color": "true_niche", "show": False}),
    "datasets.simulate_tumor": (None, {"n_cells": 300, "n_patients": 2, "n_genes": 1500}),
    "datasets.simulate_checkpoint_cohort": (
        None,
        {"n_patients": 3, "cells_per_patient": 60, "n_genes": 1500},
    ),
    "datasets.markers": (None, {"level": "major"}),
    "datasets.simulate_spots": (None, {"sections": ["mixed", "free"], "grid": 8, "n_genes": 1500}),
    "tl.annotate": (lambda sim: _cnv(sim, 2), {"sample_key": "sample"}),
    "tl.integrate": (lambda sim: sim.copy(), {"batch_key": "sample", "n_top_genes": 500, "max_epochs": 2}),
    "tl.transfer_labels": (
        lambda sim: sim.copy(),
        {
            "reference": _REFERENCE,
            "label_key": "true_cell_type_major",
            "n_top_genes": 500,
            "max_epochs": 2,
            "scanvi_epochs": 2,
        },
    ),
    "get.composition": (_annotated, {"sample_key": "sample"}),
    "datasets.signatures": (None, {"category": "hallmark"}),
    "gr.neighborhoods": (lambda sim: sim.copy(), {"groupby": "true_cell_type_major", "sample_key": "sample"}),
    "gr.enrichment": (
        _neighbors,
        {"groupby": "true_cell_type_major", "sample_key": "sample", "n_perms": 100},
    ),
    "datasets.checkpoint_pairs": (None, {}),
    "tl.score_signatures": (lambda sim: sim.copy(), {"signatures": "hallmark", "method": "control"}),
    "tl.stemness": (lambda sim: sim.copy(), {"groupby": "sample"}),
    "tl.checkpoint_interactions": (
        lambda sim: sim.copy(),
        {"groupby": "true_cell_type_major", "sample_key": "sample", "n_perms": 50},
    ),
    "get.checkpoint_interactions": (_checkpoints, {}),
    "pl.checkpoint_interactions": (_checkpoints, {"max_padj": None, "show": False}),
    "get.signature_summary": (_scored, {"groupby": "true_cell_type_major", "sample_key": "sample"}),
    "get.signature_test": (_scored, {"groupby": "true_cell_type_major", "sample_key": "sample"}),
    "pl.signatures": (_scored, {"groupby": "true_cell_type_major", "show": False}),
    "pl.signature_by_sample": (
        _scored,
        {
            "signature": "AYERS_IFNG_6",
            "groupby": "true_cell_type_major",
            "sample_key": "sample",
            "show": False,
        },
    ),
    "pl.compartments": (_annotated, {"show": False}),
    "pl.marker_dotplot": (_annotated, {"show": False}),
    "pl.composition": (_annotated, {"sample_key": "sample", "show": False}),
    "gr.interface": (lambda sim: sim.copy(), _TUMOR),
    "gr.niches": (_interface, {"groupby": "true_cell_type", "sample_key": "sample", "k_range": (3, 5)}),
    "gr.immune_phenotype": (_interface, {"sample_key": "sample", "cell_type_key": "true_cell_type"}),
    "gr.tumor_score": (lambda sim: sim.copy(), {"sample_key": "sample"}),
    "pl.spatial_niches": (_niches, {"show": False}),
    "pl.niche_composition": (_niches, {"show": False}),
    "pl.interface_profile": (_interface, {"groupby": "true_cell_type_major", "show": False}),
    "pl.immune_phenotypes": (_phenotypes, {"show": False}),
    "datasets.therapies": (None, {}),
    "tl.therapy_survival": (lambda sim: _cnv(sim, 3), {"therapies": _THER, "sample_key": "sample"}),
    "tl.combination_cover": (_survival, {}),
    "tl.immunotherapy_benefit": (lambda sim: _cnv(sim, 2), {"sample_key": "sample", "n_boot": 20}),
    "get.immunotherapy_benefit": (_survival, {"key": "therapy_survival"}),
    "get.therapy_survival": (_survival, {}),
    "get.combination_cover": (_covered, {}),
    "tl.simulate_therapy": (_survival, {"therapy": "trastuzumab"}),
    "pl.therapy_simulation": (_simulated, {"show": False}),
    "pl.therapy_survival": (_survival, {"show": False}),
    "pl.survival_reasons": (_survival, {"therapy": "paclitaxel", "show": False}),
    "pl.combination_cover": (_covered, {"show": False}),
    "tl.drug_screen": (lambda sim: sim.copy(), _SCREEN),
    "get.drug_screen": (_screened, {}),
    "tl.heterogeneity": (lambda sim: _cnv(sim, 3), {"sample_key": "sample", "n_boot": 20}),
    "get.heterogeneity": (_heterogeneity, {}),
    "pl.heterogeneity": (_heterogeneity, {"show": False}),
    "pl.clone_states": (_heterogeneity, {"show": False}),
    "pl.clone_mixing": (_heterogeneity, {"sample": "P1", "show": False}),
}

#: a bad argument for each dataset function
BAD_DATASET_ARGS = {
    "datasets.simulate_tumor": {"n_cells": -5},
    "datasets.simulate_checkpoint_cohort": {"setting": "nonsense"},
    "datasets.simulate_spots": {"sections": ["nonsense"]},
    "datasets.markers": {"level": "nonsense"},
    "datasets.signatures": {"category": "nonsense"},
    "datasets.checkpoint_pairs": {"effect": "nonsense"},
    "datasets.therapies": {"species": "mouse"},
}


def test_every_public_function_has_a_case():
    missing = sorted(set(public_functions()) - set(CASES))
    assert not missing, f"add a minimal call to CASES in tests/test_api.py for: {missing}"


@pytest.mark.parametrize("name", sorted(NOT_TOOLS))
def test_non_tools_rules(name):
    ns, attr = name.split(".")
    module = tm if ns == "tm" else NAMESPACES[ns]  # "tm.read": a top-level function
    assert attr in module.__all__, f"{name} is listed in NOT_TOOLS but not exported"
    fn = getattr(module, attr)
    doc = inspect.getdoc(fn) or ""
    assert "Parameters\n----------" in doc, f"{name}: docstring lacks a Parameters section"
    params = list(inspect.signature(fn).parameters.values())
    assert all(p.name in doc for p in params), f"{name}: undocumented parameter"
    assert all(p.kind is p.KEYWORD_ONLY for p in params[1:]), f"{name}: keyword-only after arg 1"


@pytest.mark.parametrize("name", sorted(public_functions()))
def test_signature_rules(name):
    fn = public_functions()[name]
    ns = name.split(".")[0]
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    doc = inspect.getdoc(fn) or ""
    assert len(doc) > 80, f"{name} needs a numpydoc docstring"
    if any(p.name != "adata" for p in params):
        assert "Parameters\n----------" in doc, f"{name}: docstring lacks a Parameters section"
    for p in params:
        if p.name not in ("adata", "reference"):
            assert p.name in doc, f"{name}: parameter {p.name!r} undocumented"
    assert "inplace" not in sig.parameters, f"{name}: use copy=, not inplace="
    if ns == "datasets":
        assert all(p.kind is p.KEYWORD_ONLY for p in params), f"{name}: all arguments keyword-only"
    else:
        assert params[0].name == "adata" and params[0].kind is p.POSITIONAL_OR_KEYWORD, f"{name}: adata first"
        rest = [p for p in params[1:] if p.name != "reference"]
        assert all(p.kind is p.KEYWORD_ONLY for p in rest), f"{name}: everything after adata keyword-only"
    if ns in WRITERS:
        assert "copy" in sig.parameters and sig.parameters["copy"].default is False, f"{name}: copy=False"
    if "rng" in sig.parameters:
        assert isinstance(sig.parameters["rng"].default, int), f"{name}: rng defaults to an int seed"


def _call(name, sim, **extra):
    builder, kwargs = CASES[name]
    fn = public_functions()[name]
    if builder is None:
        return None, fn(**kwargs, **extra)
    adata = builder(sim)
    return adata, fn(adata, **kwargs, **extra)


def _same(a, b):
    if isinstance(a, ad.AnnData):
        assert a.obs.equals(b.obs) and a.var.equals(b.var)
        Xa = a.X.toarray() if sparse.issparse(a.X) else np.asarray(a.X)
        Xb = b.X.toarray() if sparse.issparse(b.X) else np.asarray(b.X)
        np.testing.assert_array_equal(Xa, Xb)
        assert set(a.obsm) == set(b.obsm)
        for k in a.obsm:
            np.testing.assert_array_equal(np.asarray(a.obsm[k]), np.asarray(b.obsm[k]))
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n.split(".")[0] in WRITERS])
def test_copy_semantics_roundtrip_determinism(name, sim, tmp_path):
    adata, ret = _call(name, sim)
    assert ret is None, f"{name}(copy=False) must return None"
    adata2, ret2 = _call(name, sim, copy=True)
    assert isinstance(ret2, ad.AnnData) and ret2 is not adata2
    _same(adata, ret2)  # same input, same seed -> same result
    adata.write_h5ad(tmp_path / "x.h5ad")
    back = ad.read_h5ad(tmp_path / "x.h5ad")
    assert set(back.obs.columns) == set(adata.obs.columns)
    assert set(back.var.columns) == set(adata.var.columns)
    assert set(back.uns) >= set(adata.uns)


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n.startswith("datasets.")])
def test_datasets_roundtrip_determinism(name, sim, tmp_path):
    seed = {"rng": 11} if "rng" in inspect.signature(public_functions()[name]).parameters else {}
    _, a = _call(name, sim, **seed)
    _, b = _call(name, sim, **seed)
    _same(a, b)
    if isinstance(a, ad.AnnData):
        a.write_h5ad(tmp_path / "x.h5ad")
        _same(a, ad.read_h5ad(tmp_path / "x.h5ad"))


@pytest.mark.parametrize("name", sorted(public_functions()))
def test_bad_input_is_a_clear_error(name):
    fn = public_functions()[name]
    if name.startswith("datasets."):
        with pytest.raises(tm.TmeatlasError):
            fn(**{**CASES[name][1], **BAD_DATASET_ARGS[name]})
        return
    with pytest.raises(tm.InvalidInputError, match="AnnData"):
        fn(np.zeros((3, 3)), **{k: v for k, v in CASES[name][1].items()})


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n.startswith("pl.")])
def test_plots_contract(name, sim, tmp_path):
    import matplotlib.pyplot as plt

    builder, kwargs = CASES[name]
    fn = public_functions()[name]
    kw = {k: v for k, v in kwargs.items() if k != "show"}
    fig = fn(builder(sim), **kw, return_fig=True)
    assert isinstance(fig, mpl.figure.Figure)
    plt.close(fig)
    out = tmp_path / "p.pdf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fn(builder(sim), **kw, show=False, save=out) is None
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n.startswith("get.")])
def test_getters_return_tidy_frames(name, sim):
    builder, kwargs = CASES[name]
    adata = builder(sim)
    before = adata.copy()
    df = public_functions()[name](adata, **kwargs)
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    _same(adata, before)  # getters never write


# --------------------------------------------------------------------------------------------
# the glossary: one name per idea across the public functions
# --------------------------------------------------------------------------------------------
#: what each shared parameter name means (every public function uses the name in this sense)
GLOSSARY = {
    "key_added": "the key of adata.uns under which the tool records its result (parameters and tables); "
    "a matrix it writes to obsm is X_<key_added>; its obs columns have fixed names (see its Returns)",
    "groupby": "a column of adata.obs with the groups to compare, aggregate or colour by",
    "sample_key": "a column of adata.obs with the sample (patient, section) of each cell",
    "sample": "one sample name",
    "samples": "several sample names",
    "key": "the key of adata.uns that a getter or plot reads (the producing tool's key_added)",
    "spatial_key": "the key of adata.obsm with the coordinates",
    "basis": "the key of adata.obsm with an embedding to draw (not coordinates: spatial_key)",
    "layer": "a key of adata.layers to use instead of adata.X",
    "rng": "an int seed (or Generator), recorded in params",
    "n_jobs": "threads; None: tm.settings.n_jobs",
    "copy": "return a copy instead of writing to adata",
}
#: retired names and what replaced them
RETIRED = {
    "cluster_key": "groupby",
    "inplace": "copy",
    "seed": "rng",
    "random_state": "rng",
    "fdr": "max_padj",
    "confidence_key": "fixed obs name documented in Returns",
    "pvalue": "pval",
}
#: p-value columns of the tidy tables: ``pval`` (raw) and ``padj`` (adjusted)
RETIRED_COLUMNS = {"pvalue", "p_value", "fdr", "qval", "pval_adj", "pvals_adj"}


@pytest.mark.parametrize("name", sorted(public_functions()))
def test_glossary_parameter_names(name):
    sig = inspect.signature(public_functions()[name])
    old = {p: RETIRED[p] for p in sig.parameters if p in RETIRED}
    assert not old, f"{name}: retired parameter names (use the glossary's): {old}"
    doc = inspect.getdoc(public_functions()[name]) or ""
    if "key_added" in sig.parameters:
        lines = doc.split("\nkey_added\n", 1)[1].split("\n")
        entry = " ".join(
            line.strip() for line in lines[: next(i for i, x in enumerate(lines) if not x.startswith(" "))]
        )
        assert "adata.uns" in entry, (
            f"{name}: key_added must be {GLOSSARY['key_added']!r}; doc says {entry!r}"
        )
    if "basis" in sig.parameters:
        assert sig.parameters["basis"].default in (None, "X_umap", "umap"), (
            f"{name}: coordinates are spatial_key="
        )


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n.split(".")[0] in WRITERS])
def test_key_added_names_the_uns_record(name, sim):
    if "key_added" not in inspect.signature(public_functions()[name]).parameters:
        pytest.skip("no key_added")
    adata, _ = _call(name, sim, key_added="glossary_probe")
    assert "glossary_probe" in adata.uns, (
        f"{name}(key_added=...) must record its result in adata.uns[key_added]"
    )
    assert "glossary_probe" not in adata.obs.columns and "glossary_probe" not in adata.obsm


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n.startswith("get.")])
def test_glossary_table_columns(name, sim):
    builder, kwargs = CASES[name]
    df = public_functions()[name](builder(sim), **kwargs)
    old = RETIRED_COLUMNS & {str(c) for c in df.columns}
    assert not old, f"{name}: p-value columns are 'pval' and 'padj', not {sorted(old)}"


def test_renamed_parameters_still_work_for_one_release(sim):
    a = sim.copy()
    with pytest.warns(FutureWarning, match="renamed groupby"):
        tm.gr.neighborhoods(a, cluster_key="true_cell_type_major", sample_key="sample")
    assert a.uns["neighborhoods"]["params"]["groupby"] == "true_cell_type_major"
    with pytest.raises(tm.InvalidParameterError, match="not both"):
        tm.gr.neighborhoods(a, cluster_key="x", groupby="y")
