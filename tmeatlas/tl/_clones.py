"""CNV subclones of malignant cells: ``tm.tl.cnv_clones``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._docs import doc_params
from .._errors import InvalidParameterError, MissingResultError
from .._keys import OBS, UNS
from .._rng import resolve_seed
from .._settings import logger
from .._store import store
from .._validation import check_obs_key, start
from ._cnv_evidence import arm_features_many, arm_shifts, group_means
from ._cnv_evidence import linear_normalised as _linear_normalised

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["cnv_clones"]

NOT_MALIGNANT = "non-malignant"
#: single-arm split candidates per node: the arms with the most clone signal
MAX_ARM_CANDIDATES = 6
#: a split is considered only if its parts are expected to be at least this pure (1 - e_a - e_b)
MIN_PURITY = 0.5
#: most rounds of the joint reassignment of a sample's leaves (:func:`_refine_leaves`)
REFINE_ITERATIONS = 10


@doc_params("copy")
def cnv_clones(
    adata: AnnData,
    *,
    sample_key: str | None = None,
    cnv_key: str = UNS.cnv,
    malignant_key: str = OBS.malignant,
    min_clone_size: int = 20,
    min_arm_shift: float = 0.15,
    max_pval: float = 1e-3,
    split_pval: float = 0.01,
    max_depth: int = 4,
    rng: int = 0,
    key_added: str = UNS.cnv_clones,
    copy: bool = False,
) -> AnnData | None:
    r"""Subclones of malignant cells from their copy-number profiles, as a tree, per sample.

    Divisive clustering with a test at every split. Starting from all malignant cells of a
    sample (``obs[malignant_key] == "malignant"``), candidate splits of a node in two are
    proposed from the cells' reference-centred arm means of every other gene (genome order,
    each arm in units of its noise among reference cells): k-means on all arms, and a
    two-component Gaussian mixture on each of the six arms with the most clone signal (a
    clone often differs by a single arm, which k-means over 40 arms misses). An arm's clone
    signal is the covariance, across the node's cells, of its means over two disjoint quarters
    of the genes: noise is independent between the quarters, a copy-number difference is not. The best candidates (at most 4) are tested in turn: a
    split is kept if both parts have at least ``min_clone_size`` cells and, on the *other* half
    of the genes, at least one chromosome arm differs between them: with cells as replicates,
    a Welch test of the cells' arm means with a p-value, Bonferroni-corrected for the arms
    tested (the proposing arm for a single-arm candidate, all arms for k-means) and the
    candidates, of at most ``split_pval``; and with genes as replicates, a median log fold change
    of the arm's held-out genes of at least ``min_arm_shift`` between the two parts after
    reassignment (below), so that an expression program carried by a few genes cannot pass
    for a copy-number difference (see :mod:`tmeatlas.tl._cnv_evidence`).
    Splitting genes between proposing and testing keeps the test from confirming chance
    structure. Cells of a split that passes the cell-level test are reassigned on the
    separating arms with the proposing half of the genes only (a two-component mixture along
    the difference of the two parts), so that the held-out genes never see the assignment
    they test. The mixture's posteriors give the parts' expected purity ``1 - e_a - e_b``
    (``e_a``: the expected share of part a that belongs to b); a split with purity below 0.5
    is not a split, and the held-out median shift is divided by the purity before the
    ``min_arm_shift`` check, because mixed parts dilute a real difference by exactly that
    factor. An accepted split is finally reassigned with all genes. Leaves are the
    clones; the accepted splits form the clone tree, each split labelled by the separating arms.
    Because a split assigns each cell once, on its own arms, the leaves are then reassigned
    jointly: every malignant cell goes to the clone under which its arm means on all the tree's
    separating arms are most likely (independent Gaussians per arm, variances pooled within
    clones, clone sizes as prior; iterated to a fixed point, no clone below ``min_clone_size``),
    the final hard step of a Gaussian mixture fitted by classification EM (Celeux & Govaert,
    Comput Stat Data Anal 14:315, 1992).

    Each clone then gets arm-level calls against the reference cells, with all genes: ``gain``
    (median log fold change >= ``min_arm_shift``, adjusted p <= ``max_pval``), ``loss`` or
    ``neutral``, with the shift as effect size (about ``dosage * ln(copies / 2)``).

    Parameters
    ----------
    adata
        Annotated data matrix after :func:`~tmeatlas.tl.infer_cnv` and :func:`~tmeatlas.tl.call_malignant`.
    sample_key
        Column of ``adata.obs`` with the sample (patient); clones never span samples.
    cnv_key
        The ``key_added`` of :func:`~tmeatlas.tl.infer_cnv`.
    malignant_key
        Column with the malignant calls.
    min_clone_size
        Fewest cells in a clone.
    min_arm_shift
        Smallest arm-level median log fold change that separates two clones, or makes a call.
    max_pval
        Largest Bonferroni-corrected p-value of an arm call against the reference.
    split_pval
        Largest Bonferroni-corrected p-value (cells as replicates) of a split; about the
        chance that a node is split without a copy-number difference.
    max_depth
        Deepest split (at most ``2 ** max_depth`` clones per sample).
    rng
        Seed of the k-means splits (recorded).
    key_added
        Key of ``adata.uns`` for the summary; the clone labels go to ``obs["cnv_clone"]``
        (``"<sample>_c<k>"``; non-malignant cells get ``"non-malignant"``).
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obs["cnv_clone"]`` and ``uns[key_added]`` with ``clones``
    (clone, sample, n_cells, fraction of the sample's malignant cells), ``arm_calls`` (tidy:
    clone, arm, call, shift, padj), ``tree`` (node, parent, sample, n_cells, clone or empty for
    inner nodes, arms separating it from its sibling) and ``params``.
    """
    if min_clone_size < 5:
        raise InvalidParameterError(f"min_clone_size must be >= 5, got {min_clone_size}.")
    adata = start(adata, copy)
    check_obs_key(adata, sample_key, what="sample_key")
    if malignant_key not in adata.obs:
        raise MissingResultError(
            f"no malignant calls in obs[{malignant_key!r}]: run `tm.tl.call_malignant(adata)` first."
        )
    from ._malignant import MALIGNANT, _expression

    if cnv_key not in adata.uns or "bins" not in adata.uns[cnv_key]:
        raise MissingResultError(f"no CNV results in uns[{cnv_key!r}]: run `tm.tl.infer_cnv(adata)` first.")
    seed = resolve_seed(rng)
    X, mode, genes = _expression(adata, cnv_key)
    ref = (
        adata.obs[OBS.cnv_reference].to_numpy(bool)
        if OBS.cnv_reference in adata.obs
        else np.zeros(adata.n_obs, bool)
    )
    samples = (
        adata.obs[sample_key].astype(str).to_numpy()
        if sample_key
        else np.full(adata.n_obs, "all", dtype=object)
    )
    mal = (adata.obs[malignant_key].astype(str) == MALIGNANT).to_numpy()
    d = _clone_features(X, mode, genes, adata.uns[cnv_key]["bins"], ref, samples, mal)
    tree_rows, pending = _grow_trees(
        d, ref, samples, mal, max_depth, min_clone_size, min_arm_shift, split_pval, seed
    )
    means_all, slots, pooled_mean = _clone_means(
        X, mode, d["cols"], pending, np.flatnonzero(ref), adata.n_obs
    )
    labels, clone_rows, call_rows = _name_clones(
        pending,
        slots,
        means_all,
        pooled_mean,
        tree_rows,
        d["gene_arm"],
        d["arm_labels"],
        adata.n_obs,
        min_arm_shift,
        max_pval,
    )
    cats = sorted(
        {str(v) for v in labels} - {NOT_MALIGNANT},
        key=lambda v: (v.rsplit("_c", 1)[0], int(v.rsplit("_c", 1)[1])),
    ) + [NOT_MALIGNANT]
    clones = pd.DataFrame(clone_rows, columns=["clone", "sample", "n_cells", "fraction"])
    calls = pd.DataFrame(call_rows, columns=["clone", "sample", "arm", "call", "shift", "padj"])
    tree = pd.DataFrame(tree_rows, columns=["node", "parent", "sample", "n_cells", "clone", "split_arms"])
    for df in (clones, calls, tree):
        df.index = df.index.astype(str)
    logger.info(
        "cnv_clones: %d clones in %d samples", len(clones), clones["sample"].nunique() if len(clones) else 0
    )
    store(
        adata,
        tool="tl.cnv_clones",
        obs={OBS.cnv_clone: pd.Categorical(labels.astype(str), categories=cats)},
        uns_key=key_added,
        uns={"clones": clones, "arm_calls": calls, "tree": tree},
        params={
            "sample_key": sample_key,
            "cnv_key": cnv_key,
            "malignant_key": malignant_key,
            "min_clone_size": min_clone_size,
            "min_arm_shift": min_arm_shift,
            "max_pval": max_pval,
            "split_pval": split_pval,
            "max_depth": max_depth,
            "rng": seed,
            "key_added": key_added,
        },
    )
    return adata if copy else None


def _clone_features(X, mode: int, genes: pd.DataFrame, bins: pd.DataFrame, ref, samples, mal) -> dict:
    """Arm features of the gene halves and quarters, and the held-out genes' linear expression of the
    malignant cells: what :func:`_best_split` reads, with the genes' columns and arms.
    """
    seg_names = list(pd.unique(bins["segment"].astype(str)))
    arm_labels = np.asarray([s.split(":")[1] for s in seg_names])
    gene_arm = (
        genes["segment"]
        .astype(str)
        .map({s: j for j, s in enumerate(seg_names)})
        .fillna(-1)
        .to_numpy()
        .astype(np.int64)
    )
    cols = genes["col"].to_numpy().astype(np.int64)
    half = np.arange(len(cols)) % 2 == 0
    # halves of the genes (one proposes splits, the other tests them); two interleaved quarters,
    # whose covariance across cells measures clone structure on an arm (shared signal) and whose
    # difference its noise; all genes for the final assignment only. One pass over the matrix.
    quarter = np.arange(len(cols)) % 4
    F, Q1, Q2, F_odd, As = arm_features_many(
        X, mode, cols,
        [np.where(half, gene_arm, -1), np.where(quarter == 0, gene_arm, -1), np.where(quarter == 2, gene_arm, -1),
         np.where(half, -1, gene_arm), gene_arm],
        len(arm_labels), ref, samples, standardize=[True, False, False, True, True],
    )  # fmt: skip
    # the odd genes' linear expression of the malignant cells (the only cells split into clones)
    mal_rows = np.flatnonzero(mal)
    lin_odd = _linear_normalised(X, mode, cols[~half], rows=mal_rows)
    lin_pos = np.full(len(mal), -1, dtype=np.int64)
    lin_pos[mal_rows] = np.arange(len(mal_rows))
    return {"F": F, "Q1": Q1, "Q2": Q2, "F_odd": F_odd, "As": As, "lin": (lin_odd, lin_pos), "odd_arm": gene_arm[~half],
            "arm_labels": arm_labels, "gene_arm": gene_arm, "cols": cols}  # fmt: skip


def _grow_trees(
    d: dict, ref, samples, mal, max_depth, min_clone_size, min_arm_shift, split_pval, seed
) -> tuple[list, list]:
    """The clone tree of every sample by tested splits: ``(tree rows, pending)``, ``pending`` holding per
    sample its leaves (largest first) and the reference cells its clones are compared with.
    """
    tree_rows = []
    all_ref = np.flatnonzero(ref)
    pending = []  # per sample: its leaves and the reference cells its clones are compared with
    for s in pd.unique(samples):
        root = np.flatnonzero((samples == s) & mal)
        if len(root) == 0:
            continue
        leaves: list[tuple[str, np.ndarray]] = []
        stack = [("0", root, 0)]
        tree_rows.append(
            {"node": f"{s}:0", "parent": "", "sample": s, "n_cells": len(root), "clone": "", "split_arms": ""}
        )
        while stack:
            node, idx, depth = stack.pop()
            split = None
            if depth < max_depth and len(idx) >= 2 * min_clone_size:
                split = _best_split(
                    idx, d["F"], d["Q1"], d["Q2"], d["F_odd"], d["As"], d["lin"], d["odd_arm"], d["arm_labels"],
                    min_clone_size, min_arm_shift, split_pval, seed,
                )  # fmt: skip
            if split is None:
                leaves.append((node, idx))
                continue
            a, b, arms = split
            for child, ix in ((node + "0", a), (node + "1", b)):
                tree_rows.append(
                    {
                        "node": f"{s}:{child}",
                        "parent": f"{s}:{node}",
                        "sample": s,
                        "n_cells": len(ix),
                        "clone": "",
                        "split_arms": arms,
                    }
                )
                stack.append((child, ix, depth + 1))
        leaves = _refine_leaves(leaves, d["As"], d["arm_labels"], tree_rows, s, min_clone_size)
        leaves.sort(key=lambda t: -len(t[1]))
        ref_s = np.flatnonzero((samples == s) & ref)
        pooled = len(ref_s) < 5 and len(all_ref) >= 5  # the sample's own reference, else all of them
        ref_idx = ref_s if len(ref_s) >= 5 else all_ref
        if len(ref_idx) < 5:  # no reference: the sample's non-malignant cells
            ref_idx = np.flatnonzero((samples == s) & ~mal)
        pending.append((s, leaves, ref_idx, pooled))
    return tree_rows, pending


def _refine_leaves(
    leaves: list, As: np.ndarray, arm_labels: np.ndarray, tree_rows: list, sample: str, min_size: int
) -> list:
    """Leaves reassigned jointly on every arm that separates any two of them (updates ``tree_rows``).

    The tree assigns a cell once per split, on that split's arms: a cell sent the wrong way at the
    root can never reach its clone. After the tree is grown, every malignant cell of the sample is
    reassigned to the clone under which its arm means (all genes, :func:`_clone_features`'s ``As``)
    on the union of the tree's separating arms are most likely: independent Gaussians per arm
    with the clones' means, a variance per arm pooled within clones (the cells' noise does not
    depend on their clone) and the clones' sizes as prior; iterated to a fixed point (at most
    ``REFINE_ITERATIONS``), the last iteration that keeps every clone at ``min_size`` cells or more.
    """
    if len(leaves) < 2:
        return leaves
    arms = {a[:-1] for r in tree_rows if r["sample"] == sample for a in r["split_arms"].split(",") if a}
    cols = np.flatnonzero(np.isin(arm_labels, sorted(arms)))
    if len(cols) == 0:
        return leaves
    idx = np.concatenate([ix for _, ix in leaves])
    lab = np.repeat(np.arange(len(leaves)), [len(ix) for _, ix in leaves])
    F = As[np.ix_(idx, cols)]
    for _ in range(REFINE_ITERATIONS):
        counts = np.bincount(lab, minlength=len(leaves)).astype(np.float64)
        mu = np.zeros((len(leaves), len(cols)))
        np.add.at(mu, lab, F)
        mu /= counts[:, None]
        var = np.maximum(((F - mu[lab]) ** 2).mean(axis=0), 1e-9)
        # log-likelihood up to a constant, expanded so that no cells x clones x arms array is formed
        ll = F @ (mu / var).T - 0.5 * ((mu**2) / var).sum(axis=1) + np.log(counts / len(lab))
        new = np.argmax(ll, axis=1)
        if np.array_equal(new, lab) or np.bincount(new, minlength=len(leaves)).min() < min_size:
            break
        lab = new
    out = [(node, np.sort(idx[lab == k])) for k, (node, _) in enumerate(leaves)]
    size = {f"{sample}:{node}": len(ix) for node, ix in out}
    for r in tree_rows:  # every node's size is the sum of its leaves'
        if r["sample"] == sample:
            r["n_cells"] = sum(n for node, n in size.items() if node.startswith(r["node"]))
    return out


def _clone_means(X, mode: int, cols: np.ndarray, pending: list, all_ref: np.ndarray, n_obs: int):
    """Mean expression of every clone and reference: ``(means, (leaf ids, reference id) per sample,
    mean of the pooled reference or None)``.
    """
    # one pass over the matrix (a second one for the pooled reference when a sample needs it: it
    # overlaps the samples' own references). A cell in both a clone and its reference counts for
    # the reference, as it always did.
    codes = np.full(n_obs, -1, dtype=np.int64)
    gid = 0
    slots = []
    for _, leaves, ref_idx, pooled in pending:
        leaf_ids = []
        for _, ix in leaves:
            codes[ix] = gid
            leaf_ids.append(gid)
            gid += 1
        if pooled:
            codes[np.intersect1d(np.concatenate([ix for _, ix in leaves]), ref_idx)] = -1
            slots.append((leaf_ids, None))
        else:
            codes[ref_idx] = gid
            slots.append((leaf_ids, gid))
            gid += 1
    m, c = group_means(X, mode, codes, max(gid, 1), cols)
    means_all = m / np.maximum(c, 1)[:, None]
    pooled_mean = None
    if any(p[3] for p in pending):
        pc = np.full(n_obs, -1, dtype=np.int64)
        pc[all_ref] = 0
        pm, pn = group_means(X, mode, pc, 1, cols)
        pooled_mean = pm[0] / max(pn[0], 1)
    return means_all, slots, pooled_mean


def _name_clones(
    pending, slots, means_all, pooled_mean, tree_rows, gene_arm, arm_labels, n_obs, min_arm_shift, max_pval
):
    """Clone labels of the cells (also written into ``tree_rows``), clone rows and arm-call rows:
    ``(labels, clone rows, call rows)``.
    """
    n_tests = len(arm_labels)
    labels = np.full(n_obs, NOT_MALIGNANT, dtype=object)
    clone_rows, call_rows = [], []
    for (s, leaves, ref_idx, _), (leaf_ids, ref_id) in zip(pending, slots):
        ref_mean = means_all[ref_id] if ref_id is not None else pooled_mean
        for k, (node, ix) in enumerate(leaves, start=1):
            name = f"{s}_c{k}"
            labels[ix] = name
            for row in tree_rows:
                if row["node"] == f"{s}:{node}":
                    row["clone"] = name
            root_n = sum(len(v) for _, v in leaves)
            clone_rows.append({"clone": name, "sample": s, "n_cells": len(ix), "fraction": len(ix) / root_n})
            if len(ref_idx) >= 5:
                tab = arm_shifts(means_all[leaf_ids[k - 1]], ref_mean, gene_arm, arm_labels)
                padj = np.minimum(1.0, tab["pval"].to_numpy() * n_tests)
                sh = tab["shift"].to_numpy()
                call = np.where(
                    (padj <= max_pval) & (sh >= min_arm_shift),
                    "gain",
                    np.where((padj <= max_pval) & (sh <= -min_arm_shift), "loss", "neutral"),
                )
                call_rows += [
                    {"clone": name, "sample": s, "arm": arm, "call": c, "shift": float(x), "padj": float(p)}
                    for arm, c, x, p in zip(arm_labels, call, sh, padj)
                ]
    return labels, clone_rows, call_rows


def _best_split(idx, F, Q1, Q2, F_odd, As, lin_odd, odd_arm, arm_labels, min_size, min_shift, max_pval, seed):
    """The candidate split of cells ``idx`` with the strongest gene-level evidence, reassigned; else None.

    Candidates: k-means on all arms of ``F`` and, for every arm, a two-component Gaussian
    mixture on that arm (median split when a part would be too small). All candidates are
    tested at once with one sparse product over the node's cells on the held-out genes
    (``lin_odd``: linear normalised expression of those genes for the malignant cells, and the
    position of every cell in it).
    """
    from scipy.stats import norm
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    Fi = F[idx]
    cands = [KMeans(2, n_init=3, random_state=seed).fit_predict(Fi)]
    tested = [np.ones(Fi.shape[1], bool)]  # the hypotheses each candidate is tested for
    # arms ranked by clone signal: covariance of two independent gene quarters over their noise
    q1, q2 = Q1[idx], Q2[idx]
    signal = ((q1 - q1.mean(axis=0)) * (q2 - q2.mean(axis=0))).mean(axis=0)
    noise = (q1 - q2).var(axis=0) / 4
    snr = np.divide(signal, noise, out=np.zeros_like(signal), where=noise > 0)
    for j in np.argsort(-snr)[:MAX_ARM_CANDIDATES]:
        if snr[j] <= 0.05:
            break
        x = Fi[:, j : j + 1]
        lab = GaussianMixture(2, n_init=2, random_state=seed).fit(x).predict(x)
        if min(lab.sum(), len(lab) - lab.sum()) < min_size:
            lab = (x[:, 0] > np.median(x)).astype(int)
        cands.append(lab)
        tested.append(np.arange(Fi.shape[1]) == j)
    L = np.column_stack(cands).astype(bool)  # cells x candidates: True = part b
    sizes_b = L.sum(axis=0)
    ok = (sizes_b >= min_size) & (len(idx) - sizes_b >= min_size)
    if not ok.any():
        return None
    n_cands = int(ok.sum())
    lin, pos = lin_odd
    Xn = lin[pos[idx]]
    Fo = F_odd[idx]
    order = []
    for c in np.flatnonzero(ok):
        inb = L[:, c]
        # cells as replicates: Welch t of the held-out genes' arm means between the parts;
        # a candidate proposed along one arm is tested on that arm only (a hypothesis fixed
        # before the held-out genes are seen), the k-means candidate on every arm
        xa, xb = Fo[~inb], Fo[inb]
        se = np.sqrt(xa.var(axis=0, ddof=1) / len(xa) + xb.var(axis=0, ddof=1) / len(xb))
        t = np.divide(xa.mean(axis=0) - xb.mean(axis=0), se, out=np.zeros(Fo.shape[1]), where=se > 0)
        padj = np.where(tested[c], np.minimum(1.0, 2 * norm.sf(np.abs(t)) * tested[c].sum() * n_cands), 1.0)
        if (padj <= max_pval).any():
            order.append((padj.min(), c, padj <= max_pval))
    for _, c, sig in sorted(order, key=lambda o: o[0]):
        lab = L[:, c].astype(int)
        a, b = idx[lab == 0], idx[lab == 1]
        # reassign along the separating arms with the proposing half of the genes only: the
        # held-out genes must not see the assignment before they test it
        lab, purity = _reassign(Fi, lab, sig, min_size, seed)
        if purity < MIN_PURITY:  # the mixture sees no two populations along these arms
            continue
        a, b = idx[lab == 0], idx[lab == 1]
        # genes as replicates: the bulk of the arm's genes must move, not a program of a few
        sb = np.asarray(Xn[lab == 1].mean(axis=0)).ravel()
        sa = np.asarray(Xn[lab == 0].mean(axis=0)).ravel()
        # mixture-corrected: impure parts dilute the difference of their means by
        # 1 - e_a - e_b (the expected shares of each part that belong to the other)
        shift = arm_shifts(sa, sb, odd_arm, arm_labels)["shift"].to_numpy() / purity
        sig = sig & (np.abs(shift) >= min_shift)
        if sig.any():
            # other arms that separate the two parts (tested on all arms: the parts were formed
            # on the separating arms only), then one more reassignment with all of them
            xa, xb = Fo[lab == 0], Fo[lab == 1]
            se = np.sqrt(xa.var(axis=0, ddof=1) / len(xa) + xb.var(axis=0, ddof=1) / len(xb))
            t = np.divide(xa.mean(axis=0) - xb.mean(axis=0), se, out=np.zeros(Fo.shape[1]), where=se > 0)
            more = (2 * norm.sf(np.abs(t)) * Fo.shape[1] <= max_pval) & (np.abs(shift) >= min_shift) & ~sig
            sig = sig | more
            # the split is accepted: final assignment along all separating arms with all genes
            lab, _ = _reassign(As[idx], lab, sig, min_size, seed)
            a, b = idx[lab == 0], idx[lab == 1]
            arms = ",".join(f"{arm}{'+' if sh > 0 else '-'}" for arm, sh in zip(arm_labels[sig], shift[sig]))
            return a, b, arms
    return None


def _reassign(
    F: np.ndarray, lab: np.ndarray, arms: np.ndarray, min_size: int, seed: int
) -> tuple[np.ndarray, float]:
    """Two-component Gaussian mixture along the difference of the parts' means on ``arms``.

    Returns the new labels (``lab`` unchanged when a part would fall below ``min_size``) and
    the parts' expected purity factor ``1 - e_a - e_b`` from the mixture's posteriors, where
    ``e_a`` is the mean posterior of the other component among the cells of part a.
    """
    from sklearn.mixture import GaussianMixture

    w = np.where(arms, F[lab == 0].mean(axis=0) - F[lab == 1].mean(axis=0), 0.0)
    proj = (F @ w)[:, None]
    init = [[proj[lab == 0].mean()], [proj[lab == 1].mean()]]
    gm = GaussianMixture(2, random_state=seed, means_init=init).fit(proj)
    new = gm.predict(proj)
    if min(new.sum(), len(new) - new.sum()) < min_size:
        new = lab
    post = gm.predict_proba(proj)
    e_a = post[new == 0, 1].mean()
    e_b = post[new == 1, 0].mean()
    return new, float(max(1.0 - e_a - e_b, 0.0))
