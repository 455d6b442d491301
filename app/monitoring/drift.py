"""Drift statistics of live windows against a reference profile (:mod:`app.core.profile`).

The reference profile is built at training time (:func:`~app.core.profile.build_profile`, re-exported here for
the callers that know it by this path) and travels inside the model bundle; see :mod:`app.core.profile` for
what it holds.

Drift of a window of live values against a profile entry:

* PSI (population stability index) over the profile's bins: ``sum((a - e) * ln(a / e))`` with shares floored
  at 1e-4; rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major;
* numeric: ``scipy.stats.ks_2samp`` against the reference sample; categorical: chi-square test of
  homogeneity (``scipy.stats.chi2_contingency``) between reference and live counts;
* a feature drifts when PSI >= ``psi_threshold`` **and** the test's p-value < ``p_value``: PSI alone is biased
  upwards on small windows, a p-value alone flags negligible shifts on large ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.core.profile import OTHER, PROFILE_FORMAT, bin_index, build_profile

__all__ = ["EPS", "OTHER", "PROFILE_FORMAT", "FeatureDrift", "bin_index", "build_profile", "category_codes",
           "drift_report", "feature_drift", "psi", "window_values"]

EPS = 1e-4


# ---- comparing a window to a profile ---------------------------------------------------------------------
def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(np.asarray(expected, dtype=float), EPS)
    a = np.maximum(np.asarray(actual, dtype=float), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical | score
    rows: int
    psi: float
    test: str  # ks | chi2
    statistic: float
    p_value: float
    missing_rate: float
    reference_missing_rate: float
    drifted: bool
    expected: list[float]
    actual: list[float]
    bins: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


def _bin_labels(cuts: list[float]) -> list[str]:
    if not cuts:
        return ["all"]
    c = [f"{v:g}" for v in cuts]
    return [f"< {c[0]}", *[f"[{c[i]}, {c[i + 1]})" for i in range(len(c) - 1)], f">= {c[-1]}"]


def category_codes(entry: dict[str, Any]) -> list[float]:
    """The model-matrix code of each category of a categorical profile entry (profiles written before string
    categories had no ``codes``: their categories were the integer codes themselves)."""
    codes = entry.get("codes")
    return [float(c) for c in (codes if codes is not None else entry["categories"][:-1])]


def window_values(entry: dict[str, Any], values: Any) -> np.ndarray:
    """A window's values as floats (NaN = missing), given as model-matrix codes or as the values themselves.

    For a categorical entry, text values (``self-employed``) are looked up among the categories; a text value
    outside them counts in the ``other`` bucket. For a numeric entry, a value that is not a number is missing."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(float)
    obj = pd.Series(arr.ravel(), dtype=object)
    missing = obj.isna().to_numpy() | (obj.astype(str).str.strip() == "").to_numpy()
    if entry["type"] != "categorical":
        out = pd.to_numeric(obj, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.where(missing, np.nan, out)
    by_text = dict(zip(entry["categories"][:-1], category_codes(entry), strict=True))
    numeric = pd.to_numeric(obj, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    looked_up = obj.map(lambda v: by_text.get(str(v), np.inf)).to_numpy(dtype=float)
    # a number is a code only when the categories are integers (a text category is never given by position)
    use_numeric = ~np.isnan(numeric) & _integer_categories(entry)
    return np.where(missing, np.nan, np.where(use_numeric, numeric, looked_up))


def _integer_categories(entry: dict[str, Any]) -> bool:
    """Whether the categories are integer codes that are their own model-matrix values (the UCI layout)."""
    codes = category_codes(entry)
    return [f"{c:g}" for c in codes] == entry["categories"][:-1]


def feature_drift(name: str, entry: dict[str, Any], values: np.ndarray, psi_threshold: float = 0.2,
                  p_threshold: float = 0.01, kind: str | None = None) -> FeatureDrift:
    """Drift of ``values`` (NaN = missing; or the values as given, :func:`window_values`) against one profile
    entry."""
    from scipy import stats

    values = window_values(entry, values)
    present = values[~np.isnan(values)]
    missing = float(1 - present.size / values.size) if values.size else float("nan")
    if entry["type"] == "categorical":
        cats = entry["categories"]
        codes = category_codes(entry)
        counts = [int(np.sum(present == c)) for c in codes]
        counts.append(int(present.size - sum(counts)))
        actual = np.asarray(counts, dtype=float) / max(present.size, 1)
        ref_counts = np.asarray(entry.get("counts") or np.asarray(entry["expected"]) * entry["rows"], dtype=float)
        table = np.vstack([ref_counts, counts])
        table = table[:, table.sum(axis=0) > 0]
        if present.size and table.shape[1] >= 2:
            chi = stats.chi2_contingency(table, correction=False)
            stat, p = float(chi.statistic), float(chi.pvalue)
        else:
            stat, p = 0.0, 1.0
        test, bins = "chi2", list(cats)
    else:
        cuts = entry["cuts"]
        actual = np.bincount(bin_index(cuts, present), minlength=len(cuts) + 1) / max(present.size, 1)
        if present.size and entry["sample"]:
            ks = stats.ks_2samp(np.asarray(entry["sample"]), present)
            stat, p = float(ks.statistic), float(ks.pvalue)
        else:
            stat, p = 0.0, 1.0
        test, bins = "ks", _bin_labels(cuts)
    value = psi(entry["expected"], actual) if present.size else float("nan")
    drifted = bool(present.size and value >= psi_threshold and p < p_threshold)
    return FeatureDrift(feature=name, kind=kind or entry["type"], rows=int(present.size), psi=value, test=test,
                        statistic=stat, p_value=p, missing_rate=missing,
                        reference_missing_rate=float(entry.get("missing_rate", 0.0)), drifted=drifted,
                        expected=[round(float(v), 6) for v in entry["expected"]],
                        actual=[round(float(v), 6) for v in actual], bins=bins)


def drift_report(profile: dict[str, Any], X: np.ndarray, names: list[str], score: np.ndarray | None = None,  # noqa: N803
                 psi_threshold: float = 0.2, p_threshold: float = 0.01) -> dict[str, Any]:
    """Drift of every profiled feature in ``X`` (columns named by ``names``) and of the score.

    ``X`` holds model-matrix codes (floats, NaN = missing) or, as an object array, the values as given
    (string categories as text, :func:`window_values`)."""
    X = np.asarray(X)  # noqa: N806 (floats, or objects when string values are given as text)
    out = []
    for j, name in enumerate(names):
        entry = profile["features"].get(name)
        if entry is None:
            continue
        out.append(feature_drift(name, entry, X[:, j], psi_threshold, p_threshold))
    score_drift = None
    if score is not None and profile.get("score"):
        score_drift = feature_drift("score", profile["score"], np.asarray(score, dtype=float), psi_threshold,
                                    p_threshold, kind="score")
    drifted = [d.feature for d in out if d.drifted]
    return {"features": out, "score": score_drift, "drifted": drifted, "rows": int(len(X))}
