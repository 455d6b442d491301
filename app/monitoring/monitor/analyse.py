"""Stage 2, analyse: drift, live performance and calibration, fairness and the A/B comparison of what was
collected. Pure computation: nothing here writes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from app.config import Settings
from app.monitoring.drift import drift_report
from app.monitoring.fairness import add_relative_approval, fairness_ratios, fairness_table
from app.monitoring.monitor.results import Analysis, Collected, Drift, Models, Row

LIVE_METRICS = ("roc_auc", "f1_macro", "accuracy", "precision_bad", "recall_bad", "brier", "ece")


def analyse(settings: Settings, c: Collected) -> Analysis:
    served = c.served
    inputs = drift(settings, c.models, c.rows, served)
    live = live_by_variant(c.models, c.labelled, c.classes, c.bad)
    fairness = fairness_rows(c.models.schema, served, [r for r in c.labelled if not r["shadow"]], c.bad)
    return Analysis(drift=inputs, live=live, fairness=fairness, fairness_ratios=fairness_ratios(fairness),
                    abtest=abtest(settings, c))


# ---- rows -> arrays ----------------------------------------------------------------------------------------
def feature_matrix(rows: list[Row], schema) -> np.ndarray:
    """The stored features (JSON objects by schema name) as the matrix training profiled: numbers in schema
    order, a text category as its number (:func:`text_numbers`), a missing value (or a category the schema does
    not know) as NaN."""
    names = schema.feature_names
    text = text_numbers(schema)
    X = np.full((len(rows), len(names)), np.nan)  # noqa: N806
    for i, r in enumerate(rows):
        if r["features"]:
            d = json.loads(r["features"])
            X[i] = [np.nan if (v := d.get(n)) is None else text[n].get(v, np.nan) if n in text else v for n in names]
    return X


def text_numbers(schema) -> dict[str, dict[object, float]]:
    """Per feature with text categories: category -> the number the model reads (the schema's one encoding,
    :attr:`~app.core.schema.Feature.matrix_codes`, as training and the API use it). The store keeps the string
    (what the applicant gave)."""
    return {f.name: dict(f.matrix_codes) for f in schema.features if f.string_coded}


# ---- drift -------------------------------------------------------------------------------------------------
def drift(settings: Settings, models: Models, rows: list[Row], served: list[Row]) -> Drift:
    """The served inputs against the champion's training data; scores per variant against their own version's."""
    names = models.schema.feature_names
    profile = models.profiles.get(models.champion)
    out = Drift()
    if profile is None:
        out.status = "no_reference_profile"
    elif len(served) < settings.monitor_min_rows:
        out.status = "insufficient_data"
    else:
        rep = drift_report(profile, feature_matrix(served, models.schema), names, None, settings.drift_psi_threshold,
                           settings.drift_p_value)
        out.features = [d.to_dict() for d in rep["features"]]
        out.drifted = rep["drifted"]
    for variant, version in models.variants():
        prof = models.profiles.get(version) if version else None
        scores = np.array([r["probability"] for r in rows if r["variant"] == variant and r["model_version"] == version])
        if prof and prof.get("score") and len(scores) >= settings.monitor_min_rows:
            sd = drift_report(prof, np.empty((len(scores), 0)), [], scores, settings.drift_psi_threshold,
                              settings.drift_p_value)["score"]
            out.scores[variant] = sd.to_dict()
    return out


# ---- live performance --------------------------------------------------------------------------------------
def live_by_variant(models: Models, labelled: list[Row], classes: list[str], bad: str) -> dict[str, dict[str, Any]]:
    """Live metrics of each variant's current version (the champion's served rows, the challenger's all)."""
    live: dict[str, dict[str, Any]] = {}
    for variant, version in models.variants():
        if version is None:
            continue
        mine = [r for r in labelled if r["variant"] == variant and r["model_version"] == version
                and (variant == "challenger" or not r["shadow"])]
        live[variant] = {"version": version, **live_metrics(mine, classes, bad)}
    return live


