"""``_store``: parameters recorded by ``store`` (through ``h5ad_safe``) read back as plain Python values by
``read_params``, in memory and after an h5ad round trip."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from tmeatlas._store import h5ad_safe, plain, read_params, store

#: what a tool records, and what read_params must give back (h5ad_safe's encoding undone)
PARAMS = {
    "none": None,
    "int": 3,
    "np_int": np.int64(4),
    "float": 2.5,
    "str": "x",
    "the_string_none": "None",
    "bool": True,
    "ints": [1, 2],
    "strs": ["u", "v"],
    "bools": (True, False),
    "empty": [],
    "mixed": (1, "a"),
    "set": {"y", "x"},
    "path": Path("/tmp/results"),
    "nested": {"key": None, "flags": [False, True], "n": 7},
}
EXPECTED = {
    "none": None,
    "int": 3,
    "np_int": 4,
    "float": 2.5,
    "str": "x",
    "the_string_none": None,  # h5ad_safe writes None as "None": the two cannot be told apart
    "bool": True,
    "ints": [1, 2],
    "strs": ["u", "v"],
    "bools": [True, False],
    "empty": [],
    "mixed": {"0": 1, "1": "a"},  # a mixed list is stored as a mapping of positions
    "set": ["x", "y"],  # sorted
    "path": "/tmp/results",
    "nested": {"key": None, "flags": [False, True], "n": 7},
}


def _typed(v):
    """``v`` with the type of every element, to compare types as well as values."""
    if isinstance(v, dict):
        return {k: _typed(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_typed(x) for x in v]
    return (type(v).__name__, v)


def _adata() -> ad.AnnData:
    a = ad.AnnData(X=np.zeros((3, 2), dtype=np.float32))
    store(a, tool="test", uns_key="result", uns={"table": pd.DataFrame({"x": [1, 2]})}, params=PARAMS)
    return a


def test_read_params_inverts_h5ad_safe():
    a = _adata()
    assert _typed(read_params(a, "result")) == _typed(EXPECTED)
    # the same on a bare h5ad_safe encoding, and plain() alone on each value
    enc = h5ad_safe(PARAMS)
    assert _typed({k: plain(v) for k, v in enc.items()}) == _typed(EXPECTED)


def test_read_params_after_h5ad_round_trip(tmp_path):
    a = _adata()
    a.write_h5ad(tmp_path / "x.h5ad")
    back = ad.read_h5ad(tmp_path / "x.h5ad")
    assert _typed(read_params(back, "result")) == _typed(EXPECTED)


@pytest.mark.parametrize(
    "uns",
    [{}, {"result": "not a mapping"}, {"result": {"table": 1}}, {"result": {"params": [1, 2]}}],
)
def test_read_params_absent_is_empty(uns):
    a = ad.AnnData(X=np.zeros((2, 2), dtype=np.float32))
    a.uns.update(uns)
    assert read_params(a, "result") == {}


def test_plain_known_answers():
    assert plain(np.array(5)) == 5 and type(plain(np.array(5))) is int
    assert plain(np.float32(0.5)) == 0.5 and type(plain(np.float32(0.5))) is float
    assert plain(b"abc") == "abc"
    assert plain(np.array([b"a", b"b"])) == ["a", "b"]
    assert plain(np.array([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]
    assert plain(np.array(["None", "x"])) == [None, "x"]
    assert plain({1: np.bool_(False)}) == {"1": False}
