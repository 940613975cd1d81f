"""How many genes do copy-number malignant calls need? Random gene panels of the shared real sets.

Run by hand from the project root (results: ``benchmarks/results/cnv_panel.json``):

    .venv/bin/python benchmarks/cnv_panel.py

Targeted panels (MERFISH, CosMx, Xenium: a few hundred to a few thousand genes) give
``tm.tl.infer_cnv`` far fewer genes than a transcriptome. For each shared labelled set (Tirosh 2016
oligodendroglioma: authors' malignant labels; CopyKAT breast example: CopyKAT's aneuploid calls;
Qian 2020 ovarian: the authors' epithelial cancer cells), random panels of ``n`` genes are drawn
from the genes that carry a GRCh38 position and are expressed (mean count >= 0.05; all placed
genes for Tirosh, whose values are log TPM), three draws per size, and ``infer_cnv`` +
``call_malignant`` run per sample as ``tm.run`` does. Reported per run: genes the CNV inference
used, malignant F1 against the labels, the share of uncertain calls and of malignant calls.
``tm.tl.call_malignant`` marks every cell uncertain below ``MIN_CNV_GENES`` genes: this benchmark
is where that number comes from.
"""

from __future__ import annotations

import argparse
import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "cnv_panel.json"
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
SETS = {
    "tirosh2016": ("tirosh2016_oligodendroglioma.h5ad", "patient", "malignant", "malignant"),
    "copykat_breast": ("copykat_breast_example.h5ad", None, "copykat.pred", "aneuploid"),
    "qian2020_ovarian": ("qian2020_ovarian.h5ad", "sample", "cell_type", "Epithelial"),
}
SIZES = (300, 500, 1000, 2000, 3000, 4500, 6000)


def one(full, idx, sample_key, truth) -> dict:
    from sklearn.metrics import f1_score

    import tmeatlas as tm

    a = full[:, np.sort(idx)].copy() if idx is not None else full.copy()
    tm.tl.infer_cnv(a, sample_key=sample_key)
    tm.tl.call_malignant(a, sample_key=sample_key)
    calls = a.obs["malignant"].astype(str).to_numpy()
    return {
        "genes_used": int(a.uns["cnv"]["n_genes_used"]),
        "f1": round(float(f1_score(truth, calls == "malignant", zero_division=0)), 3),
        "uncertain": round(float((calls == "uncertain").mean()), 3),
        "malignant": round(float((calls == "malignant").mean()), 3),
    }


def main(seeds: int, min_genes: int | None) -> None:
    import anndata as ad

    import tmeatlas as tm
    from tmeatlas.tl import _malignant

    if min_genes is not None:  # measure the calls themselves, without the floor
        _malignant.MIN_CNV_GENES = min_genes
    rows = []
    for name, (file, sample_key, col, positive) in SETS.items():
        if not (REAL / file).exists():
            print(f"{name}: {file} absent, skipped")
            continue
        full = ad.read_h5ad(REAL / file)
        truth = (full.obs[col].astype(str) == positive).to_numpy()
        tm.pp.gene_positions(full)
        placed = np.flatnonzero(full.var["chromosome"].notna().to_numpy())
        mean = np.asarray(full.X[:, placed].mean(axis=0)).ravel()
        pool = placed if name == "tirosh2016" else placed[mean >= 0.05]
        for n in (*SIZES, None):
            for seed in range(seeds) if n is not None else [0]:
                idx = (
                    None
                    if n is None
                    else np.random.default_rng(seed).choice(pool, min(n, len(pool)), replace=False)
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = {
                        "dataset": name,
                        "panel": n or "all",
                        "seed": seed,
                        **one(full, idx, sample_key, truth),
                    }
                print(r, flush=True)
                rows.append(r)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"), "floor_disabled": min_genes == 0,
                                   "runs": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--no-floor", action="store_true", help="measure the calls with MIN_CNV_GENES set to 0")
    args = p.parse_args()
    main(args.seeds, 0 if args.no_floor else None)
