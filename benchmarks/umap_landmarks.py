"""tmeatlas's UMAP (every cell, and landmarks as ``tm.run`` above ``UMAP_MAX`` cells) against
umap-learn's through ``scanpy.tl.umap``, on the same graph.

Run by hand from the project root (results in ``benchmarks/results/umap_landmarks.json`` and
``umap_landmarks.png``)::

    .venv/bin/python benchmarks/umap_landmarks.py

A simulated cohort (20,000 cells, 2 patients) is normalised, reduced (2,000 HVG, 30 PCs), given
its kNN graph (15) and Leiden clusters exactly as ``tm.run`` does; then ``_pipeline._umap``
embeds it twice: every cell (``n_max`` above the cell count) and 4,000 landmarks + harmonic
interpolation (``n_max=4000``: the same 1-in-5 ratio as 100,000 landmarks at 500,000 cells);
``scanpy.tl.umap`` (umap-learn, spectral start) embeds every cell as the reference. The graph is
``_pipeline._neighbors`` (tmeatlas's exact kNN and fuzzy graph, scanpy's graph to float precision).
Compared on 5,000 random cells: the silhouette of the true fine cell types in 2-D, and kNN
preservation (share of each cell's 15 nearest neighbours in PCA space that are among its 15
nearest in 2-D), plus wall time of each embedding.
"""

from __future__ import annotations

import json
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    warnings.simplefilter("ignore")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scanpy as sc
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import NearestNeighbors

    import tmeatlas as tm
    from tmeatlas._pipeline import _neighbors, _umap

    a = tm.datasets.simulate_tumor(n_cells=20_000, n_patients=2, rng=5)
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, n_top_genes=2000)
    sc.tl.pca(a, n_comps=30, mask_var="highly_variable", random_state=0)
    _neighbors(a, use_rep="X_pca", rng=0)
    import umap  # noqa: F401  (imported before the clocks: its import compiles pynndescent)

    sc.tl.leiden(a, resolution=1.0, flavor="igraph", n_iterations=2, directed=False, random_state=0,
                 key_added="leiden")  # fmt: skip
    lab = a.obs["true_cell_type"].astype(str).to_numpy()
    idx = np.random.default_rng(0).choice(a.n_obs, 5000, replace=False)
    _, near_pca = NearestNeighbors(n_neighbors=16).fit(a.obsm["X_pca"]).kneighbors(a.obsm["X_pca"][idx])
    out, emb = {}, {}
    for name, n_max in (
        ("all_cells", 10 * a.n_obs),
        ("landmarks_4000", 4000),
        ("umap_learn_all_cells", None),
    ):
        b = a.copy()
        t = time.perf_counter()
        if n_max is None:
            sc.tl.umap(b, random_state=0)
        else:
            _umap(b, use_rep="X_pca", n_max=n_max, rng=0)
        sec = time.perf_counter() - t
        Y = np.asarray(b.obsm["X_umap"])
        _, near = NearestNeighbors(n_neighbors=16).fit(Y).kneighbors(Y[idx])
        keep = np.mean([len(set(x[1:]) & set(y[1:])) / 15 for x, y in zip(near, near_pca, strict=True)])
        out[name] = {"seconds": round(sec, 2), "silhouette_true_types": round(float(silhouette_score(Y[idx], lab[idx])), 4),
                     "knn_preservation_15": round(float(keep), 4),
                     "n_landmarks": b.uns["umap"]["params"].get("n_landmarks")}  # fmt: skip
        emb[name] = Y
    res = {"benchmark": "tmeatlas UMAP (every cell, landmarks) vs umap-learn's", "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "n_cells": a.n_obs, **out}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "umap_landmarks.json").write_text(json.dumps(res, indent=1) + "\n")
    fig, ax = plt.subplots(1, 3, figsize=(13.5, 4.5))
    codes = a.obs["true_cell_type"].cat.codes.to_numpy()
    for k, (name, Y) in enumerate(emb.items()):
        ax[k].scatter(Y[:, 0], Y[:, 1], c=codes, s=0.3, cmap="tab20", rasterized=True)
        ax[k].set_title(f"{name}: silhouette {out[name]['silhouette_true_types']:.2f}", fontsize=9)
        ax[k].set_xticks([])
        ax[k].set_yticks([])
    fig.tight_layout()
    fig.savefig(RESULTS / "umap_landmarks.png", dpi=100)
    plt.close(fig)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
