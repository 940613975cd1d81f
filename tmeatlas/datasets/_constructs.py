"""Hand-made test cases built from a simulated cohort, for what :func:`simulate_tumor` does not simulate.

Private: used by the tests and ``benchmarks/haematological.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from anndata import AnnData

#: constructed haematological malignancies: the simulated cell type they are drawn from, and arm-level
#: changes typical of each (whole chromosomes gained; (chromosome, arm) lost or gained):
#: * lymphoma: trisomy 3 and 18, 6q and 17p deletions, common in B-cell lymphomas (e.g. marginal-zone
#:   lymphoma: Dierlamm et al., Blood 87:299, 1996);
#: * myeloma: hyperdiploid myeloma, trisomies of odd chromosomes (3, 9, 15, 19 here), 1q gain and
#:   monosomy 13 (Morgan, Walker & Davies, Nat Rev Cancer 12:335, 2012);
#: * AML: trisomy 8, 5q and 7q deletions and 17p loss, the recurrent changes of the adverse and
#:   complex karyotypes (Grimwade et al., Blood 116:354, 2010).
HAEMATOLOGICAL = {
    "lymphoma": {"source": "B", "gains": ("chr3", "chr18"), "arm_gains": (),
                 "losses": (("chr6", "q"), ("chr17", "p"))},
    "myeloma": {"source": "Plasma", "gains": ("chr3", "chr9", "chr15", "chr19"), "arm_gains": (("chr1", "q"),),
                "losses": (("chr13", "p"), ("chr13", "q"))},
    "aml": {"source": "classical monocyte", "gains": ("chr8",), "arm_gains": (),
            "losses": (("chr5", "q"), ("chr7", "q"), ("chr17", "p"))},
}  # fmt: skip


def _arms(var, pairs) -> np.ndarray:
    """Genes on the (chromosome, arm) pairs."""
    chrom = var["chromosome"].astype(str).to_numpy()
    arm = var["arm"].astype(str).to_numpy()
    out = np.zeros(len(var), bool)
    for c, a in pairs:
        out |= (chrom == c) & (arm == c.removeprefix("chr") + a)
    return out


def haematological_sample(
    adata: AnnData, sample: str, fraction: float = 0.6, rng: int = 0, kind: str = "lymphoma"
) -> AnnData:
    """A copy of a simulated cohort in which ``sample`` is a haematological malignancy (:data:`HAEMATOLOGICAL`).

    The sample's malignant (epithelial) cells are removed and malignant cells of the ``kind``'s source
    type (B cells, plasma cells, classical monocytes) are added until they make up ``fraction`` of
    it: each is a source cell of the cohort drawn with replacement, its counts thinned to 85 %
    (binomial) and given copy-number changes (Poisson at 1.5x the count on gained chromosomes and
    arms, binomial halving on lost arms). They get ``true_malignant = True``, ``true_clone =
    "<sample>_<kind>"`` and names ``"<kind><i>"``. Raw counts in ``X``.
    """
    import anndata as ad
    from scipy import sparse

    spec = HAEMATOLOGICAL[kind]
    gen = np.random.default_rng(rng)
    keep = ~(
        (adata.obs["sample"].astype(str) == sample) & adata.obs["true_malignant"].astype(bool)
    ).to_numpy()
    base = adata[keep].copy()
    is_src = (base.obs["true_cell_type"].astype(str) == spec["source"]).to_numpy()
    n_s = int((base.obs["sample"].astype(str) == sample).sum())
    n_new = int(round(fraction / (1.0 - fraction) * n_s))
    src = gen.choice(np.flatnonzero(is_src), n_new, replace=True)
    C = sparse.csr_matrix(base.X)[src].toarray().astype(np.int64)
    C = gen.binomial(C, 0.85)
    gain = np.isin(base.var["chromosome"].astype(str).to_numpy(), spec["gains"]) | _arms(
        base.var, spec["arm_gains"]
    )
    loss = _arms(base.var, spec["losses"])
    C[:, gain] = gen.poisson(C[:, gain] * 1.5)
    C[:, loss] = gen.binomial(C[:, loss], 0.5)
    new = ad.AnnData(sparse.csr_matrix(C.astype(np.float32)), var=base.var.copy())
    new.obs_names = [f"{kind}{i}" for i in range(n_new)]
    for col in base.obs.columns:
        new.obs[col] = base.obs[col].to_numpy()[src]
    new.obs["sample"] = sample
    new.obs["true_malignant"] = True
    new.obs["true_clone"] = f"{sample}_{kind}"
    out = ad.concat([base, new], merge="same", uns_merge="first")
    out.obs["sample"] = pd.Categorical(out.obs["sample"].astype(str))
    out.obs["true_malignant"] = out.obs["true_malignant"].astype(bool)
    return out


#: antibody channels of the constructed protein panel, as panels spell them (DAPI: every nucleus)
PROTEIN_CHANNELS = ["CD3", "CD8", "CD4", "FoxP3", "CD68", "Pan-CK", "CD45", "aSMA", "DAPI"]
#: constructed protein populations -> the channels that are on ("none": no lineage marker)
PROTEIN_POPULATIONS = {
    "CD8 T": ["CD3", "CD8", "CD45"], "CD4 T": ["CD3", "CD4", "CD45"], "Treg": ["CD3", "CD4", "FoxP3", "CD45"],
    "macrophage": ["CD68", "CD45"], "epithelial": ["Pan-CK"], "myCAF": ["aSMA"], "none": [],
}  # fmt: skip


def protein_panel(
    sizes: dict[str, int], *, seed: int = 0, brightness: float = 1.0, populations: dict | None = None
) -> AnnData:
    """A multiplexed-imaging cell table: log-normal background in every channel (each at its own level,
    SD 0.45 on the natural-log scale), positive channels 8-fold brighter (times a log-normal SD 0.3),
    ``brightness`` scaling the whole slide; ``obs["truth"]`` names each cell's population
    (``populations``: population -> channels on, default :data:`PROTEIN_POPULATIONS` on
    :data:`PROTEIN_CHANNELS`; other populations bring their own channels, and DAPI).
    """
    import anndata as ad

    pops = PROTEIN_POPULATIONS if populations is None else populations
    channels = list(dict.fromkeys([c for on in pops.values() for c in on] + ["DAPI"]))
    if populations is None:
        channels = PROTEIN_CHANNELS
    rng = np.random.default_rng(seed)
    labels = np.repeat(list(sizes), list(sizes.values()))
    level = rng.uniform(50, 500, len(channels))
    X = level * rng.lognormal(0.0, 0.45, (len(labels), len(channels)))
    for pop, on in pops.items():
        rows = labels == pop
        for ch in on:
            X[rows, channels.index(ch)] *= 8.0 * rng.lognormal(0.0, 0.3, rows.sum())
    X[:, channels.index("DAPI")] = rng.lognormal(7, 0.2, len(labels))
    a = ad.AnnData(X.astype(np.float32) * brightness, var=pd.DataFrame(index=channels))
    a.obs_names = [f"c{i}" for i in range(a.n_obs)]
    a.obs["truth"] = labels
    return a
