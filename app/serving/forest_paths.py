"""A scikit-learn forest classifier evaluated in numpy: the class probabilities (as ``predict_proba``) and the
Saabas path attribution for one class, from one walk over all trees at once, for any number of rows.

Why: scikit-learn walks a forest one tree at a time, with Python, validation and joblib around every tree: one
row through 200 trees of depth 10 took ~20 ms here, and the path attribution through ``decision_path`` ~60 ms
more. Here every (row, tree) pair advances one level per step on flat arrays: ~60 µs for the row's
probabilities, ~75 µs with its attribution; 10,000 rows in ~0.14 s (as scikit-learn) and ~0.23 s with
attributions (CPU time on a busy 2-core machine; ``bench/serve_bench.py`` measures the service).

The trees are copied into one flat node table, renumbered breadth-first per tree so that a split's children
are adjacent (the right child is ``left + 1``), which makes a step one gather and one add. The semantics are
scikit-learn's ``Tree.apply`` (``sklearn/tree/_tree.pyx``): the row cast to float32, left when
``x <= threshold`` (float64 threshold), and a missing value (NaN) to the child ``missing_go_to_left`` names
(scikit-learn >= 1.4 sets it for every split: where the missing values went in training, else the child with
more samples). A leaf's class distribution is normalised as ``DecisionTreeClassifier.predict_proba`` does, and
the forest's probability is the mean over trees.

The Saabas attribution of a row is the sum over trees of its leaf's path attribution (each step's change in
the class share, credited to the split's column). That is precomputed per class as a (leaves x columns) table
(:meth:`ForestPaths.prepare`, at load), so the walk only has to find the leaves: one row then takes one product,
a batch one sparse (rows x leaves) product. A forest too large for the table (``PATH_TABLE_MAX``) has the walk
collect the steps instead.

Nothing is trusted blindly: :meth:`ForestPaths.from_forest` evaluates probe rows built from the forest's own
thresholds (both sides of every split, and missing values) with scikit-learn and with numpy and returns
``None`` (the caller keeps scikit-learn) unless the leaves are the same, the probabilities agree within 1e-9
and each class's attributions add up to its probability. It also returns ``None`` for what it does not
implement (anything but a single-output forest classifier of scikit-learn decision trees).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("credit_score.reload")
TOLERANCE = 1e-9
CHUNK_ROWS = 1024  # rows per walk: (rows x trees) index arrays stay in cache, memory stays bounded
PATH_TABLE_MAX = 4_000_000  # leaves x columns (float64): past this (deep forests), the walk collects one row's steps


@dataclass(frozen=True)
class ForestPaths:
    feature: np.ndarray  # (nodes,) split column per node; 0 at leaves (their step stays put)
    threshold: np.ndarray  # (nodes,) float64: left when x <= threshold; +inf at leaves
    left: np.ndarray  # (nodes,) global ids of the left children; the right child is left + 1; a leaf: itself
    missing: np.ndarray  # (nodes,) the child a missing value goes to; a leaf: itself
    share: np.ndarray  # (nodes, K) the node's normalised class distribution
    roots: np.ndarray  # (trees,) global ids of the roots
    original: np.ndarray  # (nodes,) the node's id in its own scikit-learn tree
    depth: int
    n_columns: int
    allow_nan: bool  # False: scikit-learn refuses missing values for this forest, and so does explain

    # ---- building and verifying --------------------------------------------------------------------
    @classmethod
    def from_forest(cls, forest, probes: int = 256, seed: int = 0) -> ForestPaths | None:
        try:
            paths = cls._parse(forest)
        except (AttributeError, TypeError, ValueError, IndexError) as e:
            log.info("numpy forest paths not used: %s", e)
            return None
        if paths is None:
            return None
        try:
            err = paths._disagreement(forest, paths._probes(probes, seed))
        except Exception as e:  # noqa: BLE001 (whatever fails here, scikit-learn keeps answering)
            err, why = float("inf"), str(e)
        else:
            why = f"max error {err:.3g}"
        if not np.isfinite(err) or err > TOLERANCE:
            log.warning("numpy forest paths disagree with scikit-learn on probe rows (%s); using scikit-learn", why)
            return None
        paths.__dict__.pop("_path_tables", None)  # every class's table was checked; the caller prepares its own
        return paths

    @classmethod
    def _parse(cls, forest) -> ForestPaths | None:
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
        from sklearn.tree import DecisionTreeClassifier

        if not isinstance(forest, (RandomForestClassifier, ExtraTreesClassifier)) or forest.n_outputs_ != 1 \
                or not forest.estimators_ \
                or not all(isinstance(e, DecisionTreeClassifier) for e in forest.estimators_):
            log.info("numpy forest paths not used: %s is not a single-output scikit-learn forest classifier",
                     type(forest).__name__)
            return None
        feature, threshold, left, missing, share, roots, original = [], [], [], [], [], [], []
        depth, offset = 0, 0
        for est in forest.estimators_:
            t = est.tree_
            cl, cr = t.children_left, t.children_right
            order, level = [np.array([0])], 0
            while True:  # breadth first: a split's two children are listed together
                front = order[-1]
                front = front[cl[front] != -1]
                if len(front) == 0:
                    break
                order.append(np.column_stack([cl[front], cr[front]]).ravel())
                level += 1
            order = np.concatenate(order)
            new = np.empty(t.node_count, dtype=np.intp)
            new[order] = np.arange(t.node_count) + offset
            leaf = cl[order] == -1
            ids = new[order]
            go_left = np.asarray(t.missing_go_to_left, dtype=bool)[order]
            lft = np.where(leaf, ids, new[np.where(leaf, 0, cl[order])])
            if np.any(new[cr[order]][~leaf] != lft[~leaf] + 1):
                raise ValueError("children of a split are not adjacent after renumbering")
            value = t.value[order, 0, :]
            norm = value.sum(axis=1, keepdims=True)
            norm[norm == 0.0] = 1.0
            feature.append(np.where(leaf, 0, t.feature[order]))
            threshold.append(np.where(leaf, np.inf, t.threshold[order]))
            left.append(lft)
            missing.append(np.where(leaf, ids, np.where(go_left, lft, lft + 1)))
            share.append(value / norm)  # as DecisionTreeClassifier.predict_proba
            roots.append(offset)
            original.append(order)
            depth = max(depth, level)
            offset += t.node_count
        cat = np.concatenate
        allow_nan = forest.estimators_[0]._support_missing_values(np.zeros((1, 1)))
        return cls(feature=cat(feature).astype(np.intp), threshold=cat(threshold).astype(np.float64),
                   left=cat(left).astype(np.intp), missing=cat(missing).astype(np.intp), share=cat(share),
                   roots=np.asarray(roots, dtype=np.intp), original=cat(original).astype(np.intp), depth=depth,
                   n_columns=int(forest.n_features_in_), allow_nan=bool(allow_nan))

    def _probes(self, n: int, seed: int) -> np.ndarray:
        """Rows on both sides of the forest's splits: each column drawn from its thresholds, as the largest
        float32 at or below the threshold (goes left) or the next float32 up (goes right); some values missing."""
        rng = np.random.default_rng(seed)
        internal = self.left != np.arange(len(self.left))
        P = np.zeros((n, self.n_columns), dtype=np.float32)  # noqa: N806
        for j in range(self.n_columns):
            t = self.threshold[internal & (self.feature == j)]
            t = t[np.abs(t) < np.finfo(np.float32).max]  # +inf: a split of the missing values from the rest
            if len(t) == 0:
                continue
            t = rng.choice(t, n)
            below = t.astype(np.float32)
            below = np.where(below > t, np.nextafter(below, np.float32(-np.inf)), below)
            P[:, j] = np.where(rng.random(n) < 0.5, below, np.nextafter(below, np.float32(np.inf)))
        if self.allow_nan:
            P[rng.random(P.shape) < 0.05] = np.nan
        return P

    def _disagreement(self, forest, P: np.ndarray) -> float:  # noqa: N803
        """Largest difference from scikit-learn on ``P``: leaves (inf when any differs), probabilities, and
        each class's attributions summed against its probability."""
        leaves = forest.apply(P)  # (n, trees) node ids in each tree
        idx = self._leaves(P.ravel(), len(P))
        if not np.array_equal(self.original[idx].reshape(len(P), -1), leaves):
            return float("inf")
        proba = self.predict_proba(P)
        err = float(np.abs(proba - forest.predict_proba(P)).max())
        for c in range(self.share.shape[1]):
            p, contrib, bias = self.explain(P, c)
            err = max(err, float(np.abs(contrib.sum(axis=1) + bias - proba[:, c]).max()),
                      float(np.abs(p - proba).max()))
            for i in range(min(len(P), 16)):  # one row at a time: the leaf table, not the walk's steps
                p1, c1, b1 = self.explain_one(P[i], c)
                err = max(err, float(np.abs(p1 - proba[i]).max()), float(np.abs(c1 - contrib[i]).max()),
                          abs(b1 - bias[i]))
        return err

    # ---- evaluating ----------------------------------------------------------------------------------
    def predict_proba(self, Z: np.ndarray) -> np.ndarray:  # noqa: N803
        """(n, K) class probabilities in the forest's class order, as ``forest.predict_proba``."""
        return self.explain(Z, None)[0]

    def explain(self, Z: np.ndarray, cls: int | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:  # noqa: N803
        """(probabilities (n, K), contributions (n, columns), bias (n,)) towards class ``cls``'s probability
        (Saabas: each step's change in the class share credited to the split's column, summed over trees and
        divided by their number; the bias is the mean root share). ``cls=None``: probabilities only."""
        # float32 as scikit-learn compares, held in float64 so that comparing with the thresholds needs no cast
        x = np.asarray(Z, dtype=np.float32).astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_columns:
            raise ValueError(f"expected {self.n_columns} columns, got shape {x.shape}")
        nan = bool(np.isnan(x.sum()))
        if nan and not self.allow_nan:
            raise ValueError("Input contains NaN")
        n, k, trees = len(x), self.share.shape[1], len(self.roots)
        if n == 1:
            p, c, b = self.explain_one(x, cls)
            return p[None, :], None if c is None else c[None, :], None if b is None else np.array([b])
        table = None if cls is None else self._path_table(cls)
        share = None if cls is None or table is not None else self.class_share(cls)  # None: no steps collected
        proba = np.empty((n, k))
        contrib = None if cls is None else np.empty((n, self.n_columns))
        for a in range(0, n, CHUNK_ROWS):
            b = min(n, a + CHUNK_ROWS)
            idx, c = self._walk(x[a:b].ravel(), b - a, share, nan)
            for j in range(k):  # per class: sums along contiguous rows, ~10x faster than over the middle axis
                proba[a:b, j] = self.share_by_class[j][idx].reshape(b - a, trees).sum(axis=1)
            if table is not None:  # each row's leaves' path attributions summed: a sparse (rows x leaves) product
                from scipy.sparse import csr_matrix

                rows, leaf_contrib = table
                pick = csr_matrix((np.ones(len(idx)), rows[idx], np.arange(0, len(idx) + 1, trees)),
                                  shape=(b - a, len(leaf_contrib)))
                contrib[a:b] = pick @ leaf_contrib
            elif c is not None:
                contrib[a:b] = c
        proba /= trees
        if cls is None:
            return proba, None, None
        contrib /= trees
        return proba, contrib, np.full(n, self._bias(cls))

    def explain_one(self, z: np.ndarray, cls: int | None) -> tuple[np.ndarray, np.ndarray | None, float | None]:
        """One row (``(columns,)`` or ``(1, columns)``): (probabilities (K,), contributions (columns,), bias), the
        numbers of :meth:`explain` with less per-call work: the walk finds the leaves, and each leaf's summed
        path attribution (precomputed, :meth:`prepare`) gives the row's in one product."""
        x = np.asarray(z, dtype=np.float32).astype(np.float64).ravel()
        if len(x) != self.n_columns:
            raise ValueError(f"expected {self.n_columns} columns, got {len(x)}")
        total = x.sum()
        nan = bool(total != total)
        if nan and not self.allow_nan:
            raise ValueError("Input contains NaN")
        trees = len(self.roots)
        table = None if cls is None else self._path_table(cls)
        if cls is None or table is not None:
            idx, contrib = self._walk(x, 1, None, nan)
            if table is not None:
                rows, leaf_contrib = table
                contrib = self._ones @ leaf_contrib[rows[idx]]  # the sum over trees, as one BLAS product
        else:
            idx, contrib = self._walk(x, 1, self.class_share(cls), nan)
            contrib = contrib[0]
        proba = self._ones @ self.share[idx] / trees
        if cls is None:
            return proba, None, None
        return proba, contrib / trees, self._bias(cls)

    def prepare(self, cls: int) -> ForestPaths:
        """Build what explaining class ``cls`` needs now (at load) rather than on the first request."""
        self.class_share(cls)
        self._path_table(cls)
        self._bias(cls)
        return self

    @property
    def share_by_class(self) -> np.ndarray:
        """(K, nodes): ``share`` transposed, each class's shares contiguous (built once)."""
        t = self.__dict__.get("_share_by_class")
        if t is None:
            t = self.__dict__["_share_by_class"] = np.ascontiguousarray(self.share.T)
        return t

    def class_share(self, cls: int) -> np.ndarray:
        """(nodes,) contiguous: one class's share per node."""
        return self.share_by_class[cls]

    def _bias(self, cls: int) -> float:
        """The attribution's bias for class ``cls``: the mean root share (cached per class)."""
        cache = self.__dict__.setdefault("_biases", {})
        if cls not in cache:
            cache[cls] = float(self.class_share(cls)[self.roots].sum() / len(self.roots))
        return cache[cls]

    @property
    def _ones(self) -> np.ndarray:
        ones = self.__dict__.get("_ones_trees")
        if ones is None:
            ones = self.__dict__["_ones_trees"] = np.ones(len(self.roots))
        return ones

    def _path_table(self, cls: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Every leaf's path attribution towards class ``cls``: (leaf row per node (nodes,), the changes in the
        class share summed per split column (leaves, columns)); cached per class. None past PATH_TABLE_MAX."""
        cache = self.__dict__.setdefault("_path_tables", {})
        if cls in cache:
            return cache[cls]
        ids = np.arange(len(self.left))
        internal = self.left != ids
        leaves = ids[~internal]
        table = None
        if len(leaves) * self.n_columns <= PATH_TABLE_MAX:
            share = self.class_share(cls)
            parent = np.full(len(ids), -1)
            parent[self.left[internal]] = parent[self.left[internal] + 1] = ids[internal]
            columns = np.zeros((len(leaves), self.depth), dtype=np.intp)
            deltas = np.zeros((len(leaves), self.depth))
            node = leaves
            for k in range(self.depth):  # up from the leaves, one step per column (the order does not matter)
                up = parent[node]
                has = up >= 0
                up = np.where(has, up, node)
                columns[:, k] = np.where(has, self.feature[up], 0)
                deltas[:, k] = np.where(has, share[node] - share[up], 0.0)
                node = up
            rows = np.zeros(len(ids), dtype=np.intp)
            rows[leaves] = np.arange(len(leaves))
            cells = (np.arange(len(leaves))[:, None] * self.n_columns + columns).ravel()
            dense = np.bincount(cells, weights=deltas.ravel(), minlength=len(leaves) * self.n_columns)
            table = (rows, dense.reshape(len(leaves), self.n_columns))
        cache[cls] = table
        return table

    def _leaves(self, x: np.ndarray, n: int) -> np.ndarray:
        """(n * trees,) the leaf each (row, tree) ends in, row-major; ``x`` is the rows raveled."""
        return self._walk(np.asarray(x, dtype=np.float64), n, None, bool(np.isnan(x).any()))[0]

    def _walk(self, x: np.ndarray, n: int, share: np.ndarray | None, nan: bool):
        """Every (row, tree) one level down per step: (leaves (n * trees,), summed share changes per (row, column)
        or None without ``share``). ``x`` is the rows raveled (float64); ``nan``: whether it holds any."""
        if n == 1:
            idx, offsets = self.roots, None
        else:
            trees = len(self.roots)
            idx = np.tile(self.roots, n)
            offsets = np.repeat(np.arange(0, n * self.n_columns, self.n_columns), trees)
        go = np.empty(len(idx), dtype=np.intp)
        s = None if share is None else share[idx]
        cells, deltas = [], []
        for _ in range(self.depth):
            cell = self.feature[idx]
            if offsets is not None:
                cell += offsets
            v = x[cell]
            np.greater(v, self.threshold[idx], out=go)  # right: the right child is left + 1; a leaf stays (+inf)
            nxt = self.left[idx]
            nxt += go
            if nan:  # NaN compares False above: its own direction instead
                miss = np.isnan(v)
                nxt[miss] = self.missing[idx[miss]]
            idx = nxt
            if share is not None:
                s2 = share[idx]
                cells.append(cell)
                deltas.append(s2 - s)
                s = s2
        if share is None:
            return idx, None
        contrib = np.bincount(np.concatenate(cells), weights=np.concatenate(deltas), minlength=n * self.n_columns)
        return idx, contrib.reshape(n, self.n_columns)
