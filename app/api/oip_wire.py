"""The Open Inference Protocol v2 inference exchange on the wire, as its clients send and read it.

Request: a JSON body, with ``Content-Type: application/json``, ``application/octet-stream`` or none at all
(Triton's ``tritonclient.http`` sends no Content-Type; ``curl -d`` and urllib label any body
``application/x-www-form-urlencoded``, also taken: Triton's and KServe's servers read the body whatever its
label), or the binary tensor data extension: the JSON header
(its length in ``Inference-Header-Content-Length``) followed by each binary input's raw tensor, little-endian,
row-major, ``parameters.binary_data_size`` bytes, in the order of ``inputs``. Answer: JSON, or, when an output
is asked for as binary (``outputs[k].parameters.binary_data``, else the request's
``parameters.binary_data_output``), the JSON header followed by those outputs' bytes, with
``Inference-Header-Content-Length``. BYTES tensors, in (a text category per element, one tensor per feature) and
out, are each element's 4-byte little-endian length, then its UTF-8 bytes. Shared memory and the classification
extension are not offered (a 400 naming the parameter).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from flask import Response, jsonify, request

from app.api.body import parse_json
from app.api.contracts.v2 import InferRequest
from app.serving.validation import RequestError

HEADER = "Inference-Header-Content-Length"
CONTENT_TYPES = ("application/json", "application/octet-stream", "application/x-www-form-urlencoded")
DTYPES = {"FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
          "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8"}
_UNSUPPORTED_INPUT = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_UNSUPPORTED_OUTPUT = ("classification", *_UNSUPPORTED_INPUT)


@dataclass
class Body:
    """The JSON object of a request and the bytes after it (empty without the binary extension)."""

    json: Any
    binary: memoryview
    has_header: bool


@dataclass
class Tensor:
    """One input: ``data`` as JSON gave it (nested lists), a binary numeric tensor as float64, or a binary BYTES
    tensor's raw bytes (read by :func:`bytes_elements` once the route knows the input is due as text)."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[Any] | memoryview


@dataclass
class Output:
    name: str
    datatype: str  # FP64 or BYTES
    shape: list[int]
    values: np.ndarray | list[str]


def read_body() -> Body:
    ctype = (request.mimetype or "").lower()
    if ctype and ctype not in CONTENT_TYPES and not ctype.endswith("+json"):
        raise RequestError(415, "Content-Type must be application/json, application/octet-stream or none",
                           [{"field": "Content-Type", "problem": f"got {request.mimetype!r}"}])
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise RequestError(415, "compressed request bodies are not accepted",
                           [{"field": "Content-Encoding", "problem": f"got {encoding!r}; send it uncompressed"}])
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    header = request.headers.get(HEADER)
    if header is None:
        return Body(parse_json(raw), memoryview(b""), has_header=False)
    n = header.strip()
    if not (n.isascii() and n.isdigit()) or not 0 < int(n) <= len(raw):  # '¹'.isdigit() too
        raise RequestError(400, f"invalid {HEADER} header",
                           [{"field": HEADER, "problem": f"the JSON header's length in bytes, from 1 to the body's "
                                                        f"{len(raw)}; got {header[:40]!r}"}])
    return Body(parse_json(raw[:int(n)]), memoryview(raw)[int(n):], has_header=True)


def input_arrays(req: InferRequest, body: Body) -> list[Tensor]:
    """Each input's name, datatype, shape and values: the JSON ``data`` as given (checked by the route), a binary
    numeric tensor as float64, read with ``np.frombuffer`` (no per-value Python), a binary BYTES tensor as its
    bytes."""
    out: list[Tensor] = []
    offset = 0
    for k, t in enumerate(req.inputs):
        where = f"inputs[{k}]"
        params = t.parameters.model_dump(exclude_none=True) if t.parameters else {}
        for p in _UNSUPPORTED_INPUT:
            if p in params:
                raise RequestError(400, "shared memory is not supported",
                                   [{"field": f"{where}.parameters.{p}", "problem": "send the data in the body"}])
        size = params.get("binary_data_size")
        if size is None:
            if t.data is None:
                raise RequestError(400, "invalid input tensor", [{"field": f"{where}.data", "problem":
                                   "missing: give data, or parameters.binary_data_size (binary extension)"}])
            out.append(Tensor(t.name, t.datatype, t.shape, t.data))
            continue
        if t.data is not None:
            raise RequestError(400, "invalid input tensor", [{"field": f"{where}.data", "problem":
                               "give data or parameters.binary_data_size, not both"}])
        if not body.has_header:
            raise RequestError(400, f"binary input without the {HEADER} header",
                               [{"field": HEADER, "problem": f"required: {where} has binary_data_size"}])
        count = math.prod(t.shape)
        if t.datatype == "BYTES":  # elements of their own lengths: read when the route knows it wants text
            _fits(body, offset, size, where)
            out.append(Tensor(t.name, t.datatype, t.shape, body.binary[offset:offset + size]))
            offset += size
            continue
        dtype = np.dtype(DTYPES[t.datatype])
        if size != count * dtype.itemsize:
            raise RequestError(400, "binary tensor size does not match its shape", [{
                "field": f"{where}.parameters.binary_data_size",
                "problem": f"{size} bytes; shape {t.shape} of {t.datatype} takes {count * dtype.itemsize}"}])
        _fits(body, offset, size, where)
        values = np.frombuffer(body.binary, dtype=dtype, count=count, offset=offset).astype(np.float64)
        offset += size
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise RequestError(422, "invalid input tensor",
                               [{"field": f"{where}.data[{bad}]", "problem": "finite numbers only"}])
        out.append(Tensor(t.name, t.datatype, t.shape, values))
    if offset != len(body.binary):
        raise RequestError(400, "the body is longer than its binary tensors", [{
            "field": HEADER, "problem": f"{len(body.binary) - offset} bytes after the last tensor; the inputs' "
                                        f"binary_data_size add up to {offset}"}])
    return out


