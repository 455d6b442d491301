"""Open Inference Protocol v2 bodies: inference request and response, model metadata and readiness.

The inference request is JSON, or, with the binary tensor data extension, a JSON header followed by the raw
tensors (app/api/oip_wire.py): an input then carries ``parameters.binary_data_size`` instead of ``data``, and
an output is answered as raw bytes when ``binary_data`` (per output) or ``binary_data_output`` (per request)
asks for it. A text category travels as a ``BYTES`` tensor of that feature (JSON strings, ``null`` where the
feature is nullable; binary: each element's 4-byte little-endian length and its UTF-8 bytes).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

NUMERIC = ("FP16", "FP32", "FP64", "INT16", "INT32", "INT64", "INT8", "UINT16", "UINT32", "UINT64", "UINT8")
DATATYPES = (*NUMERIC, "BYTES")
# nested row-major lists are accepted too; strings (and null where nullable) in BYTES tensors
_VALUES = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}, {"type": "array"}]}


class InputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data_size: Annotated[int, Strict()] | None = Field(
        default=None, ge=0, description="Binary tensor data extension: the tensor's size in bytes after the JSON "
                                        "header (little-endian, row-major), instead of `data`")


class InferTensor(BaseModel):
    """One input tensor: ``data`` in JSON, or ``parameters.binary_data_size`` bytes after the JSON header. Rules
    JSON Schema cannot state are checked by the route: one of the two is given, the data's length (or byte size)
    matches the shape, every value of a numeric tensor is a finite number (a 422 naming the value's flat index),
    and a ``BYTES`` tensor is one text-category feature's ``[N]`` values (strings; null where it is nullable)."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    shape: list[Annotated[int, Strict(), Field(ge=1)]] = Field(min_length=1)
    datatype: Literal[DATATYPES]  # type: ignore[valid-type]
    data: Annotated[list[Any], Field(min_length=1, json_schema_extra={"items": _VALUES})] | None = None
    parameters: InputParameters | None = None


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data: Annotated[bool, Strict()] | None = Field(
        default=None, description="Answer this output as raw bytes after the JSON header (binary extension)")


class RequestedOutput(BaseModel):
    """An output the client wants (all of them when ``outputs`` is absent), and in which form."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    parameters: OutputParameters | None = None


class RequestParameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    binary_data_output: Annotated[bool, Strict()] | None = Field(
        default=None, description="Answer every output as raw bytes unless the output's own `binary_data` says not")


class InferRequest(BaseModel):
    """One [N, n_features] numeric tensor in the schema's feature order, or one [N] tensor per feature, by name
    (``BYTES`` for a feature with text categories)."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    inputs: list[InferTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None
    parameters: RequestParameters | None = None


class OutputTensor(BaseModel):
    """``data`` in JSON, or (binary extension) ``parameters.binary_data_size`` bytes after the JSON header."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


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
