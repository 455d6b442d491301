"""Blueprints and request hooks (request id, one JSON log line and metrics per request)."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, g, request

log = logging.getLogger("credit_score.access")


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
        g.t0 = time.perf_counter()
        rid = request.headers.get("X-Request-ID", "")
        g.request_id = rid if 0 < len(rid) <= 128 and rid.isprintable() else uuid.uuid4().hex

    @app.after_request
    def _finish(resp):
        elapsed = time.perf_counter() - getattr(g, "t0", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        status = resp.status_code
        child(m.requests, endpoint, request.method, str(status)).inc()
        child(m.latency, endpoint, request.method).observe(elapsed)
        if 400 <= status < 500:
            child(m.rejected, endpoint, str(status)).inc()
        resp.headers["X-Request-ID"] = g.get("request_id", "")
        if endpoint not in ("/metrics", "/health"):  # probes and scrapes would drown the log
            log.info("request", extra={"http.request.method": request.method, "url.path": request.path,
                                       "http.response.status_code": status,
                                       "event.duration": int(elapsed * 1e9), "trace.id": g.get("request_id")})
        return resp
