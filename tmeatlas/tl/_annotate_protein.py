"""Cell types from multiplexed protein imaging (CyCIF, CODEX, IMC, MIBI, multiplex immunofluorescence).

Protein panels are measured differently from RNA: every channel has a continuous intensity in every
cell, with a channel-specific background (autofluorescence, unspecific binding, signal from the
neighbouring cells), and a panel holds tens of antibodies, named by their antigens (CD3, CD45, PanCK,
aSMA) rather than by genes. Each channel is therefore put on its own background scale, and types are
read from the lineage markers of immunophenotyping and multiplex-imaging studies
(``_data/markers_protein.tsv``, its sources in ``markers_protein_sources.tsv``; antibody names
resolve through ``_data/protein_aliases.tsv``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._errors import InvalidInputError
from .._resources import data_path

#: a type's score (robust SDs above its channels' background) below which a cell stays Unassigned
MIN_Z = 1.0
#: weight of a supporting marker relative to a defining one in a type's score
SUPPORT_WEIGHT = 0.5
#: a cell whose best types of two lineages both score this high (before the negative markers) shows
#: two cells' markers: a doublet or spill-over across a segmentation border; it is flagged
DOUBLE_Z = 3.0
#: the background of a channel is found on ``log(x + c)``, ``c`` this quantile of its positive values
LOG_OFFSET_QUANTILE = 0.01
#: the background mixture of a channel is fitted to a histogram of this many bins
HIST_BINS = 1024
#: a cell is positive for a channel (e.g. PD-L1 for a positive share) at this many robust SDs above
#: the channel's background (about the top 2.5 % of a normal background)
POSITIVE_Z = 2.0
#: a matrix is read as protein intensities when it has at most this many features ...
MAX_PROTEIN_FEATURES = 200
#: ... few exact zeros (RNA is sparse: 56-90 % zeros in the shared RNA sets, Smart-seq to MERFISH;
#: 0.04-0.15 % in the protein tables; dim channels of imaging mass cytometry can hold some zeros) ...
MAX_ZERO_SHARE = 0.3
#: ... and at least this many channels name a marker of the protein library
MIN_PANEL_MARKERS = 2


def _norm(name: str) -> str:
    """An antibody name reduced to upper-case letters and digits ('aSMA' -> 'ASMA', 'HLA-DR' -> 'HLADR')."""
    return re.sub(r"[^0-9A-Z]", "", str(name).upper())


@lru_cache(maxsize=1)
def _alias_table() -> pd.DataFrame:
    """The shipped antibody-name table (alias, marker, gene, note)."""
    with data_path("protein_aliases.tsv").open("rb") as fh:
        return pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    tab = _alias_table()
    return dict(zip(tab["alias"].map(_norm), tab["marker"], strict=True))


@lru_cache(maxsize=1)
def protein_table() -> pd.DataFrame:
    """The shipped protein marker library: one row per fine type and marker."""
    with data_path("markers_protein.tsv").open("rb") as fh:
        return pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def _marker_genes() -> dict[str, str]:
    """Library marker -> its HGNC gene, for the markers whose aliases all name one gene."""
    genes = _alias_table().groupby("marker")["gene"].agg(lambda g: set(g))
    return {m: next(iter(g)) for m, g in genes.items() if len(g) == 1 and ";" not in next(iter(g))}


def panel_genes(var_names) -> dict[str, int]:
    """HGNC gene -> column, for the channels of a protein panel that name one gene's product
    ('PD-L1' -> CD274, 'PD1' -> PDCD1, 'TIM-3' -> HAVCR2); the first channel wins.
    """
    genes = _marker_genes()
    out: dict[str, int] = {}
    for j, m in enumerate(panel_markers(var_names)):
        if m in genes:
            out.setdefault(genes[m], j)
    return out


def protein_expression(X, cols: np.ndarray, samples: np.ndarray):
    """Cells x ``cols`` (CSR): each channel's robust SDs above its background per sample where the
    cell is positive (:data:`POSITIVE_Z`), 0 elsewhere, so "expressing" means positive.
    """
    from scipy import sparse

    if not len(cols):
        return sparse.csr_matrix((X.shape[0], 0))
    M = columns(X, cols)
    Z = np.column_stack([sample_z(M[:, k], samples) for k in range(M.shape[1])])
    return sparse.csr_matrix(np.where(Z >= POSITIVE_Z, Z, 0.0))


def _marker_of(name: str, al: dict[str, str]) -> str:
    """The library marker a channel name measures: the whole name, else the first of its parts that
    names one, so exported column names resolve ('CD3: Cell: Mean', 'CD45_cellMask', 'CD8a(Dy162Di)',
    'Nucleus CD8 (Opal 520) Mean'); empty where none does.
    """
    whole = al.get(_norm(name))
    if whole:
        return whole
    for part in re.split(r"[\s:_()\[\]/|,;.]+", str(name)):
        m = al.get(_norm(part))
        if m:
            return m
    return ""


def panel_markers(var_names) -> pd.Series:
    """The library marker each feature measures (by position; empty where none)."""
    al = _aliases()
    return pd.Series([_marker_of(v, al) for v in var_names], dtype=object)


def looks_like_protein(X, var_names) -> bool:
    """Whether a matrix holds protein intensities: few features, dense, mostly non-integer values,
    and channels named by library markers (RNA counts, even log-normalised, are mostly zeros).
    """
    if X.shape[1] > MAX_PROTEIN_FEATURES or (panel_markers(var_names) != "").sum() < MIN_PANEL_MARKERS:
        return False
    rows = np.linspace(0, X.shape[0] - 1, min(X.shape[0], 2000)).astype(int)
    block = _dense(X[rows])
    zero = float((block == 0).mean())
    frac = float((block != np.round(block)).mean())
    return zero <= MAX_ZERO_SHARE and frac > 0.5


def _lower_component(t: np.ndarray, n_iter: int = 500) -> float:
    """Mean of the lower component of a two-component Gaussian mixture (EM on a 1,024-bin histogram,
    started at the 5th and 95th percentiles): the channel's background level, whether the positive
    cells are a minority or the majority.
    """
    if t.std() == 0:
        return float(t[0])
    counts, edges = np.histogram(t, bins=HIST_BINS)
    c = (edges[:-1] + edges[1:]) / 2
    keep = counts > 0
    c, counts = c[keep], counts[keep].astype(float)
    mu = np.quantile(t, [0.05, 0.95]).astype(float)
    sd = np.full(2, t.std())
    w = np.array([0.5, 0.5])
    floor = max(1e-3 * t.std(), (edges[1] - edges[0]) / 2)
    for _ in range(n_iter):
        dens = w / sd * np.exp(-0.5 * ((c[:, None] - mu) / sd) ** 2)
        r = counts[:, None] * dens / np.maximum(dens.sum(axis=1, keepdims=True), 1e-300)
        n = np.maximum(r.sum(axis=0), 1e-9)
        new = (r * c[:, None]).sum(axis=0) / n
        sd = np.maximum(np.sqrt((r * (c[:, None] - new) ** 2).sum(axis=0) / n), floor)
        w = n / n.sum()
        done = np.allclose(new, mu, atol=1e-6 * (1 + np.abs(mu).max()))
        mu = new
        if done:
            break
    return float(mu.min())


def channel_z(x: np.ndarray) -> np.ndarray:
    """One channel on its background scale. The background intensity ``b`` is the lower component of
    a two-component mixture of ``log(x + c)`` (``c`` the 1st percentile of the positive intensities,
    which keeps zeros finite); the channel is read as ``log1p(x / b)`` (linear near and below the
    background, logarithmic above it; scale-free, so raw, rescaled and normalised intensities agree),
    centred at that scale's lower mixture component and divided by its median absolute deviation (a
    robust SD of the whole channel). Anchoring at the background, not the median, keeps a channel
    whose positive cells are the majority (keratin in a tumour field) on the same footing as one
    whose positives are rare. A channel with negative values is already transformed and centred
    (z-scored, background-subtracted): it is read as it is, from the centring on.
    """
    x = np.nan_to_num(np.asarray(x, dtype=float))
    if (x < 0).any():
        t = x
    else:
        pos = x[x > 0]
        if not len(pos):
            return np.zeros_like(x)
        b = np.exp(_lower_component(np.log(x + np.quantile(pos, LOG_OFFSET_QUANTILE))))
        t = np.log1p(x / b)
    loc = _lower_component(t)
    med = np.median(t)
    scale = 1.4826 * np.median(np.abs(t - med))
    if not scale > 0:
        scale = t.std() if t.std() > 0 else 1.0
    return (t - loc) / scale


def _dense(block) -> np.ndarray:
    """A block of a NumPy, SciPy sparse, Dask or backed matrix as a dense float array."""
    if hasattr(block, "compute"):
        block = block.compute()
    return np.asarray(block.toarray() if hasattr(block, "toarray") else block, dtype=float)


def columns(X, cols) -> np.ndarray:
    """Columns ``cols`` of ``X`` for all cells as a dense float array, in one pass over the matrix
    (a Dask or backed matrix row block by row block, :func:`tmeatlas._core.chunks.row_blocks`); a
    panel's few channels are dense anyway.
    """
    from .._core.chunks import is_streamed, row_blocks
    from .._settings import settings

    cols = np.asarray(cols, dtype=np.int64)
    if not is_streamed(X):
        return _dense(X[:, cols])
    return np.vstack([_dense(b[:, cols]) for _, _, b in row_blocks(X, int(settings.chunk_size))])


def sample_z(x: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """One channel on its background scale (:func:`channel_z`), each sample on its own (slides and
    acquisitions differ in brightness).
    """
    z = np.empty(len(x))
    for s in np.unique(samples):
        rows = samples == s
        z[rows] = channel_z(x[rows])
    return z


def positive(x: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Cells positive for one protein channel: ``POSITIVE_Z`` robust SDs above its background per
    sample (:func:`sample_z`); a detection call for intensities, which are never zero.
    """
    return sample_z(x, samples) >= POSITIVE_Z


