"""Liveness and readiness, ours and the Open Inference Protocol v2's."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.api.state import state
from app.monitoring.metrics import exposition, metrics
from app.serving.reload import NO_CHAMPION

bp = Blueprint("health", __name__)


@bp.get("/health")
@bp.get("/v2/health/live")
def live():
    return jsonify(status="ok", live=True)


@bp.get("/ready")
@bp.get("/v2/health/ready")
def ready():
    """200 with the champion's name and version, else 503 with a short reason class (``secrets unavailable``,
    ``registry unavailable``, ``model refused``, ``no champion``): never a path, an address or an error's text,
    which stay in the logs."""
    st = state()
    mgr = st.manager
    champ = mgr.snapshot().champion
    metrics().model_loaded.set(1 if champ else 0)
    if st.secrets is not None and st.settings.env == "production" and not st.secrets.healthy:
        return jsonify(status="not ready", ready=False, reason="secrets unavailable"), 503
    if champ is None:
        return jsonify(status="not ready", ready=False, reason=mgr.last_error or NO_CHAMPION), 503
    return jsonify(status="ready", ready=True, model={"name": champ.name, "version": champ.version})


@bp.get("/metrics")
def prometheus():
    st = state()
    snap = st.manager.snapshot()
    m = metrics()
    current = {(alias, model.version, model.bundle.classifier_name, model.bundle.sampler_name)
               for alias, model in (("champion", snap.champion), ("challenger", snap.challenger)) if model}
    # labels of models no longer loaded drop to 0 (clearing is not supported in multiprocess mode)
    for labels in st.info_labels - current:
        m.model_info.labels(*labels).set(0)
    for labels in current:
        m.model_info.labels(*labels).set(1)
    st.info_labels = current
    m.model_loaded.set(1 if snap.champion else 0)
    body = exposition()
    if st.writer is not None:  # the monitor job's latest gauges (drift, live performance), read by the writer
        st.writer.ensure_started()
        body += st.writer.monitor_text.encode()
    return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8")
