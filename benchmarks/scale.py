"""Atlas scale: time and memory of the pipeline and of each tool against the number of cells.

Run by hand from the project root (results go to ``benchmarks/results/scale.json`` and
``benchmarks/results/scale.png``/``.pdf``)::

    .venv/bin/python benchmarks/scale.py --sizes 10000 100000
    .venv/bin/python benchmarks/scale.py --sizes 1000000 --modes dask --no-anchors --tmp DIR   # adds to the JSON

Cohorts
    ``tm.datasets.simulate_tumor`` (8,000 genes, spatial), written to an ``.h5ad`` on disk in
    parts of at most 100,000 cells (each part its own cohort: seed ``1000 * seed + part``,
    about one patient per 25,000 cells, samples renamed ``B<part>_P<k>``), appended to the CSR
    datasets of one file, so no size needs its whole matrix in memory to be written.
    Median 1,600-1,800 detected genes per cell.

Modes (each size and mode in its own subprocess, so peak memory is its own)
    ``memory``: the file is read into memory and ``tm.run`` runs the whole pipeline on it
    (report and figures off: they are not a function of scale); per step, the seconds the
    pipeline records and the peak RSS sampled (every 20 ms) while the step ran. Before the
    measured run, the same process runs ``tm.run`` on a 1,500-cell cohort, so that one-off
    compilation (numba, UMAP) is not charged to the smallest size.
    ``dask``: ``X`` is a Dask array over the file (``read_h5ad_lazy``, blocks of ``--chunk``
    rows, what ``tmeatlas run --lazy`` uses) and ``tm.run`` runs on it the same way: the
    matrix is never loaded; steps in ``--skip-dask`` are left out.

Lower bound (every size)
    One sequential read of the whole matrix from disk, block by block, and one sparse
    matrix-vector product over it: no tool that reads every count can be faster than this.

Anchors (sizes up to ``--anchor-max``, same file, own subprocess each)
    infercnvpy ``tl.infercnv`` (window 101, step 10, no reference) on log-normalised data;
    ``sc.tl.score_genes`` in a loop and ``tm.tl.score_signatures`` over the same 10 Hallmark
    sets; decoupler ``aucell`` over the same sets (at most 20,000 cells: it is the slowest);
    squidpy ``gr.nhood_enrichment`` and ``tm.gr.enrichment`` on the same spatial graph with the
    same number of permutations, one thread each (squidpy's ``n_jobs=2`` fails above ~65,000
    cells here: joblib hands its numba kernel read-only memory-mapped arrays). Every anchor and tmeatlas call first runs once on 2,000 of the
    cells (imports, numba compilation: not measured), then on all of them.

The fitted exponent of a step is the least-squares slope of log(seconds) against log(cells)
over the sizes measured in one mode (1 = linear); ``throughput`` lists cells per second of every
step and of the whole pipeline, per size and mode. ``--plot-only`` recomputes these summaries from
the stored runs and redraws the figure without measuring anything.
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

RESULTS = Path(__file__).resolve().parent / "results"
PART = 100_000
CELLS_PER_PATIENT = 25_000

COMMON = r'''
import json, sys, threading, time, warnings
warnings.simplefilter("ignore")
import numpy as np, psutil

class Sampler:
    """Peak RSS of this process, sampled every 20 ms; peaks of marked intervals."""
    def __init__(self):
        self.proc = psutil.Process()
        self.peak = self.cur = self.proc.memory_info().rss
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()
    def _run(self):
        while not self.stop:
            self.cur = self.proc.memory_info().rss
            self.peak = max(self.peak, self.cur)
            time.sleep(0.02)
    def begin(self):
        self.peak = self.proc.memory_info().rss
    def gib(self):
        return round(max(self.peak, self.proc.memory_info().rss) / 2**30, 3)

'''

WORKER = (
    COMMON
    + r"""
path, mode, chunk, n_perms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
skip = [x for x in sys.argv[5].split(",") if x] if len(sys.argv) > 5 else []
import tmeatlas as tm
from tmeatlas import _pipeline
from tmeatlas._core.chunks import read_h5ad_lazy
tm.settings.chunk_size = chunk
S = Sampler()
out = {"mode": mode, "steps": [], "skipped_steps": skip}
# warm-up on a small cohort (numba and UMAP compilation, imports), not measured
warm = tm.datasets.simulate_tumor(n_cells=1500, n_patients=2, rng=99)
tm.run(warm, sample_key="sample", spatial=True, n_perms=20, report=False, progress=False)
del warm
S.begin()
t0 = time.perf_counter()
if mode == "memory":
    import anndata as ad
    a = ad.read_h5ad(path)
