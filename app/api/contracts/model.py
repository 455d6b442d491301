"""GET /model/info, POST /model/retrain and GET /model/retrain/<job_id>."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FeatureInfo(BaseModel):
    name: str
    type: str
    min: float | None
    max: float | None
    categories: list[Any] | None
    nullable: bool
    description: str


class LoadedModel(BaseModel):
    name: str
    version: str
    alias: str
    classifier: str
    sampler: str
    threshold: float | None
    classes: list[str]
    bad_class: str
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    artifact_sha256: str | None
    features: list[FeatureInfo]
    loaded_at: str


class Routing(BaseModel):
    mode: str
    split: float


class ModelInfo(BaseModel):
    champion: LoadedModel
    challenger: LoadedModel | None
    routing: Routing
    reload_interval_s: float


class RetrainRequest(BaseModel):
    """Optional body of POST /model/retrain (the reason is kept to 200 characters)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field("api", description="Why the job runs (recorded in its status)")


class RetrainAccepted(BaseModel):
    job_id: str
    status: str
    location: str


class JobStatus(BaseModel):
    """A retrain job's status document (the runner may add fields)."""

    model_config = ConfigDict(extra="allow")
    id: str
    status: str
