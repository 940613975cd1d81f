"""Signature scoring: ``tm.tl.score_signatures`` speed, memory and agreement with scanpy and decoupler.

Run by hand from the project root (results go to benchmarks/results/scoring.json):

    .venv/bin/python benchmarks/scoring.py --sizes 20000 100000 --n-genes 20000

Each size: a cohort from ``tm.datasets.simulate_tumor`` (seed 0), log-normalised once
(``sc.pp.normalize_total`` + ``sc.pp.log1p``) and written to a temporary h5ad; each tool runs in
its own subprocess that reads it and times only the scoring call (reading excluded). Memory:
``peak_rss_gib`` is the process's lifetime peak (``ru_maxrss``, often set by reading the h5ad);
``peak_rss_during_call_gib`` is the peak of the scoring call alone (the kernel's peak-RSS
counter is reset after reading, ``/proc/self/clear_refs``), ``extra_rss_during_call_gib`` that
peak minus the resident memory before the call. Gene sets: the 50 MSigDB Hallmark sets of the
shipped library (``tm.datasets.signatures(category="hallmark")``), or, if the library is not
installed, ``../shared/data/resources/msigdb_hallmark_50.gmt`` (recorded under ``gene_sets``).

* ``tmeatlas_control`` / ``tmeatlas_rank``: ``tm.tl.score_signatures(method="control"|"rank")``,
  all 50 sets in one call, all cores (``n_jobs=-1``); ``*_1thread``: the same with ``n_jobs=1``.
* ``scanpy_score_genes``: 50 ``sc.tl.score_genes`` calls (one per set, ``random_state=0``), with
  the set's genes present in ``var_names``, the usual notebook loop.
* ``decoupler_aucell``: ``dc.mt.aucell`` (decoupler 2.x) with a source/target/weight net and
  ``n_up=1500`` (the rank cap of UCell's and tmeatlas' rank method; decoupler's default is 5 % of
  the genes). ``decoupler_ulm``: ``dc.mt.ulm`` with the same net (weights 1). Both with
  ``bsize=10_000`` cells per dense batch (the default, 250,000, densifies a 100k-cell matrix at once).

Timings exclude one-off numba compilation: the main process first scores a tiny matrix of the
same dtypes so that tmeatlas' kernels are compiled and cached on disk (decoupler caches its own).

Agreement: per set, Pearson r of tmeatlas control vs scanpy score_genes (same definition and
draws: r = 1 expected) and Spearman rho of tmeatlas rank (UCell) vs decoupler AUCell (related
rank statistics, not the same score), over cells.
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

RESULTS = Path(__file__).resolve().parent / "results" / "scoring.json"
GMT = Path(__file__).resolve().parents[2] / "shared" / "data" / "resources" / "msigdb_hallmark_50.gmt"

WORKER = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import anndata as ad, numpy as np, pandas as pd
path, sets_path, tool, out_path = sys.argv[1:5]
sets = json.loads(open(sets_path).read())  # {name: [genes]}
names = list(sets)
def status(key):  # kB fields of /proc/self/status, in GiB
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 2**20, 3)
a = ad.read_h5ad(path)
out = {"tool": tool, "n_cells": a.n_obs, "n_genes": a.n_vars,
       "rss_after_read_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
try:  # reset the peak RSS (Linux >= 4.0) so that the peak of the scoring call itself is measured
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    out["rss_before_call_gib"] = status("VmRSS")
except OSError:
    pass
if tool.startswith("tmeatlas"):
    from tmeatlas.tl._signatures import score_signatures
    method = tool.split("_")[1]
    n_jobs = 1 if tool.endswith("1thread") else -1
    t0 = time.perf_counter()
    score_signatures(a, signatures=sets, method=method, n_jobs=n_jobs)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    S = a.obsm["X_signatures"].reindex(columns=names).to_numpy(np.float32)
elif tool == "scanpy_score_genes":
    import scanpy as sc
    S = np.zeros((a.n_obs, len(names)), np.float32)
    t0 = time.perf_counter()
    for j, nm in enumerate(names):
        genes = [g for g in sets[nm] if g in a.var_names]
        sc.tl.score_genes(a, genes, score_name="_s", random_state=0)
        S[:, j] = a.obs["_s"].to_numpy()
    out["seconds"] = round(time.perf_counter() - t0, 2)
else:
    import decoupler as dc
    net = pd.DataFrame([(nm, g, 1.0) for nm in names for g in sets[nm]], columns=["source", "target", "weight"])
    t0 = time.perf_counter()
    if tool == "decoupler_aucell":
        dc.mt.aucell(a, net, n_up=1500, tmin=3, bsize=10_000)
        key = "score_aucell"
    else:
        dc.mt.ulm(a, net, tmin=3, bsize=10_000)
        key = "score_ulm"
    out["seconds"] = round(time.perf_counter() - t0, 2)
    res = a.obsm[key]
    res = res if isinstance(res, pd.DataFrame) else pd.DataFrame(res, index=a.obs_names)
    S = res.reindex(index=a.obs_names, columns=names).to_numpy(np.float32)
    out["version"] = dc.__version__
out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
if "rss_before_call_gib" in out:
    out["peak_rss_during_call_gib"] = status("VmHWM")
    out["extra_rss_during_call_gib"] = round(out["peak_rss_during_call_gib"] - out["rss_before_call_gib"], 3)
np.save(out_path, S)
print(json.dumps(out))
"""