def _marker_z(X, markers: pd.Series, samples: np.ndarray) -> pd.DataFrame:
    """Cells x library markers: each channel on its background scale per sample (:func:`sample_z`),
    channels of one marker averaged.
    """
    idx = np.flatnonzero(markers.to_numpy() != "")
    M = columns(X, idx)
    by_marker: dict[str, list] = {}
    for k, j in enumerate(idx):
        by_marker.setdefault(markers.iloc[j], []).append(sample_z(M[:, k], samples))
    return pd.DataFrame({m: np.mean(v, axis=0) for m, v in by_marker.items()})


def _type_scores(Z: pd.DataFrame, table: pd.DataFrame):
    """Per fine type: the weighted mean of its measured positive markers (defining 1, supporting
    ``SUPPORT_WEIGHT``) less the highest measured negative marker above background; ``(types,
    penalised, unpenalised, coverage, predictable)`` (cells x types for the scores, -inf where a
    type is not predictable). A type is predictable when a defining marker is measured.
    """
    types = list(pd.unique(table["cell_type"]))
    n = len(Z)
    S, P = np.full((n, len(types)), -np.inf), np.full((n, len(types)), -np.inf)
    cov, ok = np.zeros(len(types)), np.zeros(len(types), bool)
    for k, t in enumerate(types):
        rows = table[table["cell_type"] == t]
        pos = rows[rows["direction"] == "+"]
        w = np.where(pos["role"] == "defining", 1.0, SUPPORT_WEIGHT)
        have = pos["marker"].isin(Z.columns).to_numpy()
        cov[k] = w[have].sum() / w.sum()
        if not (have & (pos["role"] == "defining").to_numpy()).any():
            continue
        ok[k] = True
        P[:, k] = Z[pos["marker"][have]].to_numpy() @ w[have] / w[have].sum()
        neg = [m for m in rows.loc[rows["direction"] == "-", "marker"] if m in Z.columns]
        pen = np.maximum(Z[neg].to_numpy().max(axis=1), 0.0) if neg else 0.0
        S[:, k] = P[:, k] - pen
    return types, S, P, cov, ok