else:
    a = read_h5ad_lazy(path, chunk)
out["read_seconds"] = round(time.perf_counter() - t0, 2)
out["n_cells"] = a.n_obs
marks = {}
class Disp(_pipeline._Display):
    def begin(self, title):
        marks["title"] = title
        S.begin()
        super().begin(title)
    def end(self, seconds, outcome=""):
        super().end(seconds, outcome)
        out["steps"].append({"title": marks["title"], "peak_rss_gib": S.gib()})
_pipeline._Display = Disp
t = time.perf_counter()
tm.run(a, sample_key="sample", spatial=True, n_perms=n_perms, report=False, progress=True, skip=skip)
out["pipeline_seconds"] = round(time.perf_counter() - t, 2)
rec = a.uns["pipeline"]["steps"]
done = rec[rec["status"] == "done"]
for st, (_, row) in zip(out["steps"], done.iterrows()):
    st["step"], st["seconds"] = str(row["step"]), float(row["seconds"])
import resource
out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
print("RESULT" + json.dumps(out))
"""
)

LOWER = (
    COMMON
    + r"""
path, chunk = sys.argv[1], int(sys.argv[2])
import h5py
from scipy import sparse
S = Sampler()
with h5py.File(path, "r") as f:
    g = f["X"]; n, m = g.attrs["shape"]
    indptr = g["indptr"][:]
    v = np.random.default_rng(0).standard_normal(m).astype(np.float32)
    y = np.empty(n, np.float32)
    t_read = t_mult = 0.0
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        t = time.perf_counter()
        lo, hi = indptr[s], indptr[e]
        B = sparse.csr_matrix((g["data"][lo:hi], g["indices"][lo:hi], indptr[s:e + 1] - lo), shape=(e - s, m))
        t_read += time.perf_counter() - t
        t = time.perf_counter()
        y[s:e] = B @ v
        t_mult += time.perf_counter() - t
    nnz = int(indptr[-1])
print("RESULT" + json.dumps({"n_cells": int(n), "nnz": nnz, "read_seconds": round(t_read, 2),
      "spmv_seconds": round(t_mult, 2), "seconds": round(t_read + t_mult, 2),
      "matrix_gib": round(nnz * 8 / 2**30, 3), "peak_rss_gib": S.gib()}))
"""
)

ANCHOR = (
    COMMON
    + r"""
path, tool, n_perms = sys.argv[1], sys.argv[2], int(sys.argv[3])
import anndata as ad, scanpy as sc, pandas as pd
import tmeatlas as tm
full = ad.read_h5ad(path)
S = Sampler()
sets = tm.datasets.signatures(category="hallmark")
names = list(dict.fromkeys(sets["name"]))[:10]
sets = sets[sets["name"].isin(names)]
out = {"tool": tool, "n_cells": full.n_obs}

def prepare(a):
    if tool in ("infercnvpy", "score_genes", "tmeatlas_scoring", "tmeatlas_rank", "decoupler_aucell"):
        sc.pp.normalize_total(a, target_sum=1e4); sc.pp.log1p(a)
    if tool in ("infercnvpy", "tmeatlas_cnv"):
        tm.pp.gene_positions(a)
    if tool in ("squidpy_enrichment", "tmeatlas_enrichment"):
        a.obs["type"] = a.obs["true_cell_type_major"].astype("category")
        tm.gr.neighborhoods(a, groupby="type", sample_key="sample")
        G = a.obsp["spatial_connectivities"]  # squidpy's numba kernel takes int32 indices only
        G.indices, G.indptr = G.indices.astype(np.int32), G.indptr.astype(np.int32)

