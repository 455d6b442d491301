"""Fairness across protected groups (the schema's ``protected: true`` features: sex, age, marriage).

Per group: the approval rate (share not predicted bad), the true-positive rate (share of bad applicants
predicted bad) and the false-positive rate (share of good applicants predicted bad). Between groups of one
feature: each rate's ratio min/max across groups, and each group's approval rate relative to the most-approved
group (the "adverse impact ratio"; the four-fifths rule of thumb flags a ratio below 0.8). The same table serves
the training report (holdout) and the monitor report (live predictions, TPR/FPR where outcomes are known).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

AGE_EDGES = (0, 30, 45, 60, math.inf)
FOUR_FIFTHS = 0.8
RATES = ("approval_rate", "tpr", "fpr")


def groups(feature, col: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(group name, row mask) for one protected feature: its categories, or age-like bands for numbers."""
    if feature.type == "categorical":
        return [(str((feature.labels or {}).get(c, c)), col == code)
                for c, code in zip(feature.categories, feature.category_codes, strict=True)]
    return [(f"{int(lo)}-{'' if hi == math.inf else int(hi) - 1}", (col >= lo) & (col < hi))
            for lo, hi in zip(AGE_EDGES[:-1], AGE_EDGES[1:], strict=True)]


def _codes(feature, col: np.ndarray) -> np.ndarray:
    """A column as model-matrix codes: given as codes already (floats), or as the values themselves (objects:
    string categories as text, looked up in :attr:`~app.core.schema.Feature.matrix_codes`)."""
    if col.dtype.kind in "fiub":
        return col.astype(float)
    lookup = {str(k): v for k, v in (feature.matrix_codes if feature.type == "categorical" else {}).items()}

    def code(v: Any) -> float:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return math.nan
        if str(v) in lookup:
            return lookup[str(v)]
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    return np.array([code(v) for v in col], dtype=float)


def _rate(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


def fairness_table(schema, X: np.ndarray, is_bad: np.ndarray | None, pred_bad: np.ndarray,  # noqa: N803
                   labelled: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Per protected group. ``is_bad`` (observed) may be None or known only where ``labelled`` is True.
    ``X`` holds model-matrix codes, or (an object array) the values as given: ``female``, ``non-binary``."""
    pred_bad = np.asarray(pred_bad, dtype=bool)
    if is_bad is not None:
        is_bad = np.asarray(is_bad, dtype=bool)
        labelled = np.ones(len(pred_bad), dtype=bool) if labelled is None else np.asarray(labelled, dtype=bool)
    rows: list[dict[str, Any]] = []
    for j, f in enumerate(schema.features):
        if not f.protected:
            continue
        for name, mask in groups(f, _codes(f, np.asarray(X)[:, j])):
            if not mask.any():
                continue
            row = {"feature": f.name, "group": name, "rows": int(mask.sum()),
                   "approval_rate": float(1 - pred_bad[mask].mean()), "labelled": 0,
                   "tpr": float("nan"), "fpr": float("nan")}
            if is_bad is not None:
                lab = mask & labelled
                row["labelled"] = int(lab.sum())
                row["tpr"] = _rate(pred_bad[lab & is_bad])
                row["fpr"] = _rate(pred_bad[lab & ~is_bad])
            rows.append(row)
    add_relative_approval(rows)
    return rows


def add_relative_approval(rows: list[dict[str, Any]]) -> None:
    """Each group's approval rate divided by the best-approved group's of the same feature."""
    best: dict[str, float] = {}
    for r in rows:
        best[r["feature"]] = max(best.get(r["feature"], 0.0), r["approval_rate"])
    for r in rows:
        top = best[r["feature"]]
        r["approval_ratio"] = r["approval_rate"] / top if top > 0 else float("nan")


def fairness_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per feature and rate: min/max across groups, with the groups at both ends (NaN rates are skipped)."""
    out = []
    for feature in dict.fromkeys(r["feature"] for r in rows):
        mine = [r for r in rows if r["feature"] == feature]
        for rate in RATES:
            vals = [(r[rate], r["group"]) for r in mine if isinstance(r[rate], float) and math.isfinite(r[rate])]
            if len(vals) < 2:
                continue
            lo, hi = min(vals), max(vals)
            ratio = lo[0] / hi[0] if hi[0] > 0 else (1.0 if lo[0] == hi[0] else float("nan"))
            out.append({"feature": feature, "metric": rate, "ratio": ratio, "min_group": lo[1], "min": lo[0],
                        "max_group": hi[1], "max": hi[0],
                        "flag": bool(rate == "approval_rate" and math.isfinite(ratio) and ratio < FOUR_FIFTHS)})
    return out
