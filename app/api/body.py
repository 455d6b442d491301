"""Reading a JSON request body: content type, size, emptiness and syntax, each with a clear 4xx."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import request

from app.serving.validation import RequestError


def json_body() -> Any:
    ctype = (request.mimetype or "").lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise RequestError(415, "Content-Type must be application/json",
                           [{"field": "Content-Type", "problem": f"got {request.mimetype or 'none'!r}"}])
    return parse_json(request.get_data(cache=False))  # raises 413 past MAX_CONTENT_LENGTH


def parse_json(raw: bytes, where: str = "$") -> Any:
    """JSON text (UTF-8) to Python values; a 400 naming ``where`` when it is empty, not UTF-8 or not JSON."""
    if not raw.strip():
        raise RequestError(400, "the request body is empty", [{"field": where, "problem": "empty body"}])
    try:
        return orjson.loads(raw)  # RFC 8259: JSON on the wire is UTF-8
    except orjson.JSONDecodeError:
        pass  # the standard library below names the problem (and reads NaN/Infinity, for validation to name the field)
    try:
        return json.loads(raw.decode("utf-8"), parse_int=_integer)
    except UnicodeDecodeError:
        raise RequestError(400, "the body is not UTF-8 text", [{"field": where, "problem": "invalid encoding"}]) \
            from None
    except json.JSONDecodeError as e:
        raise RequestError(400, "the body is not valid JSON",
                           [{"field": where, "problem": f"{e.msg} at line {e.lineno} column {e.colno}"}]) from None
    except ValueError:  # what json.loads still raises past its own checks (an unreadable number)
        raise RequestError(400, "the body is not valid JSON", [{"field": where, "problem": "unreadable number"}]) \
            from None
    except RecursionError:
        raise RequestError(400, "the body nests too deeply", [{"field": where, "problem": "too deep"}]) from None


def _integer(text: str) -> int | float:
    """An integer literal as orjson reads it: exact up to 64 bits, a float beyond (``inf`` past float's range),
    so validation names the field; Python's own limit on digits (4,300) would otherwise raise a ValueError."""
    return int(text) if len(text) <= 20 else float(text)