def run(a):
    if tool == "infercnvpy":
        import infercnvpy as cnv
        cnv.tl.infercnv(a, window_size=101, step=10, n_jobs=2)
    elif tool == "tmeatlas_cnv":
        tm.tl.infer_cnv(a, sample_key="sample", n_jobs=2)
    elif tool == "score_genes":
        for nm in names:
            sc.tl.score_genes(a, sets.loc[sets["name"] == nm, "gene"].tolist(), score_name=nm, random_state=0)
    elif tool == "tmeatlas_scoring":
        tm.tl.score_signatures(a, signatures=sets, method="control")
    elif tool == "tmeatlas_rank":
        tm.tl.score_signatures(a, signatures=sets, method="rank")
    elif tool == "decoupler_aucell":
        import decoupler as dc
        dc.mt.aucell(a, pd.DataFrame({"source": sets["name"].to_numpy(), "target": sets["gene"].to_numpy()}), tmin=5)
    elif tool == "squidpy_enrichment":
        import squidpy as sq
        sq.gr.nhood_enrichment(a, cluster_key="type", library_key="sample", connectivity_key="spatial", n_perms=n_perms, seed=0, n_jobs=1,
                               show_progress_bar=False)
    elif tool == "tmeatlas_enrichment":
        tm.gr.enrichment(a, groupby="type", sample_key="sample", n_perms=n_perms, n_jobs=1)

