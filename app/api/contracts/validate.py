"""Envelopes through their models, and pydantic's errors into the API's 4xx bodies.

The error contract predates the models and stays: a status, a message, and ``[{"field", "problem"}]`` with
fields named as the client wrote them (``outcomes[2].outcome``, ``inputs[0].shape``). When a body has several
faults, the first in the order the API has always checked them is reported (e.g. a missing field before a
wrong value), so the answers do not depend on pydantic's error order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from app.api.contracts.feedback import MAX_ID
from app.api.contracts.model import RetrainRequest
from app.api.contracts.v2 import NUMERIC, InferRequest
from app.serving.validation import RequestError

Errors = list[dict[str, Any]]


def _errors(e: ValidationError) -> Errors:
    return e.errors(include_url=False)


def _unknown(errs: Errors, prefix: str = "") -> RequestError | None:
    extra = sorted(str(er["loc"][-1]) for er in errs if er["type"] == "extra_forbidden")
    if not extra:
        return None
    return RequestError(422, "unknown fields", [{"field": prefix + (f or '""'), "problem": "unknown field"}
                                                for f in extra])  # '""': a key that is the empty string


# ---- /predict/batch ----------------------------------------------------------------------------------------
def batch_rows(body: Any, envelope: type[BaseModel]) -> list[Any]:
    """The ``instances`` of a batch body checked by ``envelope`` (rows unchecked: they meet the schema's
    applicant model after routing, all in one call)."""
    try:
        envelope.model_validate(body)
    except ValidationError as e:
        errs = _errors(e)
        if any(er["loc"] == () or er["type"] == "missing" for er in errs):
            raise RequestError(400, "the body must be an object with an 'instances' list",
                               [{"field": "instances", "problem": "required field is missing"}]) from None
        if (unknown := _unknown(errs)) is not None:
            raise unknown from None
        rows = body["instances"]
        kinds = {er["type"] for er in errs if er["loc"] == ("instances",)}
        if "too_long" in kinds:
            limit = next(er["ctx"]["max_length"] for er in errs if er["type"] == "too_long")
            raise RequestError(422, f"too many rows: at most {limit} per batch",
                               [{"field": "instances", "problem": f"{len(rows)} rows, limit {limit}"}]) from None
        if "too_short" in kinds:
            raise RequestError(422, "no rows to score", [{"field": "instances", "problem": "empty list"}]) from None
    return body["instances"]  # not a list: the applicants' parser names it (400)


# ---- /v2/models/<name>/infer --------------------------------------------------------------------------------
_TENSOR_ORDER = ("missing", "datatype", "shape", "name", "data", "parameters")
_TENSOR_PROBLEMS = {"datatype": f"a numeric datatype ({', '.join(NUMERIC)}) or BYTES (text categories)",
                    "shape": "a non-empty list of sizes, each an integer >= 1",
                    "name": "a non-empty string", "data": "a non-empty list of values",
                    "parameters": "an object",
                    "parameters.binary_data_size": "the tensor's size in bytes, an integer >= 0"}


def infer_request(body: Any) -> InferRequest:
    try:
        return InferRequest.model_validate(body)
    except ValidationError as e:
        raise _infer_error(_errors(e), body) from None


def _infer_error(errs: Errors, body: Any) -> RequestError:
    """The first fault of an inference request: the body, then the inputs in order, the outputs, the
    parameters, the id."""
    if any(er["loc"] in ((), ("inputs",)) for er in errs):
        return RequestError(400, "the body must be an object with a non-empty 'inputs' list",
                            [{"field": "inputs", "problem": "missing or not a non-empty list"}])
    tensors = [er for er in errs if er["loc"][:1] == ("inputs",) and len(er["loc"]) >= 2]
    if tensors:
        return _tensor_error(tensors, body)
    for top in ("outputs", "parameters"):
        mine = [er for er in errs if er["loc"][:1] == (top,)]
        if mine:
            field = ".".join(f"[{p}]" if isinstance(p, int) else p for p in mine[0]["loc"]).replace(".[", "[")
            return RequestError(400, f"invalid {top}", [{"field": field, "problem": mine[0]["msg"]}])
    return RequestError(400, "invalid request", [{"field": "id", "problem": "expected a string"}])


def _tensor_error(tensors: Errors, body: Any) -> RequestError:
    k = min(er["loc"][1] for er in tensors)
    where = f"inputs[{k}]"
    mine = [er for er in tensors if er["loc"][1] == k]
    if any(len(er["loc"]) == 2 for er in mine):
        return RequestError(400, "invalid input tensor", [{"field": where, "problem": "expected an object"}])

    def rank(er: dict[str, Any]) -> tuple[int, int]:
        key = "missing" if er["type"] == "missing" else str(er["loc"][2])
        return _TENSOR_ORDER.index(key), _TENSOR_ORDER.index(str(er["loc"][2]))

    first = min(mine, key=rank)
    key = str(first["loc"][2])
    if key == "parameters" and len(first["loc"]) > 3:
        key = f"parameters.{first['loc'][3]}"
    problem = "missing" if first["type"] == "missing" else _TENSOR_PROBLEMS.get(key, first["msg"])
    return RequestError(400, "invalid input tensor", [{"field": f"{where}.{key}", "problem": problem}])


# ---- /feedback ----------------------------------------------------------------------------------------------
_ITEM_ERRORS = {"prediction_id": "invalid prediction_id", "outcome": "invalid outcome",
                "observed_at": "invalid observed_at"}


def feedback_items(body: Any, adapter: TypeAdapter, max_rows: int) -> list[tuple[str, str, datetime | None]]:
    """``(prediction_id, outcome, observed_at)`` per outcome of a /feedback body (``adapter``: feedback_request)."""
    try:
        parsed = adapter.validate_python(body)
    except ValidationError as e:
        raise _feedback_error(_errors(e), body, max_rows) from None
    items = getattr(parsed, "outcomes", None) or [parsed]
    return [(it.prediction_id, it.outcome, it.observed_at) for it in items]


def _feedback_error(errs: Errors, body: Any, max_rows: int) -> RequestError:
    if not isinstance(body, dict):
        return RequestError(400, "the body must be a JSON object", [{"field": "$", "problem": "not an object"}])
    if errs[0]["loc"][0] == "one":
        return _item_error([er | {"loc": er["loc"][1:]} for er in errs], "")
    outer = [er for er in errs if er["loc"][1:] == ("outcomes",)]
    if any(er["type"] == "too_long" for er in outer):
        n = len(body["outcomes"])
        return RequestError(422, f"too many outcomes: at most {max_rows} per request",
                            [{"field": "outcomes", "problem": f"{n} items, limit {max_rows}"}])
    if outer:
        return RequestError(422, "'outcomes' must be a non-empty list",
                            [{"field": "outcomes", "problem": "missing or not a non-empty list"}])
    if (unknown := _unknown([er for er in errs if len(er["loc"]) == 2])) is not None:
        return unknown
    rows = [er for er in errs if len(er["loc"]) >= 3]
    k = min(er["loc"][2] for er in rows)
    return _item_error([er | {"loc": er["loc"][3:]} for er in rows if er["loc"][2] == k], f"outcomes[{k}].")


def _item_error(errs: Errors, where: str) -> RequestError:
    """The first fault of one outcome: not an object, unknown fields, missing fields, then the values in order."""
    if any(er["loc"] == () for er in errs):
        return RequestError(422, "each outcome must be an object", [{"field": where.rstrip("."),
                                                                     "problem": "not an object"}])
    if (unknown := _unknown(errs, where)) is not None:
        return unknown
    missing = [str(er["loc"][0]) for er in errs if er["type"] == "missing"]
    if missing:
        return RequestError(422, "missing fields",
                            [{"field": where + f, "problem": "required field is missing"} for f in missing])
    first = min(errs, key=lambda er: list(_ITEM_ERRORS).index(str(er["loc"][0])))
    name = str(first["loc"][0])
    problem = f"a printable string of 1 to {MAX_ID} characters" if name == "prediction_id" else first["msg"]
    return RequestError(422, _ITEM_ERRORS[name], [{"field": where + name, "problem": problem}])


# ---- /model/retrain -----------------------------------------------------------------------------------------
def retrain_request(body: Any) -> RetrainRequest:
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object", [{"field": "$", "problem": "not an object"}])
    try:
        return RetrainRequest.model_validate(body)
    except ValidationError as e:
        errs = _errors(e)
        if (unknown := _unknown(errs)) is not None:
            raise unknown from None
        raise RequestError(422, "invalid retrain request",
                           [{"field": ".".join(map(str, er["loc"])), "problem": er["msg"]} for er in errs]) from None
