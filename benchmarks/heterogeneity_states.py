"""Malignant cell states of ``tm.tl.heterogeneity``: the old default programs vs the new ones (issue 24).

Run by hand from the project root (results go to benchmarks/results/heterogeneity_states.json):

    .venv/bin/python benchmarks/heterogeneity_states.py --seeds 0 1

Two sets of states are compared, each the highest shrunk z of its member signatures (the tool's
own mechanism, ``tl._heterogeneity._states``):

* ``old``: the library-only defaults before the Gavish et al. (Nature 618:598, 2023) meta-programs
  were shipped, hard-coded here (``OLD_PROGRAMS``);
* ``new``: ``tl._heterogeneity.DEFAULT_PROGRAMS`` (library programs + meta-programs).

(a) **Simulator** (``tm.datasets.simulate_tumor``: 6 patients, 2,000 cells each, ``--n-genes``
8000, one cohort per seed), with the true malignant cells (``malignant_key="true_malignant"``) and
clones (``clone_key="true_clone"``). The truth is ``uns["simulation"]["clone_programs"]`` (rows
``kind == "program"``: each clone ``high`` or ``low`` for proliferation, EMT, stemness, persister)
and ``obs["true_hypoxia"]`` per cell. Per planted program, the state z-score of each malignant cell
(proliferation -> ``cycling``, EMT -> ``EMT``, stemness -> ``stemness``, persister -> ``persister``)
is compared with whether its clone is high: AUROC within each patient that has at least 20 cells of
both kinds (reported: mean and range over those patients) and pooled over all malignant cells (the z
is within-sample, so the pooled value mixes patients). Hypoxia: the Spearman correlation of the
``hypoxia`` z with ``true_hypoxia`` and the AUROC for ``true_hypoxia`` above its patient's median.
Also the state composition and ``state_diversity`` of each cohort.

(b) **Real data** with malignant labels (``../shared/data/real``; skipped when absent): the Tirosh
2016 oligodendroglioma (``obs.malignant``, 4 patients with malignant cells), the CopyKAT breast
example (``copykat.pred == "aneuploid"``, one sample) and Qian 2020 ovarian (``cell_type ==
"Epithelial"``, 4 samples). There is no state truth there, so only the composition (share of
malignant cells per state, pooled over the samples) and ``state_diversity`` per sample are reported,
old vs new. Nothing here is tuned to these numbers.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _results import write_results

RESULTS = Path(__file__).resolve().parent / "results" / "heterogeneity_states.json"
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
N_PATIENTS = 6
#: the library-only default states before the Gavish 2023 meta-programs (the baseline)
OLD_PROGRAMS = {
    "cycling": ("TIROSH_G1S", "TIROSH_G2M"),
    "EMT": ("HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION",),
    "hypoxia": ("HALLMARK_HYPOXIA",),
    "interferon": ("HALLMARK_INTERFERON_GAMMA_RESPONSE",),
    "stemness": ("STEMNESS_CANCERSEA",),
    "persister": ("PERSISTER_CHANG2022",),
}
PLANTED = {"proliferation": "cycling", "EMT": "EMT", "stemness": "stemness", "persister": "persister"}
MIN_CLASS = 20


def _auroc(score: np.ndarray, label: np.ndarray) -> float:
    """Mann-Whitney AUROC of ``score`` for ``label`` (ties count half); NaN with one class."""
    from scipy.stats import rankdata

    pos, n = int(label.sum()), len(label)
    if pos == 0 or pos == n:
        return float("nan")
    r = rankdata(score)
    return float((r[label].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))


def _state_z(a, mal: np.ndarray, samples: np.ndarray, progs: dict, seed: int):
    """States of all cells and the malignant cells' state z (cells x states), as the tool computes them."""
    from tmeatlas._validation import get_matrix
    from tmeatlas.tl._heterogeneity import _programs, _states

    states, _, unscored, z = _states(a, get_matrix(a, None), mal, samples, _programs(progs), seed, None,
                                     return_z=True)  # fmt: skip
    return states, pd.DataFrame(z["z"], columns=z["states"]), unscored


def _composition(states: np.ndarray, mal: np.ndarray) -> dict[str, float]:
    vc = pd.Series(states[mal].astype(str)).value_counts(normalize=True)
    return {k: round(float(v), 4) for k, v in vc.sort_index().items()}


def _diversity(a, progs, seed: int, **kw) -> dict[str, float]:
    """``state_diversity`` per sample from the public tool (no intervals)."""
    import tmeatlas as tm

    b = a.copy()
    tm.tl.heterogeneity(b, programs=progs, n_boot=0, rng=seed, **kw)
    t = tm.get.heterogeneity(b)
    return {str(r.sample): round(float(r.state_diversity), 4) for r in t.itertuples()}


def _planted_rows(seed, which, zdf, mal_obs, cp) -> list[dict]:
    """AUROC of the matching state's z for each planted clone program (within patients and pooled)."""
    rows = []
    clone = mal_obs["true_clone"].astype(str).to_numpy()
    patient = mal_obs["sample"].astype(str).to_numpy()
    for program, state in PLANTED.items():
        hi = cp[cp["program"] == program].set_index("clone")["state"].eq("high")
        label = pd.Series(clone).map(hi).fillna(False).to_numpy(bool)
        z = zdf[state].to_numpy()
        per = {}
        for p in np.unique(patient):
            m = patient == p
            if min(label[m].sum(), (~label[m]).sum()) >= MIN_CLASS:
                per[p] = round(_auroc(z[m], label[m]), 4)
        rows.append({"seed": seed, "programs": which, "truth": program, "state": state,
                     "auroc_within_patient_mean": round(float(np.mean(list(per.values()))), 4) if per else None,
                     "auroc_within_patient": per, "n_patients_informative": len(per),
                     "auroc_pooled": round(_auroc(z, label), 4), "share_high_cells": round(float(label.mean()), 4)})  # fmt: skip
    return rows


