"""Spatial neighbourhoods and enrichment: tmeatlas vs squidpy on the same graph.

Run by hand from the project root (results go to benchmarks/results/spatial.json):

    .venv/bin/python benchmarks/spatial.py --sizes 100000 --n-perms 1000

Each size: a simulated cohort (``tm.datasets.simulate_tumor``, 4 patients, seed 0, 2,000 genes:
only coordinates and labels matter) written to a temporary h5ad; each tool runs in its own
subprocess (peak RSS = that tool's), on the true major cell types.

* ``tmeatlas``: ``tm.gr.neighborhoods`` (kNN, k = 15, per sample) then ``tm.gr.enrichment``
  (``n_perms`` permutations within samples, pooled and per-sample z-scores).
* ``squidpy``: ``sq.gr.nhood_enrichment`` on the graph that tmeatlas built (same edges; labels
  permuted within samples via ``library_key``; ``n_jobs=1``), so that only the enrichment step
  is compared; agreement is the Spearman correlation of the pooled z-scores.
* ``tmeatlas_niches`` vs ``squidpy_niches``: ``tm.gr.niches`` (composition of the same kNN graph,
  k-means, number by stability; the tumour interface left out, as squidpy has none) vs
  ``sq.gr.calculate_niche(flavor="neighborhood")`` (neighbourhood profiles + Leiden at resolution
  0.5): time, memory and ARI against the simulator's true niches.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "spatial.json"

WORKER = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import anndata as ad, numpy as np
path, tool, n_perms = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = ad.read_h5ad(path)
import tmeatlas as tm
t0 = time.perf_counter()
tm.gr.neighborhoods(a, groupby="true_cell_type_major", sample_key="sample", n_neighbors=15)
t1 = time.perf_counter()
out = {"tool": tool, "n_cells": a.n_obs, "neighborhoods_seconds": round(t1 - t0, 2)}
if tool.endswith("_niches"):
    from sklearn.metrics import adjusted_rand_score
    t1 = time.perf_counter()
    if tool == "tmeatlas_niches":
        tm.gr.niches(a, sample_key="sample", use_interface=False, rng=0)
        labels = a.obs["niche"]
    else:
        import squidpy as sq
        sq.gr.calculate_niche(a, flavor="neighborhood", groups="true_cell_type_major", n_neighbors=15,
                              resolutions=0.5, library_key="sample", random_state=0)
        labels = a.obs[[c for c in a.obs.columns if c.startswith("nhood_niche")][-1]]
    t2 = time.perf_counter()
    out["niches_seconds"] = round(t2 - t1, 2)
    out["n_niches"] = int(labels.nunique())
    out["niche_ari_vs_true_niche"] = round(float(adjusted_rand_score(a.obs["true_niche"], labels.astype(str))), 4)
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    print(json.dumps(out))
    sys.exit(0)
if tool == "tmeatlas":
    tm.gr.enrichment(a, groupby="true_cell_type_major", sample_key="sample", n_perms=n_perms)
    t2 = time.perf_counter()
    z = a.uns["enrichment"]["zscore"]
    z = z[z["sample"] == "pooled"]
    out["pooled_z"] = {f"{r.cluster_a}|{r.cluster_b}": float(r.zscore) for r in z.itertuples()}
else:
    import squidpy as sq
    t1 = time.perf_counter()
    sq.gr.nhood_enrichment(a, cluster_key="true_cell_type_major", library_key="sample", connectivity_key="spatial",
                           n_perms=n_perms, n_jobs=1, seed=0, show_progress_bar=False)
    t2 = time.perf_counter()
    cats = list(a.obs["true_cell_type_major"].cat.categories)
    Z = a.uns["true_cell_type_major_nhood_enrichment"]["zscore"]
    out["pooled_z"] = {f"{ca}|{cb}": float(Z[i, j]) for i, ca in enumerate(cats) for j, cb in enumerate(cats)}
out["enrichment_seconds"] = round(t2 - t1, 2)
out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--n-perms", type=int, default=1000)
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument(
        "--max-squidpy-niche-cells",
        type=int,
        default=200_000,
        help="largest size at which squidpy's calculate_niche runs (3.6 min at 100k cells here)",
    )
    args = ap.parse_args()

    import numpy as np
    from scipy.stats import spearmanr

    import tmeatlas as tm

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            a = tm.datasets.simulate_tumor(n_cells=n, n_patients=4, n_genes=2000, rng=0)
            path = Path(tmp) / f"cohort_{n}.h5ad"
            a.write_h5ad(path)
            del a
            res = {}
            tools = ["tmeatlas", "squidpy", "tmeatlas_niches"]
            if n <= args.max_squidpy_niche_cells:
                tools.append("squidpy_niches")
            for tool in tools:
                p = subprocess.run(
                    [sys.executable, "-c", WORKER, str(path), tool, str(args.n_perms)],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                )
                res[tool] = (
                    json.loads(p.stdout.strip().splitlines()[-1])
                    if p.returncode == 0
                    else {"tool": tool, "n_cells": n, "error": p.stderr.strip().splitlines()[-1:]}
                )
            if all("pooled_z" in res.get(t, {}) for t in ("tmeatlas", "squidpy")):
                keys = sorted(set(res["tmeatlas"]["pooled_z"]) & set(res["squidpy"]["pooled_z"]))
                x = np.array([res["tmeatlas"]["pooled_z"][k] for k in keys])
                y = np.array([res["squidpy"]["pooled_z"][k] for k in keys])
                ok = np.isfinite(x) & np.isfinite(y)
                res["tmeatlas"]["spearman_pooled_z_vs_squidpy"] = round(float(spearmanr(x[ok], y[ok])[0]), 4)
                res["tmeatlas"]["enrichment_speedup_vs_squidpy"] = round(
                    res["squidpy"]["enrichment_seconds"] / max(res["tmeatlas"]["enrichment_seconds"], 1e-9), 1
                )
            for r in res.values():
                r.pop("pooled_z", None)
                print(json.dumps(r), file=sys.stderr)
                runs.append(r)
    out = {
        "benchmark": "spatial neighbourhoods + enrichment, tmeatlas vs squidpy nhood_enrichment",
        "machine": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "n_perms": args.n_perms,
        "runs": runs,
    }
    if RESULTS.exists():  # rerunning some sizes keeps the runs of the others
        old = json.loads(RESULTS.read_text())
        if old.get("n_perms") == args.n_perms:
            out["runs"] = [r for r in old.get("runs", []) if r.get("n_cells") not in args.sizes] + runs
            out["runs"].sort(key=lambda r: r.get("n_cells", 0))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
