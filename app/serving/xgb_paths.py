"""A binary XGBoost booster evaluated in numpy for the few rows of a request: the margin and the path
attribution that XGBoost computes with ``pred_contribs=True, approx_contribs=True`` (Saabas).

Why: for one row, XGBoost spends ~80 µs building a DMatrix and ~80 µs more in ``predict``, most of it fixed
cost; walking all trees at once level by level in numpy costs a fraction of that (``bench/serve_bench.py``).
Batches go to XGBoost itself, which is faster per row there.

The trees come from the booster's own JSON model (float32 split values, default directions for missing values,
cover-weighted node means exactly as XGBoost's ``FillNodeMeanValues``). Nothing is trusted blindly:
:meth:`TreePaths.from_booster` evaluates probe rows built from the model's own split values (both sides of
every split, and missing values) with XGBoost and with numpy, and returns ``None`` (the caller keeps using
XGBoost) unless both agree; it also returns ``None`` for what it does not implement (multiclass, categorical
splits, boosters other than gbtree, objectives other than ``binary:logistic``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("credit_score.reload")
TOLERANCE = 1e-4  # float32 (XGBoost) vs float64 (numpy) sums over hundreds of trees


@dataclass(frozen=True)
class TreePaths:
    feature: np.ndarray  # (nodes,) split column per node, 0 at leaves (their delta is 0)
    threshold: np.ndarray  # (nodes,) float32: go left when x < threshold; +inf at leaves (stay)
    left: np.ndarray  # (nodes,) global node ids; a leaf points at itself. The right child is left + 1 (XGBoost
    #                   allocates a split's children together; checked at parse)
    missing: np.ndarray  # the default child for a missing value
    mean: np.ndarray  # (nodes,) float64: leaf value, or the cover-weighted mean of the leaves below
    roots: np.ndarray  # (trees,) global ids of the roots
    depth: int
    n_columns: int
    base_margin: float
    bias: float  # the attribution's bias: the root means summed, plus the base margin

    @classmethod
    def from_booster(cls, booster, probes: int = 64, seed: int = 0) -> TreePaths | None:
        try:
            paths = cls._parse(json.loads(booster.save_raw("json")))
        except (KeyError, ValueError, TypeError, IndexError) as e:
            log.info("numpy tree paths not used: %s", e)
            return None
        if paths is None:
            return None
        P = paths._probes(probes, seed)  # noqa: N806
        from xgboost import DMatrix

        want = booster.predict(DMatrix(P, nthread=1), pred_contribs=True, approx_contribs=True)
        margin, contrib, bias = paths.explain(P)
        got = np.column_stack([contrib, bias])
        err = max(float(np.abs(got - want).max()), float(np.abs(margin - want.sum(axis=1)).max()))
        if not np.isfinite(err) or err > TOLERANCE:
            log.warning("numpy tree paths disagree with XGBoost on probe rows (max error %.3g); using XGBoost", err)
            return None
        return paths

    @classmethod
    def _parse(cls, model: dict) -> TreePaths | None:
        learner = model["learner"]
        gb = learner["gradient_booster"]
        if gb["name"] != "gbtree" or learner["objective"]["name"] != "binary:logistic" or \
                int(learner["learner_model_param"].get("num_class", "0")) > 1:
            return None
        trees = gb["model"]["trees"]
        if not trees or any(t["categories_nodes"] or any(t["split_type"]) for t in trees):
            return None
        n_columns = int(learner["learner_model_param"]["num_feature"])
        feature, threshold, left, missing, mean, roots = [], [], [], [], [], []
        depth, offset = 0, 0
        for t in trees:
            lc, rc = np.asarray(t["left_children"]), np.asarray(t["right_children"])
            cond = np.asarray(t["split_conditions"], dtype=np.float64)
            hess = np.asarray(t["sum_hessian"], dtype=np.float64)
            n = len(lc)
            leaf = lc == -1
            m = np.where(leaf, cond, 0.0)
            level = np.zeros(n, dtype=int)
            order = []  # parents before children
            stack = [0]
            while stack:
                i = stack.pop()
                order.append(i)
                if not leaf[i]:
                    level[lc[i]] = level[rc[i]] = level[i] + 1
                    stack += [lc[i], rc[i]]
            for i in reversed(order):  # children before parents
                if not leaf[i]:
                    m[i] = (m[lc[i]] * hess[lc[i]] + m[rc[i]] * hess[rc[i]]) / hess[i]
            ids = np.arange(n) + offset
            default_left = np.asarray(t["default_left"], dtype=bool)
            if np.any(rc[~leaf] != lc[~leaf] + 1):
                log.info("numpy tree paths not used: children of a split are not adjacent")
                return None
            feature.append(np.where(leaf, 0, np.asarray(t["split_indices"])))
            threshold.append(np.where(leaf, np.inf, cond).astype(np.float32))
            left.append(np.where(leaf, ids, lc + offset))
            missing.append(np.where(leaf, ids, np.where(default_left, lc, rc) + offset))
            mean.append(m)
            roots.append(offset)
            depth = max(depth, int(level.max()))
            offset += n
        # the booster's base margin: logit of base_score (stored as a probability for binary:logistic)
        base = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        base_margin = float(np.log(base / (1.0 - base)))
        cat = np.concatenate
        mean_all, roots_all = cat(mean), np.asarray(roots, dtype=np.intp)
        return cls(feature=cat(feature).astype(np.intp), threshold=cat(threshold), left=cat(left).astype(np.intp),
                   missing=cat(missing).astype(np.intp), mean=mean_all,
                   roots=roots_all, depth=depth, n_columns=n_columns, base_margin=base_margin,
                   bias=float(mean_all[roots_all].sum()) + base_margin)

    def explain(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # noqa: N803
        """(margin (n,), contributions (n, columns), bias (n,)) in log-odds, as XGBoost's approx_contribs.
        Every row walks every tree at once, one level per step, on flat arrays (row r's values sit at
        r * columns + j); one bincount at the end folds the per-level deltas onto (row, column)."""
        x = np.asarray(Z, dtype=np.float32).ravel()  # XGBoost compares in float32
        n, trees = len(Z), len(self.roots)
        offsets = np.repeat(np.arange(n) * self.n_columns, trees) if n > 1 else None  # one row: no offsets
        idx = np.tile(self.roots, n) if n > 1 else self.roots
        has_nan = bool(np.isnan(x.sum()))
        mean = self.mean[idx]
        cells, deltas = [], []
        for _ in range(self.depth):
            cell = self.feature[idx] if offsets is None else self.feature[idx] + offsets
            v = x[cell]
            nxt = self.left[idx] + (v >= self.threshold[idx])  # the right child is left + 1; leaves stay (+inf)
            if has_nan:  # NaN compares False above: take the default child instead
                nxt = np.where(np.isnan(v), self.missing[idx], nxt)
            m = self.mean[nxt]
            cells.append(cell)
            deltas.append(m - mean)
            idx, mean = nxt, m
        contrib = np.bincount(np.concatenate(cells), weights=np.concatenate(deltas), minlength=n * self.n_columns)
        margin = mean.reshape(n, trees).sum(axis=1) + self.base_margin
        return margin, contrib.reshape(n, self.n_columns), np.full(n, self.bias)

    def _probes(self, n: int, seed: int) -> np.ndarray:
        """Rows that take both sides of the model's splits: each column drawn from its split values nudged
        down or up by one float32 step, with a few missing values."""
        rng = np.random.default_rng(seed)
        internal = self.left != np.arange(len(self.left))
        P = np.zeros((n, self.n_columns), dtype=np.float32)  # noqa: N806
        for j in range(self.n_columns):
            values = self.threshold[internal & (self.feature == j)]
            if len(values) == 0:
                continue
            v = rng.choice(values, n)
            P[:, j] = np.where(rng.random(n) < 0.5, np.nextafter(v, np.float32(-np.inf)), v)
        P[rng.random(P.shape) < 0.05] = np.nan
        return P
