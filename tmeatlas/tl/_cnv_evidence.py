"""Evidence that a group of cells carries copy-number changes (shared by malignant calls,
automatic reference refinement and clone calling).

Two levels are used:

* **bins** (``obsm["X_cnv"]``): per-cell profiles, summarised per chromosome arm (``A``) and
  compared with a consensus (correlation) -- these give per-cell evidence;
* **genes**: for a group of cells against the reference cells, the log fold change of mean
  normalised expression of every gene used by :func:`~tmeatlas.tl.infer_cnv`, centred on the
  genome-wide median. A copy-number change moves the *bulk* of an arm's genes, so an arm's
  median log fold change estimates it (about ``dosage * ln(copies / 2)``: -0.69 for a one-copy
  loss, +0.41 for a one-copy gain at full dosage) and a Mann-Whitney test of the arm's genes
  against the other genes gives its significance. Cell-type programs move a minority of genes
  (also when they cluster, as keratins or HLA do) and leave the median in place: this is what
  keeps normal cell types outside the reference from looking aneuploid. Unlike log-scale
  differences, log ratios of means are not shrunk by the sparsity of droplet data, so the
  thresholds mean the same thing for 10x and Smart-seq data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.chunks import iter_chunks, row_blocks, row_subset_blocks
from .._core.cnv import arm_sums, csr_blocks, matrix_gene_sums
from .._core.expression import COUNTS, LOG, TARGET_SUM

__all__ = ["arm_matrix", "arm_shifts", "group_means", "rowcorr"]

PSEUDO = 0.05  # CP10k added to both means before the log ratio
MIN_GENE_MEAN = 0.1  # CP10k; genes less expressed than this in both groups are not tested


def arm_matrix(P: np.ndarray, bins: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell arm means of CNV profiles: ``(A, arm_code_of_each_bin, arm_labels)``."""
    key = (
        bins["segment"].astype(str)
        if "segment" in bins
        else bins["chromosome"].astype(str) + ":" + bins["arm"].astype(str)
    )
    codes, labels = pd.factorize(key)
    A = np.zeros((P.shape[0], len(labels)))
    for j in range(len(labels)):
        A[:, j] = P[:, codes == j].mean(axis=1)
    return A, codes, np.asarray([lab.split(":")[1] for lab in labels])


