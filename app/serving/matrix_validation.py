"""The applicant rules of a dataset schema applied to a whole matrix of numbers at once (tensor inputs).

Rows that arrive as numbers in feature order (Open Inference Protocol tensors, text categories already turned
into their numbers by the route, :mod:`app.serving.codes`) meet the same rules as a /predict body, column by
column in NumPy: a numeric feature within its range, an integer feature integral and within its range, a
categorical feature one of its codes (undocumented codes remapped as the schema says). When a value breaks a
rule, the offending rows go through the applicant model itself, so the answer names the fields exactly as
/predict does. ``/predict/batch`` objects take the same one pass (:func:`matrix_from_objects`), text categories
looked up column by column.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

from app.core.schema import Feature
from app.serving.codes import FeatureCodes
from app.serving.validation import ApplicantModels, RequestError

MAX_DETAILS = 50


def _numeric_codes(f: Feature) -> np.ndarray:
    return np.array([float(c) for c in f.accepted_codes if isinstance(c, int) and not isinstance(c, bool)])


def _column_ok(f: Feature, col: np.ndarray, codes: FeatureCodes, j: int) -> np.ndarray:
    if f.type == "categorical":
        ok = np.isin(col, codes.numbers(j) if codes.is_text[j] else _numeric_codes(f))
        return ok | np.isnan(col) if f.nullable else ok
    ok = np.isfinite(col)
    if f.type == "integer":
        ok &= col == np.floor(col)
    if f.min is not None:
        ok &= col >= f.min
    if f.max is not None:
        ok &= col <= f.max
    return ok | np.isnan(col) if f.nullable else ok  # NaN: a null the route let through


def validate_matrix(models: ApplicantModels, X: np.ndarray) -> np.ndarray:  # noqa: N803
    """``X`` [n_rows, n_features] (float64, feature order) checked and remapped; a 422 naming row and field."""
    ok = _rows_ok(models, X)
    if not ok.all():
        _rows(models, X, np.flatnonzero(~ok)[:MAX_DETAILS])  # raises, naming the fields
        return _rows(models, X, np.arange(len(X)))  # the model accepted what the columns refused: it decides
    return _remapped(models, X)


def matrix_from_objects(models: ApplicantModels, rows: list[Any]) -> np.ndarray | None:
    """A batch of applicant objects (``/predict/batch``) as a checked, remapped matrix in one pass, or None when
    any row is not plainly valid (not an object, a field missing or unknown, a null, a boolean, a string where a
    number is due or a number where a text category is, an unknown category, a category code given as a float, a
    value out of its range): the applicant model then parses the batch and names every fault. A test checks
    that this returns the model's own values whenever it returns any."""
    if not rows:
        return None
    names, n = models.names, len(models.names)
    exact = models.extra == "reject"
    try:
        values = [[r[k] for k in names] for r in rows if not exact or len(r) == n]
    except (KeyError, TypeError):
        return None
    if len(values) != len(rows):
        return None
    codes = models.codes
    if codes.text:
        values = _text_looked_up(codes, values)
        if values is None:
            return None
    elif not set(map(type, chain.from_iterable(values))) <= {int, float}:
        return None
    for j, f in enumerate(models.schema.features):  # pydantic takes 1.0 for an integer, not for a code
        if f.type == "categorical" and not codes.is_text[j] and float in set(map(type, (v[j] for v in values))):
            return None
    try:
        X = np.array(values, dtype=np.float64)  # noqa: N806
    except OverflowError:  # an integer beyond float64
        return None
    return _remapped(models, X) if _rows_ok(models, X).all() else None


def _text_looked_up(codes: FeatureCodes, values: list[list[Any]]) -> list[list[Any]] | None:
    """The rows with each text category replaced by its number, column by column; None when a text column holds
    anything but known category strings or another column anything but numbers."""
    cols = [list(c) for c in zip(*values, strict=True)]
    numeric = [c for j, c in enumerate(cols) if not codes.is_text[j]]
    if not set(map(type, chain.from_iterable(numeric))) <= {int, float}:
        return None
    for j, lookup in codes.lookup.items():
        col = cols[j]
        if set(map(type, col)) != {str}:
            return None
        numbers = list(map(lookup.get, col))
        if None in numbers:
            return None
        cols[j] = numbers
    return [list(r) for r in zip(*cols, strict=True)]


def _rows_ok(models: ApplicantModels, X: np.ndarray) -> np.ndarray:  # noqa: N803
    ok = np.ones(len(X), dtype=bool)
    for j, f in enumerate(models.schema.features):
        ok &= _column_ok(f, X[:, j], models.codes, j)
    return ok


def _remapped(models: ApplicantModels, X: np.ndarray) -> np.ndarray:  # noqa: N803
    """Number codes remapped as the schema says (text codes were remapped when looked up)."""
    if not models.codes.remap:
        return X.copy()
    out = X.copy()
    for j, mapping in models.codes.remap.items():
        col = X[:, j]
        for code, target in mapping.items():
            out[col == code, j] = target
    return out


def _rows(models: ApplicantModels, X: np.ndarray, rows: np.ndarray) -> np.ndarray:  # noqa: N803
    """The applicant model on the given rows: their values, or a 422 with every fault found (50 at most)."""
    features, codes = models.schema.features, models.codes
    parsed, errors = [], []
    for k in rows:
        item: dict[str, Any] = {f.name: _as_given(f, v, codes, j) for j, (f, v) in enumerate(zip(features, X[k],
                                                                                                 strict=True))}
        try:
            parsed.append(models.parse(item, where=f"rows[{k}]"))
        except RequestError as e:
            errors.extend(e.details)
            if len(errors) >= MAX_DETAILS:
                break
    if errors:
        raise RequestError(422, "invalid applicants", errors[:MAX_DETAILS])
    return np.array(parsed, dtype=np.float64).reshape(len(rows), len(features))


def _as_given(f: Feature, v: float, codes: FeatureCodes, j: int) -> Any:
    if codes.is_text[j] or (f.nullable and v != v):  # a text category's string; NaN in a nullable column: null
        return codes.value(j, v)
    return int(v) if f.type != "numeric" and float(v).is_integer() else float(v)
