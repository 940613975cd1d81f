"""Spatial niches, tumour interface and immune phenotypes: accuracy on simulated cohorts and real data.

Run by hand from the project root (results go to benchmarks/results/niches.json):

    .venv/bin/python benchmarks/niches.py                 # accuracy (simulated + phenoptr), ~10 min
    .venv/bin/python benchmarks/niches.py --scale 1000000 # + neighbourhoods/niches time and memory at 1M cells
    .venv/bin/python benchmarks/niches.py --skip-accuracy --section-sizes 5000x3 40000x4  # ARI vs section size

Accuracy: ``--cohorts`` simulated cohorts (``tm.datasets.simulate_tumor``, 4 patients each, immune
phenotypes rotating so that every phenotype occurs in every cohort), each analysed twice:

* ``predicted``: the package's own calls, as a user would run it: ``tm.tl.infer_cnv`` ->
  ``tm.tl.call_malignant`` -> ``tm.tl.annotate`` -> ``tm.gr.interface`` (tumour = malignant calls)
  -> ``tm.gr.immune_phenotype`` (CD8 T types of ``annotate``) -> ``tm.gr.niches`` (fine types);
* ``true_labels``: the same spatial steps on the simulator's true cell types.

Reported: niche ARI vs ``true_niche`` (and with the number of niches fixed to the five true
ones), the per-patient immune-phenotype agreement, and an *oracle* ARI: a gradient-boosted
classifier trained on the true niches of the other cohorts' patients, on the same features that
``tm.gr.niches`` clusters (neighbourhood composition at 15 and 50 cells + tumour region + signed
distance), i.e. the best that these features allow with supervision.

Section size (``--section-sizes``): niche ARI and the oracle's for other cohort shapes, e.g. the
simulator's default 5,000 cells in 3 sections (about 1,700 cells, 0.25 mm2 per section, where
the 40-80 um margin band holds a third of the cells).

Real data (skipped when ../shared/data is absent): phenoptr multiplex IF, tumour region from CK+
cells vs inForm's Tissue Category.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "niches.json"
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real"
PHENOTYPES = ["inflamed", "excluded", "desert"]


def _features(a, groupby="true_cell_type"):
    import tmeatlas as tm

    tm.gr.neighborhoods(a, groupby=groupby, sample_key="sample", n_neighbors=15, scales=[15, 50],
                        include_self=True, key_added="oracle_nh")  # fmt: skip
    reg = pd.get_dummies(a.obs["tumor_region"]).astype(float)
    d = np.clip(np.nan_to_num(a.obs["tumor_distance"].to_numpy(float), nan=300.0), -300, 300)
    nh = pd.DataFrame(
        np.asarray(a.obsm["X_neighborhood"]), columns=[str(c) for c in a.obsm["X_neighborhood"].columns]
    )
    return pd.concat([nh, reg.reset_index(drop=True), pd.DataFrame({"distance": d})], axis=1)


def accuracy(n_cohorts: int, n_cells: int, n_genes: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import adjusted_rand_score

    import tmeatlas as tm

    rows, feats, truths, groups = [], [], [], []
    for c in range(n_cohorts):
        phen = [PHENOTYPES[(c + i) % 3] for i in range(4)]
        a = tm.datasets.simulate_tumor(
            n_cells=n_cells, n_patients=4, n_genes=n_genes, immune_phenotypes=phen, rng=100 + c
        )
        t0 = time.perf_counter()
        tm.tl.infer_cnv(a, sample_key="sample")
        tm.tl.call_malignant(a, sample_key="sample")
        tm.tl.annotate(a, sample_key="sample")
        t1 = time.perf_counter()
        res = {"cohort": c, "seed": 100 + c, "n_cells": a.n_obs, "upstream_seconds": round(t1 - t0, 1)}
        for mode in ("predicted", "true_labels"):
            b = a.copy()
            if mode == "predicted":
                t = time.perf_counter()
                tm.gr.interface(b, sample_key="sample")
                tm.gr.immune_phenotype(b, sample_key="sample")
                tm.gr.niches(b, sample_key="sample")
                res["spatial_seconds"] = round(time.perf_counter() - t, 1)
            else:
                tm.gr.interface(
                    b, tumor_key="true_cell_type_major", tumor_value="Malignant", sample_key="sample"
                )
                tm.gr.immune_phenotype(b, sample_key="sample", cell_type_key="true_cell_type")
                tm.gr.niches(b, groupby="true_cell_type", sample_key="sample")
            table = b.uns["immune_phenotype"]["table"]
            got = dict(zip(table["sample"].astype(str), table["phenotype"]))
            res[mode] = {
                "niche_ari": round(float(adjusted_rand_score(b.obs["true_niche"], b.obs["niche"])), 4),
                "n_niches": int(b.uns["niches"]["params"]["n_niches"]),
                "niche_names": [str(x) for x in b.obs["niche"].cat.categories],
                "phenotype_truth": phen,
                "phenotype_called": [got[f"P{i + 1}"] for i in range(4)],
                "phenotype_correct": int(sum(got[f"P{i + 1}"] == p for i, p in enumerate(phen))),
                "phenotype_confidence": [round(float(x), 3) for x in table["confidence"]],
                "densities": table[["sample", "density_core", "density_margin", "density_stroma"]]
                .round(1)
                .to_dict("records"),
            }
            b2 = b.copy()
            tm.gr.niches(b2, n_niches=5, sample_key="sample")
            res[mode]["niche_ari_5_niches"] = round(
                float(adjusted_rand_score(b2.obs["true_niche"], b2.obs["niche"])), 4
            )
            if mode == "true_labels":
                feats.append(_features(b))
                truths.append(b.obs["true_niche"].astype(str).to_numpy())
                groups.append(np.full(b.n_obs, c))
        rows.append(res)
        print(
            json.dumps({k: res[k] for k in ("cohort", "predicted", "true_labels")}, default=str)[:600],
            file=sys.stderr,
        )
    # oracle: supervised on the other cohorts
    X = pd.concat(feats, ignore_index=True).fillna(0.0).to_numpy(float)  # groups absent in a cohort: 0
    y, g = np.concatenate(truths), np.concatenate(groups)
    oracle = []
    for c in range(n_cohorts):
        clf = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(X[g != c], y[g != c])
        oracle.append(round(float(adjusted_rand_score(y[g == c], clf.predict(X[g == c]))), 4))
    for r, o in zip(rows, oracle):
        r["oracle_niche_ari"] = o

    def _summ(mode):
        calls = [(c >= 0.8, got == truth) for r in rows
                 for c, got, truth in zip(r[mode]["phenotype_confidence"], r[mode]["phenotype_called"],
                                          r[mode]["phenotype_truth"])]  # fmt: skip
        return {
            "niche_ari": [r[mode]["niche_ari"] for r in rows],
            "niche_ari_5_niches": [r[mode]["niche_ari_5_niches"] for r in rows],
            "phenotype_accuracy": round(sum(r[mode]["phenotype_correct"] for r in rows) / (4 * len(rows)), 4),
            # calls with confidence >= 0.8 (not logged as uncertain) vs below: how many, how many right
            "phenotype_confident": {
                "n": sum(h for h, _ in calls),
                "correct": sum(h and ok for h, ok in calls),
            },
            "phenotype_uncertain": {
                "n": sum(not h for h, _ in calls),
                "correct": sum(ok and not h for h, ok in calls),
            },
        }

    return {"cohorts": rows, "summary": {"predicted": _summ("predicted"), "true_labels": _summ("true_labels"),
                                          "oracle_niche_ari": oracle}}  # fmt: skip


def section_sizes(sizes: list[str], n_seeds: int, n_genes: int) -> dict:
    """Niche ARI against cells per section: the package's calls and a supervised oracle per size.

    ``sizes`` are ``"<cells>x<patients>"`` (``5000x3`` is ``simulate_tumor``'s default). Each size
    is simulated with ``n_seeds`` seeds (200, 201, ...; default immune phenotypes) and analysed
    as in ``accuracy``'s ``predicted`` mode. The oracle is a gradient-boosted classifier trained on
    the true niches of the other seeds of the same size, on the features of ``_features`` built
    from the package's own cell types and interface (what ``tm.gr.niches`` sees).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import adjusted_rand_score

    import tmeatlas as tm

    out = {}
    for size in sizes:
        n_cells, n_patients = (int(x) for x in size.split("x"))
        rows, feats, truths = [], [], []
        for seed in range(200, 200 + n_seeds):
            a = tm.datasets.simulate_tumor(n_cells=n_cells, n_patients=n_patients, n_genes=n_genes, rng=seed)
            tm.tl.infer_cnv(a, sample_key="sample")
            tm.tl.call_malignant(a, sample_key="sample")
            tm.tl.annotate(a, sample_key="sample")
            tm.gr.interface(a, sample_key="sample")
            tm.gr.niches(a, sample_key="sample")
            t = a.obs["true_niche"].astype(str).to_numpy()
            rows.append({"seed": seed, "n_niches": int(a.uns["niches"]["params"]["n_niches"]),
                         "niche_ari": round(float(adjusted_rand_score(t, a.obs["niche"])), 4)})  # fmt: skip
            feats.append(_features(a, groupby="cell_type"))  # the package's own types
            truths.append(t)
        X = pd.concat(feats, ignore_index=True).fillna(0.0).to_numpy(float)  # groups absent in a run: 0
        y, g = np.concatenate(truths), np.repeat(np.arange(len(feats)), [len(f) for f in feats])
        for i, r in enumerate(rows):
            clf = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(X[g != i], y[g != i])
            r["oracle_niche_ari"] = round(float(adjusted_rand_score(y[g == i], clf.predict(X[g == i]))), 4)
        out[size] = {
            "cells_per_section": n_cells // n_patients,
            "runs": rows,
            "mean_niche_ari": round(float(np.mean([r["niche_ari"] for r in rows])), 4),
            "mean_oracle_niche_ari": round(float(np.mean([r["oracle_niche_ari"] for r in rows])), 4),
        }
        print(json.dumps({size: out[size]}), file=sys.stderr)
    return out


def phenoptr() -> dict | None:
    import anndata as ad

    import tmeatlas as tm

    path = DATA / "phenoptr_multiplex_if_cells.csv.gz"
    if not path.exists():
        return None
    df = pd.read_csv(path)
    cols = [c for c in df.columns if c.endswith(" Mean")]
    a = ad.AnnData(X=df[cols].to_numpy(np.float32), var=pd.DataFrame(index=cols),
                   obs=pd.DataFrame({"Phenotype": df["Phenotype"].astype(str).to_numpy(), "field": "f1"},
                                    index=df.index.astype(str)))  # fmt: skip
    a.obsm["spatial"] = df[["Cell X Position", "Cell Y Position"]].to_numpy(float)
    truth = (df["Tissue Category"] == "Tumor").to_numpy()
    out = {
        "n_cells": int(len(df)),
        "baseline_ck_positive_accuracy": round(float(((df["Phenotype"] == "CK+") == truth).mean()), 4),
    }
    for k in (10, 15, 20):
        tm.gr.interface(a, tumor_key="Phenotype", tumor_value="CK+", sample_key="field", n_neighbors=k)
        pred = (a.obs["tumor_region"] == "core").to_numpy()
        out[f"accuracy_k{k}"] = round(float((pred == truth).mean()), 4)
    tm.gr.interface(a, tumor_key="Phenotype", tumor_value="CK+", sample_key="field")
    tm.gr.immune_phenotype(a, sample_key="field", cell_type_key="Phenotype")
    row = a.uns["immune_phenotype"]["table"].iloc[0]
    out["immune_phenotype"] = {k: (round(float(v), 1) if isinstance(v, float) else str(v)) for k, v in row.items()
                               if k in ("phenotype", "density_core", "density_margin", "density_stroma")}  # fmt: skip
    return out


SCALE_WORKER = r"""
import json, resource, sys, time
import numpy as np, pandas as pd, anndata as ad
n = int(sys.argv[1])
rs = np.random.default_rng(0)
# a tiled tissue: the 20k-cell simulated layout repeated with offsets (coordinates and labels only)
import tmeatlas as tm
base = tm.datasets.simulate_tumor(n_cells=20000, n_patients=4, n_genes=600, rng=0)
reps = int(np.ceil(n / base.n_obs))
xy = np.vstack([base.obsm["spatial"] + np.array([10000.0 * (r % 10), 10000.0 * (r // 10)]) for r in range(reps)])[:n]
obs = pd.DataFrame({
    "sample": np.concatenate([base.obs["sample"].astype(str).to_numpy() + f"_{r}" for r in range(reps)])[:n],
    "cell_type": np.concatenate([base.obs["true_cell_type"].astype(str).to_numpy()] * reps)[:n],
    "cell_type_major": np.concatenate([base.obs["true_cell_type_major"].astype(str).to_numpy()] * reps)[:n],
}, index=[f"c{i}" for i in range(n)])
for c in obs.columns:
    obs[c] = obs[c].astype("category")
a = ad.AnnData(X=np.zeros((n, 1), np.float32), obs=obs)
a.obsm["spatial"] = xy
del base
out = {"n_cells": n, "n_samples": int(obs["sample"].nunique())}
t = time.perf_counter()
tm.gr.interface(a, sample_key="sample")
out["interface_seconds"] = round(time.perf_counter() - t, 1)
t = time.perf_counter()
tm.gr.neighborhoods(a, groupby="cell_type", sample_key="sample", n_neighbors=15, scales=[15, 50], include_self=True)
out["neighborhoods_seconds"] = round(time.perf_counter() - t, 1)
t = time.perf_counter()
tm.gr.niches(a, sample_key="sample")
out["niches_seconds"] = round(time.perf_counter() - t, 1)
out["neighborhoods_plus_niches_seconds"] = round(out["neighborhoods_seconds"] + out["niches_seconds"], 1)
out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
out["n_niches"] = int(a.uns["niches"]["params"]["n_niches"])
print(json.dumps(out))
"""


def scale(n: int) -> dict:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", SCALE_WORKER, str(n)], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    warnings.simplefilter("ignore")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cohorts", type=int, default=4)
    p.add_argument("--n-cells", type=int, default=16000)
    p.add_argument("--n-genes", type=int, default=8000)
    p.add_argument("--scale", type=int, nargs="*", default=[])
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument(
        "--section-sizes",
        nargs="*",
        default=[],
        metavar="CELLSxPATIENTS",
        help="niche ARI vs section size, e.g. 5000x3 40000x4",
    )
    p.add_argument("--size-seeds", type=int, default=4)
    args = p.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update({"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
                    "python": platform.python_version()})  # fmt: skip
    if not args.skip_accuracy:
        results["simulated"] = accuracy(args.cohorts, args.n_cells, args.n_genes)
        results["phenoptr"] = phenoptr()
    if args.section_sizes:
        results.setdefault("section_sizes", {}).update(
            section_sizes(args.section_sizes, args.size_seeds, args.n_genes)
        )
    for n in args.scale:
        results.setdefault("scale", {})[str(n)] = scale(n)
        print(json.dumps(results["scale"][str(n)]), file=sys.stderr)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print(
        json.dumps(
            {k: v for k, v in results.items() if k != "simulated"}
            | {"summary": results.get("simulated", {}).get("summary")},
            indent=1,
            default=str,
        )
    )
    _ = resource


if __name__ == "__main__":
    main()
