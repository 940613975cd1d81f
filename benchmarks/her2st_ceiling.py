"""How far can any expression-based spot score go on her2st? Supervised ceilings per section.

Run from the project root (results: benchmarks/results/her2st_ceiling.json; skips when
../shared/data is absent):

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/her2st_ceiling.py

For each her2st section, a classifier is *trained on that section's pathologist labels*
(invasive cancer vs every other label) and scored by AUROC on held-out spots. Features: the
log-normalised expression of genes detected in > 10 % of the section's spots plus log total
counts ("raw"), or the same averaged with the 6 nearest spots (``(x + mean_nbrs x) / 2``,
"smoothed", the smoothing ``tm.gr.tumor_score`` uses). Model: standardise, 30 principal
components, class-balanced L2 logistic regression (C = 0.1). Two ways to hold spots out, each
repeated with 5 seeds:

* ``random``: stratified 5-fold cross-validation over spots. With smoothed features this leaks:
  a held-out spot's neighbours, whose expression its features contain, are in the training folds
  with (spatially correlated) labels, so it overstates what is reachable.
* ``blocked``: spots are grouped into 10 spatial blocks (k-means on coordinates) and whole blocks
  are held out (GroupKFold, 5 folds), the usual guard against spatial autocorrelation (Roberts et
  al., Ecography 40:913, 2017). This is the ceiling to compare an unsupervised score with.

The unsupervised ``tm.gr.tumor_score`` uses no labels; its AUROCs are in
benchmarks/results/her2st.json (``python benchmarks/her2st.py``).
"""

from __future__ import annotations

import json
import platform
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real"
RESULTS = Path(__file__).resolve().parent / "results" / "her2st_ceiling.json"
SEEDS = range(5)


def _features(X: np.ndarray, xy: np.ndarray, smooth: bool) -> np.ndarray:
    from scipy.spatial import cKDTree

    if not smooth:
        return X
    _, nn = cKDTree(xy).query(xy, k=7)
    return (X + X[nn[:, 1:]].mean(1)) / 2


def _auroc(F: np.ndarray, y: np.ndarray, xy: np.ndarray, scheme: str, seed: int) -> float:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if scheme == "random":
        splits = StratifiedKFold(5, shuffle=True, random_state=seed).split(F, y)
    else:
        blocks = KMeans(10, random_state=seed, n_init=3).fit_predict(xy)
        splits = GroupKFold(5).split(F, y, blocks)
    p = np.full(len(y), 0.5)
    for tr, te in splits:
        if len(set(y[tr])) < 2:
            continue  # a training fold without both classes: held-out spots keep 0.5
        model = make_pipeline(
            StandardScaler(),
            PCA(30, random_state=0),
            LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000),
        )
        p[te] = model.fit(F[tr], y[tr]).predict_proba(F[te])[:, 1]
    return float(roc_auc_score(y, p))


def main() -> None:
    path = DATA / "andersson2021_her2st_ABCD.h5ad"
    if not path.exists():
        print(f"{path} not found: skipped")
        return
    import anndata as ad
    import scanpy as sc

    warnings.simplefilter("ignore")
    a = ad.read_h5ad(path)
    tot = np.log1p(np.asarray(a.X.sum(1)).ravel())
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    X_all = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
    out = {}
    for s in sorted(a.obs["section"].astype(str).unique()):
        m = (a.obs["section"].astype(str) == s).to_numpy()
        y = (a.obs["label"][m].astype(str) == "invasive cancer").to_numpy().astype(int)
        X = X_all[m]
        X = np.column_stack([X[:, (X > 0).mean(0) > 0.1], tot[m]])
        xy = np.asarray(a.obsm["spatial"], dtype=float)[m]
        row = {"n_invasive": int(y.sum()), "n_rest": int((1 - y).sum())}
        for smooth in (False, True):
            F = _features(X, xy, smooth)
            for scheme in ("random", "blocked"):
                aucs = [_auroc(F, y, xy, scheme, seed) for seed in SEEDS]
                row[f"{scheme}/{'smoothed' if smooth else 'raw'}"] = round(float(np.mean(aucs)), 3)
        out[s] = row
        print(s, row, flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "her2st supervised ceilings (invasive cancer vs rest, per section)",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "sections": out,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
