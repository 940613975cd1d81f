"""scVI integration and scANVI label transfer: ``tm.tl.integrate``, ``tm.tl.transfer_labels``.

Both tools fit scvi-tools models (the ``scvi`` extra: ``pip install "tmeatlas[scvi]"``) on a
private AnnData built from the counts, so the user's AnnData only receives the documented
results. scvi-tools and torch are imported inside the functions.

Reproducibility: the seed is set with ``scvi.settings.seed`` (torch, numpy and Python seeds,
and scvi's train/validation split) before set-up and training. On CPU, the same seed and the
same ``n_jobs`` give bit-identical results; on a GPU, results can differ in the last digits
between runs. The global random states, torch's thread count, ``scvi.settings.seed`` and the
logging levels of scvi and lightning are restored when the tool returns.
"""

from __future__ import annotations

import logging
import os
import random
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from .._docs import doc_params
from .._errors import InvalidInputError, InvalidParameterError, MissingDependencyError
from .._keys import OBS, OBSM, UNS
from .._rng import resolve_seed
from .._settings import logger, settings
from .._store import store
from .._validation import check_obs_key, get_matrix, looks_like_counts, start

if TYPE_CHECKING:
    from collections.abc import Iterator

    from anndata import AnnData

    from .._rng import RngLike

__all__ = ["integrate", "transfer_labels"]