def _gene_sets() -> tuple[dict[str, list[str]], str]:
    try:
        from tmeatlas.datasets._signatures import signatures

        df = signatures(category="hallmark")
        df = df[df["direction"] == "up"]
        sets = {nm: list(sub["gene"]) for nm, sub in df.groupby("name", sort=False)}
        return sets, "tm.datasets.signatures(category='hallmark') (shipped library)"
    except Exception as err:  # library not installed: the MSigDB GMT of the shared resources
        from tmeatlas.tl._signatures import _resolve

        df = _resolve(GMT)
        sets = {nm: list(sub["gene"]) for nm, sub in df.groupby("name", sort=False)}
        return sets, f"{GMT.name} from ../shared/data/resources (library not available: {err})"


def _warm_up(sets: dict) -> None:
    """Compile (and cache on disk) tmeatlas' numba kernels for float32 CSR input."""
    import warnings

    import anndata as ad
    import numpy as np
    from scipy import sparse

    from tmeatlas.tl._signatures import score_signatures

    genes = list(dict.fromkeys(g for v in sets.values() for g in v))[:400]
    X = sparse.random(50, len(genes), density=0.3, format="csr", dtype=np.float32, random_state=0)
    X.data = np.log1p(X.data * 10)
    a = ad.AnnData(X)
    a.var_names = genes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("control", "rank"):
            score_signatures(a, signatures=sets, method=method, min_genes=1)


def _agreement(a, b, kind: str) -> dict:
    import numpy as np
    from scipy.stats import pearsonr, spearmanr

    f = pearsonr if kind == "pearson" else spearmanr
    r = np.array([f(a[:, j], b[:, j])[0] if np.std(a[:, j]) > 0 and np.std(b[:, j]) > 0 else np.nan
                  for j in range(a.shape[1])])  # fmt: skip
    return {"kind": kind, "median": round(float(np.nanmedian(r)), 4), "min": round(float(np.nanmin(r)), 4),
            "n_sets": int(np.isfinite(r).sum()), "per_set": [round(float(x), 4) for x in r]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--n-genes", type=int, default=20_000)
    ap.add_argument(
        "--tools", nargs="+",
        default=["tmeatlas_control", "tmeatlas_rank", "tmeatlas_control_1thread", "tmeatlas_rank_1thread",
                 "scanpy_score_genes", "decoupler_aucell", "decoupler_ulm"],
    )  # fmt: skip
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per tool run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import numpy as np
    import scanpy as sc

    import tmeatlas as tm

    sets, source = _gene_sets()
    _warm_up(sets)
    prev = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = [r for r in prev.get("runs", []) if r.get("n_cells") not in args.sizes]
    agreement = {k: v for k, v in prev.get("agreement", {}).items() if int(k) not in args.sizes}
    with tempfile.TemporaryDirectory() as tmp:
        sets_path = Path(tmp) / "sets.json"
        sets_path.write_text(json.dumps(sets))
        for n in args.sizes:
            a = tm.datasets.simulate_tumor(n_cells=n, n_genes=args.n_genes, rng=0)
            sc.pp.normalize_total(a, target_sum=1e4)
            sc.pp.log1p(a)
            path = Path(tmp) / f"cohort_{n}.h5ad"
            a.write_h5ad(path)
            del a
            scores = {}
            for tool in args.tools:
                out_path = Path(tmp) / f"{tool}_{n}.npy"
                try:
                    p = subprocess.run([sys.executable, "-c", WORKER, str(path), str(sets_path), tool, str(out_path)],
                                       capture_output=True, text=True, timeout=args.timeout)  # fmt: skip
                    res = (json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0
                           else {"tool": tool, "n_cells": n, "error": p.stderr.strip().splitlines()[-3:]})  # fmt: skip
                except subprocess.TimeoutExpired:
                    res = {"tool": tool, "n_cells": n, "error": f"timeout after {args.timeout} s"}
                if out_path.exists():
                    scores[tool] = np.load(out_path)
                print(json.dumps(res), file=sys.stderr, flush=True)
                runs.append(res)
            agr = {}
            if {"tmeatlas_control", "scanpy_score_genes"} <= set(scores):
                agr["control_vs_score_genes"] = _agreement(
                    scores["tmeatlas_control"], scores["scanpy_score_genes"], "pearson"
                )
            if {"tmeatlas_rank", "decoupler_aucell"} <= set(scores):
                agr["rank_vs_aucell"] = _agreement(
                    scores["tmeatlas_rank"], scores["decoupler_aucell"], "spearman"
                )
            if {"tmeatlas_control", "decoupler_ulm"} <= set(scores):
                agr["control_vs_ulm"] = _agreement(
                    scores["tmeatlas_control"], scores["decoupler_ulm"], "spearman"
                )
            agreement[str(n)] = agr
            print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "per_set"} for k, v in agr.items()}),
                  file=sys.stderr, flush=True)  # fmt: skip
            speed = {r["tool"]: r["seconds"] for r in runs if r.get("n_cells") == n and "seconds" in r}
            if "scanpy_score_genes" in speed:
                for t in ("tmeatlas_control", "tmeatlas_control_1thread"):
                    if t in speed:
                        print(f"{n} cells: {t} {speed['scanpy_score_genes'] / speed[t]:.1f}x faster than the "
                              "score_genes loop", file=sys.stderr)  # fmt: skip
            out = {
                "benchmark": "signature scoring of 50 Hallmark sets: tmeatlas vs scanpy score_genes loop and decoupler",
                "machine": {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "platform": platform.platform(),
                    "cpu_count": os.cpu_count(),
                    "python": platform.python_version(),
                },  # fmt: skip
                "n_genes": args.n_genes,
                "gene_sets": {"source": source, "n_sets": len(sets)},
                "timeout_s": args.timeout,
                "runs": runs,
                "agreement": agreement,
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
