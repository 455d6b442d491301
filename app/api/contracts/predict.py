"""POST /predict and /predict/batch: the prediction, and the batch envelope (a factory: rows are schema-driven)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.api.contracts.common import ModelRef


class ReasonCode(BaseModel):
    feature: str
    value: Annotated[float | str | None, Field(
        description="The feature's value as given: a number, a text category (e.g. self-employed), null when "
                    "missing")]
    contribution: float = Field(description="Signed: positive moves the score towards the bad class")
    direction: str
    description: str


class Explanation(BaseModel):
    method: Literal["approximate", "exact_treeshap"]
    bias: float
    margin: float
    units: Literal["log-odds", "probability"]


class Prediction(BaseModel):
    """One scored applicant (the ids on /predict only; reason codes unless ``explain=none``)."""

    prediction_id: str | None = Field(None, description="The server's id of this prediction: /feedback takes "
                                                        "outcomes by it")
    request_id: str | None = Field(None, description="The caller's X-Request-ID (or a generated one): a "
                                                     "correlation id for logs, not a key to stored data")
    prediction: int | str = Field(description="The predicted class")
    probability: float = Field(ge=0, le=1, description="Probability of the bad class")
    probabilities: dict[str, float] | None = Field(None, description="Every class's probability (multiclass)")
    threshold: float | None
    risk_band: Literal["low", "medium", "high", "very_high"]
    reason_codes: list[ReasonCode] | None = None
    explanation: Explanation | None = None
    model: ModelRef
    variant: Literal["champion", "challenger"]


class BatchResponse(BaseModel):
    prediction_id: str = Field(description="The server's id of this batch: row i takes outcomes on /feedback as "
                                           "<prediction_id>/<i>")
    request_id: str
    model: ModelRef
    variant: Literal["champion", "challenger"]
    count: int
    predictions: list[Prediction]


def batch_request(item: Any, max_rows: int, extra: Literal["reject", "ignore"]) -> type[BaseModel]:
    """``{"instances": [...]}`` with 1 to ``max_rows`` rows of ``item`` (the applicant model for the document,
    ``Any`` for the envelope check that runs before the rows meet their model)."""
    rows = Annotated[list[item], Field(min_length=1, max_length=max_rows,  # type: ignore[valid-type]
                                       description=f"1 to {max_rows} applicants")]
    cfg = ConfigDict(extra="forbid" if extra == "reject" else "ignore", title="BatchRequest")
    return create_model("BatchRequest", __config__=cfg, instances=(rows, ...))  # type: ignore[call-overload]


@lru_cache(maxsize=8)
def batch_envelope(max_rows: int, extra: Literal["reject", "ignore"]) -> type[BaseModel]:
    """The batch body with unchecked rows: checked before routing, since the routed model's applicant model
    then checks all rows in one call."""
    return batch_request(Any, max_rows, extra)
