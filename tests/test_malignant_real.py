"""Malignant calls on a real tumour whose cancer cells partly look like stroma (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

import tmeatlas as tm


@pytest.mark.realdata
def test_qian_ovarian_fibroblast_like_cancer_cells(qian_ovarian):
    """Qian 2020 HGSOC: in sample 14 ~300 of 685 cancer cells express collagens, LUM and MMP2
    and no epithelial marker. An unchecked automatic reference took them (and 243 cancer cells in
    all) as normal: F1 0.70 overall and 0 in sample 14. Checked against the immune cells, the
    reference keeps them out. benchmarks/malignant_real.py: F1 0.99 overall, >= 0.95 in every
    sample, 0.999 in sample 14; asserted with a margin of 0.05."""
    a = qian_ovarian
    truth = (a.obs["author_cell_type"] == "Epithelial").to_numpy()
    tm.pp.gene_positions(a)
    tm.tl.infer_cnv(a, sample_key="sample")
    tm.tl.call_malignant(a, sample_key="sample")
    pred = (a.obs["malignant"] == "malignant").to_numpy()
    assert f1_score(truth, pred) >= 0.93
    s = a.obs["sample"].astype(str).to_numpy()
    for name in np.unique(s):
        i = s == name
        assert f1_score(truth[i], pred[i]) >= 0.9, name
    assert a.obs.loc[truth, "cnv_reference"].sum() <= 0.02 * truth.sum()
    checks = a.uns["cnv"]["reference"]["lineage_checks"]
    assert checks.loc[checks["sample"] == "14", "cnv"].any()
    tab = a.uns["malignant"]["samples"].set_index("sample")
    assert tab["trusted"].all() and (tab["separation"] > 2).all()


def _tumour_share(truth: np.ndarray, samples: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """All malignant cells and a random subset of each sample's normal cells (malignant = ``share``)."""
    gen = np.random.default_rng(seed)
    keep = truth.copy()
    for s in np.unique(samples):
        i, j = np.flatnonzero((samples == s) & truth), np.flatnonzero((samples == s) & ~truth)
        keep[gen.choice(j, min(len(j), int(round(len(i) * (1 - share) / share))), replace=False)] = True
    return keep


@pytest.mark.realdata
def test_copykat_tumour_dominated_keeps_only_confirmed_reference(copykat_breast):
    """CopyKAT breast example cut to 97 % aneuploid cells (7 diploid cells left): most reference
    candidates are tumour cells, and the copy-number checks reject all but 6. The reference used to
    fall back to every candidate when fewer than ``min_reference_cells`` survived (F1 0.51, no
    warning); now it keeps the confirmed cells and says so (benchmarks/malignant_real.py: F1 0.991)."""
    a = copykat_breast
    truth = (a.obs["copykat.pred"].astype(str) == "aneuploid").to_numpy()
    a = a[_tumour_share(truth, np.zeros(a.n_obs), 0.97)].copy()
    truth = (a.obs["copykat.pred"].astype(str) == "aneuploid").to_numpy()
    tm.pp.gene_positions(a)
    with pytest.warns(UserWarning, match="candidate normal cells passed the copy-number checks"):
        tm.tl.infer_cnv(a)
    assert a.obs.loc[truth, "cnv_reference"].sum() == 0  # no rejected (tumour) cell returns to the reference
    tm.tl.call_malignant(a)
    assert f1_score(truth, (a.obs["malignant"] == "malignant").to_numpy()) >= 0.94


@pytest.mark.realdata
def test_qian_tumour_dominated_never_confidently_wrong(qian_ovarian):
    """Qian 2020 with every sample cut to 97 % cancer cells (5-21 normal cells per sample). Before:
    sample 12 was called with F1 0.07 and no uncertain cell (its mixture's normal component took the
    tumour), sample 11 non-malignant at 90 %. Now every sample is either called well or uncertain
    with its reason (benchmarks/malignant_real.py, seed 0: samples 11, 13, 14 F1 >= 0.97; 12 uncertain)."""
    a = qian_ovarian
    truth = (a.obs["author_cell_type"] == "Epithelial").to_numpy()
    a = a[_tumour_share(truth, a.obs["sample"].astype(str).to_numpy(), 0.97)].copy()
    truth = (a.obs["author_cell_type"] == "Epithelial").to_numpy()
    tm.pp.gene_positions(a)
    tm.tl.infer_cnv(a, sample_key="sample")
    with pytest.warns(UserWarning, match="are marked uncertain"):
        tm.tl.call_malignant(a, sample_key="sample")
    calls = a.obs["malignant"].to_numpy()
    s = a.obs["sample"].astype(str).to_numpy()
    tab = a.uns["malignant"]["samples"].set_index("sample")
    n_good = 0
    for name in np.unique(s):
        i = s == name
        f1 = f1_score(truth[i], calls[i] == "malignant")
        assert f1 >= 0.85 or (calls[i] == "uncertain").mean() > 0.5, (name, f1)
        assert (calls[i][~truth[i]] == "malignant").mean() <= 0.1  # every sample keeps >= 5 normal cells
        n_good += f1 >= 0.85
        if f1 < 0.85:
            assert not tab.loc[name, "trusted"] and tab.loc[name, "reason"]
    assert n_good >= 3