def _fits(body: Body, offset: int, size: int, where: str) -> None:
    if offset + size > len(body.binary):
        raise RequestError(400, "the body is shorter than its binary tensors", [{
            "field": f"{where}.parameters.binary_data_size",
            "problem": f"{len(body.binary) - offset} bytes left after the JSON header and earlier tensors, "
                       f"{size} declared"}])


def bytes_elements(raw: memoryview, count: int, where: str) -> list[str]:
    """A binary BYTES tensor's ``count`` elements (4-byte little-endian length, then UTF-8), filling ``raw``
    exactly; a 400 naming the input when the lengths do not add up, a 422 naming the element that is not
    UTF-8."""
    out, pos, size = [], 0, len(raw)
    for i in range(count):
        n = struct.unpack_from("<I", raw, pos)[0] if pos + 4 <= size else None
        if n is None or pos + 4 + n > size:
            raise RequestError(400, "invalid BYTES tensor", [{
                "field": f"{where}.parameters.binary_data_size",
                "problem": f"{size} bytes end inside element {i} of {count} (each: a 4-byte little-endian length, "
                           f"then that many UTF-8 bytes)"}])
        try:
            out.append(bytes(raw[pos + 4:pos + 4 + n]).decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(422, "invalid input tensor", [{"field": f"{where}.data[{i}]",
                                                              "problem": "not UTF-8 text"}]) from None
        pos += 4 + n
    if pos != size:
        raise RequestError(400, "invalid BYTES tensor", [{
            "field": f"{where}.parameters.binary_data_size",
            "problem": f"{size - pos} bytes left after the {count} elements of shape"}])
    return out


def answer(req: InferRequest, head: dict[str, Any], outputs: list[Output]) -> Response:
    """The response: ``head`` (model, version, id) with the outputs asked for, each in the form asked for."""
    by_name = {o.name: o for o in outputs}
    binary_default = bool(req.parameters and req.parameters.binary_data_output)
    wanted: list[tuple[Output, bool]] = []
    for k, ro in enumerate(req.outputs or []):
        if ro.name not in by_name:
            raise RequestError(400, "unknown output", [{"field": f"outputs[{k}].name",
                                                        "problem": f"this model's outputs: {', '.join(by_name)}"}])
        params = ro.parameters.model_dump(exclude_none=True) if ro.parameters else {}
        for p in _UNSUPPORTED_OUTPUT:
            if p in params:
                raise RequestError(400, "unsupported output parameter",
                                   [{"field": f"outputs[{k}].parameters.{p}", "problem": "not supported"}])
        wanted.append((by_name[ro.name], params.get("binary_data", binary_default)))
    if not req.outputs:
        wanted = [(o, binary_default) for o in outputs]
    tensors, chunks = [], []
    for o, binary in wanted:
        tensor: dict[str, Any] = {"name": o.name, "datatype": o.datatype, "shape": o.shape}
        if binary:
            chunk = _bytes(o)
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = o.values if isinstance(o.values, list) else _round6(o.values)
        tensors.append(tensor)
    head = {**head, "outputs": tensors}
    if not chunks:
        return jsonify(head)
    header = orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(header + b"".join(chunks), mimetype="application/octet-stream",
                    headers={HEADER: str(len(header))})


def _round6(values: np.ndarray) -> list[float]:
    """Rounded as /predict rounds (Python's correctly rounded ``round``; ``np.round`` can differ in the 6th)."""
    return [round(v, 6) for v in values.ravel().tolist()]


def _bytes(o: Output) -> bytes:
    if o.datatype == "BYTES":  # class labels: a few distinct values, each encoded once
        encoded = {v: struct.pack("<I", len(b := str(v).encode())) + b for v in set(o.values)}
        return b"".join([encoded[v] for v in o.values])
    return np.ascontiguousarray(o.values, dtype="<f8").tobytes()
