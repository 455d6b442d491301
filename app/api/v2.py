"""Open Inference Protocol v2 (KServe / Triton compatible): model metadata and inference.

Inputs: either one numeric tensor of shape [N, n_features] in the schema's feature order, or one tensor per
feature (named after it, shape [N]), in JSON or with the binary tensor data extension (app/api/oip_wire.py).
A feature with text categories (``self-employed``, ``home/improvement``) is a ``BYTES`` tensor of its own in the
per-feature form: JSON strings (``null`` for a missing value where the feature is nullable), or binary elements
(each a 4-byte little-endian length and its UTF-8 bytes); an unknown category is a 422 naming the row, the
feature and the allowed values, as /predict answers. The model's metadata lists each input's datatype. Outputs:
``prediction`` (BYTES, class labels) and ``probability`` (FP64, the bad class), plus ``probabilities`` [N, K]
for multiclass models, in JSON (rounded to 6 decimals, as /predict) or binary (float64, unrounded).
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import numpy as np
from flask import Blueprint, g, jsonify

from app.api.contracts.validate import infer_request
from app.api.oip_wire import Output, Tensor, answer, bytes_elements, input_arrays, read_body
from app.api.predict import champion_route, prediction_id, record, routing_key, store
from app.api.state import state
from app.serving.codes import unknown_category
from app.serving.matrix_validation import validate_matrix
from app.serving.validation import ApplicantModels, RequestError

bp = Blueprint("v2", __name__, url_prefix="/v2")
_FLOAT_MAX = float(np.finfo(np.float64).max)


def _model_or_404(name: str, version: str | None = None):
    """The champion, when ``name`` (and ``version``, for the protocol's /versions/<v> routes) are its own."""
    snap = state().manager.snapshot()
    champ = snap.champion
    model_name = champ.name if champ else state().settings.model_name
    if name != model_name:
        raise RequestError(404, "unknown model", [{"field": "model_name", "problem": f"serving {model_name!r} only"}])
    if champ is None:
        raise RequestError(503, "no model is loaded yet", [{"field": "model", "problem": "no champion registered"}])
    if version is not None and version != champ.version:
        raise RequestError(404, "unknown model version",
                           [{"field": "model_version", "problem": f"serving version {champ.version!r} only"}])
    return champ


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def metadata(name: str, version: str | None = None):
    m = _model_or_404(name, version)
    outputs = [{"name": "prediction", "datatype": "BYTES", "shape": [-1]},
               {"name": "probability", "datatype": "FP64", "shape": [-1]}]
    if len(m.classes) > 2:
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(m.classes)]})
    return jsonify({"name": m.name, "versions": [m.version], "platform": f"credit-score/{m.bundle.classifier_name}",
                    "inputs": [{"name": f, "datatype": "BYTES" if text else "FP64", "shape": [-1]}
                               for f, text in zip(m.schema.feature_names, m.codes.is_text, strict=True)],
                    "outputs": outputs})


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None):
    m = _model_or_404(name, version)
    return jsonify({"name": m.name, "ready": True})


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None):
    _model_or_404(name, version)
    wire = read_body()
    body = infer_request(wire.json)
    pid = prediction_id()
    r = champion_route(routing_key(pid))
    model = r.model
    models = state().validator(model.schema)
    X = _matrix(models, input_arrays(body, wire))  # noqa: N806
    if len(X) > state().settings.max_batch_rows:
        raise RequestError(413, "too many rows", [{"field": "inputs", "problem": f"{len(X)} rows"}])
    X = validate_matrix(models, X)  # noqa: N806
    preds = model.predict_rows(X, None)
    record(model, r.variant, preds, None, pid)
    store(model, r.variant, preds, X, batch=True, pid=pid)
    n = len(preds)
    outputs = [Output("prediction", "BYTES", [n], [str(p.label) for p in preds]),
               Output("probability", "FP64", [n], np.fromiter((p.bad_probability for p in preds), float, n))]
    if len(model.classes) > 2:
        outputs.append(Output("probabilities", "FP64", [n, len(model.classes)],
                              np.vstack([p.probabilities for p in preds]).astype(np.float64)))
    head = {"model_name": model.name, "model_version": model.version,
            "id": body.id if body.id is not None else g.request_id,
            "parameters": {"prediction_id": pid}}  # rows are stored (and take feedback) as <prediction_id>/<row>
    return answer(body, head, outputs)


def _tensor(t: Tensor, k: int, nullable: bool = False) -> np.ndarray:
    """A numeric tensor's values as a flat float64 array, checked where JSON Schema cannot: the data's length
    matches the shape, and every value is a finite number, or ``null`` (NaN: missing) in the tensor of a nullable
    feature (binary tensors come checked and as arrays)."""
    if isinstance(t.data, np.ndarray):
        return t.data
    where = f"inputs[{k}]"
    flat, kinds = _flat(t, where)
    values, nulls = None, False
    if kinds <= ({int, float, type(None)} if nullable else {int, float}):  # no booleans or strings
        try:
            values = np.asarray(flat, dtype=np.float64)  # None -> NaN
        except OverflowError:  # an integer beyond float64
            values = None
        nulls = type(None) in kinds and np.fromiter((v is None for v in flat), bool, len(flat))
    if values is None or not (np.isfinite(values) | nulls).all():
        bad = next((i for i, v in enumerate(flat) if not (nullable and v is None) and (
            isinstance(v, bool) or not isinstance(v, int | float) or abs(v) > _FLOAT_MAX or not math.isfinite(v))), 0)
        problem = "finite numbers or null (the feature is nullable)" if nullable else "finite numbers only"
        raise RequestError(422, "invalid input tensor", [{"field": f"{where}.data[{bad}]", "problem": problem}])
    return values


