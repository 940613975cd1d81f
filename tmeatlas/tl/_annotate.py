"""Compartments and cell types from the shipped marker library: ``tm.tl.annotate``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._core.chunks import is_streamed, row_blocks
from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError
from .._keys import OBS, OBSM, UNS
from .._settings import logger, settings
from .._store import store
from .._validation import check_expression_values, check_obs_key, get_matrix, start

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["MAJOR_TYPES", "COMPARTMENTS", "annotate", "marker_table"]

#: the fixed vocabulary of ``obs["cell_type_major"]``
MAJOR_TYPES = [
    "Malignant", "T cell", "NK cell", "B cell", "Plasma cell", "Myeloid", "Mast cell",
    "Fibroblast", "Endothelial", "Pericyte", "Epithelial", "Oligodendrocyte", "OPC", "Astrocyte", "Neuron",
    "Melanocyte", "Unassigned",
]  # fmt: skip
#: the vocabulary of ``obs["compartment"]``; "parenchyma": tissue cells that are neither epithelial,
#: immune nor stromal (the glia and neurons of the brain, the melanocytes of the skin)
COMPARTMENTS = ["malignant", "immune", "stromal", "epithelial", "parenchyma", "unassigned"]
UNASSIGNED = "Unassigned"
#: fine label of epithelial cells whose CNV call is "uncertain"
EPI_UNCERTAIN = "epithelium (CNV uncertain)"
_MAJOR_COMPARTMENT = {
    "Malignant": "malignant", "T cell": "immune", "NK cell": "immune", "B cell": "immune",
    "Plasma cell": "immune", "Myeloid": "immune", "Mast cell": "immune", "Fibroblast": "stromal",
    "Endothelial": "stromal", "Pericyte": "stromal", "Epithelial": "epithelial", "Oligodendrocyte": "parenchyma",
    "OPC": "parenchyma", "Astrocyte": "parenchyma", "Neuron": "parenchyma", "Melanocyte": "parenchyma",
    UNASSIGNED: "unassigned",
}  # fmt: skip
#: lineage of each major type for the doublet flag: a cell that co-expresses the defining markers of
#: two lineages holds two cells' programs (related types share a lineage: B and plasma cells; mast
#: cells, which come from myeloid progenitors and share monocyte genes such as LYZ, with myeloid cells)
_DOUBLET_LINEAGE = {
    "T cell": "T/NK", "NK cell": "T/NK", "B cell": "B/plasma", "Plasma cell": "B/plasma", "Myeloid": "myeloid",
    "Mast cell": "myeloid", "Fibroblast": "mesenchymal", "Pericyte": "mesenchymal", "Endothelial": "endothelial",
    "Epithelial": "epithelial", "Malignant": "epithelial", "Oligodendrocyte": "glia", "OPC": "glia",
    "Astrocyte": "glia", "Neuron": "neuron", "Melanocyte": "melanocyte",
}  # fmt: skip
#: confidence of a cell flagged as a possible doublet is at most this
DOUBLET_MAX_CONFIDENCE = 0.5
#: with ``tissue_types=None``, a tissue-restricted major type (library column ``tissue``) is scored
#: only when at least this share of its positive markers is measured ...
TISSUE_MIN_COVERAGE = 0.5
#: ... and at least this share of the cells (and at least ``MIN_SEEDS`` cells) are labelled with it
#: by their marker scores and co-express ``min_markers`` of its defining markers; a tissue-restricted
#: fine type when a major type of its tissue is, or when the same holds for it among the cells of
#: its major type
TISSUE_MIN_SHARE = 0.01
#: ... and its defining markers must go together across cells, with a mean pairwise odds ratio of
#: detection of at least this: the markers of a population are detected in the same cells, stray
#: reads and broadly detected noise independently of each other (odds ratio about 1)
TISSUE_MIN_ODDS_RATIO = 3.0
#: columns of ``uns[key_added]["tissue_gate"]``: per tissue-restricted type, the cells that carry
#: it (-1: too few of its markers measured), the cells it is counted among, the mean pairwise odds
#: ratio of detection of its defining markers (NaN: not measured), the share of cells, the verdict
GATE_COLUMNS = ("cell_type", "level", "tissue", "n_cells", "n_reference", "odds_ratio", "share", "kept")


def _mean_odds_ratio(on: sparse.spmatrix) -> float:
    """Geometric mean over pairs of columns of the odds ratio of detection across cells (Haldane's 0.5
    added to each cell of the 2 x 2 table); columns detected in no cell or in every cell carry no
    information and are left out. ``inf`` when fewer than two columns vary: nothing to test.
    """
    on = sparse.csc_matrix(on, dtype=np.float64)
    n = on.shape[0]
    a = np.asarray(on.sum(axis=0)).ravel()
    keep = (a > 0) & (a < n)
    if keep.sum() < 2:
        return np.inf
    on, a = on[:, keep], a[keep]
    both = (on.T @ on).toarray()
    i, j = np.triu_indices(len(a), 1)
    n11 = both[i, j]
    n10, n01 = a[i] - n11, a[j] - n11
    n00 = n - n11 - n10 - n01
    lor = np.log(n11 + 0.5) + np.log(n00 + 0.5) - np.log(n10 + 0.5) - np.log(n01 + 0.5)
    return float(np.exp(lor.mean()))


def _population_needed(n_reference: int) -> float:
    """Fewest cells that make a population of a tissue-restricted type among ``n_reference`` cells."""
    return max(MIN_SEEDS, TISSUE_MIN_SHARE * n_reference)


def marker_table(markers=None) -> pd.DataFrame:
    """The marker library as a tidy table, or a user's markers in the same shape.

    ``markers`` may be ``None`` (the shipped library), a DataFrame with the library's columns
    (``cell_type``, ``cell_type_major``, ``level``, ``gene``, ``direction``; ``compartment``,
    ``source``, ``role`` and ``tissue`` optional — without ``role``, no marker is defining and every
    positive marker counts alike; without ``tissue``, no type is tissue-restricted), or a dict
    ``{cell_type: [genes]}`` / ``{cell_type: {"+": [...], "-": [...]}}`` of major types (a dict's
    keys must be names of the fixed major vocabulary, or the cell types become both their own
    major and fine type).
    """
    if markers is None:
        from ..datasets._markers import library

        return library()
    if isinstance(markers, pd.DataFrame):
        need = {"cell_type", "cell_type_major", "level", "gene", "direction"}
        if not need <= set(markers.columns):
            raise InvalidParameterError(
                f"a marker table needs the columns {sorted(need)}; got {list(markers.columns)}."
            )
        df = markers.copy()
    elif isinstance(markers, dict):
        rows = []
        for ct, genes in markers.items():
            pos, neg = (genes.get("+", []), genes.get("-", [])) if isinstance(genes, dict) else (genes, [])
            if isinstance(pos, str) or isinstance(neg, str):
                raise InvalidParameterError(f"markers of {ct!r} must be a list of genes, not a string.")
            for level in ("major", "fine"):
                rows += [(ct, ct, level, g, "+") for g in pos] + [(ct, ct, level, g, "-") for g in neg]
        df = pd.DataFrame(rows, columns=["cell_type", "cell_type_major", "level", "gene", "direction"])
    else:
        raise InvalidParameterError(
            f"markers must be None, a DataFrame or a dict, got {type(markers).__name__}."
        )
    if df.empty:
        raise InvalidParameterError("the marker table is empty.")
    if not df["direction"].isin(["+", "-"]).all() or not df["level"].isin(["major", "fine"]).all():
        raise InvalidParameterError("marker `direction` must be '+' or '-' and `level` 'major' or 'fine'.")
    if "compartment" not in df:
        df["compartment"] = df["cell_type_major"].map(_MAJOR_COMPARTMENT).fillna("unassigned")
    if "source" not in df:
        df["source"] = "user"
    if "role" not in df:  # no defining markers: every positive marker counts alike
        df["role"] = ""
    return df.astype(str)


def _symbols(var_names: pd.Index) -> np.ndarray:
    """Current HGNC symbol of every gene of the data (empty string where unknown)."""
    from .._resources import gene_names, gene_table
    from ..pp._gene_positions import _detect_id_type, _match

    ids = pd.Index(var_names.astype(str))
    kind = _detect_id_type(ids)
    if kind in ("symbol_mouse_like", "ensembl_nonhuman"):
        raise InvalidInputError(
            "the gene identifiers look non-human (e.g. mouse 'Cd3e' or ENSMUSG IDs); the shipped marker "
            "library is human. Map genes to human orthologs first, or pass your own `markers=`."
        )
    sym, _ = _match(ids, kind, gene_table(), gene_names(), case_insensitive=True)
    out = sym.fillna("").to_numpy().astype(object)
    # genes the table does not know (user markers may name them): keep the data's own name
    miss = out == ""
    out[miss] = ids[miss]
    return out


def _marker_counts(X, cols: np.ndarray, chunk: int) -> tuple[sparse.csr_matrix, np.ndarray, str]:
    """Marker genes ``cols`` as (pseudo-)counts and each cell's factor to the normalised scale.

    Returns ``(Y, f, mode)``: ``f * Y`` is counts per 10,000 for count input (``f = 1e4 / n_c``,
    ``n_c`` the cell's total over all genes), ``expm1`` of log-normalised input (``f = 1``), or
    linear normalised input as it is. ``X`` may be in memory or streamed (Dask, backed): it is
    read one row block at a time.
    """
    from .._core.expression import MODE_NAMES, input_mode

    if not is_streamed(X):
        if sparse.issparse(X):
            X = X.tocsr() if not isinstance(X, sparse.csr_matrix | sparse.csr_array) else X
        else:
            X = np.asarray(X)
        check_expression_values(X)
    mode = MODE_NAMES[input_mode(X)]
    parts, factors = [], []
    for _, _, B in row_blocks(X, chunk):
        if is_streamed(X):
            check_expression_values(B)
        for s in range(0, B.shape[0], chunk):
            Xc = sparse.csr_matrix(B[s : s + chunk], dtype=np.float64)
            Y = sparse.csr_matrix(Xc[:, cols])
            if mode == "counts":
                lib = np.asarray(Xc.sum(axis=1)).ravel()
                factors.append(np.divide(1e4, lib, out=np.zeros_like(lib), where=lib > 0))
            else:
                factors.append(np.ones(Xc.shape[0]))
                if mode == "log":
                    Y.data = np.expm1(Y.data)
            Y.eliminate_zeros()
            parts.append(Y)
    return sparse.vstack(parts, format="csr"), np.concatenate(factors), mode


def _log_normalised(Y: sparse.csr_matrix, f: np.ndarray) -> sparse.csr_matrix:
    """``log1p(f * Y)``: the log-normalised expression of the marker genes."""
    E = sparse.csr_matrix(sparse.diags(f) @ Y)
    E.data = np.log1p(E.data)
    E.eliminate_zeros()
    return E


def _background(Y: sparse.csr_matrix, f: np.ndarray, labels: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Background (ambient) level of every marker in every sample, on the normalised scale.

    Cells are grouped by sample and provisional major type (``labels``, -1: none); the
    background of a gene in a sample is the lower median, over the sample's groups of at least
    ``MIN_SEEDS`` cells, of the group's mean normalised expression. A marker is expressed by a
    minority of populations, so the middle group carries only what every droplet of the sample
    picks up from the ambient pool (and what all populations share). Samples with fewer than
    two groups get no background. Returns samples x genes.
    """
    n_s = int(samples.max()) + 1 if len(samples) else 0
    out = np.zeros((n_s, Y.shape[1]))
    keep = labels >= 0
    if not keep.any():
        return out
    combo, uniq = pd.factorize(pd.MultiIndex.from_arrays([samples[keep], labels[keep]]))
    size = np.bincount(combo)
    G = sparse.csr_matrix((np.ones(keep.sum()), (combo, np.flatnonzero(keep))), shape=(len(uniq), Y.shape[0]))
    means = np.asarray((G @ (sparse.diags(f) @ Y)).todense()) / size[:, None]
    of_sample = np.asarray([s for s, _ in uniq])
    for s in range(n_s):
        rows = np.flatnonzero((of_sample == s) & (size >= MIN_SEEDS))
        if len(rows) >= 2:
            out[s] = np.sort(means[rows], axis=0)[(len(rows) - 1) // 2]
    return out


def _decontaminate(
    Y: sparse.csr_matrix, f: np.ndarray, bg: np.ndarray, samples: np.ndarray
) -> sparse.csr_matrix:
    """Subtract each cell's expected background, ``max(y_gc - b_gs / f_c, 0)`` (b: :func:`_background`)."""
    Yd = Y.tocsr(copy=True)
    row = np.repeat(np.arange(Y.shape[0]), np.diff(Yd.indptr))
    inv = np.divide(1.0, f, out=np.zeros_like(f), where=f > 0)
    Yd.data = np.maximum(Yd.data - bg[samples[row], Yd.indices] * inv[row], 0.0)
    Yd.eliminate_zeros()
    return Yd


def _on_scale(E: sparse.csr_matrix, quantile: float) -> sparse.csr_matrix:
    """``u_gc = min(x_gc / q_g, 1)`` with ``q_g`` the ``quantile`` of the gene's non-zero values."""
    q = _on_levels(E, quantile)
    U = E.copy()
    U.data = np.minimum(U.data / np.where(q > 0, q, 1.0)[U.indices], 1.0)
    return U


def _on_levels(E: sparse.csr_matrix, quantile: float) -> np.ndarray:
    """Per gene, the ``quantile`` of its non-zero values: the level of a cell where the gene is "on"."""
    Ec = E.tocsc()
    q = np.zeros(E.shape[1])
    for j in range(E.shape[1]):
        v = Ec.data[Ec.indptr[j] : Ec.indptr[j + 1]]
        if v.size:
            q[j] = np.quantile(v, quantile)
    return q


def _scores(U: sparse.csr_matrix, table: pd.DataFrame, gene_col: dict[str, int], types: list[str]):
    """Per cell and type: mean on-ness of the positive markers minus that of the negative ones.

    Returns ``(S, coverage, decisive, defining)``: scores (cells x types); per type, the
    fraction of its positive markers that were measured; whether the type can be decided at all
    (False when it lists defining markers, ``role == "defining"``, and none of them was
    measured: supporting markers that other lineages share cannot identify it); and per cell
    and type the on-ness of its most expressed defining marker (1 for a type without any).
    """
    n = len(gene_col)
    Wp = np.zeros((n, len(types)))
    Wn = np.zeros((n, len(types)))
    coverage = np.zeros(len(types))
    decisive = np.ones(len(types), dtype=bool)
    gates: dict[int, list[int]] = {}
    for k, t in enumerate(types):
        sub = table[table["cell_type"] == t]
        pos = sub.loc[sub["direction"] == "+", "gene"].unique()
        neg = sub.loc[sub["direction"] == "-", "gene"].unique()
        dfn = sub.loc[(sub["direction"] == "+") & (sub["role"] == "defining"), "gene"].unique()
        pj = [gene_col[g] for g in pos if g in gene_col]
        nj = [gene_col[g] for g in neg if g in gene_col]
        coverage[k] = len(pj) / max(len(pos), 1)
        if pj:
            Wp[pj, k] = 1.0 / len(pj)
        if nj:
            Wn[nj, k] = 1.0 / len(nj)
        if len(dfn):
            gates[k] = [gene_col[g] for g in dfn if g in gene_col]
            decisive[k] = bool(gates[k])
    S = np.asarray(U @ Wp) - np.asarray(U @ Wn)
    D = np.ones_like(S)
    Uc = U.tocsc()
    for k, dj in gates.items():
        D[:, k] = Uc[:, dj].max(axis=1).toarray().ravel() if dj else 0.0
    return S, coverage, decisive, D


def _pick(S: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best and runner-up allowed type per row: ``(best index, best score, margin)``."""
    Sm = np.where(allowed, S, -np.inf)
    if Sm.shape[1] == 1:
        best = np.zeros(len(Sm), dtype=np.int64)
        top = Sm[:, 0]
        return best, top, np.where(np.isfinite(top), np.abs(top), 0.0)
    part = np.argsort(-Sm, axis=1)[:, :2]
    best = part[:, 0]
    top = np.take_along_axis(Sm, part[:, :1], axis=1)[:, 0]
    second = np.take_along_axis(Sm, part[:, 1:2], axis=1)[:, 0]
    second = np.where(np.isfinite(second), second, np.minimum(top, 0.0))
    return best, top, top - second


def _class_sums(X, mode: str, codes: np.ndarray, n_classes: int, chunk: int) -> np.ndarray:
    """Summed (pseudo-)counts per class over all genes: one pass over the cells, chunked."""
    out = np.zeros((n_classes, X.shape[1]))
    for s in range(0, X.shape[0], chunk):
        c = codes[s : s + chunk]
        keep = np.flatnonzero(c >= 0)
        if len(keep) == 0:
            continue
        Xc = _pseudo_counts(X[s : s + chunk], mode)[keep]
        G = sparse.csr_matrix(
            (np.ones(len(keep)), (c[keep], np.arange(len(keep)))), shape=(n_classes, len(keep))
        )
        out += np.asarray((G @ Xc).todense())
    return out


def _pseudo_counts(Xc, mode: str) -> sparse.csr_matrix:
    """Counts as they are; log-normalised values back on the linear (CP10k) scale."""
    Xc = sparse.csr_matrix(Xc, dtype=np.float64)
    if mode == "log":
        Xc.data = np.expm1(Xc.data)
    return Xc


def _naive_bayes(X, mode: str, rows: np.ndarray, seeds: np.ndarray, n_classes: int, chunk: int, groups=None):
    """Multinomial naive Bayes trained on seed cells, applied to ``rows``.

    ``seeds`` holds a class code per row of ``X`` (-1: not a seed). Class profiles are the seeds'
    summed counts with an additive prior of half a median cell spread as the pooled profile,
    ``theta_t = (S_t + beta p_0) / (sum S_t + beta)``; classes have equal prior weight. Returns
    per row: class, posterior of that class (of its group, when ``groups`` gives a group code per
    class), and a novelty z-score (the cell's log-likelihood
    per count under its class against the expectation and spread of a multinomial draw from
    it, ``z = (ll / n + H_t) / sqrt(V_t / n)``).
    """
    S = _class_sums(X, mode, seeds, n_classes, chunk)
    tot = S.sum(axis=1)
    lib_seed = np.bincount(seeds[seeds >= 0], minlength=n_classes)
    beta = 0.5 * np.median(tot / np.maximum(lib_seed, 1))
    p0 = S.sum(axis=0) / max(S.sum(), 1e-12)
    theta = (S + beta * p0[None, :] + 1e-12) / (tot[:, None] + beta)
    logt = np.log(theta)
    H = -(theta * logt).sum(axis=1)
    V = np.maximum((theta * logt**2).sum(axis=1) - H**2, 1e-12)
    pred = np.zeros(len(rows), dtype=np.int64)
    post = np.zeros(len(rows))
    z = np.zeros(len(rows))
    for s in range(0, len(rows), chunk):
        r = rows[s : s + chunk]
        Xc = _pseudo_counts(X[r], mode)
        ll = np.asarray(Xc @ logt.T)
        n = np.asarray(Xc.sum(axis=1)).ravel()
        k = ll.argmax(axis=1)
        lse = ll.max(axis=1) + np.log(np.exp(ll - ll.max(axis=1, keepdims=True)).sum(axis=1))
        pred[s : s + chunk] = k
        P = np.exp(ll - lse[:, None])
        if groups is not None:  # posterior of the group of the best class
            P = P @ (groups[:, None] == groups[None, :])
        post[s : s + chunk] = P[np.arange(len(r)), k]
        nn = np.maximum(n, 1e-12)
        z[s : s + chunk] = (ll[np.arange(len(r)), k] / nn + H[k]) / np.sqrt(V[k] / nn)
    return pred, post, z


@doc_params("copy", "layer", "chunk_size")
def annotate(
    adata: AnnData,
    *,
    groupby: str | None = None,
    markers: pd.DataFrame | dict | None = None,
    sample_key: str | None = None,
    layer: str | None = None,
    malignant_key: str = OBS.malignant,
    smooth: str | None = "auto",
    min_score: float = 0.1,
    min_markers: int = 2,
    on_quantile: float = 0.9,
    background: bool = True,
    refine: bool = True,
    tissue_types: bool | None = None,
    modality: str = "auto",
    chunk_size: int | None = None,
    key_added: str = UNS.annotate,
    copy: bool = False,
) -> AnnData | None:
    r"""Place every cell in a compartment, a major type and a fine type, with a confidence.

    **Background.** Droplets carry ambient RNA: immunoglobulin transcripts of plasma cells,
    tryptase of mast cells and collagen of fibroblasts appear at low level in every cell of a
    sample. With ``background`` (default), each sample's background level of every marker is
    estimated from the sample's own cells, grouped by their provisional major type (the
    scores below, before any correction): the lower median over the groups of the group's mean
    expression, ``b_gs`` (a marker is expressed by a minority of populations, so the middle group
    holds only what every droplet picks up; SoupX, Young & Behjati, GigaScience 9:giaa151, 2020,
    estimates the ambient pool from the same idea). Marker evidence is what a cell holds beyond
    it: counts ``max(y_gc - b_gs n_c / 10^4, 0)`` (``n_c`` the cell's library size). The scores and
    the choice of training cells use this evidence; the classifier learns the rest of the
    ambient profile per class from the counts as they are.

    **Marker scores.** Expression is ``log1p`` of counts per 10,000 (log-normalised input is
    used as is). Each marker gene ``g`` is put on a common scale by its "on" level ``q_g``, the
    ``on_quantile`` of its non-zero values in the data: ``u_gc = min(x_gc / q_g, 1)``, so a
    marker counts 1 in a cell that expresses it like the cells that carry it, whatever its
    absolute level. A type's score is

    .. math:: S_{tc} = \frac{1}{|P_t|}\sum_{g \in P_t} u_{gc} - \frac{1}{|N_t|}\sum_{g \in N_t} u_{gc}

    over its measured positive (``P_t``) and negative (``N_t``) markers, in [-1, 1]: the share of
    the type's markers that are on, penalised by markers it must not express (positive/negative
    marker scoring as in scType, Ianevski et al., Nat Commun 13:1246, 2022, with a
    composition-independent gene scale). With a neighbour graph (``smooth="auto"`` and
    ``obsp["connectivities"]``, e.g. from ``sc.pp.neighbors``) scores are averaged with the
    cell's neighbours, ``S <- (S + A S) / 2`` with ``A`` the row-normalised graph.

    **Defining markers.** The library marks the markers that identify a lineage on their own
    (``role == "defining"``: CD3D/E/G and the TCR constant chains for T cells; MS4A1, CD19,
    CD79B, BANK1, PAX5 for B cells against MZB1, JCHAIN, TNFRSF17, DERL3, SDC1 for plasma cells,
    never immunoglobulin counts; TPSAB1/TPSB2, CPA3, MS4A2, HDC for mast cells; RGS5, KCNJ8,
    ABCC9, HIGD1B for pericytes against DCN, LUM, PDGFRA and collagens for fibroblasts; ...) from
    the supporting markers that other lineages share (GATA2, HPGDS, XBP1, PRDM1, NOTCH3; NCAM1,
    CD22 and KIT, which neurons and glia express, ...). A
    type none of whose defining markers is measured is never predicted, and a cell trains the
    classifier for a type only when one of its defining markers and at least ``min_markers`` of
    its markers (all of them when fewer are measured) are above background.

    **Major type.** Each cell takes the major type with the highest score (``Unassigned``
    below ``min_score``). With ``refine`` (default), the major type is then decided by a
    classifier of the cell's whole marker profile trained on the cells the markers label most
    clearly, as Garnett does with marker-selected training cells (Pliner et al., Nat Methods
    16:983, 2019): a multinomial naive Bayes over the measured marker genes, one class per
    fine type (a major type such as Myeloid holds several populations), trained on the half
    of each type's marker-labelled cells with the largest score margin (among those with the
    corroborated evidence above), with equal class
    priors; the major type is that of the most likely class. It learns how strongly each
    marker is expressed, and how much it leaks into other cells, in this data set. A cell is
    ``Unassigned`` when it fits nothing: far less likely under its class than that class's
    training cells (novelty z-score more than 5 robust standard deviations below theirs), or
    claimed by no marker set and scoring below ``min_score / 2`` on its class's markers.
    With ``groupby``, scores are averaged per group (cluster consensus, no classifier) and
    every cell of a group gets its group's labels.

    **Fine type.** The fine type with the highest marker score within the major type.

    **Tissue-restricted types.** The library holds the parenchyma of the brain (compartment
    ``"parenchyma"``: ``Oligodendrocyte``, ``OPC``, ``Astrocyte``, ``Neuron``; Darmanis et al.,
    PNAS 112:7285, 2015; Zhang et al., Neuron 89:37, 2016) and microglia as a fine type of
    ``Myeloid`` (Bennett et al., PNAS 113:E1738, 2016; Gosselin et al., Science 356:eaal3222, 2017),
    and the normal cells of common tumour sites: liver ``hepatocyte``, ``cholangiocyte`` and
    ``Kupffer cell`` (MacParland et al., Nat Commun 9:4383, 2018; Aizarani et al., Nature 572:199,
    2019), lung ``alveolar type I``, ``alveolar type II`` and ``ciliated`` cells (Travaglini et al.,
    Nature 587:619, 2020), skin ``keratinocyte`` and ``Melanocyte`` (Reynolds et al., Science
    371:eaba6500, 2021), ``breast luminal HR`` and ``breast basal/myoepithelial`` cells (Kumar et
    al., Nature 620:181, 2023; Nguyen et al., Nat Commun 9:2028, 2018), ``prostate luminal`` and
    ``prostate basal`` cells (Henry et al., Cell Rep 25:3530, 2018), colon ``enterocyte`` and
    ``goblet`` cells (Smillie et al., Cell 178:714, 2019) and kidney ``proximal tubule`` cells
    (Young et al., Science 361:594, 2018; Lake et al., Nature 619:585, 2023), each marked with its
    organ in the library's ``tissue`` column. Epithelial tissue cells (hepatocytes included) are
    fine types of ``Epithelial``, Kupffer cells of ``Myeloid``, so the major vocabulary and its
    accuracy stay as they are and normal epithelium gets a specific label where its organ's cells
    are there; hepatocytes keep KRT8/KRT18 of the epithelial genes (EPCAM-, KRT19-), which places
    them with ``Epithelial`` (the classifier below learns their ALB/APO profile from the clearest
    of them), while ALB or APO reads never count for the major type, so ambient hepatocyte RNA
    makes no cell epithelial. Melanocytes are neither epithelial nor immune or stromal: a major
    type ``Melanocyte`` of the parenchyma; melanoma cells look melanocytic and are ``Malignant``
    only through the CNV calls, as glioma cells resemble OPCs and astrocytes.

    Unlike the immune and stromal cells of every tumour these cells live in one organ, and
    sporadic reads of their genes elsewhere (PLP1 or MAG in ovarian carcinoma cells, TMEM119 in
    fibroblasts, ESR1 in ovarian cancer) would look "on" on the scale above. With
    ``tissue_types=None`` they are therefore scored only where the data hold a population of them:
    at least half of the type's positive markers measured, and at least 1 % (and at least 5) of the
    reference cells score it best and co-express ``min_markers`` of its defining markers (PLP1,
    MOBP, MOG, MAG, UGT8, ERMN for oligodendrocytes; OLIG1, OLIG2, PCDH15, TNR for OPCs; AQP4, GFAP,
    ETNPPL, SLC1A2 for astrocytes; SNAP25, SYT1, STMN2 for neurons; PMEL, MLANA, TYRP1, DCT for
    melanocytes; ALB, APOH, FGB for hepatocytes; SCTR, CFTR for cholangiocytes; CD5L, MARCO, VCAM1
    for Kupffer cells; AGER, RTKN2, CLIC5 and SFTPC, LAMP3, ABCA3 for alveolar type I and II cells;
    FOXJ1, CAPS, RSPH1 for ciliated cells; KRT1, KRT10, KRTDAP, DMKN for keratinocytes; ANKRD30A,
    ESR1, PGR and OXTR, MYH11, MYLK for breast luminal and basal cells; KLK3, KLK2, MSMB for prostate
    luminal cells; CA1, SLC26A3, AQP8 and MUC2, ZG16, CLCA1 for enterocytes and goblet cells; LRP2,
    CUBN, SLC34A1 for proximal tubule cells). The reference cells of a major type are all cells;
    those of a fine type the cells whose provisional major type is its major type (with their fine
    type chosen among that major type's fine types, the carcinoma program included without CNV
    calls). A fine type without defining markers (microglia; prostate basal cells, whose KRT5,
    KRT15, TP63 mark every basal epithelium) is scored when a type of its organ is. The defining
    markers of a population are also detected *together*: their mean pairwise odds ratio of
    detection across all cells must reach 3 (stray reads and broadly detected noise come
    independently, odds ratio about 1; the markers of a population go together). A population,
    not stray reads (targeted panels with fewer of these genes need ``tissue_types=True``); the
    counts are recorded in ``uns[key_added]["tissue_gate"]``. A cell takes a tissue fine type only
    when it co-expresses ``min_markers`` of its defining markers as well (its score is lowered by 2
    otherwise): supporting genes that other epithelia share (EPCAM, KRT19, KRT5, KRT14) never make a
    carcinoma cell a cholangiocyte or a basal cell.

    **Malignant cells.** Calls in ``obs[malignant_key]`` (from
    :func:`~tmeatlas.tl.call_malignant`) take precedence: "malignant" cells are ``Malignant``
    (confidence = ``malignant_prob``); epithelial cells called "non-malignant" keep their tissue
    type (``alveolar type II``, ...) or are ``"normal epithelium"``; epithelial cells with an
    "uncertain" call are labelled ``"epithelium (CNV uncertain)"``. Without CNV calls, epithelial cells whose carcinoma
    genes (CEACAM5/6, MDK, AGR2, S100P, CRABP2, KRT81) outscore the normal-epithelium
    genes are reported as ``Malignant`` with the caveat recorded in
    ``uns[key_added]["malignant_source"] = "markers"`` and a warning: markers suggest, only
    copy number shows, malignancy.

    **Doublets.** A droplet can hold two cells. A cell is flagged in ``obs["cell_type_doublet"]``
    when it shows the defining markers of two lineages (T/NK, B/plasma, myeloid with mast cells,
    mesenchymal, endothelial, epithelial with the carcinoma program, glia, neurons,
    melanocytes): as many of a lineage's defining markers on, above background, as the median
    cell labelled with that lineage (at least ``min_markers``), which stray reads and partial
    programs rarely reach. Its labels stay those of its best type (flagged, not forced; doublet
    detectors such as scDblFinder, Germain et al., F1000Research 10:979, 2021, or removal by
    the user can decide) and its confidence is at most 0.5. Homotypic doublets (two cells of one
    lineage) are not seen. ``uns[key_added]["doublet_pairs"]`` counts the cells per pair of
    lineages.

    **Panels and confidence.** Only measured markers count. A type needs at least
    ``min_markers`` measured positive markers to be predicted at all (a type whose markers are
    all missing is never predicted). The confidence is, for the major type, the classifier's
    posterior (without ``refine``: the marker-score margin over the runner-up relative to the
    top score, ``(S_1 - S_2) / S_1``), lowered when the marker call disagrees (times
    ``1 - margin``; 0.5 when the markers left the cell unassigned), times the fine type's
    relative margin, times the square root of the fraction of the chosen types' positive
    markers that were measured; in [0, 1].

    **Protein panels** (multiplexed imaging: CyCIF, CODEX, IMC, MIBI, multiplex immunofluorescence).
    With ``modality="auto"`` a matrix of at most 200 features, under 30 % exact zeros, with
    mostly non-integer values and at least two channels named by antigens of the protein library
    (CD3, CD8, CD45, PanCK/CK, aSMA, HLA-DR, ...; ``_data/protein_aliases.tsv``) is read as protein
    intensities. Each channel is put on its background scale within each sample: the background
    intensity is the lower component of a two-component mixture of the log intensities, the channel
    is read as ``log1p(x / background)``, centred at that scale's lower component and divided by its
    median absolute deviation, so a channel whose positive cells are the majority (keratin in a
    tumour field) is read like one whose positives are rare. A type's score is the weighted mean of
    its measured positive markers (defining 1, supporting 0.5) less the highest of its measured
    negative markers above background (a T cell is CD45+ CD3+ and not CD20+, CD68+ or keratin+;
    ``_data/markers_protein.tsv``, after Keren et al., Cell 2018, Schürch et al., Cell 2020,
    Jackson et al., Nature 2020 and the CD nomenclature); the best type wins when it scores at least
    one robust SD above background, otherwise the cell is Unassigned (tumour cells of types the
    library does not hold, e.g. the CD30+ cells of a lymphoma, mostly stay there). The confidence is
    the best score's margin over the best type of another major type, relative to the best score,
    times ``min(1, score / 2)`` (full only when the type's markers are two robust SDs above
    background, the level at which a channel counts as positive);
    a cell showing two lineages at three robust SDs (a doublet or spill-over across a segmentation
    border) is flagged in ``obs["cell_type_doublet"]`` with its confidence at most 0.5. Smoothing,
    ``groupby``, ``refine``, ``background`` and ``markers`` are for RNA and are not used.
    Measured (``benchmarks/realdata.py``): multiplex IF (akoyabio/phenoptr; CD8, FoxP3, CD68, CK)
    balanced accuracy 0.93 against the inForm phenotypes (0.0 when read as RNA), cells with
    confidence >= 0.8 0.995 correct; CyCIF lymphoma (scimap example, 33 antibodies) 0.54 against the
    authors' gates (B cells 1.0, T cells 0.64, myeloid 0.39, NK 0.0), 0.93 correct at confidence >=
    0.8, 76 % of the lymphoma cells Unassigned (``benchmarks/annotate_protein.py``).

    **Validation** (``tests/test_annotate.py``; ``benchmarks/annotate_accuracy.py``): simulated
    cohorts (with CNV calls) major-type accuracy 0.984-0.991, compartment 0.987-0.992, fine-type
    macro-F1 0.90-0.94;
    MERFISH lung (479 genes, 64 transcripts per cell) balanced accuracy 0.61 against the
    authors' seven broad types, where a supervised classifier trained on those labels reaches
    0.72 (cross-validated); ovarian cancer 10x (Qian 2020, 4 samples) balanced accuracy 0.96
    against the authors' six types (0.93 without CNV calls; supervised ceiling 0.99), B-lineage
    recall 0.93, and no carcinoma cell of three of the four samples is called an immune or
    stromal type; in the fourth, cancer cells in a mesenchymal state (collagens, no epithelial
    marker) are called fibroblasts unless copy number calls them malignant; neither set has a
    brain type scored. Oligodendroglioma (Tirosh 2016, Smart-seq2, 184 cells): 23 of 23 normal
    oligodendrocytes ``Oligodendrocyte`` (before the parenchyma types: 21 ``NK cell``), 19 of 19
    microglia ``Myeloid``, 16 of them with the fine type ``Microglia``. Tissue types on these sets
    (share of the reference cells that make a population, threshold 1 %): Qian 2020 ``ciliated``
    only (6.5-7.1 % of the provisional epithelial cells: ovarian cancer cells with the ciliated
    program, ``Malignant`` with CNV calls; every other type at most 0.4 %), breast (CopyKAT example,
    a triple-negative tumour without normal breast epithelium) none (keratinocyte 4 of 225 cells,
    below the 5-cell floor), MERFISH none (0 %), Tirosh the brain types only; the simulated cohorts
    hold Melanocyte genes as noise in every cell type (1.1 % on seed 0, 3 cells labelled).

    Parameters
    ----------
    adata
        Annotated data matrix (raw counts or log-normalised expression; HGNC symbols,
        Ensembl IDs or legacy symbols as ``var_names``).
    groupby
        Column of ``adata.obs`` with clusters: label clusters by consensus instead of cells.
    markers
        ``None`` for the shipped library (:func:`tmeatlas.datasets.markers`), a table of the
        same shape, or a dict ``{major type: [genes]}``.
    sample_key
        Column with the sample (patient, 10x channel): each sample's background is estimated on
        its own; also used for per-sample summaries.
    {layer}
    malignant_key
        Column with the CNV malignant calls.
    smooth
        ``"auto"``: average scores over ``obsp["connectivities"]`` when present; ``None``: never;
        or the name of another ``obsp`` graph.
    min_score
        Lowest best major-type score for a label (share of markers on): below it, Unassigned.
    min_markers
        Fewest measured positive markers for a type to be predicted, and fewest above
        background for a cell to train the classifier.
    on_quantile
        Quantile of a marker's non-zero values that counts as fully on.
    background
        Score markers against each sample's background (ambient) level (see Method); the
        samples are those of ``sample_key`` (the whole data set is one sample without it).
    refine
        Relabel cells with a classifier of whole expression profiles trained on the cells the
        markers label most clearly (see Method). Not used with ``groupby``.
    tissue_types
        Tissue-restricted types (the brain parenchyma, microglia, the normal cells of liver, lung,
        skin, breast, prostate, colon and kidney): ``None`` scores them when the
        data holds such a population (see Method), ``True`` always, ``False`` never.
    modality
        ``"rna"``, ``"protein"`` (intensities of a multiplexed protein panel; see Protein panels) or
        ``"auto"`` (protein when the matrix looks like one).
    {chunk_size}
    key_added
        Key of ``adata.uns`` for the summary; the labels go to ``obs["compartment"]``,
        ``obs["cell_type_major"]``, ``obs["cell_type"]``, ``obs["cell_type_confidence"]``,
        ``obs["cell_type_doublet"]`` and the fine-type scores to ``obsm["X_cell_type_scores"]`` (a labelled table).
    {copy}

    Returns
    -------
    ``None`` or a copy. ``uns[key_added]`` holds ``params``, ``markers_used`` (type, level,
    measured and listed positive markers, predictable), ``counts`` (cells per label, per
    sample when ``sample_key`` is set), ``malignant_source`` ("cnv" or "markers"),
    ``tissue_types`` (the tissue-restricted types scored, comma-separated), ``tissue_gate`` (per
    tissue-restricted type with ``tissue_types=None``: ``n_cells`` that make its population, -1 when
    too few of its markers are measured, among ``n_reference`` cells, the ``odds_ratio`` of
    co-detection of its defining markers — ``inf`` when fewer than two of them vary across cells —,
    their ``share`` and whether it was ``kept``), ``doublet_pairs`` (lineage_a, lineage_b, n_cells)
    and the scanpy-style palettes ``uns["compartment_colors"]`` and
    ``uns["cell_type_major_colors"]``.
    """
    adata = start(adata, copy)
    check_obs_key(adata, groupby, what="groupby")
    check_obs_key(adata, sample_key, what="sample_key")
    for name, val, lo, hi in (("min_score", min_score, -1.0, 1.0), ("on_quantile", on_quantile, 0.5, 1.0)):
        if not (lo <= float(val) <= hi):
            raise InvalidParameterError(f"{name} must be in [{lo}, {hi}], got {val}.")
    if int(min_markers) < 1:
        raise InvalidParameterError(f"min_markers must be >= 1, got {min_markers}.")
    if tissue_types not in (None, True, False):
        raise InvalidParameterError(f"tissue_types must be None, True or False, got {tissue_types!r}.")
    if modality not in ("auto", "rna", "protein"):
        raise InvalidParameterError(f"modality must be 'auto', 'rna' or 'protein', got {modality!r}.")
    if _protein_input(adata, layer, modality, markers):
        if groupby is not None:
            warnings.warn(
                f"annotate: groupby={groupby!r} is not used for protein panels (each cell is typed from its "
                "own channels); summarise the labels per cluster afterwards if you need cluster labels.",
                UserWarning,
                stacklevel=2,
            )
        _annotate_protein(adata, layer=layer, sample_key=sample_key, malignant_key=malignant_key,
                          key_added=key_added)  # fmt: skip
        return adata if copy else None
    table = marker_table(markers)
    chunk = int(chunk_size or settings.chunk_size)

    # --- markers measured in the data, background removed ------------------------------------
    sym = _symbols(adata.var_names)
    first = pd.Series(np.arange(len(sym))).groupby(sym).first()
    genes = [g for g in pd.unique(table["gene"]) if g in first.index]
    if not genes:
        raise InvalidInputError(
            "none of the marker genes is in adata.var_names; check that var_names are human gene symbols "
            "or Ensembl IDs (or pass `markers=` that match your genes)."
        )
    cols = first.reindex(genes).to_numpy().astype(np.int64)
    lib = _Library(table, {g: j for j, g in enumerate(genes)}, int(min_markers), float(on_quantile))
    Y, f, mode = _marker_counts(get_matrix(adata, layer), cols, chunk)
    samples = (
        pd.factorize(adata.obs[sample_key].astype(str))[0] if sample_key else np.zeros(adata.n_obs, np.int64)
    )
    Sm0, _, U0, ok0 = lib.major_scores(_log_normalised(Y, f))
    mal_calls = adata.obs[malignant_key].astype(str).to_numpy() if malignant_key in adata.obs else None
    # without CNV calls, the malignant (carcinoma) program competes inside the epithelial type
    parent = np.where((lib.fine_major == "Malignant") & (mal_calls is None), "Epithelial", lib.fine_major)
    tissue = lib.restrict_tissue(Sm0, U0, ok0, tissue_types, float(min_score), parent)
    Yd = Y
    if background:
        b0, t0, _ = _pick(Sm0, np.broadcast_to(ok0 & lib.ok_m0, Sm0.shape))
        Yd = _decontaminate(Y, f, _background(Y, f, np.where(t0 >= min_score, b0, -1), samples), samples)
    Sm, cov_m, U, ok_m = lib.major_scores(_log_normalised(Yd, f))
    Sf, cov_f, ok_f = lib.fine_scores(U)
    Sm_use, Sf_use, graph = _smoothed(adata, smooth, groupby, Sm, Sf)

    # --- major type (markers, then the classifier trained on the clearest cells) ------------
    major, conf_m, refined = _major_calls(
        Y,
        U,
        lib,
        Sm_use,
        Sf_use,
        cov_m,
        ok_m,
        ok_f,
        parent,
        float(min_score),
        refine and groupby is None,
        chunk,
    )

    # --- fine type within the major type, malignant precedence -------------------------------
    allowed_f = (parent[None, :] == major[:, None]) & ok_f[None, :]
    has_fine = allowed_f.any(axis=1)
    bf, top_f, marg_f = _pick(Sf_use, np.where(has_fine[:, None], allowed_f, True))
    fine = np.where(has_fine, np.asarray(lib.fines, dtype=object)[bf], major)
    cov_fine = np.where(has_fine, cov_f[bf], 1.0)
    rel_f = np.where(
        allowed_f.sum(axis=1) > 1,
        np.clip(np.divide(marg_f, top_f, out=np.zeros_like(top_f), where=top_f > 0), 0, 1),
        1.0,
    )
    conf = conf_m * np.where(has_fine, rel_f * np.sqrt(cov_fine), 1.0)
    doublet, pairs = _doublet_suspects(lib, U, ok_m, major)
    conf = np.where(doublet, np.minimum(conf, DOUBLET_MAX_CONFIDENCE), conf)
    malignant_source = _malignant_precedence(
        adata, malignant_key, mal_calls, major, fine, conf, lib.tissue_fines
    )
    fine[major == UNASSIGNED] = UNASSIGNED

    _store_annotation(
        adata, lib, major, fine, conf, Sf_use, cov_m, cov_f, ok_m, ok_f, sample_key,
        uns={"malignant_source": malignant_source, "input": mode, "smoothed_over": graph or "none",
             "refined": refined, "background": bool(background), "tissue_types": tissue,
             "tissue_gate": lib.gate, "doublet_pairs": pairs}, doublet=doublet,
        params={
            "groupby": groupby, "markers": "tmeatlas" if markers is None else "user", "sample_key": sample_key,
            "layer": layer, "malignant_key": malignant_key, "smooth": smooth, "background": bool(background),
            "min_score": float(min_score), "min_markers": int(min_markers), "on_quantile": float(on_quantile),
            "refine": bool(refine), "tissue_types": "auto" if tissue_types is None else bool(tissue_types),
            "key_added": key_added,
        },
        key_added=key_added,
    )  # fmt: skip
    return adata if copy else None


class _Library:
    """The marker table split into major and fine types, with the genes measured in the data."""

    def __init__(self, table: pd.DataFrame, gene_col: dict[str, int], min_markers: int, on_quantile: float):
        self.gene_col, self.on_quantile, self.min_markers = gene_col, on_quantile, min_markers
        self.major_tab = table[table["level"] == "major"]
        self.fine_tab = table[table["level"] == "fine"]
        majors = [m for m in MAJOR_TYPES if m in set(self.major_tab["cell_type"])]
        self.majors = majors + [m for m in pd.unique(self.major_tab["cell_type"]) if m not in majors]
        self.fines = list(pd.unique(self.fine_tab["cell_type"]))
        self.fine_major = (
            self.fine_tab.groupby("cell_type")["cell_type_major"].first().reindex(self.fines).to_numpy()
        )
        self.n_pos_m = self.n_pos(self.major_tab, self.majors)
        self.n_pos_f = self.n_pos(self.fine_tab, self.fines)
        self.ok_m0 = (self.n_pos_m >= min_markers) & (np.asarray(self.majors) != "Malignant")
        self.ok_f0 = self.n_pos_f >= min_markers
        tab = self.fine_tab
        self.tissue_fines = set(tab.loc[tab["tissue"] != "", "cell_type"]) if "tissue" in tab else set()
        self.gate = pd.DataFrame(columns=list(GATE_COLUMNS))

    def restrict_tissue(
        self, S, U: sparse.csr_matrix, ok: np.ndarray, tissue_types, min_score: float, parent
    ) -> str:
        """Drop the tissue-restricted types the data gives no population of (see ``annotate``).

        ``S``, ``U``, ``ok``: major-type scores, on-scale and predictable types before any
        background removal; ``parent``: the major type each fine type competes under. With
        ``tissue_types=None``, a tissue-restricted major type stays when it has a population among
        all cells (:meth:`population`). A tissue-restricted fine type with defining markers under a
        major type of every tissue stays when it has a population among the cells whose
        provisional major type is its own; the others (microglia, prostate basal cells, the brain
        types' fine types) when a type of their tissue stays.
        The counts are kept in ``self.gate`` (one row per tissue-restricted type). Returns the
        tissue-restricted types still predictable, comma-separated (``""``: none).
        """
        if "tissue" not in self.major_tab:
            return ""
        tissue_m = self.major_tab.groupby("cell_type")["tissue"].first().reindex(self.majors).fillna("")
        tissue_f = (
            self.fine_tab.groupby("cell_type")["tissue"].first().reindex(self.fines).fillna("").to_numpy()
        )
        best, top, _ = _pick(S, np.broadcast_to(ok, S.shape))
        called = top >= min_score
        on = sparse.csc_matrix(U > 0)
        rows = []
        for k, t in enumerate(self.majors):
            if not tissue_m[t]:
                continue
            if tissue_types is None:
                n, odds = self.population(self.major_tab, t, self.n_pos_m[k], on, called & (best == k))
                rows.append((t, "major", tissue_m[t], n, S.shape[0], odds))
                self.ok_m0[k] &= n >= _population_needed(S.shape[0])
            else:
                self.ok_m0[k] &= bool(tissue_types)
        organs = {tissue_m[t] for k, t in enumerate(self.majors) if tissue_m[t] and self.ok_m0[k]}
        dropped = [t for k, t in enumerate(self.majors) if tissue_m[t] and not self.ok_m0[k]]
        self.ok_f0 &= ~np.isin(self.fine_major, dropped)
        restricted_f = tissue_f != ""
        if tissue_types is None:
            tab = self.fine_tab[(self.fine_tab["direction"] == "+") & (self.fine_tab["role"] == "defining")]
            defined = np.isin(self.fines, tab["cell_type"])
            own_gate = restricted_f & defined & ~np.isin(self.fine_major, tissue_m.index[tissue_m != ""])
            own, fine_rows = self.fine_populations(
                U, np.where(called, best, -1), on, own_gate, tissue_f, parent
            )
            rows += fine_rows
            by_organ = np.isin(tissue_f, list(organs | set(tissue_f[own])))
            self.ok_f0 &= ~restricted_f | np.where(own_gate, own, by_organ)
        else:
            self.ok_f0 &= ~restricted_f | bool(tissue_types)
        self.gate = self.gate_table(rows)
        kept = [t for k, t in enumerate(self.majors) if tissue_m[t] and self.ok_m0[k]]
        kept += [t for j, t in enumerate(self.fines) if restricted_f[j] and self.ok_f0[j]]
        return ", ".join(dict.fromkeys(kept))

    def gate_table(self, rows: list[tuple]) -> pd.DataFrame:
        """The presence gate's counts (``GATE_COLUMNS``) with the share and the verdict per type."""
        gate = pd.DataFrame(rows, columns=list(GATE_COLUMNS[:6])).astype(
            {"n_cells": int, "n_reference": int, "odds_ratio": float}
        )
        gate["odds_ratio"] = gate["odds_ratio"].round(3)
        gate["share"] = (gate["n_cells"] / gate["n_reference"].clip(lower=1)).round(4)
        gate["kept"] = [
            bool(self.ok_m0[self.majors.index(t)] if lv == "major" else self.ok_f0[self.fines.index(t)])
            for t, lv in zip(gate["cell_type"], gate["level"])
        ]
        gate.index = gate.index.astype(str)
        return gate

    def population(
        self, tab: pd.DataFrame, t: str, n_measured: int, on: sparse.csc_matrix, hits: np.ndarray
    ) -> tuple[int, float]:
        """How many of the cells ``hits`` (those that score type ``t`` best) co-express ``min_markers``
        of its defining markers (all its positive markers when none is marked defining), and their
        :func:`_mean_odds_ratio`; ``(-1, NaN)`` when fewer than ``TISSUE_MIN_COVERAGE`` of its positive
        markers are measured. No cell counts when the odds ratio is below ``TISSUE_MIN_ODDS_RATIO``.
        """
        pos = tab[(tab["cell_type"] == t) & (tab["direction"] == "+")]
        if n_measured < TISSUE_MIN_COVERAGE * pos["gene"].nunique():
            return -1, np.nan
        k_on, _ = self.n_defining(tab, t, on)
        odds = _mean_odds_ratio(on[:, self.defining_cols(tab, t)])
        if odds < TISSUE_MIN_ODDS_RATIO:
            return 0, odds  # the markers are detected independently of each other: no population
        return int((hits & (k_on >= self.min_markers)).sum()), odds

    def defining_cols(self, tab: pd.DataFrame, t: str) -> list[int]:
        """Columns of the measured defining markers of type ``t`` (its positive markers when none is defining)."""
        pos = tab[(tab["cell_type"] == t) & (tab["direction"] == "+")]
        pos = pos[pos["role"] == "defining"] if (pos["role"] == "defining").any() else pos
        return [self.gene_col[g] for g in pos["gene"].unique() if g in self.gene_col]

    def lineage_markers_on(self, U: sparse.csr_matrix, ok: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Cells x lineages (:data:`_DOUBLET_LINEAGE`): the most defining markers on, above background,
        of a predictable major type of the lineage with at least 2 measured defining markers (-1:
        no such type).
        """
        on = sparse.csc_matrix(U > 0)
        names = list(dict.fromkeys(_DOUBLET_LINEAGE[t] for t in self.majors if t in _DOUBLET_LINEAGE))
        out = np.full((U.shape[0], len(names)), -1.0)
        tab = self.major_tab
        defined = set(tab.loc[(tab["direction"] == "+") & (tab["role"] == "defining"), "cell_type"])
        for k, t in enumerate(self.majors):
            if not ok[k] or t not in _DOUBLET_LINEAGE or t not in defined:
                continue
            n_on, n_measured = self.n_defining(tab, t, on)
            if n_measured >= 2:
                j = names.index(_DOUBLET_LINEAGE[t])
                out[:, j] = np.maximum(out[:, j], n_on)
        return out, names

    def n_defining(self, tab: pd.DataFrame, t: str, on: sparse.csc_matrix) -> tuple[np.ndarray, int]:
        """Per cell, how many defining markers of type ``t`` are on (``on``: cells x measured markers,
        boolean; all its positive markers count when none is marked defining), and how many of
        them are measured.
        """
        dj = self.defining_cols(tab, t)
        return (np.asarray(on[:, dj].sum(axis=1)).ravel() if dj else np.zeros(on.shape[0])), len(dj)

    def fine_populations(
        self, U, major_of: np.ndarray, on, restricted: np.ndarray, tissue: np.ndarray, parent
    ):
        """Which tissue-restricted fine types have a population of their own (see ``restrict_tissue``).

        ``major_of``: provisional major-type index per cell (-1: none). A fine type's cells are
        those of its major type that score it best among the fine types still predictable that
        compete under that major type (``parent``; without CNV calls the carcinoma program is one
        of them). Returns ``(kept per fine type, gate rows)``.
        """
        Sf, _, dec = self.fine_scores(U)
        own = np.zeros(len(self.fines), dtype=bool)
        rows = []
        for m in pd.unique(self.fine_major[restricted]):
            cells = np.flatnonzero(major_of == (self.majors.index(m) if m in self.majors else -2))
            allowed = (parent == m) & self.ok_f0 & dec
            bf = _pick(Sf[cells], np.broadcast_to(allowed, (len(cells), len(self.fines))))[0]
            for j in np.flatnonzero(restricted & (self.fine_major == m)):
                hits = np.zeros(Sf.shape[0], dtype=bool)
                hits[cells[bf == j]] = allowed[j]
                n, odds = self.population(self.fine_tab, self.fines[j], self.n_pos_f[j], on, hits)
                rows.append((self.fines[j], "fine", tissue[j], n, len(cells), odds))
                own[j] = allowed[j] and n >= _population_needed(len(cells))
        return own, rows

    def n_pos(self, tab: pd.DataFrame, types: list[str]) -> np.ndarray:
        """Measured positive markers per type."""
        return np.array([tab[(tab["cell_type"] == t) & (tab["direction"] == "+")]["gene"].isin(self.gene_col).sum()
                         for t in types])  # fmt: skip

    def major_scores(self, E: sparse.csr_matrix):
        """``(S, coverage, U, predictable)`` of the major types from log-normalised markers ``E``."""
        U = _on_scale(E, self.on_quantile)
        S, cov, dec, self.defining_on = _scores(U, self.major_tab, self.gene_col, self.majors)
        return S, cov, U, self.ok_m0 & dec

    def n_on(self, U: sparse.csr_matrix, best: np.ndarray) -> np.ndarray:
        """Per cell, how many positive markers of major type ``majors[best]`` are above background."""
        P = np.zeros((U.shape[1], len(self.majors)))
        pos = self.major_tab[self.major_tab["direction"] == "+"]
        for k, t in enumerate(self.majors):
            P[[self.gene_col[g] for g in pos.loc[pos["cell_type"] == t, "gene"] if g in self.gene_col], k] = (
                1.0
            )
        on = sparse.csr_matrix((U > 0).astype(np.float64))
        return np.asarray(on @ P)[np.arange(U.shape[0]), best]

    def fine_scores(self, U: sparse.csr_matrix):
        """``(S, coverage, predictable)`` of the fine types.

        A tissue-restricted fine type scores ``S - 2`` in a cell that does not co-express
        ``min_markers`` of its defining markers (its positive markers when none is defining; all
        of them when fewer are measured), as in the presence gate: shared supporting genes (EPCAM,
        KRT19, KRT5, ...) and a stray read never make a carcinoma cell a cholangiocyte or a basal
        cell; such a type wins only where nothing else is allowed.
        """
        S, cov, dec, _ = _scores(U, self.fine_tab, self.gene_col, self.fines)
        on = sparse.csc_matrix(U > 0)
        for j, t in enumerate(self.fines):
            if t in self.tissue_fines:
                n, measured = self.n_defining(self.fine_tab, t, on)
                S[:, j] = np.where(n >= max(min(self.min_markers, measured), 1), S[:, j], S[:, j] - 2.0)
        return S, cov, self.ok_f0 & dec


def _smoothed(adata: AnnData, smooth: str | None, groupby: str | None, Sm: np.ndarray, Sf: np.ndarray):
    """Scores averaged with the neighbour graph, or per ``groupby`` group: ``(Sm, Sf, graph used)``."""
    graph = None
    if smooth is not None and groupby is None:
        gkey = "connectivities" if smooth == "auto" else smooth
        if gkey in adata.obsp:
            graph = gkey
            A = sparse.csr_matrix(adata.obsp[gkey], dtype=np.float64)
            deg = np.asarray(A.sum(axis=1)).ravel()
            A = sparse.diags(np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)) @ A
            Sm = 0.5 * (Sm + A @ Sm)
            Sf = 0.5 * (Sf + A @ Sf)
        elif smooth != "auto":
            raise InvalidInputError(
                f"no graph obsp[{smooth!r}]; run `sc.pp.neighbors(adata)` or pass smooth=None."
            )
    if groupby is not None:
        codes, uniq = pd.factorize(adata.obs[groupby].astype(str))
        G = sparse.csr_matrix(
            (np.ones(adata.n_obs), (codes, np.arange(adata.n_obs))), shape=(len(uniq), adata.n_obs)
        )
        size = np.asarray(G.sum(axis=1)).ravel()
        Gm = sparse.diags(1.0 / size) @ G
        Sm, Sf = (Gm @ Sm)[codes], (Gm @ Sf)[codes]
    return Sm, Sf, graph


def _major_calls(
    Y, U, lib: _Library, Sm, Sf, cov_m, ok_m, ok_f, parent, min_score: float, refine: bool, chunk: int
):
    """Major type per cell from the marker scores, then (``refine``) from the classifier.

    Returns ``(major, confidence, refined)``.
    """
    majors, fines = lib.majors, lib.fines
    bm, top_m, marg_m = _pick(Sm, np.broadcast_to(ok_m, Sm.shape))
    major = np.asarray(majors, dtype=object)[bm]
    major[top_m < min_score] = UNASSIGNED
    rel_m = np.clip(np.divide(marg_m, top_m, out=np.zeros_like(top_m), where=top_m > 0), 0, 1)
    conf_m = rel_m * np.sqrt(cov_m[bm])
    refined = False
    if refine:
        # seeds per fine type (classes of one major type can be several populations)
        al0 = (parent[None, :] == major[:, None]) & ok_f[None, :]
        hf0 = al0.any(axis=1)
        b0, t0, mg0 = _pick(Sf, np.where(hf0[:, None], al0, True))
        f0 = np.where(hf0, np.asarray(fines, dtype=object)[b0], major)
        f0[major == UNASSIGNED] = UNASSIGNED
        # a training cell needs corroborated evidence: min_markers of its type's markers above
        # background (all of them when fewer are measured), one of them defining
        need = np.minimum(lib.min_markers, lib.n_pos_m[bm])
        defining = lib.defining_on[np.arange(len(bm)), bm] > 0
        f0[(lib.n_on(U, bm) < need) | ~defining] = UNASSIGNED
        r0 = np.clip(np.divide(mg0, t0, out=np.zeros_like(t0), where=t0 > 0), 0, 1)
        sub_major = dict(zip(fines, parent)) | {m: m for m in majors}
        margin = np.minimum(rel_m, np.where(al0.sum(1) > 1, r0, 1.0))
        out = _refine_major(Y, "counts", major, f0, margin, sub_major, majors, cov_m, chunk)
        if out is not None:
            was_unassigned = major == UNASSIGNED
            major, conf_m = out
            refined = True
            # a cell no marker set claimed stays unassigned unless the classifier's type is
            # at least half-way to the labelling threshold on its own markers
            col = {m: j for j, m in enumerate(majors)}
            s_new = np.array([Sm[i, col[m]] if m in col else 1.0 for i, m in enumerate(major)])
            major[was_unassigned & (s_new < 0.5 * min_score)] = UNASSIGNED
    conf_m[major == UNASSIGNED] = 0.0
    return major, conf_m, refined


def _malignant_precedence(
    adata: AnnData, malignant_key: str, mal_calls, major, fine, conf, tissue_fines
) -> str:
    """CNV calls override the markers (in place); without them, marker-only carcinoma calls warn.

    Epithelial cells called non-malignant keep a tissue-restricted fine type (``tissue_fines``,
    e.g. "alveolar type II"); the others become "normal epithelium". Returns the source of the
    malignant labels: ``"cnv"``, ``"markers"`` or ``"none"``.
    """
    if mal_calls is not None:
        is_mal = mal_calls == "malignant"
        major[is_mal] = "Malignant"
        fine[is_mal] = "Malignant"
        if "malignant_prob" in adata.obs:
            conf[is_mal] = adata.obs["malignant_prob"].to_numpy(float)[is_mal]
        else:
            conf[is_mal] = 1.0
        epi_cells = (major == "Epithelial") & ~is_mal
        fine[epi_cells & (mal_calls == "uncertain")] = EPI_UNCERTAIN
        tissue_cell = np.isin(fine, list(tissue_fines))
        fine[epi_cells & (mal_calls == "non-malignant") & ~tissue_cell] = "normal epithelium"
        return "cnv"
    marker_mal = (major == "Epithelial") & (fine == "Malignant")
    if not marker_mal.any():
        return "none"
    major[marker_mal] = "Malignant"
    warnings.warn(
        f"{int(marker_mal.sum())} epithelial cells look malignant by markers only (no CNV calls in "
        f"obs[{malignant_key!r}]); run `tm.tl.infer_cnv` and `tm.tl.call_malignant` to call malignancy "
        "from copy number.",
        UserWarning,
        stacklevel=3,
    )
    return "markers"


def _doublet_suspects(lib: _Library, U: sparse.csr_matrix, ok: np.ndarray, major: np.ndarray):
    """``(flag, pairs)``: cells that show the defining markers of two lineages or more, and how many
    cells show each pair of lineages.

    A cell shows a lineage when it has as many of the lineage's defining markers on, above
    background, as the median cell labelled with it (and at least ``min_markers``): as clearly as a
    typical cell of that lineage, which stray reads of a few markers, or a tumour cell's partial
    program, rarely do; a droplet holding a cell of each lineage does. Lineages with fewer than
    ``MIN_SEEDS`` labelled cells are not judged.
    """
    K, names = lib.lineage_markers_on(U, ok)
    own = np.array([_DOUBLET_LINEAGE.get(m, "") for m in major], dtype=object)
    shows = np.zeros(K.shape, dtype=bool)
    for j, lin in enumerate(names):
        members = (own == lin) & (K[:, j] >= 0)
        if members.sum() >= MIN_SEEDS:
            shows[:, j] = K[:, j] >= max(lib.min_markers, float(np.median(K[members, j])))
    return shows.sum(axis=1) >= 2, _lineage_pairs(shows, names)


def _lineage_pairs(shows: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Cells per pair of lineages shown together (``shows``: cells x lineages)."""
    rows = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            n = int((shows[:, a] & shows[:, b]).sum())
            if n:
                rows.append((names[a], names[b], n))
    pairs = pd.DataFrame(rows, columns=["lineage_a", "lineage_b", "n_cells"]).astype({"n_cells": int})
    pairs = pairs.sort_values("n_cells", ascending=False, kind="stable").reset_index(drop=True)
    pairs.index = pairs.index.astype(str)
    return pairs


def _protein_input(adata: AnnData, layer: str | None, modality: str, markers) -> bool:
    """Whether ``annotate`` reads the data as protein intensities (see its Method)."""
    from ._annotate_protein import looks_like_protein

    if modality == "protein" and markers is not None:
        raise InvalidParameterError(
            "markers= is for RNA marker genes; protein panels use the shipped protein library. Drop "
            "markers= or pass modality='rna'."
        )
    if modality != "auto" or markers is not None:
        return modality == "protein"
    return looks_like_protein(get_matrix(adata, layer), adata.var_names)


def _annotate_protein(adata: AnnData, *, layer, sample_key, malignant_key, key_added) -> None:
    """``annotate`` on protein intensities: labels from :mod:`._annotate_protein`, stored as the RNA
    route stores them (CNV or user malignant calls take precedence in the same way).
    """
    from ._annotate_protein import MIN_Z, library_view, protein_labels

    samples = adata.obs[sample_key].astype(str).to_numpy() if sample_key else np.zeros(adata.n_obs, object)
    res = protein_labels(get_matrix(adata, layer), adata.var_names, samples, _DOUBLET_LINEAGE, UNASSIGNED)
    view = library_view(res, MAJOR_TYPES)
    major, fine, conf = res.major, res.fine, res.conf
    conf = np.where(res.spill, np.minimum(conf, DOUBLET_MAX_CONFIDENCE), conf)
    mal_calls = adata.obs[malignant_key].astype(str).to_numpy() if malignant_key in adata.obs else None
    source = _malignant_precedence(adata, malignant_key, mal_calls, major, fine, conf, [])
    pairs = _lineage_pairs(res.shows, res.lineages)
    _store_annotation(
        adata, view.lib, major, fine, conf, res.scores, view.cov_m, res.cov, view.ok_m, res.ok, sample_key,
        uns={"malignant_source": source, "input": "protein", "smoothed_over": "none", "refined": False,
             "background": True, "tissue_types": "", "doublet_pairs": pairs, "channels": res.resolved},
        doublet=res.spill,
        params={"sample_key": sample_key, "layer": layer, "malignant_key": malignant_key, "modality": "protein",
                "min_z": MIN_Z, "markers": "tmeatlas protein", "key_added": key_added},
        key_added=key_added,
    )  # fmt: skip


def _store_annotation(adata, lib: _Library, major, fine, conf, Sf, cov_m, cov_f, ok_m, ok_f, sample_key,
                      *, uns: dict, params: dict, key_added: str, doublet: np.ndarray) -> None:  # fmt: skip
    """Write labels, scores, the markers used and per-sample counts (one ``store`` call)."""
    from .._palettes import compartment_palette, major_palette

    majors, fines = lib.majors, lib.fines
    compartment = np.asarray([_MAJOR_COMPARTMENT.get(m, "unassigned") for m in major], dtype=object)
    fine_cats = [f for f in fines if f in set(fine)] + [
        c for c in (EPI_UNCERTAIN, UNASSIGNED) if c in set(fine)
    ]
    fine_cats += [c for c in pd.unique(fine) if c not in fine_cats]
    major_cats = MAJOR_TYPES + [m for m in majors if m not in MAJOR_TYPES]
    scores = pd.DataFrame(np.asarray(Sf, dtype=np.float32), index=adata.obs_names, columns=fines)
    used = pd.DataFrame(
        {
            "cell_type": majors + fines,
            "level": ["major"] * len(majors) + ["fine"] * len(fines),
            "cell_type_major": majors + list(lib.fine_major),
            "n_markers_measured": np.concatenate([lib.n_pos_m, lib.n_pos_f]).astype(int),
            "n_markers_listed": [
                int(((tab["cell_type"] == t) & (tab["direction"] == "+")).sum())
                for tab, types in ((lib.major_tab, majors), (lib.fine_tab, fines))
                for t in types
            ],
            "coverage": np.concatenate([cov_m, cov_f]),
            "predictable": np.concatenate([ok_m, ok_f]),
        }
    )
    used.index = used.index.astype(str)
    by = [sample_key] if sample_key else []
    lab = pd.DataFrame({"cell_type_major": major, "cell_type": fine})
    if sample_key:
        lab[sample_key] = adata.obs[sample_key].astype(str).to_numpy()
    counts = (
        lab.groupby([*by, "cell_type_major", "cell_type"], observed=True)
        .size()
        .rename("n_cells")
        .reset_index()
    )
    counts.index = counts.index.astype(str)
    logger.info(
        "annotate: %d cells, %d unassigned; markers measured for %d/%d types",
        adata.n_obs, int((major == UNASSIGNED).sum()), int(used["predictable"].sum()), len(used),
    )  # fmt: skip
    store(
        adata,
        tool="tl.annotate",
        obs={
            OBS.compartment: pd.Categorical(compartment, categories=COMPARTMENTS),
            OBS.cell_type_major: pd.Categorical(major, categories=major_cats),
            OBS.cell_type: pd.Categorical(fine, categories=fine_cats),
            OBS.cell_type_confidence: np.clip(conf, 0.0, 1.0).astype(np.float32),
            OBS.cell_type_doublet: np.asarray(doublet, dtype=bool),
        },
        obsm={OBSM.cell_type_scores: scores},
        uns_key=key_added,
        uns={"markers_used": used, "counts": counts, **uns},
        params=params,
    )
    adata.uns[f"{OBS.compartment}_colors"] = [compartment_palette()[c] for c in COMPARTMENTS]
    adata.uns[f"{OBS.cell_type_major}_colors"] = [major_palette()[c] for c in major_cats]


#: share of a type's marker-labelled cells (highest relative margin first) that train the classifier
SEED_FRACTION = 0.5
#: fewest seed cells for a type to enter the classifier
MIN_SEEDS = 5
#: novelty: cells this many robust standard deviations below their type's seeds are Unassigned
NOVELTY_Z = 5.0


def _seed_codes(labels: np.ndarray, margin: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class code of the seed cells (the top SEED_FRACTION by margin of each label), else -1."""
    codes = np.full(len(labels), -1, dtype=np.int64)
    for k, c in enumerate(classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) < MIN_SEEDS:
            continue
        n = max(MIN_SEEDS, int(np.ceil(SEED_FRACTION * len(idx))))
        codes[idx[np.argsort(-margin[idx], kind="stable")[:n]]] = k
    return codes


def _refine_major(X, mode, major, sublabel, margin, sub_major, majors, cov_m, chunk):
    """Major types from naive Bayes over the marker genes, trained on the clearest marker-labelled cells.

    Returns ``(major, confidence)`` or ``None`` when fewer than two types have enough seeds.
    Confidence: the classifier's posterior, times the marker margin's agreement (1 when the
    marker call agrees, 0.5 when markers left the cell unassigned, ``1 - margin`` when they
    disagree), times the square root of the type's marker coverage.
    """
    X = sparse.csr_matrix(X) if not sparse.issparse(X) else X.tocsr()
    classes = [
        c for c in pd.unique(sublabel) if c != UNASSIGNED and sub_major.get(c) not in (None, "Malignant")
    ]
    seeds = _seed_codes(sublabel, margin, classes)
    present = np.bincount(seeds[seeds >= 0], minlength=len(classes)) >= MIN_SEEDS
    if len({sub_major[c] for c, p in zip(classes, present) if p}) < 2:
        return None
    classes = [c for c, p in zip(classes, present) if p]
    seeds = _seed_codes(sublabel, margin, classes)
    groups = pd.factorize(np.asarray([sub_major[c] for c in classes]))[0]
    k, post, z = _naive_bayes(X, mode, np.arange(X.shape[0]), seeds, len(classes), chunk, groups=groups)
    new = np.asarray([sub_major[c] for c in classes], dtype=object)[k]
    # novelty: far less likely under its class than that class's own seeds are
    novel = np.zeros(len(new), bool)
    for j in range(len(classes)):
        zs = z[seeds == j]
        med = np.median(zs)
        mad = 1.4826 * np.median(np.abs(zs - med))
        novel |= (k == j) & (z < med - NOVELTY_Z * max(mad, 1e-6))
    factor = np.where(new == major, 1.0, np.where(major == UNASSIGNED, 0.5, 1.0 - margin))
    cov_of = dict(zip(majors, cov_m))
    conf = post * factor * np.sqrt([cov_of.get(m, 1.0) for m in new])
    new[novel] = UNASSIGNED
    return new, conf
