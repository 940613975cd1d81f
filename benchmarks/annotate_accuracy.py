"""Accuracy of ``tm.tl.annotate`` on simulated cohorts and the shared MERFISH lung section.

Run by hand from the project root (results go to benchmarks/results/annotate_accuracy.json):

    .venv/bin/python benchmarks/annotate_accuracy.py

* Simulated cohorts (5,000 cells, 3 patients, seeds 0, 2, 4) after ``infer_cnv`` and
  ``call_malignant``: major-type accuracy, compartment accuracy, fine-type macro-F1.
* MERFISH NSCLC (``../shared/data/real/chen2024_nsclc_merfish.h5ad``, skipped when absent):
  balanced accuracy of ``cell_type_major`` against the authors' ``type_lvl1`` after the mapping
  in ``tests/test_annotate.py``, and, as a ceiling for what this expression matrix supports, a
  class-balanced logistic regression *trained on those labels* (log1p CP10k of all 479 genes,
  5-fold stratified cross-validation), alone and with the mean expression of each cell's 5
  nearest spatial neighbours added as features, and a class-balanced gradient-boosted classifier
  (same folds); recall per type for ours and for the gradient-boosted one.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "annotate_accuracy.json"
MERFISH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "chen2024_nsclc_merfish.h5ad"
MAP = {
    "T cell": "Lymphocyte", "NK cell": "Lymphocyte", "B cell": "Lymphocyte", "Plasma cell": "Plasma",
    "Myeloid": "Myeloid", "Mast cell": "Mast", "Fibroblast": "Fibroblast", "Endothelial": "Vascular",
    "Pericyte": "Vascular", "Epithelial": "Epithelial", "Malignant": "Epithelial", "Unassigned": "Unassigned",
}  # fmt: skip


def simulated(seed: int) -> dict:
    from sklearn.metrics import f1_score

    import tmeatlas as tm

    a = tm.datasets.simulate_tumor(n_cells=5000, n_patients=3, rng=seed)
    tm.tl.infer_cnv(a, sample_key="sample")
    tm.tl.call_malignant(a, sample_key="sample")
    tm.tl.annotate(a, sample_key="sample")
    o = a.obs
    labels = sorted(o["true_cell_type"].astype(str).unique())
    return {
        "seed": seed,
        "major_accuracy": round(float((o["cell_type_major"].astype(str) == o["true_cell_type_major"].astype(str)).mean()), 4),
        "compartment_accuracy": round(float((o["compartment"].astype(str) == o["true_compartment"].astype(str)).mean()), 4),
        "fine_macro_f1": round(float(f1_score(o["true_cell_type"].astype(str), o["cell_type"].astype(str),
                                              average="macro", labels=labels)), 4),
    }


def merfish() -> dict:
    import anndata as ad
    import scanpy as sc
    from scipy import sparse
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, recall_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import NearestNeighbors

    import tmeatlas as tm

    a = ad.read_h5ad(MERFISH)
    y = a.obs["type_lvl1"].astype(str).to_numpy()
    b = a.copy()
    tm.tl.annotate(b)
    ours = balanced_accuracy_score(y, b.obs["cell_type_major"].astype(str).map(MAP))
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    X = a.X.toarray() if sparse.issparse(a.X) else np.asarray(a.X)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    clf = LogisticRegression(max_iter=3000, class_weight="balanced")
    sup = balanced_accuracy_score(y, cross_val_predict(clf, X, y, cv=cv))
    _, idx = NearestNeighbors(n_neighbors=6).fit(a.obsm["spatial"]).kneighbors(a.obsm["spatial"])
    Xn = X[idx[:, 1:]].mean(axis=1)
    sup_sp = balanced_accuracy_score(y, cross_val_predict(clf, np.hstack([X, Xn]), y, cv=cv))
    hgb = HistGradientBoostingClassifier(max_iter=300, class_weight="balanced", random_state=0)
    pred_hgb = cross_val_predict(hgb, X, y, cv=cv)
    labels = sorted(set(y))
    return {"tmeatlas_balanced_accuracy": round(float(ours), 4),
            "tmeatlas_recall_per_type": dict(zip(labels, np.round(recall_score(
                y, b.obs["cell_type_major"].astype(str).map(MAP), labels=labels, average=None), 4).tolist())),
            "supervised_logreg_cv_balanced_accuracy": round(float(sup), 4),
            "supervised_logreg_with_spatial_neighbours_cv_balanced_accuracy": round(float(sup_sp), 4),
            "supervised_gradient_boosting_cv_balanced_accuracy": round(float(balanced_accuracy_score(y, pred_hgb)), 4),
            "supervised_gradient_boosting_recall_per_type": dict(zip(labels, np.round(recall_score(
                y, pred_hgb, labels=labels, average=None), 4).tolist())),
            "n_cells_per_type": {k: int((y == k).sum()) for k in labels}}  # fmt: skip


def main() -> None:
    warnings.simplefilter("ignore")
    out = {"benchmark": "tm.tl.annotate accuracy", "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "simulated": [simulated(s) for s in (0, 2, 4)]}
    if MERFISH.exists():
        out["merfish_nsclc"] = merfish()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
