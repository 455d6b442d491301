"""The OpenAPI 3.1 document, generated from the contracts' pydantic models (app/api/contracts/).

Each route states its models (request body, answers); the schemas come from pydantic's JSON Schema in one pass
(``TypeAdapter.json_schemas``), so shared models become one component each and the document cannot drift from
the models that validate the requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from app import __version__
from app.api.contracts import common, model, predict, v2
from app.api.contracts.feedback import FeedbackResult
from app.api.contracts.requests import RequestContracts

REF = "#/components/schemas/{model}"
MESSAGES = {400: "Malformed request (body, JSON syntax or parameters)", 401: "Authentication required",
            403: "Token not accepted", 404: "Not found", 405: "Method not allowed", 409: "A job is already running",
            413: "Body or batch too large", 415: "Content-Type must be application/json",
            422: "Validation failed (field and problem in details)", 503: "No model loaded yet"}
EXPLAIN = {"name": "explain", "in": "query", "required": False,
           "schema": {"type": "string", "enum": ["fast", "exact", "none"]},
           "description": "Reason codes: fast (approximate, default), exact (TreeSHAP) or none"}
APPLICANT_KEY = {"name": "X-Applicant-Key", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "Sticky A/B routing key, read only when the gateway sets it "
                                "(CREDIT_SCORE_AB_KEY_HEADER names the header); otherwise ignored"}
ADMIN = [{"bearer": []}]
OIP_HEADER = "Inference-Header-Content-Length"
OIP_BINARY = (
    "Open Inference Protocol binary tensor data extension: the JSON request (its length in bytes in the "
    f"`{OIP_HEADER}` header) followed by the raw tensors of the inputs that carry `parameters.binary_data_size` "
    "instead of `data`, in the order of `inputs`, each little-endian and row-major (a BYTES tensor, one feature's text "
    "categories: each element's 4-byte little-endian length, then its UTF-8 bytes). The JSON request may also come "
    "without a Content-Type header (as Triton's client sends it), as application/octet-stream, or with curl's "
    "default label application/x-www-form-urlencoded.")
OIP_BINARY_ANSWER = (
    "When an output is asked for as binary (`outputs[].parameters.binary_data`, else the request's "
    f"`parameters.binary_data_output`): the JSON response (its length in the `{OIP_HEADER}` header) followed by "
    "those outputs' bytes in the order of `outputs`: FP64 little-endian; BYTES as each element's 4-byte "
    "little-endian length and its UTF-8 bytes.")
OIP_HEADER_PARAM = {"name": OIP_HEADER, "in": "header", "required": False,
                    "schema": {"type": "integer", "minimum": 1},
                    "description": "Binary tensor data extension: the length in bytes of the JSON part of the body"}


@dataclass
class Op:
    """One operation: its models by name (keys of ``Models``) and its documented answers."""

    method: str
    path: str
    summary: str
    ok: str | None  # the 2xx body's model (None: text, /metrics)
    body: str | None = None
    body_required: bool = True
    status: int = 200
    errors: tuple[int, ...] = ()
    unavailable: str | None = None  # the 503's description, when it differs from "no model loaded yet"
    not_ready: bool = False  # a 503 with the 2xx model (readiness probes)
    params: list[dict[str, Any]] = field(default_factory=list)
    security: bool = False
    oip_binary: bool = False  # the body and the answer may use the OIP binary tensor data extension


def _path_param(name: str, example: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if example:
        schema["example"] = example
    return {"name": name, "in": "path", "required": True, "schema": schema}


def operations(max_rows: int, model_name: str) -> list[Op]:
    model_param = [_path_param("model_name")]
    return [
        Op("get", "/health", "Liveness", "Health"),
        Op("get", "/ready", "Readiness: a verified model is loaded", "Ready", not_ready=True),
        Op("post", "/predict", "Score one applicant (with reason codes)", "Prediction", "Applicant",
           errors=(400, 413, 415, 422, 503), params=[EXPLAIN, APPLICANT_KEY]),
        Op("post", "/predict/batch", f"Score up to {max_rows} applicants", "BatchResponse", "BatchRequest",
           errors=(400, 413, 415, 422, 503), params=[EXPLAIN, APPLICANT_KEY]),
        Op("get", "/model/info", "The loaded models, metrics, lineage and features", "ModelInfo", errors=(503,)),
        Op("post", "/model/retrain", "Start a retrain job (admin)", "RetrainAccepted", "RetrainRequest",
           body_required=False, status=202, errors=(400, 401, 403, 409, 413, 415, 422),
           unavailable="The job runner (Kubernetes API) is unavailable", security=True),
        Op("get", "/model/retrain/{job_id}", "A retrain job's status (admin)", "JobStatus", errors=(401, 403, 404),
           unavailable="The job runner (Kubernetes API) is unavailable", params=[_path_param("job_id")],
           security=True),
        Op("post", "/feedback", "Observed outcomes for earlier predictions, by request id (feedback or admin token)",
           "FeedbackResult", "FeedbackRequest", errors=(400, 401, 403, 413, 415, 422),
           unavailable="The prediction store is disabled or unavailable", security=True),
        Op("get", "/metrics", "Prometheus metrics", None),
        Op("get", "/v2/health/live", "OIP v2 liveness", "Health"),
        Op("get", "/v2/health/ready", "OIP v2 readiness", "Ready", not_ready=True),
    ] + [op for path, params in (("/v2/models/{model_name}", model_param),
                                 ("/v2/models/{model_name}/versions/{model_version}",
                                  [*model_param, _path_param("model_version")]))
         for op in _oip_model_ops(path, params, model_name)]


def _oip_model_ops(path: str, params: list[dict[str, Any]], model_name: str) -> list[Op]:
    """Metadata, readiness and inference of the served model, by name (and by version: the champion's only)."""
    first = [{**params[0], "schema": {**params[0]["schema"], "example": model_name}}, *params[1:]]
    return [
        Op("get", path, "OIP v2 model metadata", "ModelMetadata", errors=(404, 503), params=first),
        Op("get", f"{path}/ready", "OIP v2 model readiness", "ModelReady", errors=(404, 503), params=params),
        Op("post", f"{path}/infer", "OIP v2 inference", "InferResponse", "InferRequest",
           errors=(400, 404, 413, 415, 422, 503), params=[*params, OIP_HEADER_PARAM], oip_binary=True),
    ]


def models(contracts: RequestContracts) -> dict[str, TypeAdapter]:
    """Every body the API reads or writes, by component name: what validates a request documents it."""
    static = [common.Error, common.Health, common.Ready, predict.Prediction, predict.BatchResponse,
              model.ModelInfo, model.RetrainRequest, model.RetrainAccepted, model.JobStatus, FeedbackResult,
              v2.InferRequest, v2.InferResponse, v2.ModelMetadata, v2.ModelReady]
    out = {m.__name__: TypeAdapter(m) for m in static}
    out["Applicant"] = TypeAdapter(contracts.applicants.applicant)
    out["BatchRequest"] = TypeAdapter(contracts.batch)
    out["FeedbackRequest"] = contracts.feedback
    return out


def schemas(adapters: dict[str, TypeAdapter]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each name's schema (a ``$ref`` for a model) and the components, from one JSON Schema pass."""
    keyed, defs = TypeAdapter.json_schemas([(name, "validation", ta) for name, ta in adapters.items()],
                                           ref_template=REF)
    return {name: keyed[(name, "validation")] for name in adapters}, defs.get("$defs", {})


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(op: Op, refs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    error = _json(refs["Error"])
    if op.ok is None:
        answers = {"200": {"description": "Text exposition format", "content": {"text/plain": {
            "schema": {"type": "string"}}}}}
    else:
        answers = {str(op.status): {"description": "Job accepted" if op.status == 202 else "OK",
                                    "content": _json(refs[op.ok])}}
    answers |= {str(c): {"description": MESSAGES[c], "content": error} for c in op.errors}
    if op.oip_binary:
        answers["200"]["content"]["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
        answers["200"]["description"] = f"OK. {OIP_BINARY_ANSWER}"
        answers["200"]["headers"] = {OIP_HEADER: {"schema": {"type": "integer"},
                                                  "description": "With binary outputs: the JSON part's length"}}
        answers["415"]["description"] = "Content-Type must be application/json, application/octet-stream, none (or " \
                                        "curl's application/x-www-form-urlencoded); compressed bodies are not accepted"
    if op.unavailable:
        answers["503"] = {"description": op.unavailable, "content": error}
    if op.not_ready:
        answers["503"] = {"description": "Not ready", "content": _json(refs[op.ok])}
    out: dict[str, Any] = {"summary": op.summary}
    if op.params:
        out["parameters"] = op.params
    if op.security:
        out["security"] = ADMIN
    if op.body:
        out["requestBody"] = {"required": op.body_required, "content": _json(refs[op.body])}
    if op.oip_binary:
        out["requestBody"]["description"] = OIP_BINARY
        out["requestBody"]["content"]["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
    out["responses"] = answers
    return out


def build_spec(contracts: RequestContracts, max_rows: int, model_name: str) -> dict[str, Any]:
    refs, components = schemas(models(contracts))
    for name, schema in refs.items():  # bodies that are not models (the feedback union) become components too
        if "$ref" not in schema:
            components[name] = schema
            refs[name] = {"$ref": REF.format(model=name)}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations(max_rows, model_name):
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "credit-score API", "version": __version__,
                 "description": "Credit-risk scoring. Field names, types, ranges and examples come from the "
                                "dataset schema the served model was trained on."},
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items())),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
