"""GET /model/info, POST /model/retrain (admin), GET /model/retrain/<job_id> (admin)."""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request, url_for

from app import jobs
from app.api.state import state
from app.monitoring.metrics import metrics
from app.serving.validation import RequestError

bp = Blueprint("model", __name__)


@bp.get("/model/info")
def info():
    st = state()
    snap = st.manager.snapshot()
    if snap.champion is None:
        raise RequestError(503, "no model is loaded yet", [{"field": "model", "problem": "no champion registered"}])
    body = {"champion": snap.champion.info(),
            "challenger": snap.challenger.info() if snap.challenger else None,
            "routing": {"mode": st.settings.ab_mode, "split": st.settings.ab_split},
            "reload_interval_s": st.settings.reload_interval}
    return jsonify(body)


def require_admin() -> None:
    """Bearer token: 401 without one, 403 with a wrong one; compared in constant time."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RequestError(401, "authentication required",
                           [{"field": "Authorization", "problem": "expected 'Bearer <admin token>'"}])
    expected = state().admin_token()
    if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise RequestError(403, "forbidden", [{"field": "Authorization", "problem": "token not accepted"}])


@bp.post("/model/retrain")
def retrain():
    require_admin()
    st = state()
    reason = "api"
    if request.content_length:
        from app.api.body import json_body
        from app.api.contracts.validate import retrain_request

        reason = retrain_request(json_body()).reason[:200]
    try:
        # the job learns from the store this service writes to (its URL may come from Vault)
        status = jobs.start(st.settings, reason=reason, store_url=st.store.url if st.store is not None else None)
    except jobs.JobBusy as e:
        metrics().retrains.labels(outcome="rejected_busy").inc()
        problem = f"job {e.running} is running; retry when it finishes"
        raise RequestError(409, "a retrain job is already running", [{"field": "job", "problem": problem}]) from None
    metrics().retrains.labels(outcome="started").inc()
    location = url_for("model.retrain_status", job_id=status["id"])
    resp = jsonify({"job_id": status["id"], "status": status["status"], "location": location})
    resp.status_code = 202
    resp.headers["Location"] = location
    return resp


@bp.get("/model/retrain/<job_id>")
def retrain_status(job_id: str):
    require_admin()
    status = jobs.read_status(state().settings, job_id)  # a JobRunnerError becomes a 503 (app/api/errors.py)
    if status is None:
        raise RequestError(404, "no such retrain job", [{"field": "job_id", "problem": f"unknown job {job_id!r}"}])
    return jsonify(status)
