"""A schema's category codes on the serving side: the number the model reads for a value, and back.

The model reads every feature as a float64 column in schema order. A categorical feature whose codes are text
(``self-employed``, ``home/improvement``, ``Zürich``) is read as the position of the value among the feature's
categories, an undocumented (remapped) code as its target's: :attr:`app.core.schema.Feature.matrix_codes`, the
one encoding training validation uses too. A missing value is NaN. Integer-coded categoricals and numbers are
read as themselves.

The API answers, logs and stores values as a lender reads them: :meth:`FeatureCodes.values` turns a row back
into JSON values (the category string, ``None`` for a missing value, an int where the number is integral).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from app.core.schema import DatasetSchema, Feature


def text_coded(f: Feature) -> bool:
    """A categorical whose codes are text (any string among its categories): encoded by position."""
    return f.string_coded


def plain(v: float) -> float | int | None:
    """A number as JSON shows it: None for NaN (a missing value), an int where it is integral."""
    v = float(v)
    if v != v:
        return None
    return int(v) if v.is_integer() else v


def allowed_values(f: Feature) -> str:
    """The values a categorical accepts, quoted as a client writes them."""
    return ", ".join(repr(c) if isinstance(c, str) else str(c) for c in f.accepted_codes)


def unknown_category(f: Feature, value: Any) -> str:
    """The problem text of a value that is none of the feature's categories (every path words it so)."""
    return f"unknown category {value!r}; allowed: {allowed_values(f)}"


class FeatureCodes:
    """Per feature index: the text codes and their numbers (remap applied), and the number codes' remaps."""

    def __init__(self, schema: DatasetSchema):
        self.schema = schema
        features = schema.features
        self.text: dict[int, list[Any]] = {j: list(f.categories or []) for j, f in enumerate(features)
                                           if f.string_coded}
        # the schema's one encoding (training validates through it too): a remapped code gets its target's number
        self.lookup: dict[int, dict[Any, float]] = {j: dict(features[j].matrix_codes) for j in self.text}
        self.remap: dict[int, dict[float, float]] = {  # number codes: remapped after parsing
            j: {float(k): float(v) for k, v in f.remap.items()} for j, f in enumerate(features)
            if f.remap and j not in self.text}
        self.is_text = [j in self.text for j in range(len(features))]

    def numbers(self, j: int) -> list[float]:
        """The numbers a text-coded feature ``j`` may take after remapping (what the model was trained on)."""
        return sorted(set(self.lookup[j].values()))

    def value(self, j: int, number: float) -> Any:
        """Feature ``j``'s value as given: the category string of a text code, else the plain number."""
        if self.is_text[j] and not math.isnan(number) and float(number).is_integer() \
                and 0 <= number < len(self.text[j]):
            return self.text[j][int(number)]
        return plain(number)  # a number, a missing value, or (never from the API's parsers) not a text code

    def values(self, row: Sequence[float]) -> list[Any]:
        """A row in feature order as JSON values (strings for text categories, None for missing values)."""
        if not self.text:
            return [plain(v) for v in row]
        return [self.value(j, v) for j, v in enumerate(row)]

    def as_dict(self, row: Sequence[float]) -> dict[str, Any]:
        return dict(zip(self.schema.feature_names, self.values(row), strict=True))
