"""Immunotherapy benefit (``tm.tl.immunotherapy_benefit``) against a known response.

Run by hand from the project root (results go to benchmarks/results/immunotherapy.json):

    .venv/bin/python benchmarks/immunotherapy.py --seeds 0 1 2 3 4 5 6 7 8 9

Simulated cohorts: ``tm.datasets.simulate_checkpoint_cohort`` (20 patients x 400 cells per seed) in
both settings, sorted T cells (``t_cells``) and whole tumours (``tumour``, with
``tm.gr.interface`` + ``tm.gr.immune_phenotype`` first so the spatial phenotype is a component).
Reported per setting, pooled over seeds: the AUROC of the benefit against the simulated response,
the AUROC of the simulator's true progenitor-exhausted share of CD8 T cells (an oracle the data
cannot beat by much: the response is drawn from it and the other mechanisms), and per component the
AUROC of its value and whether it moves in its published direction (AUROC > 0.5 for "+", < 0.5 for
"-"). Nothing here is fitted: the weights are the literature ones of
``tmeatlas.tl._immunotherapy.components()``.

Real data: the shared sets hold no treatment response; ``--real`` runs the benefit on the shared
Qian ovarian set (4 samples) whole and restricted to its T cells, and reports which components
could be measured there (a check that the tool runs on real cells, not of accuracy).
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

RESULTS = Path(__file__).resolve().parent / "results" / "immunotherapy.json"
REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "qian2020_ovarian.h5ad"


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(s)
    return float(roc_auc_score(y[ok], s[ok])) if ok.sum() > 3 and len(set(y[ok])) == 2 else float("nan")


def cohort(seed: int, setting: str, n_patients: int) -> pd.DataFrame:
    """One simulated cohort: per patient the benefit, each component's value and the truth."""
    import tmeatlas as tm

    a = tm.datasets.simulate_checkpoint_cohort(n_patients=n_patients, setting=setting, rng=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if setting == "tumour":
            tm.gr.interface(a, tumor_key="cell_type_major", tumor_value="Malignant", sample_key="patient")
            tm.gr.immune_phenotype(a, sample_key="patient", cell_type_key="cell_type")
        tm.tl.immunotherapy_benefit(a, sample_key="patient", n_boot=100, rng=seed)
    t = tm.get.immunotherapy_benefit(a).set_index("sample")
    c = tm.get.immunotherapy_benefit(a, components=True).pivot(
        index="sample", columns="component", values="value"
    )
    truth = a.uns["simulation"]["patients"].set_index("patient")
    out = pd.concat([t[["benefit", "ci_low", "ci_high", "call"]], c], axis=1)
    out["responder"] = truth.loc[out.index, "responder"].astype(bool).to_numpy()
    out["tpex_share_true"] = truth.loc[out.index, "tpex_share_true"].to_numpy(float)
    out["seed"] = seed
    return out


def report(df: pd.DataFrame) -> dict:
    from tmeatlas.tl._immunotherapy import components

    y = df["responder"].to_numpy(bool)
    per_seed = [
        auroc(g["responder"].to_numpy(bool), g["benefit"].to_numpy(float)) for _, g in df.groupby("seed")
    ]
    comps = {}
    for r in components().itertuples():
        if r.component in df and df[r.component].notna().sum() > 3:
            a = auroc(y, df[r.component].to_numpy(float))
            comps[r.component] = {"auroc": a, "direction": int(r.direction),
                                  "published_direction_holds": bool((a - 0.5) * r.direction > 0)}  # fmt: skip
    return {"n_patients": len(df), "benefit_auroc_pooled": auroc(y, df["benefit"].to_numpy(float)),
            "benefit_auroc_per_seed": per_seed, "benefit_auroc_mean_of_seeds": float(np.nanmean(per_seed)),
            "oracle_true_tpex_share_auroc": auroc(y, df["tpex_share_true"].to_numpy(float)),
            "components": comps}  # fmt: skip


def real() -> dict:
    import anndata as ad

    import tmeatlas as tm

    a = ad.read_h5ad(REAL)
    out = {}
    for name, sub in (("whole", a), ("t_cells_only", a[a.obs["cell_type"] == "T_cell"].copy())):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm.tl.immunotherapy_benefit(sub, sample_key="sample", n_boot=100)
        c = tm.get.immunotherapy_benefit(sub, components=True)
        out[name] = {"benefit": tm.get.immunotherapy_benefit(sub)[["sample", "setting", "benefit", "call"]].to_dict("records"),
                     "status": c.groupby("component")["status"].agg(lambda s: sorted(set(s))).to_dict()}  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--n-patients", type=int, default=20)
    p.add_argument("--real", action="store_true", help="also run on the shared Qian ovarian set")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    res = {}
    for setting in ("t_cells", "tumour"):
        t0 = time.perf_counter()
        df = pd.concat([cohort(s, setting, args.n_patients) for s in args.seeds])
        res[setting] = {**report(df), "seconds": round(time.perf_counter() - t0, 1)}
        print(setting, json.dumps(res[setting], indent=1), flush=True)
    out = {"benchmark": "immunotherapy benefit vs simulated checkpoint-blockade response",
           "command": f"python benchmarks/immunotherapy.py --seeds {' '.join(map(str, args.seeds))}"
           + (" --real" if args.real else ""),
           "results": res, "date": datetime.now(UTC).isoformat(timespec="seconds"), "platform": platform.platform()}  # fmt: skip
    if args.real and REAL.exists():
        out["real_qian2020_ovarian"] = real()
        print(json.dumps(out["real_qian2020_ovarian"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
