"""Exhaustion and progenitor-exhaustion signatures against the simulated CD8 T-cell states.

Run by hand from the project root (results go to benchmarks/results/exhaustion.json):

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/exhaustion.py --seeds 0 1 2 3 4

Settings (each over the seeds): ``test`` is ``simulate_tumor(n_cells=4000, n_patients=3)``, the
cohort of ``tests/test_stemness.py``; ``demo`` is ``simulate_tumor(n_cells=20000, n_patients=4)``,
the cohort of ``tmeatlas demo``. Cells: the simulation's CD8 T cells (``true_cell_type`` in CD8 T,
exhausted CD8 T, progenitor-exhausted CD8 T). For every library signature of the categories
``exhaustion`` and ``progenitor_exhausted`` and both scoring methods (``"control"``, ``"rank"``),
on log-normalised counts: the AUROC of the score for the matching truth (exhausted CD8 T for
exhaustion, progenitor-exhausted CD8 T for progenitor exhaustion). The simulator's programs are
written from marker modules (``tmeatlas/datasets/_programs.py``), not from these signatures; they
share genes (PDCD1, HAVCR2, LAG3, TIGIT, TOX, ENTPD1, CTLA4, TCF7, SLAMF6, CXCR5), which is the
biology the signatures describe.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "exhaustion.json"
SETTINGS = {"test": dict(n_cells=4000, n_patients=3), "demo": dict(n_cells=20000, n_patients=4)}
TRUTH = {"exhaustion": "exhausted CD8 T", "progenitor_exhausted": "progenitor-exhausted CD8 T"}
CD8 = ["CD8 T", "exhausted CD8 T", "progenitor-exhausted CD8 T"]


def run_one(setting: str, seed: int) -> list[dict]:
    import scanpy as sc
    from sklearn.metrics import roc_auc_score

    import tmeatlas as tm

    a = tm.datasets.simulate_tumor(**SETTINGS[setting], rng=seed)
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    lib = tm.datasets.signatures(category=list(TRUTH))
    names = list(dict.fromkeys(lib["name"]))
    cat = lib.drop_duplicates("name").set_index("name")["category"]
    cd8 = a.obs["true_cell_type"].isin(CD8).to_numpy()
    rows = []
    for method in ("control", "rank"):
        b = a.copy()
        tm.tl.score_signatures(b, signatures=names, method=method, rng=0)
        for n in names:
            truth = (b.obs["true_cell_type"] == TRUTH[cat[n]]).to_numpy()[cd8]
            auc = roc_auc_score(truth, b.obs[f"sig_{n}"].to_numpy()[cd8])
            rows.append(
                dict(
                    setting=setting,
                    seed=seed,
                    method=method,
                    signature=n,
                    category=cat[n],
                    n_cd8=int(cd8.sum()),
                    n_truth=int(truth.sum()),
                    auroc=round(float(auc), 4),
                )
            )
            print(f"{setting} seed {seed} {method:7s} {n:22s} AUROC {auc:.3f}", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = [r for s in args.settings for seed in args.seeds for r in run_one(s, seed)]
    summary = {}
    for r in rows:
        summary.setdefault(f"{r['setting']}/{r['method']}/{r['signature']}", []).append(r["auroc"])
    summary = {
        k: dict(min=min(v), mean=round(float(np.mean(v)), 4), max=max(v), n=len(v))
        for k, v in summary.items()
    }
    for k, v in summary.items():
        print(f"{k:50s} min {v['min']:.3f} mean {v['mean']:.3f} max {v['max']:.3f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            dict(
                date=datetime.now(UTC).isoformat(timespec="seconds"),
                python=platform.python_version(),
                seconds=round(time.perf_counter() - t0, 1),
                settings=SETTINGS,
                summary=summary,
                rows=rows,
            ),
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