#: fewest genes shared by reference and query for label transfer
MIN_SHARED_GENES = 50
#: loggers silenced (to WARNING) while scvi-tools trains
_QUIET_LOGGERS = ("scvi", "lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
_BATCH, _LABEL = "_tm_batch", "_tm_label"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _import_scvi():
    """``scvi`` and ``torch``, or a :class:`MissingDependencyError` that says how to install them."""
    try:
        import scvi
        import torch
    except ImportError as err:  # also raised when sys.modules["scvi"] is None
        raise MissingDependencyError(
            "this tool needs scvi-tools (and torch), which are not installed: "
            'run `pip install "tmeatlas[scvi]"`.'
        ) from err
    return scvi, torch


def _check_positive_int(name: str, value, *, allow_none: bool = False) -> None:
    """Nothing; raises unless ``value`` is a positive integer (or ``None`` when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        extra = " or None" if allow_none else ""
        raise InvalidParameterError(f"{name} must be a positive integer{extra}, got {value!r}.")


def _counts(adata: AnnData, layer: str | None, *, what: str = "adata") -> sparse.csr_matrix:
    """The raw counts of ``adata`` (``layer`` or X) as a new float32 CSR matrix, checked."""
    X = get_matrix(adata, layer)
    where = f"{what}.layers[{layer!r}]" if layer is not None else f"{what}.X"
    if not looks_like_counts(X):
        raise InvalidInputError(
            f"{where} does not hold raw counts (it has negative or non-integer values); scVI models "
            "counts. Pass `layer=` naming the layer with raw UMI counts (e.g. keep them with "
            "`adata.layers['counts'] = adata.X.copy()` before normalising)."
        )
    return sparse.csr_matrix(X, dtype=np.float32, copy=True)


def _unique_var_names(adata: AnnData, what: str) -> None:
    """Nothing; raises when ``adata`` has duplicated gene names."""
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()][:5].tolist()
        raise InvalidInputError(
            f"{what} has duplicated gene names (e.g. {dup}); run `{what}.var_names_make_unique()` first."
        )


def _batch_labels(adata: AnnData, batch_key: str, what: str) -> np.ndarray:
    """The batch of every cell as strings; raises when one is missing."""
    col = adata.obs[batch_key]
    if col.isna().any():
        raise InvalidInputError(
            f"{what}.obs[{batch_key!r}] has {int(col.isna().sum())} missing values; every cell needs a batch."
        )
    return col.astype(str).to_numpy()


def _select_genes(X: sparse.csr_matrix, batches: np.ndarray, n_top_genes: int | None) -> np.ndarray:
    """Column indices of the genes to model: seurat_v3 highly variable genes per batch, or all."""
    n_genes = X.shape[1]
    if n_top_genes is None or n_top_genes >= n_genes:
        return np.arange(n_genes)
    import anndata as ad
    import scanpy as sc

    tmp = ad.AnnData(X=X, obs=pd.DataFrame({_BATCH: batches}, index=np.arange(X.shape[0]).astype(str)))
    tmp.var_names = np.arange(n_genes).astype(str)
    by_batch = len(np.unique(batches)) >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sc.pp.highly_variable_genes(
                tmp, flavor="seurat_v3", n_top_genes=int(n_top_genes), batch_key=_BATCH if by_batch else None
            )
        except ValueError as err:  # the loess fit fails on a batch of a few cells
            if not by_batch:
                raise InvalidInputError(
                    f"highly variable genes could not be ranked ({err}); pass n_top_genes=None to model every gene."
                ) from err
            logger.warning(
                "seurat_v3 gene ranking failed within a batch (%s; a batch with very few cells?): "
                "ranking genes over all cells instead.",
                err,
            )
            sc.pp.highly_variable_genes(tmp, flavor="seurat_v3", n_top_genes=int(n_top_genes))
    return np.flatnonzero(tmp.var["highly_variable"].to_numpy())


def _check_cells_have_counts(X: sparse.csr_matrix, n_top_genes: int | None, what: str) -> None:
    """Nothing; raises when a cell has no counts in the genes modelled."""
    empty = int((np.asarray(X.sum(axis=1)).ravel() <= 0).sum())
    if empty:
        hint = " or raise n_top_genes (or pass n_top_genes=None to use every gene)" if n_top_genes else ""
        raise InvalidInputError(
            f"{empty} cell(s) of {what} have no counts in the genes modelled; scVI needs a positive "
            f"library size per cell. Remove them with `sc.pp.filter_cells(adata, min_counts=1)`{hint}."
        )


def _default_epochs(n_obs: int) -> int:
    """scvi-tools' heuristic: 400 epochs up to 20,000 cells, then ``20000 / n_obs * 400``."""
    return max(min(round(20_000 / n_obs * 400), 400), 1)


@contextmanager
def _scvi_session(seed: int, n_threads: int) -> Iterator[tuple]:
    """Seed scvi-tools, set torch's threads and quieten scvi/lightning; restore everything after."""
    scvi, torch = _import_scvi()
    # the legacy global streams are what seeding touches: save them to give them back
    rng_states = (random.getstate(), np.random.get_state(), torch.get_rng_state())  # noqa: NPY002
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    env = {k: os.environ.get(k) for k in ("XLA_FLAGS", "PL_GLOBAL_SEED", "PL_SEED_WORKERS")}
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    prev_seed = scvi.settings.seed
    prev_threads = torch.get_num_threads()
    quiet = logger.getEffectiveLevel() > logging.DEBUG
    levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    try:
        torch.set_num_threads(n_threads)
        if quiet:
            for name in _QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.WARNING)
        with warnings.catch_warnings():
            if quiet:
                warnings.filterwarnings("ignore", module=r"lightning(\.|$)")
                warnings.filterwarnings("ignore", module=r"scvi(\.|$)")
            scvi.settings.seed = seed
            yield scvi, torch
    finally:
        scvi.settings.seed = prev_seed  # may reseed: the states are restored below
        random.setstate(rng_states[0])
        np.random.set_state(rng_states[1])  # noqa: NPY002
        torch.set_rng_state(rng_states[2])
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        torch.set_num_threads(prev_threads)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _train_kwargs(accelerator: str) -> dict:
    """The lightning trainer arguments of both tools."""
    return {"accelerator": accelerator, "devices": 1, "enable_progress_bar": False}


def _loss_history(model) -> pd.DataFrame:
    """Per-epoch training loss (and ELBO) of a trained scvi-tools model, h5ad-safe."""
    hist = model.history
    cols = [
        k for k in ("train_loss", "elbo_train", "reconstruction_loss_train", "kl_local_train") if k in hist
    ]
    if not cols:
        return pd.DataFrame({"epoch": np.array([], dtype=np.int64)}, index=pd.Index([], dtype=str))
    df = pd.concat([hist[k] for k in cols], axis=1)
    df.columns = cols
    df = df.astype(np.float64).reset_index(drop=True)
    df.insert(0, "epoch", np.arange(len(df), dtype=np.int64))
    df.index = df.index.astype(str)
    return df


