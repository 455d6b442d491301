"""The served model: load (verified), readiness, and predictions with reason codes. Knows nothing of HTTP.

Reason codes are per-feature attributions that add up to the model's margin: for XGBoost the log-odds
(``pred_contribs``; ``approx_contribs=True`` for the fast default, exact TreeSHAP otherwise; the fast default
for a few rows is the same attribution computed in numpy, see ``xgb_paths``), for a
RandomForest the probability of the bad class (Saabas path attribution by default, exact TreeSHAP via
``shap`` when asked). Attributions of engineered columns are folded back onto the schema's features.

A forest's probabilities and Saabas attributions come from one numpy walk over all its trees
(``forest_paths``), verified against scikit-learn at load; where that check fails, scikit-learn's
``predict_proba`` and :func:`saabas_forest` answer. The exact TreeSHAP explainer of a forest is built when the
model is constructed, that is when the reload thread (or the boot) loads it, before it serves; never on a
request. XGBoost's exact attribution (``pred_contribs``) needs nothing built.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.bundle import ModelBundle
from app.core.labels import predict_labels
from app.serving.codes import FeatureCodes
from app.serving.forest_paths import ForestPaths
from app.serving.validation import RequestError
from app.serving.xgb_paths import TreePaths

log = logging.getLogger("credit_score.reload")
PATHS_MAX_ROWS = 4  # up to this many rows numpy walks the trees (app/serving/xgb_paths.py); XGBoost beyond


@dataclass
class Prediction:
    label: Any
    probabilities: np.ndarray  # (K,) in the schema's class order
    bad_probability: float
    contributions: np.ndarray | None  # (n_features,) onto schema features, for the bad class
    bias: float | None
    margin: float | None


@dataclass
class ServedModel:
    """A loaded, verified bundle plus what the hot path needs precomputed."""

    bundle: ModelBundle
    name: str
    version: str
    alias: str
    tags: dict[str, str] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.bundle.set_single_thread()
        self.schema = self.bundle.schema
        self.codes = FeatureCodes(self.schema)  # text categories: the number the model reads, and back
        self.classes = list(self.schema.classes)
        self.class_names = [str(c) for c in self.classes]
        self.bad_index = self.schema.bad_index
        self.threshold = self.bundle.threshold
        self.features = self.bundle.features
        self.is_xgb = self.bundle.classifier_name == "xgboost"
        self.paths: TreePaths | None = None
        if self.is_xgb:
            self.booster = self.bundle.classifier.get_booster()
            self.booster.set_param({"nthread": 1})
            self.paths = TreePaths.from_booster(self.booster)  # None: XGBoost answers every request
        self.forest: ForestPaths | None = None
        self._exact_explainer = None
        if not self.is_xgb:
            self.forest = ForestPaths.from_forest(self.bundle.classifier)  # None: scikit-learn answers
            if self.forest is not None:
                self.forest.prepare(self.bad_index)  # the bad class's tables, now rather than on a request
            self._exact_explainer = self._build_exact_explainer()
        # fast reason codes for many rows in one vectorised call (else per row and tree, in Python)
        self.vectorised_explain = self.is_xgb or self.forest is not None

    def _build_exact_explainer(self):
        """shap's TreeExplainer for ``?explain=exact``, at load: importing shap alone takes over a second. A
        failure is logged and leaves None (exact requests then try again, and fail as they would have)."""
        t0 = time.perf_counter()
        try:
            import shap

            explainer = shap.TreeExplainer(self.bundle.classifier)
        except Exception as e:  # noqa: BLE001 (the model still serves probabilities and fast reason codes)
            log.warning("exact explainer not built", extra={"model.version": self.version,
                                                             "error.message": str(e)})
            return None
        log.info("exact explainer built", extra={"model.version": self.version,
                                                  "event.duration": int((time.perf_counter() - t0) * 1e9)})
        return explainer

    # ---- predictions ---------------------------------------------------------------------------------
    def predict_rows(self, X: np.ndarray, explain: str | None = "fast") -> list[Prediction]:  # noqa: N803
        """Score rows in schema feature order; ``explain`` is "fast", "exact" or None (no reason codes)."""
        Z = self.features.transform(X)  # noqa: N806
        if len(Z) == 1 and explain != "exact":
            if self.forest is not None:
                return [self._one_forest(Z, explain)]
            if self.paths is not None and len(self.classes) == 2:
                return [self._one_binary_xgb(Z, explain)]
        if self.is_xgb:
            proba, contrib, bias = self._xgb(Z, explain)
        elif self.forest is not None and explain != "exact":
            proba, contrib, bias = self.forest.explain(Z, self.bad_index if explain else None)
        else:
            proba = self.bundle.classifier.predict_proba(Z) if self.forest is None else self.forest.predict_proba(Z)
            contrib = bias = None
            if explain:
                contrib, bias = self._forest_contrib(Z, exact=explain == "exact")
        labels = predict_labels(proba, self.bad_index, self.threshold)
        label = [self.classes[k] for k in labels.tolist()]
        p_bad = proba[:, self.bad_index].tolist()  # Python floats in one call, not one per row
        if contrib is None:
            return [Prediction(label=label[i], probabilities=proba[i], bad_probability=p_bad[i], contributions=None,
                               bias=None, margin=None) for i in range(len(Z))]
        folded = self.features.fold_contributions(contrib)
        b, margin = bias.tolist(), (folded.sum(axis=1) + bias).tolist()
        return [Prediction(label=label[i], probabilities=proba[i], bad_probability=p_bad[i], contributions=folded[i],
                           bias=b[i], margin=margin[i]) for i in range(len(Z))]

    def _one_binary_xgb(self, Z: np.ndarray, explain: str | None) -> Prediction:  # noqa: N803
        """One row of a binary XGBoost model through the numpy tree walk: the same numbers as the general path
        below (tests), in Python scalars rather than a dozen numpy calls on one-element arrays."""
        margin, contrib, bias = self.paths.explain(Z)
        m = float(margin[0])
        p1 = 1.0 / (1.0 + math.exp(-m)) if m > -700.0 else 0.0
        proba = np.array([1.0 - p1, p1])
        p_bad = float(proba[self.bad_index])
        if self.threshold is not None:
            label = self.bad_index if p_bad >= self.threshold else 1 - self.bad_index
        else:
            label = int(p1 > 1.0 - p1)  # argmax, the first class on a tie
        if not explain:
            return Prediction(label=self.classes[label], probabilities=proba, bad_probability=p_bad,
                              contributions=None, bias=None, margin=None)
        b = float(bias[0])
        folded = self.features.fold_contributions(contrib)[0]
        if self.bad_index != 1:  # attributions towards the bad class
            folded, b = -folded, -b
        return Prediction(label=self.classes[label], probabilities=proba, bad_probability=p_bad,
                          contributions=folded, bias=b, margin=float(folded.sum() + b))

    def _one_forest(self, Z: np.ndarray, explain: str | None) -> Prediction:  # noqa: N803
        """One row of a forest through the numpy walk: the general path's numbers (tests), with the label
        decided in Python scalars."""
        proba, contrib, bias = self.forest.explain_one(Z, self.bad_index if explain else None)
        p_bad = float(proba[self.bad_index])
        if self.threshold is not None and len(proba) == 2:
            label = self.bad_index if p_bad >= self.threshold else 1 - self.bad_index
        else:
            label = int(proba.argmax())  # the first class on a tie, as predict_labels
        if not explain:
            return Prediction(label=self.classes[label], probabilities=proba, bad_probability=p_bad,
                              contributions=None, bias=None, margin=None)
        folded = self.features.fold_contributions(contrib)
        return Prediction(label=self.classes[label], probabilities=proba, bad_probability=p_bad,
                          contributions=folded, bias=bias, margin=float(folded.sum() + bias))

    def _xgb(self, Z: np.ndarray, explain: str | None):  # noqa: N803
        if self.paths is not None and explain != "exact" and len(Z) <= PATHS_MAX_ROWS:
            margin, contrib, bias = self.paths.explain(Z)
            p1 = 1.0 / (1.0 + np.exp(-margin))
            proba = np.column_stack([1.0 - p1, p1])
            if not explain:
                return proba, None, None
            return (proba, contrib, bias) if self.bad_index == 1 else (proba, -contrib, -bias)
        from xgboost import DMatrix

        dm = DMatrix(Z, nthread=1)
        if not explain:
            raw = self.booster.predict(dm, output_margin=False)
            return self._proba_from_output(raw), None, None
        c = self.booster.predict(dm, pred_contribs=True, approx_contribs=explain == "fast")
        if c.ndim == 3:  # multiclass: (n, K, n_out + 1)
            margins = c.sum(axis=2)
            e = np.exp(margins - margins.max(axis=1, keepdims=True))
            proba = e / e.sum(axis=1, keepdims=True)
            cb = c[:, self.bad_index, :]
        else:  # binary: contributions to the log-odds of class 1
            p1 = 1.0 / (1.0 + np.exp(-c.sum(axis=1)))
            proba = np.column_stack([1.0 - p1, p1])
            cb = c if self.bad_index == 1 else -c
        return proba, cb[:, :-1], cb[:, -1]

    def _proba_from_output(self, raw: np.ndarray) -> np.ndarray:
        if raw.ndim == 2:
            return raw
        return np.column_stack([1.0 - raw, raw])

    def _forest_contrib(self, Z: np.ndarray, exact: bool):  # noqa: N803
        if exact:
            if self._exact_explainer is None:  # its build at load failed: try once more, else say so
                self._exact_explainer = self._build_exact_explainer()
                if self._exact_explainer is None:
                    raise RequestError(503, "exact explanations are unavailable for this model",
                                       [{"field": "explain", "problem": "no exact explainer could be built for "
                                         "this model (see the load log); explain=fast is available"}])
            sv = self._exact_explainer.shap_values(Z, check_additivity=False)
            ev = np.asarray(self._exact_explainer.expected_value).reshape(-1)
            vals = sv[..., self.bad_index] if np.ndim(sv) == 3 else sv[self.bad_index]
            return np.asarray(vals), np.full(len(Z), float(ev[self.bad_index]))
        return saabas_forest(self.bundle.classifier, Z, self.bad_index)

    # ---- description ---------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        b = self.bundle
        return {
            "name": self.name, "version": self.version, "alias": self.alias,
            "classifier": b.classifier_name, "sampler": b.sampler_name, "threshold": self.threshold,
            "classes": self.class_names, "bad_class": str(self.schema.target.bad_class),
            "metrics": b.metrics, "lineage": {k: v for k, v in self.tags.items()},
            "artifact_sha256": b.artifact_sha256,
            "features": [{"name": f.name, "type": f.type, "min": f.min, "max": f.max,
                          "categories": f.categories, "nullable": f.nullable, "description": f.description}
                         for f in self.schema.features],
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }


def saabas_forest(forest, Z: np.ndarray, cls: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """Path attribution for a forest's probability of class ``cls``, through scikit-learn's own
    ``decision_path`` (the fallback when the numpy walk of ``forest_paths`` was refused at load): along each
    tree's path, the change in the node's class share is credited to the parent's split feature (Saabas). Sums
    exactly to the forest's probability: bias (root share, averaged over trees) + contributions."""
    n, d = Z.shape
    contrib = np.zeros(n * d)
    bias = 0.0
    Z32 = np.asarray(Z, dtype=np.float32)  # noqa: N806
    for est in forest.estimators_:
        t = est.tree_
        value = t.value[:, 0, :]
        share = value[:, cls] / value.sum(axis=1)
        parent = np.zeros(t.node_count, dtype=np.intp)
        internal = np.flatnonzero(t.children_left >= 0)
        parent[t.children_left[internal]] = parent[t.children_right[internal]] = internal
        paths = est.decision_path(Z32)
        nodes = paths.indices
        rows = np.repeat(np.arange(n), np.diff(paths.indptr))
        below = nodes != 0  # every node of a path but the root: its share minus its parent's
        nodes, rows = nodes[below], rows[below]
        contrib += np.bincount(rows * d + t.feature[parent[nodes]], weights=share[nodes] - share[parent[nodes]],
                               minlength=n * d)
        bias += share[0]
    k = len(forest.estimators_)
    return contrib.reshape(n, d) / k, np.full(n, bias / k)
