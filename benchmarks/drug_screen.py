"""Drug screen: ``tm.tl.drug_screen`` speed at 100,000 cells x 5,000 compounds, and null calibration.

Run by hand from the project root (results go to benchmarks/results/drug_screen.json):

    .venv/bin/python benchmarks/drug_screen.py --cells 100000 --drugs 5000

Data: ``tm.datasets.simulate_tumor(n_cells, n_patients=8, n_genes=20000, spatial=False, rng=1)``
(counts, ~2,900 genes detected per cell: realistic 10x sparsity); malignant cells are the true
ones and the subpopulations the true clones within each patient (``groupby="true_clone"``).
Drugs (seed 0): a random drug-target table of ``--drugs`` compounds with 1-20 targets each, and
``--drugs`` random sensitivity signatures with 25-150 up and 25-150 down genes each (random genes
of the data); both calls use the defaults (``n_perms=1000``) on all cores (``n_jobs=os.cpu_count()``); the
target table is also run on one thread (``targets_1thread``).

Timing: each call is timed whole (the pass over the cells, the null, the table with reasons,
``store``), after a small warm-up call that compiles the numba kernel. The anchor, timed in the
same run on the same matrix, is one pass of the matrix sum (``X.sum(axis=0)``): ``x_anchor`` is
the call's time in units of it, comparable across machines. Peak memory: ``ru_maxrss`` of the
process (set by the simulator) and the peak of each call alone (``/proc/self/clear_refs``).

Calibration of the random-gene test: random drugs are null for it by construction (random genes
against random genes of the same expression), so its p-values (``pval_random_genes``) should be
uniform: the fractions below 0.05 and 0.01 are reported per kind (expected 0.05 and 0.01). The
calls rest on the self-contained test (targets vs the normal compartment, signatures vs the other
malignant cells), for which random drugs are not null (a random gene can differ between a tumour
and its immune cells); ``null_labels`` reruns both screens with malignant status and clone
permuted over the cells (seed 2), where every call is false. ``real_ovarian_controls``: on the shared
ovarian carcinoma (``qian2020_ovarian.h5ad``; skipped when absent), the calls of targets of
ovarian-carcinoma antibodies and ADCs (``OVARIAN_TARGETS``, expected ``responds``) and of
haematopoietic or endothelial targets of approved drugs (``LINEAGE_TARGETS``, expected not
``responds``), one row per sample, among 2,000 random single-gene drugs. A check, not an accuracy claim
(one seed): five single-target drugs are planted among the random ones (``PLANTED``: the
simulator's target-defined therapies and their targets); ``planted`` counts their calls per clone
against the simulator's response truth (``truth -> call``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "drug_screen.json"
#: drugs planted in the random target table: the simulator's target-defined therapies (its example agents)
PLANTED = {
    "anti-HER2": ("trastuzumab", "ERBB2"),
    "TROP2-ADC": ("sacituzumab_govitecan", "TACSTD2"),
    "Nectin-4-ADC": ("enfortumab_vedotin", "NECTIN4"),
    "EGFR inhibitor": ("cetuximab", "EGFR"),
    "endocrine": ("tamoxifen", "ESR1"),
}


def _status(key: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 2**20, 3)
    except OSError:
        pass
    return None


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _drugs(genes: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    rows = [(f"T{d:05d}", g) for d in range(n) for g in rng.choice(genes, rng.integers(1, 21), replace=False)]
    rows += [(drug, gene) for drug, gene in PLANTED.values()]
    table = pd.DataFrame(rows, columns=["drug", "target"])
    sigs = {}
    for d in range(n):
        g = rng.choice(genes, rng.integers(25, 151) + rng.integers(25, 151), replace=False)
        k = rng.integers(25, len(g) - 24)
        sigs[f"S{d:05d}"] = {"up": list(g[:k]), "down": list(g[k:])}
    return table, sigs


def _planted(adata, label: str) -> dict:
    """Calls of the planted drugs per clone against the simulator's response truth (the clone's
    target is high: sensitive)."""
    truth = adata.uns["simulation"]["clone_therapy"]
    t = adata.uns[label]["table"]
    from scipy.stats import mannwhitneyu

    out, pairs = {}, []
    for therapy, (drug, _) in PLANTED.items():
        tr = truth[truth["therapy"] == therapy].set_index("clone")["response"]
        r = t[t["therapy"] == drug].set_index("group")
        both = pd.DataFrame({"truth": tr, "call": r["call"], "rank": r["rank"], "score": r["score"],
                             "effect": r["effect"], "fdr": r["padj"], "fdr_random": r["padj_random_genes"]}).dropna()  # fmt: skip
        out[drug] = {
            f"{a} -> {b}": int(n) for (a, b), n in both[["truth", "call"]].value_counts().sort_index().items()
        }
        pairs.append(both)
    both = pd.concat(pairs)
    sens, res = both[both["truth"] == "sensitive"], both[both["truth"] == "resistant"]
    out["summary"] = {
        "pairs_sensitive": len(sens),
        "pairs_resistant": len(res),
        "rank_sensitive_median": float(sens["rank"].median()),
        "rank_sensitive_max": float(sens["rank"].max()),
        "rank_resistant_median": float(res["rank"].median()),
        "auroc_score": round(
            float(mannwhitneyu(sens["score"], res["score"]).statistic / (len(sens) * len(res))), 4
        ),
        "effect_sensitive_median": round(float(sens["effect"].median()), 3),
        "effect_resistant_median": round(float(res["effect"].median()), 3),
        "sensitive_called_responds": round(float(sens["call"].eq("responds").mean()), 3),
        "resistant_called_responds": round(float(res["call"].eq("responds").mean()), 3),
        "resistant_called_survives": round(float(res["call"].eq("survives").mean()), 3),
        "sensitive_called_survives": round(float(sens["call"].eq("survives").mean()), 3),
        "fdr_random_genes_sensitive_median": round(float(sens["fdr_random"].median()), 4),
    }
    return out


def _run(tm, adata, drugs, label: str, n_jobs: int, planted: bool = False) -> dict:
    _reset_peak()
    before = _status("VmRSS")
    t0 = time.perf_counter()
    tm.tl.drug_screen(adata, drugs=drugs, groupby="true_clone", sample_key="sample", malignant_key="true_malignant",
                      malignant_value="True", n_jobs=n_jobs, key_added=label)  # fmt: skip
    sec = time.perf_counter() - t0
    t = adata.uns[label]["table"]
    p = pd.to_numeric(t["pval_random_genes"], errors="coerce").dropna()
    res = {
        "seconds": round(sec, 2),
        "n_jobs": n_jobs,
        "rows": len(t),
        "drugs": int(t["therapy"].nunique()),
        "subpopulations": int(len(t) // max(1, t["therapy"].nunique())),
        "calls": {str(k): int(v) for k, v in t["call"].value_counts().items()},
        "random_genes_p_below_0.05": round(float((p < 0.05).mean()), 4),
        "random_genes_p_below_0.01": round(float((p < 0.01).mean()), 4),
        "peak_rss_during_call_gib": _status("VmHWM"),
        "rss_before_call_gib": before,
    }
    if planted:
        res["planted"] = _planted(adata, label)
    return res


#: real-data controls on the shared ovarian carcinoma (Qian et al. 2020; the authors' epithelial cancer cells as
#: malignant, one subpopulation per sample): targets of antibodies and ADCs developed for ovarian
#: carcinoma (expected: a window against the tumour's immune and stromal cells) ...
OVARIAN_TARGETS = {
    "mirvetuximab_soravtansine": "FOLR1",  # Moore et al., NEJM 2023 (MIRASOL)
    "catumaxomab": "EPCAM",  # Heiss et al., Int J Cancer 2010
    "anetumab_ravtansine": "MSLN",  # Hassan et al., J Clin Oncol 2020
    "HKT288": "CDH6",  # Bialucha et al., Cancer Discov 2017
    "sofituzumab_vedotin": "MUC16",  # Liu et al., Ann Oncol 2016
    "lifastuzumab_vedotin": "SLC34A2",  # NaPi2b; Banerjee et al., Ann Oncol 2018
    "sacituzumab_govitecan": "TACSTD2",  # Trop-2, epithelial; Bardia et al., NEJM 2021
}
#: ... and targets of approved drugs whose targets are haematopoietic or endothelial (expected: no window)
LINEAGE_TARGETS = {
    "gemtuzumab_ozogamicin": "CD33", "pexidartinib": "CSF1R", "alemtuzumab": "CD52", "daratumumab": "CD38",
    "ramucirumab": "KDR", "inotuzumab_ozogamicin": "CD22", "elotuzumab": "SLAMF7", "teclistamab": "TNFRSF17",
    "muromonab_CD3": "CD3E",
}  # fmt: skip
QIAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "qian2020_ovarian.h5ad"


def _real_controls(tm) -> dict | None:
    """Calls of the ovarian and the lineage controls on Qian, among 2,000 random single-gene drugs (seed 0)."""
    if not QIAN.exists():
        return None
    import anndata as ad

    a = ad.read_h5ad(QIAN)
    a.obs["authors_malignant"] = np.where(a.obs["cell_type"].astype(str) == "Epithelial", "yes", "no")
    rng = np.random.default_rng(0)
    rows = [*OVARIAN_TARGETS.items(), *LINEAGE_TARGETS.items()]
    rows += [(f"R{i}", g) for i, g in enumerate(rng.choice(np.asarray(a.var_names), 2000, replace=False))]
    tm.tl.drug_screen(a, drugs=pd.DataFrame(rows, columns=["drug", "target"]), groupby="sample", sample_key="sample",
                      malignant_key="authors_malignant", malignant_value="yes")  # fmt: skip
    t = tm.get.drug_screen(a)
    out = {}
    for name, drugs in (
        ("ovarian_targets", OVARIAN_TARGETS),
        ("lineage_targets", LINEAGE_TARGETS),
        ("random", None),
    ):
        sub = t[t["therapy"].str.match(r"R\d+$")] if drugs is None else t[t["therapy"].isin(drugs)]
        out[name] = {
            "rows": len(sub),
            "calls": {str(k): int(v) for k, v in sub["call"].value_counts().items()},
            "responds_share": round(float(sub["call"].eq("responds").mean()), 3),
        }
        if drugs is not None:
            out[name]["per_drug"] = {
                d: "/".join(g["call"].str[0]) for d, g in sub.groupby("therapy", sort=False)
            }
    return out


def _null_labels(tm, adata, table, sigs, n_jobs: int) -> dict:
    """Every call is false here: malignant status and clone are random labels (same proportions),
    so each 'subpopulation' and the normal compartment are random draws of the same cells."""
    rng = np.random.default_rng(2)
    perm = rng.permutation(adata.n_obs)
    null = adata.copy()
    null.obs["true_malignant"] = adata.obs["true_malignant"].to_numpy()[perm]
    null.obs["true_clone"] = adata.obs["true_clone"].astype(object).to_numpy()[perm]
    out = {}
    for kind, drugs in (("targets", table), ("signatures", sigs)):
        tm.tl.drug_screen(null, drugs=drugs, groupby="true_clone", sample_key="sample", malignant_key="true_malignant",
                          malignant_value="True", n_jobs=n_jobs, key_added="null")  # fmt: skip
        t = null.uns["null"]["table"]
        p = pd.to_numeric(t["pval"], errors="coerce").dropna()
        out[kind] = {
            "rows": len(t),
            "calls": {str(k): int(v) for k, v in t["call"].value_counts().items()},
            "p_below_0.05": round(float((p < 0.05).mean()), 4),
            "abs_effect_max": round(float(pd.to_numeric(t["effect"]).abs().max()), 3),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--drugs", type=int, default=5_000)
    ap.add_argument("--genes", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import tmeatlas as tm

    t0 = time.perf_counter()
    adata = tm.datasets.simulate_tumor(
        n_cells=args.cells, n_patients=8, n_genes=args.genes, spatial=False, rng=1
    )
    adata.obs["true_malignant"] = adata.obs["true_malignant"].astype(str)
    sim_s = time.perf_counter() - t0
    table, sigs = _drugs(np.asarray(adata.var_names), args.drugs, 0)
    small = adata[:2000].copy()
    tm.tl.drug_screen(small, drugs=table.head(50), groupby="true_clone", sample_key="sample",
                      malignant_key="true_malignant", malignant_value="True", n_perms=10)  # fmt: skip
    X = adata.X
    anchors = []
    for _ in range(3):
        t1 = time.perf_counter()
        X.sum(axis=0)
        anchors.append(time.perf_counter() - t1)
    anchor = min(anchors)
    cores = os.cpu_count() or 1
    runs = {
        "targets": _run(tm, adata, table, "screen_targets", cores, planted=True),
        "signatures": _run(tm, adata, sigs, "screen_sigs", cores),
        "targets_1thread": _run(tm, adata, table, "screen_targets_1", 1),
    }
    for r in runs.values():
        r["x_anchor"] = round(r["seconds"] / anchor, 1)
    null_labels = _null_labels(tm, adata, table, sigs, cores)
    real = _real_controls(tm)
    out = {
        "benchmark": "tm.tl.drug_screen: drug-target table and sensitivity signatures, one call each",
        "machine": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "data": {
            "n_cells": adata.n_obs,
            "n_genes": adata.n_vars,
            "nnz_per_cell": round(X.nnz / adata.n_obs, 1),
            "n_malignant": int((adata.obs["true_malignant"] == "True").sum()),
            "simulate_seconds": round(sim_s, 1),
        },
        "drugs": {
            "targets": {"n": args.drugs, "targets_per_drug": "1-20", "memberships": len(table)},
            "signatures": {
                "n": args.drugs,
                "genes_per_side": "25-150",
                "memberships": int(sum(len(s["up"]) + len(s["down"]) for s in sigs.values())),
            },
        },  # fmt: skip
        "anchor": {"what": "X.sum(axis=0), best of 3", "seconds": round(anchor, 3)},
        "runs": runs,
        "null_labels": null_labels,
        "real_ovarian_controls": real,
        "target_seconds": 60,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