def _final_loss(history: pd.DataFrame) -> float:
    """The last epoch's training loss (NaN without history)."""
    return float(history["train_loss"].iloc[-1]) if "train_loss" in history and len(history) else float("nan")


def _check_accelerator(accelerator: str) -> None:
    """Nothing; raises on an unknown ``accelerator``."""
    if not isinstance(accelerator, str) or accelerator not in ("auto", "cpu", "gpu", "cuda", "mps"):
        raise InvalidParameterError(
            f"accelerator must be one of 'auto', 'cpu', 'gpu', 'cuda', 'mps', got {accelerator!r}."
        )


def _check_model_sizes(n_latent, n_layers, n_hidden, n_top_genes, max_epochs) -> None:
    """Nothing; raises unless the model sizes and epochs are positive integers."""
    _check_positive_int("n_latent", n_latent)
    _check_positive_int("n_layers", n_layers)
    _check_positive_int("n_hidden", n_hidden)
    _check_positive_int("n_top_genes", n_top_genes, allow_none=True)
    _check_positive_int("max_epochs", max_epochs, allow_none=True)


# ---------------------------------------------------------------------------------------------
# integrate
# ---------------------------------------------------------------------------------------------


@doc_params("copy")
def integrate(
    adata: AnnData,
    *,
    batch_key: str,
    layer: str | None = None,
    n_latent: int = 10,
    n_layers: int = 1,
    n_hidden: int = 128,
    n_top_genes: int | None = 2000,
    max_epochs: int | None = None,
    accelerator: str = "auto",
    rng: RngLike = 0,
    n_jobs: int | None = None,
    key_added: str = UNS.integrate,
    copy: bool = False,
) -> AnnData | None:
    r"""Batch-corrected latent space of the cells with scVI.

    scVI (Lopez et al., *Nat Methods* 15:1053 (2018)) is a variational autoencoder of the raw
    counts: a cell's counts are negative binomial (gene-specific dispersion),
    :math:`x_{ng} \sim \mathrm{NB}(\ell_n \rho_g(z_n, s_n), \theta_g)`, with library size
    :math:`\ell_n` (the observed total), a latent state :math:`z_n \sim \mathcal N(0, I)` of
    ``n_latent`` dimensions and the batch :math:`s_n` fed to the decoder, so that
    :math:`z_n` needs not encode the batch. The encoder :math:`q(z_n \mid x_n, s_n)` is fit by
    maximising the evidence lower bound; the latent space is its posterior mean.

    With ``n_top_genes``, the model uses the ``n_top_genes`` highly variable genes of the
    counts (scanpy's ``flavor="seurat_v3"``, ranked within each batch and merged), computed on a
    private copy: ``adata.var`` is not changed. The model is fit on a private AnnData, so that
    scvi-tools' set-up keys never land in ``adata``.

    Parameters
    ----------
    adata
        Annotated data matrix with raw counts (non-negative integers) in ``adata.X`` or ``layer``.
    batch_key
        Column of ``adata.obs`` with the batch (sample, patient, technology) to correct for.
    layer
        Layer with the raw counts; ``None`` uses ``adata.X``.
    n_latent
        Dimensions of the latent space.
    n_layers
        Hidden layers of the encoder and the decoder.
    n_hidden
        Units per hidden layer.
    n_top_genes
        Number of highly variable genes to model; ``None`` (or at least the number of genes)
        uses every gene.
    max_epochs
        Training epochs; ``None`` uses scvi-tools' heuristic
        ``min(round(20000 / n_cells * 400), 400)``.
    accelerator
        Passed to the lightning trainer: ``"auto"`` (a GPU when one is available), ``"cpu"``,
        ``"gpu"``/``"cuda"`` or ``"mps"``. Only CPU training is bit-for-bit reproducible.
    rng
        Seed (recorded in ``params["seed"]``): set as ``scvi.settings.seed`` before set-up and
        training. On CPU, the same seed and ``n_jobs`` give the same latent space.
    n_jobs
        Torch threads (default ``tm.settings.n_jobs``; ``-1`` all cores); restored afterwards.
    key_added
        Key of ``adata.uns`` for the record; the latent space (float32, cells x ``n_latent``)
        goes to ``obsm["X_scvi"]``.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obsm["X_scvi"]`` and ``uns[key_added]`` with ``genes`` (the
    genes modelled), ``history`` (per-epoch training loss), ``final_train_loss`` and ``params``
    (including ``seed``, ``n_epochs`` actually trained and ``n_genes`` modelled).

    Raises
    ------
    MissingDependencyError
        When scvi-tools is not installed (``pip install "tmeatlas[scvi]"``).
    InvalidInputError
        When the matrix does not hold raw counts, or a cell has no counts in the genes modelled.
    """
    adata = start(adata, copy)
    if batch_key is None:
        raise InvalidParameterError("batch_key is required: the column of adata.obs holding the batch.")
    check_obs_key(adata, batch_key, what="batch_key", hint="Name the column that holds the batch.")
    _check_model_sizes(n_latent, n_layers, n_hidden, n_top_genes, max_epochs)
    _check_accelerator(accelerator)
    seed = resolve_seed(rng)
    n_threads = settings.resolve_n_jobs(n_jobs)
    _import_scvi()  # fail early, before any work

    X = _counts(adata, layer)
    batches = _batch_labels(adata, batch_key, "adata")
    genes = _select_genes(X, batches, n_top_genes)
    X = X[:, genes]
    _check_cells_have_counts(X, n_top_genes, "adata")
    n_epochs = _default_epochs(adata.n_obs) if max_epochs is None else int(max_epochs)

    import anndata as ad

    work = ad.AnnData(X=X, obs=pd.DataFrame({_BATCH: pd.Categorical(batches)}, index=adata.obs_names.copy()))
    work.var_names = adata.var_names[genes].copy()
    with _scvi_session(seed, n_threads) as (scvi, _torch):
        scvi.model.SCVI.setup_anndata(work, batch_key=_BATCH)
        model = scvi.model.SCVI(work, n_latent=n_latent, n_layers=n_layers, n_hidden=n_hidden)
        model.train(max_epochs=n_epochs, **_train_kwargs(accelerator))
        Z = np.asarray(model.get_latent_representation(), dtype=np.float32)
        history = _loss_history(model)
        version = scvi.__version__
    final_loss = _final_loss(history)
    logger.info(
        "integrate: scVI on %d cells x %d genes, %d batches, %d epochs (final loss %.1f)",
        adata.n_obs,
        len(genes),
        len(np.unique(batches)),
        len(history),
        final_loss,
    )
    store(
        adata,
        tool="tl.integrate",
        obsm={OBSM.scvi: Z},
        uns_key=key_added,
        uns={
            "genes": adata.var_names[genes].astype(str).tolist(),
            "history": history,
            "final_train_loss": final_loss,
        },
        params={
            "method": "scVI",
            "batch_key": batch_key,
            "layer": layer,
            "n_latent": n_latent,
            "n_layers": n_layers,
            "n_hidden": n_hidden,
            "n_top_genes": n_top_genes,
            "max_epochs": max_epochs,
            "n_epochs": len(history) if len(history) else n_epochs,
            "n_genes": len(genes),
            "n_batches": len(np.unique(batches)),
            "final_train_loss": final_loss,
            "accelerator": accelerator,
            "seed": seed,
            "n_jobs": n_threads,
            "key_added": key_added,
            "scvi_tools_version": version,
        },
    )
    return adata if copy else None


