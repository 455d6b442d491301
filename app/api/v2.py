"""Open Inference Protocol v2 (KServe / Triton compatible): model metadata and inference.

Inputs: either one tensor of shape [N, n_features] in the schema's feature order, or one tensor per feature
(named after it, shape [N]). Outputs: ``prediction`` (BYTES, class labels) and ``probability`` (FP64, the bad
class), plus ``probabilities`` [N, K] for multiclass models.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from flask import Blueprint, g, jsonify

from app.api.body import json_body
from app.api.contracts.v2 import InferTensor
from app.api.contracts.validate import infer_request
from app.api.predict import champion_route, record, store
from app.api.state import state
from app.serving.validation import RequestError

bp = Blueprint("v2", __name__, url_prefix="/v2")


def _model_or_404(name: str):
    snap = state().manager.snapshot()
    champ = snap.champion
    model_name = champ.name if champ else state().settings.model_name
    if name != model_name:
        raise RequestError(404, "unknown model", [{"field": "model_name", "problem": f"serving {model_name!r} only"}])
    if champ is None:
        raise RequestError(503, "no model is loaded yet", [{"field": "model", "problem": "no champion registered"}])
    return champ


@bp.get("/models/<name>")
def metadata(name: str):
    m = _model_or_404(name)
    outputs = [{"name": "prediction", "datatype": "BYTES", "shape": [-1]},
               {"name": "probability", "datatype": "FP64", "shape": [-1]}]
    if len(m.classes) > 2:
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(m.classes)]})
    return jsonify({"name": m.name, "versions": [m.version], "platform": f"credit-score/{m.bundle.classifier_name}",
                    "inputs": [{"name": f, "datatype": "FP64", "shape": [-1]} for f in m.schema.feature_names],
                    "outputs": outputs})


@bp.get("/models/<name>/ready")
def model_ready(name: str):
    m = _model_or_404(name)
    return jsonify({"name": m.name, "ready": True})


@bp.post("/models/<name>/infer")
def infer(name: str):
    _model_or_404(name)
    body = infer_request(json_body())
    r = champion_route(g.request_id)
    model = r.model
    names = model.schema.feature_names
    X = _matrix(body.inputs, names)  # noqa: N806
    if len(X) > state().settings.max_batch_rows:
        raise RequestError(413, "too many rows", [{"field": "inputs", "problem": f"{len(X)} rows"}])
    _check_ranges(X, state().validator(model.schema), names)
    preds = model.predict_rows(X, None)
    record(model, r.variant, preds, None)
    store(model, r.variant, preds, X, batch=True)
    outputs: list[dict[str, Any]] = [
        {"name": "prediction", "datatype": "BYTES", "shape": [len(preds)], "data": [str(p.label) for p in preds]},
        {"name": "probability", "datatype": "FP64", "shape": [len(preds)],
         "data": [round(p.bad_probability, 6) for p in preds]},
    ]
    if len(model.classes) > 2:
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [len(preds), len(model.classes)],
                        "data": [round(float(v), 6) for p in preds for v in p.probabilities]})
    resp = {"model_name": model.name, "model_version": model.version, "outputs": outputs}
    resp["id"] = body.id if body.id is not None else g.request_id
    return jsonify(resp)


def _tensor(t: InferTensor, k: int) -> tuple[str, list[int], list[Any]]:
    """A tensor the model accepted, checked where JSON Schema cannot: data length and finite numbers."""
    where = f"inputs[{k}]"
    flat = _flatten(t.data)
    if len(flat) != math.prod(t.shape):
        raise RequestError(400, "invalid input tensor",
                           [{"field": f"{where}.data", "problem": f"{len(flat)} values for shape {t.shape}"}])
    bad = [i for i, v in enumerate(flat) if isinstance(v, bool) or not isinstance(v, int | float)
           or (isinstance(v, float) and not math.isfinite(v))]
    if bad:
        raise RequestError(422, "invalid input tensor",
                           [{"field": f"{where}.data[{bad[0]}]", "problem": "finite numbers only"}])
    return t.name, t.shape, flat


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for v in data:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out


def _matrix(inputs: list[InferTensor], names: list[str]) -> np.ndarray:
    tensors = [_tensor(t, k) for k, t in enumerate(inputs)]
    if len(tensors) == 1 and len(tensors[0][1]) == 2:
        _, shape, flat = tensors[0]
        if shape[1] != len(names):
            raise RequestError(422, "wrong number of features",
                               [{"field": "inputs[0].shape", "problem": f"expected [N, {len(names)}], got {shape}"}])
        return np.asarray(flat, dtype=np.float64).reshape(shape)
    by_name = {n: flat for n, _, flat in tensors}
    missing = [n for n in names if n not in by_name]
    unknown = [n for n in by_name if n not in names]
    if missing or unknown:
        details = [{"field": n, "problem": "required input is missing"} for n in missing]
        details += [{"field": n, "problem": "unknown input"} for n in unknown]
        raise RequestError(422, "inputs do not match the model's features", details)
    lengths = {len(by_name[n]) for n in names}
    if len(lengths) != 1:
        raise RequestError(422, "inputs have different lengths", [{"field": "inputs", "problem": str(sorted(lengths))}])
    return np.column_stack([np.asarray(by_name[n], dtype=np.float64) for n in names])


def _check_ranges(X: np.ndarray, validator, names: list[str]) -> None:  # noqa: N803
    """Same rules as /predict: each row through the schema's request model."""
    schema = validator.schema
    rows = []
    for row in X:
        rows.append({f.name: (int(v) if f.type != "numeric" and float(v).is_integer() else float(v))
                     for f, v in zip(schema.features, row, strict=True)})
    X[:] = validator.parse_many(rows)