def rowcorr(P: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Pearson correlation of every row of ``P`` with ``c`` (0 where undefined); ``c`` may be a
    matrix of several profiles (columns), read against one centred copy of ``P``.
    """
    Pc = P - P.mean(axis=1, keepdims=True)
    cc = c - c.mean(axis=0)
    den = np.sqrt(np.multiply.outer((Pc**2).sum(axis=1), (cc**2).sum(axis=0)))
    return np.divide(Pc @ cc, den, out=np.zeros(den.shape), where=den > 0)


def group_means(
    X, mode: int, codes: np.ndarray, n_groups: int, cols: np.ndarray, chunk: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """Mean linear normalised expression (CP10k) of genes ``cols`` per group: one pass over ``X``
    (in memory, or streamed in row blocks).
    """
    sums, cnt = matrix_gene_sums(X, codes.astype(np.int64), n_groups, mode, TARGET_SUM, chunk, linear=True)
    return sums[:, cols], cnt


def arm_shifts(
    m_group: np.ndarray,
    m_ref: np.ndarray,
    gene_arm: np.ndarray,
    arm_labels: np.ndarray,
    baseline: np.ndarray | None = None,
) -> pd.DataFrame:
    """Arm-level copy-number evidence of a group against the reference, from gene means.

    Returns one row per arm: ``shift`` (median centred log fold change of the arm's genes),
    ``n_genes`` and ``pval`` (two-sided Mann-Whitney U test of the arm's genes against all
    other genes, normal approximation; arms with < 10 genes get shift 0, p 1). ``baseline``
    (per gene) is subtracted from the log fold changes first: the expression program that a
    group's cell type has against the reference, so that only copy-number changes remain.
    """
    from scipy.stats import norm, rankdata

    keep = ((m_group >= MIN_GENE_MEAN) | (m_ref >= MIN_GENE_MEAN)) & (gene_arm >= 0)
    lfc = np.log((m_group + PSEUDO) / (m_ref + PSEUDO))
    if baseline is not None:
        lfc = lfc - baseline
    k = np.flatnonzero(keep)
    n_arms = len(arm_labels)
    shift = np.zeros(n_arms)
    pval = np.ones(n_arms)
    n_in = np.bincount(gene_arm[k], minlength=n_arms) if len(k) else np.zeros(n_arms, int)
    if len(k) >= 20:
        x = lfc[k] - np.median(lfc[k])
        arm = gene_arm[k]
        ranks = rankdata(x)
        rank_sum = np.bincount(arm, weights=ranks, minlength=n_arms)
        n = len(k)
        med = pd.Series(x).groupby(arm).median()
        n1 = n_in.astype(float)
        n2 = n - n1
        j = np.flatnonzero((n1 >= 10) & (n2 >= 10))
        shift[j] = med.reindex(j).to_numpy()
        u = rank_sum[j] - n1[j] * (n1[j] + 1) / 2
        z = (u - n1[j] * n2[j] / 2) / np.sqrt(n1[j] * n2[j] * (n + 1) / 12)
        pval[j] = 2 * norm.sf(np.abs(z))
    return pd.DataFrame({"arm": arm_labels, "shift": shift, "n_genes": n_in.astype(int), "pval": pval})


def cnv_clusters(
    P: np.ndarray, groups: np.ndarray, seed: int, *, cells_per_cluster: int = 50, max_clusters: int = 30
) -> np.ndarray:
    """Cluster cells on their CNV profiles within each group; globally unique cluster codes.

    k-means (3 starts, ``seed``; mini-batch k-means above 10,000 cells) on the top 20 principal
    components of each group's features, with ``clip(n / cells_per_cluster, 2, max_clusters)``
    clusters; groups of < 4 cells form one cluster.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.decomposition import PCA

    out = np.full(P.shape[0], -1, dtype=np.int64)
    nxt = 0
    for g in pd.unique(groups):
        idx = np.flatnonzero(groups == g)
        if len(idx) < 4:
            out[idx] = nxt
            nxt += 1
            continue
        k = int(np.clip(len(idx) // cells_per_cluster, 2, max_clusters))
        npc = int(min(20, len(idx) - 1, P.shape[1]))
        Z = PCA(npc, random_state=seed).fit_transform(P[idx]) if npc >= 2 else P[idx]
        if len(idx) > 10_000:
            km = MiniBatchKMeans(k, n_init=3, batch_size=4096, random_state=seed)
        else:
            km = KMeans(k, n_init=3, random_state=seed)
        lab = km.fit_predict(Z)
        out[idx] = lab + nxt
        nxt += k
    return out


def arm_features(
    X: sparse.csr_matrix,
    mode: int,
    cols: np.ndarray,
    gene_arm: np.ndarray,
    n_arms: int,
    ref: np.ndarray,
    groups: np.ndarray,
    chunk: int = 20_000,
    standardize: bool = True,
) -> np.ndarray:
    """Per-cell arm means of log-normalised expression of genes ``cols``, relative to the reference.

    ``F[i, a] = mean_{g in arm a} (x_ig - r_g)``, with ``r`` the mean of the group's reference
    cells (all reference cells for groups with < 5; all cells when there is no reference), then
    centred on the cell's median over arms and scaled by each arm's standard deviation among
    the reference cells (its noise level). Used to cluster cells on one half of the genes while
    the other half tests the clusters, so that the test does not see the noise the clustering chose.
    """
    return arm_features_many(X, mode, cols, [gene_arm], n_arms, ref, groups, chunk, [standardize])[0]


def arm_features_many(
    X,
    mode: int,
    cols: np.ndarray,
    gene_arms: list[np.ndarray],
    n_arms: int,
    ref: np.ndarray,
    groups: np.ndarray,
    chunk: int = 20_000,
    standardize: list[bool] | None = None,
) -> list[np.ndarray]:
    """:func:`arm_features` for several gene-to-arm assignments (e.g. halves or quarters of the
    genes) from one pass over the matrix (:func:`~tmeatlas._core.cnv.arm_sums`: every assignment's
    arm sums at once, normalising each value as it is read, no copy) and one reference pass.
    """
    standardize = [True] * len(gene_arms) if standardize is None else list(standardize)
    specs, arm_of_col = [], np.full((len(gene_arms), X.shape[1]), -1, dtype=np.int64)
    for k, gene_arm in enumerate(gene_arms):
        ok = gene_arm >= 0
        c, ga = cols[ok], gene_arm[ok]
        arm_of_col[k, c] = ga
        M = sparse.csr_matrix((np.ones(len(c)), (np.arange(len(c)), ga)), shape=(len(c), n_arms))
        specs.append((c, M, np.maximum(np.asarray(M.sum(axis=0)).ravel(), 1)))
    Fs = [np.zeros((X.shape[0], n_arms)) for _ in specs]
    for b0, _, B in csr_blocks(X, chunk):
        for sl in iter_chunks(B.shape[0], chunk):
            # no normalised copy of the rows: log1p(CP10k) of counts, log1p of linear input, as is for logs
            S = arm_sums(
                B.indptr[sl.start : sl.stop + 1], B.indices, B.data, arm_of_col, n_arms, mode, TARGET_SUM
            )
            for k, (F, (_, _, n_per_arm)) in enumerate(zip(Fs, specs, strict=True)):
                F[b0 + sl.start : b0 + sl.stop] = S[k] / n_per_arm
    names = pd.unique(groups)
    codes = pd.Categorical(groups, categories=names).codes.astype(np.int64)
    rc = np.where(ref, codes, -1)
    sums_all, cnt = matrix_gene_sums(X, rc, len(names), mode, TARGET_SUM, chunk)
    allsum = None
    if cnt.sum() < 5:
        allsum, allcnt = matrix_gene_sums(X, np.zeros(X.shape[0], np.int64), 1, mode, TARGET_SUM, chunk)
    out = []
    for F, (c, M, n_per_arm), std in zip(Fs, specs, standardize):
        sums = sums_all[:, c]
        pooled = sums.sum(axis=0) / cnt.sum() if allsum is None else allsum[0, c] / allcnt[0]
        for j in range(len(names)):
            r = sums[j] / cnt[j] if cnt[j] >= 5 else pooled
            F[codes == j] -= (r @ M) / n_per_arm
        F -= np.median(F, axis=1, keepdims=True)
        if std:
            # each arm in units of its noise among reference cells, so that short, noisy arms do
            # not dominate distances (cells without a reference: among all cells)
            sd = F[ref].std(axis=0) if ref.sum() >= 5 else F.std(axis=0)
            F = F / np.where(sd > 0, sd, 1.0)
        out.append(F)
    return out


def linear_normalised(
    X, mode: int, cols: np.ndarray, chunk: int = 20_000, rows: np.ndarray | None = None
) -> sparse.csr_matrix:
    """Columns ``cols`` of ``X`` as linear normalised expression (CP10k for counts, expm1 of logs),
    for all cells or for the sorted ``rows`` only, read one row block at a time.
    """
    parts, libs = [], []
    for _, B in row_subset_blocks(row_blocks(X, chunk), rows):
        B = B if sparse.issparse(B) else sparse.csr_matrix(B)
        parts.append(B[:, cols].astype(np.float64).tocsr())
        if mode == COUNTS:
            libs.append(np.asarray(B.sum(axis=1)).ravel())
    Xc = parts[0] if len(parts) == 1 else sparse.vstack(parts, format="csr")
    lib = (libs[0] if len(libs) == 1 else np.concatenate(libs)) if mode == COUNTS else None
    if mode == COUNTS:
        Xc = (
            sparse.diags(np.divide(TARGET_SUM, lib, out=np.zeros_like(lib, dtype=float), where=lib > 0)) @ Xc
        ).tocsr()
    elif mode == LOG:
        Xc.data = np.expm1(Xc.data)
    return Xc


def gene_arm_codes(genes: pd.DataFrame, bins: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the genes infer_cnv used and the code of each gene's arm segment (order of ``bins``)."""
    seg_codes = {s: j for j, s in enumerate(pd.unique(bins["segment"].astype(str)))}
    gene_arm = genes["segment"].astype(str).map(seg_codes).fillna(-1).to_numpy().astype(np.int64)
    return genes["col"].to_numpy().astype(np.int64), gene_arm


def lineage_checks(
    X,
    mode: int,
    P: np.ndarray,
    rows: np.ndarray,
    lineage: np.ndarray,
    anchor_lineages,
    samples: np.ndarray,
    cols: np.ndarray,
    gene_arm: np.ndarray,
    arm_labels: np.ndarray,
    seed: int,
    *,
    min_arm_shift: float = 0.15,
    max_pval: float = 1e-3,
    chunk: int = 20_000,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Copy-number coherence of reference candidates with the anchor (immune) cells of their sample.

    ``P`` holds the profiles (or their arm means) of cells ``rows`` (sorted) against the anchor cells;
    ``lineage`` and ``samples`` are per row (``lineage`` -1: not a candidate); the anchor cells are the
    candidates of the lineages ``anchor_lineages`` (codes: the immune lineages). The candidates of each lineage in each sample are clustered on their
    profiles (:func:`cnv_clusters`) and every cluster is tested at gene level against the anchor cells
    of its sample (:func:`_anchor_means`: each anchor lineage's mean counts once, and an immune
    cluster is compared with the *other* immune lineages, so that a malignant immune lineage, as in
    a lymphoma, neither becomes the yardstick by its numbers nor hides by being compared with
    itself): :func:`arm_shifts`, Bonferroni over arms and clusters. A cluster with an arm
    ``|shift| >= min_arm_shift`` and adjusted ``p <= max_pval`` carries copy-number changes that the
    anchor cells do not: it is not normal. Returns the rows that pass (non-candidates: True) and one
    table row per cluster.
    """
    n = X.shape[0]
    cand = lineage >= 0
    out_keep = np.ones(len(rows), bool)
    cols_tab = ["sample", "lineage", "cnv_cluster", "n_cells", "max_abs_shift", "cnv_arms", "cnv"]
    anchor = np.isin(lineage, np.asarray(list(anchor_lineages), dtype=np.int64))
    if not cand.any() or anchor.sum() < 5:
        return out_keep, pd.DataFrame(columns=cols_tab)
    n_lin = int(lineage.max()) + 1
    grp = samples.astype(np.int64) * n_lin + lineage
    cl = np.full(len(rows), -1, dtype=np.int64)
    cl[cand] = cnv_clusters(P[cand].astype(np.float64), grp[cand], seed)
    n_cl = int(cl.max()) + 1
    s_codes, s_names = pd.factorize(samples)
    full = np.full(n, -1, dtype=np.int64)
    full[rows] = cl
    sums, cnt = group_means(X, mode, full, n_cl, cols, chunk)  # the one pass over the matrix
    m_cl = sums / np.maximum(cnt, 1)[:, None]
    first = np.asarray([np.flatnonzero(cl == c)[0] for c in range(n_cl)])
    m_refs = _anchor_means(
        sums, cnt, s_codes[first], lineage[first], np.unique(lineage[anchor]), len(s_names), n_lin
    )
    program = _lineage_programs(
        np.log((m_cl + PSEUDO) / (m_refs + PSEUDO)), lineage[first], cnt, s_codes[first]
    )
    n_tests = 2 * len(arm_labels) * max(1, n_cl)
    rows_tab = []
    for c in range(n_cl):
        idx = np.flatnonzero(cl == c)
        s = s_codes[idx[0]]
        sig = np.zeros(len(arm_labels), bool)
        # against the anchor cells, and net of the lineage's own program where it can be estimated
        for base in [None] + ([] if program[c] is None else [program[c]]):
            tab = arm_shifts(m_cl[c], m_refs[c], gene_arm, arm_labels, base)
            sig |= (
                (tab["shift"].abs() >= min_arm_shift) & (np.minimum(1.0, tab["pval"] * n_tests) <= max_pval)
            ).to_numpy()
        if sig.any():
            out_keep[idx] = False
        rows_tab.append((s_names[s], int(lineage[idx[0]]), c, len(idx), float(tab["shift"].abs().max()),
                         ",".join(arm_labels[sig]), bool(sig.any())))  # fmt: skip
    args = (s_codes[first], lineage[first])
    whole = _anchor_lineage_tests(m_cl, cnt, m_refs, program, *args, np.unique(lineage[anchor]), gene_arm, arm_labels,
                                  min_arm_shift, max_pval)  # fmt: skip
    whole = _retest_beside_malignant(whole, sums, cnt, m_cl, program, *args, np.unique(lineage[anchor]),
                                     (len(s_names), n_lin), gene_arm, arm_labels, min_arm_shift, max_pval)  # fmt: skip
    whole["sample"] = np.asarray(s_names, dtype=object)[whole["sample"].to_numpy(int)] if len(whole) else []
    table = pd.DataFrame(rows_tab, columns=cols_tab)
    table.attrs["anchor_lineages"] = whole
    return out_keep, table


def _anchor_lineage_tests(
    m_cl,
    cnt,
    m_refs,
    program,
    cl_sample,
    cl_lineage,
    anchor_lineages,
    gene_arm,
    arm_labels,
    min_shift,
    max_pval,
) -> pd.DataFrame:
    """Each anchor (immune) lineage of each sample as a whole against the sample's other immune lineages.

    The lineage's mean is its clusters' means weighted by their cells; it is tested like a cluster
    (:func:`arm_shifts`, Bonferroni over arms and lineages), and an arm counts only when it is
    changed both against the other lineages and net of the lineage's own program (where one could be
    estimated), so that neither a lineage's expression program nor a copy-number change shared by
    the lineage in every sample passes alone. In a solid tumour every immune lineage is diploid; a
    lineage that is not is a haematological malignancy (or malignant cells with an immune program).
    Returns one row per (sample, lineage): sample code, lineage, n_cells, max_abs_shift, cnv_arms, cnv.
    """
    keys = sorted(
        {(int(s), int(lin)) for s, lin in zip(cl_sample, cl_lineage) if lin in set(anchor_lineages)}
    )
    n_tests = 2 * len(arm_labels) * max(1, len(keys))
    out = []
    for s, lin in keys:
        mine = np.flatnonzero((cl_sample == s) & (cl_lineage == lin))
        n = cnt[mine].sum()
        if n < 10:
            continue
        m = (m_cl[mine] * cnt[mine][:, None]).sum(axis=0) / n
        sig = np.ones(len(arm_labels), bool)
        shift = 0.0
        for base in [None] + ([] if program[mine[0]] is None else [program[mine[0]]]):
            tab = arm_shifts(m, m_refs[mine[0]], gene_arm, arm_labels, base)
            sig &= (
                (tab["shift"].abs() >= min_shift) & (np.minimum(1.0, tab["pval"] * n_tests) <= max_pval)
            ).to_numpy()
            shift = max(shift, float(tab["shift"].abs().max()))
        out.append((s, lin, int(n), shift, ",".join(arm_labels[sig]), bool(sig.any())))
    return pd.DataFrame(out, columns=["sample", "lineage", "n_cells", "max_abs_shift", "cnv_arms", "cnv"])


def _retest_beside_malignant(whole, sums, cnt, m_cl, program, cl_sample, cl_lineage, anchor_lineages, shape,
                             gene_arm, arm_labels, min_shift, max_pval) -> pd.DataFrame:  # fmt: skip
    """Where two or more immune lineages of a sample carry changes, the others retested without the most
    changed one in their yardstick.

    Each lineage is compared with the sample's other immune lineages; when one of them is a
    haematological malignancy that dominates that comparison (an AML among few T cells), the
    others show its changes mirrored. The lineage with the largest shift stays called; each
    other flagged lineage of the sample is tested again (:func:`_anchor_lineage_tests`) against
    the anchor lineages without it, and keeps its call only if it still carries changes.
    """
    if not len(whole) or whole["cnv"].sum() < 2:
        return whole
    out = whole.copy()
    for s, rows in whole[whole["cnv"]].groupby("sample"):
        if len(rows) < 2:
            continue
        top = int(rows.loc[rows["max_abs_shift"].idxmax(), "lineage"])
        rest = [int(v) for v in rows["lineage"] if int(v) != top]
        m_refs = _anchor_means(
            sums, cnt, cl_sample, cl_lineage, [a for a in anchor_lineages if a != top], *shape
        )
        again = _anchor_lineage_tests(m_cl, cnt, m_refs, program, cl_sample, cl_lineage, rest, gene_arm, arm_labels,
                                      min_shift, max_pval)  # fmt: skip
        for r in again[again["sample"] == s].itertuples():
            hit = (out["sample"] == s) & (out["lineage"] == r.lineage)
            out.loc[hit, ["max_abs_shift", "cnv_arms", "cnv"]] = [r.max_abs_shift, r.cnv_arms, r.cnv]
    return out


def _anchor_means(sums, cnt, cl_sample, cl_lineage, anchor_lineages, n_s: int, n_lin: int) -> np.ndarray:
    """Per cluster, the anchor profile it is tested against (mean linear expression per gene).

    ``sums`` / ``cnt``: the clusters' summed expression and cells; the anchor cells of a (sample,
    lineage) are the clusters of an anchor lineage there, so their mean needs no other pass over the
    matrix. A cluster's anchor is the per-gene median of the means of its sample's anchor lineages
    with >= 10 cells, leaving out its own lineage (the mean of the two when two remain, the one
    when one remains; with none, the same over all samples' anchor cells). Each lineage's profile
    counts once, whatever its number of cells.
    """
    A = np.zeros((n_s, n_lin, sums.shape[1]))
    C = np.zeros((n_s, n_lin))
    is_anchor = np.isin(cl_lineage, anchor_lineages)
    np.add.at(A, (cl_sample[is_anchor], cl_lineage[is_anchor]), sums[is_anchor])
    np.add.at(C, (cl_sample[is_anchor], cl_lineage[is_anchor]), cnt[is_anchor])
    pooled_sums, pooled_cnt = A.sum(axis=0), C.sum(axis=0)
    out = np.zeros((len(cl_sample), sums.shape[1]))
    for i, (s, lin) in enumerate(zip(cl_sample, cl_lineage)):
        other = np.arange(n_lin) != lin
        use = other & (C[s] >= 10)
        if use.any():
            means = A[s, use] / C[s, use][:, None]
        else:  # no anchor lineage in the sample: all samples' anchor cells
            use = other & (pooled_cnt > 0)
            if not use.any():
                use = pooled_cnt > 0
            means = pooled_sums[use] / pooled_cnt[use][:, None]
        out[i] = np.median(means, axis=0) if len(means) >= 3 else means.mean(axis=0)
    return out


def _lineage_programs(
    lfc: np.ndarray, lineage: np.ndarray, n_cells: np.ndarray, sample: np.ndarray, min_clusters: int = 3
) -> list:
    """Per cluster, the gene-level program of its lineage against the anchor cells: over the lineage's
    clusters of >= 10 cells, the median over samples of each sample's median log fold change (``None``
    with fewer than ``min_clusters`` such clusters). Copy-number changes differ between patients and
    clones, so at any arm most samples' clusters of a lineage are diploid and the median keeps the
    lineage's expression only; one vote per sample, so that a sample whose lineage is malignant and
    large (a lymphoma's B cells) cannot make its copy-number changes the lineage's program.
    """
    out = [None] * len(lfc)
    for lin in np.unique(lineage):
        mine = np.flatnonzero(lineage == lin)
        big = mine[n_cells[mine] >= 10]
        if len(big) >= min_clusters:
            per_sample = [np.median(lfc[big[sample[big] == s]], axis=0) for s in np.unique(sample[big])]
            med = np.median(np.vstack(per_sample), axis=0)
            for c in mine:
                out[c] = med
    return out