# ---------------------------------------------------------------------------------------------
# transfer_labels
# ---------------------------------------------------------------------------------------------


@doc_params("copy")
def transfer_labels(
    adata: AnnData,
    reference: AnnData,
    *,
    label_key: str,
    batch_key: str | None = None,
    layer: str | None = None,
    n_latent: int = 10,
    n_layers: int = 1,
    n_hidden: int = 128,
    n_top_genes: int | None = 2000,
    max_epochs: int | None = None,
    scanvi_epochs: int | None = None,
    accelerator: str = "auto",
    rng: RngLike = 0,
    n_jobs: int | None = None,
    unlabeled_category: str = "Unknown",
    key_added: str = UNS.transfer_labels,
    copy: bool = False,
) -> AnnData | None:
    r"""Transfer cell labels from an annotated reference to the cells of ``adata`` with scANVI.

    Reference and query (``adata``) are concatenated on their shared genes and modelled
    together (joint training, not scArches surgery): first scVI (Lopez et al., *Nat Methods*
    15:1053 (2018)), a negative-binomial variational autoencoder of the counts with the batch
    as covariate, then scANVI (Xu et al., *Mol Syst Biol* 17:e9620 (2021)), initialised from
    the scVI weights, which adds the cell label :math:`y_n` to the generative model,
    :math:`y_n \sim \mathrm{Cat}(\pi)`, :math:`u_n \sim \mathcal N(0, I)`,
    :math:`z_n \mid u_n, y_n \sim \mathcal N(f_\mu(u_n, y_n), f_\sigma(u_n, y_n))`, with the
    reference cells labelled and the query cells unlabelled (their label is marginalised); its
    classifier :math:`q(y_n \mid z_n)` gives each query cell a probability per reference label.
    The label is the most probable one and the confidence its probability.

    The batch covariate is ``"reference"`` or ``"query"``, combined with ``batch_key``
    (``"reference:<batch>"``) when given. With ``n_top_genes``, the model uses the highly
    variable genes of the concatenated counts (``flavor="seurat_v3"`` per batch), computed on
    a private copy; neither AnnData's ``var`` is changed and ``reference`` is never written to.

    Parameters
    ----------
    adata
        The query: annotated data matrix with raw counts in ``adata.X`` or ``layer``.
    reference
        Annotated reference with raw counts in the same place and labels in ``obs[label_key]``
        (cells with a missing label are treated as unlabelled).
    label_key
        Column of ``reference.obs`` with the labels to transfer.
    batch_key
        Column of both ``obs`` with a batch within reference and query (e.g. sample); ``None``
        uses reference vs query only.
    layer
        Layer of both AnnData objects with the raw counts; ``None`` uses ``X``.
    n_latent
        Dimensions of the latent space.
    n_layers
        Hidden layers of the encoder and the decoder.
    n_hidden
        Units per hidden layer.
    n_top_genes
        Number of highly variable shared genes to model; ``None`` uses every shared gene.
    max_epochs
        scVI training epochs; ``None`` uses scvi-tools' heuristic
        ``min(round(20000 / n_cells * 400), 400)`` over reference and query cells.
    scanvi_epochs
        scANVI training epochs; ``None`` uses scvi-tools' heuristic for a pre-trained model,
        ``min(10, max(2, round(h / 3)))`` with ``h`` the scVI heuristic. On a few hundred
        cells, 10 epochs leave the classifier under-trained (low confidences); 30 do better.
    accelerator
        Passed to the lightning trainer: ``"auto"`` (a GPU when one is available), ``"cpu"``,
        ``"gpu"``/``"cuda"`` or ``"mps"``. Only CPU training is bit-for-bit reproducible.
    rng
        Seed (recorded in ``params["seed"]``), set as ``scvi.settings.seed`` before set-up and
        training. On CPU, the same seed and ``n_jobs`` give the same labels.
    n_jobs
        Torch threads (default ``tm.settings.n_jobs``; ``-1`` all cores); restored afterwards.
    unlabeled_category
        Label marking the query cells as unlabelled for scANVI; must not be a reference label.
    key_added
        Key of ``adata.uns`` for the record. The transferred labels go to
        ``obs["transferred_label"]`` (categorical, with the reference's labels as categories) and
        the probability of each transferred label, in [0, 1], to
        ``obs["transferred_label_confidence"]``.
    {copy}

    Returns
    -------
    ``None`` or a copy. Writes ``obs["transferred_label"]``, ``obs["transferred_label_confidence"]``, ``obsm["X_scanvi"]``
    (the query cells' scANVI latent space) and ``uns["transfer_labels"]`` with ``label_counts``
    (label, n_cells, mean_confidence among the query cells), ``reference_accuracy`` (the
    classifier's accuracy on the labelled reference cells, a check of fit, not of transfer),
    ``genes`` (the genes modelled) and ``params`` (including ``seed``, ``n_epochs_scvi``,
    ``n_epochs_scanvi`` and ``n_genes``).

    Raises
    ------
    MissingDependencyError
        When scvi-tools is not installed (``pip install "tmeatlas[scvi]"``).
    InvalidInputError
        When the counts are not raw counts, fewer than 50 genes are shared, the reference has
        fewer than two labels, or a cell has no counts in the genes modelled.
    """
    adata = start(adata, copy)
    _check_reference(adata, reference, label_key, batch_key)
    _check_model_sizes(n_latent, n_layers, n_hidden, n_top_genes, max_epochs)
    _check_transfer_params(scanvi_epochs, accelerator, unlabeled_category)
    seed = resolve_seed(rng)
    n_threads = settings.resolve_n_jobs(n_jobs)
    _import_scvi()

    cats = _reference_labels(reference, label_key, unlabeled_category)
    X, genes, batches, labels, n_shared = _joint_counts(
        adata,
        reference,
        layer=layer,
        label_key=label_key,
        batch_key=batch_key,
        unlabeled_category=unlabeled_category,
        n_top_genes=n_top_genes,
    )
    n_ref, n_query = reference.n_obs, adata.n_obs
    n_epochs, n_epochs_scanvi = _transfer_epochs(X.shape[0], max_epochs, scanvi_epochs)
    labelled_ref = np.flatnonzero(labels[:n_ref] != unlabeled_category)
    proba, Zq, hist_scvi, hist_scanvi, version = _fit_scanvi(
        X,
        genes,
        batches,
        labels,
        labelled_ref,
        n_query=n_query,
        unlabeled_category=unlabeled_category,
        model_kw={"n_latent": n_latent, "n_layers": n_layers, "n_hidden": n_hidden},
        epochs=(n_epochs, n_epochs_scanvi),
        accelerator=accelerator,
        seed=seed,
        n_threads=n_threads,
    )
    q_label, q_conf, ref_acc, counts = _predicted_labels(proba, cats, labels[labelled_ref])
    n_lab = len(labelled_ref)
    logger.info(
        "transfer_labels: scANVI on %d reference + %d query cells x %d genes; reference accuracy %.3f",
        n_ref,
        n_query,
        len(genes),
        ref_acc,
    )
    store(
        adata,
        tool="tl.transfer_labels",
        obs={OBS.transferred_label: q_label, OBS.transferred_confidence: q_conf},
        obsm={OBSM.scanvi: Zq},
        uns_key=key_added,
        uns={
            "label_counts": counts,
            "reference_accuracy": ref_acc,
            "genes": genes.astype(str).tolist(),
            "history_scvi": hist_scvi,
            "history_scanvi": hist_scanvi,
        },
        params={
            "method": "scVI + scANVI",
            "label_key": label_key,
            "batch_key": batch_key,
            "layer": layer,
            "n_latent": n_latent,
            "n_layers": n_layers,
            "n_hidden": n_hidden,
            "n_top_genes": n_top_genes,
            "max_epochs": max_epochs,
            "scanvi_epochs": scanvi_epochs,
            "n_epochs_scvi": len(hist_scvi) if len(hist_scvi) else n_epochs,
            "n_epochs_scanvi": len(hist_scanvi) if len(hist_scanvi) else n_epochs_scanvi,
            "n_genes": len(genes),
            "n_shared_genes": n_shared,
            "n_reference_cells": n_ref,
            "n_labelled_reference_cells": n_lab,
            "final_train_loss_scvi": _final_loss(hist_scvi),
            "final_train_loss_scanvi": _final_loss(hist_scanvi),
            "accelerator": accelerator,
            "unlabeled_category": unlabeled_category,
            "seed": seed,
            "n_jobs": n_threads,
            "key_added": key_added,
            "scvi_tools_version": version,
        },
    )
    return adata if copy else None


