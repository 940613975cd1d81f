"""Tumour heterogeneity: ``tm.tl.heterogeneity`` against the simulator's clone truth.

Run by hand from the project root (results go to benchmarks/results/heterogeneity.json):

    .venv/bin/python benchmarks/heterogeneity.py --seeds 0 1

For every seed and clone skew (``"even"``, ``"skewed"``): a cohort of 12 patients
(``tm.datasets.simulate_tumor(n_clones=..., clone_skew=...)``, 1-6 clones, each number twice, in
an order drawn from the seed; ``--cells-per-patient`` cells, ``--tumour-fraction`` of them
malignant), then ``infer_cnv`` -> ``call_malignant`` -> ``cnv_clones`` (defaults, ``sample_key``)
-> ``heterogeneity``. Per patient, against the true clone Shannon diversity of its malignant cells
(``uns["simulation"]["patients"]["clone_shannon"]``):

* the Spearman correlation of ``genetic_diversity`` with the truth over all patients (issue 24's
  target: >= 0.8), and per cohort;
* the coverage of the truth by the interval (target >= 90 %). The interval covers the sampling of
  cells only, not errors of the malignant calls or of the clone calling, so it is reported twice:
  with the inferred clones, and with the true clone labels (``clone_key="true_clone"``,
  ``malignant_key="true_malignant"``), where only cell sampling remains;
* spatial mixing, segregated vs intermixed. The simulator lays clones out in segregated bands; it
  has no intermixed layout, so the intermixed one is **constructed here by hand**: the
  coordinates of each patient's malignant cells are permuted among themselves (the expression,
  hence the inferred clones, unchanged) and ``heterogeneity`` is rerun. Reported: the share of
  patients with at least two called clones whose ``clone_mixing`` is lower in the segregated
  layout, and the medians.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "heterogeneity.json"
N_PATIENTS = 12


def _covered(df: pd.DataFrame, truth: pd.Series) -> np.ndarray:
    t = truth.reindex(df["sample"]).to_numpy()
    return (df["genetic_diversity_low"].to_numpy() <= t + 1e-12) & (
        t - 1e-12 <= df["genetic_diversity_high"].to_numpy()
    )


def run(seed: int, skew: str, cells_per_patient: int, n_genes: int, tumour_fraction: float) -> list[dict]:
    import tmeatlas as tm

    n_clones = [int(v) for v in np.random.default_rng(seed).permutation(np.tile(np.arange(1, 7), 2))]
    a = tm.datasets.simulate_tumor(
        n_cells=cells_per_patient * N_PATIENTS, n_patients=N_PATIENTS, n_genes=n_genes, rng=seed,
        n_clones=n_clones, clone_skew=skew, tumour_fraction=tumour_fraction,
    )  # fmt: skip
    pat = pd.DataFrame(a.uns["simulation"]["patients"]).set_index("patient")
    truth = pat["clone_shannon"].astype(float)
    t0 = time.perf_counter()
    tm.tl.infer_cnv(a, sample_key="sample")
    tm.tl.call_malignant(a, sample_key="sample")
    tm.tl.cnv_clones(a, sample_key="sample")
    t1 = time.perf_counter()
    tm.tl.heterogeneity(a, sample_key="sample", rng=seed)
    t2 = time.perf_counter()
    inferred = tm.get.heterogeneity(a)
    tm.tl.heterogeneity(a, sample_key="sample", clone_key="true_clone", malignant_key="true_malignant",
                        rng=seed, key_added="het_true")  # fmt: skip
    oracle = tm.get.heterogeneity(a, key="het_true")
    # intermixed layout by hand: malignant cells' coordinates permuted within each patient
    b = a.copy()
    xy = np.asarray(b.obsm["spatial"]).copy()
    gen = np.random.default_rng([seed, 1])
    mal = b.obs["malignant"].astype(str).to_numpy() == "malignant"
    for s in b.obs["sample"].astype(str).unique():
        idx = np.flatnonzero(mal & (b.obs["sample"].astype(str).to_numpy() == s))
        xy[idx] = xy[gen.permutation(idx)]
    b.obsm["spatial"] = xy
    tm.tl.heterogeneity(b, sample_key="sample", rng=seed)
    mixed = tm.get.heterogeneity(b).set_index("sample")
    cov_inf, cov_true = _covered(inferred, truth), _covered(oracle, truth)
    o = oracle.set_index("sample")
    rows = []
    for i, r in enumerate(inferred.itertuples()):
        s = r.sample
        rows.append({
            "seed": seed, "skew": skew, "patient": s, "true_n_clones": int(pat.loc[s, "n_clones"]),
            "true_shannon": round(float(truth[s]), 4), "n_malignant": int(r.n_malignant),
            "n_clones_called": int(r.n_clones), "genetic_diversity": round(float(r.genetic_diversity), 4),
            "low": round(float(r.genetic_diversity_low), 4), "high": round(float(r.genetic_diversity_high), 4),
            "covered": bool(cov_inf[i]),
            "true_labels_diversity": round(float(o.loc[s, "genetic_diversity"]), 4),
            "true_labels_low": round(float(o.loc[s, "genetic_diversity_low"]), 4),
            "true_labels_high": round(float(o.loc[s, "genetic_diversity_high"]), 4),
            "true_labels_covered": bool(cov_true[i]),
            "mixing_segregated": round(float(r.clone_mixing), 4),
            "mixing_intermixed": round(float(mixed.loc[s, "clone_mixing"]), 4),
            "true_labels_mixing_segregated": round(float(o.loc[s, "clone_mixing"]), 4),
            "state_diversity": round(float(r.state_diversity), 4),
            "state_between_clones": round(float(r.state_between_clones), 4),
            "clonal_events": None if pd.isna(r.clonal_events) else int(r.clonal_events),
            "subclonal_events": None if pd.isna(r.subclonal_events) else int(r.subclonal_events),
            "cnv_clones_seconds": round(t1 - t0, 1), "heterogeneity_seconds": round(t2 - t1, 2),
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def _summary(rows: list[dict]) -> dict:
    from scipy.stats import spearmanr

    df = pd.DataFrame(rows)
    out = {
        "patients": len(df),
        "spearman_genetic_diversity_vs_true_shannon": round(
            float(spearmanr(df["genetic_diversity"], df["true_shannon"]).statistic), 3
        ),
        "spearman_true_labels": round(
            float(spearmanr(df["true_labels_diversity"], df["true_shannon"]).statistic), 3
        ),
        "coverage_inferred_clones": round(float(df["covered"].mean()), 3),
        "coverage_true_clone_labels": round(float(df["true_labels_covered"].mean()), 3),
        "median_abs_error_inferred": round(
            float((df["genetic_diversity"] - df["true_shannon"]).abs().median()), 3
        ),
        "clone_number_exact": round(float((df["n_clones_called"] == df["true_n_clones"]).mean()), 3),
    }
    out["per_cohort_spearman"] = {
        f"seed{s}_{k}": round(float(spearmanr(g["genetic_diversity"], g["true_shannon"]).statistic), 3)
        for (s, k), g in df.groupby(["seed", "skew"])
    }
    sp = df[(df["n_clones_called"] >= 2) & df["mixing_segregated"].notna() & df["mixing_intermixed"].notna()]
    out["spatial"] = {
        "patients_with_2_or_more_called_clones": len(sp),
        "segregated_below_intermixed": round(float((sp["mixing_segregated"] < sp["mixing_intermixed"]).mean()), 3)
        if len(sp) else None,
        "median_mixing_segregated": round(float(sp["mixing_segregated"].median()), 3) if len(sp) else None,
        "median_mixing_intermixed": round(float(sp["mixing_intermixed"].median()), 3) if len(sp) else None,
        "median_mixing_segregated_true_labels": round(float(df["true_labels_mixing_segregated"].median()), 3),
    }  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--skews", nargs="+", default=["even", "skewed"])
    p.add_argument("--cells-per-patient", type=int, default=2000)
    p.add_argument("--n-genes", type=int, default=8000)
    p.add_argument("--tumour-fraction", type=float, default=0.3)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    rows = [r for s in args.seeds for k in args.skews
            for r in run(s, k, args.cells_per_patient, args.n_genes, args.tumour_fraction)]  # fmt: skip
    summary = _summary(rows)
    out = {
        "benchmark": "heterogeneity: genetic_diversity vs the simulated clone Shannon diversity; spatial mixing",
        "settings": {"patients_per_cohort": N_PATIENTS, "cells_per_patient": args.cells_per_patient,
                     "n_genes": args.n_genes, "tumour_fraction": args.tumour_fraction, "seeds": args.seeds,
                     "skews": args.skews, "n_boot": 200,
                     "intermixed_layout": "constructed by hand: malignant coordinates permuted within each patient"},
        "machine": {"date": datetime.now(UTC).isoformat(timespec="seconds"), "platform": platform.platform()},
        "summary": summary,
        "runs": rows,
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
