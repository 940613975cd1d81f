"""Cell-type annotation: ``tm.tl.annotate`` speed, memory and accuracy, with a scanpy anchor.

Run by hand from the project root (results go to benchmarks/results/annotate.json):

    .venv/bin/python benchmarks/annotate.py --sizes 10000 100000 --n-genes 20000

Each size: a cohort from ``tm.datasets.simulate_tumor`` (4 patients, seed 0) written to a
temporary h5ad; each tool runs in its own subprocess that reads it, so peak memory
(``ru_maxrss``) is that tool's alone. No CNV calls are given (the malignant label then comes
from markers, with its warning), so the run measures annotation by itself.

* ``tmeatlas``: ``tm.tl.annotate(adata)`` with defaults (marker scores + naive-Bayes refinement).
* ``scanpy_score_genes``: the usual notebook route, ``sc.pp.normalize_total`` + ``log1p`` and one
  ``sc.tl.score_genes`` call per major type of the same marker library (positive markers),
  each cell labelled by its highest score. Same markers, no refinement, no fine types.

Accuracy is against the simulated truth: ``cell_type_major`` accuracy (Malignant and
Epithelial kept apart), compartment accuracy and fine-type macro-F1 (tmeatlas only).
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

RESULTS = Path(__file__).resolve().parent / "results" / "annotate.json"

WORKER = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import anndata as ad, numpy as np
from sklearn.metrics import f1_score
path, tool = sys.argv[1], sys.argv[2]
a = ad.read_h5ad(path)
out = {"tool": tool, "n_cells": a.n_obs, "n_genes": a.n_vars,
       "rss_after_read_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
truth_major = a.obs["true_cell_type_major"].astype(str).to_numpy()
t0 = time.perf_counter()
if tool == "tmeatlas":
    import tmeatlas as tm
    tm.tl.annotate(a)
    major = a.obs["cell_type_major"].astype(str).to_numpy()
    fine = a.obs["cell_type"].astype(str).to_numpy()
    truth_fine = a.obs["true_cell_type"].astype(str).to_numpy()
    out["fine_macro_f1"] = round(float(f1_score(truth_fine, fine, average="macro", labels=sorted(set(truth_fine)))), 4)
    out["compartment_accuracy"] = round(float((a.obs["compartment"].astype(str) == a.obs["true_compartment"].astype(str)).mean()), 4)
else:
    import scanpy as sc
    import tmeatlas as tm
    lib = tm.datasets.markers(level="major")
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    types = list(dict.fromkeys(lib["cell_type"]))
    S = np.zeros((a.n_obs, len(types)))
    for j, t in enumerate(types):
        genes = [g for g in lib.loc[(lib["cell_type"] == t) & (lib["direction"] == "+"), "gene"] if g in a.var_names]
        sc.tl.score_genes(a, genes, score_name="_s", random_state=0)
        S[:, j] = a.obs["_s"].to_numpy()
    major = np.asarray(types)[S.argmax(axis=1)]
out["seconds"] = round(time.perf_counter() - t0, 2)
out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
out["major_accuracy"] = round(float((major == truth_major).mean()), 4)
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--n-genes", type=int, default=20_000)
    ap.add_argument("--tools", nargs="+", default=["tmeatlas", "scanpy_score_genes"])
    ap.add_argument("--timeout", type=int, default=3600)
    args = ap.parse_args()

    import tmeatlas as tm

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            a = tm.datasets.simulate_tumor(n_cells=n, n_patients=4, n_genes=args.n_genes, rng=0)
            path = Path(tmp) / f"cohort_{n}.h5ad"
            a.write_h5ad(path)
            del a
            for tool in args.tools:
                try:
                    p = subprocess.run(
                        [sys.executable, "-c", WORKER, str(path), tool],
                        capture_output=True,
                        text=True,
                        timeout=args.timeout,
                    )
                    res = (
                        json.loads(p.stdout.strip().splitlines()[-1])
                        if p.returncode == 0
                        else {"tool": tool, "n_cells": n, "error": p.stderr.strip().splitlines()[-1:]}
                    )
                except subprocess.TimeoutExpired:
                    res = {"tool": tool, "n_cells": n, "error": f"timeout after {args.timeout} s"}
                print(json.dumps(res), file=sys.stderr)
                runs.append(res)
    out = {
        "benchmark": "cell-type annotation, tmeatlas vs scanpy score_genes with the same markers",
        "machine": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "n_genes": args.n_genes,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
