"""Therapy survival: ``tm.tl.therapy_survival`` per-clone flags against the simulated therapy truth.

Run by hand from the project root (results go to benchmarks/results/therapy.json):

    .venv/bin/python benchmarks/therapy.py --seeds 0 1 2 3 4

For every seed: ``tm.datasets.simulate_tumor(n_cells=8000, n_patients=6)`` (immune phenotypes
inflamed / excluded / desert cycled over the patients). Malignant cells are the true ones
(``true_malignant``) and the subpopulations the true clones (``groupby="true_clone"``), so the
benchmark measures the survival model, not malignant calling or clone inference. Two settings:
``spatial`` runs ``tm.gr.interface`` + ``tm.gr.immune_phenotype`` first (so the benefit score
sees the spatial immune phenotype), ``expression`` does not. Each simulated therapy is mapped to
the knowledge-base entry of the simulator's own example agent (``MAP`` below). A clone-therapy
pair agrees when its call (``survives`` vs ``responds``) matches ``response == "resistant"`` (the
simulator's truth, unchanged); "undetermined" rows are not counted there and the share of decided
rows is reported next to it, with the old flag agreement (undetermined read as not surviving).
The weights of the model (``tmeatlas.tl._survival.WEIGHTS``) are not fitted here; one was changed after
reading this benchmark, for a reason stated in the model, and is reported as such: ``target_present``
went from 1 to 4 (symmetric with ``target_absent``, so that an uncertain target, availability 0.5, is
no evidence either way, as the zero intercept requires).

History (spatial setting, ``program_reference="sample"``, seeds 0-4, 792 pairs): 0.826 with
neighbourhoods per sample, linear target availability and raw z-scores; 0.847 with neighbours
within each subpopulation and the mixture posterior as availability; 0.875 adding the reliability
shrinkage of program z-scores; 0.890 with ``target_present`` 4; 0.894 with the modifiers gated by
target availability; 0.903 with T-cell abundance not counted as benefit in excluded/desert samples.
Seeds 5-9 were not used while designing these changes; on them the same setting went from 0.800
to 0.911 (expression setting 0.789 to 0.897; 864 pairs each).

Issue 23 (an evidence model without systematic bias) changed what is measured: the resistance term
is centred on its reference (it was max(0, z), positive almost always), a target is absent only
where the depth can show it (Poisson likelihood ratio against the ambient level), and a row needs
an interval that excludes 0.5 and odds of 4:1 to be called; otherwise it is "undetermined". The
simulator's chemotherapy truth calls most clones resistant, which a model relative to each tumour
cannot decide, so those rows are now mostly undetermined. Results: benchmarks/results/therapy.json.

Where the knowledge base and the simulator's rules differ the disagreement is expected and
reported, not fixed: e.g. the KB lists stemness among taxane resistance programs (the simulator's
taxane rule does not), and the KB does not list the persister state for CDK4/6 inhibitors (the
simulator's rule does).
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

RESULTS = Path(__file__).resolve().parent / "results" / "therapy.json"

#: simulated therapy -> knowledge-base name (the simulator's example agent)
MAP = {
    "anti-HER2": "trastuzumab",
    "taxane": "paclitaxel",
    "platinum": "carboplatin",
    "anti-PD-1": "pembrolizumab",
    "TROP2-ADC": "sacituzumab_govitecan",
    "Nectin-4-ADC": "enfortumab_vedotin",
    "EGFR inhibitor": "cetuximab",
    "endocrine": "tamoxifen",
    "CDK4/6 inhibitor": "palbociclib",
}


def simulate(seed: int, n_cells: int, n_patients: int, spatial: bool):
    import tmeatlas as tm

    a = tm.datasets.simulate_tumor(n_cells=n_cells, n_patients=n_patients, rng=seed)
    a.obs["malignant"] = np.where(a.obs["true_malignant"].astype(bool), "malignant", "non-malignant")
    if spatial:
        tm.gr.interface(a, tumor_key="true_cell_type_major", tumor_value="Malignant", sample_key="sample")
        tm.gr.immune_phenotype(a, sample_key="sample", cell_type_key="true_cell_type")
    return a


def agreement(a, **kw) -> pd.DataFrame:
    import tmeatlas as tm
    from tmeatlas.tl._survival import therapy_survival as _fallback

    getattr(tm.tl, "therapy_survival", _fallback)(a, therapies=list(MAP.values()), groupby="true_clone", sample_key="sample",
                           cell_type_key="true_cell_type", **kw)  # fmt: skip
    tab = a.uns["therapy_survival"]["table"]
    truth = a.uns["simulation"]["clone_therapy"].copy()
    truth["therapy"] = truth["therapy"].map(MAP)
    m = tab.merge(truth, left_on=["therapy", "sample", "group"], right_on=["therapy", "patient", "clone"])
    m["agree"] = m["survives"].astype(bool) == (
        m["response"] == "resistant"
    )  # undetermined counts as not surviving
    m["decided"] = m["call"] != "undetermined"
    m["agree_decided"] = (m["call"] == "survives") == (m["response"] == "resistant")  # read where decided
    return m


def summary(m: pd.DataFrame) -> dict:
    """Agreement on the rows the model decides, the share it decides, and the flag agreement of all rows."""
    d = m[m["decided"]]
    return {"agreement_decided": float(d["agree_decided"].mean()) if len(d) else float("nan"),
            "decided": float(m["decided"].mean()), "agreement_all_flags": float(m["agree"].mean()), "n_pairs": len(m)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n-cells", type=int, default=8000)
    p.add_argument("--n-patients", type=int, default=6)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    runs = []
    per = []
    for seed in args.seeds:
        for setting, spatial in (("spatial", True), ("expression", False)):
            for ref in ("all", "sample"):
                a = simulate(seed, args.n_cells, args.n_patients, spatial)
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = agreement(a, program_reference=ref)
                sec = time.perf_counter() - t0
                runs.append({"seed": seed, "setting": setting, "program_reference": ref, **summary(m),
                             "seconds": round(sec, 2), "n_malignant": int((a.obs["malignant"] == "malignant").sum())})  # fmt: skip
                for r in m.itertuples():
                    per.append((seed, setting, ref, r.therapy, r.agree, r.decided, r.agree_decided))
                sm = summary(m)
                print(f"seed {seed} {setting:10s} ref={ref:6s} pairs {len(m):3d} agreement where decided "
                      f"{sm['agreement_decided']:.3f} decided {sm['decided']:.3f} flags {sm['agreement_all_flags']:.3f} "
                      f"({sec:.1f}s)", flush=True)  # fmt: skip
    df = pd.DataFrame(per, columns=["seed", "setting", "program_reference", "therapy", "agree", "decided",
                                    "agree_decided"])  # fmt: skip
    keys = ["setting", "program_reference"]
    overall = pd.DataFrame([{**dict(zip(keys, k)), **summary(g)} for k, g in df.groupby(keys)])
    per_therapy = pd.DataFrame([{**dict(zip([*keys, "therapy"], k)), **summary(g)}
                                for k, g in df.groupby([*keys, "therapy"])])  # fmt: skip
    print(overall.round(3).to_string(index=False))
    print(per_therapy.round(3).to_string(index=False))
    out = {
        "benchmark": "therapy_survival per-clone flags vs simulated therapy truth",
        "command": "python benchmarks/therapy.py "
        + " ".join(f"--seeds {' '.join(map(str, args.seeds))}".split()),
        "n_cells": args.n_cells,
        "n_patients": args.n_patients,
        "map": MAP,
        "overall": overall.to_dict("records"),
        "per_therapy": per_therapy.to_dict("records"),
        "runs": runs,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
