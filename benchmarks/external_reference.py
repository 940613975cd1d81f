"""Can an external diploid expression reference stand in for a sample's own normal cells? (issue 22)

Run by hand from the project root (results go to benchmarks/results/external_reference.json):

    .venv/bin/python benchmarks/external_reference.py --reference ref_hca.csv.gz

``--reference``: a genes x cell types table of linear normalised expression (rows: gene symbols),
e.g. the ``ref_hca`` profiles that the numbat R package ships (MIT licence; 12 immune, stromal and
epithelial types from the Human Cell Atlas; Gao et al., Nat Biotechnol 41:417, 2023), exported
with ``pyreadr.read_r("ref_hca.rda")["ref_hca"].to_csv("ref_hca.csv.gz")``. tmeatlas does not ship
it: this script measures whether it should be used.

For every labelled shared real set (Qian ovarian, 10x counts; Tirosh oligodendroglioma,
Smart-seq; CopyKAT breast, 10x) and every sample x author label with >= 8 cells, the pooled
expression (sum over the cells, as proportions) is compared with

* ``external``: the reference type whose log profile correlates best with the group's, and
* ``internal``: the same sample's cells of the *other* non-malignant labels (leave the group's
  own label out, so a normal group is not compared with itself),

as log2 ratios of the genes expressed in both (reference > 2e-5), centred on their median, and
summarised per chromosome arm (median, arms with >= 15 genes). Reported per group: the largest
absolute arm shift and the arms beyond 0.3 (half of log2(3/2), a one-copy gain at the dampened
dosage that expression shows). A usable external reference leaves the normal groups as flat as
the internal one does.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _results import write_results

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
RESULTS = Path(__file__).resolve().parent / "results" / "external_reference.json"
THRESHOLD = 0.3  # log2; half of log2(3/2)
MIN_REF = 2e-5
MIN_CELLS = 8


def datasets() -> dict[str, tuple[Path, str | None, pd.Series]]:
    """Per set: path, sample column and a per-cell group label ('malignant' or the normal type)."""
    import anndata as ad

    out = {}
    q = REAL / "qian2020_ovarian.h5ad"
    if q.exists():
        obs = ad.read_h5ad(q, backed="r").obs
        out["qian2020_ovarian"] = (
            q,
            "sample",
            obs["cell_type"].astype(str).replace({"Epithelial": "malignant"}),
        )
    t = REAL / "tirosh2016_oligodendroglioma.h5ad"
    if t.exists():
        obs = ad.read_h5ad(t, backed="r").obs
        lab = np.where(obs["malignant"].astype(str) == "malignant", "malignant", obs["cell_type"].astype(str))
        out["tirosh2016_oligodendroglioma"] = (t, "patient", pd.Series(lab, index=obs.index))
    c = REAL / "copykat_breast_example.h5ad"
    if c.exists():
        obs = ad.read_h5ad(c, backed="r").obs
        lab = (
            obs["copykat.pred"]
            .astype(str)
            .replace({"aneuploid": "malignant", "diploid": "diploid (CopyKAT)"})
        )
        out["copykat_breast_example"] = (c, None, lab)
    return out


def arm_profile(p: np.ndarray, r: np.ndarray, arms: np.ndarray) -> pd.Series:
    """Median-centred log2 ratio of the expressed genes, summarised per arm."""
    ok = (r > MIN_REF) & (p > 0)
    lr = np.log2(p[ok] / r[ok])
    s = pd.Series(lr - np.median(lr)).groupby(arms[ok]).agg(["median", "size"])
    return s.loc[s["size"] >= 15, "median"]


def one_set(path: Path, sample_key: str | None, label: pd.Series, ref: pd.DataFrame) -> list[dict]:
    import anndata as ad
    from scipy import sparse

    import tmeatlas as tm

    a = ad.read_h5ad(path)
    genes = tm._resources.gene_table()
    genes = genes[~genes.index.duplicated()]
    keep = a.var_names.intersection(ref.index).intersection(genes.index)
    X = sparse.csr_matrix(a.X)[:, a.var_names.get_indexer(keep)]
    R = ref.loc[keep].to_numpy(float)
    R = R / R.sum(axis=0)
    arms = genes.loc[keep, "arm"].astype(str).to_numpy()
    lab = label.reindex(a.obs_names).to_numpy()
    samples = a.obs[sample_key].astype(str).to_numpy() if sample_key else np.full(a.n_obs, "all")

    def pooled(m):
        s = np.asarray(X[m].sum(axis=0)).ravel()
        return s / s.sum()

    rows = []
    for s in pd.unique(samples):
        for g in pd.unique(lab[samples == s]):
            m = (samples == s) & (lab == g)
            if m.sum() < MIN_CELLS:
                continue
            p = pooled(m)
            cors = np.corrcoef(np.log1p(p * 1e5), np.log1p(R.T * 1e5))[0, 1:]
            best = int(np.argmax(cors))
            row = {"sample": s, "group": g, "cells": int(m.sum()), "external_type": ref.columns[best]}
            ext = arm_profile(p, R[:, best], arms)
            row |= {
                "external_max": float(ext.abs().max()),
                "external_arms": sorted(ext.index[ext.abs() > THRESHOLD]),
            }
            other = (samples == s) & (lab != g) & (lab != "malignant")
            if other.sum() >= MIN_CELLS:
                inte = arm_profile(p, pooled(other), arms)
                row |= {"internal_max": float(inte.abs().max()),
                        "internal_arms": sorted(inte.index[inte.abs() > THRESHOLD])}  # fmt: skip
            rows.append(row)
    return rows


def summary(rows: list[dict]) -> dict:
    df = pd.DataFrame(rows)
    out = {}
    for kind, part in (("normal", df[df.group != "malignant"]), ("malignant", df[df.group == "malignant"])):
        d = {"groups": len(part)}
        for src in ("external", "internal"):
            col = part.get(f"{src}_arms")
            if col is None or col.dropna().empty:
                continue
            n = col.dropna().map(len)
            d[src] = {"groups_with_an_arm_beyond_0.3": int((n > 0).sum()), "groups_compared": int(len(n)),
                      "median_arms_beyond_0.3": float(n.median()),
                      "median_max_abs_shift": round(float(part[f"{src}_max"].dropna().median()), 3)}  # fmt: skip
        out[kind] = d
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--reference", required=True, help="genes x cell types CSV (linear normalised expression)"
    )
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    ref = pd.read_csv(args.reference, index_col=0)
    body = {"per_set": {}, "summary": {}}
    for name, (path, sk, lab) in datasets().items():
        rows = one_set(path, sk, lab, ref)
        body["per_set"][name] = rows
        body["summary"][name] = summary(rows)
    settings = {"reference": Path(args.reference).name, "reference_types": list(ref.columns),
                "reference_genes": len(ref), "threshold_log2": THRESHOLD, "min_cells": MIN_CELLS}  # fmt: skip
    write_results(
        Path(args.out), "external diploid reference vs the sample's own normal cells", settings, body
    )


if __name__ == "__main__":
    main()
