"""Stemness: ``tm.tl.stemness`` against the simulated stemness-high clones, next to two oracles.

Run by hand from the project root (results go to benchmarks/results/stemness.json):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/stemness.py --seeds 0 1 2 3 4

Settings (each over the seeds): ``test`` is ``simulate_tumor(n_cells=4000, n_patients=3)``, the
cohort of ``tests/test_stemness.py``; ``demo`` is ``simulate_tumor(n_cells=20000, n_patients=4)``,
the cohort of ``tmeatlas demo``. Malignant cells are the true ones (``true_malignant``) and
``tm.tl.stemness`` runs with ``groupby`` = malignant cells per patient (non-malignant cells in one
other group), so the benchmark measures the stemness score, not malignant calling. The truth
per malignant cell: its clone's simulated stemness program is ``high``
(``uns["simulation"]["clone_programs"]``). Scored per patient with both kinds of clones: the
AUROC of ``obs["stemness"]`` for stemness-high cells.

``--smooth`` also runs the pipeline's set-up: a kNN graph (``sc.pp.neighbors`` on 30 PCs of
log-normalised counts, all cells) so that ``stemness`` averages each cell with its neighbours.

Oracles, per patient, on the same cells:

* ``oracle_program`` -- the simulator's own stemness program (genes and log fold changes of
  ``tmeatlas.datasets._programs.PROGRAMS["stemness"]``) as a weighted sum of log-normalised
  expression: what a method that knew the exact program could reach; it is limited only by
  counting noise and by the other programs that share its genes. ``oracle_program_library``:
  the same restricted to the program genes that the library's stemness signatures hold (the
  simulator's NES and ITGA6 are in none of them).
* ``oracle_logreg`` -- a classifier trained on the truth with the method's features: L2 logistic
  regression on the standardised log-normalised expression of the library's ``stemness`` genes,
  5-fold cross-validated predictions (stratified). It tells a shortfall of the unsupervised score
  apart from a limit of what the signature genes carry.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "stemness.json"
SETTINGS = {"test": {"n_cells": 4000, "n_patients": 3}, "demo": {"n_cells": 20000, "n_patients": 4}}


def _lognorm(X):
    from scipy import sparse

    X = sparse.csr_matrix(X, dtype=np.float64)
    lib = np.asarray(X.sum(axis=1)).ravel()
    X = sparse.csr_matrix(sparse.diags(1e4 / np.maximum(lib, 1)) @ X)
    X.data = np.log1p(X.data)
    return X


def _oracles(L, var_names, truth, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import tmeatlas as tm
    from tmeatlas.datasets import _programs as prg

    prog = prg.PROGRAMS["stemness"]
    idx = pd.Index(var_names)
    cols = [idx.get_loc(g) for g in prog if g in idx]
    w = np.array([prog[g] for g in prog if g in idx])
    program = np.asarray(L[:, cols] @ w).ravel()
    lib = tm.datasets.signatures()
    genes = pd.unique(lib.loc[(lib["category"] == "stemness") & (lib["direction"] == "up"), "gene"])
    in_lib = np.isin([g for g in prog if g in idx], genes)
    program_lib = np.asarray(L[:, np.asarray(cols)[in_lib]] @ w[in_lib]).ravel()
    gcols = [idx.get_loc(g) for g in genes if g in idx]
    F = L[:, gcols].toarray()
    n_pos = int(truth.sum())
    k = int(min(5, n_pos, len(truth) - n_pos))
    if k >= 2:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        p = cross_val_predict(clf, F, truth, cv=cv, method="predict_proba")[:, 1]
        logreg = float(roc_auc_score(truth, p))
    else:
        logreg = float("nan")
    return {
        "oracle_program": float(roc_auc_score(truth, program)),
        "oracle_program_library": float(roc_auc_score(truth, program_lib)),
        "oracle_logreg": logreg,
    }


def run_one(setting: str, seed: int, smooth: bool) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    import tmeatlas as tm

    a = tm.datasets.simulate_tumor(**SETTINGS[setting], rng=seed)
    mal = a.obs["true_malignant"].to_numpy(bool)
    a.obs["group"] = pd.Categorical(np.where(mal, a.obs["sample"].astype(str), "other"))
    cp = a.uns["simulation"]["clone_programs"]
    hi = set(cp.loc[(cp["program"] == "stemness") & (cp["state"] == "high"), "clone"].astype(str))
    truth_all = a.obs["true_clone"].astype(str).isin(hi).to_numpy()
    L = _lognorm(a.X)
    if smooth:
        import scanpy as sc

        b = a.copy()
        b.X = L
        sc.pp.pca(b, n_comps=30, random_state=0)
        sc.pp.neighbors(b, random_state=0)
        a.obsp["connectivities"] = b.obsp["connectivities"]
    t0 = time.perf_counter()
    tm.tl.stemness(a, groupby="group")
    sec = time.perf_counter() - t0
    rows = []
    for s in a.obs["sample"].cat.categories:
        m = mal & (a.obs["sample"] == s).to_numpy()
        truth = truth_all[m]
        if not 0 < truth.sum() < m.sum():
            continue
        row = {
            "setting": setting,
            "smooth": smooth,
            "seed": seed,
            "patient": str(s),
            "n_malignant": int(m.sum()),
            "n_stem_high": int(truth.sum()),
            "auroc": float(roc_auc_score(truth, a.obs["stemness"].to_numpy()[m])),
            "auroc_gene_count": float(roc_auc_score(truth, a.obs["stemness_gene_count"].to_numpy()[m])),
            "auroc_signatures": float(roc_auc_score(truth, a.obs["stemness_signatures"].to_numpy()[m])),
            "seconds_stemness": sec,
        }
        wt = a.uns["stemness"]["weights"]
        wrow = wt.loc[wt["group"] == str(s)]
        for c in wrow.columns:
            if c not in ("group", "n_cells"):
                row[c] = float(wrow[c].iloc[0])
        row.update(_oracles(L[m], a.var_names, truth, seed))
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--settings", nargs="+", default=["test", "demo"], choices=list(SETTINGS))
    ap.add_argument(
        "--demo-seeds", type=int, nargs="+", default=None, help="seeds of the demo setting (default --seeds)"
    )
    ap.add_argument("--smooth", action="store_true", help="also run with a kNN graph (pipeline set-up)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    rows: list[dict] = []
    for setting in args.settings:
        seeds = args.demo_seeds if (setting == "demo" and args.demo_seeds is not None) else args.seeds
        for seed in seeds:
            for smooth in [False, True] if args.smooth else [False]:
                r = run_one(setting, seed, smooth)
                rows += r
                for x in r:
                    print(
                        f"{setting:5s} smooth={int(smooth)} seed {seed} {x['patient']}: "
                        f"n={x['n_malignant']:5d} high={x['n_stem_high']:5d}  AUROC {x['auroc']:.3f}  "
                        f"(gene count {x['auroc_gene_count']:.3f}, signatures {x['auroc_signatures']:.3f}; "
                        f"oracle program {x['oracle_program']:.3f}, "
                        f"program/library {x['oracle_program_library']:.3f}, "
                        f"logreg {x['oracle_logreg']:.3f})",
                        flush=True,
                    )
    df = pd.DataFrame(rows)
    summary = []
    for (setting, smooth), d in df.groupby(["setting", "smooth"]):
        summary.append(
            {
                "setting": setting,
                "smooth": bool(smooth),
                "n_patients_scored": len(d),
                "auroc_min": float(d["auroc"].min()),
                "auroc_mean": float(d["auroc"].mean()),
                "fraction_auroc_ge_0.9": float((d["auroc"] >= 0.9).mean()),
                "oracle_program_mean": float(d["oracle_program"].mean()),
                "oracle_program_library_mean": float(d["oracle_program_library"].mean()),
                "oracle_logreg_mean": float(d["oracle_logreg"].mean()),
            }
        )
        print(summary[-1])
    out = {
        "benchmark": "stemness",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "settings": SETTINGS,
        "summary": summary,
        "per_patient": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
