"""Credit-risk metrics for binary and multiclass models, and decision-threshold tuning.

The decision rule itself (:func:`~app.core.labels.predict_labels`) lives in the core, where serving takes it
from; it is re-exported here for the callers that know it by this path.

Labels are class indices (0..K-1 in the schema's class order); ``proba`` is (n, K). For a binary model the
"positive" class is the schema's bad class and the decision is ``proba[:, bad] >= threshold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from app.core.labels import predict_labels

__all__ = ["HIGHER_IS_BETTER", "SCALAR_METRICS", "compute_metrics", "ks_statistic", "predict_labels",
           "scalar_metrics", "tune_threshold"]

SCALAR_METRICS = ("roc_auc", "pr_auc", "f1_macro", "accuracy", "balanced_accuracy", "brier",
                  "precision_macro", "recall_macro", "ks", "gini", "f1_bad", "precision_bad", "recall_bad")
HIGHER_IS_BETTER = {m: m != "brier" for m in SCALAR_METRICS}


def ks_statistic(y_bad: np.ndarray, score: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score distributions of bad and good rows."""
    fpr, tpr, _ = roc_curve(y_bad, score)
    return float(np.max(tpr - fpr))


def compute_metrics(y: np.ndarray, proba: np.ndarray, bad_index: int, threshold: float | None = 0.5,
                    class_names: list[Any] | None = None) -> dict[str, Any]:
    """All metrics for one set of predictions. Scalars are floats; ``confusion_matrix`` is a nested list;
    ``per_class`` maps class name -> precision/recall/f1/support."""
    y = np.asarray(y)
    n_classes = proba.shape[1]
    labels = list(range(n_classes))
    names = [str(c) for c in (class_names or labels)]
    pred = predict_labels(proba, bad_index, threshold if n_classes == 2 else None)
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    m: dict[str, Any] = {
        "f1_macro": float(f1_score(y, pred, average="macro", labels=labels, zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "precision_macro": float(np.mean(prec)),
        "recall_macro": float(np.mean(rec)),
        "precision_bad": float(prec[bad_index]),
        "recall_bad": float(rec[bad_index]),
        "f1_bad": float(f1[bad_index]),
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
        "per_class": {names[i]: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                                 "support": int(sup[i])} for i in labels},
    }
    present = np.unique(y)
    if n_classes == 2:
        y_bad = (y == bad_index).astype(int)
        score = proba[:, bad_index]
        if present.size == 2:
            auc = float(roc_auc_score(y_bad, score))
            m.update(roc_auc=auc, gini=2 * auc - 1, ks=ks_statistic(y_bad, score),
                     pr_auc=float(average_precision_score(y_bad, score)))
        else:
            m.update(roc_auc=float("nan"), gini=float("nan"), ks=float("nan"), pr_auc=float("nan"))
        m["brier"] = float(brier_score_loss(y_bad, score))
    else:
        onehot = np.eye(n_classes)[y]
        if present.size == n_classes:
            m["roc_auc"] = float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels))
            m["pr_auc"] = float(average_precision_score(onehot, proba, average="macro"))
        else:
            m["roc_auc"] = m["pr_auc"] = float("nan")
        m["brier"] = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    return m


def scalar_metrics(m: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in m.items() if k in SCALAR_METRICS}


def tune_threshold(y: np.ndarray, proba: np.ndarray, bad_index: int, objective: str = "f1_bad",
                   cost_fn: float = 5.0, cost_fp: float = 1.0) -> tuple[float, float]:
    """Pick the decision threshold on out-of-fold predictions.

    ``f1_bad`` maximises the F1 of the bad class; ``cost`` minimises the expected cost per applicant,
    ``cost_fn`` for approving a bad applicant and ``cost_fp`` for rejecting a good one.
    Returns (threshold, objective value).
    """
    score = proba[:, bad_index]
    y_bad = (np.asarray(y) == bad_index)
    order = np.argsort(-score, kind="stable")
    s_sorted, b_sorted = score[order], y_bad[order]
    tp = np.cumsum(b_sorted)  # predicting bad for the top-k rows
    fp = np.cumsum(~b_sorted)
    pos = b_sorted.sum()
    # consider cut points only where the score changes (a threshold equal to s_sorted[k])
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp, fp, cut = tp[last], fp[last], s_sorted[last]
    fn = pos - tp
    if objective == "f1_bad":
        value = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        k = int(np.argmax(value))
        return float(cut[k]), float(value[k])
    if objective == "cost":
        cost = (cost_fn * fn + cost_fp * fp) / len(score)
        k = int(np.argmin(cost))
        return float(cut[k]), float(cost[k])
    raise ValueError(f"unknown threshold objective {objective!r}")
