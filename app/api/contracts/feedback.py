"""POST /feedback: one outcome or ``{"outcomes": [...]}``; a factory, because the classes come from the schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    TypeAdapter,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from app.monitoring.store import MAX_ID


def _problem(kind: str, text: str) -> PydanticCustomError:
    return PydanticCustomError(kind, "{problem}", {"problem": text})


def _printable(v: str) -> str:
    if not v.isprintable():
        raise _problem("printable", "not printable")
    return v


def _observed(v: Any) -> datetime | None:
    """ISO 8601 (``Z`` accepted) to a naive UTC time; ``None`` stays ``None``."""
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > 64:
        raise _problem("observed_at", "expected an ISO 8601 time")
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _problem("observed_at", f"not an ISO 8601 time: {v!r}") from None
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def _outcome(classes: list[Any]):
    def check(v: Any) -> str:
        """One of the schema's classes (``1``, ``1.0`` and ``"1"`` name class 1); returns it as text."""
        if isinstance(v, bool) or not isinstance(v, int | str | float):
            raise _problem("outcome", f"must be one of {classes}")
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        for c in classes:
            if v == c or (isinstance(v, str) and v == str(c)):
                return str(c)
        raise _problem("outcome", f"must be one of {classes}, got {v!r}")
    return check


PredictionId = Annotated[str, Field(min_length=1, max_length=MAX_ID, strict=True,
                                    description="The prediction_id the scoring answer gave (<prediction_id>/<row> "
                                                "for a batch's rows)"),
                      AfterValidator(_printable)]
ObservedAt = Annotated[datetime | None, PlainValidator(_observed),
                       WithJsonSchema({"type": ["string", "null"], "format": "date-time",
                                       "description": "When the outcome was observed (ISO 8601)"})]


def feedback_request(classes: list[Any], max_rows: int, extra: Literal["reject", "ignore"]) -> TypeAdapter:
    """The body of POST /feedback, validated as one item or as a batch (chosen by the ``outcomes`` key)."""
    forbid = "forbid" if extra == "reject" else "ignore"
    outcome = Annotated[Any, PlainValidator(_outcome(classes)),
                        WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}],
                                        "description": f"The observed class: one of {classes}"})]
    item = create_model("FeedbackItem", __config__=ConfigDict(extra=forbid, title="FeedbackItem"),
                        prediction_id=(PredictionId, ...), outcome=(outcome, ...), observed_at=(ObservedAt, None))
    items = Annotated[list[item], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
    many = create_model("FeedbackBatch", __config__=ConfigDict(extra=forbid, title="FeedbackBatch"),
                        outcomes=(items, ...))
    body = Annotated[Annotated[many, Tag("many")] | Annotated[item, Tag("one")],  # type: ignore[valid-type]
                     Discriminator(lambda v: "many" if isinstance(v, dict) and "outcomes" in v else "one")]
    return TypeAdapter(body)


class Conflict(BaseModel):
    prediction_id: str
    recorded: str
    received: str


class FeedbackResult(BaseModel):
    received: int
    recorded: int
    duplicates: int
    unknown: list[str]
    conflicts: list[Conflict]
