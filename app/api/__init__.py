"""Blueprints and request hooks (request id, one JSON log line and metrics per request)."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, g, request

log = logging.getLogger("credit_score.access")
# the methods a metric label may name; any other (a client can send any token) is counted as "other", so made-up
# methods cannot create new time series
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def register_blueprints(app: Flask) -> None:
    from app.api import docs, feedback, health, model, predict, v2
    from app.api.errors import register_error_handlers
    from app.monitoring.metrics import child, metrics

    for bp in (health.bp, predict.bp, model.bp, v2.bp, docs.bp, feedback.bp):
        app.register_blueprint(bp)
    register_error_handlers(app)
    m = metrics()

    @app.before_request
    def _start() -> None:
        gg = g._get_current_object()  # noqa: SLF001 (one context lookup, not one per attribute)
        gg.t0 = time.perf_counter()
        rid = request.headers.get("X-Request-ID", "")  # the caller's correlation id, never a key to stored data
        gg.request_id = rid if 0 < len(rid) <= 128 and rid.isprintable() else uuid.uuid4().hex

    @app.after_request
    def _finish(resp):
        req, gg = request._get_current_object(), g._get_current_object()  # noqa: SLF001 (as above)
        elapsed = time.perf_counter() - getattr(gg, "t0", time.perf_counter())
        endpoint = req.url_rule.rule if req.url_rule is not None else "unmatched"
        status, method, rid = resp.status_code, req.method, gg.get("request_id", "")
        if method not in METHODS:
            method = "other"
        child(m.requests, endpoint, method, str(status)).inc()
        child(m.latency, endpoint, method).observe(elapsed)
        if 400 <= status < 500:
            child(m.rejected, endpoint, str(status)).inc()
        resp.headers["X-Request-ID"] = rid
        if endpoint not in ("/metrics", "/health"):  # probes and scrapes would drown the log
            log.info("request", extra={"http.request.method": method, "url.path": req.path,
                                       "http.response.status_code": status,
                                       "event.duration": int(elapsed * 1e9), "trace.id": rid or None})
        return resp
