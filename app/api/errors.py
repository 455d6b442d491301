"""JSON errors for everything: ``{"error": ..., "details": [{"field": ..., "problem": ...}]}``.

Client mistakes are 4xx with the field and the problem; an unexpected failure is a 500 with a request id and
no stack trace (the trace goes to the log). Unknown routes and methods get JSON 404 / 405.
"""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

from app.jobs import JobRunnerError
from app.serving.validation import RequestError

log = logging.getLogger("credit_score.api")


def error_response(status: int, error: str, details: list | None = None, headers: dict | None = None):
    body = {"error": error, "details": details or []}
    rid = getattr(g, "request_id", None)
    if rid:
        body["request_id"] = rid
    resp = jsonify(body)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def _request_error(e: RequestError):
        headers = {"Retry-After": "10"} if e.status == 503 else None
        if e.status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="credit-score"'}
        return error_response(e.status, e.error, e.details, headers)

    @app.errorhandler(JobRunnerError)
    def _job_runner_error(e: JobRunnerError):  # e.g. the Kubernetes API behind the retrain job runner
        return error_response(503, "the retrain job runner is unavailable; retry later",
                              [{"field": "job_runner", "problem": str(e)}], {"Retry-After": "10"})

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        messages = {
            404: "no such endpoint",
            405: "method not allowed for this endpoint",
            413: "request body is too large",
        }
        detail = []
        if e.code == 405 and e.valid_methods:
            detail = [{"field": "method", "problem": f"allowed: {', '.join(sorted(e.valid_methods))}"}]
        headers = {"Allow": ", ".join(sorted(e.valid_methods))} if e.code == 405 and e.valid_methods else None
        return error_response(e.code or 500, messages.get(e.code, e.name.lower()), detail, headers)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unhandled error", extra={"error.type": type(e).__name__})
        return error_response(500, "internal error; the request id identifies it in the logs")