def _check_transfer_params(scanvi_epochs: int | None, accelerator: str, unlabeled_category: str) -> None:
    """Nothing; raises on an invalid ``scanvi_epochs``, ``accelerator`` or ``unlabeled_category``."""
    _check_positive_int("scanvi_epochs", scanvi_epochs, allow_none=True)
    _check_accelerator(accelerator)
    if not isinstance(unlabeled_category, str) or not unlabeled_category:
        raise InvalidParameterError(
            f"unlabeled_category must be a non-empty string, got {unlabeled_category!r}."
        )


def _transfer_epochs(n_cells: int, max_epochs: int | None, scanvi_epochs: int | None) -> tuple[int, int]:
    """``(scVI epochs, scANVI epochs)``: the given numbers, or scvi-tools' heuristics for ``n_cells``."""
    n_epochs = _default_epochs(n_cells) if max_epochs is None else int(max_epochs)
    if scanvi_epochs is None:
        n_epochs_scanvi = int(min(10, max(2, round(_default_epochs(n_cells) / 3.0))))
    else:
        n_epochs_scanvi = int(scanvi_epochs)
    return n_epochs, n_epochs_scanvi


def _check_reference(adata: AnnData, reference, label_key: str | None, batch_key: str | None) -> None:
    """Nothing; raises unless ``reference`` is a non-empty AnnData with ``obs[label_key]`` and both
    AnnData objects have ``batch_key`` (when given) and unique gene names.
    """
    from anndata import AnnData as _AnnData

    if not isinstance(reference, _AnnData):
        raise InvalidInputError(
            f"reference must be an AnnData with labelled cells, got {type(reference).__name__}."
        )
    if reference.n_obs == 0 or reference.n_vars == 0:
        raise InvalidInputError(
            f"the reference AnnData is empty ({reference.n_obs} cells x {reference.n_vars} genes)."
        )
    if label_key is None:
        raise InvalidParameterError("label_key is required: the column of reference.obs with the labels.")
    check_obs_key(
        reference, label_key, what="label_key", hint="Name the column of reference.obs with the labels."
    )
    for obj, what in ((adata, "adata"), (reference, "reference")):
        check_obs_key(
            obj,
            batch_key,
            what=f"batch_key (in {what}.obs)",
            hint="batch_key must be a column of both adata.obs and reference.obs, or None.",
        )
        _unique_var_names(obj, what)