# warm-up on 2,000 cells (imports, numba compilation), not measured
small = full[:2000].copy()
prepare(small); run(small)
del small
prepare(full)
S.begin(); t = time.perf_counter()
run(full)
out["seconds"] = round(time.perf_counter() - t, 2)
out["peak_rss_gib"] = S.gib()
print("RESULT" + json.dumps(out))
"""
)

# anchor -> the tmeatlas run it is compared with, and the largest size it runs at
ANCHORS = {
    "infercnvpy": ("tmeatlas_cnv", None),
    "score_genes": ("tmeatlas_scoring", None),
    "decoupler_aucell": ("tmeatlas_rank", 20_000),
    "squidpy_enrichment": ("tmeatlas_enrichment", None),
}


def write_cohort(path: Path, n_cells: int, seed: int) -> dict:
    """Simulate ``n_cells`` in parts of <= PART cells and append them to one CSR ``.h5ad``."""
    import anndata as ad
    import h5py
    import numpy as np
    import pandas as pd

    import tmeatlas as tm

    parts = [PART] * (n_cells // PART) + ([n_cells % PART] if n_cells % PART else [])
    obs, xy, nnz, genes = [], [], 0, []
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["encoding-version"] = "csr_matrix", "0.1.0"
        kw = {"maxshape": (None,), "chunks": (1 << 20,)}
        d = g.create_dataset("data", shape=(0,), dtype="float32", **kw)
        ix = g.create_dataset("indices", shape=(0,), dtype="int32", **kw)
        ip = g.create_dataset("indptr", shape=(1,), dtype="int64", maxshape=(None,), chunks=(1 << 16,))
        ip[0] = 0
        n_done = 0
        for i, m in enumerate(parts):
            a = tm.datasets.simulate_tumor(
                n_cells=m, n_patients=max(2, round(m / CELLS_PER_PATIENT)), rng=1000 * seed + i
            )
            X = a.X
            k = X.nnz
            d.resize((nnz + k,))
            ix.resize((nnz + k,))
            d[nnz:] = X.data
            ix[nnz:] = X.indices
            ip.resize((n_done + m + 1,))
            ip[n_done + 1 :] = X.indptr[1:].astype(np.int64) + nnz
            nnz += k
            n_done += m
            o = a.obs.copy()
            o["sample"] = (f"B{i}_" + o["sample"].astype(str)).astype("category")
            o.index = [f"b{i}_{c}" for c in o.index]
            obs.append(o)
            xy.append(a.obsm["spatial"])
            genes = a.var
            del a, X
        g.attrs["shape"] = (n_done, len(genes))
        obs = pd.concat(obs)
        for c in obs.columns:
            if isinstance(obs[c].dtype, pd.CategoricalDtype):
                obs[c] = obs[c].astype(str).astype("category")
        ad.io.write_elem(f, "obs", obs)
        ad.io.write_elem(f, "var", genes)
        ad.io.write_elem(f, "obsm", {"spatial": np.vstack(xy)})
        for key in ("layers", "obsp", "varm", "varp", "uns"):
            ad.io.write_elem(f, key, {})
    return {"n_cells": n_done, "nnz": int(nnz), "median_genes_per_cell": None}


def _sub(code: str, *args) -> dict:
    """Run ``code`` in its own Python process; its stderr (progress) is echoed as it comes."""
    from collections import deque

    env = dict(os.environ, PYTHONWARNINGS="ignore")
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        tail = deque(maxlen=40)
        for line in p.stderr:
            sys.stderr.write(line)
            tail.append(line)
        p.wait()
        out.seek(0)
        stdout = out.read()
    line = [x for x in stdout.splitlines() if x.startswith("RESULT")]
    if p.returncode or not line:
        return {"error": ("".join(tail) or stdout)[-2000:]}
    return json.loads(line[-1][6:])


def _exponent(points: list[tuple[int, float]]) -> float | None:
    import numpy as np

    pts = [(n, s) for n, s in points if s and s > 0]
    if len({n for n, _ in pts}) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return round(float(np.polyfit(x, y, 1)[0]), 3)


def summarise(res: dict) -> dict:
    """Fitted exponents per mode and step, and anchor ratios."""
    fits = {}
    for mode in ("memory", "dask"):
        by = {}
        for r in res["runs"]:
            if r.get("mode") != mode or "steps" not in r:
                continue
            for st in r["steps"]:
                by.setdefault(st["step"], []).append((r["n_cells"], st["seconds"]))
            if "pipeline_seconds" in r:
                by.setdefault("pipeline", []).append((r["n_cells"], r["pipeline_seconds"]))
        fits[mode] = {k: _exponent(v) for k, v in by.items()}
    fits["lower_bound"] = _exponent(
        [(r["n_cells"], r["seconds"]) for r in res["lower_bound"] if "seconds" in r]
    )
    ratios = []
    for r in res["anchors"]:
        if r.get("tool") not in ANCHORS or "seconds" not in r:
            continue
        ours = [
            x
            for x in res["anchors"]
            if x.get("tool") == ANCHORS[r["tool"]][0] and x.get("n_cells") == r["n_cells"]
        ]
        if ours and ours[0].get("seconds"):
            ratios.append({"anchor": r["tool"], "tmeatlas": ours[0]["tool"], "n_cells": r["n_cells"],
                           "anchor_seconds": r["seconds"], "tmeatlas_seconds": ours[0]["seconds"],
                           "speedup": round(r["seconds"] / ours[0]["seconds"], 2)})  # fmt: skip
    throughput = [
        {"mode": r["mode"], "n_cells": r["n_cells"], "step": st["step"],
         "cells_per_second": round(r["n_cells"] / st["seconds"], 1)}
        for r in res["runs"] if "steps" in r
        for st in [*r["steps"], {"step": "pipeline", "seconds": r.get("pipeline_seconds")}] if st.get("seconds")
    ]  # fmt: skip
    return {"exponents": fits, "anchor_ratios": ratios, "throughput": throughput}


def plot(res: dict, stem: Path) -> None:
    """Time and peak memory against cells: colour = step, solid = in memory, dashed = Dask."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    okabe_ito = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#000000"]
    keep = ["embedding", "cnv", "clones", "cell_types", "signatures", "stemness", "whole pipeline"]
    colour = dict(zip(keep, okabe_ito))
    styles = {"memory": "-", "dask": "--"}
    series = {}
    for r in res["runs"]:
        if "steps" not in r:
            continue
        for st in r["steps"]:
            series.setdefault((r["mode"], st["step"]), []).append(
                (r["n_cells"], st["seconds"], st["peak_rss_gib"])
            )
        if "pipeline_seconds" in r:
            series.setdefault((r["mode"], "whole pipeline"), []).append(
                (r["n_cells"], r["pipeline_seconds"], r["peak_rss_gib"])
            )
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for (mode, step), pts in sorted(series.items()):
        if step not in colour:
            continue
        pts = sorted(pts)
        n = [p[0] for p in pts]
        for ax, k in zip(axes, (1, 2)):
            ax.plot(n, [p[k] for p in pts], styles[mode], marker="o", ms=3, color=colour[step], lw=1)
    lb = sorted((r["n_cells"], r["seconds"]) for r in res["lower_bound"] if "seconds" in r)
    if lb:
        axes[0].plot([p[0] for p in lb], [p[1] for p in lb], ":", color="grey", lw=1)
    for ax, lab in zip(axes, ("wall time (s)", "peak RSS (GiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("cells")
        ax.set_ylabel(lab)
    axes[1].axhline(24, color="grey", lw=0.8)
    axes[1].text(axes[1].get_xlim()[0], 24, " 24 GiB (machine)", va="bottom", fontsize=6)
    handles = [Line2D([], [], color=c, lw=1.5, label=k) for k, c in colour.items()]
    handles += [Line2D([], [], color="k", ls=ls, lw=1, label=m) for m, ls in styles.items()]
    handles += [Line2D([], [], color="grey", ls=":", lw=1, label="read + SpMV (lower bound)")]
    fig.legend(handles=handles, loc="center right", fontsize=6, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.8, 1))
    fig.savefig(stem.with_suffix(".png"), dpi=150)
    fig.savefig(stem.with_suffix(".pdf"))
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--modes", nargs="*", default=["memory", "dask"], choices=["memory", "dask"])
    p.add_argument("--chunk", type=int, default=20_000)
    p.add_argument("--n-perms", type=int, default=200)
    p.add_argument("--anchor-max", type=int, default=100_000)
    p.add_argument("--no-anchors", action="store_true")
    p.add_argument("--plot-only", action="store_true", help="redraw the figure from the JSON")
    p.add_argument(
        "--anchor-tools", nargs="*", default=None, help="run only these anchors (and their tmeatlas pairs)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tmp", default=None, help="folder for the cohort files (default: a temporary folder)")
    p.add_argument("--fresh", action="store_true", help="start a new JSON instead of adding to it")
    p.add_argument("--skip-dask", default="", help="pipeline steps to skip in dask mode (comma-separated)")
    args = p.parse_args()

    import numpy as np

    out_json = RESULTS / "scale.json"
    res = {"runs": [], "lower_bound": [], "anchors": [], "cohorts": []}
    if out_json.exists() and not args.fresh:
        res.update({k: v for k, v in json.loads(out_json.read_text()).items() if k in res})
    if args.plot_only:  # redraw, and recompute the summary (exponents, ratios, throughput) of the stored runs
        res.update(summarise(res))
        res.update({k: v for k, v in json.loads(out_json.read_text()).items() if k not in res})
        out_json.write_text(json.dumps(res, indent=1))
        plot(res, RESULTS / "scale")
        return
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="tmeatlas_scale_"))
    tmp.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        path = tmp / f"cohort_{n}.h5ad"
        if not path.exists():
            print(f"writing {n:,} cells to {path}", file=sys.stderr, flush=True)
            info = write_cohort(path, n, args.seed)
            res["cohorts"] = [c for c in res["cohorts"] if c["n_cells"] != n] + [info]
        lb = _sub(LOWER, path, args.chunk)
        print("lower bound", lb, file=sys.stderr, flush=True)
        res["lower_bound"] = [r for r in res["lower_bound"] if r.get("n_cells") != n] + [lb]
        for mode in args.modes:
            print(f"{mode} {n:,} cells ...", file=sys.stderr, flush=True)
            r = _sub(WORKER, path, mode, args.chunk, args.n_perms, args.skip_dask if mode == "dask" else "")
            r.setdefault("mode", mode)
            r.setdefault("n_cells", n)
            print(json.dumps(r)[:1500], file=sys.stderr, flush=True)
            res["runs"] = [
                x for x in res["runs"] if not (x.get("n_cells") == n and x.get("mode") == mode)
            ] + [r]
        if not args.no_anchors and n <= args.anchor_max:
            for anchor, (ours, cap) in ANCHORS.items():
                if (cap is not None and n > cap) or (
                    args.anchor_tools is not None and anchor not in args.anchor_tools
                ):
                    continue
                for tool in (anchor, ours):
                    r = _sub(ANCHOR, path, tool, args.n_perms)
                    r.setdefault("tool", tool)
                    r.setdefault("n_cells", n)
                    print(tool, r, file=sys.stderr, flush=True)
                    res["anchors"] = [
                        x for x in res["anchors"] if not (x.get("n_cells") == n and x.get("tool") == tool)
                    ] + [r]
        res.update(summarise(res))
        res["machine"] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "platform": platform.platform(),
                          "cpu_count": os.cpu_count(), "python": platform.python_version(),
                          "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}  # fmt: skip
        res["command"] = "python benchmarks/scale.py " + " ".join(sys.argv[1:])
        out_json.write_text(
            json.dumps(res, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
        )
        plot(res, RESULTS / "scale")
    print(json.dumps(res.get("exponents"), indent=1))


if __name__ == "__main__":
    main()