def _hypoxia_row(seed, which, zdf, mal_obs) -> dict:
    from scipy.stats import spearmanr

    z = zdf["hypoxia"].to_numpy()
    truth = mal_obs["true_hypoxia"].to_numpy(np.float64)
    above = (
        truth > mal_obs.groupby("sample", observed=True)["true_hypoxia"].transform("median").to_numpy()
    ).astype(bool)
    return {"seed": seed, "programs": which, "truth": "true_hypoxia", "state": "hypoxia",
            "spearman": round(float(spearmanr(z, truth).statistic), 4),
            "auroc_above_patient_median": round(_auroc(z, above), 4)}  # fmt: skip


def simulated(seed: int, n_genes: int, cells: int) -> tuple[list[dict], dict]:
    import tmeatlas as tm
    from tmeatlas.tl._heterogeneity import DEFAULT_PROGRAMS

    a = tm.datasets.simulate_tumor(
        n_cells=cells * N_PATIENTS, n_patients=N_PATIENTS, n_genes=n_genes, rng=seed
    )
    cp = pd.DataFrame(a.uns["simulation"]["clone_programs"])
    cp = cp[cp["kind"] == "program"]
    mal = a.obs["true_malignant"].to_numpy(bool)
    samples = a.obs["sample"].astype(str).to_numpy()
    rows, summary = [], {}
    for which, progs in (("old", OLD_PROGRAMS), ("new", DEFAULT_PROGRAMS)):
        t0 = time.perf_counter()
        states, zdf, unscored = _state_z(a, mal, samples, progs, seed)
        secs = round(time.perf_counter() - t0, 1)
        rows += _planted_rows(seed, which, zdf, a.obs.loc[mal], cp)
        rows.append(_hypoxia_row(seed, which, zdf, a.obs.loc[mal]))
        div = _diversity(
            a, progs, seed, sample_key="sample", clone_key="true_clone", malignant_key="true_malignant"
        )
        summary[which] = {"composition": _composition(states, mal), "state_diversity": div,
                          "signatures_not_scored": unscored, "state_seconds": secs}  # fmt: skip
        for r in rows[-5:]:
            print(r, flush=True)
    summary["n_malignant"] = int(mal.sum())
    return rows, summary


def _real_sets():
    """(name, AnnData, malignant mask, sample key) of the shared real sets with malignant labels."""
    import anndata as ad

    specs = [
        ("tirosh2016_oligodendroglioma", "malignant", "malignant", "patient"),
        ("copykat_breast_example", "copykat.pred", "aneuploid", None),
        ("qian2020_ovarian", "cell_type", "Epithelial", "sample"),
    ]
    for name, col, val, skey in specs:
        path = REAL / f"{name}.h5ad"
        if path.exists():
            a = ad.read_h5ad(path)
            a.obs["is_malignant"] = a.obs[col].astype(str).eq(val).to_numpy()
            a.obs["no_clone"] = "none"  # no clone labels: the clone indices stay NaN
            yield name, a, skey


def real(seed: int) -> dict:
    from tmeatlas.tl._heterogeneity import DEFAULT_PROGRAMS

    out = {}
    for name, a, skey in _real_sets():
        mal = a.obs["is_malignant"].to_numpy(bool)
        samples = a.obs[skey].astype(str).to_numpy() if skey else np.full(a.n_obs, "all", object)
        res = {"n_malignant": int(mal.sum()), "sample_key": skey}
        for which, progs in (("old", OLD_PROGRAMS), ("new", DEFAULT_PROGRAMS)):
            states, _, unscored = _state_z(a, mal, samples, progs, seed)
            div = _diversity(
                a, progs, seed, sample_key=skey, clone_key="no_clone", malignant_key="is_malignant"
            )
            res[which] = {"composition": _composition(states, mal), "state_diversity": div,
                          "signatures_not_scored": unscored}  # fmt: skip
        out[name] = res
        print(name, json.dumps(res), flush=True)
    return out


def _summary(rows: list[dict]) -> dict:
    df = pd.DataFrame(rows)
    out = {}
    for truth, g in df.groupby("truth", sort=False):
        cols = ["spearman", "auroc_above_patient_median"] if truth == "true_hypoxia" else [
            "auroc_within_patient_mean", "auroc_pooled"]  # fmt: skip
        out[truth] = {w: {c: round(float(pd.to_numeric(h[c]).mean()), 4) for c in cols}
                      for w, h in g.groupby("programs", sort=False)}  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--cells-per-patient", type=int, default=2000)
    p.add_argument("--n-genes", type=int, default=8000)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    real_out = real(args.seeds[0])
    rows, cohorts = [], {}
    for s in args.seeds:
        r, summ = simulated(s, args.n_genes, args.cells_per_patient)
        rows += r
        cohorts[f"seed{s}"] = summ
    summary = _summary(rows)
    settings = {"patients": N_PATIENTS, "cells_per_patient": args.cells_per_patient, "n_genes": args.n_genes,
                "seeds": args.seeds, "malignant_key": "true_malignant", "clone_key": "true_clone",
                "min_cells_per_class": MIN_CLASS, "old_programs": {k: list(v) for k, v in OLD_PROGRAMS.items()}}  # fmt: skip
    write_results(RESULTS, "heterogeneity states: old (library-only) vs new (library + Gavish 2023 meta-programs) defaults",
                  settings, {"summary_simulated": summary, "simulated_cohorts": cohorts, "simulated_runs": rows,
                             "real": real_out}, show="summary_simulated")  # fmt: skip


if __name__ == "__main__":
    main()