def _reference_labels(reference: AnnData, label_key: str, unlabeled_category: str) -> list[str]:
    """The reference's labels (in its category order when categorical, else sorted); raises when
    fewer than two or when ``unlabeled_category`` is one of them.
    """
    lab = reference.obs[label_key]
    present = pd.unique(lab.dropna().astype(str))
    if isinstance(lab.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in lab.cat.categories if str(c) in set(present)]
    else:
        cats = sorted(present)
    if unlabeled_category in cats:
        raise InvalidParameterError(
            f"unlabeled_category {unlabeled_category!r} is one of the reference labels in "
            f"reference.obs[{label_key!r}]; pass another unlabeled_category."
        )
    if len(cats) < 2:
        raise InvalidInputError(
            f"reference.obs[{label_key!r}] has {len(cats)} label(s); label transfer needs at least two."
        )
    return cats


def _joint_counts(
    adata: AnnData,
    reference: AnnData,
    *,
    layer: str | None,
    label_key: str,
    batch_key: str | None,
    unlabeled_category: str,
    n_top_genes: int | None,
) -> tuple[sparse.csr_matrix, pd.Index, np.ndarray, np.ndarray, int]:
    """``(X, genes, batches, labels, n_shared)``: the counts of the reference cells then the query
    cells on the modelled genes (shared, highly variable), those genes, each cell's batch and label
    (``unlabeled_category`` for the query) and the number of shared genes.
    """
    shared = adata.var_names.isin(reference.var_names)
    n_shared = int(shared.sum())
    if n_shared < MIN_SHARED_GENES:
        raise InvalidInputError(
            f"adata ({adata.n_vars} genes) and reference ({reference.n_vars} genes) share "
            f"{'no' if n_shared == 0 else 'only ' + str(n_shared)} genes (need >= {MIN_SHARED_GENES}); "
            "use the same gene identifiers in both (symbols or Ensembl IDs, e.g. via var_names)."
        )
    genes_all = adata.var_names[shared]
    Xq = _counts(adata, layer, what="adata")[:, np.flatnonzero(shared)]
    Xr = _counts(reference, layer, what="reference")[:, reference.var_names.get_indexer(genes_all)]
    X = sparse.vstack([Xr, Xq], format="csr")
    n_ref, n_query = reference.n_obs, adata.n_obs
    origin = np.array(["reference"] * n_ref + ["query"] * n_query, dtype=object)
    if batch_key is None:
        batches = origin.astype(str)
    else:
        inner = np.concatenate(
            [_batch_labels(reference, batch_key, "reference"), _batch_labels(adata, batch_key, "adata")]
        )
        batches = np.char.add(np.char.add(origin.astype(str), ":"), inner.astype(str))
    lab = reference.obs[label_key]
    labels = np.concatenate(
        [
            lab.astype(object).where(lab.notna(), unlabeled_category).astype(str).to_numpy(),
            np.full(n_query, unlabeled_category, dtype=object),
        ]
    ).astype(str)
    cols = _select_genes(X, batches, n_top_genes)
    X = X[:, cols]
    genes = genes_all[cols]
    _check_cells_have_counts(X[:n_ref], n_top_genes, "reference")
    _check_cells_have_counts(X[n_ref:], n_top_genes, "adata")
    return X, genes, batches, labels, n_shared


