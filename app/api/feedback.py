"""POST /feedback: observed outcomes for earlier predictions, joined to them by the server's prediction id.

Body: one outcome ``{"prediction_id": "...", "outcome": 1, "observed_at": "2026-01-31T00:00:00Z"}`` or many
``{"outcomes": [{...}, ...]}`` (at most ``CREDIT_SCORE_MAX_BATCH_ROWS``). ``prediction_id`` is the id the scoring
answer gave (``prediction_id`` of /predict and /predict/batch, ``parameters.prediction_id`` of /v2 inference):
the server generates it, so a client cannot make its outcome label predictions it did not receive (the caller's
``X-Request-ID`` is a correlation id only). ``outcome`` is one of the schema's classes; ``observed_at``
(ISO 8601, optional) is when the outcome was observed. Batch rows are addressed as ``<prediction_id>/<row>``.
Authentication: ``Authorization: Bearer <feedback token or admin token>``.

The answer (200) says what happened to each id: ``recorded``, ``duplicates`` (the same outcome again: a no-op),
``conflicts`` (another outcome was recorded first; not overwritten) and ``unknown`` (no such prediction in the
store, e.g. not written yet or past retention). 503 when the store is disabled or unreachable. The body's
models are in app/api/contracts/feedback.py.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request

from app.api.body import json_body
from app.api.contracts.validate import feedback_items
from app.api.state import state
from app.monitoring.metrics import metrics
from app.monitoring.store import StoreUnavailable
from app.serving.validation import RequestError

bp = Blueprint("feedback", __name__)


def require_feedback_token() -> None:
    """Bearer token: 401 without one, 403 with one that is neither the feedback nor the admin token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise RequestError(401, "authentication required",
                           [{"field": "Authorization", "problem": "expected 'Bearer <feedback token>'"}])
    accepted = state().feedback_tokens()
    if not any(hmac.compare_digest(token.encode(), t.encode()) for t in accepted):
        raise RequestError(403, "forbidden", [{"field": "Authorization", "problem": "token not accepted"}])


@bp.post("/feedback")
def post_feedback():
    require_feedback_token()
    st = state()
    if st.store is None:
        raise RequestError(503, "the prediction store is disabled (CREDIT_SCORE_STORE_URL=none); "
                                "outcomes cannot be recorded", [{"field": "store", "problem": "disabled"}])
    items = feedback_items(json_body(), st.contracts(st.schema()).feedback, st.settings.max_batch_rows)
    try:
        res = st.store.record_feedback(items)
    except StoreUnavailable as e:
        raise RequestError(503, "the prediction store is unavailable; retry later",
                           [{"field": "store", "problem": str(e)}]) from None
    m = metrics().feedback
    for result, n in (("recorded", res.recorded), ("duplicate", res.duplicates), ("conflict", len(res.conflicts)),
                      ("unknown", len(res.unknown))):
        if n:
            m.labels(result=result).inc(n)
    return jsonify(res.to_dict())
