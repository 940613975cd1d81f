"""Fixed costs of ``tm.run`` on small data: where the seconds go, and a rerun with nothing to do.

Run by hand from the project root (results: ``benchmarks/results/latency.json``):

    .venv/bin/python benchmarks/latency.py

Each measurement runs in a fresh process, as a user's first call in a notebook would (imports
warm: the environment's bytecode and numba caches exist after the first run on the machine):
``tm.run`` on a simulated cohort of 2,000 cells (2 patients, spatial) with ``out=`` and reports,
then the same call again in the same process (nothing to do: every step reused, tables, figures and
reports kept). Recorded: seconds of the import, of each step (``uns["pipeline"]["steps"]``), of the
tables, figures and reports (the whole run minus the steps), and of the rerun. By default ``tm.run``
uses the second core for two things whose results do not depend on it: the UMAP layout runs in a
thread while the next steps work, and a second process lays out and renders figure files while the
first draws the next figure (``atlas.h5ad`` is written meanwhile); one more run with ``n_jobs=1``
(one process, one thread) measures the run without them. Then the README's demo, ``tmeatlas demo --out <tmp>`` (20,000 simulated cells, 4 patients, every output), timed
as a whole command in a fresh process. The goals of the project's run-through issue are 20 s for
the first run, 3 s for the rerun and 3 minutes for the demo on 2 cores.

This machine's speed varies between and within sessions (the same code measured 22.5 s and 30 s
on different days), so the run also times an anchor, a fixed workload of pure Python and numpy
(:func:`anchor`, best of 3, before and after the runs), and records each run's time in units of
it (``x_anchor``): comparable across machines and machine states where seconds are not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "latency.json"

CHILD = r"""
import json, sys, tempfile, time, warnings
t0 = time.perf_counter()
import tmeatlas as tm
t_import = time.perf_counter() - t0
warnings.simplefilter("ignore")
a = tm.datasets.simulate_tumor(n_cells=2000, n_patients=2, rng=0)
n_jobs = None if sys.argv[1] == "default" else int(sys.argv[1])
with tempfile.TemporaryDirectory() as out:
    t = time.perf_counter()
    tm.run(a, sample_key="sample", out=out, progress=False, n_jobs=n_jobs)
    first = time.perf_counter() - t
    t = time.perf_counter()
    tm.run(a, sample_key="sample", out=out, progress=False, n_jobs=n_jobs)
    rerun = time.perf_counter() - t
steps = a.uns["pipeline"]["steps"]
print(json.dumps({"import_s": round(t_import, 2), "first_run_s": round(first, 2), "rerun_s": round(rerun, 2),
                  "steps_s": {str(r["step"]): float(r["seconds"]) for _, r in steps.iterrows()}}))
"""


def anchor() -> float:
    """Seconds of a fixed workload (best of 3): a pure-Python loop and a numpy SVD."""
    import numpy as np

    x = np.random.default_rng(0).standard_normal((2000, 400))
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        s = 0
        for i in range(10_000_000):
            s += i
        np.linalg.svd(x, full_matrices=False)
        best = min(best, time.perf_counter() - t)
    return round(best, 3)


def _run(n_jobs: str) -> dict:
    """One measurement in a fresh process (``n_jobs``: ``"default"`` or a number)."""
    proc = subprocess.run([sys.executable, "-c", CHILD, n_jobs], capture_output=True, text=True, check=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["outputs_s"] = round(r["first_run_s"] - sum(r["steps_s"].values()), 2)
    return r


def main(repeats: int = 3) -> None:
    before = anchor()
    runs = []
    for i in range(repeats):
        runs.append(_run("default"))
        print(f"run {i + 1}: {json.dumps(runs[-1])}", flush=True)
    one = _run("1")
    print(f"n_jobs=1: {json.dumps(one)}", flush=True)
    cli = Path(sys.executable).with_name("tmeatlas")
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        subprocess.run([str(cli), "demo", "--out", str(Path(out) / "demo")], capture_output=True, check=True)
        demo = round(time.perf_counter() - t, 1)
    print(f"demo: {demo} s", flush=True)
    anchors = [before, anchor()]
    a = float(np.mean(anchors))
    for r in [*runs, one]:
        r["x_anchor"] = round(r["first_run_s"] / a, 1)
    print(
        f"anchor: {anchors} s; first runs in anchor units: {[r['x_anchor'] for r in runs]}, n_jobs=1 "
        f"{one['x_anchor']}",
        flush=True,
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                   "machine": f"{os.cpu_count()} cores", "cells": 2000, "runs": runs,
                                   "run_n_jobs_1": one, "demo_s": demo, "demo_cells": 20000,
                                   "anchor_s": anchors}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
