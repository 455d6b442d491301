"""POST /feedback: observed outcomes for earlier predictions, joined to them by request id.

Body: one outcome ``{"request_id": "...", "outcome": 1, "observed_at": "2026-01-31T00:00:00Z"}`` or many
``{"outcomes": [{...}, ...]}`` (at most ``CREDIT_SCORE_MAX_BATCH_ROWS``). ``outcome`` is one of the schema's
classes; ``observed_at`` (ISO 8601, optional) is when the outcome was observed. Batch rows are addressed as
``<request_id>/<row>``. Authentication: ``Authorization: Bearer <feedback token or admin token>``.

The answer (200) says what happened to each id: ``recorded``, ``duplicates`` (the same outcome again: a no-op),
``conflicts`` (another outcome was recorded first; not overwritten) and ``unknown`` (no such prediction in the
store, e.g. not written yet or past retention). 503 when the store is disabled or unreachable.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request

from app.api.body import json_body
from app.api.state import state
from app.monitoring.metrics import metrics
from app.monitoring.store import MAX_ID, StoreUnavailable
from app.serving.validation import RequestError

bp = Blueprint("feedback", __name__)
FIELDS = {"request_id", "outcome", "observed_at"}


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


def _classes() -> list[Any]:
    return list(state().schema().classes)


def _outcome(v: Any, classes: list[Any], where: str) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, str, float)):
        raise RequestError(422, "invalid outcome", [{"field": where, "problem": f"must be one of {classes}"}])
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    for c in classes:
        if v == c or (isinstance(v, str) and v == str(c)):
            return str(c)
    raise RequestError(422, "invalid outcome", [{"field": where, "problem": f"must be one of {classes}, got {v!r}"}])


def _observed(v: Any, where: str) -> datetime | None:
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > 64:
        raise RequestError(422, "invalid observed_at", [{"field": where, "problem": "expected an ISO 8601 time"}])
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RequestError(422, "invalid observed_at",
                           [{"field": where, "problem": f"not an ISO 8601 time: {v!r}"}]) from None
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def parse_items(body: Any, classes: list[Any], max_items: int, reject_extra: bool = True
                ) -> list[tuple[str, str, datetime | None]]:
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object", [{"field": "$", "problem": "not an object"}])
    if "outcomes" in body:
        extra = set(body) - {"outcomes"}
        raw, prefix = body["outcomes"], "outcomes"
        if not isinstance(raw, list) or not raw:
            raise RequestError(422, "'outcomes' must be a non-empty list",
                               [{"field": "outcomes", "problem": "missing or not a non-empty list"}])
        if len(raw) > max_items:
            raise RequestError(422, f"too many outcomes: at most {max_items} per request",
                               [{"field": "outcomes", "problem": f"{len(raw)} items, limit {max_items}"}])
    else:
        extra, raw, prefix = set(), [body], ""
    if extra and reject_extra:
        raise RequestError(422, "unknown fields", [{"field": f, "problem": "unknown field"} for f in sorted(extra)])
    items = []
    for i, it in enumerate(raw):
        where = f"{prefix}[{i}]." if prefix else ""
        if not isinstance(it, dict):
            raise RequestError(422, "each outcome must be an object", [{"field": where.rstrip("."),
                                                                        "problem": "not an object"}])
        unknown = set(it) - FIELDS
        if unknown and reject_extra:
            raise RequestError(422, "unknown fields",
                               [{"field": where + f, "problem": "unknown field"} for f in sorted(unknown)])
        missing = [f for f in ("request_id", "outcome") if f not in it]
        if missing:
            raise RequestError(422, "missing fields",
                               [{"field": where + f, "problem": "required field is missing"} for f in missing])
        rid = it["request_id"]
        if not isinstance(rid, str) or not 0 < len(rid) <= MAX_ID or not rid.isprintable():
            problem = f"a printable string of 1 to {MAX_ID} characters"
            raise RequestError(422, "invalid request_id", [{"field": where + "request_id", "problem": problem}])
        items.append((rid, _outcome(it["outcome"], classes, where + "outcome"),
                      _observed(it.get("observed_at"), where + "observed_at")))
    return items


@bp.post("/feedback")
def post_feedback():
    require_feedback_token()
    st = state()
    if st.store is None:
        raise RequestError(503, "the prediction store is disabled (CREDIT_SCORE_STORE_URL=none); "
                                "outcomes cannot be recorded", [{"field": "store", "problem": "disabled"}])
    items = parse_items(json_body(), _classes(), st.settings.max_batch_rows, st.settings.extra_fields == "reject")
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
