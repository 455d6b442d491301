"""Open Inference Protocol v2 bodies: inference request and response, model metadata and readiness."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

NUMERIC = ("FP16", "FP32", "FP64", "INT16", "INT32", "INT64", "INT8", "UINT16", "UINT32", "UINT64", "UINT8")
_NUMBERS = {"anyOf": [{"type": "number"}, {"type": "array"}]}  # nested row-major lists are accepted too


class InferTensor(BaseModel):
    """One input tensor. Rules JSON Schema cannot state are checked by the route: the data's length matches
    the shape, and every value is a finite number (a 422 naming the value's flat index)."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    shape: list[Annotated[int, Strict(), Field(ge=1)]] = Field(min_length=1)
    datatype: Literal[NUMERIC]  # type: ignore[valid-type]
    data: list[Any] = Field(min_length=1, json_schema_extra={"items": _NUMBERS})


class InferRequest(BaseModel):
    """One [N, n_features] tensor in the schema's feature order, or one [N] tensor per feature, by name."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    inputs: list[InferTensor] = Field(min_length=1)


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[OutputTensor]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ModelReady(BaseModel):
    name: str
    ready: bool