def _fit_scanvi(
    X: sparse.csr_matrix,
    genes: pd.Index,
    batches: np.ndarray,
    labels: np.ndarray,
    labelled_ref: np.ndarray,
    *,
    n_query: int,
    unlabeled_category: str,
    model_kw: dict,
    epochs: tuple[int, int],
    accelerator: str,
    seed: int,
    n_threads: int,
):
    """``(proba, Zq, hist_scvi, hist_scanvi, version)``: scANVI's label probabilities of the labelled
    reference cells then the query cells, the query's latent space, both training histories and the
    scvi-tools version, from scVI then scANVI fit on the joint counts.
    """
    import anndata as ad

    n_ref = X.shape[0] - n_query
    obs = pd.DataFrame(
        {_BATCH: pd.Categorical(batches), _LABEL: pd.Categorical(labels)},
        index=[f"r{i}" for i in range(n_ref)] + [f"q{i}" for i in range(n_query)],
    )
    work = ad.AnnData(X=X, obs=obs)
    work.var_names = genes.astype(str)
    query_idx = np.arange(n_ref, n_ref + n_query)
    with _scvi_session(seed, n_threads) as (scvi, _torch):
        scvi.model.SCVI.setup_anndata(work, batch_key=_BATCH)
        vae = scvi.model.SCVI(work, **model_kw)
        vae.train(max_epochs=epochs[0], **_train_kwargs(accelerator))
        hist_scvi = _loss_history(vae)
        scanvi = scvi.model.SCANVI.from_scvi_model(
            vae, unlabeled_category=unlabeled_category, labels_key=_LABEL
        )
        scanvi.train(max_epochs=epochs[1], **_train_kwargs(accelerator))
        hist_scanvi = _loss_history(scanvi)
        pred_idx = np.concatenate([labelled_ref, query_idx])
        proba = scanvi.predict(indices=pred_idx, soft=True).loc[work.obs_names[pred_idx]]
        Zq = np.asarray(scanvi.get_latent_representation(indices=query_idx), dtype=np.float32)
        version = scvi.__version__
    return proba, Zq, hist_scvi, hist_scanvi, version


