"""GET /openapi.json (generated from the dataset schema) and GET /docs (Swagger UI, served locally)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, send_from_directory

from app import __version__
from app.api.state import state

bp = Blueprint("docs", __name__)

_ERROR = {"type": "object", "required": ["error", "details"], "properties": {
    "error": {"type": "string"},
    "details": {"type": "array", "items": {"type": "object", "required": ["field", "problem"], "properties": {
        "field": {"type": "string"}, "problem": {"type": "string"}}}},
    "request_id": {"type": "string"}}}
_MESSAGES = {400: "Malformed request (body, JSON syntax or parameters)", 401: "Authentication required",
             403: "Token not accepted", 404: "Not found", 405: "Method not allowed", 409: "A job is already running",
             413: "Body or batch too large", 415: "Content-Type must be application/json",
             422: "Validation failed (field and problem in details)", 503: "No model loaded yet"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": _MESSAGES[c], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for c in codes}


def _unavailable(description: str) -> dict[str, Any]:
    return {"503": {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}}


def _ok(schema: dict[str, Any], description: str = "OK", code: str = "200") -> dict[str, Any]:
    return {code: {"description": description, "content": {"application/json": {"schema": schema}}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_FEEDBACK_RESULT = {"type": "object", "required": ["received", "recorded", "duplicates", "unknown", "conflicts"],
                    "properties": {"received": {"type": "integer"}, "recorded": {"type": "integer"},
                                   "duplicates": {"type": "integer"},
                                   "unknown": {"type": "array", "items": {"type": "string"}},
                                   "conflicts": {"type": "array", "items": {"type": "object"}}}}


def feedback_body(classes: list[str], max_rows: int, strict: bool) -> dict[str, Any]:
    item = {"type": "object", "required": ["request_id", "outcome"], "additionalProperties": not strict,
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "maxLength": 160,
                               "description": "The request id of the prediction (<id>/<row> for batch rows)"},
                "outcome": {"anyOf": [{"type": "integer"}, {"type": "string"}],
                            "description": f"The observed class: one of {classes}"},
                "observed_at": {"type": ["string", "null"], "format": "date-time"}}}
    many = {"type": "object", "required": ["outcomes"], "additionalProperties": not strict, "properties": {
        "outcomes": {"type": "array", "minItems": 1, "maxItems": max_rows, "items": item}}}
    return {"anyOf": [item, many]}


def build_spec(applicant: dict[str, Any], classes: list[str], max_rows: int, model_name: str,
               strict: bool = True) -> dict[str, Any]:
    reason = {"type": "object", "properties": {
        "feature": {"type": "string"}, "value": {"type": ["number", "null"]}, "contribution": {"type": "number"},
        "direction": {"type": "string"}, "description": {"type": "string"}}}
    prediction = {"type": "object", "required": ["prediction", "probability", "risk_band", "model", "variant"],
                  "properties": {
                      "request_id": {"type": "string"},
                      "prediction": {"type": ["integer", "string"], "description": f"Predicted class: {classes}"},
                      "probability": {"type": "number", "minimum": 0, "maximum": 1,
                                      "description": "Probability of the bad class"},
                      "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
                      "threshold": {"type": ["number", "null"]},
                      "risk_band": {"type": "string", "enum": ["low", "medium", "high", "very_high"]},
                      "reason_codes": {"type": "array", "items": reason},
                      "explanation": {"type": "object"},
                      "model": {"type": "object", "properties": {"name": {"type": "string"},
                                                                 "version": {"type": "string"}}},
                      "variant": {"type": "string", "enum": ["champion", "challenger"]}}}
    explain = {"name": "explain", "in": "query", "required": False,
               "schema": {"type": "string", "enum": ["fast", "exact", "none"]},
               "description": "Reason codes: fast (approximate, default), exact (TreeSHAP) or none"}
    applicant_key = {"name": "X-Applicant-Key", "in": "header", "required": False, "schema": {"type": "string"},
                     "description": "Sticky A/B routing key"}
    from app.api.v2 import NUMERIC

    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string", "minLength": 1},
        "shape": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}},
        "datatype": {"type": "string", "enum": sorted(NUMERIC)},
        "data": {"type": "array", "minItems": 1, "items": {"type": "number"}}}}
    health = {"type": "object", "properties": {"status": {"type": "string"}}}
    admin = [{"bearer": []}]
    job = {"type": "object", "required": ["id", "status"], "properties": {"id": {"type": "string"},
                                                                          "status": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "credit-score API", "version": __version__,
                 "description": "Credit-risk scoring. Field names, types, ranges and examples come from the "
                                "dataset schema the served model was trained on."},
        "paths": {
            "/health": {"get": {"summary": "Liveness", "responses": _ok(health)}},
            "/ready": {"get": {"summary": "Readiness: a verified model is loaded",
                               "responses": {**_ok(health), "503": {"description": "Not ready", "content": {
                                   "application/json": {"schema": health}}}}}},
            "/predict": {"post": {
                "summary": "Score one applicant (with reason codes)", "parameters": [explain, applicant_key],
                "requestBody": _body({"$ref": "#/components/schemas/Applicant"}),
                "responses": {**_ok({"$ref": "#/components/schemas/Prediction"}),
                              **_errors(400, 413, 415, 422, 503)}}},
            "/predict/batch": {"post": {
                "summary": f"Score up to {max_rows} applicants", "parameters": [explain, applicant_key],
                "requestBody": _body({"type": "object", "required": ["instances"],
                                      "additionalProperties": not strict, "properties": {
                                          "instances": {"type": "array", "minItems": 1, "maxItems": max_rows,
                                                        "items": {"$ref": "#/components/schemas/Applicant"}}}}),
                "responses": {**_ok({"type": "object", "properties": {
                    "count": {"type": "integer"},
                    "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}}}),
                    **_errors(400, 413, 415, 422, 503)}}},
            "/model/info": {"get": {"summary": "The loaded models, metrics, lineage and features",
                                    "responses": {**_ok({"type": "object"}), **_errors(503)}}},
            "/model/retrain": {"post": {
                "summary": "Start a retrain job (admin)", "security": admin,
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"reason": {"type": "string"}}, "additionalProperties": False}}}},
                "responses": {**_ok({"type": "object", "properties": {"job_id": {"type": "string"}}},
                                    "Job accepted", "202"), **_errors(400, 401, 403, 409, 413, 415, 422),
                              **_unavailable("The job runner (Kubernetes API) is unavailable")}}},
            "/model/retrain/{job_id}": {"get": {
                "summary": "A retrain job's status (admin)", "security": admin,
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {**_ok(job), **_errors(401, 403, 404),
                              **_unavailable("The job runner (Kubernetes API) is unavailable")}}},
            "/feedback": {"post": {
                "summary": "Observed outcomes for earlier predictions, by request id (feedback or admin token)",
                "security": admin, "requestBody": _body(feedback_body(classes, max_rows, strict)),
                "responses": {**_ok(_FEEDBACK_RESULT), **_errors(400, 401, 403, 413, 415, 422),
                              "503": {"description": "The prediction store is disabled or unavailable",
                                      "content": {"application/json": {
                                          "schema": {"$ref": "#/components/schemas/Error"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/v2/health/live": {"get": {"summary": "OIP v2 liveness", "responses": _ok({"type": "object"})}},
            "/v2/health/ready": {"get": {"summary": "OIP v2 readiness", "responses": {
                **_ok({"type": "object"}), "503": {"description": "Not ready",
                                                   "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/v2/models/{model_name}": {"get": {
                "summary": "OIP v2 model metadata",
                "parameters": [{"name": "model_name", "in": "path", "required": True,
                                "schema": {"type": "string", "example": model_name}}],
                "responses": {**_ok({"type": "object"}), **_errors(404, 503)}}},
            "/v2/models/{model_name}/ready": {"get": {
                "summary": "OIP v2 model readiness",
                "parameters": [{"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {**_ok({"type": "object"}), **_errors(404, 503)}}},
            "/v2/models/{model_name}/infer": {"post": {
                "summary": "OIP v2 inference",
                "parameters": [{"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": _body({"type": "object", "required": ["inputs"], "properties": {
                    "id": {"type": "string"}, "inputs": {"type": "array", "minItems": 1, "items": tensor}}}),
                "responses": {**_ok({"type": "object", "properties": {
                    "model_name": {"type": "string"}, "outputs": {"type": "array", "items": {"type": "object"}}}}),
                    **_errors(400, 404, 413, 415, 422, 503)}}},
        },
        "components": {
            "schemas": {"Applicant": applicant, "Prediction": prediction, "Error": _ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi():
    st = state()
    schema = st.schema()
    v = st.validator(schema)
    spec = build_spec(v.json_schema(), [str(c) for c in schema.classes], st.settings.max_batch_rows,
                      st.settings.model_name, strict=st.settings.extra_fields == "reject")
    return jsonify(spec)


@lru_cache(maxsize=1)
def _swagger_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(swagger_ui_path)


_DOCS = """<!doctype html><html><head><meta charset="utf-8"><title>credit-score API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script></body></html>"""


@bp.get("/docs")
def docs():
    return Response(_DOCS, mimetype="text/html")


@bp.get("/docs/static/<path:name>")
def docs_static(name: str):
    return send_from_directory(_swagger_dir(), name)
