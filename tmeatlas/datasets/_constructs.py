"""Hand-made test cases built from a simulated cohort, for what :func:`simulate_tumor` does not simulate.

Private: used by the tests and ``benchmarks/haematological.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from anndata import AnnData

#: arm-level changes of the constructed lymphoma: trisomy 3 and 18, 6q and 17p deletions, common in
#: B-cell lymphomas (e.g. marginal-zone lymphoma: Dierlamm et al., Blood 87:299, 1996)
LYMPHOMA_GAINS = ("chr3", "chr18")
LYMPHOMA_LOSSES = (("chr6", "q"), ("chr17", "p"))


def lymphoma_sample(adata: AnnData, sample: str, fraction: float = 0.6, rng: int = 0) -> AnnData:
    """A copy of a simulated cohort in which ``sample`` is a B-cell lymphoma.

    The sample's malignant (epithelial) cells are removed and malignant B cells are added until they
    make up ``fraction`` of it: each is a B cell of the cohort drawn with replacement, its counts
    thinned to 85 % (binomial) and given copy-number changes (Poisson at 1.5x the count on the
    gained chromosomes, binomial halving on the lost arms). They get ``true_malignant = True``,
    ``true_clone = "<sample>_lymphoma"`` and names ``"lymphoma<i>"``. Raw counts in ``X``.
    """
    import anndata as ad
    from scipy import sparse

    gen = np.random.default_rng(rng)
    keep = ~(
        (adata.obs["sample"].astype(str) == sample) & adata.obs["true_malignant"].astype(bool)
    ).to_numpy()
    base = adata[keep].copy()
    is_b = (base.obs["true_cell_type"].astype(str) == "B").to_numpy()
    n_s = int((base.obs["sample"].astype(str) == sample).sum())
    n_new = int(round(fraction / (1.0 - fraction) * n_s))
    src = gen.choice(np.flatnonzero(is_b), n_new, replace=True)
    C = sparse.csr_matrix(base.X)[src].toarray().astype(np.int64)
    C = gen.binomial(C, 0.85)
    chrom = base.var["chromosome"].astype(str).to_numpy()
    arm = base.var["arm"].astype(str).to_numpy()
    gain = np.isin(chrom, LYMPHOMA_GAINS)
    loss = np.zeros(base.n_vars, bool)
    for c, a in LYMPHOMA_LOSSES:
        loss |= (chrom == c) & (arm == c.removeprefix("chr") + a)
    C[:, gain] = gen.poisson(C[:, gain] * 1.5)
    C[:, loss] = gen.binomial(C[:, loss], 0.5)
    new = ad.AnnData(sparse.csr_matrix(C.astype(np.float32)), var=base.var.copy())
    new.obs_names = [f"lymphoma{i}" for i in range(n_new)]
    for col in base.obs.columns:
        new.obs[col] = base.obs[col].to_numpy()[src]
    new.obs["sample"] = sample
    new.obs["true_malignant"] = True
    new.obs["true_clone"] = f"{sample}_lymphoma"
    out = ad.concat([base, new], merge="same", uns_merge="first")
    out.obs["sample"] = pd.Categorical(out.obs["sample"].astype(str))
    out.obs["true_malignant"] = out.obs["true_malignant"].astype(bool)
    return out
