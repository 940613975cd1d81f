"""Settings, logging, rng convention, result storage and validation helpers."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import tmeatlas as tm
from tmeatlas._rng import make_rng, resolve_seed, spawn_seeds
from tmeatlas._store import h5ad_safe, store
from tmeatlas._validation import check_obs_key, get_matrix, looks_like_counts, start


def test_settings_and_logger_do_not_touch_root():
    root_handlers = list(logging.getLogger().handlers)
    old = tm.settings.verbosity
    try:
        tm.settings.verbosity = 3
        assert logging.getLogger("tmeatlas").level == logging.DEBUG
        with pytest.raises(tm.InvalidParameterError):
            tm.settings.verbosity = 7
    finally:
        tm.settings.verbosity = old
    assert logging.getLogger().handlers == root_handlers
    assert logging.getLogger("tmeatlas").propagate is False
    assert tm.settings.resolve_n_jobs(None) == tm.settings.n_jobs
    assert tm.settings.resolve_n_jobs(-1) >= 1
    with pytest.raises(tm.InvalidParameterError):
        tm.settings.resolve_n_jobs(0)


def test_rng_convention():
    assert resolve_seed(5) == 5
    g1, g2 = np.random.default_rng(1), np.random.default_rng(1)
    assert resolve_seed(g1) == resolve_seed(g2)
    assert resolve_seed(None) != resolve_seed(None)
    for bad in (-1, 1.5, "x", True):
        with pytest.raises(tm.InvalidParameterError):
            resolve_seed(bad)
    assert make_rng(3).random() == make_rng(3).random()
    s = spawn_seeds(7, 4)
    assert len(set(s.tolist())) == 4 and (spawn_seeds(7, 4) == s).all()
    assert (spawn_seeds(7, 6)[:4] == s).all()  # a stream does not depend on how many were asked for


def test_store_logs_and_is_h5ad_safe(tmp_path, caplog):
    a = ad.AnnData(X=sparse.eye(3, format="csr", dtype=np.float32))
    old = tm.settings.verbosity
    tm.settings.verbosity = 2
    logger = logging.getLogger("tmeatlas")
    logger.addHandler(caplog.handler)
    try:
        added = store(
            a,
            tool="tl.example",
            obs={"score": np.array([0.1, 0.2, 0.3])},
            obsm={"X_example": np.ones((3, 2))},
            uns_key="example",
            uns={"table": pd.DataFrame({"a": [1, 2], "b": ["x", None]}), "tuple": (1, 2), "set": {"b", "a"}},
            params={"reference_key": None, "window": 101, "cats": ["x", "y"], "path": tmp_path},
        )
    finally:
        logger.removeHandler(caplog.handler)
        tm.settings.verbosity = old
    assert added == ["obs['score']", "obsm['X_example']", "uns['example']"]
    assert "tl.example added obs['score']" in caplog.text
    assert a.uns["example"]["params"]["reference_key"] == "None"
    assert list(a.uns["tmeatlas_log"]["tool"]) == ["tl.example"]
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad")
    assert list(b.uns["example"]["set"]) == ["a", "b"]
    assert b.uns["example"]["params"]["window"] == 101
    assert list(b.uns["example"]["table"]["b"]) == ["x", "None"]
    assert h5ad_safe([1, "a"]) == {"0": 1, "1": "a"}


def test_validation_helpers():
    a = ad.AnnData(
        X=sparse.csr_matrix(np.array([[1.0, 0], [2, 3]])),
        obs=pd.DataFrame({"s": ["a", "b"]}, index=["c1", "c2"]),
    )
    assert start(a, False) is a and start(a, True) is not a
    with pytest.raises(tm.InvalidParameterError):
        start(a, "yes")
    with pytest.raises(tm.InvalidInputError, match="empty"):
        start(a[:0].copy(), False)
    with pytest.raises(tm.MissingResultError, match="layer 'counts' not found"):
        get_matrix(a, "counts")
    with pytest.raises(tm.MissingResultError, match="sample_key 'patient' is not a column"):
        check_obs_key(a, "patient", what="sample_key")
    assert looks_like_counts(a.X)
    assert not looks_like_counts(np.log1p(a.X.toarray() + 0.5))


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, tmeatlas; print(int('scanpy' in sys.modules), int('matplotlib.pyplot' in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["0", "0"], "import tmeatlas must not import scanpy or pyplot"


def test_suggest_names_hints_close_spellings():
    from tmeatlas._validation import suggest_names

    hint = suggest_names(["palbociclb"], ["palbociclib", "ribociclib"])
    assert hint == "'palbociclb': did you mean 'palbociclib', 'ribociclib'?"
    # aliases map to the name that is suggested; case is ignored
    assert (
        suggest_names(["KEYTRUDA"], {"keytruda": "pembrolizumab"})
        == "'KEYTRUDA': did you mean 'pembrolizumab'?"
    )
    assert suggest_names(["zzz"], ["palbociclib"]) == ""


def test_signed_rank_test_matches_scipy():
    """Known answers (all of n differences positive: p = 2 / 2^n) and scipy's ``wilcoxon`` on
    random differences, with and without ties and zeros (those go to scipy)."""
    import warnings

    from scipy.stats import wilcoxon

    from tmeatlas._core.stats import signed_rank_test

    assert signed_rank_test(np.array([0.5, 1.0, 2.0, 3.0])) == (0.0, 0.125)
    assert signed_rank_test(np.arange(1.0, 7.0))[1] == pytest.approx(2 / 64)
    assert signed_rank_test(np.array([1.0, -2.0, 3.0])) == (2.0, 0.75)  # P(T+ >= 4) = 3/8
    gen = np.random.default_rng(0)
    for it in range(400):
        d = gen.normal(size=int(gen.integers(2, 60))) + gen.normal() * 0.5
        if it % 4 == 0:
            d = np.round(d, 1)  # ties and zeros
        if not (d != 0).any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = wilcoxon(d, alternative="two-sided", zero_method="wilcox")
        stat, p = signed_rank_test(d)
        assert stat == float(ref.statistic)
        assert p == pytest.approx(float(ref.pvalue), rel=1e-12)
