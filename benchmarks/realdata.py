"""``tm.run`` on every shared real dataset, as a user holds it, and on simulated cohorts with the same options.

Run by hand from the project root (results: ``benchmarks/results/realdata.json`` and the table
between the ``realdata`` markers in README.md):

    .venv/bin/python benchmarks/realdata.py                 # every dataset
    .venv/bin/python benchmarks/realdata.py qian2020_ovarian her2st   # some of them

Each dataset runs in its own process (so that its peak memory is its own) through
``tm.run(..., out=<temporary folder>)`` with reports, as ``tmeatlas run`` would, with the
defaults (all therapies). Recorded per dataset: whether the run completed, each step's status
(done / not applicable / failed, with the reason), seconds, peak resident memory, and every
metric that the dataset's own labels allow:

* malignant F1 (and the share of uncertain calls) where cells carry malignant labels: Tirosh
  (authors' labels), CopyKAT example (CopyKAT's own calls: agreement with an anchor tool), Qian
  (the authors' epithelial cancer cells), simulated cohorts (truth);
* cell-type balanced accuracy over the authors' classes and recall per class, after mapping
  tmeatlas's ``cell_type_major`` onto the authors' vocabulary (:data:`MAPS`): Qian, MERFISH lung
  (``type_lvl1``), with the maps of ``benchmarks/annotate_accuracy.py``, phenoptr multiplex IF
  (``Phenotype``), simulated cohorts;
* tumour-region AUROC of the spot tumour score per her2st section (invasive cancer vs the rest);
* phenoptr: the interface's signed distance and core region against inForm's tissue segmentation
  (Tumor / Stroma).

The labels are copied before the run: ``tm.run`` keeps a user's column that it would write
(``obs["malignant"]``, ``obs["cell_type"]``) under ``<name>_user``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
RESULTS = ROOT / "benchmarks" / "results" / "realdata.json"
README = ROOT / "README.md"


def _annotate_benchmark():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "annotate_accuracy", ROOT / "benchmarks" / "annotate_accuracy.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_ANN = _annotate_benchmark()
#: tmeatlas ``cell_type_major`` -> the authors' class, per labelled dataset; a type missing from a
#: map counts as a wrong call
MAPS = {
    # benchmarks/annotate_accuracy.py: the authors' B_cell population is mostly plasma cells (B lineage)
    "qian2020_ovarian": _ANN.QIAN_MAP,
    "chen2024_nsclc_merfish": _ANN.MAP,
    "phenoptr_multiplex_if": {
        "T cell": "T cell", "Myeloid": "CD68+", "Epithelial": "CK+", "Malignant": "CK+",
    },
    "simulated": None,  # the simulator's own vocabulary
}  # fmt: skip
#: scimap CyCIF lymphoma phenotypes (the authors' gates) as major types; the tumour states (CD30+
#: lymphoma cells), "Non-immune cells", "Other Immune cells", the aberrant and follicular populations
#: have no class of the vocabulary and are left out (the tumour cells are counted in
#: ``tumour_given_normal_type``); ASMA+ cells are stromal (Fibroblast: myofibroblasts)
CYCIF_CLASSES = {
    "CD4 T cells": "T cell", "CD8 T cells": "T cell", "Regulatory T cells": "T cell", "Follicular Helper T cells": "T cell",
    "PD1+ T cells": "T cell", "T cells": "T cell", "M2 Macrophages": "Myeloid", "CD68+ Macrophages": "Myeloid",
    "M1 Macrophages": "Myeloid", "Myeloid Dendritic cells": "Myeloid", "CD25+ Dendritic cells": "Myeloid",
    "Myeloid Lineage": "Myeloid", "Granulocytes": "Myeloid", "NK cells": "NK cell", "B cells": "B cell",
    "ASMA+ cells": "Fibroblast",
}  # fmt: skip
#: phenoptr phenotypes as classes of the map above (FoxP3+ and CD8+ cells are T cells; "other" is left out)
PHENOPTR_CLASSES = {"CD8+": "T cell", "FoxP3+": "T cell", "CD68+": "CD68+", "CK+": "CK+"}


def _load(name: str):
    """(AnnData, sample_key, run options, truth) for one dataset, prepared as a user would."""
    import anndata as ad

    import tmeatlas as tm

    truth: dict = {}
    opts: dict = {}
    if name.startswith("simulated"):
        seed = int(name.split("_seed")[-1])
        a = tm.datasets.simulate_tumor(n_cells=2000, n_patients=2, rng=seed)
        truth["malignant"] = (a.obs["true_malignant"].astype(str).isin(["True", "malignant", "1"])).to_numpy()
        truth["major"] = a.obs["true_cell_type_major"].astype(str).to_numpy()
        return a, "sample", opts, truth
    if name == "phenoptr_multiplex_if":
        a = tm.read(REAL / "phenoptr_multiplex_if_cells.csv.gz")
        ph = a.obs["Phenotype"].astype(str).map(PHENOPTR_CLASSES)
        truth["major"] = ph.to_numpy(object)
        truth["tissue_tumour"] = (a.obs["Tissue Category"].astype(str) == "Tumor").to_numpy()
        return a, ("sample" if "sample" in a.obs else None), opts, truth
    a = ad.read_h5ad(REAL / f"{name}.h5ad")
    o = a.obs
    if name == "qian2020_ovarian":
        truth["major"] = o["cell_type"].astype(str).to_numpy()
        truth["malignant"] = (o["cell_type"].astype(str) == "Epithelial").to_numpy()
        return a, "sample", opts, truth
    if name == "tirosh2016_oligodendroglioma":
        truth["malignant"] = (o["malignant"].astype(str) == "malignant").to_numpy()
        return a, "patient", opts, truth
    if name == "copykat_breast_example":
        truth["malignant"] = (o["copykat.pred"].astype(str) == "aneuploid").to_numpy()
        return a, None, opts, truth
    if name == "chen2024_nsclc_merfish":
        truth["major"] = o["type_lvl1"].astype(str).to_numpy()
        return a, None, opts, truth
    if name == "andersson2021_her2st_ABCD":
        truth["tumour"] = (o["label"].astype(str) == "invasive cancer").to_numpy()
        truth["section"] = o["section"].astype(str).to_numpy()
        return a, "section", opts, truth
    if name == "scimap_cycif_lymphoma":
        # protein intensities; X_position/Y_position are pixels of unknown size, so no coordinates are
        # given (the spatial steps would read pixels as microns)
        ph = o["phenotype"].astype(str)
        truth["major"] = ph.map(CYCIF_CLASSES).to_numpy(object)
        truth["tumour_cells"] = ph.str.startswith("Tumor").to_numpy()
        return a, None, opts, truth
    raise SystemExit(f"unknown dataset {name!r}")


def _metrics(name: str, a, truth: dict) -> dict:
    from sklearn.metrics import f1_score, roc_auc_score

    o = a.obs
    m: dict = {}
    if "malignant" in truth and "malignant" in o:
        calls = o["malignant"].astype(str).to_numpy()
        m["malignant_f1"] = round(
            float(f1_score(truth["malignant"], calls == "malignant", zero_division=0)), 3
        )
        m["uncertain_share"] = round(float((calls == "uncertain").mean()), 3)
    if "major" in truth and "cell_type_major" in o:
        ref = pd.Series(truth["major"], dtype=object)
        mp = MAPS.get("simulated" if name.startswith("simulated") else name)
        ours = o["cell_type_major"].astype(str).reset_index(drop=True)
        pred = ours if mp is None else ours.map(mp).fillna("(" + ours + ")")
        keep = ref.notna().to_numpy()
        recall = {c: round(float((pred[keep & (ref == c).to_numpy()] == c).mean()), 3)
                  for c in sorted(ref[keep].unique())}  # fmt: skip
        m["major_balanced_accuracy"] = round(float(np.mean(list(recall.values()))), 3)
        m["recall"] = recall
        conf = o["cell_type_confidence"].to_numpy(float)
        high = keep & (conf >= 0.8)
        m["confidence_0.8_accuracy"] = (
            round(float((pred[high] == ref[high]).mean()), 3) if high.any() else None
        )
        m["confidence_0.8_share"] = round(float(high.sum() / keep.sum()), 3)
    if "tissue_tumour" in truth and "tumor_distance" in o:
        # inForm's tissue segmentation (Tumor / Stroma) against the interface's signed distance and core
        y, core = truth["tissue_tumour"], (o["tumor_region"].astype(str) == "core").to_numpy()
        m["tumour_region_auroc"] = round(float(roc_auc_score(y, -o["tumor_distance"].to_numpy(float))), 3)
        m["tumour_region_core_share"] = {"Tumor": round(float(core[y].mean()), 3),
                                         "Stroma": round(float(core[~y].mean()), 3)}  # fmt: skip
    if "tumour_cells" in truth and "cell_type_major" in o:
        ours = o["cell_type_major"].astype(str).to_numpy()[truth["tumour_cells"]]
        m["tumour_given_normal_type"] = round(
            1.0 - float(np.isin(ours, ["Unassigned", "Malignant"]).mean()), 3
        )
    if "tumour" in truth and "tumor_score" in o:
        s = o["tumor_score"].to_numpy(float)
        m["tumour_auroc"] = {
            sec: round(
                float(roc_auc_score(truth["tumour"][truth["section"] == sec], s[truth["section"] == sec])), 3
            )
            for sec in sorted(set(truth["section"]))
            if 0 < truth["tumour"][truth["section"] == sec].mean() < 1
        }
    return m


def one(name: str) -> dict:
    """Run one dataset in this process; return its row."""
    import resource
    import warnings

    import tmeatlas as tm

    a, sample_key, opts, truth = _load(name)
    row: dict = {"dataset": name, "cells": int(a.n_obs), "features": int(a.n_vars)}
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tm.run(a, sample_key=sample_key, out=out, progress=False, **opts)
            row["completed"] = True
        except tm.TmeatlasError as e:
            row["completed"] = False
            row["error"] = f"{type(e).__name__}: {e}"
    row["seconds"] = round(time.perf_counter() - t, 1)
    row["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    steps = a.uns.get("pipeline", {}).get("steps")
    if isinstance(steps, pd.DataFrame):
        row["steps"] = {str(r["step"]): (str(r["status"]) if r["status"] in ("done", "skipped") else
                                         f"{r['status']}: {r['reason'] or r['error']}")
                        for _, r in steps.iterrows()}  # fmt: skip
    row["metrics"] = _metrics(name, a, truth)
    return row


def datasets() -> list[str]:
    """The shared real datasets that are present, and the simulated cohorts."""
    names = [p.name[: -len(".h5ad")] for p in sorted(REAL.glob("*.h5ad"))] if REAL.is_dir() else []
    if (REAL / "phenoptr_multiplex_if_cells.csv.gz").exists():
        names.append("phenoptr_multiplex_if")
    return [*names, "simulated_seed0", "simulated_seed1"]


def _table(rows: list[dict]) -> str:
    """The README table: one line per dataset."""
    lines = ["| dataset | cells | completed | steps done / not applicable | seconds | peak GiB | metrics |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        st = r.get("steps", {})
        done = sum(v in ("done", "skipped") for v in st.values())
        na = [k for k, v in st.items() if v.startswith("not ")]
        mets = []
        for k, v in r.get("metrics", {}).items():
            if k == "recall":
                continue
            mets.append(
                f"{k} " + (", ".join(f"{s} {x}" for s, x in v.items()) if isinstance(v, dict) else str(v))
            )
        lines.append(f"| {r['dataset']} | {r['cells']:,} | {'yes' if r.get('completed') else 'NO'} | "
                     f"{done} / {len(na)}{' (' + ', '.join(na) + ')' if na else ''} | {r['seconds']} | "
                     f"{r['peak_rss_gib']} | {'; '.join(mets) or '-'} |")  # fmt: skip
    return "\n".join(lines)


def main(names: list[str]) -> None:
    rows = []
    for name in names:
        print(f"realdata: {name} ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=False)  # fmt: skip
        if proc.returncode != 0:
            rows.append({"dataset": name, "cells": 0, "completed": False, "seconds": 0, "peak_rss_gib": 0,
                         "error": proc.stderr[-2000:]})  # fmt: skip
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    old = json.loads(RESULTS.read_text())["datasets"] if RESULTS.exists() else []
    merged = {r["dataset"]: r for r in old}
    merged.update({r["dataset"]: r for r in rows})
    rows = [merged[k] for k in [*datasets(), *merged] if k in merged]
    rows = list({r["dataset"]: r for r in rows}.values())
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": f"{os.cpu_count()} cores",
                                   "datasets": rows}, indent=1))  # fmt: skip
    print(_write_readme(rows))


def _write_readme(rows: list[dict]) -> str:
    """Put the table of ``rows`` between the ``realdata`` markers of README.md; return it."""
    text = README.read_text(encoding="utf-8")
    table = _table(rows)
    new = re.sub(r"(<!-- realdata:start -->\n).*?(<!-- realdata:end -->)", lambda m: m.group(1) + table + "\n" + m.group(2),
                 text, flags=re.S)  # fmt: skip
    if new != text:
        README.write_text(new, encoding="utf-8")
    return table


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="datasets (default: all present)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--readme-only", action="store_true", help="rewrite the README table from the results file"
    )
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
    elif args.readme_only:
        print(_write_readme(json.loads(RESULTS.read_text())["datasets"]))
    else:
        main(args.names or datasets())
