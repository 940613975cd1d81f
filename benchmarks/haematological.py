"""Haematological tumours: malignant immune cells in the automatic CNV reference (issue 22).

Run by hand from the project root (results go to benchmarks/results/haematological.json):

    .venv/bin/python benchmarks/haematological.py

The simulator has no haematological tumour, so three are **constructed by hand**
(``tmeatlas.datasets._constructs.haematological_sample``): in a simulated cohort
(``simulate_tumor(n_cells=9000, n_patients=3, n_genes=8000)``), sample P3 loses its carcinoma
cells and gains malignant cells resampled from one immune type (counts thinned to 85 %, with
the kind's typical arm-level changes: B-cell lymphoma from B cells, +3, +18, 6q-, 17p-; myeloma
from plasma cells, +3, +9, +15, +19, 1q+, -13; AML from classical monocytes, +8, 5q-, 7q-,
17p-) until they make up ``fraction`` of it. Then ``infer_cnv`` -> ``call_malignant`` with
defaults (``sample_key``). Reported per kind, seed and fraction: whether P3's lineage was called
haematological and on which arms, false haematological calls in the other samples, how the
tumour cells and P3's normal cells were called (malignant / non-malignant / uncertain), the
tumour cells left in the reference, and the F1 of the two carcinoma samples.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _results import write_results

RESULTS = Path(__file__).resolve().parent / "results" / "haematological.json"


def run(seed: int, fraction: float, n_cells: int, kind: str, exclude_genes: str | None = None) -> dict:
    from sklearn.metrics import f1_score

    import tmeatlas as tm
    from tmeatlas.datasets._constructs import haematological_sample

    sim = tm.datasets.simulate_tumor(n_cells=n_cells, n_patients=3, n_genes=8000, rng=seed)
    a = haematological_sample(sim, "P3", fraction, rng=seed, kind=kind)
    t0 = time.perf_counter()
    tm.tl.infer_cnv(a, sample_key="sample", exclude_genes=exclude_genes)
    tm.tl.call_malignant(a, sample_key="sample")
    secs = time.perf_counter() - t0
    haem = a.uns["cnv"]["reference"]["haematological"]
    tumour = a.obs_names.str.startswith(kind)
    p3 = (a.obs["sample"] == "P3").to_numpy()
    call = a.obs["malignant"].astype(str)

    def share(m):
        return {
            k: round(float((call[m] == k).mean()), 3) for k in ("malignant", "non-malignant", "uncertain")
        }

    f1 = {}
    for s in ("P1", "P2"):
        m = (a.obs["sample"] == s).to_numpy()
        f1[s] = round(float(f1_score(a.obs["true_malignant"][m], call[m] == "malignant")), 4)
    hit = haem[haem["sample"] == "P3"]
    return {
        "kind": kind, "seed": seed, "fraction": fraction, "n_cells": int(a.n_obs), "n_tumour": int(tumour.sum()),
        "detected": bool(len(hit)), "lineage": ";".join(hit["lineage"]), "arms": ";".join(hit["cnv_arms"]),
        "false_haematological": int((haem["sample"] != "P3").sum()),
        "tumour_calls": share(tumour), "p3_normal_calls": share(p3 & ~tumour & ~a.obs["true_malignant"].to_numpy()),
        "tumour_in_reference": int((a.obs["cnv_reference"].astype(bool) & tumour).sum()),
        "carcinoma_f1": f1, "seconds": round(secs, 1),
    }  # fmt: skip


def _summary(df: pd.DataFrame) -> dict:
    return {
        "runs": len(df),
        "detected": int(df["detected"].sum()),
        "false_haematological_calls": int(df["false_haematological"].sum()),
        "median_tumour_called_malignant": float(np.median([r["malignant"] for r in df["tumour_calls"]])),
        "max_tumour_called_non_malignant": float(max(r["non-malignant"] for r in df["tumour_calls"])),
        "max_p3_normal_called_malignant": float(max(r["malignant"] for r in df["p3_normal_calls"])),
        "min_carcinoma_f1": float(min(min(v.values()) for v in df["carcinoma_f1"])),
    }


def main() -> None:
    from tmeatlas.datasets._constructs import HAEMATOLOGICAL

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kinds", nargs="+", default=list(HAEMATOLOGICAL), choices=list(HAEMATOLOGICAL))
    p.add_argument("--seeds", type=int, nargs="+", default=[3, 4])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    p.add_argument("--n-cells", type=int, default=9000)
    p.add_argument("--exclude-genes", default=None, help="infer_cnv's exclude_genes (e.g. vdj)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for kind in args.kinds:
        for seed in args.seeds:
            for fr in args.fractions:
                rows.append(run(seed, fr, args.n_cells, kind, args.exclude_genes))
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    summary = {kind: _summary(g) for kind, g in df.groupby("kind", sort=False)}
    settings = {"kinds": args.kinds, "seeds": args.seeds, "fractions": args.fractions, "n_cells": args.n_cells,
                "n_genes": 8000, "exclude_genes": args.exclude_genes, "construct": "tmeatlas.datasets._constructs.haematological_sample",
                "changes": {k: {"source": v["source"], "gains": v["gains"] + tuple(c + a for c, a in v["arm_gains"]),
                                "losses": tuple(c + a for c, a in v["losses"])} for k, v in HAEMATOLOGICAL.items()}}  # fmt: skip
    write_results(Path(args.out), "haematological: constructed lymphoma, myeloma and AML samples in a simulated carcinoma cohort",
                  settings, {"summary": summary, "runs": rows})  # fmt: skip


if __name__ == "__main__":
    main()
