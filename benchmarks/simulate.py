"""Benchmark ``tm.datasets.simulate_tumor``: wall time and peak memory by number of cells.

Each size runs in a fresh subprocess (so its peak RSS is its own): a 300-cell warm-up call
(loads or compiles the numba kernels), then the timed call. Results go to
``benchmarks/results/simulate.json`` with the machine's description.

Usage::

    python benchmarks/simulate.py                 # 10k and 100k cells
    python benchmarks/simulate.py 10000 100000 300000 --n-genes 8000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"


def _worker(n_cells: int, n_genes: int) -> dict:
    import resource
    import time

    import numpy as np
    import psutil

    from tmeatlas.datasets._simulate import simulate_tumor

    proc = psutil.Process()
    t0 = time.perf_counter()
    simulate_tumor(n_cells=300, n_genes=n_genes)
    warmup = time.perf_counter() - t0
    rss_before = proc.memory_info().rss
    t0 = time.perf_counter()
    a = simulate_tumor(n_cells=n_cells, n_genes=n_genes)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    X = a.X
    umi = np.asarray(X.sum(1)).ravel()
    return {
        "n_cells": n_cells,
        "n_genes": n_genes,
        "seconds": round(seconds, 2),
        "warmup_seconds_300_cells": round(warmup, 2),
        "peak_rss_gib": round(peak / 2**30, 3),
        "rss_before_call_gib": round(rss_before / 2**30, 3),
        "matrix_gib": round((X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**30, 3),
        "nnz": int(X.nnz),
        "median_umis_per_cell": float(np.median(umi)),
        "median_genes_per_cell": float(np.median(np.diff(X.indptr))),
        "malignant_fraction": float(a.obs["true_malignant"].mean()),
    }


def _machine() -> dict:
    import numba
    import numpy as np
    import psutil

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_cells", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--n-genes", type=int, default=8000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.n_cells[0], args.n_genes)))
        return
    runs = []
    for n in args.n_cells:
        cmd = [sys.executable, __file__, str(n), "--n-genes", str(args.n_genes), "--worker"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        run = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{n:>9,} cells: {run['seconds']:7.1f} s, peak RSS {run['peak_rss_gib']:.2f} GiB "
            f"(counts {run['matrix_gib']:.2f} GiB), median {run['median_genes_per_cell']:.0f} genes / "
            f"{run['median_umis_per_cell']:.0f} UMIs per cell"
        )
        runs.append(run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"benchmark": "datasets.simulate_tumor", "machine": _machine(), "runs": runs}, indent=2)
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
