"""Request validation built from the dataset schema (pydantic models made at load time, not by hand).

An applicant is a JSON object with the schema's feature names. Each field gets its type, range and allowed
codes from the schema (text categories such as ``self-employed`` as a JSON Schema ``enum`` of the strings, ``null``
allowed where the schema says nullable); NaN and Infinity are refused; unknown fields are refused or ignored by
configuration. Valid input becomes one NumPy row in the schema's feature order (text categories as their numbers
and undocumented codes remapped, :mod:`app.serving.codes`), ready for the model without pandas.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from app.core.schema import DatasetSchema, Feature
from app.serving.codes import FeatureCodes, text_coded, unknown_category


class RequestError(ValueError):
    """A request the client must fix: an HTTP status, a message, and per-field details."""

    def __init__(self, status: int, error: str, details: list[dict[str, Any]] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = details or []


def _no_bool(v: Any) -> Any:
    if isinstance(v, bool):  # True == 1 in Python: a JSON boolean is never a category code
        raise ValueError("a boolean is not a category code")
    return v


def _integral(v: Any) -> Any:
    """JSON Schema counts 87.0 as an integer: accept integral floats, refuse 87.5, booleans and strings."""
    if isinstance(v, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    return v


def _field(f: Feature) -> tuple[Any, Any]:
    desc = f.description
    example = f.example_value()
    if f.type == "categorical":
        codes = tuple(f.accepted_codes)
        if text_coded(f):
            doc = "Categories: " + ", ".join(c if (lab := (f.labels or {}).get(c)) in (None, c) else f"{c} ({lab})"
                                             for c in map(str, f.categories or []))
        else:
            doc = "Codes: " + ", ".join(f"{c}={(f.labels or {}).get(c, '?')}" for c in f.categories or [])
        if f.remap:
            doc += "; also accepted: " + ", ".join(f"{k} (treated as {v})" for k, v in f.remap.items())
        if f.nullable:
            doc += "; null when unknown"
        typ: Any = Annotated[Literal[codes], BeforeValidator(_no_bool)]  # type: ignore[valid-type]
        field = Field(description=f"{desc} {doc}.".strip(), examples=[example])
    else:
        typ = Annotated[int, BeforeValidator(_integral)] if f.type == "integer" else float
        field = Field(description=desc, examples=[example], ge=f.min, le=f.max,
                      strict=True, allow_inf_nan=False)
    if f.nullable:
        typ = typ | None
    return typ, field


class ApplicantModels:
    """The pydantic models and the row builder for one schema."""

    def __init__(self, schema: DatasetSchema, extra: Literal["reject", "ignore"] = "reject"):
        self.schema = schema
        self.names = schema.feature_names
        self.extra = extra
        cfg = ConfigDict(extra="forbid" if extra == "reject" else "ignore", title="Applicant",
                         json_schema_extra={"example": schema.example_row()})
        fields = {f.name: _field(f) for f in schema.features}
        self.applicant: type[BaseModel] = create_model("Applicant", __config__=cfg, **fields)  # type: ignore
        self.codes = FeatureCodes(schema)
        self._many = TypeAdapter(list[self.applicant])  # a batch validated in one call

    def json_schema(self) -> dict[str, Any]:
        """The applicant's JSON Schema (with an example row), as the OpenAPI document shows it."""
        return self.applicant.model_json_schema()

    def parse(self, payload: Any, where: str = "") -> np.ndarray:
        """Validate one applicant; returns a float64 row in feature order or raises RequestError(422)."""
        if not isinstance(payload, dict):
            raise RequestError(400, "the body must be a JSON object with the applicant's fields",
                               [{"field": where or "$", "problem": f"expected an object, got {_kind(payload)}"}])
        try:
            obj = self.applicant.model_validate(payload)
        except ValidationError as e:
            raise RequestError(422, "invalid applicant", _details(e, where, self.schema)) from None
        return np.array(self._values(obj), dtype=np.float64)

    def _values(self, obj: BaseModel) -> list[Any]:
        """A validated applicant's values in feature order: missing -> NaN, text codes -> their numbers,
        undocumented codes remapped as the schema says."""
        d = obj.__dict__
        values = [d[name] for name in self.names]
        for i, numbers in self.codes.lookup.items():
            if values[i] is not None:
                values[i] = numbers[values[i]]
        for i, mapping in self.codes.remap.items():
            values[i] = mapping.get(values[i], values[i])
        return [math.nan if v is None else v for v in values]

    def parse_many(self, rows: Any) -> np.ndarray:
        if not isinstance(rows, list):
            raise RequestError(400, "'instances' must be a list of applicant objects",
                               [{"field": "instances", "problem": f"expected a list, got {_kind(rows)}"}])
        try:
            objs = self._many.validate_python(rows)
        except ValidationError:  # row by row, for the errors' details
            objs = None
        if objs is not None:
            return np.array([self._values(o) for o in objs], dtype=np.float64).reshape(len(objs), len(self.names))
        errors: list[dict[str, Any]] = []
        for k, item in enumerate(rows):
            try:
                self.parse(item, where=f"instances[{k}]")
            except RequestError as e:
                errors.extend(e.details)
                if len(errors) >= 50:
                    break
        raise RequestError(422, "invalid applicants", errors[:50] or [{"field": "instances", "problem": "invalid"}])


def _kind(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number" if isinstance(v, int | float) else type(v).__name__)


def _details(e: ValidationError, where: str, schema: DatasetSchema) -> list[dict[str, Any]]:
    out = []
    for err in e.errors(include_url=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("literal[", "function-")))
        loc = loc.split(".")[0] if loc else "$"
        field = f"{where}.{loc}" if where else loc
        kind = err["type"]
        raw = err.get("input")
        if isinstance(raw, float) and not math.isfinite(raw):
            kind = "finite_number"
        if kind == "missing":
            problem = "required field is missing"
        elif kind == "extra_forbidden":
            problem = "unknown field (not in the schema)"
        elif kind in ("finite_number",):
            problem = "NaN and Infinity are not allowed"
        elif kind == "literal_error" and loc in schema.feature_names:
            problem = unknown_category(schema.feature(loc), err.get("input"))
        else:
            problem = err["msg"]
            if "input" in err and kind not in ("missing",) and _printable(err["input"]):
                problem += f" (got {err['input']!r})"
        out.append({"field": field, "problem": problem})
    return out


def _printable(v: Any) -> bool:
    return isinstance(v, int | float | str | bool) and not (isinstance(v, float) and math.isnan(v)) \
        and len(repr(v)) < 80
