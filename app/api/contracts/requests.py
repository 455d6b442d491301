"""The request models of one dataset schema, built once per schema (like the applicant model they embed)."""

from __future__ import annotations

from typing import Any, Literal

from app.api.contracts.feedback import feedback_request
from app.api.contracts.predict import batch_request
from app.serving.validation import ApplicantModels


class RequestContracts:
    """Request models for one schema and one service configuration (batch limit, unknown-field policy).

    ``batch`` is the documented batch body (rows are applicants; requests are checked with the same envelope,
    ``predict.batch_envelope``, then the rows with the routed model's applicants). ``feedback`` validates and
    documents POST /feedback. ``document`` keeps the OpenAPI document built from them (app/api/docs.py).
    """

    def __init__(self, applicants: ApplicantModels, max_rows: int, extra: Literal["reject", "ignore"]):
        self.applicants = applicants
        self.batch = batch_request(applicants.applicant, max_rows, extra)
        self.feedback = feedback_request(list(applicants.schema.classes), max_rows, extra)
        self.document: dict[str, Any] | None = None
