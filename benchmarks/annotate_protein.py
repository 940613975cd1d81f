"""``tm.tl.annotate`` on multiplexed protein imaging: the shared real panels, constructs, speed.

Run by hand from the project root (results: ``benchmarks/results/annotate_protein.json``):

    .venv/bin/python benchmarks/annotate_protein.py

* **Real panels** (``../shared/data/real``): akoyabio/phenoptr multiplex IF (CD8, FoxP3, CD68, CK,
  PD-1, PD-L1, DAPI; the inForm phenotypes CD8+, FoxP3+ as T cells, CD68+ as myeloid, CK+ as
  epithelial, "other" left out) and the scimap CyCIF lymphoma image (33 antibodies; the authors'
  gated phenotypes mapped as in ``benchmarks/realdata.py``; the CD30+ lymphoma cells have no class
  of the vocabulary and are counted in ``tumour_given_normal_type``). Per set: balanced accuracy,
  recall per class, the reliability curve (accuracy per confidence bin) and the share of cells
  with confidence >= 0.8 and their accuracy; and, counting the cells the authors left outside these
  classes ("other", unmapped populations) against any class they are given: precision per class,
  macro-F1, and the accuracy of every cell given one of the classes at confidence >= 0.8.
* **Routes compared on the same cells:** ``protein`` (the default for such data), ``rna`` (the
  route these panels took before: the RNA marker library on the intensities), and an anchor,
  per-channel gating as scimap and many imaging studies do it: a two-component Gaussian mixture
  per channel on ``log1p`` intensities (scikit-learn), each cell's positive-component posterior,
  the type with the highest mean posterior over its positive markers less its highest negative
  marker's posterior (the same library), Unassigned below 0.5. As a ceiling, classifiers trained on
  the authors' labels (logistic regression and gradient boosting, 5-fold cross-validated).
* **Constructs** (:func:`tmeatlas.datasets._constructs.protein_panel`): a tumour field with 80 %
  keratin-positive cells; two slides, the second twice as bright with one channel three times
  brighter still (with ``sample_key``); fine-type accuracy over the cells of named populations.
* **Speed**: 100,000 and 1,000,000 cells of the constructed 9-channel panel; ratio to an anchor
  measured in the same run (``X.sum(axis=0)``, best of 3).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results
from realdata import CYCIF_CLASSES, PHENOPTR_CLASSES, REAL

RESULTS = Path(__file__).resolve().parent / "results" / "annotate_protein.json"
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


def _load():
    """(name, AnnData, truth major per cell or None, tumour-cell mask or None) per shared panel."""
    import anndata as ad

    import tmeatlas as tm

    out = []
    path = REAL / "phenoptr_multiplex_if_cells.csv.gz"
    if path.exists():
        a = tm.read(path)
        out.append(("phenoptr_multiplex_if", a, a.obs["Phenotype"].astype(str).map(PHENOPTR_CLASSES), None))
    path = REAL / "scimap_cycif_lymphoma.h5ad"
    if path.exists():
        a = ad.read_h5ad(path)
        ph = a.obs["phenotype"].astype(str)
        out.append(("scimap_cycif_lymphoma", a, ph.map(CYCIF_CLASSES), ph.str.startswith("Tumor").to_numpy()))
    return out


#: phenoptr's classes named as the vocabulary names them
_PHENOPTR_AS_MAJOR = {"T cell": "T cell", "CD68+": "Myeloid", "CK+": "Epithelial"}


def _gating_anchor(a) -> np.ndarray:
    """Major types by per-channel mixture gating (see the module docstring)."""
    from sklearn.mixture import GaussianMixture

    from tmeatlas.tl._annotate_protein import _dense, panel_markers, protein_table

    markers = panel_markers(a.var_names)
    post = {}
    for j in np.flatnonzero(markers.to_numpy() != ""):
        x = np.maximum(_dense(a.X[:, j]).ravel(), 0.0)
        t = np.log1p(x / max(float(np.median(x[x > 0])), 1e-12))[:, None]
        g = GaussianMixture(2, random_state=0).fit(t)
        post.setdefault(markers.iloc[j], []).append(g.predict_proba(t)[:, int(np.argmax(g.means_.ravel()))])
    P = {m: np.mean(v, axis=0) for m, v in post.items()}
    tab = protein_table()
    best, major = np.full(a.n_obs, -np.inf), np.full(a.n_obs, "Unassigned", dtype=object)
    for _, rows in tab.groupby("cell_type", sort=False):
        pos = [m for m in rows.loc[rows["direction"] == "+", "marker"] if m in P]
        if not any(
            m in P for m in rows.loc[(rows["direction"] == "+") & (rows["role"] == "defining"), "marker"]
        ):
            continue
        neg = [m for m in rows.loc[rows["direction"] == "-", "marker"] if m in P]
        s = np.mean([P[m] for m in pos], axis=0) * (1 - (np.max([P[m] for m in neg], axis=0) if neg else 0.0))
        better = s > best
        best[better], major[better] = s[better], rows["cell_type_major"].iloc[0]
    major[best < 0.5] = "Unassigned"
    return major


def _score(name: str, major: np.ndarray, conf: np.ndarray | None, truth: pd.Series, tumour) -> dict:
    ref = truth.map(_PHENOPTR_AS_MAJOR) if name.startswith("phenoptr") else truth
    ref = ref.to_numpy(object)
    keep = pd.notna(ref)
    recall = {c: round(float((major[keep & (ref == c)] == c).mean()), 3) for c in sorted(set(ref[keep]))}
    out = {"balanced_accuracy": round(float(np.mean(list(recall.values()))), 3), "recall": recall,
           "unassigned_share": round(float((major[keep] == "Unassigned").mean()), 3)}  # fmt: skip
    if conf is not None:
        ok = major == ref
        curve = []
        for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
            m = keep & (conf >= lo) & (conf < hi)
            curve.append({"bin": f"[{lo:.1f}, {min(hi, 1.0):.1f}]", "n": int(m.sum()),
                          "accuracy": round(float(ok[m].mean()), 3) if m.any() else None})  # fmt: skip
        high = keep & (conf >= 0.8)
        out["reliability"] = curve
        out["confidence_0.8_share"] = round(float(high.sum() / keep.sum()), 3)
        out["confidence_0.8_accuracy"] = round(float(ok[high].mean()), 3) if high.any() else None
    # precision: the cells the authors left outside these classes ("other", unmapped populations)
    # count against a class they are given
    classes = sorted(set(ref[keep]))
    out["precision"] = {c: round(float((ref[major == c] == c).mean()), 3) if (major == c).any() else None
                        for c in classes}  # fmt: skip
    f1 = [2 * out["precision"][c] * recall[c] / (out["precision"][c] + recall[c])
          if out["precision"][c] and recall[c] else 0.0 for c in classes]  # fmt: skip
    out["macro_f1"] = round(float(np.mean(f1)), 3)
    if conf is not None:
        typed = np.isin(major, classes) & (conf >= 0.8)
        out["confidence_0.8_accuracy_all_cells"] = (
            round(float((major[typed] == ref[typed]).mean()), 3) if typed.any() else None
        )
    if tumour is not None:
        out["tumour_given_normal_type"] = round(
            float((~np.isin(major[tumour], ["Unassigned", "Malignant"])).mean()), 3
        )
    return out


def _ceiling(a, name: str, truth: pd.Series) -> dict:
    """Balanced accuracy of classifiers trained on the authors' labels (5-fold cross-validated, on
    ``log1p`` of every channel): what these intensities support when the labels are known."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from tmeatlas.tl._annotate_protein import _dense

    keep = truth.notna().to_numpy()
    X = np.log1p(np.maximum(_dense(a.X), 0.0))[keep]
    y = truth.to_numpy(object)[keep].astype(str)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    out = {}
    for label, clf in (("logistic", LogisticRegression(max_iter=3000, class_weight="balanced")),
                       ("gradient_boosting", HistGradientBoostingClassifier(max_iter=300, class_weight="balanced",
                                                                            random_state=0))):  # fmt: skip
        out[label] = round(float(balanced_accuracy_score(y, cross_val_predict(clf, X, y, cv=cv))), 3)
    return out


