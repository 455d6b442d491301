"""The reference profile of training data, which a model bundle carries for drift monitoring.

Computed from the training data when a model is trained; it travels inside the model bundle
(``reference_profile.json``, listed in the bundle's manifest, so it is verified with the model):

* numeric and integer features: interior cut points at the training quantiles (``bins`` of them at most;
  duplicates merged for discrete values), the share of training rows in each bin, the missing rate, and a
  seeded sample of at most ``sample_size`` values for the two-sample Kolmogorov-Smirnov test;
* categorical features: the share of each category (plus an ``other`` bucket, last) and the missing rate;
  ``categories`` are the schema's categories as text (``self-employed``), ``codes`` their values in the model
  matrix (string categories are their position in the schema; integer ones their own value);
* the score: the same as a numeric feature, for the predicted probability of the bad class on the holdout.

Training writes it, the monitor reads it (:mod:`app.monitoring.drift` compares live windows against it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PROFILE_FORMAT = 1
OTHER = "other"


def _cuts(values: np.ndarray, bins: int) -> list[float]:
    """Interior cut points at the quantiles; a value v falls in bin ``searchsorted(cuts, v, side="right")``."""
    if values.size == 0:
        return []
    qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    cuts = np.unique(qs)
    # a cut equal to the minimum leaves the first bin empty for discrete data: drop it
    return [float(c) for c in cuts if c > values.min()]


def bin_index(cuts: list[float] | np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(cuts, dtype=float), values, side="right")


def _numeric_entry(values: np.ndarray, bins: int, sample_size: int, rng: np.random.Generator) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    cuts = _cuts(finite, bins)
    counts = np.bincount(bin_index(cuts, finite), minlength=len(cuts) + 1)
    sample = finite if finite.size <= sample_size else rng.choice(finite, sample_size, replace=False)
    return {"type": "numeric", "cuts": cuts, "expected": (counts / max(finite.size, 1)).tolist(),
            "rows": int(finite.size), "missing_rate": float(1 - finite.size / max(values.size, 1)),
            "mean": float(finite.mean()) if finite.size else None,
            "sample": [float(v) for v in np.sort(sample)]}


def other_bucket(categories: list[str]) -> str:
    """The name of the bucket for values outside the categories: ``other``, unless that is a category."""
    name = OTHER
    while name in categories:
        name = f"({name})"
    return name


def _categorical_entry(values: np.ndarray, feature) -> dict[str, Any]:
    """Shares of each category (model-matrix codes in ``values``), as the schema spells them (strings), with the
    matrix code of each in ``codes`` so that drift can count a window given either way."""
    present = values[~np.isnan(values)]
    cats = [str(c) for c in feature.categories or []]
    codes = feature.category_codes
    counts = [int(np.sum(present == c)) for c in codes]
    other = int(present.size - sum(counts))
    return {"type": "categorical", "categories": cats + [other_bucket(cats)], "codes": codes,
            "expected": [c / max(present.size, 1) for c in counts + [other]], "counts": counts + [other],
            "rows": int(present.size), "missing_rate": float(1 - present.size / max(values.size, 1))}


def build_profile(schema, X: np.ndarray, score: np.ndarray | None, bins: int = 10,  # noqa: N803
                  sample_size: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The reference profile of training rows ``X`` (schema feature order) and holdout ``score`` (P(bad))."""
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=float)  # noqa: N806
    feats: dict[str, Any] = {}
    for j, f in enumerate(schema.features):
        col = X[:, j]
        if f.type == "categorical":
            feats[f.name] = _categorical_entry(col, f)
        else:
            feats[f.name] = _numeric_entry(col, bins, sample_size, rng)
        feats[f.name]["protected"] = bool(f.protected)
    out = {"format": PROFILE_FORMAT, "schema": schema.name, "schema_sha256": schema.sha256, "rows": int(len(X)),
           "bins": bins, "seed": seed, "features": feats, "score": None}
    if score is not None:
        out["score"] = _numeric_entry(np.asarray(score, dtype=float), bins, sample_size, rng)
        out["score"]["class"] = str(schema.target.bad_class)
    return out