def live_metrics(rows: list[Row], classes: list[str], bad: str, bins: int = 10) -> dict[str, Any]:
    """Live performance of labelled rows: AUC, F1 macro, precision/recall (bad), accuracy, Brier, calibration."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

    rows = [r for r in rows if r["outcome"] in classes and r["predicted_class"] in classes]
    n = len(rows)
    out: dict[str, Any] = {"n": n, "bad": 0, **{m: float("nan") for m in LIVE_METRICS}, "calibration": []}
    if not n:
        return out
    idx = {c: i for i, c in enumerate(classes)}
    y = np.array([idx[r["outcome"]] for r in rows])
    pred = np.array([idx[r["predicted_class"]] for r in rows])
    p_bad = np.array([r["probability"] for r in rows], dtype=float)
    b = idx[bad]
    y_bad = (y == b).astype(int)
    out["bad"] = int(y_bad.sum())
    labels = list(range(len(classes)))
    out["f1_macro"] = float(f1_score(y, pred, average="macro", labels=labels, zero_division=0))
    out["accuracy"] = float((y == pred).mean())
    prec, rec, _, _ = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    out["precision_bad"], out["recall_bad"] = float(prec[b]), float(rec[b])
    if 0 < y_bad.sum() < n:
        if len(classes) == 2:
            out["roc_auc"] = float(roc_auc_score(y_bad, p_bad))
        else:
            proba = np.array([json.loads(r["probabilities"]) for r in rows], dtype=float)
            present = np.unique(y)
            out["roc_auc"] = float(roc_auc_score(y, proba, multi_class="ovr", labels=labels)) \
                if present.size == len(classes) else float(roc_auc_score(y_bad, p_bad))
    out["brier"] = float(np.mean((p_bad - y_bad) ** 2))
    # calibration: quantile bins of P(bad); ECE = sum over bins of share * |mean predicted - observed|
    order = np.argsort(p_bad, kind="stable")
    ece, table = 0.0, []
    for chunk in np.array_split(order, min(bins, n)):
        if chunk.size == 0:
            continue
        mp, ob = float(p_bad[chunk].mean()), float(y_bad[chunk].mean())
        ece += chunk.size / n * abs(mp - ob)
        table.append({"rows": int(chunk.size), "mean_predicted": mp, "observed": ob,
                      "min": float(p_bad[chunk].min()), "max": float(p_bad[chunk].max())})
    out["ece"], out["calibration"] = float(ece), table
    return out


# ---- fairness and A/B --------------------------------------------------------------------------------------
def fairness_rows(schema, served: list[Row], labelled: list[Row], bad: str) -> list[dict[str, Any]]:
    """Approval rate per group on the window's served requests; TPR/FPR on the outcomes known."""
    approvals = fairness_table(schema, feature_matrix(served, schema),
                               None, np.array([r["predicted_class"] == bad for r in served], dtype=bool)) \
        if served else []
    rates = fairness_table(schema, feature_matrix(labelled, schema),
                           np.array([r["outcome"] == bad for r in labelled], dtype=bool),
                           np.array([r["predicted_class"] == bad for r in labelled], dtype=bool)) if labelled else []
    by_key = {(r["feature"], r["group"]): r for r in approvals}
    for r in rates:
        key = (r["feature"], r["group"])
        if key in by_key:
            by_key[key].update(labelled=r["labelled"], tpr=r["tpr"], fpr=r["fpr"])
        else:
            by_key[key] = {**r, "rows": 0, "approval_rate": float("nan")}
    out = list(by_key.values())
    add_relative_approval(out)
    return out


def abtest(settings: Settings, c: Collected) -> dict[str, Any] | None:
    """Champion vs challenger on the performance window (app/monitoring/abtest.py); None without a challenger."""
    if not c.models.challenger:
        return None
    from app.monitoring.abtest import ab_report

    return ab_report(c.store, c.models.champion, c.models.challenger, c.bad, settings.abtest_min_samples,
                     settings.abtest_min_positives, settings.abtest_alpha, settings.monitor_performance_days, c.now,
                     settings.monitor_max_rows)