def _flat(t: Tensor, where: str) -> tuple[list[Any], set[type]]:
    flat, kinds = _flatten(t.data)
    if len(flat) != math.prod(t.shape):
        raise RequestError(400, "invalid input tensor",
                           [{"field": f"{where}.data", "problem": f"{len(flat)} values for shape {t.shape}"}])
    return flat, kinds


def _text(models: ApplicantModels, j: int, t: Tensor, k: int) -> np.ndarray:
    """A BYTES tensor of feature ``j`` (text categories) as the numbers the model reads; a 422 naming every row
    (50 at most) whose value is no category, or null where the feature is not nullable."""
    where = f"inputs[{k}]"
    if isinstance(t.data, memoryview):
        flat: list[Any] = bytes_elements(t.data, math.prod(t.shape), where)
    else:
        flat, kinds = _flat(t, where)
        if not kinds <= {str, type(None)}:
            bad = next(i for i, v in enumerate(flat) if v is not None and not isinstance(v, str))
            raise RequestError(422, "invalid input tensor",
                               [{"field": f"{where}.data[{bad}]", "problem": "strings only in a BYTES tensor"}])
    f = models.schema.features[j]
    lookup = models.codes.lookup[j]
    numbers = np.array([lookup.get(v, math.nan) for v in flat], dtype=np.float64)
    bad = np.flatnonzero(np.isnan(numbers))
    errors = [{"field": f"rows[{i}].{f.name}", "problem": "null is not allowed: the feature is not nullable"
               if flat[i] is None else unknown_category(f, flat[i])}
              for i in bad.tolist() if flat[i] is not None or not f.nullable][:50]
    if errors:
        raise RequestError(422, "invalid applicants", errors)
    return numbers


def _flatten(data: Any) -> tuple[list[Any], set[type]]:
    """Nested lists to one row-major list, and the types of its values (C-level passes: no per-value Python)."""
    flat = data if isinstance(data, list) else [data]
    kinds = set(map(type, flat))
    while list in kinds:
        flat = list(chain.from_iterable(flat)) if kinds == {list} else _flatten_mixed(flat)
        kinds = set(map(type, flat))
    return flat, kinds


def _flatten_mixed(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in data:
        out.extend(_flatten_mixed(v) if isinstance(v, list) else [v])
    return out


def _matrix(models: ApplicantModels, tensors: list[Tensor]) -> np.ndarray:
    names, text = models.names, models.codes.is_text
    if len(tensors) == 1 and len(tensors[0].shape) == 2:
        t = tensors[0]
        if t.shape[1] != len(names):
            raise RequestError(422, "wrong number of features",
                               [{"field": "inputs[0].shape", "problem": f"expected [N, {len(names)}], got {t.shape}"}])
        if t.datatype == "BYTES" or any(text):
            _matrix_refused(models, t)
        return _tensor(t, 0).reshape(t.shape)
    by_name = {t.name: (k, t) for k, t in enumerate(tensors)}
    missing = [n for n in names if n not in by_name]
    unknown = [n for n in by_name if n not in names]
    if missing or unknown:
        details = [{"field": n, "problem": "required input is missing"} for n in missing]
        details += [{"field": n, "problem": "unknown input"} for n in unknown]
        raise RequestError(422, "inputs do not match the model's features", details)
    wrong = [(k, t, text[j]) for j, n in enumerate(names) for k, t in [by_name[n]]
             if (t.datatype == "BYTES") != text[j]]
    if wrong:
        raise RequestError(422, "inputs of the wrong datatype", [
            {"field": f"inputs[{k}].datatype", "problem": f"input {t.name!r} takes text categories: BYTES expected"
             if is_text else f"input {t.name!r} takes numbers: a numeric datatype expected, got BYTES"}
            for k, t, is_text in wrong])
    features = models.schema.features
    columns = [_text(models, j, t, k) if text[j] else _tensor(t, k, features[j].nullable)
               for j, n in enumerate(names) for k, t in [by_name[n]]]
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise RequestError(422, "inputs have different lengths", [{"field": "inputs", "problem": str(sorted(lengths))}])
    return np.column_stack(columns)


def _matrix_refused(models: ApplicantModels, t: Tensor) -> None:
    """The [N, n_features] form carries numbers only; text categories come one BYTES tensor per feature."""
    texts = [n for n, is_text in zip(models.names, models.codes.is_text, strict=True) if is_text]
    if not texts:
        raise RequestError(422, f"input {t.name!r}: this model takes numbers only",
                           [{"field": "inputs[0].datatype", "problem": "a numeric datatype expected, got BYTES"}])
    raise RequestError(422, "this model has text categories: send one tensor per feature",
                       [{"field": "inputs[0].shape", "problem": "one [N] tensor per feature, named after it, BYTES for "
                                                                f"{', '.join(texts)}"}])