def _lineages_shown(P: np.ndarray, lineage: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Cells x lineages: a type of the lineage scores ``DOUBLE_Z`` on its positive markers alone."""
    names = list(pd.unique(lineage))
    shows = np.column_stack([P[:, lineage == n].max(axis=1) >= DOUBLE_Z for n in names])
    return shows, names


def protein_labels(X, var_names, samples: np.ndarray, doublet_lineage: dict[str, str], unassigned: str):
    """Fine and major labels, confidence, spill-over flags and the tables the annotation stores.

    Confidence: the best score's margin over the best type of another major type, relative to the
    best score, ``(S_1 - S_2) / S_1``, times ``min(1, S_1 / POSITIVE_Z)`` (full only when the type's
    markers are as clearly on as a positive channel); in [0, 1], 0 for Unassigned cells.
    """
    markers = panel_markers(var_names)
    Z = _marker_z(X, markers, samples)
    table = protein_table()
    if Z.shape[1] < MIN_PANEL_MARKERS:
        raise InvalidInputError(
            f"only {Z.shape[1]} channel(s) name a marker of the protein library ({sorted(Z.columns)}); name "
            "channels by their antigens (CD3, CD45, PanCK, aSMA, ...) or annotate with `markers=`."
        )
    types, S, P, cov, ok = _type_scores(Z, table)
    fine_major = (
        table.drop_duplicates("cell_type").set_index("cell_type").loc[types, "cell_type_major"].to_numpy()
    )
    best = S.argmax(axis=1)
    top = S[np.arange(len(best)), best]
    other_major = np.where(fine_major[None, :] != fine_major[best][:, None], S, -np.inf).max(axis=1)
    conf = np.clip(np.divide(top - other_major, top, out=np.zeros_like(top), where=top > 0), 0.0, 1.0)
    conf *= np.clip(top / POSITIVE_Z, 0.0, 1.0)  # full only when the type's markers are clearly on
    lineage = np.asarray([doublet_lineage.get(m, m) for m in fine_major], dtype=object)
    shows, lineages = _lineages_shown(P, lineage)
    spill = (shows.sum(axis=1) >= 2) & (top >= MIN_Z)
    fine = np.asarray(types, dtype=object)[best]
    major = fine_major[best].astype(object)
    low = ~(top >= MIN_Z)
    fine[low], major[low], conf[low] = unassigned, unassigned, 0.0
    resolved = pd.DataFrame({"feature": [str(v) for v in var_names], "marker": markers.to_numpy()})
    return SimpleNamespace(
        fine=fine, major=major, conf=conf, spill=spill, shows=shows, lineages=lineages, types=types, fine_major=fine_major,
        scores=np.where(np.isfinite(S), S, np.nan), cov=cov, ok=ok, table=table, resolved=resolved,
    )  # fmt: skip


def library_view(res, majors_order: list[str]) -> SimpleNamespace:
    """The protein library in the shape :func:`tmeatlas.tl._annotate._store_annotation` reads."""
    tab = res.table.rename(columns={"marker": "gene"})
    majors = [m for m in majors_order if m in set(res.fine_major)]
    major_tab = tab.assign(cell_type=tab["cell_type_major"]).drop_duplicates(
        ["cell_type", "gene", "direction"]
    )
    pos_m = [major_tab[(major_tab["cell_type"] == m) & (major_tab["direction"] == "+")] for m in majors]
    have = set(res.resolved["marker"])
    cov_m = np.array([float(p["gene"].isin(have).mean()) for p in pos_m])
    ok_m = np.array([bool(res.ok[res.fine_major == m].any()) for m in majors])
    n_pos = np.array([int(p["gene"].isin(have).sum()) for p in pos_m])
    n_pos_f = np.array([int(tab[(tab["cell_type"] == t) & (tab["direction"] == "+")]["gene"].isin(have).sum())
                        for t in res.types])  # fmt: skip
    lib = SimpleNamespace(majors=majors, fines=list(res.types), fine_major=res.fine_major, n_pos_m=n_pos,
                          n_pos_f=n_pos_f, major_tab=major_tab, fine_tab=tab)  # fmt: skip
    return SimpleNamespace(lib=lib, cov_m=cov_m, ok_m=ok_m)