def _median_z(a, name: str) -> dict:
    """Median background-scaled intensity (robust SDs above the channel's background) of each
    library channel, per author population: what each population shows."""
    from tmeatlas.tl._annotate_protein import _marker_z, panel_markers

    Z = _marker_z(a.X, panel_markers(a.var_names), np.zeros(a.n_obs, object))
    col = "Phenotype" if name.startswith("phenoptr") else "phenotype"
    Z["population"] = a.obs[col].astype(str).to_numpy()
    med = Z.groupby("population").median().round(2)
    return {p: med.loc[p].to_dict() for p in med.index}


def _real() -> dict:
    import tmeatlas as tm

    res = {}
    for name, a, truth, tumour in _load():
        row = {"cells": int(a.n_obs), "channels": int(a.n_vars)}
        for route in ("protein", "rna"):
            b = a.copy()
            tm.tl.annotate(b, modality=route)
            row[route] = _score(name, b.obs["cell_type_major"].astype(str).to_numpy(),
                                b.obs["cell_type_confidence"].to_numpy(float), truth, tumour)  # fmt: skip
        row["gating_anchor"] = _score(name, _gating_anchor(a), None, truth, tumour)
        row["supervised_ceiling"] = _ceiling(a, name, truth)
        row["median_channel_z"] = _median_z(a, name)
        res[name] = row
    return res


