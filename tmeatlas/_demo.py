"""``tmeatlas demo``: simulate a cohort, run :func:`tmeatlas.run` on it, and measure the results against the truth.

The demo never pretends: it runs exactly what ``tmeatlas run`` runs, lists the steps in
``DIR/summary.json`` with their times, compares every result that has a simulated truth, and
names the atlas steps that are not implemented yet.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._keys import OBS, UNS

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["run_demo"]

#: atlas steps planned but not implemented in this version (reported in summary.json)
NOT_YET: list[str] = []

#: therapies of the demo: one per class that the simulated cohort carries a response truth for
DEMO_THERAPIES = [
    "trastuzumab", "paclitaxel", "carboplatin", "pembrolizumab", "sacituzumab_govitecan",
    "enfortumab_vedotin", "cetuximab", "tamoxifen", "palbociclib",
]  # fmt: skip


def run_demo(
    *, out: str | Path, n_cells: int = 20_000, n_patients: int = 4, rng: int = 0, progress: bool = True
) -> AnnData:
    """Simulate a tumour cohort, run :func:`tmeatlas.run` on it and compare the results with the simulation's truth.

    Writes what ``tmeatlas run`` writes (``atlas.h5ad``, ``tables/``, ``figures/``, ``report/``)
    plus ``summary.json`` (accuracy against the simulated truth, step times) and truth tables
    and figures (``tables/simulation_*.csv``, ``figures/*true*``).
    """
    import matplotlib as mpl

    mpl.use("Agg")

    from . import datasets, pl
    from ._pipeline import run

    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if progress:
        print(
            f"tmeatlas demo: simulating a cohort of {n_cells:,} cells, {n_patients} patients",
            file=sys.stderr,
            flush=True,
        )
    adata = datasets.simulate_tumor(n_cells=n_cells, n_patients=n_patients, spatial=True, rng=rng)
    t_sim = time.perf_counter() - t0
    run(adata, sample_key=OBS.sample, therapies=DEMO_THERAPIES, simulate=["trastuzumab"], out=out, rng=rng,
        progress=progress)  # fmt: skip
    t1 = time.perf_counter()
    metrics = _agreement(adata, out)
    comp = pd.crosstab(adata.obs[OBS.sample], adata.obs[OBS.true_cell_type], normalize="index")
    comp.to_csv(out / "tables" / "true_composition.csv")
    for name, df in _frames(adata.uns.get(UNS.simulation, {})):
        df.to_csv(out / "tables" / f"simulation_{name}.csv", index=False)
    for key in (OBS.true_niche, OBS.true_cell_type_major):
        fig = pl.spatial(adata, color=key, sample_key=OBS.sample, ncols=4, return_fig=True, show=False)
        for ext in ("png", "pdf"):
            fig.savefig(out / "figures" / f"spatial_{key}.{ext}", bbox_inches="tight", dpi=130)
        import matplotlib.pyplot as plt

        plt.close(fig)
    steps = adata.uns[UNS.pipeline]["steps"]
    summary = {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_patients": int(adata.obs[OBS.sample].nunique()),
        "seed": int(rng),
        "gene_positions_fraction_matched": float(adata.uns[UNS.gene_positions]["fraction_matched"]),
        **metrics,
        "seconds_simulate": round(t_sim, 2),
        "seconds_run": float(adata.uns[UNS.pipeline].get("seconds_total", float("nan"))),
        "seconds_total": round(time.perf_counter() - t0, 2),
        "seconds_truth_comparison": round(time.perf_counter() - t1, 2),
        "steps": [
            {"step": str(r["step"]), "status": str(r["status"]), "seconds": float(r["seconds"])}
            for _, r in steps.iterrows()
        ],
        "not_yet_implemented": NOT_YET,
        "outputs": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if progress:
        print(
            f"tmeatlas demo: wrote {out}/ in {summary['seconds_total']:.0f} s; open {out}/report/index.html "
            f"(malignant F1 vs truth {metrics['malignant_f1_vs_truth']:.3f}; "
            f"major cell-type accuracy {metrics['annotation_vs_truth']['major_accuracy']:.3f})",
            file=sys.stderr,
        )
    return adata


def _agreement(a: AnnData, out: Path) -> dict:
    """Accuracy of the pipeline's results against the simulation's ground truth."""
    from sklearn.metrics import adjusted_rand_score, f1_score, roc_auc_score

    ari = adjusted_rand_score(a.obs[OBS.true_cell_type], a.obs[OBS.leiden])
    pd.crosstab(a.obs[OBS.leiden], a.obs[OBS.true_cell_type]).to_csv(
        out / "tables" / "leiden_vs_true_cell_type.csv"
    )
    truth = a.obs[OBS.true_malignant].to_numpy(bool)
    called = (a.obs[OBS.malignant] == "malignant").to_numpy()
    clone_ari = {}
    for s in a.obs[OBS.sample].cat.categories:
        m = truth & (a.obs[OBS.sample] == s).to_numpy()
        if m.any():
            clone_ari[str(s)] = round(
                float(
                    adjusted_rand_score(
                        a.obs[OBS.true_clone][m].astype(str), a.obs[OBS.cnv_clone][m].astype(str)
                    )
                ),
                4,
            )
    o = a.obs
    labels = sorted(o[OBS.true_cell_type].astype(str).unique())
    annotation = {
        "major_accuracy": round(float((o[OBS.cell_type_major].astype(str) == o[OBS.true_cell_type_major].astype(str)).mean()), 4),
        "compartment_accuracy": round(float((o[OBS.compartment].astype(str) == o[OBS.true_compartment].astype(str)).mean()), 4),
        "fine_macro_f1": round(float(f1_score(o[OBS.true_cell_type].astype(str), o[OBS.cell_type].astype(str),
                                               average="macro", labels=labels)), 4),
    }  # fmt: skip
    cp = a.uns[UNS.simulation]["clone_programs"]
    hi = set(cp.loc[(cp["program"] == "stemness") & (cp["state"] == "high"), "clone"].astype(str))
    stem_auc = {}
    for s in a.obs[OBS.sample].cat.categories:
        m = truth & (a.obs[OBS.sample] == s).to_numpy() & a.obs[OBS.stemness].notna().to_numpy()
        y = a.obs[OBS.true_clone].astype(str).isin(hi).to_numpy()[m]
        if 0 < y.sum() < len(y):
            stem_auc[str(s)] = round(float(roc_auc_score(y, a.obs[OBS.stemness].to_numpy()[m])), 4)
    cd8 = o[OBS.true_cell_type].isin(["CD8 T", "exhausted CD8 T", "progenitor-exhausted CD8 T"]).to_numpy()
    tex = (o[OBS.true_cell_type] == "exhausted CD8 T").to_numpy()[cd8]
    spatial = {}
    if OBS.niche in a.obs.columns:
        pheno = a.uns[UNS.immune_phenotype]["table"].set_index("sample")["phenotype"]
        truth_pheno = a.uns[UNS.simulation]["patients"].set_index("patient")["immune_phenotype"]
        spatial = {
            "niche_ari_vs_truth": round(float(adjusted_rand_score(o[OBS.true_niche], o[OBS.niche])), 4),
            "niches": [str(c) for c in o[OBS.niche].cat.categories],
            "immune_phenotype_called": {str(k): str(v) for k, v in pheno.items()},
            "immune_phenotype_truth": {str(k): str(v) for k, v in truth_pheno.items()},
        }
    return {
        "annotation_vs_truth": annotation,
        "spatial_vs_truth": spatial,
        "stemness_auroc_vs_truth": stem_auc,
        "exhaustion_auroc_vs_truth": round(
            float(roc_auc_score(tex, o["sig_TEX_CHU2023"].to_numpy()[cd8])), 4
        ),
        "ari_leiden_vs_true_cell_type": round(float(ari), 4),
        "n_leiden_clusters": int(a.obs[OBS.leiden].nunique()),
        "malignant_f1_vs_truth": round(float(f1_score(truth, called)), 4),
        "clone_ari_vs_truth": clone_ari,
    }


def _frames(d, prefix: str = ""):
    """(name, DataFrame) pairs found anywhere in a nested uns dict."""
    if isinstance(d, pd.DataFrame):
        yield prefix.strip("_") or "table", d
        return
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _frames(v, f"{prefix}_{k}")
    elif isinstance(d, np.ndarray | list):
        return