def _predicted_labels(proba: pd.DataFrame, cats: list[str], ref_labels: np.ndarray):
    """``(q_label, q_conf, ref_acc, counts)``: the most probable label of each query cell and its
    probability, the accuracy on the labelled reference cells (``ref_labels``, the first rows of
    ``proba``) and the per-label table of query cells and mean confidence.
    """
    P = proba.reindex(columns=cats, fill_value=0.0).to_numpy(dtype=np.float64)
    P = P / np.maximum(P.sum(axis=1, keepdims=True), 1e-300)
    best = P.argmax(axis=1)
    conf = P[np.arange(len(P)), best]
    cats_arr = np.asarray(cats, dtype=object)
    n_lab = len(ref_labels)
    ref_acc = float(np.mean(cats_arr[best[:n_lab]] == ref_labels)) if n_lab else float("nan")
    q_label = pd.Categorical(cats_arr[best[n_lab:]].astype(str), categories=cats)
    q_conf = conf[n_lab:].astype(np.float64)
    counts = pd.DataFrame(
        {
            "label": cats,
            "n_cells": [int((q_label == c).sum()) for c in cats],
            "mean_confidence": [
                float(q_conf[q_label == c].mean()) if (q_label == c).any() else float("nan") for c in cats
            ],
        }
    )
    counts.index = counts.index.astype(str)
    return q_label, q_conf, ref_acc, counts
