"""CNV inference and malignant calls: tmeatlas vs infercnvpy on the same simulated cohorts.

Run by hand from the project root (results go to benchmarks/results/cnv.json):

    .venv/bin/python benchmarks/cnv.py --sizes 10000 50000 100000 --n-genes 20000

Each size: one cohort from ``tm.datasets.simulate_tumor`` (4 patients, seed 0) written to a
temporary h5ad; every tool runs in its own subprocess that reads it, so that peak memory
(``ru_maxrss``) belongs to that tool alone. Both tools use window 101 and step 10.

* tmeatlas: ``tm.tl.infer_cnv(sample_key=...)`` with its automatic reference, then
  ``tm.tl.call_malignant(sample_key=...)``; the call is ``obs["malignant"] == "malignant"``.
* infercnvpy (``cnv.tl.infercnv`` on log-normalised data, no reference: its default) followed by
  its documented route to tumour cells: ``cnv.tl.pca``, ``cnv.pp.neighbors``, ``cnv.tl.leiden``,
  ``cnv.tl.cnv_score`` (mean absolute CNV per cluster); as no labels may be used, the score is
  thresholded by Otsu's method. A second infercnvpy run gets the true normal cells of the
  immune and stromal compartments as reference (an oracle no user has), to show its best case;
  ``tmeatlas_oracle_reference`` gives ``tm.tl.infer_cnv`` the same cells (``reference_key``), so
  that the two inference steps compare with a given reference.

F1 is against ``obs["true_malignant"]``. Times are wall-clock seconds of the tool calls
(reading the file excluded); ``peak_rss_gib`` is the process's maximum resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "cnv.json"

WORKER = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import anndata as ad, numpy as np
from sklearn.metrics import f1_score
path, tool, n_jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = ad.read_h5ad(path)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
truth = a.obs["true_malignant"].to_numpy(bool)
out = {"tool": tool, "n_cells": a.n_obs, "n_genes": a.n_vars, "rss_after_read_gib": round(base, 3)}
t0 = time.perf_counter()
if tool in ("tmeatlas", "tmeatlas_oracle_reference"):
    import tmeatlas as tm
    tm.settings.n_jobs = n_jobs
    kw = {}
    if tool == "tmeatlas_oracle_reference":
        a.obs["ref"] = np.where(a.obs["true_compartment"].isin(["immune", "stromal"]), "normal", "other")
        kw = {"reference_key": "ref", "reference_cats": "normal"}
        t0 = time.perf_counter()
    tm.tl.infer_cnv(a, sample_key="sample", n_jobs=n_jobs, **kw)
    t1 = time.perf_counter()
    tm.tl.call_malignant(a, sample_key="sample")
    pred = (a.obs["malignant"] == "malignant").to_numpy()
    out["n_uncertain"] = int((a.obs["malignant"] == "uncertain").sum())
else:
    import scanpy as sc, infercnvpy as cnv
    from skimage.filters import threshold_otsu
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    kw = {}
    if tool == "infercnvpy_oracle_reference":
        a.obs["ref"] = np.where(a.obs["true_compartment"].isin(["immune", "stromal"]), "normal", "other")
        kw = {"reference_key": "ref", "reference_cat": "normal"}
    t0 = time.perf_counter()
    cnv.tl.infercnv(a, window_size=101, step=10, n_jobs=n_jobs, **kw)
    t1 = time.perf_counter()
    cnv.tl.pca(a)
    cnv.pp.neighbors(a)
    cnv.tl.leiden(a)
    cnv.tl.cnv_score(a)
    s = a.obs["cnv_score"].to_numpy()
    pred = s > threshold_otsu(s)
t2 = time.perf_counter()
out.update({
    "infer_seconds": round(t1 - t0, 2),
    "call_seconds": round(t2 - t1, 2),
    "total_seconds": round(t2 - t0, 2),
    "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    "f1": round(float(f1_score(truth, pred)), 4),
    "n_called_malignant": int(pred.sum()),
    "n_true_malignant": int(truth.sum()),
})
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--n-genes", type=int, default=20_000)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument(
        "--tools",
        nargs="+",
        default=["tmeatlas", "infercnvpy", "infercnvpy_oracle_reference"],
        help="also: tmeatlas_oracle_reference (infer_cnv with the true normal cells as reference)",
    )
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per tool run")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument(
        "--merge", action="store_true", help="replace only the runs of the tools and sizes run now in --out"
    )
    args = ap.parse_args()

    import numpy as np

    import tmeatlas as tm

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            t = time.perf_counter()
            a = tm.datasets.simulate_tumor(n_cells=n, n_patients=4, n_genes=args.n_genes, rng=0)
            path = Path(tmp) / f"cohort_{n}.h5ad"
            a.write_h5ad(path)
            print(
                f"simulated {n} cells x {a.n_vars} genes in {time.perf_counter() - t:.0f} s "
                f"({int(np.median(np.diff(a.X.indptr)))} genes/cell)",
                file=sys.stderr,
            )
            del a
            for tool in args.tools:
                try:
                    p = subprocess.run(
                        [sys.executable, "-c", WORKER, str(path), tool, str(args.n_jobs)],
                        capture_output=True,
                        text=True,
                        timeout=args.timeout,
                    )
                    if p.returncode != 0:
                        res = {"tool": tool, "n_cells": n, "error": p.stderr.strip().splitlines()[-1:]}
                    else:
                        res = json.loads(p.stdout.strip().splitlines()[-1])
                        res["date"] = datetime.now(UTC).isoformat(timespec="seconds")
                except subprocess.TimeoutExpired:
                    res = {"tool": tool, "n_cells": n, "error": f"timeout after {args.timeout} s"}
                print(json.dumps(res), file=sys.stderr)
                runs.append(res)
    if args.merge and Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        new_keys = {(r["tool"], r["n_cells"]) for r in runs}
        runs = [r for r in old["runs"] if (r["tool"], r["n_cells"]) not in new_keys] + runs
        runs.sort(key=lambda r: (r["n_cells"], args.tools.index(r["tool"]) if r["tool"] in args.tools else 9))
    out = {
        "benchmark": "CNV inference + malignant calls, tmeatlas vs infercnvpy",
        "machine": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "n_jobs": args.n_jobs,
        },
        "n_genes": args.n_genes,
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(table(out))


def table(res: dict) -> str:
    """Markdown table of a results file (used for the README)."""
    lines = [
        "| cells | tool | infer (s) | total (s) | peak RSS (GiB) | malignant F1 |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["runs"]:
        if "error" in r:
            lines.append(f"| {r['n_cells']:,} | {r['tool']} | {r['error']} | | | |")
        else:
            lines.append(
                f"| {r['n_cells']:,} | {r['tool']} | {r['infer_seconds']} | {r['total_seconds']} | "
                f"{r['peak_rss_gib']} | {r['f1']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