def _constructs() -> dict:
    import anndata as ad

    import tmeatlas as tm
    from tmeatlas.datasets._constructs import protein_panel

    sizes = {"CD8 T": 150, "CD4 T": 150, "Treg": 60, "macrophage": 200, "epithelial": 600, "myCAF": 150}
    out = {}
    for seed in (0, 1, 2):
        a = protein_panel({"epithelial": 2400, "CD8 T": 200, "macrophage": 200, "myCAF": 200}, seed=seed)
        tm.tl.annotate(a)
        epi = (a.obs["truth"] == "epithelial").to_numpy()
        maj = a.obs["cell_type_major"].astype(str).to_numpy()
        s1, s2 = protein_panel(sizes, seed=seed), protein_panel(sizes, seed=seed + 10, brightness=2.0)
        s2.X[:, list(s2.var_names).index("CD8")] *= 3.0
        both = ad.concat({"s1": s1, "s2": s2}, label="slide", index_unique="-")
        tm.tl.annotate(both, sample_key="slide")
        named = both.obs["truth"] != "none"
        right = (both.obs["cell_type"].astype(str) == both.obs["truth"])[named]
        out[f"seed{seed}"] = {
            "tumour_field_epithelial_recall": round(float((maj[epi] == "Epithelial").mean()), 3),
            "tumour_field_others_called_epithelial": round(float((maj[~epi] == "Epithelial").mean()), 3),
            "two_slides_fine_accuracy": {s: round(float(right[both.obs["slide"][named] == s].mean()), 3) for s in ("s1", "s2")},
        }  # fmt: skip
    return out


def _speed() -> dict:
    import anndata as ad

    import tmeatlas as tm
    from tmeatlas.datasets._constructs import protein_panel

    base = protein_panel({"CD8 T": 1500, "CD4 T": 1500, "Treg": 600, "macrophage": 2000, "epithelial": 6000,
                          "myCAF": 1500, "none": 3000})  # fmt: skip
    tm.tl.annotate(base.copy())  # warm-up: imports and first calls
    out = {}
    for n in (100_000, 1_000_000):
        idx = np.random.default_rng(0).integers(0, base.n_obs, n)
        a = ad.AnnData(base.X[idx], var=base.var.copy())
        anchor = []
        for _ in range(3):
            t = time.perf_counter()
            a.X.sum(axis=0)
            anchor.append(time.perf_counter() - t)
        t = time.perf_counter()
        tm.tl.annotate(a)
        sec = time.perf_counter() - t
        out[str(n)] = {"seconds": round(sec, 2), "anchor_seconds": round(min(anchor), 4),
                       "x_anchor": round(sec / min(anchor), 1)}  # fmt: skip
    return out


def main() -> None:
    warnings.simplefilter("ignore")
    body = {"real": _real(), "constructs": _constructs(), "speed": _speed()}
    body["summary"] = {name: {**{r: row[r]["balanced_accuracy"] for r in ("protein", "rna", "gating_anchor")},
                              "supervised_ceiling": row["supervised_ceiling"]}
                       for name, row in body["real"].items()}  # fmt: skip
    write_results(RESULTS, "tm.tl.annotate on multiplexed protein panels", {"bins": list(BINS)}, body)


if __name__ == "__main__":
    main()
