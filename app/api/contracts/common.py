"""Bodies shared by every route: the error body, health and readiness, a model reference."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    field: str = Field(description="The field, header or parameter at fault (`instances[1].age`, `$` for the body)")
    problem: str


class Error(BaseModel):
    """Every 4xx and 5xx answer: a message, per-field details, and the request id when there is one."""

    error: str
    details: list[ErrorDetail]
    request_id: str | None = None


class ModelRef(BaseModel):
    name: str
    version: str


class Health(BaseModel):
    status: str
    live: bool


class Ready(BaseModel):
    """200 with the champion when a verified model is loaded; 503 with the reason when not."""

    status: str
    ready: bool
    model: ModelRef | None = None
    reason: str | None = None
