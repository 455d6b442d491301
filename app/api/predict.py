"""POST /predict (one applicant, with reason codes) and POST /predict/batch (vectorised)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from flask import Blueprint, g, jsonify, request

from app.api.body import json_body
from app.api.contracts.predict import batch_envelope
from app.api.contracts.validate import batch_rows
from app.api.state import state
from app.monitoring.logging import LINES, PREDICTION_LOGGER
from app.monitoring.metrics import child, metrics, observe_many
from app.monitoring.store.record import PredictionRecord
from app.serving.matrix_validation import matrix_from_objects
from app.serving.model import Prediction, ServedModel
from app.serving.router import Route, route
from app.serving.validation import RequestError

bp = Blueprint("predict", __name__)
log = logging.getLogger(PREDICTION_LOGGER)
EXPLAIN = ("fast", "exact", "none")


def champion_route(key: str) -> Route:
    st = state()
    snap = st.manager.snapshot()
    if snap.champion is None:
        raise RequestError(503, "no model is loaded yet: train and register one (credit-score train), "
                                "then retry", [{"field": "model", "problem": "no champion registered"}])
    return route(snap, st.settings.ab_mode, st.settings.ab_split, key)


def explain_mode(default: str) -> str | None:
    mode = request.args.get("explain", default)
    if mode not in EXPLAIN:
        raise RequestError(400, "invalid query parameter",
                           [{"field": "explain", "problem": f"must be one of {list(EXPLAIN)}, got {mode!r}"}])
    return None if mode == "none" else mode


def risk_band(p_bad: float, threshold: float | None) -> str:
    t = 0.5 if threshold is None else threshold
    if p_bad < 0.5 * t:
        return "low"
    if p_bad < t:
        return "medium"
    if p_bad < (1 + t) / 2:
        return "high"
    return "very_high"


def reason_codes(model: ServedModel, pred: Prediction, row: Sequence[float], k: int,
                 ranked: tuple[list[int], list[float]] | None = None) -> list[dict[str, Any]]:
    """The k features that moved this applicant's score most, signed (positive = towards the bad class).
    ``ranked``: this row's feature order and contributions as Python lists, computed for a whole batch at once
    (:func:`describe_batch`)."""
    if pred.contributions is None:
        return []
    if ranked is None:
        order, contrib = np.argsort(-np.abs(pred.contributions), kind="stable")[:k].tolist(), \
            pred.contributions.tolist()
    else:
        order, contrib = ranked
    feats = model.schema.features
    return [{"feature": feats[j].name, "value": _plain(row[j]), "contribution": round(contrib[j], 6),
             "direction": "increases risk" if contrib[j] > 0 else "decreases risk",
             "description": feats[j].description} for j in order]


def _plain(v: float) -> float | int | None:
    v = float(v)
    if v != v:  # NaN: a missing value
        return None
    return int(v) if v.is_integer() else v


def describe_batch(model: ServedModel, preds: list[Prediction], X: np.ndarray, variant: str,  # noqa: N803
                   explain: str | None, k: int) -> list[dict[str, Any]]:
    """``describe`` for every row of a batch, the ranking of reason codes done for all rows in one call."""
    rows = X.tolist()
    if not explain or not preds or preds[0].contributions is None:
        return [describe(model, p, rows[i], variant, explain, k) for i, p in enumerate(preds)]
    C = np.vstack([p.contributions for p in preds])  # noqa: N806
    orders = np.argsort(-np.abs(C), axis=1, kind="stable")[:, :k].tolist()
    contribs = C.tolist()
    return [describe(model, p, rows[i], variant, explain, k, (orders[i], contribs[i])) for i, p in enumerate(preds)]


def describe(model: ServedModel, pred: Prediction, row: Sequence[float], variant: str, explain: str | None,
             k: int, ranked: tuple[list[int], list[float]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prediction": pred.label,
        "probability": round(pred.bad_probability, 6),
    }
    if len(model.classes) > 2:
        out["probabilities"] = {c: round(float(p), 6) for c, p in zip(model.class_names, pred.probabilities,
                                                                       strict=True)}
    out["threshold"] = model.threshold
    out["risk_band"] = risk_band(pred.bad_probability, model.threshold)
    if explain:
        out["reason_codes"] = reason_codes(model, pred, row, k, ranked)
        out["explanation"] = {"method": "approximate" if explain == "fast" else "exact_treeshap",
                              "bias": round(pred.bias, 6), "margin": round(pred.margin, 6),
                              "units": "log-odds" if model.is_xgb else "probability"}
    out["model"] = {"name": model.name, "version": model.version}
    out["variant"] = variant
    return out


def record(model: ServedModel, variant: str, preds: list[Prediction], X: np.ndarray | None,  # noqa: N803
           shadow: bool = False) -> None:
    """Metrics and one JSON log line per prediction (a batch's lines leave in one write). Feature values are
    logged only when configured and given (``X``, rows in feature order)."""
    m = metrics()
    hist = child(m.probability, variant)
    by_class: dict[str, int] = {}
    for p in preds:
        by_class[str(p.label)] = by_class.get(str(p.label), 0) + 1
    if len(preds) == 1:
        hist.observe(preds[0].bad_probability)
    else:
        observe_many(hist, [p.bad_probability for p in preds])
    for label, n in by_class.items():
        child(m.predictions, model.version, variant, label).inc(n)
    if not log.isEnabledFor(logging.INFO):
        return
    extra = {"trace.id": g.get("request_id"), "model.name": model.name, "model.version": model.version,
             "model.variant": variant, "prediction.shadow": shadow}
    features = X is not None and state().settings.log_features
    lines = [{"prediction.class": str(p.label), "prediction.probability": round(p.bad_probability, 6)} for p in preds]
    if features:
        for line, row in zip(lines, X, strict=True):
            line["prediction.features"] = {f: _plain(v) for f, v in zip(model.schema.feature_names, row, strict=True)}
    if len(lines) == 1:
        log.info("prediction", extra={**extra, **lines[0]})
    else:
        log.info("prediction", extra={**extra, LINES: lines})


def store(model: ServedModel, variant: str, preds: list[Prediction], X: np.ndarray, batch: bool,  # noqa: N803
          shadow: bool = False) -> None:
    """Queue the predictions for the prediction store: one record, no I/O (the writer's thread does that)."""
    st = state()
    if st.writer is None:
        return
    proba = preds[0].probabilities if len(preds) == 1 else np.vstack([p.probabilities for p in preds])
    st.writer.submit(PredictionRecord(
        request_id=g.request_id, unix_time=time.time(), model_name=model.name, model_version=model.version,
        variant=variant, shadow=shadow, batch=batch, labels=[p.label for p in preds], probabilities=proba,
        bad_index=model.bad_index, features=X if st.settings.store_features else None,
        feature_names=model.schema.feature_names))


@bp.post("/predict")
def predict_one():
    st = state()
    body = json_body()
    r = champion_route(request.headers.get("X-Applicant-Key") or g.request_id)
    row = st.validator(r.model.schema).parse(body)
    explain = explain_mode(st.settings.explain)
    pred = r.model.predict_rows(row[None, :], explain)[0]
    record(r.model, r.variant, [pred], row[None, :])
    store(r.model, r.variant, [pred], row, batch=False)
    if r.shadow is not None:
        shadow_pred = r.shadow.predict_rows(row[None, :], None)[0]
        record(r.shadow, "challenger", [shadow_pred], row[None, :], shadow=True)
        store(r.shadow, "challenger", [shadow_pred], row, batch=False, shadow=True)
    out = {"request_id": g.request_id, **describe(r.model, pred, row, r.variant, explain, st.settings.reason_codes)}
    return jsonify(out)


@bp.post("/predict/batch")
def predict_batch():
    st = state()
    rows = batch_rows(json_body(), batch_envelope(st.settings.max_batch_rows, st.settings.extra_fields))
    r = champion_route(request.headers.get("X-Applicant-Key") or g.request_id)
    validator = st.validator(r.model.schema)
    X = matrix_from_objects(validator, rows)  # noqa: N806 (plainly valid rows in one pass)
    if X is None:
        X = validator.parse_many(rows)  # noqa: N806 (the applicant model names every fault)
    explain = explain_mode("none")
    if explain == "exact" and len(X) > st.settings.max_exact_rows:
        raise RequestError(422, f"too many rows for exact explanations: at most {st.settings.max_exact_rows}",
                           [{"field": "explain", "problem": f"explain=exact on {len(X)} rows, limit "
                                                           f"{st.settings.max_exact_rows}; use explain=fast"}])
    preds = r.model.predict_rows(X, explain)
    k = st.settings.reason_codes
    results = describe_batch(r.model, preds, X, r.variant, explain, k)
    record(r.model, r.variant, preds, None)
    store(r.model, r.variant, preds, X, batch=True)
    return jsonify({"request_id": g.request_id, "model": {"name": r.model.name, "version": r.model.version},
                    "variant": r.variant, "count": len(results), "predictions": results})
